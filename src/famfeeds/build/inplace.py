"""Rebuilding a large output in place: replace only the files whose bytes changed.

famfeeds.build.writer swaps a whole new tree in with one rename: the reader of output/ sees the old
build or the new one, never a mix. The price is a staging tree as large as the output, every
file of it written or hard-linked, on every build: about 25 µs a file here, over a second for
a catalogue of 40,000 files, however little changed. From ``PER_FILE_FROM`` files on, a
rebuild takes the other branch the issue allows, replacing file by file:

- **Never a truncated file.** Each changed file is written to a staging folder beside
  output/ (the writer's, on the same filesystem, removed by the next build if this one is
  killed), flushed to disk (``sync``: each file's own fsync, or one syncfs for more than
  ``FSYNC_EACH_UP_TO`` files), then renamed over its old version: a reader, or a build
  killed at any moment, finds the old bytes or the new, never part of a file.
- **Killed, then repaired completely by the next build.** Before the first file changes,
  the manifest is rewritten to hold both the old and the new names (so a half-added file is
  never taken for one of the user's own) and a journal beside the index, flushed to disk,
  names every file about to change (so the next build rewrites them all, whatever state they
  were left in; the folders they are in show a new stamp anyway, see below). Then
  famfeeds.lock is saved (never older than what is published), the new files appear before
  the changed ones (a page is never published before what it links to), stale files go,
  and the manifest and index are written last.
- **Whole-tree swap otherwise.** The first build, a build after the index was lost or the
  manifest was touched, and whatever would make the writer refuse (a user's file where a
  built one goes, a folder in the way, a symbolic link among the folders written into, a
  read-only folder, another filesystem) go through famfeeds.build.writer, which swaps or refuses
  by its own rules. So do outputs of fewer than ``PER_FILE_FROM`` files, for which a swap
  costs little and keeps the stronger promise.
- **Nothing changed, nothing written.** A rebuild that finds every file as the last build
  left it writes no file, and neither the manifest nor the index.

Which files are unchanged is decided without reading them. The index (kept in the project's
cache folder, one per output folder) records each built file's inode and a digest of its
bytes (famfeeds.build.evaluate.digest_of), the user's files and links, and each folder's
*stamp*: its inode, mtime and ctime. Creating, deleting or renaming anything in a folder
changes its mtime and ctime (and nobody can set a ctime back), so a folder whose stamp is
unchanged holds exactly what the index says, and one ``lstat`` of it replaces a listing. A
folder whose stamp changed is listed afresh. A stamp is trusted only if its ctime is older
than the filesystem's clock when the build began (a folder changed within the same clock
tick could keep its stamp), and never for a folder this build changed: those are listed by
the next build. A file is skipped when its new bytes have the recorded digest and its
folder shows the recorded inode. So a file deleted, or replaced by a rename (as editors
save), is noticed and rebuilt; a file edited in place by hand keeps its inode and is
repaired when its content changes next, or by deleting it (or the index).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import shutil
import stat
import tempfile
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from famfeeds.build.evaluate import DIGEST_SIZE, file_digests
from famfeeds.build.record_cache import load_private_pickle, save_private_pickle
from famfeeds.build.writer import (
    MANIFEST,
    WriteReport,
    flush_folder,
    manifest_text,
    new_staging_folder,
    read_manifest,
    remove_leftovers,
)
from famfeeds.errors import FamfeedsError, display_path

PER_FILE_FROM = 2000
"""Outputs of this many files or more are rebuilt in place."""
FSYNC_EACH_UP_TO = 64
"""Up to this many changed files are flushed one by one (fsync); more, by one syncfs."""
FORMAT = 3
INDEX_DIR = "outputs"

Stamp = tuple[int, int, int]
"""A folder's inode, mtime_ns and ctime_ns."""
IN_DOUBT: Stamp = (0, 0, 0)
"""The stamp recorded for a folder that the next build must list."""


@dataclass
class Wanted:
    """The build's files as the index compares them."""

    digests: dict[str, bytes]
    names: str
    """Their names, NUL-joined, in order."""
    blob: bytes
    """Their digests, joined in the same order."""

    @classmethod
    def of(cls, files: Mapping[str, bytes]) -> Wanted:
        digests = file_digests(files)
        return cls(digests, "\0".join(digests), b"".join(digests.values()))


def index_path(cache: Path, target: Path) -> Path:
    """The index of the output folder ``target`` (resolved) in the cache folder ``cache``."""
    key = hashlib.blake2b(os.fsencode(target), digest_size=8).hexdigest()
    return cache / INDEX_DIR / f"{key}.pickle"


@dataclass
class Index:
    """What the last build left in an output folder, as compact as it can be read.

    Names are kept joined by NUL (no file name holds one), digests and inodes as one bytes
    and one array in the same order: loading takes a few objects, not one per file."""

    target: str
    manifest: tuple[int, int, int, int]
    """inode, size, mtime_ns and ctime_ns of the manifest it wrote."""
    manifest_settled: bool
    """Whether the manifest's ctime was older than the clock when the index was taken (if
    not, the next build reads the manifest to check it)."""
    names: str
    """The built files, NUL-joined, in the build's order."""
    digests: bytes
    """Their digests, DIGEST_SIZE bytes each."""
    inodes: array[int]
    """Their inodes."""
    folders: str
    """Every folder of the output ("" is the output itself), NUL-joined, parents first."""
    stamps: list[Stamp]
    """The folders' stamps, IN_DOUBT for those the next build must list."""
    others: dict[str, int] = field(default_factory=dict)
    """Every other file in the output (the user's, or ours forgotten), but the manifest: its
    inode."""
    links: frozenset[str] = frozenset()
    """Every symbolic link in the output."""
    ours: str | None = None
    """The manifest's names, NUL-joined, where they are not ``names`` (after a journal)."""
    forgotten: frozenset[str] = frozenset()
    """Built files whose entry must not be trusted (about to change when it was saved)."""
    token: bytes = b""
    """Random, new with each index: a journal applies to the index of its token only."""

    def name_list(self) -> list[str]:
        return self.names.split("\0") if self.names else []

    def folder_list(self) -> list[str]:
        return self.folders.split("\0")

    def our_names(self) -> set[str]:
        """The names the manifest lists."""
        if self.ours is None:
            return set(self.name_list())
        return set(self.ours.split("\0")) if self.ours else set()

    def consistent(self) -> bool:
        count = self.names.count("\0") + 1 if self.names else 0
        return (
            len(self.digests) == count * DIGEST_SIZE
            and len(self.inodes) == count
            and len(self.stamps) == self.folders.count("\0") + 1
        )


@dataclass(frozen=True)
class Journal:
    """What a rebuild in place changes in its index before it changes anything in the output,
    kept (durably) beside the index until the new index is saved."""

    token: bytes
    """The token of the index it amends."""
    manifest: tuple[int, int, int, int]
    """The manifest listing both the old and the new names, if one was written."""
    ours: str | None
    forgotten: frozenset[str]
    """Every file about to change: the next build rewrites it (or deletes it) whatever it
    finds."""


def journal_path(index_file: Path) -> Path:
    """Where the journal of an index is kept."""
    return index_file.with_suffix(".journal")


def manifest_key(target: Path) -> tuple[int, int, int, int] | None:
    """The manifest's inode, size, mtime_ns and ctime_ns; None if it is not a plain file."""
    try:
        info = (target / MANIFEST).lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def load_index(path: Path, target: Path) -> Index | None:
    """The index at ``path`` if it describes ``target`` as it is now (its manifest is the
    one the index recorded); else None."""
    data = load_private_pickle(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    index = data.get("index")
    if not isinstance(index, Index) or index.target != str(target) or not index.consistent():
        return None
    journal = load_private_pickle(journal_path(path))
    if isinstance(journal, dict) and journal.get("format") == FORMAT:
        entry = journal.get("journal")
        if isinstance(entry, Journal) and entry.token == index.token:
            index = dataclasses.replace(
                index,
                manifest=entry.manifest,
                manifest_settled=False,
                ours=entry.ours,
                forgotten=index.forgotten | entry.forgotten,
            )
    if index.manifest != manifest_key(target):
        return None
    return index


def save_index(path: Path, index: Index) -> bool:
    """Write the index, and drop the journal of the one it replaces; if it cannot be
    written, forget both (the next build swaps) and return False."""
    if not save_private_pickle(path, {"format": FORMAT, "index": index}):
        forget_index(path)
        return False
    with contextlib.suppress(OSError):
        journal_path(path).unlink(missing_ok=True)
    return True


def save_journal(path: Path, journal: Journal) -> bool:
    """Write the journal of the index at ``path``, flushed to disk; False if it could not be
    written."""
    return save_private_pickle(
        journal_path(path), {"format": FORMAT, "journal": journal}, fsync=True
    )


def forget_index(path: Path) -> None:
    """Delete an index (and its journal), so that the next build swaps."""
    for each in (path, journal_path(path)):
        with contextlib.suppress(OSError):
            each.unlink(missing_ok=True)


def filesystem_clock(target: Path) -> int | None:
    """The time of ``target``'s filesystem now, as it stamps files (ctime_ns of a folder
    made beside it for the purpose); None if nothing can be made there."""
    try:
        probe = new_staging_folder(target)
    except OSError:
        return None
    try:
        return os.lstat(probe).st_ctime_ns
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def _stamp(info: os.stat_result) -> Stamp:
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def _stamp_of(lstat: Callable[[str], os.stat_result], path: str) -> Stamp:
    try:
        return _stamp(lstat(path))
    except OSError:
        return IN_DOUBT


def _parent(name: str) -> str:
    return name.rpartition("/")[0]


@dataclass
class Listing:
    """Folders listed afresh (paths relative to the output, in POSIX form)."""

    stamps: dict[str, Stamp] = field(default_factory=dict)
    """Each folder listed: its stamp, taken before the listing."""
    files: dict[str, int] = field(default_factory=dict)
    """Regular files (and anything that is neither a folder nor a link): inode."""
    links: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    """Folders seen in the listings (listed themselves, unless ``known``)."""


def list_folders(target: Path, pending: list[str], listing: Listing, known: set[str]) -> None:
    """List each folder of ``pending`` and, recursively, every folder in it that is not
    ``known``, without following links: stamp first (so that a change during the listing
    shows in the next stamp), then the names and inodes from the listing (no stat calls)."""
    root = str(target)
    while pending:
        relative = pending.pop()
        path = f"{root}/{relative}" if relative else root
        listing.stamps[relative] = _stamp(os.lstat(path))
        with os.scandir(path) as entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_symlink():
                    listing.links.add(name)
                elif entry.is_dir(follow_symlinks=False):
                    listing.folders.add(name)
                    if name not in known:
                        pending.append(name)
                elif name != MANIFEST:
                    listing.files[name] = entry.inode()


@dataclass
class Disk:
    """The output as it is now: the index's picture, with the folders that changed since
    listed afresh."""

    entries: dict[str, int]
    """Built files of the last build still on disk: inode."""
    moved: set[str]
    """Built files of the last build that are gone, or at another inode."""
    others: dict[str, int]
    links: set[str]
    folders: dict[str, Stamp]
    """Every folder, and the stamp to record for it."""
    changed: set[str] = field(default_factory=set)
    """Files in ``entries`` whose inode is not the index's (or that it did not hold)."""
    recorded: list[str] | None = None
    """The index's names (Index.name_list), where they were split already."""


def survey(index: Index, fd: int) -> tuple[list[Stamp], list[str]]:
    """Stamp every folder the index knows (``fd``: the output folder, open); and which ones
    must be listed (changed since, or in doubt)."""
    folders = index.folder_list()
    paths = [folder or "." for folder in folders]
    lstat = functools.partial(os.lstat, dir_fd=fd)
    try:  # the hot loop of a rebuild: one lstat a folder, in C as far as it goes
        stamps = [(i.st_ino, i.st_mtime_ns, i.st_ctime_ns) for i in map(lstat, paths)]
    except OSError:  # a folder is gone
        stamps = [_stamp_of(lstat, path) for path in paths]
    if stamps == index.stamps and IN_DOUBT not in stamps:
        return stamps, []
    doubt = [f for f, new, old in zip(folders, stamps, index.stamps, strict=True) if new != old]
    doubt += [f for f, old in zip(folders, index.stamps, strict=True) if old == IN_DOUBT]
    return stamps, sorted(set(doubt))


def look(target: Path, index: Index, stamps: list[Stamp], doubt: list[str]) -> Disk | None:
    """The output as it is now (``stamps`` and ``doubt`` from :func:`survey`); None if a
    folder of the index became a file or a link, or cannot be read (the writer decides)."""
    names = index.name_list()
    entries = dict(zip(names, index.inodes, strict=True))
    known = index.folder_list()
    folders = dict(zip(known, stamps, strict=True))
    if not doubt:
        return Disk(entries, set(), dict(index.others), set(index.links), folders, recorded=names)
    listing = Listing()
    gone: set[str] = set()
    known_set = set(known)
    try:
        for folder in doubt:  # parents first
            up = _parent(folder)
            if folder and (up in gone or (up in listing.stamps and folder not in listing.folders)):
                gone.add(folder)
                del folders[folder]
                continue
            list_folders(target, [folder], listing, known_set)
    except OSError:
        return None
    if not known_set.isdisjoint(listing.files) or not known_set.isdisjoint(listing.links):
        return None  # a folder of the last build is now a file or a link
    changed = gone | listing.stamps.keys()
    moved = set()
    for name in names:
        if _parent(name) in changed:
            inode = listing.files.get(name)
            if inode is None:
                del entries[name]
                moved.add(name)
            elif inode != entries[name]:
                entries[name] = inode
                moved.add(name)
    others = {n: i for n, i in index.others.items() if _parent(n) not in changed}
    others.update((n, i) for n, i in listing.files.items() if n not in entries)
    links = {n for n in index.links if _parent(n) not in changed} | listing.links
    folders.update(listing.stamps)
    return Disk(entries, moved, others, links, folders, moved.intersection(entries), names)


def _differing(new: bytes, old: bytes, size: int = DIGEST_SIZE) -> list[int]:
    """Positions of the ``size``-byte items that differ between two equally long blobs,
    found by halving (a few comparisons of long runs when few differ)."""
    found: list[int] = []
    pending = [(0, len(new) // size)]
    while pending:
        lo, hi = pending.pop()
        if new[lo * size : hi * size] == old[lo * size : hi * size]:
            continue
        if hi - lo <= 8:
            found += [
                i
                for i in range(lo, hi)
                if new[i * size : (i + 1) * size] != old[i * size : (i + 1) * size]
            ]
            continue
        mid = (lo + hi) // 2
        pending += [(mid, hi), (lo, mid)]
    return sorted(found)


@dataclass
class Plan:
    """What an in-place rebuild changes."""

    write: list[str]
    """Names whose bytes change or that are new, new ones first."""
    delete: list[str]
    replaced: list[str]
    kept: list[str]


def plan_update(
    want: Wanted,
    index: Index,
    disk: Disk,
    ours: set[str] | None,
    overwrite: bool,
) -> Plan | None:
    """Which files change (``ours``: the manifest's names, None when they are the build's);
    None where the writer's own rules must decide (a refusal, or a case its swap handles
    better)."""
    digests = want.digests
    if want.names == index.names and len(want.blob) == len(index.digests):
        names = list(digests)
        differ = [names[i] for i in _differing(want.blob, index.digests)]
    else:
        old = index.digests
        recorded = {
            n: old[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE] for i, n in enumerate(index.name_list())
        }
        differ = [n for n, d in digests.items() if recorded.get(n) != d]
    candidates = set(differ)
    candidates.update(n for n in index.forgotten if n in digests)
    candidates.update(n for n in disk.moved if n in digests)
    new, changed, replaced = [], [], []
    for name in candidates:
        if name in disk.folders or name in disk.links:
            return None  # a folder or a link where a file goes: the writer decides
        on_disk = disk.entries.get(name, disk.others.get(name))
        if ours is not None and name not in ours and on_disk is not None:
            if not overwrite:
                return None  # the user's file: the writer refuses, with its message
            replaced.append(name)
        if on_disk is None:
            new.append(name)
        else:
            changed.append(name)
    for name in new:  # the folders a new file goes into: none may be a file or a link
        folder = _parent(name)
        while folder and folder not in disk.folders:
            if folder in disk.others or folder in disk.links:
                return None
            folder = _parent(folder)
    stale = ours.difference(digests) if ours is not None else ()
    delete = sorted(n for n in stale if n in disk.entries or n in disk.others)
    mine = ours or ()
    kept = [n for n in (*disk.others, *disk.links) if n not in mine and n not in digests]
    return Plan(sorted(new) + sorted(changed), delete, sorted(replaced), sorted(kept))


def _folders_ok(target: Path, names: list[str], device: int) -> bool:
    """Every existing folder that a name is written into is writable and on ``device``."""
    seen: set[str] = set()
    root = str(target)
    for name in names:
        folder = _parent(name)
        while folder not in seen:
            seen.add(folder)
            path = f"{root}/{folder}" if folder else root
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                folder = _parent(folder)
                continue
            except OSError:
                return False
            if not stat.S_ISDIR(info.st_mode) or info.st_dev != device:
                return False
            if info.st_mode & 0o222 == 0 or not os.access(path, os.W_OK):
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
    caller holds the writer's lock (famfeeds.build.writer.hold) on ``target``'s folder."""
    if len(files) < PER_FILE_FROM or not target.is_dir():
        return None
    remove_leftovers(target)  # what killed builds left beside the output, this one's too
    clock = filesystem_clock(target)  # before anything in the output is looked at
    index = load_index(index_file, target)
    if index is None or clock is None:
        return None
    try:
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        stamps, doubt = survey(index, fd)
        device = os.fstat(fd).st_dev
    finally:
        os.close(fd)
    settled = index.manifest_settled
    if not settled:  # written within a clock tick of the index: read it to be sure
        if read_manifest(target) != index.our_names():
            return None
        settled = index.manifest[3] < clock
    want = Wanted.of(files)
    same = want.names == index.names and index.ours is None  # the manifest lists the build's
    if (
        same
        and not doubt
        and settled == index.manifest_settled
        and not index.forgotten
        and want.blob == index.digests
    ):  # as the last build left it: nothing to write, nothing to save
        if before_swap is not None:
            before_swap()
        kept = [n for n in (*index.others, *index.links) if n not in want.digests]
        return WriteReport(tuple(sorted(want.digests)), tuple(sorted(kept)), ())
    disk = look(target, index, stamps, doubt)
    if disk is None:
        return None
    ours = None if same else index.our_names()
    plan = plan_update(want, index, disk, ours, overwrite)
    if plan is None or not _folders_ok(target, plan.write, device):
        return None
    report = WriteReport(tuple(sorted(want.digests)), tuple(plan.kept), tuple(plan.replaced))
    both = None if ours is None or ours.issuperset(want.digests) else ours.union(want.digests)
    if not plan.write and not plan.delete and (ours is None or ours == want.digests.keys()):
        if before_swap is not None:
            before_swap()
        # Record what was listed, so that the next build need not list it again.
        after = _next_index(target, want, index, disk, set(), index.manifest, settled, clock)
        if dataclasses.replace(after, token=index.token) != index:
            save_index(index_file, after)
        return report
    try:
        staging = new_staging_folder(target)
    except OSError:
        return None
    # The journal: every name that may appear is ours (the manifest), and every file about
    # to change is named beside the index, both on disk before anything in the output moves.
    try:
        if both is not None:
            _put(staging, target / MANIFEST, manifest_text(both).encode("utf-8"))
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return None
    journal = Journal(
        index.token,
        manifest_key(target) or (0, 0, 0, 0),
        "\0".join(sorted(both)) if both is not None else index.ours,
        frozenset(plan.write) | frozenset(plan.delete),
    )
    if not save_journal(index_file, journal):
        forget_index(index_file)
        shutil.rmtree(staging, ignore_errors=True)
        return None
    try:
        touched = _apply(files, target, plan, disk, staging, before_swap, sync)
        if ours is not None and ours != want.digests.keys():
            _put(staging, target / MANIFEST, manifest_text(want.digests).encode("utf-8"))
    except OSError as exc:
        raise FamfeedsError(
            f"cannot update {display_path(output)}: {exc.strerror or exc}. The files written "
            "so far are complete; the next build finishes the update."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    key = manifest_key(target)
    if key is None:
        forget_index(index_file)
    else:
        settled = key == index.manifest and settled
        after = _next_index(target, want, index, disk, touched, key, settled, clock)
        save_index(index_file, after)
    return report


def _apply(
    files: Mapping[str, bytes],
    target: Path,
    plan: Plan,
    disk: Disk,
    staging: Path,
    before_swap: Callable[[], object] | None,
    sync: bool,
) -> set[str]:
    """After the journal: the lock, then the files; ``disk`` is brought up to date. The
    folders changed (created, written into, emptied)."""
    if before_swap is not None:
        before_swap()
    # Stage the new bytes beside the output, on its filesystem, and flush them.
    one_by_one = sync and len(plan.write) <= FSYNC_EACH_UP_TO
    mode = 0o666 & ~_umask()
    staged = []
    for number, name in enumerate(plan.write):
        path = f"{staging}/{number}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            with open(fd, "wb", closefd=False) as handle:
                handle.write(files[name])
            if one_by_one:
                os.fsync(fd)
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        staged.append((name, path, inode))
    if sync and not one_by_one:
        flush_folder(staging)
    # Rename them into place (new files first), then remove stale files.
    root = str(target)
    touched: set[str] = set()
    for name, path, inode in staged:
        folder = _parent(name)
        if folder and folder not in disk.folders:
            _make_folders(root, folder, disk, touched)
        os.replace(path, f"{root}/{name}")  # noqa: PTH105 (strings: no Path a file)
        touched.add(folder)
        disk.entries[name] = inode
        disk.changed.add(name)
        disk.others.pop(name, None)
    for name in plan.delete:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{root}/{name}")  # noqa: PTH108 (strings: no Path a file)
        disk.entries.pop(name, None)
        disk.others.pop(name, None)
        _prune(root, _parent(name), disk, touched)
    return touched


def _make_folders(root: str, folder: str, disk: Disk, touched: set[str]) -> None:
    """Create ``folder`` and the missing folders leading to it, as mkdir -p would."""
    missing = []
    while folder and folder not in disk.folders:
        missing.append(folder)
        folder = _parent(folder)
    touched.add(folder)
    for name in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(f"{root}/{name}", 0o777)  # noqa: PTH102 (strings: no Path a file)
        disk.folders[name] = IN_DOUBT
        touched.add(name)


def _prune(root: str, folder: str, disk: Disk, touched: set[str]) -> None:
    """Remove folders that deleting a stale file left empty (the swap leaves none either)."""
    touched.add(folder)
    while folder:
        try:
            os.rmdir(f"{root}/{folder}")  # noqa: PTH106 (strings: no Path a file)
        except OSError:
            return
        disk.folders.pop(folder, None)
        folder = _parent(folder)
        touched.add(folder)


def _next_index(
    target: Path,
    want: Wanted,
    index: Index | None,
    disk: Disk,
    touched: set[str],
    manifest: tuple[int, int, int, int],
    settled: bool,
    clock: int,
) -> Index:
    """The index of the output as ``disk`` now describes it, holding the build's files
    (``index``: the previous one, if any): the folders ``touched`` and those stamped within
    the clock's tick are in doubt."""
    folders = sorted(disk.folders)
    stamps = [
        stamp if stamp[2] < clock and folder not in touched else IN_DOUBT
        for folder, stamp in zip(folders, map(disk.folders.__getitem__, folders), strict=True)
    ]
    return Index(
        target=str(target),
        manifest=manifest,
        manifest_settled=settled,
        names=want.names,
        digests=want.blob,
        inodes=_inodes(want, index, disk),
        folders="\0".join(folders),
        stamps=stamps,
        others={n: i for n, i in disk.others.items() if n not in want.digests},
        links=frozenset(disk.links),
        token=os.urandom(8),
    )


def _inodes(want: Wanted, index: Index | None, disk: Disk) -> array[int]:
    """The inode of each of the build's files, in order, as ``disk`` holds them: the
    previous index's array with the few that changed put right, where it can be."""
    if index is None or want.names != index.names or len(disk.changed) > 64:
        return array("Q", map(disk.entries.__getitem__, want.digests))
    inodes = array("Q", index.inodes)
    names = disk.recorded
    for name in disk.changed:
        if name in want.digests:
            names = names or index.name_list()
            inodes[names.index(name)] = disk.entries[name]
    return inodes


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


def record_index(files: Mapping[str, bytes], target: Path, index_file: Path) -> None:
    """After a whole-tree swap, remember what it wrote (only for outputs large enough to be
    rebuilt in place; a smaller one forgets any index). Best effort."""
    forget_index(index_file)
    if len(files) < PER_FILE_FROM:
        return
    clock = filesystem_clock(target)
    manifest = manifest_key(target)
    if clock is None or manifest is None:
        return
    listing = Listing()
    try:
        list_folders(target, [""], listing, set())
    except OSError:
        return
    want = Wanted.of(files)
    if any(n not in listing.files for n in want.digests):
        return  # gone already: the next build swaps
    entries = {n: listing.files[n] for n in want.digests}
    others = {n: i for n, i in listing.files.items() if n not in entries}
    disk = Disk(entries, set(), others, listing.links, listing.stamps)
    settled = manifest[3] < clock
    save_index(index_file, _next_index(target, want, None, disk, set(), manifest, settled, clock))
