"""What every output says about an episode's release as a calendar event.

The calendar files, the pages' and the newsletter's "add to calendar" links all place an
episode the same way: its span (whole days, or a UTC instant lasting the runtime), its
summary and details in the show's language, and the Google Calendar link built from them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from famfeeds.plan.schedule import Release
from famfeeds.render.i18n import Localiser
from famfeeds.render.urls import episode_url, google_event_link

DEFAULT_RUNTIME = 60  # minutes


def span(release: Release) -> tuple[date | datetime, date | datetime]:
    """Start and (exclusive) end: whole days, or UTC instants lasting the runtime."""
    if release.all_day or release.show.calendar.all_day:
        return release.day, release.day + timedelta(days=1)
    start = release.start.astimezone(UTC)
    return start, start + timedelta(minutes=release.episode.runtime or DEFAULT_RUNTIME)


def google_calendar_link(release: Release, l10n: Localiser) -> str:
    """A Google Calendar event-template link that adds one episode."""
    start, end = span(release)
    details = f"{l10n.streaming_on(release)} {episode_url(release)}"
    return google_event_link(l10n.summary(release), start, end, details, release.show.service)
