"""The site's front page: the show, every season's schedule and the ways to subscribe.

It shares its frame (share cards, feed autodiscovery, styles) with the episode and season
pages of :mod:`famfeeds.render.pages`, and carries the TVSeries JSON-LD with its seasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from markupsafe import Markup

from famfeeds.plan.schedule import Release
from famfeeds.records.models import Season, Show
from famfeeds.records.richtext import markdown_to_html
from famfeeds.render.context import Call, RenderContext, direct
from famfeeds.render.outputs import output
from famfeeds.render.pages import (
    SCHEMA,
    Frame,
    Gap,
    Page,
    Row,
    Site,
    plain_text,
    season_rows,
    shorten,
    with_gaps,
)
from famfeeds.render.urls import SITE_FILE, season_url, webcal

QR_MODULE_PX = 5
"""CSS pixels per module at the code's natural size (it shrinks to fit narrower boxes)."""
QR_QUIET_ZONE = 4
"""Light modules around the code: the quiet zone ISO/IEC 18004 asks for."""


def qr_svg(text: str, title: str) -> str:
    """An inline SVG QR code of ``text``: dark on white with its quiet zone, so a phone
    reads it in dark mode too; ``title`` is its text alternative.

    The drawing is one unit per module in a ``viewBox`` that includes the quiet zone, so
    CSS can scale it to any width without cutting an edge; ``width``/``height`` give its
    natural size, a whole number of pixels per module."""
    import segno

    code = segno.make(text, error="m")
    size = code.symbol_size(scale=1, border=QR_QUIET_ZONE)[0] * QR_MODULE_PX
    svg = str(
        code.svg_inline(
            scale=1,
            border=QR_QUIET_ZONE,
            dark="#000",
            light="#fff",
            title=title,
            svgclass="qr",
            lineclass=None,
            omitsize=True,
        )
    )
    return svg.replace("<svg ", f'<svg role="img" width="{size}" height="{size}" ', 1)


def series_json_ld(show: Show, seasons: Sequence[Season]) -> dict[str, Any]:
    """The TVSeries with its seasons (TVSeason: number, name, page, episode count, start)."""
    data: dict[str, Any] = {
        "@context": SCHEMA,
        "@type": "TVSeries",
        "@id": show.base_url,
        "url": show.base_url,
        "name": show.title,
        "description": plain_text(show.description, show),
        "inLanguage": show.language,
        "numberOfSeasons": len(seasons),
        "numberOfEpisodes": sum(len(s.episodes) for s in seasons),
        "containsSeason": [
            {
                "@type": "TVSeason",
                "seasonNumber": season.number,
                "name": season.title,
                "url": season_url(show, season.number),
                "numberOfEpisodes": len(season.episodes),
                "startDate": season.premiere.isoformat(),
            }
            for season in seasons
        ],
    }
    if show.artwork:
        data["image"] = show.artwork
    if show.homepage:
        data["sameAs"] = show.homepage
    return data


class SeasonSection:
    """One season on the front page: its heading, description and schedule table.

    ``section`` is the three together (macros.html.j2's ``season_section``), made through
    ``call`` (:func:`season_section`), so a rebuild renders only the seasons that changed;
    a project's own index.html.j2 may use the parts instead."""

    def __init__(
        self,
        frame: Frame,
        season: Season,
        states: Sequence[tuple[Release, str]],
        call: Call = direct,
    ) -> None:
        self.frame = frame
        self.season = season
        self.states = states
        self.call = call
        self.url = season_url(frame.show, season.number)

    @cached_property
    def description_html(self) -> str:
        """The season's description as HTML."""
        return markdown_to_html(self.season.description, self.frame.show.base_url)

    @cached_property
    def table(self) -> list[Row | Gap]:
        """The season's schedule table."""
        return with_gaps(self.season, season_rows(self.frame, self.states), self.frame.l10n)

    @property
    def section(self) -> Markup:
        """Heading, description and table, as the front page shows them."""
        made = self.call(season_section, self.frame, self.season, self.states)
        return Markup(made.decode("utf-8"))


def season_section(frame: Frame, season: Season, states: Sequence[tuple[Release, str]]) -> bytes:
    """A season's part of the front page (macros.html.j2's ``season_section``)."""
    macros: Any = frame.env.get_template("macros.html.j2").module
    return str(macros.season_section(SeasonSection(frame, season, states), frame.as_of)).encode(
        "utf-8"
    )


def render_site(site: Site) -> Mapping[str, bytes]:
    """output/index.html: what the show is, when episodes come, and every way to follow
    (:func:`front_page`, through the site's ``call``)."""
    seasons = site.catalogue.seasons
    states = tuple(site.states.get(season.number, ()) for season in seasons)
    return site.call(front_page, site.call, site.frame, seasons, states)


def front_page(
    call: Call,
    frame: Frame,
    seasons: Sequence[Season],
    states: Sequence[Sequence[tuple[Release, str]]],
) -> dict[str, bytes]:
    """index.html, each season's section made through ``call``; ``states``: each season's
    releases in release order with their states."""
    show, l10n = frame.show, frame.l10n
    sections = [
        SeasonSection(frame, season, found, call)
        for season, found in zip(seasons, states, strict=True)
    ]
    page = Page(
        url=show.base_url,
        title=l10n.gettext("%(show)s: episodes, feeds, calendar and newsletter", show=show.title),
        description=shorten(plain_text(show.description, show)),
        og_type="website",
        json_ld=series_json_ld(show, seasons),
        image=show.artwork,
        image_alt=show.title,
    )
    subscription = webcal(show.url(output("calendar").file))
    qr_title = l10n.gettext("QR code of the calendar subscription link")
    return {
        SITE_FILE: frame.render(
            "index.html.j2",
            page,
            seasons=sections,
            qr_svg=qr_svg(subscription, qr_title),
            description_html=markdown_to_html(show.description, show.base_url),
        )
    }


def render(ctx: RenderContext) -> Mapping[str, bytes]:
    """The front page, as a renderer."""
    return render_site(Site.of(ctx))
