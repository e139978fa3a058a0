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
  warnings it collects and where the content folder is).
- An entry is found by the folder's absolute path (the content folder resolved), so the
  working folder, and content/ given relative or absolute, do not matter; a season loaded
  under other display paths is given with the ones of the current run.

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
import hashlib
import operator
import os
import pickle
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

from famfeeds.build import keys

if TYPE_CHECKING:
    from famfeeds.errors import Problem
    from famfeeds.records.models import Season

FORMAT = 3
CONTENT_CACHE = "records"
"""The season folders' cache: a folder of CONTENT_SHARDS pickles."""
CONTENT_SHARDS = 16
FORMER_CONTENT_CACHE = "records.pickle"
"""Where versions before the folder kept the season cache: removed when the folder is saved."""
LOCK_CACHE = "lock.pickle"
RACY_NS = 3_000_000_000
"""A signature is trusted once its newest change time is this much older than the moment
the value was recorded (coarse file system timestamps, a file server's clock a little apart)."""
NOTES_DIR = "newsletter"
UNREADABLE = (-1, -1, -1, -1)
T = TypeVar("T")

FileKey = tuple[str, str, int, int, int, int]
"""name, link target ('' if not a link), size, inode, mtime_ns, ctime_ns."""
Signature = tuple[str | int, ...]
"""The FileKeys of the files, one after another in one flat tuple (one object to build,
store and compare, where a tuple of tuples is one per file)."""
KEY_LENGTH = 6
Entry = tuple[str, Signature, bytes, int, bytes]
"""loader settings, signature, content digest (b'' when trusted at once), recorded (ns),
the pickled value."""


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


def folder_signature(folder: Path | str) -> Signature:
    """A season folder's signature: every entry in it and in its newsletter/ folder."""
    return scan_folder(os.fspath(folder))[0]


def scan_folder(folder: str) -> tuple[Signature, int]:
    """:func:`folder_signature` and the newest change time in it, in one pass: a listing of
    the folder (and of newsletter/ if it has one) and one stat per entry. Whether an entry
    is a link comes with the listing: only a link costs a readlink."""
    keys: list[str | int] = []
    newest = _scan(folder, "", keys)
    if NOTES_DIR in keys[::KEY_LENGTH]:
        notes = os.path.join(folder, NOTES_DIR)  # noqa: PTH118 (no Path objects: 1,000 folders)
        newest = max(newest, _scan(notes, NOTES_DIR + "/", keys))
    return tuple(keys), newest


def _scan(base: str, prefix: str, keys: list[str | int]) -> int:
    """Append the keys of ``base``'s entries, in name order; the newest change time.

    Where the platform can, the folder is opened once and each entry is stat'ed relative
    to it (``fstatat``), which spares the kernel a walk of the whole path per file."""
    try:
        handle = os.open(base, os.O_RDONLY | _DIRECTORY) if _BY_HANDLE else -1
    except OSError:
        return 0
    try:
        with os.scandir(handle if _BY_HANDLE else base) as listing:
            entries = sorted(listing, key=_entry_name)
        newest = 0
        for entry in entries:
            target = ""
            try:
                if entry.is_symlink():  # known from the listing: no system call for a file
                    target = (
                        os.readlink(entry.name, dir_fd=handle)
                        if _BY_HANDLE
                        else os.readlink(entry.path)  # noqa: PTH115 (a DirEntry)
                    )
            except OSError:
                pass
            try:
                info = entry.stat()
            except OSError:
                keys += (prefix + entry.name, target, *UNREADABLE)
                continue
            ctime = info.st_ctime_ns
            newest = ctime if ctime > newest else newest
            keys += (
                prefix + entry.name,
                target,
                info.st_size,
                info.st_ino,
                info.st_mtime_ns,
                ctime,
            )
        return newest
    except OSError:
        return 0
    finally:
        if _BY_HANDLE:
            os.close(handle)


_entry_name = operator.attrgetter("name")
_BY_HANDLE = os.scandir in os.supports_fd and os.readlink in os.supports_dir_fd
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def content_digest(root: Path, signature: Signature) -> bytes:
    """BLAKE2b of the bytes of every readable regular file in ``signature``."""
    files = []
    for name in signature[::KEY_LENGTH]:
        path = root / str(name)
        with contextlib.suppress(OSError):
            if path.is_file():
                files.append((str(name), path.read_bytes()))
    return _digest(files)


def _digest(files: list[tuple[str, bytes]]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for name, data in files:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0" + data + b"\0")
    return digest.digest()


def _newest_change(signature: Signature) -> int:
    return max((int(ctime) for ctime in signature[5::KEY_LENGTH]), default=0)


class Loader(Protocol):
    """What :class:`SeasonReader` needs of famfeeds.records.loader's loader (a dataclass)."""

    root: Path
    real_root: Path
    shown_root: str
    problems: list[Problem]
    warnings: list[Problem]


@dataclass
class RecordCache:
    """Entries by key, loaded at once, saved with the entries used: one file, or with
    ``shards`` > 1 a folder of that many files, each holding the keys that hash to it, so
    that a change rewrites only the file that holds it (a catalogue of 1,000 seasons is
    14 MB of cache; one edited episode rewrites one sixteenth of it).

    :meth:`get` looks a value up (taking the signature, and a digest if the files are too
    young to be trusted by it, before the caller reads them); :meth:`put` records what the
    caller then loaded; :meth:`save` writes the entries used since :meth:`open`.
    """

    path: Path
    shards: int = 1
    entries: dict[str, Entry] = field(default_factory=dict)
    used: dict[str, Entry] = field(default_factory=dict)
    pending: dict[str, tuple[Signature, bytes]] = field(default_factory=dict)
    changed: bool = False
    touched: set[str] = field(default_factory=set)
    """Keys whose entry this load recorded or confirmed (their files are rewritten)."""
    hits: int = 0
    misses: int = 0

    @classmethod
    def open(cls, path: Path, shards: int = 1) -> RecordCache:
        """The cache stored at ``path``; empty (or without a shard) where missing or not
        trustworthy."""
        cache = cls(path, shards)
        for shard in range(shards):
            data = load_private_pickle(cache.file(shard))
            if (
                isinstance(data, dict)
                and data.get("format") == FORMAT
                and data.get("code") == keys.code_digest()
                and isinstance(data.get("entries"), dict)
            ):
                if shards == 1:
                    cache.entries = data["entries"]
                else:
                    found = data["entries"].items()
                    cache.entries.update((k, e) for k, e in found if cache.shard(k) == shard)
        return cache

    def file(self, shard: int) -> Path:
        """The file that holds ``shard``."""
        return self.path if self.shards == 1 else self.path / f"{shard:02x}.pickle"

    def shard(self, key: str) -> int:
        """Which file holds ``key`` (by a digest of it: the same in every process)."""
        if self.shards == 1:
            return 0
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=4)
        return int.from_bytes(digest.digest(), "big") % self.shards

    def get(
        self,
        key: str,
        settings: str,
        root: Path | str,
        signature: Signature,
        newest: int | None = None,
    ) -> Any | None:
        """The value recorded under ``key`` for these files (``signature``, names relative
        to ``root``; ``newest``, their newest change time, if known) and loader
        ``settings``, or None: a miss, after which :meth:`put` records what the caller
        loads."""
        if newest is None:
            newest = _newest_change(signature)
        entry = self.entries.get(key)
        if entry is not None and entry[0] == settings and entry[1] == signature:
            if newest + RACY_NS <= entry[3]:
                found = self._hit(key, entry)
                if found is not None:
                    return found
            elif entry[2] and content_digest(Path(root), signature) == entry[2]:
                now = time.time_ns()
                trusted = newest + RACY_NS <= now  # recorded now, the stat is trusted
                found = self._hit(key, (*entry[:3], now, entry[4]) if trusted else entry)
                if found is not None:
                    if trusted:  # confirmed: trusted from now on (else checked again)
                        self.changed = True
                        self.touched.add(key)
                    return found
        young = newest + RACY_NS > time.time_ns()
        self.pending[key] = (signature, content_digest(Path(root), signature) if young else b"")
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
        self.touched.add(key)

    def save(self) -> None:
        """Write the entries used since :meth:`open`, dropping the rest, if anything
        changed: only the files whose entries changed. Best effort: a cache that cannot be
        written only makes a build slower."""
        if not self.changed and self.used.keys() == self.entries.keys():
            return
        shard = self.shard
        stale = {shard(key) for key in self.touched}
        stale.update(shard(key) for key in self.entries.keys() ^ self.used.keys())
        if self.changed and not self.touched:  # changed from outside: write everything
            stale = set(range(self.shards))
        if self.shards > 1:
            with contextlib.suppress(OSError):
                _private_folder(self.path.parent)  # the project's cache folder
                (self.path.parent / FORMER_CONTENT_CACHE).unlink(missing_ok=True)
        for number in sorted(stale):
            entries = {k: e for k, e in self.used.items() if shard(k) == number}
            data = {"format": FORMAT, "code": keys.code_digest(), "entries": entries}
            save_private_pickle(self.file(number), data)
        self.entries, self.used, self.changed, self.touched = self.used, {}, False, set()


LOCATION_FIELDS = {"root", "shown_root", "real_root"}
"""Loader fields that say where the folder is, not how it is read: the key holds the
absolute path, and :class:`SeasonReader` re-bases the display paths of a season loaded
from another working folder."""


def loader_settings(loader: Loader) -> str:
    """What a season's loading depends on besides its files: every field of the loader but
    the problems and warnings it collects, this cache and where the folder is."""
    skip = {"problems", "warnings", "reader", *LOCATION_FIELDS}
    assert dataclasses.is_dataclass(loader)
    return repr(
        [
            (f.name, getattr(loader, f.name))
            for f in dataclasses.fields(loader)
            if f.name not in skip
        ]
    )


@dataclass
class SeasonReader:
    """Season folders of one load of content/, through the parse cache.

    An entry's key is the folder's absolute path (the content folder resolved, then the
    season folder's name), so a build from another working folder, or given content/ as an
    absolute path, finds it; the entry keeps the display paths it was loaded with
    (``Season.source``, ``Episode.source``, the warnings' files), and a season found under
    other ones is re-based on the loader's. The value also holds the season's digest
    (``digest_of``, computed once when the folder is parsed).
    """

    cache: RecordCache
    loader: Loader
    digest_of: Callable[[Season], str]
    digests: dict[int, str] = field(default_factory=dict)
    """The digest of each season read, by number."""
    settings: str = field(init=False, default="")
    real_root: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.settings = loader_settings(self.loader)
        self.real_root = str(self.loader.real_root)

    def read(self, name: str, load: Callable[[Path], Season | None]) -> Season | None:
        """Season folder ``name`` of the content folder: ``load(root / name)`` (the loader's
        own), or the season it gave when the folder was last loaded with the same files and
        settings; its warnings are given again either way."""
        loader, cache = self.loader, self.cache
        folder = os.path.join(self.real_root, name)  # noqa: PTH118 (a string: the key)
        shown = f"{loader.shown_root}/{name}"
        signature, newest = scan_folder(folder)
        found = cache.get(folder, self.settings, folder, signature, newest)
        if found is not None:
            season, warnings, shown_then, digest = found
            if shown_then != shown:
                season, warnings = _rebased(season, warnings, shown_then, shown)
            loader.warnings.extend(warnings)
            self.digests[season.number] = digest
            return season  # type: ignore[no-any-return]
        problems, warned = len(loader.problems), len(loader.warnings)
        season = load(loader.root / name)
        if season is None or len(loader.problems) != problems:
            return season
        digest = self.digest_of(season)
        self.digests[season.number] = digest
        if loader_settings(loader) == self.settings:
            given: tuple[Problem, ...] = tuple(loader.warnings[warned:])
            cache.put(folder, self.settings, (season, given, shown, digest))
        return season


def _rebased(
    season: Season, warnings: tuple[Problem, ...], old: str, new: str
) -> tuple[Season, tuple[Problem, ...]]:
    """``season`` and its ``warnings`` with display paths under ``old`` moved to ``new``."""
    old += "/"

    def moved(path: str) -> str:
        return new + "/" + path[len(old) :] if path.startswith(old) else path

    episodes = tuple(e.model_copy(update={"source": moved(e.source)}) for e in season.episodes)
    season = season.model_copy(update={"source": moved(season.source), "episodes": episodes})
    return season, tuple(dataclasses.replace(w, file=moved(w.file)) for w in warnings)


def cached_file(cache_path: Path, file: Path, parse: Callable[[Path], T]) -> T:
    """``parse(file)``, remembered in the cache ``cache_path`` while ``file`` is unchanged
    (the rule above): for a single large file such as famfeeds.lock. ``parse``'s errors
    propagate, and nothing is cached then."""
    cache = RecordCache.open(cache_path)
    key = str(file.absolute())
    signature: Signature = file_key(file, file.name)
    found = cache.get(key, "", file.parent, signature)
    if found is None:
        found = parse(file)
        cache.put(key, "", found)
    save_later(cache_path, cache.save)
    return found


SEALED = b"famfeeds-sealed-1\n"
"""The first bytes of every private pickle; a BLAKE2b digest of the pickle follows, then the
pickle itself: a flipped or missing byte anywhere makes the file a miss, never wrong data."""


def _seal(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def load_private_pickle(path: Path) -> Any:
    """A pickle from ``path`` if it is a regular file of this user that no one else can
    write and its digest matches its bytes; None otherwise, or if it cannot be read."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022:
                return None
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                return None
            blob = handle.read()
        head = len(SEALED)
        if not blob.startswith(SEALED) or _seal(blob[head + 16 :]) != blob[head : head + 16]:
            return None
        return pickle.loads(blob[head + 16 :])
    except Exception:  # a corrupt cache is a miss, whatever unpickling raises
        return None


class _Digesting:
    """A file that feeds what is written to it through a digest on the way."""

    def __init__(self, handle: BinaryIO, digest: Any) -> None:
        self.handle, self.digest = handle, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.handle.write(data)


def save_private_pickle(path: Path, data: Any, *, fsync: bool = False) -> bool:
    """Write a pickle atomically, 0600, in a 0700 folder; False if it could not be written
    (best effort: nothing is raised)."""
    from famfeeds.build.writer import atomic_write

    def write(handle: BinaryIO) -> None:
        """The seal's place, the pickle streamed through its digest, then the seal: the
        pickle is never held whole in memory (the soap's caches are tens of MB)."""
        digest = hashlib.blake2b(digest_size=16)
        handle.write(SEALED + bytes(16))
        pickle.dump(data, _Digesting(handle, digest), protocol=pickle.HIGHEST_PROTOCOL)
        handle.seek(len(SEALED))
        handle.write(digest.digest())

    try:
        _private_folder(path.parent)
        atomic_write(path, write, 0o600, fsync)
    except (OSError, pickle.PicklingError):
        return False
    return True


def _private_folder(folder: Path) -> None:
    """As famfeeds.build.project.private_folder (not imported: it would close an import cycle)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_mode & 0o777 != 0o700:
        folder.chmod(0o700)


def remember_file(cache_path: Path, file: Path, data: bytes, value: Any) -> None:
    """Record that ``file``, just written with ``data``, parses to ``value``, so that the
    next :func:`cached_file` of it needs no parsing (saved with the build's caches). The
    entry is in doubt (the file is young) and keeps the digest of ``data``: if anything else
    writes the file meanwhile, the next load parses it."""
    cache = RecordCache.open(cache_path)
    key = str(file.absolute())
    cache.pending[key] = (file_key(file, file.name), _digest([(file.name, data)]))
    cache.put(key, "", value)
    save_later(cache_path, cache.save)


MEMO_CACHE = "memo.pickle"


@dataclass
class RenderMemo:
    """The evaluator's memo (famfeeds.build.evaluate), kept in the project's cache folder
    between builds.

    Entries are dropped when famfeeds or a library changes (famfeeds.build.keys), and
    when a build does not use them (so the file holds one build's worth)."""

    path: Path
    entries: dict[bytes, object] = field(default_factory=dict)
    used: dict[bytes, object] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def open(cls, path: Path) -> RenderMemo:
        """The memo stored at ``path``; empty if missing, of another code, or untrustworthy."""
        memo = cls(path)
        data = load_private_pickle(path)
        if (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("code") == keys.code_digest()
            and isinstance(data.get("entries"), dict)
        ):
            memo.entries = data["entries"]
        return memo

    def get(self, key: bytes) -> object | None:
        """The entry remembered under ``key``, or None."""
        found = self.entries.get(key)
        if found is not None:
            self.used[key] = found
        return found

    def put(self, key: bytes, value: object) -> None:
        """Remember ``value`` under ``key`` (written by :meth:`save`)."""
        self.used[key] = value
        self.changed = True

    def save(self) -> None:
        """Keep what this build used or made, if that is not what is stored. Best effort."""
        if self.changed or self.used.keys() != self.entries.keys():
            data = {"format": FORMAT, "code": keys.code_digest(), "entries": self.used}
            save_private_pickle(self.path, data)
            self.entries, self.used, self.changed = self.used, {}, False


_deferred = threading.local()


def save_later(path: Path, save: Callable[[], object]) -> None:
    """Have :func:`save_deferred` call ``save`` (the last one given for ``path`` wins)."""
    pending: dict[str, Callable[[], object]] = _deferred.__dict__.setdefault("pending", {})
    pending[str(path)] = save


def save_deferred() -> None:
    """Save the caches this thread's build used, now that its output is written; never
    into a project folder that is gone meanwhile (a save does not create it again)."""
    pending: dict[str, Callable[[], object]] = _deferred.__dict__.setdefault("pending", {})
    saves = list(pending.items())
    pending.clear()
    for path, save in saves:
        if _project_exists(Path(path)):
            save()


def _project_exists(path: Path) -> bool:
    """Whether the folder holding ``path``'s cache folder (a folder named like
    famfeeds.build.project's, else ``path``'s parent) still exists."""
    for folder in path.parents:
        if folder.name.startswith(".famfeeds-cache"):
            return folder.parent.is_dir()
    return path.parent.is_dir()
