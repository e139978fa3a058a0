"""Public URLs, file names and permanent ids: derived from stable keys, never from titles.

This module owns every name a subscriber's software keeps: feed and calendar file names,
entry ids, event UIDs, webcal and Google Calendar links, newsletter file names, the pages'
addresses and the unsubscribe URL.

Pages live in folders named by numbers only (``s04/`` for a season, ``s04/e03/`` for an
episode, each an ``index.html``): the address never changes when a title does (link previews
and search engines keep it for days), it works on every static host without rewrite rules,
and cutting the last part of an episode's address gives its season's page.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import quote, urlencode

from famfeeds.plan.schedule import Release
from famfeeds.records.models import Newsletter, Show

ATOM_FILE = "feed.xml"
RSS_FILE = "rss.xml"
JSON_FILE = "feed.json"
SITE_FILE = "index.html"
CALENDAR_FILE = "calendar.ics"
SITEMAP_FILE = "sitemap.xml"
FEED_STYLESHEET_FILE = "feed.xsl"
NEWSLETTER_FOLDER = "newsletter"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def tag_uri(show: Show, *parts: str) -> str:
    """A tag: URI (RFC 4151) from the site's domain, the show's id date and ``parts``."""
    path = "/".join((show.slug, *parts))
    return f"tag:{show.domain},{show.id_date.isoformat()}:{path}"


def episode_id(release: Release) -> str:
    """The permanent id of an episode: show, season and episode number only."""
    return tag_uri(release.show, f"s{release.season.number}", f"e{release.episode.number}")


def season_folder(season: int) -> str:
    """A season page's folder under output/, e.g. ``s04/``."""
    return f"s{season:02d}/"


def episode_folder(season: int, episode: int) -> str:
    """An episode page's folder under output/, e.g. ``s04/e03/``."""
    return f"{season_folder(season)}e{episode:02d}/"


def page_file(folder: str) -> str:
    """The file that serves a page folder, e.g. ``s04/e03/index.html``."""
    return folder + SITE_FILE


def episode_url(release: Release) -> str:
    """An episode's page: where feed entries, calendar events and newsletters link."""
    return release.show.url(episode_folder(release.season.number, release.episode.number))


def season_url(show: Show, season: int) -> str:
    """A season's page."""
    return show.url(season_folder(season))


def event_key(show: Show, season: int, episode: int) -> str:
    """An event's key in famfeeds.lock: show, season and episode (no domain, so a
    preview or staging build at another address shares the published history)."""
    return f"{show.slug}-s{season:02d}e{episode:02d}"


def is_event_of(slug: str, key: str) -> bool:
    """True when ``key`` is an event key of the show ``slug`` (not of a show whose slug
    merely starts the same way)."""
    rest = key.removeprefix(f"{slug}-")
    return rest != key and _EVENT_REST(rest) is not None


_EVENT_REST = re.compile(r"s\d+e\d+").fullmatch


def event_uid(show: Show, key: str) -> str:
    """An event's UID: its key and the site's domain; never changes."""
    return f"{key}@{show.domain}"


def season_file(season: int) -> str:
    """The file name of one season's calendar."""
    return f"season-{season:02d}.ics"


def episode_file(release: Release) -> str:
    """The file name of one episode's "add to calendar" .ics."""
    return f"episodes/{release.key}.ics"


def webcal(url: str) -> str:
    """The webcal:// form of an http(s) URL, which calendar apps open as a subscription."""
    return "webcal://" + url.split("://", 1)[1]


def google_subscribe_link(calendar_url: str) -> str:
    """Google Calendar's "add by URL" link for a calendar subscription."""
    return "https://calendar.google.com/calendar/render?" + urlencode({"cid": webcal(calendar_url)})


def stamp(moment: date | datetime) -> str:
    """A calendar value: ``YYYYMMDDTHHMMSSZ`` for an instant (already UTC), ``YYYY-MM-DD`` for
    a day."""
    return moment.strftime(STAMP_FORMAT) if isinstance(moment, datetime) else moment.isoformat()


def google_event_link(
    summary: str, start: date | datetime, end: date | datetime, details: str, location: str
) -> str:
    """A Google Calendar event-template link that adds one event."""
    dates = f"{stamp(start)}/{stamp(end)}".replace("-", "")
    query = urlencode(
        {
            "action": "TEMPLATE",
            "text": summary,
            "dates": dates,
            "details": details,
            "location": location,
        }
    )
    return f"https://calendar.google.com/calendar/render?{query}"


def issue_file(slug: str, suffix: str) -> str:
    """A newsletter issue's file name under output/, e.g. ``newsletter/2023-11-24.html``."""
    return f"{NEWSLETTER_FOLDER}/{slug}{suffix}"


def archive_url(show: Show) -> str:
    """The newsletter archive's URL."""
    return show.url(f"{NEWSLETTER_FOLDER}/")


def unsubscribe_url(newsletter: Newsletter, token: str | None) -> str:
    """The subscriber's unsubscribe URL (the token URL-encoded; empty when unknown)."""
    return newsletter.unsubscribe_template.replace("{token}", quote(token or "", safe=""))
