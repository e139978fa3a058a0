"""The table of output formats: one row per kind of file a subscriber's software reads.

Adding an output format is one renderer (see :mod:`famfeeds.build.pipeline`) and one row here: the
page's links and autodiscovery, the preview server's content types and the newsletter's
links all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from famfeeds.render.i18n import N_
from famfeeds.render.urls import (
    ATOM_FILE,
    CALENDAR_FILE,
    JSON_FILE,
    RSS_FILE,
    SITE_FILE,
    SITEMAP_FILE,
)


@dataclass(frozen=True)
class Output:
    """One output format."""

    name: str
    """A short key, e.g. ``atom``."""
    file: str
    """Its file under output/ (for a family of files, the main one)."""
    media_type: str
    """The Content-Type a client expects."""
    label: str
    """How a page names it, e.g. ``Atom feed`` (a message: templates show ``_(label)``)."""
    title: str
    """The short title of an autodiscovery link, e.g. ``Atom``."""
    rel: str | None
    """The ``<link rel>`` that advertises it on the page, or None."""
    feed: bool = False
    """A feed a reader subscribes to."""


OUTPUTS: tuple[Output, ...] = (
    Output(
        "atom", ATOM_FILE, "application/atom+xml", N_("Atom feed"), "Atom", "alternate", feed=True
    ),
    Output("rss", RSS_FILE, "application/rss+xml", N_("RSS feed"), "RSS", "alternate", feed=True),
    Output(
        "json",
        JSON_FILE,
        "application/feed+json",
        N_("JSON Feed"),
        "JSON Feed",
        "alternate",
        feed=True,
    ),
    Output(
        "calendar", CALENDAR_FILE, "text/calendar", N_("Calendar file (.ics)"), "iCalendar", None
    ),
    Output("page", SITE_FILE, "text/html", N_("Page"), "Page", None),
    Output("sitemap", SITEMAP_FILE, "application/xml", N_("Sitemap"), "Sitemap", None),
)

SUFFIX_TYPES: dict[str, str] = {
    ".ics": "text/calendar",
    ".html": "text/html",
    ".txt": "text/plain",
    ".eml": "message/rfc822",
    ".json": "application/json",
    ".xml": "application/xml",
    ".xsl": "text/xsl",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
"""Content types of the other files a build writes, by suffix."""

TEXT_TYPES = ("text/", "application/atom+xml", "application/rss+xml", "application/feed+json")


def output(name: str) -> Output:
    """The row named ``name``."""
    for row in OUTPUTS:
        if row.name == name:
            return row
    raise KeyError(name)


def feeds() -> tuple[Output, ...]:
    """The feeds, in the order a page lists them."""
    return tuple(row for row in OUTPUTS if row.feed)


def media_type(path: str) -> str | None:
    """The Content-Type for a built file (with ``charset=utf-8`` for text); None for a file
    famfeeds does not make (the caller guesses from the suffix)."""
    name = path.rsplit("/", 1)[-1]
    kind = next((row.media_type for row in OUTPUTS if row.file == name and row.feed), None)
    if kind is None:
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        kind = SUFFIX_TYPES.get(suffix)
    if kind is None:
        return None
    if kind.startswith(TEXT_TYPES):
        return f"{kind}; charset=utf-8"
    return kind


def machine_time(moment: datetime) -> datetime:
    """``moment`` as feeds, mail headers and structured data write it: as it is, or in UTC
    when its zone's offset then was not a whole number of minutes (local mean time before
    standard time, such as Kolkata's +05:21:10 in 1900), which RFC 3339 and RFC 5322
    cannot write."""
    offset = moment.utcoffset()
    if offset is None or offset % timedelta(minutes=1) == timedelta(0):
        return moment
    return moment.astimezone(UTC)
