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
OUTPUT_ATTRIBUTES = {
    **{tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    "a": ALLOWED_ATTRIBUTES["a"] | {"rel"},
}
"""Every attribute sanitised HTML can hold: the allow-list, and the rel="noopener" that the
sanitiser adds to links."""
URL_ATTRIBUTES = {"href", "src"}
URL_SCHEMES = {"http", "https", "mailto"}
NOT_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(
        f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
    )
    + "]"
)
"""Code points that XML 1.0 cannot carry, or that are controls or noncharacters no reader
shows: a text holding one is refused by the loader."""
CHARACTER_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?")


def bad_references(text: str) -> list[tuple[int, str]]:
    """Numeric character references in Markdown that name no character a feed, calendar or
    email can carry (``&#0;``, a surrogate such as ``&#xD800;``, a control character, a
    noncharacter, or past U+10FFFF): Markdown and HTML turn them into U+FFFD or worse.
    Returns each one's offset in ``text`` and its spelling."""
    out = []
    for match in CHARACTER_REFERENCE.finditer(text):
        hex_digits, digits = match.groups()
        code = int(hex_digits, 16) if hex_digits else int(digits)
        if code == 0 or code > 0x10FFFF or NOT_CHARACTERS.match(chr(code)):
            out.append((match.start(), match.group()))
    return out


def _neutralise_references(text: str) -> str:
    """``text`` with every bad reference shown literally (its ``&`` escaped), so that no
    U+FFFD or control character reaches the HTML."""
    bad = {start for start, _ in bad_references(text)}
    if not bad:
        return text
    return "".join("&amp;" if i in bad else c for i, c in enumerate(text))


BLOCK_TAGS = {"p", "li", "blockquote", "pre", "h2", "h3", "h4", "tr", "table", "ul", "ol", "hr"}


@lru_cache(maxsize=4096)
def markdown_to_html(text: str, base_url: str) -> str:
    """Render Markdown (GitHub flavour) to sanitised HTML whose every URL is absolute.

    Raw HTML in the Markdown is allowed through the renderer and then cleaned:
    scripts, styles, event handlers and unknown tags never survive.
    """
    import nh3

    raw = _raw_html(text)

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in URL_ATTRIBUTES:
            return value
        url = urljoin(base_url, value.strip())
        scheme = urlsplit(url).scheme
        if scheme not in URL_SCHEMES:
            return None
        return _ascii_link(url) if scheme != "mailto" else url

    html = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        clean_content_tags={"script", "style", "iframe", "object", "template"},
        attribute_filter=absolute,
        link_rel="noopener",
    )
    return NOT_CHARACTERS.sub("", html).strip()


def _ascii_link(url: str) -> str:
    """An http(s) link in its ASCII form (IDNA host, percent-encoded path), as the records'
    own URLs are; a link that form cannot hold (a malformed host) is left as written."""
    from famfeeds.records.models import ascii_url

    try:
        return ascii_url(url)
    except ValueError:
        return url


def _raw_html(text: str) -> str:
    """Markdown to HTML before sanitising; bad character references stay literal text."""
    import cmarkgfm

    options = cmarkgfm.Options.CMARK_OPT_UNSAFE | cmarkgfm.Options.CMARK_OPT_SMART
    # GitHub's tagfilter would turn <script> into visible text; nh3 removes it instead.
    return str(
        cmarkgfm.markdown_to_html_with_extensions(
            _neutralise_references(NOT_CHARACTERS.sub("", text)),
            options=options,
            extensions=["table", "strikethrough", "autolink"],
        )
    )


class _Removed(HTMLParser):
    """List what the sanitiser takes out of raw HTML: elements, attributes, unsafe links."""

    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.found: dict[str, None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.found[f"<{tag}> element"] = None
            return
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES.get(tag, set()):
                self.found[f"{name} attribute"] = None
            elif name in URL_ATTRIBUTES:
                url = urljoin(self.base_url, (value or "").strip())
                if urlsplit(url).scheme not in URL_SCHEMES:
                    scheme = urlsplit(url).scheme or "unknown"
                    self.found[f"{scheme}: {'link' if name == 'href' else 'image'}"] = None

    def handle_comment(self, data: str) -> None:
        self.found["HTML comment"] = None


def removed_markup(text: str, base_url: str) -> list[str]:
    """What sanitising removes from Markdown ``text``, in order of appearance, e.g.
    ``["<script> element", "onerror attribute"]``."""
    parser = _Removed(base_url)
    parser.feed(_raw_html(text))
    parser.close()
    return list(parser.found)


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
