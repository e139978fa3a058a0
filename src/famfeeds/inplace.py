"""Rebuilding a large output in place: replace only the files whose bytes changed.

famfeeds.writer swaps a whole new tree in with one rename: the reader of output/ sees the old
build or the new one, never a mix. The price is a staging tree as large as the output, every
file of it written or hard-linked, on every build: about 25 µs a file here, over a second for
a catalogue of 40,000 files, however little changed. From ``PER_FILE_FROM`` files on, a
rebuild takes the other branch the issue allows, replacing file by file:

- **Never a truncated file.** Each changed file is written to a staging folder beside
  output/ (the writer's, on the same filesystem, removed by the next build if this one is
  killed), flushed to disk (``sync``), then renamed over its old version: a reader, or a
  build killed at any moment, finds the old bytes or the new, never part of a file.
- **Killed, then repaired completely by the next build.** Before the first file changes,
  the manifest is rewritten to hold both the old and the new names (so a half-added file is
  never taken for one of the user's own) and the index forgets every file about to change
  (so the next build rewrites them all, whatever state they were left in). Then
  famfeeds.lock is saved (never older than what is published), the new files appear before
  the changed ones (a page is never published before what it links to), stale files go,
  and the manifest and index are written last.
- **Whole-tree swap otherwise.** The first build, a build after the index was lost or the
  manifest was touched, and whatever would make the writer refuse (a user's file where a
  built one goes, a folder in the way, a symbolic link among the folders written into, a
  read-only folder, another filesystem) go through famfeeds.writer, which swaps or refuses
  by its own rules. So do outputs of fewer than ``PER_FILE_FROM`` files, for which a swap
  costs little and keeps the stronger promise.

Which files are unchanged is decided without reading them: the index (kept in the project's
cache folder, one per output folder) records each built file's inode and a digest of its
bytes (famfeeds.render.files.digest_of). A file is skipped when the new bytes have the
recorded digest and a listing of its folder shows the recorded inode. A file deleted, or
replaced by a rename (as editors save), is noticed and rebuilt; a file edited in place by
hand keeps its inode and is repaired when its content changes next, or by deleting it (or
the index).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from famfeeds.errors import FamfeedsError, display_path
from famfeeds.record_cache import load_private_pickle, save_private_pickle
from famfeeds.render.files import FileSet, digest_of
from famfeeds.writer import (
    _NEW,
    MANIFEST,
    WriteReport,
    _prefix,
    _remove_leftovers,
    flush_folder,
)

PER_FILE_FROM = 2000
"""Outputs of this many files or more are rebuilt in place."""
FORMAT = 2
INDEX_DIR = "outputs"
MANIFEST_LIMIT = 64 * 1024 * 1024


def file_digest(files: Mapping[str, bytes], name: str) -> bytes:
    """The digest of ``files[name]`` (famfeeds.render.files.digest_of), from the mapping
    when it knows it without reading the bytes (a FileSet of stored newsletter files)."""
    if isinstance(files, FileSet):
        return files.digest(name)
    return digest_of(files[name])


def index_path(cache: Path, target: Path) -> Path:
    """The index of the output folder ``target`` (resolved) in the cache folder ``cache``."""
    key = hashlib.blake2b(os.fsencode(target), digest_size=8).hexdigest()
    return cache / INDEX_DIR / f"{key}.pickle"


@dataclass
class Index:
    """What the last build left in an output folder."""

    target: str
    manifest: tuple[int, int, int]
    """inode, size and mtime_ns of the manifest it wrote."""
    entries: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    """Built files: inode, digest."""


def _manifest_key(target: Path) -> tuple[int, int, int] | None:
    try:
        info = (target / MANIFEST).lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def load_index(path: Path, target: Path) -> Index | None:
    """The index at ``path`` if it describes ``target`` as it is now (its manifest is the
    one the index recorded); else None."""
    data = load_private_pickle(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    index = data.get("index")
    if not isinstance(index, Index) or index.target != str(target):
        return None
    if index.manifest != _manifest_key(target):
        return None
    return index


def save_index(path: Path, index: Index, *, durable: bool = False) -> bool:
    """Write the index (``durable``: flushed to disk); False if it could not be written."""
    return save_private_pickle(path, {"format": FORMAT, "index": index}, fsync=durable)


def forget_index(path: Path) -> None:
    """Delete an index, so that the next build swaps."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@dataclass
class Listing:
    """The output folder as a listing shows it (no stat calls): paths relative to it."""

    files: dict[str, int] = field(default_factory=dict)
    """Regular files (and anything that is neither a folder nor a link): inode."""
    links: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)


def list_output(target: Path) -> Listing:
    """Walk ``target`` without following links, taking names and inodes from the listings."""
    listing = Listing()
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(target / relative if relative else target) as entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_symlink():
                    listing.links.add(name)
                elif entry.is_dir(follow_symlinks=False):
                    listing.folders.add(name)
                    pending.append(name)
                else:
                    listing.files[name] = entry.inode()
    return listing


def read_manifest(target: Path) -> set[str] | None:
    """The names in the manifest, or None if it is missing or not a plain file of sane size."""
    path = target / MANIFEST
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MANIFEST_LIMIT:
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return {line for line in text.splitlines() if line}


def manifest_text(names: set[str]) -> str:
    """The manifest's format (famfeeds.writer's): one name a line, sorted."""
    return "".join(n + "\n" for n in sorted(names))


@dataclass
class Plan:
    """What an in-place rebuild changes."""

    write: list[str]
    """Names whose bytes change or that are new, new ones first."""
    delete: list[str]
    unchanged: dict[str, tuple[int, bytes]]
    replaced: list[str]
    kept: list[str]
    digests: dict[str, bytes]


def plan_update(
    files: Mapping[str, bytes],
    target: Path,
    index: Index,
    ours: set[str],
    listing: Listing,
    overwrite: bool,
) -> Plan | None:
    """Which files change; None where the writer's own rules must decide (a refusal, or a
    case its swap handles better)."""
    new, changed, unchanged, digests = [], [], {}, {}
    replaced = []
    folders = set()
    for name in files:
        cut = name.rfind("/")
        while cut > 0 and name[:cut] not in folders:
            folders.add(name[:cut])
            cut = name.rfind("/", 0, cut)
    if any(f in listing.files or f in listing.links for f in folders):
        return None  # a file or a link where a folder goes: the writer decides
    for name in files:
        if name in listing.folders or name in listing.links:
            return None  # a folder or a link where a file goes: the writer decides
        on_disk = listing.files.get(name)
        if name not in ours and on_disk is not None:
            if not overwrite:
                return None  # the user's file: the writer refuses, with its message
            replaced.append(name)
        digest = file_digest(files, name)
        digests[name] = digest
        recorded = index.entries.get(name)
        if on_disk is None:
            new.append(name)
        elif recorded is not None and recorded == (on_disk, digest) and name in ours:
            unchanged[name] = recorded
        else:
            changed.append(name)
    delete = sorted(n for n in ours if n not in files and n in listing.files)
    built = set(files)
    kept = sorted(n for n in (*listing.files, *listing.links) if n not in ours and n not in built)
    kept = [n for n in kept if n != MANIFEST]
    return Plan(sorted(new) + sorted(changed), delete, unchanged, sorted(replaced), kept, digests)


def _folders_ok(target: Path, names: list[str], device: int) -> bool:
    """Every existing folder that a name is written into is writable and on ``device``."""
    seen: set[Path] = set()
    for name in names:
        folder = (target / name).parent
        while folder not in seen:
            seen.add(folder)
            try:
                info = folder.lstat()
            except FileNotFoundError:
                folder = folder.parent
                continue
            except OSError:
                return False
            if not stat.S_ISDIR(info.st_mode) or info.st_dev != device:
                return False
            if info.st_mode & 0o222 == 0 or not os.access(folder, os.W_OK):
                return False
            break
    return True


def update_in_place(
    files: Mapping[str, bytes],
    target: Path,
    output: Path,
    index_file: Path,
    *,
    overwrite: bool = False,
    before_swap: Callable[[], object] | None = None,
    sync: bool = True,
) -> WriteReport | None:
    """Bring ``target`` (the resolved output) up to ``files`` by replacing only what
    changed, as the module says; None when the whole-tree swap must do it instead. The
    caller holds the writer's lock (famfeeds.writer.hold) on ``target``'s folder."""
    if len(files) < PER_FILE_FROM or not target.is_dir():
        return None
    _remove_leftovers(target)  # what killed builds left beside the output, this one's too
    index = load_index(index_file, target)
    ours = read_manifest(target)
    if index is None or ours is None:
        return None
    try:
        listing = list_output(target)
    except OSError:
        return None
    plan = plan_update(files, target, index, ours, listing, overwrite)
    if plan is None or not _folders_ok(target, plan.write, target.stat().st_dev):
        return None
    names = set(files)
    if not plan.write and not plan.delete and ours == names:
        if before_swap is not None:
            before_swap()
        return WriteReport(tuple(sorted(names)), tuple(plan.kept), ())
    try:
        staging = Path(tempfile.mkdtemp(prefix=_prefix(target) + _NEW, dir=target.parent))
    except OSError:
        return None
    # The journal: every name that may appear is ours; every file about to change is
    # forgotten by the index, durably, before anything in the output moves.
    both = ours | names
    try:
        if both != ours:
            _put(staging, target / MANIFEST, manifest_text(both).encode("utf-8"))
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return None
    journal = Index(str(target), _manifest_key(target) or (0, 0, 0), dict(plan.unchanged))
    if not save_index(index_file, journal, durable=True):
        forget_index(index_file)
        shutil.rmtree(staging, ignore_errors=True)
        return None
    try:
        _apply(files, target, index_file, both, plan, staging, before_swap, sync)
    except OSError as exc:
        raise FamfeedsError(
            f"cannot update {display_path(output)}: {exc.strerror or exc}. The files written "
            "so far are complete; the next build finishes the update."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return WriteReport(tuple(sorted(names)), tuple(plan.kept), tuple(plan.replaced))


def _apply(
    files: Mapping[str, bytes],
    target: Path,
    index_file: Path,
    both: set[str],
    plan: Plan,
    staging: Path,
    before_swap: Callable[[], object] | None,
    sync: bool,
) -> None:
    """After the journal: the lock, then the files, then the manifest and the index."""
    names = set(files)
    if before_swap is not None:
        before_swap()
    # Stage the new bytes beside the output, on its filesystem, and flush them.
    staged = []
    for number, name in enumerate(plan.write):
        path = staging / str(number)
        path.write_bytes(files[name])
        staged.append((name, path))
    if sync:
        flush_folder(staging)
    # Rename them into place (new files first), then remove stale files.
    umask = _umask()
    entries = dict(plan.unchanged)
    for name, path in staged:
        destination = target / name
        if not destination.parent.is_dir():
            destination.parent.mkdir(parents=True, mode=0o777 & ~umask)
        path.replace(destination)
        entries[name] = (destination.stat().st_ino, plan.digests[name])
    for name in plan.delete:
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
        _prune(target, PurePosixPath(name).parent)
    # The manifest and the index of the new build.
    if both != names:
        _put(staging, target / MANIFEST, manifest_text(names).encode("utf-8"))
    save_index(index_file, Index(str(target), _manifest_key(target) or (0, 0, 0), entries))


def _put(staging: Path, path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, staged outside the output (never a
    partial file inside it), flushed to disk first."""
    fd, name = tempfile.mkstemp(dir=staging)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    Path(name).chmod(0o666 & ~_umask())
    Path(name).replace(path)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _prune(target: Path, folder: PurePosixPath) -> None:
    """Remove folders that deleting a stale file left empty (the swap leaves none either)."""
    while folder.as_posix() != ".":
        try:
            (target / folder).rmdir()
        except OSError:
            return
        folder = folder.parent


def record_index(files: Mapping[str, bytes], target: Path, index_file: Path) -> None:
    """After a whole-tree swap, remember what it wrote (only for outputs large enough to be
    rebuilt in place; a smaller one forgets any index). Best effort."""
    if len(files) < PER_FILE_FROM:
        forget_index(index_file)
        return
    manifest = _manifest_key(target)
    try:
        listing = list_output(target)
    except OSError:
        forget_index(index_file)
        return
    if manifest is None:
        forget_index(index_file)
        return
    entries = {
        name: (listing.files[name], file_digest(files, name))
        for name in files
        if name in listing.files
    }
    save_index(index_file, Index(str(target), manifest, entries))
