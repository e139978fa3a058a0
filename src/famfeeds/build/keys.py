"""What every cached value depends on besides its inputs: famfeeds' own code, the
interpreter, and the versions of the libraries that shape what famfeeds makes.

One list (:data:`LIBRARIES`), one digest (:func:`code_digest`), worked out once per process:
the parse cache, the render memo, the issue cache and the compiled templates are all keyed
by it, so a new version of famfeeds or of any library on the list forgets them all.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path

FORMAT = 1
"""Raised when the way entries are keyed changes."""

LIBRARIES = (
    "pydantic",
    "pydantic-core",
    "tzdata",
    "jinja2",
    "markupsafe",
    "icalendar",
    "feedgen",
    "babel",
    "cmarkgfm",
    "nh3",
    "segno",
    "premailer",
    "cssutils",
    "cssselect",
    "lxml",
    "idna",
    "email-validator",
)
"""Every library whose code shapes a record, a page, a feed, a calendar or an issue (pydantic
and tzdata: the records and their zones; babel: dates in the show's language; cssselect,
cssutils and lxml: premailer's inlining; idna and email-validator: the addresses and the
domain in an issue's headers)."""


@functools.cache
def code_digest() -> str:
    """famfeeds' own source (every .py file of the package), the interpreter and the
    versions of :data:`LIBRARIES`, as one hex digest."""
    digest = hashlib.blake2b(f"{FORMAT};{sys.version}".encode(), digest_size=16)
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    digest.update(versions(LIBRARIES).encode())
    return digest.hexdigest()


@functools.cache
def _installed() -> dict[str, str]:
    """Installed distributions' versions, from the names of their metadata folders on
    sys.path (first found wins, as for imports): one listing per folder, where
    importlib.metadata.version takes about a millisecond a name."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = [p.name for p in Path(entry or ".").iterdir()]
        except OSError:
            continue
        for name in names:
            stem, dot, kind = name.rpartition(".")
            if dot and kind in ("dist-info", "egg-info") and "-" in stem:
                project, _, version = stem.partition("-")
                found.setdefault(_normal(project), version.split("-")[0])
    return found


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


@functools.cache
def versions(names: tuple[str, ...]) -> str:
    """``name=version;`` for each installed distribution (``name=none;`` if missing)."""
    from importlib.metadata import PackageNotFoundError, version

    installed = _installed()
    parts = []
    for name in names:
        found = installed.get(_normal(name))
        if found is None:
            try:
                found = version(name)
            except PackageNotFoundError:
                found = "none"
        parts.append(f"{name}={found};")
    return "".join(parts)
