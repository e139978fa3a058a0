"""A parse cache: what a season folder (or a single file such as famfeeds.lock) was read,
parsed and validated into, reused while its files are unchanged, so that a rebuild reads and
validates only what changed.

The rule for "unchanged", after git's index:

- A *signature* lists every file that went into a value: its name, and for a symbolic link
  its target, then its size, inode, modification time and change time (ns). The change time
  cannot be set by tools that copy or restore modification times (``cp -p``, ``touch -r``,
  ``rsync -t``); an editor that saves by writing a new file and renaming it changes the
  inode. A file added to or removed from a season folder changes the list.
- A signature is trusted only when the newest change time in it is at least ``RACY_NS`` older
  than the moment the value was recorded: a file written twice within the file system's
  timestamp granularity, at the same size, keeps its signature. Younger entries are *in
  doubt*: their files are read and compared with a BLAKE2b digest of their bytes, taken
  before the loader read them, and a match is trusted from then on. Anything else is a miss:
  the folder is loaded and validated again.
- A value stands for one loading by one version of the code with one set of loader settings:
  the cache file is keyed by famfeeds' own source files and the versions of Python and
  pydantic, and each entry by the loader's settings (its fields other than the problems and
  warnings it collects).

A season is cached only if it loaded without a problem and without changing the loader's
settings; the warnings it gave are recorded and given again on a hit, in the same order.

A build saves its caches only once its output is written (:func:`save_later`,
:func:`save_deferred`): a build that fails validation, is refused or is killed leaves the
cache folder as it was.

The caches live in the project's cache folder (.famfeeds-cache/, private, 0700) as pickles.
A pickle runs code when loaded, so one is loaded only if it is a regular file owned by this
user and writable by no one else; anything unreadable, corrupt, foreign or of another format
is a miss, never an error. Delete .famfeeds-cache/ at any time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import pickle
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from famfeeds.errors import Problem
    from famfeeds.models import Season

FORMAT = 2
CONTENT_CACHE = "records.pickle"
LOCK_CACHE = "lock.pickle"
RACY_NS = 3_000_000_000
"""A signature is trusted once its newest change time is this much older than the moment
the value was recorded (coarse file system timestamps, a file server's clock a little apart)."""
NOTES_DIR = "newsletter"
UNREADABLE = (-1, -1, -1, -1)
T = TypeVar("T")

FileKey = tuple[str, str, int, int, int, int]
"""name, link target ('' if not a link), size, inode, mtime_ns, ctime_ns."""
Signature = tuple[FileKey, ...]
Entry = tuple[str, Signature, bytes, int, bytes]
"""loader settings, signature, content digest (b'' when trusted at once), recorded (ns),
the pickled value."""


@functools.cache
def code_key() -> str:
    """famfeeds' own source (every .py file of the package), the interpreter and the
    versions of pydantic and tzdata: what a cached value depends on besides its files
    (computed once per process)."""
    digest = hashlib.blake2b(f"{FORMAT};{sys.version}".encode(), digest_size=16)
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    digest.update(versions(("pydantic", "pydantic-core", "tzdata")).encode())
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


def file_key(path: Path, name: str) -> FileKey:
    """One file's line in a signature (the stat of what a link leads to, and the link)."""
    target = ""
    with contextlib.suppress(OSError):
        if path.is_symlink():
            target = str(path.readlink())
    try:
        info = path.stat()
    except OSError:
        return (name, target, *UNREADABLE)
    return (name, target, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)


def folder_signature(folder: Path) -> Signature:
    """A season folder's signature: every entry in it and in its newsletter/ folder."""
    keys = []
    for base, prefix in ((folder, ""), (folder / NOTES_DIR, NOTES_DIR + "/")):
        try:
            names = sorted(entry.name for entry in os.scandir(base))
        except OSError:
            continue
        keys += [file_key(base / name, prefix + name) for name in names]
    return tuple(keys)


def content_digest(root: Path, signature: Signature) -> bytes:
    """BLAKE2b of the bytes of every readable regular file in ``signature``."""
    files = []
    for name, *_ in signature:
        path = root / name
        with contextlib.suppress(OSError):
            if path.is_file():
                files.append((name, path.read_bytes()))
    return _digest(files)


def _digest(files: list[tuple[str, bytes]]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for name, data in files:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0" + data + b"\0")
    return digest.digest()


def _newest_change(signature: Signature) -> int:
    return max((key[5] for key in signature), default=0)


class Loader(Protocol):
    """What :func:`load_season` needs of famfeeds.content's loader (a dataclass)."""

    problems: list[Problem]
    warnings: list[Problem]

    def shown(self, path: Path) -> str:
        """``path`` as the user would type it."""
        ...


@dataclass
class RecordCache:
    """One cache file of entries by key, loaded at once, saved with the entries used.

    :meth:`get` looks a value up (taking the signature, and a digest if the files are too
    young to be trusted by it, before the caller reads them); :meth:`put` records what the
    caller then loaded; :meth:`save` writes the entries used since :meth:`open`.
    """

    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    used: dict[str, Entry] = field(default_factory=dict)
    pending: dict[str, tuple[Signature, bytes]] = field(default_factory=dict)
    changed: bool = False
    hits: int = 0
    misses: int = 0

    @classmethod
    def open(cls, path: Path) -> RecordCache:
        """The cache stored at ``path``; empty if missing or not trustworthy."""
        cache = cls(path)
        data = load_private_pickle(path)
        if (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("code") == code_key()
            and isinstance(data.get("entries"), dict)
        ):
            cache.entries = data["entries"]
        return cache

    def get(self, key: str, settings: str, root: Path, signature: Signature) -> Any | None:
        """The value recorded under ``key`` for these files (``signature``, names relative
        to ``root``) and loader ``settings``, or None: a miss, after which :meth:`put`
        records what the caller loads."""
        now = time.time_ns()
        entry = self.entries.get(key)
        if entry is not None and entry[0] == settings and entry[1] == signature:
            if _newest_change(signature) + RACY_NS <= entry[3]:
                return self._hit(key, entry)
            if entry[2] and content_digest(root, signature) == entry[2]:
                self.changed = True  # confirmed: trusted from now on
                return self._hit(key, (*entry[:3], now, entry[4]))
        young = _newest_change(signature) + RACY_NS > now
        self.pending[key] = (signature, content_digest(root, signature) if young else b"")
        self.misses += 1
        return None

    def _hit(self, key: str, entry: Entry) -> Any | None:
        try:
            value = pickle.loads(entry[4])
        except Exception:  # a corrupt entry is a miss
            return None
        self.used[key] = entry
        self.hits += 1
        return value

    def put(self, key: str, settings: str, value: Any) -> None:
        """Record ``value`` for the files :meth:`get` just found missing."""
        pending = self.pending.pop(key, None)
        if pending is None:
            return
        signature, digest = pending
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.used[key] = (settings, signature, digest, time.time_ns(), data)
        self.changed = True

    def save(self) -> None:
        """Write the entries used since :meth:`open`, dropping the rest, if anything
        changed. Best effort: a cache that cannot be written only makes a build slower."""
        if not self.changed and self.used.keys() == self.entries.keys():
            return
        save_private_pickle(self.path, {"format": FORMAT, "code": code_key(), "entries": self.used})
        self.entries, self.used, self.changed = self.used, {}, False


def loader_settings(loader: Loader) -> str:
    """What a season's loading depends on besides its files: every field of the loader but
    the problems and warnings it collects (and this cache)."""
    skip = {"problems", "warnings", "records"}
    assert dataclasses.is_dataclass(loader)
    return repr(
        [
            (f.name, getattr(loader, f.name))
            for f in dataclasses.fields(loader)
            if f.name not in skip
        ]
    )


def load_season(
    cache: RecordCache, loader: Loader, folder: Path, load: Callable[[Path], Season | None]
) -> Season | None:
    """``load(folder)`` (the loader's own), or the season it gave when the folder was last
    loaded with the same files and settings; its warnings are given again either way."""
    key = loader.shown(folder)
    settings = loader_settings(loader)
    found = cache.get(key, settings, folder, folder_signature(folder))
    if found is not None:
        season, warnings = found
        loader.warnings.extend(warnings)
        return season  # type: ignore[no-any-return]
    problems, warned = len(loader.problems), len(loader.warnings)
    season = load(folder)
    clean = season is not None and len(loader.problems) == problems
    if clean and loader_settings(loader) == settings:
        given: tuple[Problem, ...] = tuple(loader.warnings[warned:])
        cache.put(key, settings, (season, given))
    return season


def cached_file(cache_path: Path, file: Path, parse: Callable[[Path], T]) -> T:
    """``parse(file)``, remembered in the cache ``cache_path`` while ``file`` is unchanged
    (the rule above): for a single large file such as famfeeds.lock. ``parse``'s errors
    propagate, and nothing is cached then."""
    cache = RecordCache.open(cache_path)
    key = str(file.absolute())
    signature = (file_key(file, file.name),)
    found = cache.get(key, "", file.parent, signature)
    if found is None:
        found = parse(file)
        cache.put(key, "", found)
    save_later(cache_path, cache.save)
    return found


def load_private_pickle(path: Path) -> Any:
    """A pickle from ``path`` if it is a regular file of this user that no one else can
    write; None otherwise, or if it cannot be read."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022:
                return None
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                return None
            return pickle.load(handle)
    except Exception:  # a corrupt cache is a miss, whatever unpickling raises
        return None


def save_private_pickle(path: Path, data: Any, *, fsync: bool = False) -> bool:
    """Write a pickle atomically, 0600, in a 0700 folder; False if it could not be written
    (best effort: nothing is raised)."""
    from famfeeds.writer import atomic_write

    try:
        # as famfeeds.project.private_folder (not imported: it would close an import cycle)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.parent.stat().st_mode & 0o777 != 0o700:
            path.parent.chmod(0o700)
        atomic_write(path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL), 0o600, fsync)
    except (OSError, pickle.PicklingError):
        return False
    return True


def remember_file(cache_path: Path, file: Path, data: bytes, value: Any) -> None:
    """Record that ``file``, just written with ``data``, parses to ``value``, so that the
    next :func:`cached_file` of it needs no parsing (saved with the build's caches). The
    entry is in doubt (the file is young) and keeps the digest of ``data``: if anything else
    writes the file meanwhile, the next load parses it."""
    cache = RecordCache.open(cache_path)
    key = str(file.absolute())
    cache.pending[key] = ((file_key(file, file.name),), _digest([(file.name, data)]))
    cache.put(key, "", value)
    save_later(cache_path, cache.save)


MEMO_CACHE = "memo.pickle"
OUTPUT_LIBRARIES = (
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
    "lxml",
)
"""Libraries whose code shapes rendered bytes (with famfeeds' own: :func:`code_key`)."""


@functools.cache
def output_key() -> str:
    """What remembered render results depend on besides their inputs: famfeeds' code and
    the versions of the libraries that shape output."""
    return code_key() + ";" + versions(OUTPUT_LIBRARIES)


@dataclass
class RenderMemo:
    """famfeeds.render.memo's memo, kept in the project's cache folder between builds.

    Entries are dropped when famfeeds or a library in OUTPUT_LIBRARIES changes, and when a
    build does not use them (so the file holds one build's worth)."""

    path: Path
    entries: dict[bytes, bytes] = field(default_factory=dict)
    used: dict[bytes, bytes] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def open(cls, path: Path) -> RenderMemo:
        """The memo stored at ``path``; empty if missing, of another code, or untrustworthy."""
        memo = cls(path)
        data = load_private_pickle(path)
        if (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("code") == output_key()
            and isinstance(data.get("entries"), dict)
        ):
            memo.entries = data["entries"]
        return memo

    def get(self, key: bytes) -> bytes | None:
        """The bytes remembered under ``key``, or None."""
        found = self.entries.get(key)
        if found is not None:
            self.used[key] = found
        return found

    def put(self, key: bytes, value: bytes) -> None:
        """Remember ``value`` under ``key`` (written by :meth:`save`)."""
        self.used[key] = value
        self.changed = True

    def save(self) -> None:
        """Keep what this build used or made, if that is not what is stored. Best effort."""
        if self.changed or self.used.keys() != self.entries.keys():
            data = {"format": FORMAT, "code": output_key(), "entries": self.used}
            save_private_pickle(self.path, data)
            self.entries, self.used, self.changed = self.used, {}, False


_deferred = threading.local()


def save_later(path: Path, save: Callable[[], object]) -> None:
    """Have :func:`save_deferred` call ``save`` (the last one given for ``path`` wins)."""
    pending: dict[str, Callable[[], object]] = _deferred.__dict__.setdefault("pending", {})
    pending[str(path)] = save


def save_deferred() -> None:
    """Save the caches this thread's build used, now that its output is written."""
    pending: dict[str, Callable[[], object]] = _deferred.__dict__.setdefault("pending", {})
    saves = list(pending.values())
    pending.clear()
    for save in saves:
        save()
