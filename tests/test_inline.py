"""The reusing inliner: premailer's own output, byte for byte, with each stylesheet parsed once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import premailer as premailer_package
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from famfeeds.render.inline import plain_premailer, premailer
from support import REPO

BASE = "https://shows.example.net/test/"
NEWSLETTER_CSS = (REPO / "templates" / "newsletter.css").read_text(encoding="utf-8")

TAGS = ["p", "div", "td", "h1", "h2", "a", "span", "strong"]
CLASSES = ["section", "note", "meta", "button", "link", "footer", "header", "x-1"]
SELECTORS = [
    "p",
    "td",
    "a",
    ".section",
    ".note",
    ".section p",
    ".footer a",
    "h1.header",
    "#top",
    "a:hover",
    "p:first-child",
    "td:nth-child(2)",
    "* p",
    "div > span",
]
DECLARATIONS = [
    "color: #1d1d1f",
    "color: red !important",
    "padding: 4px 8px",
    "margin: 0",
    "background-color: #abc",
    "text-align: center",
    "vertical-align: top",
    "width: 120px",
    "height: 10px",
    "font-family: Helvetica, Arial, sans-serif",
    "float: left",
    "display: unset",
]


def document(body: str, sheets: list[str]) -> str:
    styles = "".join(f"<style>\n{css}\n</style>" for css in sheets)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>t</title>'
        f"{styles}</head><body>{body}</body></html>"
    )


rule = st.builds(
    lambda sel, decls: f"{', '.join(sel)} {{ {'; '.join(decls)} }}",
    st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3),
    st.lists(st.sampled_from(DECLARATIONS), min_size=1, max_size=4),
)
sheet = st.builds(
    lambda rules, media: (
        "\n".join(rules) + (f"\n@media (max-width: 600px) {{ {media} }}" if media else "")
    ),
    st.lists(rule, min_size=1, max_size=8),
    st.one_of(st.none(), rule),
)
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


@st.composite
def element(draw: Callable[..., Any], depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = ""
    classes = draw(st.lists(st.sampled_from(CLASSES), max_size=2))
    if classes:
        attrs += f' class="{" ".join(classes)}"'
    if draw(st.booleans()):
        attrs += ' style="color: blue; padding: 1px"'
    if tag == "a":
        attrs += f' href="{draw(st.sampled_from(["page.html", "/x", "#top", "tel:1", "https://a.example/"]))}"'
    inner = draw(text).replace("&", "&amp;").replace("<", "&lt;")
    if depth < 2:
        inner += "".join(draw(st.lists(element(depth + 1), max_size=3)))
    if draw(st.booleans()):
        side = draw(st.sampled_from(["left", "right"]))
        inner += f'<img src="i.png" alt="" style="float: {side}">'
    return f"<{tag}{attrs}>{inner}</{tag}>"


DOCUMENTS = {
    "sheets": st.lists(sheet, min_size=1, max_size=2),
    "bodies": st.lists(st.lists(element(), min_size=1, max_size=4), min_size=2, max_size=4),
}
"""Stylesheets, and the documents one inliner handles in turn."""
QUICK = 20
"""Examples in the default suite; ``-m slow`` runs FULL."""
FULL = 200


def reusing_matches_plain(sheets: list[str], bodies: list[list[str]]) -> None:
    reusing = premailer(BASE)  # one inliner for every document, as in a build
    for body in bodies:
        html = document("".join(body), sheets)
        expected = plain_premailer(BASE).transform(html=html, pretty_print=False)
        assert reusing.transform(html=html, pretty_print=False) == expected


@settings(max_examples=QUICK, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**DOCUMENTS)
def test_reusing_inliner_matches_premailer_byte_for_byte(
    sheets: list[str], bodies: list[list[str]]
) -> None:
    reusing_matches_plain(sheets, bodies)


@pytest.mark.slow
@settings(max_examples=FULL, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**DOCUMENTS)
def test_reusing_inliner_matches_premailer_byte_for_byte_at_length(
    sheets: list[str], bodies: list[list[str]]
) -> None:
    reusing_matches_plain(sheets, bodies)


def test_the_newsletter_stylesheet_matches_too() -> None:
    reusing = premailer(BASE)
    for n in range(3):
        body = (
            '<div class="preheader">pre</div><table class="wrapper"><tr><td class="header">'
            f'<p class="brand">Show {n}</p><h1 class="headline">Issue {n}</h1></td></tr>'
            f'<tr><td class="section"><p>Hi,</p><div class="note"><p>{n}</p></div>'
            '<a class="button" href="s.ics">Add</a> <a class="link" href="e.html">More</a>'
            '</td></tr><tr><td class="footer"><a href="/u">Unsubscribe</a></td></tr></table>'
        )
        html = document(body, [NEWSLETTER_CSS])
        expected = plain_premailer(BASE).transform(html=html, pretty_print=False)
        assert reusing.transform(html=html, pretty_print=False) == expected


def test_each_stylesheet_is_parsed_once_per_inliner(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    original = premailer_package.Premailer._parse_style_rules

    def counting(self: Any, css_body: str, index: int) -> Any:
        parsed.append(css_body)
        return original(self, css_body, index)

    monkeypatch.setattr(premailer_package.Premailer, "_parse_style_rules", counting)
    reusing = premailer(BASE)
    other = "p { color: red }"
    for n in range(5):
        reusing.transform(html=document(f"<p>{n}</p>", [NEWSLETTER_CSS, other]))
    assert sorted(css.strip() for css in parsed) == sorted([NEWSLETTER_CSS.strip(), other])
    premailer(BASE).transform(html=document("<p>again</p>", [NEWSLETTER_CSS]))
    assert len(parsed) == 3  # a new inliner (a new build) parses afresh
