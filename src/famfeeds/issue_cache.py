"""A content-addressed cache of rendered newsletter issues, beside the content folder.

Rendering an issue (templates, CSS inlining, the MIME message) costs milliseconds, and an
issue whose inputs did not change renders to the same bytes, so rebuilds reuse earlier
results. The key (:class:`IssueKeys`) covers everything the bytes can depend on: every
``.py`` file of the installed famfeeds package, every template the environment can load,
the versions of the libraries that shape the output, the interpreter, the show, and each
record the issue touches (with paths relative to nothing: a record's source path is left
out, so building from another working folder hits the same entries).

The cache is disposable: delete .famfeeds-cache/ at any time. An unreadable or corrupt
entry is a miss (with one warning for the build to print), never an error; a cache folder
that cannot be written only makes the next build slower.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from famfeeds.planning import Issue
from famfeeds.render.personal import Markers, RenderedIssue
from famfeeds.schedule import Release

if TYPE_CHECKING:
    from jinja2 import Environment

    from famfeeds.render.personal import Letter

SUFFIX = ".json"
KEEP_UNUSED_SECONDS = 14 * 86400
"""Entries no build used are kept this long (a preview at another address uses others)."""
LIBRARIES = (
    "premailer",
    "cssutils",
    "cssselect",
    "lxml",
    "jinja2",
    "markupsafe",
    "cmarkgfm",
    "nh3",
    "pydantic",
)
"""Libraries whose code shapes an issue's bytes."""
SOURCE_FREE = {"source": True, "episodes": {"__all__": {"source"}}}


def code_digest() -> str:
    """A digest of every .py file of the installed famfeeds package, the interpreter and
    the versions of the libraries in LIBRARIES."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=none;".encode())
    return digest.hexdigest()


def templates_digest(env: Environment) -> str:
    """A digest of every template the environment can load (the project's first)."""
    assert env.loader is not None
    digest = hashlib.sha256()
    for name in sorted(env.loader.list_templates()):
        digest.update(name.encode() + b"\0" + env.loader.get_source(env, name)[0].encode())
    return digest.hexdigest()


class IssueKeys:
    """Cache keys for issues: the code, the templates, the show and the records touched."""

    def __init__(self, base: str, show_json: str) -> None:
        self.base = hashlib.sha256(f"{base}\0{show_json}".encode()).hexdigest()
        self.seasons: dict[int, str] = {}

    def season(self, season: Any) -> str:
        """A digest of one season's records (its source paths left out)."""
        if season.number not in self.seasons:
            dumped = season.model_dump_json(exclude=SOURCE_FREE)
            self.seasons[season.number] = hashlib.sha256(dumped.encode()).hexdigest()
        return self.seasons[season.number]

    def issue(self, issue: Issue) -> str:
        """The key of one issue."""

        def release(r: Release) -> str:
            return f"{self.season(r.season)}/{r.episode.number}/{r.day}/{r.local_time}/{r.rank}"

        parts = [self.base, issue.day.isoformat(), issue.note]
        parts += [release(r) for r in issue.releases]
        parts += ["preview:" + self.season(s) for s in issue.previews]
        parts.append("next:" + (release(issue.next_release) if issue.next_release else ""))
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass
class IssueCache:
    """Entries by key, read from files on demand; remembers what a build used."""

    folder: Path
    used: set[str] = field(default_factory=set)
    fresh: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, issue: Issue) -> Letter | None:
        """The cached letter for ``issue``, or None (a corrupt entry warns once)."""
        from famfeeds.render.personal import Letter

        path = self.folder / f"{key}{SUFFIX}"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            item = RenderedIssue(
                issue,
                saved["subject"],
                saved["html"],
                saved["text"],
                Markers(saved["markers"][0], saved["markers"][1]),
            )
            files = {name: base64.b64decode(data) for name, data in saved["files"].items()}
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            if not self.warnings:
                self.warnings.append(
                    f"{path}: unreadable issue cache entry ({type(exc).__name__}); "
                    "rendering the issue again"
                )
            return None
        self.used.add(key)
        return Letter(item, files)

    def put(self, key: str, letter: Letter) -> None:
        """Remember a newly rendered letter, to be written by :meth:`save`."""
        item = letter.item
        self.fresh[key] = json.dumps(
            {
                "subject": item.subject,
                "html": item.html,
                "text": item.text,
                "markers": [item.markers.name, item.markers.token],
                "files": {n: base64.b64encode(d).decode() for n, d in letter.files.items()},
            }
        )

    def save(self) -> None:
        """Write new entries and forget old ones no build used lately. Best effort."""
        from famfeeds.writer import atomic_write

        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            for key, entry in self.fresh.items():
                atomic_write(self.folder / f"{key}{SUFFIX}", entry.encode("utf-8"), fsync=False)
            keep = self.used | set(self.fresh)
            stale = time.time() - KEEP_UNUSED_SECONDS
            for path in self.folder.glob(f"*{SUFFIX}"):
                if path.name.removesuffix(SUFFIX) not in keep and path.stat().st_mtime < stale:
                    path.unlink(missing_ok=True)
            for path in self.folder.glob(".*.tmp"):  # left by a killed build
                if path.stat().st_mtime < time.time() - 3600:
                    path.unlink(missing_ok=True)
        self.fresh.clear()


def writable(folder: Path) -> bool:
    """True when ``folder`` (or where it would be created) can be written."""
    probe = folder if folder.exists() else folder.parent
    return os.access(probe, os.W_OK)
