"""Markdown from the records as safe HTML with absolute URLs, and as plain text."""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"align"},
    "th": {"align"},
}
URL_ATTRIBUTES = {"href", "src"}
URL_SCHEMES = {"http", "https", "mailto"}
BLOCK_TAGS = {"p", "li", "blockquote", "pre", "h2", "h3", "h4", "tr", "table", "ul", "ol", "hr"}


@lru_cache(maxsize=4096)
def markdown_to_html(text: str, base_url: str) -> str:
    """Render Markdown (GitHub flavour) to sanitised HTML whose every URL is absolute.

    Raw HTML in the Markdown is allowed through the renderer and then cleaned:
    scripts, styles, event handlers and unknown tags never survive.
    """
    import cmarkgfm
    import nh3

    options = cmarkgfm.Options.CMARK_OPT_UNSAFE | cmarkgfm.Options.CMARK_OPT_SMART
    # GitHub's tagfilter would turn <script> into visible text; nh3 removes it instead.
    raw = cmarkgfm.markdown_to_html_with_extensions(
        text, options=options, extensions=["table", "strikethrough", "autolink"]
    )

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in URL_ATTRIBUTES:
            return value
        url = urljoin(base_url, value.strip())
        return url if urlsplit(url).scheme in URL_SCHEMES else None

    html = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        clean_content_tags={"script", "style", "iframe", "object", "template"},
        attribute_filter=absolute,
        link_rel="noopener",
    )
    return html.strip()


class _TextExtractor(HTMLParser):
    """Collect the text of sanitised HTML, a blank line between blocks."""

    def __init__(self, links: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.parts: list[str] = []
        self.href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href.append(dict(attrs).get("href"))
        if tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.href:
            href = self.href.pop()
            if self.links and href and not href.startswith("mailto:"):
                self.parts.append(f" <{href}>")
        if tag in BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag in {"td", "th"}:
            self.parts.append("  ")

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))

    def text(self) -> str:
        joined = "".join(self.parts)
        joined = re.sub(r"[ \t]*\n[ \t]*", "\n", joined)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


@lru_cache(maxsize=4096)
def html_to_text(html: str, links: bool = True) -> str:
    """Plain text of sanitised HTML: paragraphs separated by blank lines.

    With ``links``, each link's URL follows its text in angle brackets.
    """
    parser = _TextExtractor(links)
    parser.feed(html)
    parser.close()
    return parser.text()


def first_paragraph(text: str) -> str:
    """The first paragraph of plain text, for summaries."""
    return text.split("\n\n", 1)[0].strip()
