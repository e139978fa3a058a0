"""The site's pages: one per episode and per season, the frame every page shares (share
cards, schema.org JSON-LD, feed autodiscovery), the feeds' browser view and sitemap.xml.

- An episode's page (``s04/e03/``) is where feed entries, calendar events and newsletters
  link: title, season and number, synopsis, image, runtime, the release in the show's zone,
  where to watch, "add to calendar" while it is still to come, the previous and next episode.
- Every page carries Open Graph and Twitter card tags and one JSON-LD block (TVEpisode,
  TVSeason or TVSeries), escaped so that no text can end the script element.
- sitemap.xml lists every page with a lastmod taken from the records (a release day or an
  ``updated`` field that has come by ``--as-of``), never from the build's clock; a page
  about the future with no such date has no lastmod rather than an invented one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

from markupsafe import Markup

from famfeeds.plan.schedule import Release, Schedule
from famfeeds.records.models import Catalogue, Season, Show
from famfeeds.records.richtext import html_to_text, markdown_to_html
from famfeeds.render.context import Call, RenderContext, direct
from famfeeds.render.events import google_calendar_link
from famfeeds.render.files import FileSet
from famfeeds.render.i18n import Localiser, localiser
from famfeeds.render.outputs import feeds as feed_outputs
from famfeeds.render.outputs import machine_time, output
from famfeeds.render.personal import Letter
from famfeeds.render.urls import (
    FEED_STYLESHEET_FILE,
    SITEMAP_FILE,
    archive_url,
    episode_file,
    episode_folder,
    episode_url,
    google_subscribe_link,
    issue_file,
    page_file,
    season_file,
    season_folder,
    season_url,
    webcal,
)

if TYPE_CHECKING:
    from jinja2 import Environment

SCHEMA = "https://schema.org"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
SITEMAP_LIMIT = 50_000
"""URLs per sitemap file (the protocol's limit); beyond it, a sitemap index."""
DESCRIPTION_LIMIT = 200
"""Characters of a share card's description."""
UPCOMING = ("next", "upcoming")


# The schedule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One episode in a schedule table."""

    release: Release
    state: str
    """released, next, upcoming or cancelled."""
    title: str
    url: str
    """The episode's page."""
    ics_url: str
    google_url: str
    kind: ClassVar[str] = "episode"

    @property
    def upcoming(self) -> bool:
        """Still to come: the row offers "add to calendar"."""
        return self.state in UPCOMING


@dataclass(frozen=True)
class Gap:
    """Release slots of a season with no episode (a week off, a break)."""

    day: date
    """The first empty slot."""
    text: str
    kind: ClassVar[str] = "gap"


def with_gaps(season: Season, rows: list[Row], l10n: Localiser) -> list[Row | Gap]:
    """A season's rows with a :class:`Gap` row wherever release slots go empty between two
    episodes (by the season's cadence: a skipped Friday of a weekly show)."""
    rule = season.rule
    out: list[Row | Gap] = []
    previous: Row | None = None
    for row in rows:
        if previous is not None and rule.step:
            before = rule.slot_of_day(season.premiere, previous.release.day)
            empty = rule.slot_of_day(season.premiere, row.release.day) - before - 1
            if empty > 0:
                out.append(
                    Gap(rule.day_of_slot(season.premiere, before + 1), _gap(rule.step, empty, l10n))
                )
        out.append(row)
        previous = row
    return out


def _gap(step: int, slots: int, l10n: Localiser) -> str:
    if step % 7:
        days = step * slots
        if days == 1:
            return l10n.gettext("No episode this day")
        return l10n.ngettext("No episodes for %(num)d day", "No episodes for %(num)d days", days)
    weeks = step * slots // 7
    if weeks == 1:
        return l10n.gettext("No episode this week")
    return l10n.ngettext("No episodes for %(num)d week", "No episodes for %(num)d weeks", weeks)


# The frame every page shares -------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What a page says about itself to browsers, link previews and search engines."""

    url: str
    """The canonical address (og:url)."""
    title: str
    description: str
    """Plain text, at most DESCRIPTION_LIMIT characters."""
    og_type: str
    json_ld: dict[str, Any]
    image: str | None = None
    image_alt: str = ""

    @property
    def card(self) -> str:
        """The Twitter card type."""
        return "summary_large_image" if self.image else "summary"

    @property
    def structured_data(self) -> Markup:
        """The JSON-LD, safe inside <script>: ``<``, ``>`` and ``&`` are JSON escapes, so no
        text can close the element or open a comment."""
        return json_script(self.json_ld)


def json_script(data: dict[str, Any]) -> Markup:
    """JSON for a ``<script type="application/ld+json">`` element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))  # C encoder: compact
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return Markup(text)


def plain_text(markdown: str, show: Show) -> str:
    """Markdown as one line of plain text."""
    return " ".join(html_to_text(markdown_to_html(markdown, show.base_url), links=False).split())


def shorten(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "\u2026"


def series_data(show: Show) -> dict[str, Any]:
    """The TVSeries a season or episode belongs to."""
    return {"@type": "TVSeries", "name": show.title, "url": show.base_url}


def season_data(season: Season, show: Show) -> dict[str, Any]:
    """A TVSeason as part of another item: number, name and page."""
    return {
        "@type": "TVSeason",
        "seasonNumber": season.number,
        "name": season.title,
        "url": season_url(show, season.number),
    }


def frame(show: Show, env: Environment, newsletter_latest: date | None = None) -> dict[str, Any]:
    """What base.html.j2 needs besides the page and its content: the show, the feeds, the
    calendar subscription and the newsletter's links. The pieces every page repeats (the
    feed autodiscovery links, the footer's ways to follow) are rendered here, once per
    build, by macros.html.j2's ``head_links`` and ``follow_nav``."""
    calendar_url = show.url(output("calendar").file)
    newsletter = None
    if show.newsletter is not None:
        newsletter = {
            "archive": archive_url(show),
            "latest": show.url(issue_file(newsletter_latest.isoformat(), ".html"))
            if newsletter_latest
            else None,
            "latest_day": newsletter_latest,
            "signup": show.newsletter.signup_url,
        }
    context: dict[str, Any] = {
        "show": show,
        "home": show.base_url,
        "feeds": [
            {"title": o.title, "label": o.label, "href": show.url(o.file), "type": o.media_type}
            for o in feed_outputs()
        ],
        "calendar": {
            "https": calendar_url,
            "webcal": webcal(calendar_url),
            "google": google_subscribe_link(calendar_url),
        },
        "newsletter": newsletter,
    }
    macros: Any = env.get_template("macros.html.j2").module
    follow = macros.follow_nav(**context)
    context.update(head_links=macros.head_links(show, context["feeds"]), follow_nav=follow)
    return context


# Episode and season pages ------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """What every page shares, a step's first argument: the show, the templates and
    message catalogue (``env``), the reference date and the newest newsletter issue out."""

    show: Show
    env: Environment
    as_of: date
    latest_issue: date | None

    @cached_property
    def l10n(self) -> Localiser:
        """The show's language."""
        return localiser(self.env)

    @cached_property
    def context(self) -> dict[str, Any]:
        """The template values of :func:`frame`."""
        return frame(self.show, self.env, self.latest_issue)

    def render(self, template: str, page: Page, **context: Any) -> bytes:
        """A page from ``template`` in the shared frame."""
        html = self.env.get_template(template).render(
            **self.context, page=page, as_of=self.as_of, **context
        )
        return html.encode("utf-8")


@dataclass
class Site:
    """What the page renderers of one build share: the records, the plan's schedule, the
    frame, and each season's releases with their states (Schedule.states)."""

    catalogue: Catalogue
    schedule: Schedule
    as_of: date
    env: Environment
    letters: Sequence[Letter] = ()
    call: Call = direct
    """How the renderers call their steps (famfeeds.render.context.Call)."""
    frame: Frame = field(init=False)
    states: dict[int, tuple[tuple[Release, str], ...]] = field(init=False)
    """Each season's releases in release order with their states."""
    order: dict[int, tuple[Release, ...]] = field(init=False)
    """Each season's releases in the schedule's (season and episode) order."""

    def __post_init__(self) -> None:
        latest = self.letters[-1].item.issue.day if self.letters else None
        self.frame = Frame(self.catalogue.show, self.env, self.as_of, latest)
        states: dict[int, list[tuple[Release, str]]] = {}
        for release, state in self.schedule.states(self.as_of):
            states.setdefault(release.season.number, []).append((release, state))
        self.states = {number: tuple(found) for number, found in states.items()}
        order: dict[int, list[Release]] = {}
        for release in self.schedule.releases:
            order.setdefault(release.season.number, []).append(release)
        self.order = {number: tuple(found) for number, found in order.items()}

    @classmethod
    def of(cls, ctx: RenderContext) -> Site:
        """The build's site, made once for every renderer that needs it."""
        found: Site | None = ctx.shared.get("site")
        if found is None:
            plan = ctx.plan
            found = ctx.shared["site"] = cls(
                plan.catalogue, plan.schedule, ctx.as_of, ctx.env, ctx.letters, ctx.call
            )
        return found

    @property
    def show(self) -> Show:
        """The show."""
        return self.catalogue.show

    @property
    def l10n(self) -> Localiser:
        """The show's language."""
        return self.frame.l10n


def season_rows(frame: Frame, states: Sequence[tuple[Release, str]]) -> list[Row]:
    """A season's rows, from its releases in release order with their states."""
    return [_row(release, state, frame.l10n) for release, state in states]


def _row(release: Release, state: str, l10n: Localiser) -> Row:
    return Row(
        release,
        state,
        l10n.episode_title(release),
        episode_url(release),
        release.show.url(episode_file(release)),
        google_calendar_link(release, l10n),
    )


def episode_page(
    frame: Frame, row: Row, previous: Release | None, following: Release | None
) -> bytes:
    """The page of ``row``'s episode, with links to the episodes before and after it in
    season and episode order."""
    show, l10n = frame.show, frame.l10n
    release = row.release
    episode, season = release.episode, release.season
    synopsis_html = markdown_to_html(episode.synopsis, show.base_url)
    synopsis = " ".join(html_to_text(synopsis_html, links=False).split())
    url = episode_url(release)
    data: dict[str, Any] = {
        "@context": SCHEMA,
        "@type": "TVEpisode",
        "@id": url,
        "url": url,
        "name": episode.title,
        "episodeNumber": episode.number,
        "partOfSeason": season_data(season, show),
        "partOfSeries": series_data(show),
        "description": synopsis,
        "inLanguage": show.language,
    }
    if not release.cancelled:
        data["datePublished"] = (
            release.day.isoformat() if release.all_day else machine_time(release.start).isoformat()
        )
    if episode.image:
        data["image"] = episode.image
    if episode.runtime:
        data["timeRequired"] = f"PT{episode.runtime}M"
    page = Page(
        url=url,
        title=l10n.summary(release),
        description=shorten(synopsis or l10n.summary(release)),
        og_type="video.episode",
        json_ld=data,
        image=episode.image or show.artwork,
        image_alt=episode.alt_text if episode.image else show.title,
    )
    neighbours = {"previous": previous, "next": following}
    return frame.render(
        "episode.html.j2",
        page,
        release=release,
        row=row,
        season_page=season_url(show, season.number),
        synopsis_html=synopsis_html,
        neighbours={
            name: {"url": episode_url(r), "title": l10n.episode_title(r)} if r else None
            for name, r in neighbours.items()
        },
    )


def season_page(frame: Frame, season: Season, table: list[Row | Gap]) -> bytes:
    """A season's page: its description and schedule, and its own calendar."""
    show = frame.show
    url = season_url(show, season.number)
    episodes = sorted(
        (item.release for item in table if isinstance(item, Row)), key=lambda r: r.episode.number
    )
    description = plain_text(season.description, show)
    data: dict[str, Any] = {
        "@context": SCHEMA,
        "@type": "TVSeason",
        "@id": url,
        "url": url,
        "name": season.title,
        "seasonNumber": season.number,
        "numberOfEpisodes": len(season.episodes),
        "startDate": season.premiere.isoformat(),
        "partOfSeries": series_data(show),
        "inLanguage": show.language,
        "episode": [
            {
                "@type": "TVEpisode",
                "episodeNumber": r.episode.number,
                "name": r.episode.title,
                "url": episode_url(r),
            }
            for r in episodes
        ],
    }
    if description:
        data["description"] = description
    title = frame.l10n.gettext("%(show)s: %(season)s", show=show.title, season=season.title)
    page = Page(
        url=url,
        title=title,
        description=shorten(description or title),
        og_type="website",
        json_ld=data,
        image=show.artwork,
        image_alt=show.title,
    )
    calendar_url = show.url(season_file(season.number))
    return frame.render(
        "season.html.j2",
        page,
        season=season,
        table=table,
        description_html=markdown_to_html(season.description, show.base_url),
        season_calendar={"https": calendar_url, "webcal": webcal(calendar_url)},
    )


def season_pages(
    frame: Frame,
    season: Season,
    order: Sequence[Release],
    states: Sequence[tuple[Release, str]],
    before: Release | None,
    after: Release | None,
) -> dict[str, bytes]:
    """One season's page and its episodes' pages: ``order``, its releases in season and
    episode order, between ``before`` and ``after``, the schedule's neighbours; ``states``,
    its releases in release order with their states."""
    rows = season_rows(frame, states)
    row_of = {id(row.release): row for row in rows}
    files: dict[str, bytes] = {}
    for index, release in enumerate(order):
        previous = order[index - 1] if index else before
        following = order[index + 1] if index + 1 < len(order) else after
        folder = episode_folder(release.season.number, release.episode.number)
        files[page_file(folder)] = episode_page(frame, row_of[id(release)], previous, following)
    table = with_gaps(season, rows, frame.l10n)
    files[page_file(season_folder(season.number))] = season_page(frame, season, table)
    return files


def render_pages(site: Site) -> FileSet:
    """Every episode's and season's page, a season at a time (:func:`season_pages`)."""
    files = FileSet()
    releases = site.schedule.releases
    start = 0
    for season in site.catalogue.seasons:
        order = site.order.get(season.number, ())
        end = start + len(order)
        before = releases[start - 1] if start and order else None
        after = releases[end] if end < len(releases) and order else None
        states = site.states.get(season.number, ())
        files.add(site.call(season_pages, site.frame, season, order, states, before, after))
        start = end
    return files


# The feeds in a browser ----------------------------------------------------------------------


def render_feed_stylesheet(show: Show, env: Environment) -> dict[str, bytes]:
    """feed.xsl, which the feeds name so that a browser shows them as a page (in the show's
    language); nothing when show.toml turns it off."""
    if not show.feed_stylesheet:
        return {}
    text = env.get_template("feed.xsl.j2").render(
        show=show, home=show.base_url, html_lang=show.language
    )
    return {FEED_STYLESHEET_FILE: text.encode("utf-8")}


# The sitemap -------------------------------------------------------------------------------


def _changed(release: Release, as_of: date) -> date | None:
    """An episode page's last change by ``as_of``: its release day, or its record's
    ``updated`` day, whichever is later and has come."""
    days = [release.day] if release.released_by(as_of) else []
    if release.episode.updated is not None:
        day = release.updated.astimezone(release.show.zone).date()
        days += [day] if day <= as_of else []
    return max(days, default=None)


def page_dates(
    show: Show,
    seasons: Sequence[Season],
    orders: Sequence[Sequence[Release]],
    as_of: date,
    issue_days: Sequence[date],
) -> list[tuple[str, date | None]]:
    """Every page's URL and last change from the records, index first (``orders``: each
    season's releases; ``issue_days``: the newsletter issues out)."""
    releases = [release for order in orders for release in order]
    episodes = [(episode_url(r), _changed(r, as_of)) for r in releases]
    newest_of: dict[int, date] = {}
    for release, (_, day) in zip(releases, episodes, strict=True):
        number = release.season.number
        if day is not None and (number not in newest_of or day > newest_of[number]):
            newest_of[number] = day
    pages: list[tuple[str, date | None]] = [
        (show.base_url, max(newest_of.values(), default=None)),
        *((season_url(show, s.number), newest_of.get(s.number)) for s in seasons),
        *episodes,
    ]
    if issue_days:
        pages.append((archive_url(show), max(issue_days)))
        pages += [(show.url(issue_file(day.isoformat(), ".html")), day) for day in issue_days]
    return pages


def _url_line(url: str, day: date | None) -> str:
    lastmod = f"<lastmod>{day.isoformat()}</lastmod>" if day else ""
    return f"  <url><loc>{escape(url)}</loc>{lastmod}</url>"


def sitemap_xml(entries: list[tuple[str, date | None]]) -> bytes:
    """One sitemap file (sitemaps.org 0.9)."""
    return _urlset([_url_line(url, day) for url, day in entries])


def _urlset(lines: list[str]) -> bytes:
    head = ['<?xml version="1.0" encoding="UTF-8"?>', f'<urlset xmlns="{SITEMAP_NS}">']
    return ("\n".join([*head, *lines, "</urlset>"]) + "\n").encode("utf-8")


def season_sitemap(releases: Sequence[Release], as_of: date) -> bytes:
    """A season's episode pages as sitemap lines, after a first line with the newest
    change among them ('' if none)."""
    entries = [(episode_url(r), _changed(r, as_of)) for r in releases]
    newest = max((day for _, day in entries if day), default=None)
    lines = [newest.isoformat() if newest else "", *(_url_line(u, d) for u, d in entries)]
    return "\n".join(lines).encode("utf-8")


def render_sitemap(
    call: Call,
    show: Show,
    seasons: Sequence[Season],
    orders: Sequence[Sequence[Release]],
    as_of: date,
    issue_days: Sequence[date],
    limit: int = SITEMAP_LIMIT,
) -> dict[str, bytes]:
    """sitemap.xml: every page (see :func:`page_dates`); beyond ``limit`` URLs, a sitemap
    index of numbered files. One file is made a season's episode lines at a time
    (:func:`season_sitemap`, through ``call``)."""
    pages = 1 + len(seasons) + sum(len(order) for order in orders)
    pages += 1 + len(issue_days) if issue_days else 0
    if pages <= limit:
        newest_of: dict[int, date] = {}
        chunks: list[str] = []
        for season, order in zip(seasons, orders, strict=True):
            if not order:
                continue
            first, _, lines = call(season_sitemap, order, as_of).decode().partition("\n")
            if first:
                newest_of[season.number] = date.fromisoformat(first)
            chunks += [lines] if lines else []
        out = [
            _url_line(show.base_url, max(newest_of.values(), default=None)),
            *(_url_line(season_url(show, s.number), newest_of.get(s.number)) for s in seasons),
            *chunks,
        ]
        if issue_days:
            out.append(_url_line(archive_url(show), max(issue_days)))
            out += [_url_line(show.url(issue_file(d.isoformat(), ".html")), d) for d in issue_days]
        return {SITEMAP_FILE: _urlset(out)}
    entries = page_dates(show, seasons, orders, as_of, issue_days)
    files: dict[str, bytes] = {}
    index = ['<?xml version="1.0" encoding="UTF-8"?>', f'<sitemapindex xmlns="{SITEMAP_NS}">']
    for number, start in enumerate(range(0, len(entries), limit), start=1):
        part = entries[start : start + limit]
        name = f"sitemap-{number}.xml"
        files[name] = sitemap_xml(part)
        newest = max((d for _, d in part if d), default=None)
        lastmod = f"<lastmod>{newest.isoformat()}</lastmod>" if newest else ""
        index.append(f"  <sitemap><loc>{escape(show.url(name))}</loc>{lastmod}</sitemap>")
    index.append("</sitemapindex>")
    files[SITEMAP_FILE] = ("\n".join(index) + "\n").encode("utf-8")
    return files


def sitemap(site: Site, limit: int = SITEMAP_LIMIT) -> Mapping[str, bytes]:
    """The site's sitemap files (:func:`render_sitemap`, through the site's ``call``)."""
    seasons = site.catalogue.seasons
    orders = tuple(site.order.get(s.number, ()) for s in seasons)
    days = tuple(letter.item.issue.day for letter in site.letters)
    return site.call(render_sitemap, site.call, site.show, seasons, orders, site.as_of, days, limit)


def render(ctx: RenderContext) -> FileSet:
    """Episode and season pages, the feeds' stylesheet and the sitemap, as a renderer."""
    site = Site.of(ctx)
    stylesheet = render_feed_stylesheet(site.show, site.env)
    return FileSet(render_pages(site), stylesheet, sitemap(site))
