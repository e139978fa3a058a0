"""The site's front page: the show, every season's schedule and the ways to subscribe.

It shares its frame (share cards, feed autodiscovery, styles) with the episode and season
pages of :mod:`famfeeds.render.pages`, and carries the TVSeries JSON-LD with its seasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property, partial
from typing import Any

from markupsafe import Markup

from famfeeds.records.models import Season
from famfeeds.records.richtext import markdown_to_html
from famfeeds.render.context import RenderContext
from famfeeds.render.memo import LazyFiles, key_of, memoized, memoized_files, remember
from famfeeds.render.outputs import output
from famfeeds.render.pages import (
    SCHEMA,
    Gap,
    Page,
    Row,
    Site,
    plain_text,
    shorten,
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


def series_json_ld(site: Site) -> dict[str, Any]:
    """The TVSeries with its seasons (TVSeason: number, name, page, episode count, start)."""
    show = site.show
    data: dict[str, Any] = {
        "@context": SCHEMA,
        "@type": "TVSeries",
        "@id": show.base_url,
        "url": show.base_url,
        "name": show.title,
        "description": plain_text(show.description, show),
        "inLanguage": show.language,
        "numberOfSeasons": len(site.catalogue.seasons),
        "numberOfEpisodes": sum(len(s.episodes) for s in site.catalogue.seasons),
        "containsSeason": [
            {
                "@type": "TVSeason",
                "seasonNumber": season.number,
                "name": season.title,
                "url": season_url(show, season.number),
                "numberOfEpisodes": len(season.episodes),
                "startDate": season.premiere.isoformat(),
            }
            for season in site.catalogue.seasons
        ],
    }
    if show.artwork:
        data["image"] = show.artwork
    if show.homepage:
        data["sameAs"] = show.homepage
    return data


class SeasonSection:
    """One season on the front page: its heading, description and schedule table.

    ``section`` is the three together (macros.html.j2's ``season_section``), remembered
    by the season's inputs (:meth:`Site.season_inputs`), so a rebuild renders only the
    seasons that changed; a project's own index.html.j2 may use the parts instead."""

    def __init__(self, site: Site, season: Season) -> None:
        self.site = site
        self.season = season
        self.url = season_url(site.show, season.number)

    @cached_property
    def description_html(self) -> str:
        """The season's description as HTML."""
        return markdown_to_html(self.season.description, self.site.show.base_url)

    @cached_property
    def table(self) -> list[Row | Gap]:
        """The season's schedule table."""
        return self.site.table(self.season)

    @cached_property
    def inputs(self) -> tuple[str, ...] | None:
        """The memo inputs of :attr:`section` (None: not remembered)."""
        return self.site.season_inputs("site.season_section", self.season)

    @property
    def section(self) -> Markup:
        """Heading, description and table, as the front page shows them."""
        if self.inputs is None:
            return Markup(self._section().decode("utf-8"))
        return Markup(memoized(self.site.memo, self._section, *self.inputs).decode("utf-8"))

    def _section(self) -> bytes:
        macros: Any = self.site.env.get_template("macros.html.j2").module
        return str(macros.season_section(self, self.site.as_of)).encode("utf-8")


def render_site(site: Site) -> Mapping[str, bytes]:
    """output/index.html: what the show is, when episodes come, and every way to follow.

    Remembered as a whole by the inputs of every season's section and of the rest of the
    page (the show, templates, reference date, newest issue); else made with each season's
    section remembered on its own."""
    seasons = [SeasonSection(site, season) for season in site.catalogue.seasons]
    make = partial(front_page, site, seasons)
    inputs = [section.inputs for section in seasons]
    if not site.templates_key or site.season_keys is None or None in inputs:
        return make()
    keys = [key_of(*parts).hex() for parts in inputs if parts is not None]
    files = memoized_files(site.memo, make, *site.shared_inputs("site.front_page"), *keys)
    if isinstance(files, LazyFiles):
        for parts in inputs:  # kept for the next build that makes the page
            remember(site.memo, *parts)  # type: ignore[misc]
    return files


def front_page(site: Site, seasons: list[SeasonSection]) -> dict[str, bytes]:
    """index.html, made."""
    show, l10n = site.show, site.l10n
    page = Page(
        url=show.base_url,
        title=l10n.gettext("%(show)s: episodes, feeds, calendar and newsletter", show=show.title),
        description=shorten(plain_text(show.description, show)),
        og_type="website",
        json_ld=series_json_ld(site),
        image=show.artwork,
        image_alt=show.title,
    )
    subscription = webcal(show.url(output("calendar").file))
    qr_title = l10n.gettext("QR code of the calendar subscription link")
    return {
        SITE_FILE: site.render(
            "index.html.j2",
            page,
            seasons=seasons,
            qr_svg=qr_svg(subscription, qr_title),
            description_html=markdown_to_html(show.description, show.base_url),
        )
    }


def render(ctx: RenderContext) -> Mapping[str, bytes]:
    """The front page, as a renderer."""
    return render_site(Site.of(ctx))
