"""The site's front page: the show, every season's schedule and the ways to subscribe.

It shares its frame (share cards, feed autodiscovery, styles) with the episode and season
pages of :mod:`famfeeds.render.pages`, and carries the TVSeries JSON-LD with its seasons.
"""

from __future__ import annotations

from typing import Any

from famfeeds.render.context import RenderContext
from famfeeds.render.outputs import output
from famfeeds.render.pages import (
    SCHEMA,
    Page,
    Site,
    plain_text,
    season_tables,
    shorten,
)
from famfeeds.render.richtext import markdown_to_html
from famfeeds.render.urls import SITE_FILE, season_url, webcal


def qr_svg(text: str, title: str) -> str:
    """An inline SVG QR code of ``text``: dark on white with a quiet zone, so a phone
    reads it in dark mode too; ``title`` is its text alternative."""
    import segno

    code = segno.make(text, error="m")
    return str(
        code.svg_inline(
            scale=5,
            border=4,
            dark="#000",
            light="#fff",
            title=title,
            svgclass="qr",
            lineclass=None,
        )
    )


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


def render_site(site: Site) -> dict[str, bytes]:
    """output/index.html: what the show is, when episodes come, and every way to follow."""
    show, l10n = site.show, site.l10n
    tables = season_tables(site.catalogue, site.rows, l10n)
    seasons = [
        {
            "season": season,
            "url": season_url(show, season.number),
            "description_html": markdown_to_html(season.description, show.base_url),
            "table": tables[season.number],
        }
        for season in site.catalogue.seasons
    ]
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


def render(ctx: RenderContext) -> dict[str, bytes]:
    """The front page, as a renderer."""
    site = Site(ctx.plan.catalogue, ctx.plan.schedule, ctx.as_of, ctx.env, ctx.letters)
    return render_site(site)
