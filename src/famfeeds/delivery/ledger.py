"""The delivery ledger: one row per (issue, recipient), so no one gets an issue twice.

A recipient's row moves through these states:

- ``sending``: recorded before the SMTP transaction starts. A run that dies here
  delivered nothing (a server delivers only after the final "." of DATA), so a rerun
  sends again.
- ``committing``: recorded just before the final "." goes out. A run that dies here
  may or may not have delivered: the server may have accepted the message without us
  hearing its 250. This is the one ambiguous window, and it is a few milliseconds.
- ``sent``: the server answered 250.
- ``deferred``: a transient failure (a 4xx reply, a dropped connection); retried.
- ``failed``: a permanent failure (a 5xx reply); not retried unless asked.

SQLite in WAL mode: every state change is committed before the next SMTP step, so a
killed process (SIGKILL included) leaves an accurate record. With synchronous=NORMAL a
commit survives the process but not a power cut; a power cut can lose the last few
changes, and their recipients may be sent the issue again.
"""

from __future__ import annotations

import sqlite3
import time
from enum import StrEnum
from pathlib import Path

from famfeeds.errors import FamfeedsError
from famfeeds.project import private_file, private_folder

SCHEMA_VERSION = 2
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


class Delivery(StrEnum):
    """A recipient's state for one issue."""

    SENDING = "sending"
    COMMITTING = "committing"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"


class Ledger:
    """One connection to the ledger (open one per thread).

    Rows are keyed by (show slug, issue date, recipient): several shows can share a
    project's state folder without one's issue of a date counting as the other's.
    ``legacy_show`` is the slug given to rows of a ledger written before that key existed.
    """

    def __init__(self, path: Path, legacy_show: str | None = None) -> None:
        self.path = path
        try:
            private_folder(path.parent)
            private_file(path)
            self.db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(legacy_show)
        except sqlite3.Error as exc:
            raise FamfeedsError(
                f"{path}: cannot use the delivery ledger ({exc}); if another famfeeds is "
                "sending, wait for it; if the file is damaged, restore it from a backup"
            ) from None

    def _migrate(self, legacy_show: str | None) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
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
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def states(self, show: str, issue: str) -> dict[str, str]:
        """Every recipient's state for one issue of one show."""
        rows = self.db.execute(
            "SELECT recipient, state FROM deliveries WHERE show = ? AND issue = ?", (show, issue)
        )
        return dict(rows.fetchall())

    def begin(self, show: str, issue: str, recipient: str) -> None:
        """Record the start of an attempt (state ``sending``, one more attempt)."""
        self.db.execute(
            "INSERT INTO deliveries (show, issue, recipient, state, attempts, updated) "
            "VALUES (?, ?, ?, 'sending', 1, ?) ON CONFLICT (show, issue, recipient) "
            "DO UPDATE SET state = 'sending', attempts = attempts + 1, "
            "updated = excluded.updated",
            (show, issue, recipient, time.time()),
        )

    def mark(self, show: str, issue: str, recipient: str, state: str, reply: str = "") -> None:
        """Move a recipient to ``state``, with the server's reply."""
        self.db.execute(
            "UPDATE deliveries SET state = ?, last_reply = ?, updated = ? "
            "WHERE show = ? AND issue = ? AND recipient = ?",
            (str(state), reply[:500], time.time(), show, issue, recipient),
        )

    def close(self) -> None:
        self.db.close()
