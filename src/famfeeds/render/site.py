"""The site's page: the show, the schedule and the ways to subscribe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from famfeeds.content import Catalogue
from famfeeds.render.context import RenderContext
from famfeeds.render.events import google_calendar_link
from famfeeds.render.outputs import feeds as feed_outputs
from famfeeds.render.outputs import output
from famfeeds.render.richtext import markdown_to_html
from famfeeds.render.urls import (
    SITE_FILE,
    archive_url,
    episode_file,
    episode_title,
    google_subscribe_link,
    issue_file,
    webcal,
)
from famfeeds.schedule import Release, Schedule

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


def qr_svg(text: str) -> str:
    """An inline SVG QR code of ``text``: dark on white with a quiet zone, so a phone
    reads it in dark mode too."""
    import segno

    code = segno.make(text, error="m")
    return str(
        code.svg_inline(
            scale=5,
            border=4,
            dark="#000",
            light="#fff",
            title="QR code of the calendar subscription link",
            svgclass="qr",
            lineclass=None,
        )
    )


def render_site(
    catalogue: Catalogue,
    schedule: Schedule,
    as_of: date,
    env: Environment,
    latest_issue: date | None = None,
) -> dict[str, bytes]:
    """output/index.html: what the show is, when episodes come, and every way to follow."""
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
        {"title": o.title, "label": o.label, "href": show.url(o.file), "type": o.media_type}
        for o in feed_outputs()
    ]
    calendar_url = show.url(output("calendar").file)
    subscription = webcal(calendar_url)
    newsletter = None
    if show.newsletter is not None:
        newsletter = {
            "archive": archive_url(show),
            "latest": show.url(issue_file(latest_issue.isoformat(), ".html"))
            if latest_issue
            else None,
            "latest_day": latest_issue,
            "signup": show.newsletter.signup_url,
        }
    page = env.get_template("index.html.j2").render(
        show=show,
        seasons=seasons,
        feeds=feeds,
        as_of=as_of,
        newsletter=newsletter,
        calendar={
            "https": calendar_url,
            "webcal": subscription,
            "google": google_subscribe_link(calendar_url),
            "qr_svg": qr_svg(subscription),
        },
        description_html=markdown_to_html(show.description, show.base_url),
    )
    return {SITE_FILE: page.encode("utf-8")}


def render(ctx: RenderContext) -> dict[str, bytes]:
    """The page, as a renderer."""
    latest = ctx.letters[-1].item.issue.day if ctx.letters else None
    return render_site(ctx.plan.catalogue, ctx.plan.schedule, ctx.as_of, ctx.env, latest)
