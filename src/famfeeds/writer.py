"""Write a build into output/ in one step: all of it or, on any failure, none of it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from famfeeds.errors import FamfeedsError, display_path

MANIFEST = ".famfeeds-manifest"
"""Lists the files the last build made, so the next one can tell them from the user's own."""

_RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class WriteReport:
    """What a write did."""

    written: tuple[str, ...]
    kept: tuple[str, ...]
    """Files in output/ that famfeeds did not make, carried over untouched."""
    replaced: tuple[str, ...]
    """Files famfeeds did not make, whose names a built file now takes."""


def write_output(files: Mapping[str, bytes], output: Path) -> WriteReport:
    """Replace the files famfeeds made in ``output`` with ``files``, atomically.

    The build is written to a staging folder beside ``output`` and swapped in
    with one rename. Files in ``output`` that the previous build did not make
    are carried over. If anything fails, or the user presses Ctrl-C, ``output``
    is left exactly as it was.
    """
    for name in files:
        _check_name(name)
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.famfeeds-", dir=output.parent))
    try:
        ours = _previous_manifest(output)
        for name, data in sorted(files.items()):
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not (name in ours and _link_if_same(output / name, target, data)):
                target.write_bytes(data)
        names = sorted(files)
        (staging / MANIFEST).write_text("".join(n + "\n" for n in names), encoding="utf-8")
        kept, replaced = _carry_over(output, staging, set(names), ours)
        _publishable(staging)
        _swap(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WriteReport(tuple(names), tuple(kept), tuple(replaced))


def atomic_write(path: Path, data: bytes, mode: int | None = None, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` in one step: a temporary file beside it, flushed to
    disk (unless ``fsync`` is False, for caches), then renamed over it. A crash leaves the
    old file or the new one, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_name(name: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or name == MANIFEST:
        raise ValueError(f"refusing to write {name!r} outside the output folder")


def _link_if_same(previous: Path, target: Path, data: bytes) -> bool:
    """Hard-link an unchanged file from the previous build instead of writing it anew.

    Creating a file costs far more than linking one on some file systems (0.4 ms against
    0.02 ms measured here), and most files of a rebuild are unchanged.
    """
    try:
        if previous.is_symlink() or previous.stat().st_size != len(data):
            return False
        if previous.read_bytes() != data:
            return False
        os.link(previous, target)
    except OSError:
        return False
    return True


def _previous_manifest(output: Path) -> set[str]:
    try:
        text = (output / MANIFEST).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return set()
    return {line for line in text.splitlines() if line}


def _carry_over(
    output: Path, staging: Path, built: set[str], ours: set[str]
) -> tuple[list[str], list[str]]:
    """Link the user's own files from ``output`` into ``staging``."""
    if not output.is_dir():
        if output.exists():
            raise FamfeedsError(f"{display_path(output)} exists and is not a folder")
        return [], []
    kept, replaced = [], []
    for path in sorted(output.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.relative_to(output).as_posix()
        if name == MANIFEST or name in ours:
            continue
        if name in built:
            replaced.append(name)
            continue
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(path.readlink())
        else:
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
        kept.append(name)
    return kept, replaced


def _publishable(folder: Path) -> None:
    """Give the staging folder the permissions of an ordinary new folder (mkdtemp uses 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in (folder, *(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink())):
        path.chmod(0o777 & ~umask)


def _swap(staging: Path, output: Path) -> None:
    """Put ``staging`` where ``output`` is, in one atomic step where the OS allows it."""
    if not output.exists():
        staging.rename(output)
        return
    if _exchange(staging, output):
        shutil.rmtree(staging)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    trash.rmdir()
    output.rename(trash)
    try:
        staging.rename(output)
    except BaseException:
        trash.rename(output)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2(RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
        at_fdcwd = -100
        result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
        return bool(result == 0)
    return False
