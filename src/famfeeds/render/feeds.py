"""The Atom, RSS 2.0 and JSON Feed 1.1 feeds of released episodes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from famfeeds.plan.schedule import Release, Schedule
from famfeeds.records.models import Show
from famfeeds.records.richtext import first_paragraph, html_to_text, markdown_to_html
from famfeeds.render.context import RenderContext
from famfeeds.render.i18n import Localiser, localiser
from famfeeds.render.outputs import machine_time
from famfeeds.render.urls import (
    ATOM_FILE,
    FEED_STYLESHEET_FILE,
    JSON_FILE,
    RSS_FILE,
    episode_id,
    episode_url,
    tag_uri,
)

GENERATOR = "famfeeds"
GENERATOR_URI = "https://pypi.org/project/famfeeds/"


@dataclass(frozen=True)
class Entry:
    """What every feed format says about one released episode."""

    release: Release
    id: str
    title: str
    url: str
    published: datetime
    updated: datetime
    summary: str
    content_html: str
    category: str


def shown_releases(show: Show, schedule: Schedule, as_of: date) -> tuple[Release, ...]:
    """The releases a feed shows as of ``as_of``: released episodes, newest first, capped."""
    return tuple(schedule.released(as_of)[: show.feed_entries])


def feed_entries(show: Show, shown: Sequence[Release], as_of: date, l10n: Localiser) -> list[Entry]:
    """The entries of the ``shown`` releases (:func:`shown_releases`)."""
    updated = _distinct(shown, as_of)
    entries = []
    for release in shown:
        html = markdown_to_html(release.episode.synopsis, show.base_url)
        if not html_to_text(html, links=False).strip():
            html = no_synopsis_html(release, l10n)
        image = release.episode.image
        if image:
            alt = escape(release.episode.alt_text)
            html = f'<p><img src="{escape(image)}" alt="{alt}"></p>\n{html}'
        entries.append(
            Entry(
                release=release,
                id=episode_id(release),
                title=l10n.episode_title(release),
                url=episode_url(release),
                published=machine_time(release.instant),
                updated=machine_time(updated[release.key, release.season.number]),
                summary=first_paragraph(html_to_text(html, links=False)),
                content_html=html,
                category=release.season.title,
            )
        )
    return entries


def no_synopsis_html(release: Release, l10n: Localiser) -> str:
    """The text of an entry whose synopsis holds no text once sanitised (empty, or only an
    ``<iframe>``): one sentence in the show's language, so that no entry is without text
    (Atom readers and the W3C validator want one; RSS and JSON Feed get the same)."""
    text = l10n.gettext(
        "There is no synopsis of this episode yet; its page is %(url)s",
        url=episode_url(release),
    )
    return f"<p>{escape(text)}</p>"


def _updated(release: Release, as_of: date) -> datetime:
    """The record's updated stamp, unless it lies after ``as_of`` (a feed never shows a
    future date): then the release instant."""
    stamp = release.updated
    return stamp if stamp.astimezone(release.show.zone).date() <= as_of else release.instant


def _distinct(releases: Sequence[Release], as_of: date) -> dict[tuple[str, int], datetime]:
    """Each release's updated stamp, moved on by whole seconds where two would be equal.

    Feed validators flag entries that share an updated value.
    """
    out: dict[tuple[str, int], datetime] = {}
    last: datetime | None = None
    ordered = sorted(
        releases, key=lambda r: (_updated(r, as_of), r.season.number, r.episode.number)
    )
    for release in ordered:
        stamp = _updated(release, as_of)
        if last is not None and stamp <= last:
            stamp = last + timedelta(seconds=1)
        out[release.key, release.season.number] = stamp
        last = stamp
    return out


def show_summary(show: Show) -> str:
    """The show's description as one line of plain text (its title, should sanitising leave
    no text: every feed format needs a description)."""
    text = html_to_text(markdown_to_html(show.description, show.base_url), links=False)
    return " ".join(text.split()) or show.title


DESCRIPTION = re.compile(rb"(<description>)([^<]*)(</description>)")


def hex_ampersands(document: bytes) -> bytes:
    """The RSS document with every ``&`` of a <description>'s text written ``&#x26;`` rather
    than ``&amp;``: the same XML, in the form the RSS Best Practices Profile asks for, so the
    W3C validator does not take the escaped HTML for unintended markup."""
    return DESCRIPTION.sub(lambda m: m[1] + m[2].replace(b"&amp;", b"&#x26;") + m[3], document)


def as_html(text: str) -> str:
    """Plain text as HTML that shows exactly that text: ``<``, ``>`` and ``&`` escaped, the
    sanitised HTML an RSS <description> carries (the XML escapes it once more)."""
    return escape(text, quote=False)


def feed_updated(show: Show, entries: list[Entry], as_of: date) -> datetime:
    """The feed's updated stamp: its newest entry's, or the start of ``as_of`` when empty."""
    if entries:
        return max(e.updated for e in entries)
    return machine_time(show.midnight(as_of))


def render_xml_feeds(show: Show, entries: list[Entry], as_of: date) -> tuple[bytes, bytes]:
    """The Atom and RSS 2.0 documents, from one feedgen model."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(tag_uri(show))
    fg.title(show.title)
    fg.subtitle(show_summary(show))
    fg.language(show.language)
    fg.author({k: v for k, v in show.author.model_dump().items() if v})
    if show.author.email:
        fg.managingEditor(f"{show.author.email} ({show.author.name})")
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    if show.artwork:
        fg.logo(show.artwork)
    fg.updated(feed_updated(show, entries, as_of))
    fg.ttl(720)
    if any(entry.release.episode.image for entry in entries):  # Media RSS, for images
        fg.load_extension("media", atom=False, rss=True)
    # feedgen prepends entries by default; append keeps our newest-first order.
    for entry in entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.id)
        fe.guid(entry.id, permalink=False)
        fe.title(entry.title)
        fe.link(href=entry.url, rel="alternate", type="text/html")
        fe.published(entry.published)
        fe.updated(entry.updated)
        if entry.summary:
            fe.summary(entry.summary)
        if entry.content_html:
            fe.content(entry.content_html, type="html")
        fe.category(term=entry.release.season.code, label=entry.category)
        image = entry.release.episode.image
        if image:  # Media RSS, which RSS-to-email services read for the picture
            media: dict[str, str | None] = {"url": image, "medium": "image", "group": None}
            if kind := image_type(image):
                media["type"] = kind
            fe.media.content(**media)
            fe.media.thumbnail(url=image, group=None)
    # RSS takes its <link> from the last link added: self first, the site last.
    fg.link(href=show.url(ATOM_FILE), rel="self", type="application/atom+xml", replace=True)
    fg.link(href=show.base_url, rel="alternate", type="text/html")
    for hub in show.feeds.hubs:  # WebSub: where a reader subscribes to this feed's self URL
        fg.link(href=hub, rel="hub")
    atom = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    # RSS readers parse <description> as HTML: give them the same text as HTML, so that text
    # showing markup (a code span with <img onerror>, "&lt;script&gt;") never becomes markup.
    fg.description(as_html(show_summary(show)))
    for fe, entry in zip(fg.entry(), entries, strict=True):
        if entry.summary:
            fe.description(as_html(entry.summary), isSummary=True)
    fg.link(href=show.url(RSS_FILE), rel="self", type="application/rss+xml", replace=True)
    fg.link(href=show.base_url, rel="alternate", type="text/html")
    rss = fg.rss_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    rss = hex_ampersands(with_rss_hubs(rss, show.feeds.hubs))
    if show.feed_stylesheet:
        atom, rss = with_stylesheet(atom), with_stylesheet(rss)
    return atom, rss


RSS_SELF_LINK = re.compile(rb'\n( *)<atom:link href="[^"]*" rel="self"[^>]*/>\n')


def with_rss_hubs(document: bytes, hubs: tuple[str, ...]) -> bytes:
    """The RSS document with an ``<atom:link rel="hub">`` for each of ``hubs`` after its
    ``rel="self"`` link (feedgen writes only the self link into RSS); unchanged without hubs.
    """
    if not hubs:
        return document
    match = RSS_SELF_LINK.search(document)
    if match is None:
        raise ValueError("the RSS document has no atom:link rel=self to put hub links beside")
    indent = match[1].decode()
    links = "".join(f'{indent}<atom:link href="{escape(hub)}" rel="hub"/>\n' for hub in hubs)
    return document[: match.end()] + links.encode() + document[match.end() :]


IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
}


def image_type(url: str) -> str | None:
    """An image URL's media type from its path's suffix, or None when it does not say."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path.lower()
    return next((kind for suffix, kind in IMAGE_TYPES.items() if path.endswith(suffix)), None)


def with_stylesheet(document: bytes) -> bytes:
    """The feed with an xml-stylesheet instruction after its XML declaration, so a browser
    shows it as a page (feed.xsl, beside the feed: same origin); readers ignore it."""
    declaration, rest = document.split(b"\n", 1)
    pi = f'<?xml-stylesheet type="text/xsl" href="{FEED_STYLESHEET_FILE}"?>'.encode()
    return declaration + b"\n" + pi + b"\n" + rest


def render_json_feed(show: Show, entries: list[Entry]) -> bytes:
    """The JSON Feed 1.1 document."""
    author = {"name": show.author.name}
    if show.author.uri:
        author["url"] = show.author.uri
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": show.title,
        "home_page_url": show.base_url,
        "feed_url": show.url(JSON_FILE),
        "description": show_summary(show),
        "language": show.language,
        "authors": [author],
    }
    if show.artwork:
        feed["icon"] = show.artwork
    if show.feeds.hubs:  # WebSub (JSON Feed 1.1): a reader subscribes here to feed_url
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in show.feeds.hubs]
    items = []
    for entry in entries:
        item: dict[str, object] = {
            "id": entry.id,
            "url": entry.url,
            "title": entry.title,
            "content_html": entry.content_html,
            "summary": entry.summary,
            "date_published": entry.published.isoformat(),
            "date_modified": entry.updated.isoformat(),
            "tags": [entry.category],
        }
        if entry.release.episode.image:
            item["image"] = entry.release.episode.image
        items.append(item)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render_feeds(
    show: Show, shown: Sequence[Release], as_of: date, l10n: Localiser
) -> dict[str, bytes]:
    """Every feed file, by its name under output/, showing the ``shown`` releases."""
    entries = feed_entries(show, shown, as_of, l10n)
    atom, rss = render_xml_feeds(show, entries, as_of)
    return {ATOM_FILE: atom, RSS_FILE: rss, JSON_FILE: render_json_feed(show, entries)}


def render(ctx: RenderContext) -> Mapping[str, bytes]:
    """The feeds, as a renderer."""
    show = ctx.plan.show
    shown = shown_releases(show, ctx.plan.schedule, ctx.as_of)
    return ctx.call(render_feeds, show, shown, ctx.as_of, localiser(ctx.env))
