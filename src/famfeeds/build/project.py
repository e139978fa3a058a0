"""Where a project keeps things: every per-project path, derived once from the content folder.

A project is the folder that holds ``content/``. Beside it live the calendar's lock file
(committed), the issue cache and the delivery state (neither committed), and optionally the
project's own ``templates/``.

Every path is derived from the content folder's *resolved* path (symlinks followed): a
project reached through a link to its content folder is the same project, with the same
delivery state, ledger and send lock, never a second one beside the link.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import BytecodeCache, Environment
    from jinja2.bccache import Bucket

LOCK_NAME = "famfeeds.lock"
CACHE_DIR = ".famfeeds-cache"
STATE_DIR = ".famfeeds-state"
PREVIEW_DIR = ".famfeeds-preview"
TEMPLATES_DIR = "templates"
LOCALE_DIR = "locale"
LEDGER_NAME = "ledger.sqlite3"
STORE_NAME = "subscribers.sqlite3"
SECRET_NAME = "secret.key"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class Project:
    """The paths of one project, absolute and resolved."""

    content: Path
    root: Path

    @classmethod
    def of(cls, content: Path) -> Project:
        """The project whose content folder is ``content``, symlinks resolved (its root is
        the real folder's parent)."""
        content = content.resolve()
        return cls(content, content.parent)

    @property
    def lock(self) -> Path:
        """famfeeds.lock: the calendar's published history; commit it."""
        return self.root / LOCK_NAME

    @property
    def cache(self) -> Path:
        """The issue cache: disposable."""
        return self.root / CACHE_DIR

    @property
    def state(self) -> Path:
        """The delivery state folder (ledger, subscriber store, secret): private, not committed."""
        return self.root / STATE_DIR

    @property
    def ledger(self) -> Path:
        """The delivery ledger."""
        return self.state / LEDGER_NAME

    @property
    def store(self) -> Path:
        """The subscriber store."""
        return self.state / STORE_NAME

    @property
    def secret(self) -> Path:
        """The project's secret key file (0600)."""
        return self.state / SECRET_NAME

    @property
    def preview(self) -> Path:
        """Where ``famfeeds serve`` builds by default."""
        return self.root / PREVIEW_DIR

    def templates(self, given: Path | None = None) -> Path:
        """The project's own templates: ``given``, else ``templates/`` beside the content."""
        return given if given is not None else self.root / TEMPLATES_DIR

    @property
    def locale(self) -> Path:
        """The project's own message catalogues: locale/<lang>/LC_MESSAGES/famfeeds.po."""
        return self.root / LOCALE_DIR

    def private_state(self) -> Path:
        """The state folder, created 0700 (and tightened if it exists), with a .gitignore so
        that ``git status`` never shows it."""
        private_folder(self.state)
        ignore = self.state / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# famfeeds delivery state: holds addresses\n*\n", encoding="utf-8")
        return self.state


def private_folder(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, tightening it if it exists."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if missing, else tighten its mode.

    An existing file is only chmod-ed, never opened: closing any descriptor of a file drops
    every POSIX lock this process holds on it, including SQLite's in other threads, and
    another process could then delete the WAL that holds their commits.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)
    return path


def shipped_templates() -> Path:
    """The default templates: inside the installed wheel, or the repository's templates/."""
    packaged = Path(__file__).parents[1] / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "templates"


def template_environment(
    project_templates: Path | None, language: str, project_locale: Path | None = None
) -> Environment:
    """A Jinja2 environment searching ``project_templates`` before the shipped ones, with the
    catalogue of ``language`` (a show's language tag) installed; ``project_locale`` holds the
    project's own catalogues (see :mod:`famfeeds.build.translations`)."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    from famfeeds.build.translations import load_messages
    from famfeeds.render.templating import make_environment

    messages = load_messages(language, project_locale)
    loaders = []
    if project_templates is not None and project_templates.is_dir():
        loaders.append(FileSystemLoader(project_templates))
    loaders.append(FileSystemLoader(shipped_templates()))
    env = make_environment(ChoiceLoader(loaders), messages)
    env.bytecode_cache = template_bytecode_cache()
    return env


def user_cache() -> Path:
    """famfeeds' folder in the user's cache: $XDG_CACHE_HOME/famfeeds, else
    ~/.cache/famfeeds (%LOCALAPPDATA%\\famfeeds on Windows, ~/Library/Caches/famfeeds on
    macOS)."""
    import sys

    if os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"])
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path.home() / ".cache"
    return base / "famfeeds"


TEMPLATE_CACHE_DAYS = 30
"""Compiled templates of other famfeeds versions are deleted when unused this long."""


def template_bytecode_cache() -> BytecodeCache | None:
    """Jinja2's cache of compiled templates, shared by every project of this user (as
    Python's own __pycache__ is): compiling the templates is a fifth of a small first
    build. Jinja checks each entry against the template's source, and the folder is named
    after famfeeds' code and Jinja2's version, so no other settings can meet its entries.
    None when the user's cache cannot be written: templates are then compiled each time."""
    import hashlib

    import jinja2

    from famfeeds.build import keys

    tag = hashlib.blake2b(f"{keys.code_digest()};{jinja2.__version__}".encode(), digest_size=8)
    folder = user_cache() / f"templates-{tag.hexdigest()}"
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass
        except OSError:
            return None
        _forget_old_templates(folder)
    return _quiet_bytecode_cache(str(folder))


def _forget_old_templates(keep: Path) -> None:
    """Delete the compiled templates of other famfeeds versions unused for
    :data:`TEMPLATE_CACHE_DAYS` (each one's folder is touched when it is made)."""
    import shutil
    import time

    limit = time.time() - TEMPLATE_CACHE_DAYS * 86400
    for other in keep.parent.glob("templates-*"):
        try:
            if other != keep and other.stat().st_mtime < limit:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            continue


def _quiet_bytecode_cache(folder: str) -> BytecodeCache:
    """A FileSystemBytecodeCache in ``folder`` that treats a failed write, or an entry it
    cannot read back, as a miss: a full disk, a read-only or a damaged cache slows a build
    down, never stops it."""
    import contextlib

    from jinja2 import FileSystemBytecodeCache

    class QuietBytecodeCache(FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # truncated or foreign bytes: compile the template again
                bucket.reset()

        def dump_bytecode(self, bucket: Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    return QuietBytecodeCache(folder)
