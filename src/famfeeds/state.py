"""famfeeds.lock: the memory of what the calendar has published.

A calendar client keeps an event by its UID and replaces it only when SEQUENCE
rises, so a change to a published event must raise SEQUENCE, and an unchanged
event must keep SEQUENCE and DTSTAMP from build to build. The lock file records,
per event (its UID without the domain), what was published: small, human-readable
TOML that is committed with the content so it survives a fresh clone.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from famfeeds.errors import FamfeedsError, display_path

LOCK_NAME = "famfeeds.lock"
HEADER = """\
# famfeeds.lock: what the calendar has published, so that a changed event's SEQUENCE
# rises and an unchanged one stays byte-identical. famfeeds build updates this file.
# Commit it with your content. Delete an entry only to forget that event entirely.
# Keys are the events' UIDs without the domain of base_url.
"""


@dataclass(frozen=True)
class Published:
    """One event as last published."""

    sequence: int
    dtstamp: datetime
    """When this version of the event was first published (UTC)."""
    major: str
    """Fingerprint of the fields whose change raises SEQUENCE (date, time, title, status)."""
    minor: str
    """Fingerprint of every other field (description, link, ...)."""
    summary: str
    start: date | datetime
    cancelled: bool = False
    removed: bool = False
    """The episode left the content: the calendar keeps it as cancelled."""
    season: int = 0


@dataclass
class Lock:
    """Every published event, by its key (the UID without the domain)."""

    path: Path
    events: dict[str, Published] = field(default_factory=dict)

    def to_toml(self) -> str:
        """Serialise in key order, one table per event."""
        parts = [HEADER]
        for key in sorted(self.events):
            e = self.events[key]
            start = (
                e.start.strftime("%Y-%m-%dT%H:%M:%SZ")
                if isinstance(e.start, datetime)
                else e.start.isoformat()
            )
            lines = [
                f"\n[events.{_string(key)}]",
                f"summary = {_string(e.summary)}",
                f"season = {e.season}",
                f"start = {start}",
                f"sequence = {e.sequence}",
                f"dtstamp = {e.dtstamp.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                f"major = {_string(e.major)}",
                f"minor = {_string(e.minor)}",
            ]
            if e.cancelled:
                lines.append("cancelled = true")
            if e.removed:
                lines.append("removed = true")
            parts.append("\n".join(lines) + "\n")
        return "".join(parts)

    def save(self) -> bool:
        """Write the file atomically if its text changed; True when it was written."""
        text = self.to_toml()
        try:
            if self.path.read_text(encoding="utf-8") == text:
                return False
        except FileNotFoundError:
            pass
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True


def _string(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def load_lock(path: Path) -> Lock:
    """Read the lock file; a missing file is an empty lock."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Lock(path)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FamfeedsError(
            f"{display_path(path)}: cannot read the lock file ({exc}); restore it from version "
            "control, or delete it to start the calendar's history afresh"
        ) from None
    events = {}
    try:
        for key, row in data.get("events", {}).items():
            stamp = row["dtstamp"]
            start = row["start"]
            events[key] = Published(
                sequence=int(row["sequence"]),
                dtstamp=stamp.astimezone(UTC),
                major=str(row["major"]),
                minor=str(row["minor"]),
                summary=str(row["summary"]),
                start=start.astimezone(UTC) if isinstance(start, datetime) else start,
                cancelled=bool(row.get("cancelled", False)),
                removed=bool(row.get("removed", False)),
                season=int(row.get("season", 0)),
            )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise FamfeedsError(
            f"{display_path(path)}: an entry is incomplete ({exc!r}); restore the file from "
            "version control, or delete the entry"
        ) from None
    return Lock(path, events)
