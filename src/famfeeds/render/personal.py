"""A rendered issue and the one rule that personalises it.

An issue is rendered and inlined once, with two markers where a subscriber's name and
unsubscribe token go. The markers are chosen per issue so that no text from the content
can contain them (see :func:`choose_markers`): personalisation never touches a title, a
synopsis or a note, whatever they say. :func:`values` computes what replaces each marker;
the built files (:meth:`RenderedIssue.personalise`) and every sent message
(:mod:`famfeeds.render.message`) use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from famfeeds.plan.issues import Issue

MARKER_STEM = "famfeeds"


def one_line(value: str) -> str:
    """Text on one line: CR, LF and other whitespace runs become one space."""
    return " ".join(value.split())


@dataclass(frozen=True)
class Markers:
    """The two marker strings of one issue."""

    name: str
    token: str

    @property
    def greeting(self) -> str:
        """The name marker as it stands in the templates: after a space (``Hi NAME,``)."""
        return f" {self.name}"


def choose_markers(texts: Iterable[str]) -> Markers:
    """Markers that occur in none of ``texts`` (every record text an issue shows).

    They are derived from a digest of the texts, so the same issue always gets the same
    markers (reproducible output), and a counter moves on in the impossible case that a
    text holds one.
    """
    corpus = "\x1f".join(texts)
    digest = hashlib.sha256(corpus.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    counter = 0
    while True:
        markers = Markers(f"{MARKER_STEM}{digest}n{counter}", f"{MARKER_STEM}{digest}t{counter}")
        if markers.name not in corpus and markers.token not in corpus:
            return markers
        counter += 1


@dataclass(frozen=True)
class Values:
    """What replaces the markers for one subscriber."""

    greeting_text: str
    """`` Name`` (with its leading space) or '' in the text part."""
    greeting_html: str
    """The same, escaped for HTML."""
    token: str
    """The token, URL-encoded (it only ever stands inside a URL)."""


def values(name: str | None, token: str | None) -> Values:
    """The personal values: the name on one line (escaped for HTML in the HTML part), the
    token URL-encoded; a missing value leaves no marker behind."""
    clean = one_line(name or "")
    greeting = f" {clean}" if clean else ""
    return Values(greeting, escape(greeting), quote(token or "", safe=""))


@dataclass(frozen=True)
class RenderedIssue:
    """An issue's inlined HTML and its text, still holding the personalisation markers."""

    issue: Issue
    subject: str
    html: str
    text: str
    markers: Markers

    def personalise(self, name: str | None, token: str | None) -> tuple[str, str]:
        """The HTML and text for one subscriber (or, with neither, the built files)."""
        v = values(name, token)
        m = self.markers
        html = self.html.replace(m.greeting, v.greeting_html).replace(m.token, v.token)
        text = self.text.replace(m.greeting, v.greeting_text).replace(m.token, v.token)
        return html, text


@dataclass(frozen=True)
class Letter:
    """A published issue: rendered (markers kept, for sending) and its built files."""

    item: RenderedIssue
    files: Mapping[str, bytes]
    """By name under output/; from the build's issue cache, read from disk when used."""
