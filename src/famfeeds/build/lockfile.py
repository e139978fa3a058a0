"""famfeeds.lock: the memory of what the calendar has published.

A calendar client keeps an event by its UID and replaces it only when SEQUENCE
rises, so a change to a published event must raise SEQUENCE, and an unchanged
event must keep SEQUENCE and DTSTAMP from build to build. The lock file records,
per event (its UID without the domain), what was published: small, human-readable
TOML that is committed with the content so it survives a fresh clone.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from famfeeds.build.project import CACHE_DIR
from famfeeds.build.record_cache import LOCK_CACHE, cached_file, remember_file
from famfeeds.build.writer import atomic_write
from famfeeds.errors import FamfeedsError, display_path
from famfeeds.render.context import EventStates, Published
from famfeeds.render.urls import is_event_of

HEADER = """\
# famfeeds.lock: what the calendar has published, so that a changed event's SEQUENCE
# rises and an unchanged one stays byte-identical. famfeeds build updates this file.
# Commit it with your content. Delete an entry only to forget that event entirely.
# Keys are the events' UIDs without the domain of base_url.
"""


@dataclass
class CalendarLock:
    """Every published event of every show in the project, by key (the UID without the
    domain; keys start with the show's slug)."""

    path: Path
    events: EventStates = field(default_factory=dict)
    loaded: EventStates | None = field(default=None, compare=False, repr=False)
    """The events as read from the file, if there was one: saving them again writes nothing."""

    def of_show(self, slug: str) -> EventStates:
        """The events of one show."""
        return {k: v for k, v in self.events.items() if is_event_of(slug, k)}

    def with_show(self, slug: str, events: EventStates) -> CalendarLock:
        """This lock with one show's events replaced; other shows' entries are kept."""
        kept = {k: v for k, v in self.events.items() if not is_event_of(slug, k)}
        return CalendarLock(self.path, {**kept, **events}, self.loaded)

    def to_toml(self) -> str:
        """Serialise in key order, one table per event."""
        parts = [HEADER]
        for key in sorted(self.events):
            e = self.events[key]
            start = _moment(e.start) if isinstance(e.start, datetime) else e.start.isoformat()
            lines = [
                f"\n[events.{_string(key)}]",
                f"summary = {_string(e.summary)}",
                f"season = {e.season}",
                f"start = {start}",
                f"sequence = {e.sequence}",
                f"dtstamp = {_moment(e.dtstamp)}",
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
        if self.loaded is not None and self.events == self.loaded:
            return False  # what the file holds: no need to serialise 10,000 events to see it
        text = self.to_toml()
        try:
            if self.path.read_text(encoding="utf-8") == text:
                return False
        except FileNotFoundError:
            pass
        data = text.encode("utf-8")
        atomic_write(self.path, data)
        remember_file(_parsed(self.path), self.path, data, self.events)
        return True


def _string(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML); a plain one without asking
    json (keys and fingerprints, 40,000 of them in a large lock)."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _moment(value: datetime) -> str:
    """``value``'s wall time with a Z (as strftime("%Y-%m-%dT%H:%M:%SZ") writes it)."""
    if value.year >= 1000:
        return value.isoformat(timespec="seconds")[:19] + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_lock(path: Path) -> CalendarLock:
    """Read the lock file; a missing file is an empty lock. While the file is unchanged its
    parsed form comes from the project's cache (famfeeds.build.record_cache)."""
    try:
        events = cached_file(_parsed(path), path, _read_events)
        return CalendarLock(path, events, dict(events))
    except FileNotFoundError:
        return CalendarLock(path)


def _parsed(lock: Path) -> Path:
    """Where the parsed form of ``lock`` is cached."""
    return lock.parent / CACHE_DIR / LOCK_CACHE


def _read_events(path: Path) -> EventStates:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FamfeedsError(
            f"{display_path(path)}: cannot read the lock file ({exc}); restore it from version "
            "control, or delete it to start the calendar's history afresh"
        ) from None
    events: EventStates = {}
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
    return events
