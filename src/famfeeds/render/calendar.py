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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from famfeeds.plan.schedule import Release, Schedule
from famfeeds.records.models import Season, Show
from famfeeds.records.richtext import html_to_text, markdown_to_html
from famfeeds.render.context import Call, EventStates, Published, RenderContext, direct
from famfeeds.render.events import span
from famfeeds.render.files import FileSet
from famfeeds.render.i18n import Localiser, localiser
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

PRODID = "-//famfeeds//famfeeds//EN"
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


def ical_text(value: str) -> bytes:
    """A TEXT value escaped as RFC 5545 3.3.11 says: backslash, semicolon, comma, and
    each line break (CRLF, LF or a lone CR) as ``\\n``. icalendar's own escaping also turns
    a backslash before a capital N into a line break, which would change text such as
    ``C:\\New``; this one keeps every character."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
        .encode("utf-8")
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
    from icalendar import vDuration, vUri

    def text(name: str, value: str) -> bytes:
        return fold(name.encode() + b":" + ical_text(value))

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
        fold(b"CATEGORIES:" + b",".join(ical_text(c) for c in data.categories)),
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
    lines = [
        b"BEGIN:VCALENDAR\r\n",
        b"VERSION:2.0\r\n",
        fold(b"PRODID:" + PRODID.encode()),
        b"CALSCALE:GREGORIAN\r\n",
    ]
    if name is not None:
        lines += [
            fold(b"NAME:" + ical_text(name)),
            fold(b"X-WR-CALNAME:" + ical_text(name)),
            fold(b"X-WR-CALDESC:" + ical_text(description)),
            f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}\r\n".encode(),
            f"X-PUBLISHED-TTL:{REFRESH}\r\n".encode(),
        ]
    return b"".join(lines)


def calendar_bytes(head: bytes, events: Sequence[bytes]) -> bytes:
    """A VCALENDAR around already serialised VEVENTs."""
    return head + b"".join(events) + CALENDAR_END


def publish_events(
    show: Show,
    schedule: Schedule,
    previous: EventStates,
    as_of: date,
    l10n: Localiser,
    call: Call = direct,
) -> EventStates:
    """The published state of every event of ``show`` after this build.

    Only keys of this show are read from ``previous``: several shows may share one lock
    file, and a build of one never touches another's events. A season whose events were
    all published before is asked about through ``call`` (:func:`events_stand` does not
    depend on the day, so a season that kept its records and states is known without
    working out its events' data again)."""
    stamp = datetime.combine(as_of, time(0), tzinfo=show.zone).astimezone(UTC)
    events: EventStates = {}
    for season, releases in _by_season(schedule):
        names = [event_key(show, season.number, r.episode.number) for r in releases]
        before = tuple(previous.get(name) for name in names)
        if None not in before and call(events_stand, tuple(releases), before, l10n):
            events.update(zip(names, before, strict=True))  # type: ignore[arg-type]
            continue
        for name, release, old in zip(names, releases, before, strict=True):
            events[name] = publish(event_data(release, l10n), old, stamp)
    for name in sorted(name for name in previous if name not in events):
        if is_event_of(show.slug, name):
            events[name] = removed(previous[name], stamp)
    return events


def events_stand(releases: Sequence[Release], before: Sequence[Published], l10n: Localiser) -> bool:
    """Whether each release's state ``before`` stands as it is (:func:`publish` keeps it
    on any day)."""
    return all(
        publish(event_data(release, l10n), old, old.dtstamp) is old
        for release, old in zip(releases, before, strict=True)
    )


def _by_season(schedule: Schedule) -> list[tuple[Season, list[Release]]]:
    """Each season with releases, and its releases, in schedule order."""
    out: dict[int, tuple[Season, list[Release]]] = {}
    for release in schedule.releases:
        number = release.season.number
        if number not in out:
            out[number] = (release.season, [])
        out[number][1].append(release)
    return list(out.values())


def season_events(
    show: Show, releases: Sequence[Release], states: Sequence[Published], l10n: Localiser
) -> bytes:
    """The VEVENTs of one season's releases (``states``: theirs), one after another."""
    serialised = []
    for release, state in zip(releases, states, strict=True):
        data = event_data(release, l10n)
        serialised.append(serialise_event(event_uid(show, data.key), data, state))
    return b"".join(serialised)


def split_events(blob: bytes) -> list[bytes]:
    """Serialised VEVENTs one by one (each ends with END:VEVENT and CRLF)."""
    end = b"END:VEVENT\r\n"
    return [part + end for part in blob.split(end)[:-1]]


def render_calendars(
    show: Show, schedule: Schedule, events: EventStates, l10n: Localiser, call: Call = direct
) -> FileSet:
    """Every .ics file, with SEQUENCE and DTSTAMP from ``events`` (see publish_events),
    a season at a time through ``call``."""
    single = _head()
    files = FileSet()
    by_season = _by_season(schedule)
    current = {
        event_key(show, season.number, r.episode.number)
        for season, releases in by_season
        for r in releases
    }
    numbers = {season.number for season, _ in by_season}
    removed_events: list[bytes] = []
    removed_of: dict[int, list[bytes]] = {}
    for key_, state in sorted(events.items()):
        if key_ in current or not is_event_of(show.slug, key_):
            continue
        serialised = call(serialise_event, event_uid(show, key_), None, state)  # left
        removed_events.append(serialised)
        if state.season in numbers:
            removed_of.setdefault(state.season, []).append(serialised)
    everything: list[bytes] = []
    for season, releases in by_season:
        shown = tuple(releases)
        states = tuple(events[event_key(show, season.number, r.episode.number)] for r in shown)
        blob = call(season_events, show, shown, states, l10n)
        extra = tuple(removed_of.get(season.number, ()))
        files.add(call(_season_files, show, season, shown, blob, extra, single, l10n))
        everything.append(blob)
    everything += removed_events
    files.add(call(_whole_calendar, show, tuple(everything), l10n))
    return files


def _whole_calendar(show: Show, events: Sequence[bytes], l10n: Localiser) -> dict[str, bytes]:
    """calendar.ics: every event."""
    description = l10n.gettext(
        "Release dates of %(show)s episodes on %(service)s.",
        show=show.title,
        service=show.service,
    )
    return {CALENDAR_FILE: calendar_bytes(_head(show.title, description), events)}


def _season_files(
    show: Show,
    season: Season,
    releases: Sequence[Release],
    blob: bytes,
    removed_events: Sequence[bytes],
    single: bytes,
    l10n: Localiser,
) -> dict[str, bytes]:
    """A season's calendar and each of its episodes' "add to calendar" file."""
    serialised = split_events(blob)
    files = {
        episode_file(release): calendar_bytes(single, [event])
        for release, event in zip(releases, serialised, strict=True)
    }
    name = l10n.gettext("%(show)s: %(season)s", show=show.title, season=season.title)
    description = l10n.gettext(
        "Release dates of %(calendar)s on %(service)s.", calendar=name, service=show.service
    )
    files[season_file(season.number)] = calendar_bytes(
        _head(name, description), [*serialised, *removed_events]
    )
    return files


def render(ctx: RenderContext) -> FileSet:
    """The calendars, as a renderer."""
    plan = ctx.plan
    return render_calendars(plan.show, plan.schedule, ctx.events, localiser(ctx.env), ctx.call)
