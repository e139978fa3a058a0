"""The delivery ledger: one row per (show, issue, recipient), so no one gets an issue twice.

A recipient's row moves through these states:

- ``sending``: the recipient is *claimed* for this attempt, before MAIL FROM. A run that
  dies here delivered nothing (a server delivers only after the final "." of DATA), so a
  rerun sends again.
- ``committing``: recorded just before the final "." goes out. A run that dies here, or a
  session that is cut off after the ".", may or may not have delivered: the server may have
  accepted the message without us hearing its 250. This is the one ambiguous window; such
  recipients are reported *uncertain* and never sent again unless asked.
- ``sent``: the server answered 250.
- ``deferred``: a transient failure (a 4xx reply, a dropped connection before the ".");
  retried.
- ``failed``: a permanent failure (a 5xx reply, an address that cannot be sent to); not
  retried unless asked.

One send per issue at a time: :func:`send_lock` takes an OS file lock in the state folder
(``fcntl.flock``, released by the kernel when the process ends, SIGKILL included), and each
claim is a conditional INSERT or UPDATE that succeeds only if the row is still as the run
planned it (its attempt count is the version), so two runs can never both claim one
recipient even where file locks do not work.

SQLite in WAL mode: every state change is committed before the next SMTP step, so a
killed process (SIGKILL included) leaves an accurate record. With synchronous=NORMAL a
commit survives the process but not a power cut; a power cut can lose the last few
changes, and their recipients may be sent the issue again. Every SQLite error (a damaged,
truncated, locked or read-only file, a full disk) becomes a :class:`LedgerError` that says
what to do.

The ledger also keeps what ``famfeeds bounces`` needs: which bounce messages were already
read (so a mailbox read twice counts nothing twice) and which issues soft-bounced for whom;
and, for ``famfeeds report`` and the send guards, each issue's hard bounces and complaints,
kept under the recipients' keyed hashes, so forgetting an address leaves nothing to rewrite.

Forgetting an address (:meth:`Ledger.forget`, called by ``famfeeds subscribers forget``)
rewrites its rows to ``forgotten:HASH`` (the keyed hash the subscriber store keeps, see
:func:`famfeeds.delivery.secret.keyed_hash`), blanks the server replies and soft-bounce
reasons that may quote it, and overwrites the old pages (``secure_delete``, then a TRUNCATE
checkpoint of the WAL), so no copy of the address is left in the file. A later send still
finds that it was mailed: :meth:`Ledger.records` answers for an address by its hash too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from famfeeds.build.project import SECRET_NAME, private_file, private_folder
from famfeeds.delivery.secret import keyed_hash, project_secret
from famfeeds.delivery.sqlite import immediate
from famfeeds.errors import FamfeedsError, display_path

SCHEMA_VERSION = 4
WAL_PAGES = 128
"""Commits between checkpoints (SQLite's default, 1000, lets the log reach 4 MB)."""
BUSY_TIMEOUT = 10.0
"""Seconds a write waits for another process's transaction before giving up."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    show TEXT NOT NULL,
    issue TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_reply TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL,
    PRIMARY KEY (show, issue, recipient)
)
"""
MIGRATE_1_TO_2 = """
ALTER TABLE deliveries RENAME TO deliveries_v1;
{schema};
INSERT INTO deliveries (show, issue, recipient, state, attempts, last_reply, updated)
    SELECT ?, issue, recipient, state, attempts, last_reply, updated FROM deliveries_v1;
DROP TABLE deliveries_v1;
"""
MIGRATE_2_TO_3 = """
CREATE INDEX IF NOT EXISTS deliveries_by_recipient ON deliveries (show, recipient);
CREATE TABLE IF NOT EXISTS bounce_messages (
    show TEXT NOT NULL,
    id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (show, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS soft_bounces (
    show TEXT NOT NULL,
    recipient TEXT NOT NULL,
    issue TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (show, recipient, issue)
) WITHOUT ROWID;
"""
MIGRATE_3_TO_4 = """
CREATE TABLE IF NOT EXISTS issue_reports (
    show TEXT NOT NULL,
    issue TEXT NOT NULL,
    kind TEXT NOT NULL,
    who TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (show, issue, kind, who)
) WITHOUT ROWID;
"""
REPORT_KINDS = frozenset({"hard", "complaint"})
"""What :meth:`Ledger.note_reports` records against an issue: a hard bounce (a refusal at
send time, or a returned DSN, that blames the address) or a complaint (an ARF report).
Each is kept once per issue and recipient, under the recipient's keyed hash (no address)."""


FORGOTTEN = "forgotten:"
"""The prefix of a forgotten recipient's keyed hash in the ledger."""


class _Records(dict[str, tuple[str, int]]):
    """One issue's rows by recipient; ``get`` also finds a forgotten recipient's row by the
    keyed hash of the address asked for."""

    def __init__(self, rows: dict[str, tuple[str, int]], show: str, secret: bytes) -> None:
        super().__init__(rows)
        self.show, self.secret = show, secret

    def get(  # type: ignore[override]
        self, key: str, default: tuple[str, int] | None = None
    ) -> tuple[str, int] | None:
        if key in self:
            return self[key]
        hashed = FORGOTTEN + keyed_hash(self.secret, self.show, _store_key(key))
        return super().get(hashed, default)


def _store_key(address: str) -> str:
    """The subscriber store's key of an address (the hash is over it), else the address."""
    from famfeeds.delivery.store import InvalidAddress, normalise

    try:
        return normalise(address)[1]
    except InvalidAddress:
        return address.strip().lower()


class Delivery(StrEnum):
    """A recipient's state for one issue."""

    SENDING = "sending"
    COMMITTING = "committing"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"


class LedgerError(FamfeedsError):
    """The ledger cannot be read or written; the message says why and what to do."""


def ledger_error(path: Path, exc: BaseException, doing: str) -> LedgerError:
    """A clear message for an SQLite or file error on the ledger at ``path``."""
    where = display_path(path)
    text = str(exc)
    keep = (
        "The ledger is what keeps subscribers from getting an issue twice: do not delete it "
        "unless you want the next send to go to everyone again."
    )
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return LedgerError(
            f"{where} is locked by another process (SQLite: {text}): wait for it to finish "
            "(another famfeeds, or a tool holding the file open) and run again"
        )
    if "disk is full" in text or (isinstance(exc, OSError) and exc.errno == 28):
        return LedgerError(
            f"the disk holding {where} is full (famfeeds could not {doing} the ledger): free "
            "some space and run the same command again (what the ledger recorded so far is "
            "accurate)"
        )
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return LedgerError(
            f"{where} cannot be written (SQLite: {text}): check the permissions of the file "
            "and its folder"
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return LedgerError(
            f"{where} is damaged or is not a famfeeds ledger (SQLite: {text}): restore it from "
            f"a backup, or move it away to start a new one. {keep}"
        )
    if isinstance(exc, OSError):
        return LedgerError(f"cannot {doing} {where}: {exc.strerror or text}")
    return LedgerError(f"cannot {doing} {where} (SQLite: {text})")


class Ledger:
    """One connection to the ledger (open one per thread).

    Rows are keyed by (show slug, issue date, recipient): several shows can share a
    project's state folder without one's issue of a date counting as the other's.
    ``legacy_show`` is the slug given to rows of a ledger written before that key existed.
    Every method raises LedgerError instead of an SQLite error.
    """

    def __init__(
        self, path: Path, legacy_show: str | None = None, busy_timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.path = path
        try:
            private_folder(path.parent)
            private_file(path)
        except OSError as exc:
            raise ledger_error(path, exc, "create") from None
        with self._guard("open"):
            self.db = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        try:
            with self._guard("open"):
                self.db.execute("PRAGMA journal_mode=WAL").fetchone()
                self.db.execute("PRAGMA synchronous=NORMAL")
                # Every state change is a commit of its own: checkpoint often and keep the
                # write-ahead log small, so a send never needs megabytes of free disk.
                self.db.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
                self.db.execute(f"PRAGMA journal_size_limit = {WAL_PAGES * 4096}")
                self._migrate(legacy_show)
        except BaseException:
            self.db.close()
            raise

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise ledger_error(self.path, exc, doing) from None

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        with self._guard(doing), immediate(self.db) as db:
            yield db

    def _migrate(self, legacy_show: str | None) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{display_path(self.path)} was written by a newer famfeeds (schema "
                f"{version}; this one knows {SCHEMA_VERSION}): upgrade famfeeds"
            )
        if version == SCHEMA_VERSION:
            return
        with self._transaction("update"):
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version < 2:
                old = self.db.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'deliveries'"
                ).fetchone()
                columns = {r[1] for r in self.db.execute("PRAGMA table_info(deliveries)")}
                if old and "show" not in columns:
                    statements = MIGRATE_1_TO_2.format(schema=SCHEMA.strip()).split(";")
                    for statement in filter(str.strip, statements):
                        params = (legacy_show or "",) if "?" in statement else ()
                        self.db.execute(statement, params)
                else:
                    self.db.execute(SCHEMA)
            if version < 3:
                for statement in filter(str.strip, MIGRATE_2_TO_3.split(";")):
                    self.db.execute(statement)
            if version < 4:
                self.db.execute(MIGRATE_3_TO_4)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- deliveries ------------------------------------------------------------------------

    def states(self, show: str, issue: str) -> dict[str, str]:
        """Every recipient's state for one issue of one show."""
        return {recipient: state for recipient, (state, _) in self.records(show, issue).items()}

    def records(self, show: str, issue: str) -> dict[str, tuple[str, int]]:
        """Every recipient's (state, attempts) for one issue of one show; the attempt count
        is the row's version for :meth:`claim`."""
        with self._guard("read"):
            rows = self.db.execute(
                "SELECT recipient, state, attempts FROM deliveries WHERE show = ? AND issue = ?",
                (show, issue),
            ).fetchall()
        found = {recipient: (state, attempts) for recipient, state, attempts in rows}
        if any(r.startswith(FORGOTTEN) for r in found):
            secret = project_secret(self.path.parent / SECRET_NAME, create=False)
            if secret is not None:
                return _Records(found, show, secret)
        return found

    def claim(
        self, show: str, issue: str, recipient: str, version: int, claimable: Iterable[str]
    ) -> bool:
        """Claim the recipient for one attempt (state ``sending``, one more attempt), only if
        the row is as the caller last saw it: absent when ``version`` is 0, else with that
        many attempts and a state in ``claimable``. One statement, so one transaction.
        Returns False when another run got there first."""
        now = time.time()
        with self._guard("write to"):
            if version == 0:
                cursor = self.db.execute(
                    "INSERT INTO deliveries (show, issue, recipient, state, attempts, updated) "
                    "VALUES (?, ?, ?, 'sending', 1, ?) "
                    "ON CONFLICT (show, issue, recipient) DO NOTHING",
                    (show, issue, recipient, now),
                )
            else:
                states = sorted(set(claimable))
                marks = ",".join("?" * len(states))
                cursor = self.db.execute(
                    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
                    "updated = ? WHERE show = ? AND issue = ? AND recipient = ? "
                    f"AND attempts = ? AND state IN ({marks})",
                    (now, show, issue, recipient, version, *states),
                )
        return cursor.rowcount == 1

    def begin(self, show: str, issue: str, recipient: str) -> None:
        """Record the start of an attempt whatever the row says (state ``sending``, one more
        attempt). A send uses :meth:`claim`, which checks the row first."""
        with self._guard("write to"):
            self.db.execute(
                "INSERT INTO deliveries (show, issue, recipient, state, attempts, updated) "
                "VALUES (?, ?, ?, 'sending', 1, ?) ON CONFLICT (show, issue, recipient) "
                "DO UPDATE SET state = 'sending', attempts = attempts + 1, "
                "updated = excluded.updated",
                (show, issue, recipient, time.time()),
            )

    def mark(self, show: str, issue: str, recipient: str, state: str, reply: str = "") -> None:
        """Move a recipient to ``state``, with the server's reply."""
        with self._guard("write to"):
            self.db.execute(
                "UPDATE deliveries SET state = ?, last_reply = ?, updated = ? "
                "WHERE show = ? AND issue = ? AND recipient = ?",
                (str(state), reply[:500], time.time(), show, issue, recipient),
            )

    def recipients(self, show: str) -> list[str]:
        """Every recipient the ledger has a row for, in any issue of the show."""
        with self._guard("read"):
            rows = self.db.execute(
                "SELECT DISTINCT recipient FROM deliveries WHERE show = ?", (show,)
            ).fetchall()
        return [r[0] for r in rows]

    def sent_issues(self, show: str, recipient: str) -> list[str]:
        """The issues handed over to the recipient (sent or uncertain), newest first."""
        with self._guard("read"):
            rows = self.db.execute(
                "SELECT issue FROM deliveries WHERE show = ? AND recipient = ? "
                "AND state IN ('sent', 'committing') ORDER BY updated DESC, issue DESC",
                (show, recipient),
            ).fetchall()
        return [r[0] for r in rows]

    # -- bounce bookkeeping ----------------------------------------------------------------

    def seen_bounces(self, show: str, ids: Iterable[str]) -> set[str]:
        """The bounce message ids among ``ids`` that an earlier run already read."""
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        with self._guard("read"):
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.db.execute(
                    f"SELECT id FROM bounce_messages WHERE show = ? AND id IN ({marks})",
                    (show, *chunk),
                )
                found.update(r[0] for r in rows)
        return found

    def soft_bounced(self, show: str, recipient: str) -> set[str]:
        """The issues that soft-bounced for the recipient."""
        with self._guard("read"):
            rows = self.db.execute(
                "SELECT issue FROM soft_bounces WHERE show = ? AND recipient = ?",
                (show, recipient),
            ).fetchall()
        return {r[0] for r in rows}

    def record_bounces(
        self, show: str, message_ids: Iterable[str], soft: Iterable[tuple[str, str, str]]
    ) -> None:
        """One transaction: the bounce messages read, and (recipient, issue, reason) for each
        soft bounce. Recording the same ones again changes nothing."""
        now = time.time()
        with self._transaction("write to"):
            self.db.executemany(
                "INSERT OR IGNORE INTO bounce_messages (show, id, at) VALUES (?, ?, ?)",
                [(show, i, now) for i in message_ids],
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO soft_bounces (show, recipient, issue, at, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [(show, r, i, now, reason[:500]) for r, i, reason in soft],
            )

    def note_reports(self, show: str, reports: Iterable[tuple[str, str, str]]) -> None:
        """Record (recipient, issue, kind) for hard bounces and complaints (see
        :data:`REPORT_KINDS`), under the recipient's keyed hash; the same one again changes
        nothing. Creates the project's secret if there is none."""
        wanted = list(reports)
        if not wanted:
            return
        secret = project_secret(self.path.parent / SECRET_NAME, create=True)
        assert secret is not None
        now = time.time()
        rows = []
        for recipient, issue, kind in wanted:
            if kind not in REPORT_KINDS:
                raise ValueError(f"not a report kind: {kind!r}")
            if recipient.startswith(FORGOTTEN):  # already the keyed hash
                who = recipient.removeprefix(FORGOTTEN)
            else:
                who = keyed_hash(secret, show, _store_key(recipient))
            rows.append((show, issue, kind, who, now))
        with self._transaction("write to"):
            self.db.executemany(
                "INSERT OR IGNORE INTO issue_reports (show, issue, kind, who, at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    # -- forgetting ----------------------------------------------------------------------

    def forget(self, show: str, address: str) -> int:
        """Rewrite the address's rows (every issue of the show) to its keyed hash, blank the
        replies and soft-bounce reasons that may quote it, and overwrite the freed pages and
        the WAL, so that no copy of the address is left in the ledger. Returns the rows
        rewritten; creates the project's secret if there is none."""
        secret = project_secret(self.path.parent / SECRET_NAME, create=True)
        assert secret is not None
        key = _store_key(address)
        forms = sorted({address.strip().lower(), key})
        hashed = FORGOTTEN + keyed_hash(secret, show, key)
        marks = ",".join("?" * len(forms))
        with self._guard("write to"):
            self.db.execute("PRAGMA secure_delete=ON")
        with self._transaction("write to"):
            rows = self.db.execute(
                f"SELECT issue FROM deliveries WHERE show = ? AND recipient IN ({marks})",
                (show, *forms),
            ).fetchall()
            for (issue,) in rows:  # one row per issue, even if two forms were recorded
                self.db.execute(
                    "INSERT OR IGNORE INTO deliveries (show, issue, recipient, state, attempts, "
                    "last_reply, updated) SELECT show, issue, ?, state, attempts, '', updated "
                    f"FROM deliveries WHERE show = ? AND issue = ? AND recipient IN ({marks}) "
                    "ORDER BY state = 'sent' DESC LIMIT 1",
                    (hashed, show, issue, *forms),
                )
            self.db.execute(
                f"DELETE FROM deliveries WHERE show = ? AND recipient IN ({marks})",
                (show, *forms),
            )
            soft = self.db.execute(
                f"SELECT issue, at FROM soft_bounces WHERE show = ? AND recipient IN ({marks})",
                (show, *forms),
            ).fetchall()
            self.db.executemany(
                "INSERT OR IGNORE INTO soft_bounces (show, recipient, issue, at, reason) "
                "VALUES (?, ?, ?, ?, '')",
                [(show, hashed, issue, at) for issue, at in soft],
            )
            self.db.execute(
                f"DELETE FROM soft_bounces WHERE show = ? AND recipient IN ({marks})",
                (show, *forms),
            )
        with self._guard("write to"):  # copy the change into the file, emptying the WAL
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return len(rows)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


@contextmanager
def send_lock(
    folder: Path,
    show: str,
    issue: str,
    *,
    wait: bool = False,
    waiting: Callable[[str], None] = lambda note: None,
) -> Iterator[Path]:
    """Hold the OS lock for sending one issue of one show (``send-SHOW-ISSUE.lock``): see
    :func:`process_lock`."""
    with process_lock(
        folder / f"send-{show}-{issue}.lock",
        f"another famfeeds is sending the issue {issue} of {show}",
        "Nothing was sent by this run: wait for that one to finish, or pass --wait to wait for it",
        wait=wait,
        waiting=waiting,
    ) as path:
        yield path


@contextmanager
def process_lock(
    path: Path,
    busy: str,
    advice: str,
    *,
    wait: bool = False,
    waiting: Callable[[str], None] = lambda note: None,
) -> Iterator[Path]:
    """Hold an OS lock (``flock``) on ``path`` for as long as the block runs.

    Another process holding it makes this raise FamfeedsError (``busy``, the holder's
    process id and start, then ``advice``), or, with ``wait``, call ``waiting`` once and
    block until it is free. The kernel releases the lock when the holder ends, however it
    ends; the file stays (removing it would race).
    """
    folder = path.parent
    try:
        private_folder(folder)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ledger_error(path, exc, "create a lock file beside") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            who = (
                f"process {holder[0]}, started {holder[1]}"
                if len(holder) >= 2
                else "another process"
            )
            message = f"{busy} ({who}; it holds {display_path(path)})"
            if not wait:
                raise FamfeedsError(f"{message}. {advice}") from None
            waiting(f"{message}; waiting for it to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {started}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)
