"""The subscribe page as visitors and their tools see it."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import cairosvg
import feedparser
import lxml.etree
import lxml.html
import pytest
import zxingcpp
from click.testing import Result
from PIL import Image

from support import Project, build_args

BASE = "https://famfeeds.example.org/for-all-mankind/"
WEBCAL = "webcal://famfeeds.example.org/for-all-mankind/calendar.ics"


@pytest.fixture
def page(shipped: Project, run: Callable[..., Result]) -> lxml.html.HtmlElement:
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    doc = lxml.html.parse(str(shipped.output / "index.html")).getroot()
    doc.project = shipped  # type: ignore[attr-defined]
    return doc


def local(project: Project, url: str) -> str:
    assert url.startswith(BASE), url
    return url.removeprefix(BASE) or "index.html"


def test_autodiscovery_links_resolve_to_the_built_feeds(page: lxml.html.HtmlElement) -> None:
    project = page.project  # type: ignore[attr-defined]
    links = page.xpath("//head/link[@rel='alternate']")
    assert {link.get("type") for link in links} == {
        "application/atom+xml",
        "application/rss+xml",
        "application/feed+json",
    }
    for link in links:
        path = project.output / local(project, link.get("href"))
        assert path.is_file()
        if link.get("type") != "application/feed+json":
            parsed = feedparser.parse(path)
            assert parsed.bozo == 0 and parsed.feed.title == "For All Mankind"


def test_the_qr_code_decodes_to_the_webcal_link(page: lxml.html.HtmlElement) -> None:
    (svg,) = page.xpath("//svg[contains(@class, 'qr')]")
    markup = lxml.etree.tostring(svg)
    png = cairosvg.svg2png(bytestring=markup, output_width=400, output_height=400)
    image = Image.open(io.BytesIO(png)).convert("L")
    (code,) = zxingcpp.read_barcodes(image)
    assert code.text == WEBCAL
    assert svg.xpath("./title")[0].text  # a text alternative


def test_every_way_to_follow_is_linked(page: lxml.html.HtmlElement) -> None:
    hrefs = page.xpath("//a/@href")
    assert WEBCAL in hrefs
    assert BASE + "calendar.ics" in hrefs
    (google,) = [h for h in hrefs if "calendar.google.com" in h and "cid=" in h]
    assert parse_qs(urlsplit(google).query)["cid"] == [WEBCAL]
    assert BASE + "newsletter/" in hrefs
    assert BASE + "newsletter/2023-11-24.html" in hrefs  # the latest issue as of the build
    assert "https://famfeeds.example.org/subscribe" in hrefs
    project = page.project  # type: ignore[attr-defined]
    for href in hrefs:
        if href.startswith(BASE) and "#" not in href:
            target = project.output / local(project, href)
            assert target.is_file() or (target / "index.html").is_file(), href


def test_the_schedule_shows_each_episode_state(page: lxml.html.HtmlElement) -> None:
    rows = page.xpath("//tbody/tr")
    assert len(rows) == 10
    states = [row.xpath("./td[3]")[0].text_content().strip() for row in rows]
    assert states == ["Released"] * 3 + ["Next"] + ["Upcoming"] * 6
    assert [th.text for th in page.xpath("//thead//th")] == [
        "Release",
        "Episode",
        "Status",
        "Add to calendar",
    ]
    assert rows[3].get("id") == "s04e04"
    assert rows[3].xpath("./td[1]")[0].text == "Fri, Dec 1, 2023"
    (title,) = rows[3].xpath("./td[2]/a")
    assert title.text == "S4 E4 · House Divided" and title.get("href") == BASE + "s04/e04/"
    # "Add to calendar" only while an episode is still to come.
    assert rows[3].xpath(".//a[contains(@href, 'episodes/s04e04.ics')]")
    assert not rows[2].xpath(".//a[contains(@href, '.ics')]")
    footer = " ".join(page.xpath("//footer")[0].text_content().split())
    assert "Schedule as of Friday, November 24, 2023. Days and times are Pacific Time." in footer


def test_the_page_is_accessible_and_script_free(page: lxml.html.HtmlElement) -> None:
    assert page.get("lang") == "en"
    # Data, not code: the only script element is the schema.org JSON-LD.
    assert [s.get("type") for s in page.xpath("//script")] == ["application/ld+json"]
    assert page.xpath("//link[@rel='canonical']/@href") == [BASE]
    assert page.xpath("//header") and page.xpath("//main") and page.xpath("//footer")
    levels = [int(h.tag[1]) for h in page.iter("h1", "h2", "h3", "h4")]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    assert all(img.get("alt") for img in page.iter("img"))
    assert page.xpath("//a[@href='#main']")  # skip link
    style = page.findtext(".//style")
    assert ":focus-visible" in style and "prefers-color-scheme: dark" in style
    assert page.xpath("//meta[@name='viewport']")


def test_without_a_newsletter_the_page_has_no_email_section(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season()
    assert run(*build_args(project, "--as-of", "2024-01-20")).exit_code == 0
    doc = lxml.html.parse(str(project.output / "index.html")).getroot()
    assert "By email" not in doc.text_content()
    assert doc.xpath("//svg[contains(@class, 'qr')]")
