"""The site's page: the show, the schedule and the ways to subscribe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from famfeeds.calendar import CALENDAR_FILE, episode_file, google_calendar_link, webcal
from famfeeds.content import Catalogue
from famfeeds.richtext import markdown_to_html
from famfeeds.schedule import Release, Schedule
from famfeeds.urls import ATOM_FILE, JSON_FILE, RSS_FILE, SITE_FILE, episode_title

if TYPE_CHECKING:
    from jinja2 import Environment


@dataclass(frozen=True)
class Row:
    """One line of the schedule table."""

    release: Release
    state: str
    """released, next, upcoming or cancelled."""
    title: str
    ics_url: str
    google_url: str


def schedule_rows(schedule: Schedule, as_of: date) -> list[Row]:
    """Every release with its state as of ``as_of``; the first unreleased one is next."""
    rows = []
    next_seen = False
    for release in sorted(schedule.releases, key=lambda r: (r.instant, r.season.number)):
        if release.cancelled:
            state = "cancelled"
        elif release.released_by(as_of):
            state = "released"
        elif not next_seen:
            state, next_seen = "next", True
        else:
            state = "upcoming"
        rows.append(
            Row(
                release,
                state,
                episode_title(release),
                release.show.url(episode_file(release)),
                google_calendar_link(release),
            )
        )
    return rows


def render_site(
    catalogue: Catalogue, schedule: Schedule, as_of: date, env: Environment
) -> dict[str, bytes]:
    """output/index.html."""
    show = catalogue.show
    by_season: dict[int, list[Row]] = {}
    for row in schedule_rows(schedule, as_of):
        by_season.setdefault(row.release.season.number, []).append(row)
    seasons = [
        {
            "season": season,
            "description_html": markdown_to_html(season.description, show.base_url),
            "rows": by_season.get(season.number, []),
        }
        for season in catalogue.seasons
    ]
    feeds = [
        {"title": "Atom", "href": show.url(ATOM_FILE), "type": "application/atom+xml"},
        {"title": "RSS", "href": show.url(RSS_FILE), "type": "application/rss+xml"},
        {"title": "JSON Feed", "href": show.url(JSON_FILE), "type": "application/feed+json"},
    ]
    calendar_url = show.url(CALENDAR_FILE)
    page = env.get_template("index.html.j2").render(
        show=show,
        seasons=seasons,
        feeds=feeds,
        as_of=as_of,
        calendar={"https": calendar_url, "webcal": webcal(calendar_url)},
        description_html=markdown_to_html(show.description, show.base_url),
    )
    return {SITE_FILE: page.encode("utf-8")}
