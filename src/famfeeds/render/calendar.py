"""The iCalendar files: every episode, past and future, as an event that updates in place.

- calendar.ics: every season; season-NN.ics: one season; episodes/sNNeMM.ics: one
  episode, for "add to calendar" links.
- One event per episode, even when several share a day: each keeps its own UID,
  so moving one episode never disturbs the others in a subscriber's calendar.
- All-day releases are VALUE=DATE events (DTEND the next day); timed releases are
  written in UTC, which every client reads at the same instant across
  daylight-saving changes (no VTIMEZONE to get wrong).
- SEQUENCE and DTSTAMP come from famfeeds.lock (see lockfile.py). Each VEVENT is
  serialised once and its bytes reused in every file that holds it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

from famfeeds.models import Show
from famfeeds.render.context import EventStates, Published, RenderContext
from famfeeds.render.events import span
from famfeeds.render.i18n import Localiser, localiser
from famfeeds.render.memo import NO_MEMO, Memo, memoized
from famfeeds.render.richtext import html_to_text, markdown_to_html
from famfeeds.render.urls import (
    CALENDAR_FILE,
    episode_file,
    episode_url,
    event_key,
    event_uid,
    is_event_of,
    season_file,
)
from famfeeds.render.urls import (
    stamp as moment_value,
)
from famfeeds.schedule import Release, Schedule

PRODID = "-//famfeeds//famfeeds//EN"
VEVENT = "calendar.serialise_event"
"""The memo's name for serialise_event (famfeeds.render.memo)."""
REFRESH = "PT12H"
CALENDAR_END = b"END:VCALENDAR\r\n"


@dataclass(frozen=True)
class EventData:
    """What an event says, before SEQUENCE and DTSTAMP."""

    key: str
    season: int
    summary: str
    start: date | datetime
    end: date | datetime
    description: str
    url: str
    location: str
    categories: tuple[str, ...]
    cancelled: bool
    reminder: int

    @property
    def major(self) -> str:
        """Fingerprint of the fields whose change raises SEQUENCE."""
        return _digest(
            moment_value(self.start), moment_value(self.end), self.summary, str(self.cancelled)
        )

    @property
    def minor(self) -> str:
        """Fingerprint of everything else."""
        return _digest(
            self.description, self.url, self.location, *self.categories, str(self.reminder)
        )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def event_data(release: Release, l10n: Localiser) -> EventData:
    """The event for one release: the synopsis, where it streams and its page."""
    show, episode = release.show, release.episode
    start, end = span(release)
    link = episode_url(release)
    synopsis = html_to_text(markdown_to_html(episode.synopsis, show.base_url))
    where = l10n.streaming_on(release)
    description = "\n\n".join(p for p in (synopsis, where, link) if p)
    return EventData(
        key=event_key(show, release.season.number, episode.number),
        season=release.season.number,
        summary=l10n.summary(release),
        start=start,
        end=end,
        description=description,
        url=link,
        location=show.service,
        categories=(show.title, release.season.title),
        cancelled=release.cancelled,
        reminder=show.calendar.reminder,
    )


def publish(data: EventData, previous: Published | None, stamp: datetime) -> Published:
    """The published state of an event: SEQUENCE rises on a major change, DTSTAMP on any."""
    if previous is None:
        sequence = 0
    elif previous.major == data.major and previous.minor == data.minor and not previous.removed:
        return previous
    else:
        sequence = previous.sequence + (previous.major != data.major or previous.removed)
        stamp = _restamp(previous, stamp)
    return Published(
        sequence,
        stamp,
        data.major,
        data.minor,
        data.summary,
        data.start,
        data.cancelled,
        season=data.season,
    )


def _restamp(previous: Published, stamp: datetime) -> datetime:
    """A changed event's DTSTAMP: the build's, but never at or before the last one."""
    return max(stamp, previous.dtstamp + timedelta(seconds=1))


def removed(previous: Published, stamp: datetime) -> Published:
    """An event whose episode left the content: cancelled, SEQUENCE raised once."""
    if previous.removed:
        return previous
    return Published(
        previous.sequence + 1,
        _restamp(previous, stamp),
        previous.major,
        previous.minor,
        previous.summary,
        previous.start,
        cancelled=True,
        removed=True,
        season=previous.season,
    )


def fold(line: bytes) -> bytes:
    """Fold one content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 character
    or a backslash escape. icalendar's own folding walks the line a character at a time,
    which is most of a large calendar's build time; this cuts whole chunks of bytes.
    """
    if len(line) <= 75:
        return line + b"\r\n"
    chunks = []
    start, limit = 0, 75
    while len(line) - start > limit:
        cut = start + limit
        while line[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: step back
            cut -= 1
        slashes = 0
        while line[cut - 1 - slashes] == 0x5C:  # count backslashes before the cut
            slashes += 1
        if slashes % 2:  # the cut would part an escape from its character
            cut -= 1
        chunks.append(line[start:cut])
        start, limit = cut, 74  # continuation lines start with a space
    chunks.append(line[start:])
    return b"\r\n ".join(chunks) + b"\r\n"


def _moment(name: str, moment: date | datetime) -> bytes:
    from icalendar import vDate, vDatetime

    if isinstance(moment, datetime):
        return fold(name.encode() + b":" + vDatetime(moment.astimezone(UTC)).to_ical())
    return fold(name.encode() + b";VALUE=DATE:" + vDate(moment).to_ical())


def serialise_event(uid_: str, data: EventData | None, state: Published) -> bytes:
    """One VEVENT as iCalendar bytes: CRLF, folded at 75 octets, values escaped by icalendar."""
    from icalendar import vCategory, vDuration, vText, vUri

    def text(name: str, value: str) -> bytes:
        return fold(name.encode() + b":" + vText(value).to_ical())

    lines = [
        b"BEGIN:VEVENT\r\n",
        text("UID", uid_),
        _moment("DTSTAMP", state.dtstamp),
        fold(b"SEQUENCE:%d" % state.sequence),
    ]
    if data is None:  # removed from the content: what the lock remembers
        lines += [
            text("SUMMARY", state.summary),
            _moment("DTSTART", state.start),
            b"STATUS:CANCELLED\r\n",
            b"TRANSP:TRANSPARENT\r\n",
            b"END:VEVENT\r\n",
        ]
        return b"".join(lines)
    lines += [
        text("SUMMARY", data.summary),
        _moment("DTSTART", data.start),
        _moment("DTEND", data.end),
        text("DESCRIPTION", data.description),
        fold(b"URL:" + vUri(data.url).to_ical()),
        text("LOCATION", data.location),
        fold(b"CATEGORIES:" + vCategory(list(data.categories)).to_ical()),
        b"STATUS:CANCELLED\r\n" if data.cancelled else b"STATUS:CONFIRMED\r\n",
        b"TRANSP:TRANSPARENT\r\n",
    ]
    if data.reminder and not data.cancelled:
        trigger = vDuration(timedelta(minutes=-data.reminder)).to_ical()
        lines += [
            b"BEGIN:VALARM\r\n",
            b"ACTION:DISPLAY\r\n",
            text("DESCRIPTION", data.summary),
            fold(b"TRIGGER:" + trigger),
            b"END:VALARM\r\n",
        ]
    lines.append(b"END:VEVENT\r\n")
    return b"".join(lines)


def _head(name: str | None = None, description: str = "") -> bytes:
    """A VCALENDAR's properties, without END:VCALENDAR. Without ``name`` (a one-event
    "add to calendar" file) apps import the event into a calendar of the user's choosing
    instead of creating a new one; with it, the file is a named subscription."""
    from icalendar import vText

    lines = [
        b"BEGIN:VCALENDAR\r\n",
        b"VERSION:2.0\r\n",
        fold(b"PRODID:" + PRODID.encode()),
        b"CALSCALE:GREGORIAN\r\n",
    ]
    if name is not None:
        lines += [
            fold(b"NAME:" + vText(name).to_ical()),
            fold(b"X-WR-CALNAME:" + vText(name).to_ical()),
            fold(b"X-WR-CALDESC:" + vText(description).to_ical()),
            f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}\r\n".encode(),
            f"X-PUBLISHED-TTL:{REFRESH}\r\n".encode(),
        ]
    return b"".join(lines)


def calendar_bytes(head: bytes, events: list[bytes]) -> bytes:
    """A VCALENDAR around already serialised VEVENTs."""
    return head + b"".join(events) + CALENDAR_END


def publish_events(
    show: Show, schedule: Schedule, previous: EventStates, as_of: date, l10n: Localiser
) -> EventStates:
    """The published state of every event of ``show`` after this build.

    Only keys of this show are read from ``previous``: several shows may share one lock
    file, and a build of one never touches another's events.
    """
    stamp = datetime.combine(as_of, time(0), tzinfo=show.zone).astimezone(UTC)
    events: EventStates = {}
    for release in schedule.releases:
        data = event_data(release, l10n)
        events[data.key] = publish(data, previous.get(data.key), stamp)
    for key, state in sorted(previous.items()):
        if is_event_of(show.slug, key) and key not in events:
            events[key] = removed(state, stamp)
    return events


def render_calendars(
    show: Show, schedule: Schedule, events: EventStates, l10n: Localiser, memo: Memo = NO_MEMO
) -> dict[str, bytes]:
    """Every .ics file, with SEQUENCE and DTSTAMP from ``events`` (see publish_events).
    A VEVENT serialised before from the same data and state comes from ``memo``."""
    single = _head()
    by_season: dict[int, list[bytes]] = {}
    everything: list[bytes] = []
    files: dict[str, bytes] = {}
    current = set()
    for release in schedule.releases:
        data = event_data(release, l10n)
        current.add(data.key)
        uid, state = event_uid(show, data.key), events[data.key]
        serialised = memoized(
            memo, partial(serialise_event, uid, data, state), VEVENT, uid, data, state
        )
        everything.append(serialised)
        by_season.setdefault(data.season, []).append(serialised)
        files[episode_file(release)] = calendar_bytes(single, [serialised])
    for key, state in sorted(events.items()):
        if key in current:
            continue
        uid = event_uid(show, key)
        serialised = memoized(
            memo, partial(serialise_event, uid, None, state), VEVENT, uid, None, state
        )
        everything.append(serialised)
        if state.season in by_season:
            by_season[state.season].append(serialised)
    description = l10n.gettext(
        "Release dates of %(show)s episodes on %(service)s.",
        show=show.title,
        service=show.service,
    )
    files[CALENDAR_FILE] = calendar_bytes(_head(show.title, description), everything)
    titles = {r.season.number: r.season.title for r in schedule.releases}
    for number, serialised_events in by_season.items():
        name = l10n.gettext("%(show)s: %(season)s", show=show.title, season=titles[number])
        description = l10n.gettext(
            "Release dates of %(calendar)s on %(service)s.", calendar=name, service=show.service
        )
        files[season_file(number)] = calendar_bytes(_head(name, description), serialised_events)
    return files


def render(ctx: RenderContext) -> dict[str, bytes]:
    """The calendars, as a renderer."""
    return render_calendars(
        ctx.plan.show, ctx.plan.schedule, ctx.events, localiser(ctx.env), ctx.memo
    )
