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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

from markupsafe import Markup

from famfeeds.plan.schedule import Release, Schedule
from famfeeds.records.models import Catalogue, Season, Show
from famfeeds.records.richtext import html_to_text, markdown_to_html
from famfeeds.render.context import RenderContext
from famfeeds.render.events import google_calendar_link
from famfeeds.render.files import FileSet
from famfeeds.render.i18n import Localiser, localiser
from famfeeds.render.memo import (
    NO_MEMO,
    LazyFiles,
    Memo,
    key_of,
    memoized,
    memoized_files,
    remember,
)
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


@dataclass
class Site:
    """What every page of one build shares. Rows and tables are worked out per season,
    when a season's pages are made (a rebuild makes only the seasons whose inputs changed)."""

    catalogue: Catalogue
    schedule: Schedule
    as_of: date
    env: Environment
    letters: Sequence[Letter] = ()
    memo: Memo = NO_MEMO
    """Remembered pages (famfeeds.render.memo); used only with a ``templates_key``."""
    templates_key: str = ""
    season_keys: Callable[[Season], str] | None = None
    show_key: str = ""
    l10n: Localiser = field(init=False)
    states: dict[int, list[tuple[Release, str]]] = field(init=False)
    """Each season's releases in release order with their states (Schedule.states)."""
    frame: dict[str, Any] = field(init=False)
    """The shared frame of every page (see :func:`frame`)."""
    _rows: dict[int, list[Row]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.l10n = localiser(self.env)
        self.states = {}
        for release, state in self.schedule.states(self.as_of):
            self.states.setdefault(release.season.number, []).append((release, state))
        self.frame = frame(self.show, self.env, self.latest_issue)

    @classmethod
    def of(cls, ctx: RenderContext) -> Site:
        """The build's site, made once for every renderer that needs it."""
        found: Site | None = ctx.shared.get("site")
        if found is None:
            found = ctx.shared["site"] = cls(
                ctx.plan.catalogue,
                ctx.plan.schedule,
                ctx.as_of,
                ctx.env,
                ctx.letters,
                ctx.memo,
                ctx.templates_key,
                ctx.season_key,
                ctx.show_key or ctx.shared_show_key(),
            )
        return found

    @property
    def show(self) -> Show:
        """The show."""
        return self.catalogue.show

    @property
    def latest_issue(self) -> date | None:
        """The newest newsletter issue out, if any."""
        return self.letters[-1].item.issue.day if self.letters else None

    def rows(self, season: int) -> list[Row]:
        """A season's rows in release order."""
        found = self._rows.get(season)
        if found is None:
            found = self._rows[season] = [
                _row(release, state, self.l10n) for release, state in self.states.get(season, [])
            ]
        return found

    def row(self, release: Release) -> Row:
        """One episode's row."""
        return next(row for row in self.rows(release.season.number) if row.release is release)

    def table(self, season: Season) -> list[Row | Gap]:
        """A season's schedule table, with its gaps."""
        return with_gaps(season, self.rows(season.number), self.l10n)

    def shared_inputs(self, kind: str) -> tuple[str, ...]:
        """Memo inputs of ``kind``, made from what every page shares: the show, the
        templates and catalogue, the reference date and the newest issue."""
        latest = self.latest_issue.isoformat() if self.latest_issue else ""
        return (kind, self.templates_key, self.show_key, self.as_of.isoformat(), latest)

    def season_inputs(self, kind: str, season: Season, *more: str) -> tuple[str, ...] | None:
        """Memo inputs of ``kind``, made from one season's records, its releases' states,
        ``more`` and what every page shares (:meth:`shared_inputs`); None when nothing
        templated may be remembered (no ``templates_key``)."""
        if not self.templates_key or self.season_keys is None:
            return None
        states = ",".join(state for _, state in self.states.get(season.number, []))
        return (*self.shared_inputs(kind), self.season_keys(season), states, *more)

    def render(self, template: str, page: Page, **context: Any) -> bytes:
        """A page from ``template`` in the shared frame."""
        html = self.env.get_template(template).render(
            **self.frame, page=page, as_of=self.as_of, **context
        )
        return html.encode("utf-8")


def _row(release: Release, state: str, l10n: Localiser) -> Row:
    return Row(
        release,
        state,
        l10n.episode_title(release),
        episode_url(release),
        release.show.url(episode_file(release)),
        google_calendar_link(release, l10n),
    )


def episode_page(site: Site, index: int) -> bytes:
    """The page of the episode at ``index`` in season and episode order."""
    show, l10n = site.show, site.l10n
    releases = site.schedule.releases
    release = releases[index]
    episode, season = release.episode, release.season
    row = site.row(release)
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
    neighbours = {
        "previous": releases[index - 1] if index > 0 else None,
        "next": releases[index + 1] if index + 1 < len(releases) else None,
    }
    return site.render(
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


def season_page(site: Site, season: Season, table: list[Row | Gap]) -> bytes:
    """A season's page: its description and schedule, and its own calendar."""
    show = site.show
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
    title = site.l10n.gettext("%(show)s: %(season)s", show=show.title, season=season.title)
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
    return site.render(
        "season.html.j2",
        page,
        season=season,
        table=table,
        description_html=markdown_to_html(season.description, show.base_url),
        season_calendar={"https": calendar_url, "webcal": webcal(calendar_url)},
    )


def season_pages(site: Site, season: Season, indexes: list[int]) -> dict[str, bytes]:
    """One season's page and its episodes' pages (``indexes`` in the schedule's releases)."""
    files: dict[str, bytes] = {}
    releases = site.schedule.releases
    for index in indexes:
        release = releases[index]
        folder = episode_folder(release.season.number, release.episode.number)
        files[page_file(folder)] = episode_page(site, index)
    files[page_file(season_folder(season.number))] = season_page(site, season, site.table(season))
    return files


def render_pages(site: Site) -> FileSet:
    """Every episode's and season's page, a season at a time: a season whose inputs (its
    records, its releases' states, its neighbours' records, and what every page shares)
    were seen before comes from the memo as names and digests, made again only if its
    bytes are needed."""
    releases = site.schedule.releases
    positions: dict[int, list[int]] = {}
    for index, release in enumerate(releases):
        positions.setdefault(release.season.number, []).append(index)
    files = FileSet()
    for season in site.catalogue.seasons:
        indexes = positions.get(season.number, [])
        make = partial(season_pages, site, season, indexes)
        neighbours = [
            _identity(site, releases[i]) if 0 <= i < len(releases) else ""
            for i in ((indexes[0] - 1, indexes[-1] + 1) if indexes else ())
        ]
        inputs = site.season_inputs("pages.season_pages", season, *neighbours)
        files.add(make() if inputs is None else memoized_files(site.memo, make, *inputs))
    return files


def _identity(site: Site, release: Release) -> str:
    """What a neighbouring episode's link is made from: its season's records and number."""
    assert site.season_keys is not None
    return f"{site.season_keys(release.season)}/{release.episode.number}"


# The feeds in a browser ----------------------------------------------------------------------


def render_feed_stylesheet(site: Site) -> dict[str, bytes]:
    """feed.xsl, which the feeds name so that a browser shows them as a page (in the show's
    language); nothing when show.toml turns it off."""
    if not site.show.feed_stylesheet:
        return {}
    text = site.env.get_template("feed.xsl.j2").render(
        show=site.show, home=site.show.base_url, html_lang=site.show.language
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


def page_dates(site: Site) -> list[tuple[str, date | None]]:
    """Every page's URL and last change from the records, index first."""
    as_of = site.as_of
    show = site.show
    episodes = [(episode_url(r), _changed(r, as_of)) for r in site.schedule.releases]
    newest_of: dict[int, date] = {}
    for release, (_, day) in zip(site.schedule.releases, episodes, strict=True):
        number = release.season.number
        if day is not None and (number not in newest_of or day > newest_of[number]):
            newest_of[number] = day
    seasons = [
        (season_url(show, s.number), newest_of.get(s.number)) for s in site.catalogue.seasons
    ]
    newest = max(newest_of.values(), default=None)
    pages: list[tuple[str, date | None]] = [(show.base_url, newest), *seasons, *episodes]
    if site.letters:
        days = [letter.item.issue.day for letter in site.letters]
        pages.append((archive_url(show), max(days)))
        pages += [(show.url(issue_file(day.isoformat(), ".html")), day) for day in days]
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


def season_sitemap(releases: list[Release], as_of: date) -> bytes:
    """A season's episode pages as sitemap lines, after a first line with the newest
    change among them ('' if none)."""
    entries = [(episode_url(r), _changed(r, as_of)) for r in releases]
    newest = max((day for _, day in entries if day), default=None)
    lines = [newest.isoformat() if newest else "", *(_url_line(u, d) for u, d in entries)]
    return "\n".join(lines).encode("utf-8")


def sitemap_inputs(site: Site, season: Season) -> tuple[str, ...]:
    """The memo inputs of a season's sitemap lines (the key "" when the site has none)."""
    key = site.season_keys(season) if site.season_keys is not None else ""
    return ("pages.season_sitemap", site.show_key, site.as_of.isoformat(), key)


def remembered_sitemap(site: Site) -> dict[str, bytes]:
    """sitemap.xml as :func:`render_sitemap` makes it (one file), each season's episode
    lines remembered by the season's records and the reference date (when the site has a
    memo and season keys)."""
    show, as_of = site.show, site.as_of
    by_season: dict[int, list[Release]] = {}
    for release in site.schedule.releases:
        by_season.setdefault(release.season.number, []).append(release)
    newest_of: dict[int, date] = {}
    chunks: list[str] = []
    for number, releases in by_season.items():
        make = partial(season_sitemap, releases, as_of)
        memo = site.memo if site.templates_key and site.season_keys is not None else NO_MEMO
        inputs = sitemap_inputs(site, releases[0].season)
        first, _, lines = memoized(memo, make, *inputs).decode().partition("\n")
        if first:
            newest_of[number] = date.fromisoformat(first)
        chunks += [lines] if lines else []
    seasons = [
        _url_line(season_url(show, s.number), newest_of.get(s.number))
        for s in site.catalogue.seasons
    ]
    out = [_url_line(show.base_url, max(newest_of.values(), default=None)), *seasons, *chunks]
    if site.letters:
        days = [letter.item.issue.day for letter in site.letters]
        out.append(_url_line(archive_url(show), max(days)))
        out += [_url_line(show.url(issue_file(day.isoformat(), ".html")), day) for day in days]
    return {SITEMAP_FILE: _urlset(out)}


def render_sitemap(site: Site, limit: int = SITEMAP_LIMIT) -> dict[str, bytes]:
    """sitemap.xml: every page; beyond ``limit`` URLs, a sitemap index of numbered files."""
    pages = 1 + len(site.catalogue.seasons) + len(site.schedule.releases)
    pages += 1 + len(site.letters) if site.letters else 0
    if pages <= limit:
        return remembered_sitemap(site)
    entries = page_dates(site)
    files: dict[str, bytes] = {}
    index = ['<?xml version="1.0" encoding="UTF-8"?>', f'<sitemapindex xmlns="{SITEMAP_NS}">']
    for number, start in enumerate(range(0, len(entries), limit), start=1):
        part = entries[start : start + limit]
        name = f"sitemap-{number}.xml"
        files[name] = sitemap_xml(part)
        newest = max((d for _, d in part if d), default=None)
        lastmod = f"<lastmod>{newest.isoformat()}</lastmod>" if newest else ""
        index.append(f"  <sitemap><loc>{escape(site.show.url(name))}</loc>{lastmod}</sitemap>")
    index.append("</sitemapindex>")
    files[SITEMAP_FILE] = ("\n".join(index) + "\n").encode("utf-8")
    return files


def render(ctx: RenderContext) -> FileSet:
    """Episode and season pages, the feeds' stylesheet and the sitemap, as a renderer."""
    site = Site.of(ctx)
    sitemap: Mapping[str, bytes]
    if site.templates_key and site.season_keys is not None:  # remembered by every input
        parts = [sitemap_inputs(site, s) for s in site.catalogue.seasons]
        days = ",".join(letter.item.issue.day.isoformat() for letter in site.letters)
        keys = [key_of(*p).hex() for p in parts]
        inputs = (*site.shared_inputs("pages.render_sitemap"), *keys, days)
        sitemap = memoized_files(site.memo, partial(render_sitemap, site), *inputs)
        if isinstance(sitemap, LazyFiles):
            for p in parts:  # kept for the next build that makes the sitemap
                remember(site.memo, *p)
    else:
        sitemap = render_sitemap(site)
    return FileSet(render_pages(site), render_feed_stylesheet(site), sitemap)
