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
from pathlib import Path

STATE_DIR = ".famfeeds-state"
LEDGER_NAME = "ledger.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    issue TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_reply TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL,
    PRIMARY KEY (issue, recipient)
)
"""


class Ledger:
    """One connection to the ledger (open one per thread)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(SCHEMA)

    def states(self, issue: str) -> dict[str, str]:
        """Every recipient's state for ``issue``."""
        rows = self.db.execute("SELECT recipient, state FROM deliveries WHERE issue = ?", (issue,))
        return dict(rows.fetchall())

    def begin(self, issue: str, recipient: str) -> None:
        """Record the start of an attempt (state ``sending``, one more attempt)."""
        self.db.execute(
            "INSERT INTO deliveries (issue, recipient, state, attempts, updated) "
            "VALUES (?, ?, 'sending', 1, ?) ON CONFLICT (issue, recipient) DO UPDATE SET "
            "state = 'sending', attempts = attempts + 1, updated = excluded.updated",
            (issue, recipient, time.time()),
        )

    def mark(self, issue: str, recipient: str, state: str, reply: str = "") -> None:
        """Move a recipient to ``state``, with the server's reply."""
        self.db.execute(
            "UPDATE deliveries SET state = ?, last_reply = ?, updated = ? "
            "WHERE issue = ? AND recipient = ?",
            (state, reply[:500], time.time(), issue, recipient),
        )

    def close(self) -> None:
        self.db.close()
