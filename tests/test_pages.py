"""Episode and season pages as fans, link previews, search engines and browsers see them:
content, share cards, schema.org JSON-LD, every internal link, the sitemap, Media RSS, the
feeds' stylesheet, and screenshots in Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import feedparser
import html5lib
import lxml.etree
import lxml.html
import pytest
from click.testing import Result
from PIL import Image

from support import REPO, Project, build_args, chromium

SHIPPED_BASE = "https://famfeeds.example.org/for-all-mankind/"
BASE = "https://shows.example.net/test/"
ARTIFACTS = REPO / "tests" / "artifacts"
HOSTILE = "Code that would end a script: `</script><script>alert(1)</script>` and `<!--`."
SHOW_EXTRA = """artwork = "https://img.example.net/poster.png"
homepage = "https://watch.example.net/test-show"

[newsletter]
sender_name = "Test weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?t={token}"

[author]"""


@pytest.fixture
def rich(project: Project, run: Callable[..., Result]) -> Project:
    """A timed weekly season in New York: images, runtimes, a week off, a cancelled episode,
    hostile text; built as of the second release day."""
    project.show(**{"[author]": SHOW_EXTRA})
    project.season(
        premiere="2024-01-03",
        extra='release_time = "21:00"',
        episodes={
            1: {
                "title": "Pilot",
                "image": '"https://img.example.net/s01e01.jpg"',
                "image_alt": '"A lake at dawn"',
                "runtime": "58",
                "updated": "2024-01-05",
            },
            2: {"runtime": "45"},
            3: {"release": "2024-01-24"},
            4: {"status": '"cancelled"'},
            5: {},
            6: {"synopsis": HOSTILE},
        },
    )
    assert run(*build_args(project, "--as-of", "2024-01-10")).exit_code == 0
    return project


def page(project: Project, path: str) -> lxml.html.HtmlElement:
    return lxml.html.parse(str(project.output / path)).getroot()


def meta(doc: lxml.html.HtmlElement, key: str) -> str | None:
    found = doc.xpath(f"//meta[@property='{key}' or @name='{key}']/@content")
    assert len(found) <= 1, key
    return found[0] if found else None


def json_ld(doc: lxml.html.HtmlElement) -> dict[str, object]:
    (script,) = doc.xpath("//script[@type='application/ld+json']")
    data = json.loads(script.text)
    assert isinstance(data, dict)
    return data


# What an episode page says -----------------------------------------------------------------


def test_an_upcoming_episode_page(rich: Project) -> None:
    doc = page(rich, "s01/e03/index.html")
    assert doc.findtext(".//h1") == "Episode 3"
    assert doc.xpath("string(//p[@class='lead'])") == "S1 E3 · Episode 3 of 6"
    assert "Synopsis of episode 3." in doc.text_content()
    facts = dict(
        zip(
            [dt.text_content() for dt in doc.xpath("//dl/dt")],
            [dd.text_content() for dd in doc.xpath("//dl/dd")],
            strict=True,
        )
    )
    assert facts == {
        "Release": "Wednesday, January 24, 2024 at 9:00\u202fPM EST",
        "Where to watch": "Example+",
        "Status": "Next",
    }
    assert doc.xpath("//dd/a/@href") == ["https://watch.example.net/test-show"]
    assert doc.xpath("//a[@type='text/calendar' and contains(@class, 'button')]/@href") == [
        BASE + "episodes/s01e03.ics"
    ]
    (google,) = doc.xpath("//main//a[starts-with(@href, 'https://calendar.google.com/')]/@href")
    assert "action=TEMPLATE" in google and "20240125T020000Z" in google
    assert doc.xpath("//a[@rel='prev']/@href") == [BASE + "s01/e02/"]
    assert doc.xpath("//a[@rel='next']/@href") == [BASE + "s01/e04/"]
    crumbs = doc.xpath("//nav[@class='crumbs']//a/@href")
    assert crumbs == [BASE, BASE + "s01/"]
    footer = doc.xpath("//footer//a/@href")
    for wanted in ("feed.xml", "rss.xml", "feed.json", "calendar.ics", "newsletter/"):
        assert BASE + wanted in footer
    assert "webcal://shows.example.net/test/calendar.ics" in footer


def test_a_released_episode_page_has_its_still_and_runtime_but_no_calendar_buttons(
    rich: Project,
) -> None:
    doc = page(rich, "s01/e01/index.html")
    (img,) = doc.xpath("//main//img")
    assert img.get("src") == "https://img.example.net/s01e01.jpg"
    assert img.get("alt") == "A lake at dawn"
    facts = [dd.text_content() for dd in doc.xpath("//dl/dd")]
    assert facts == [
        "Wednesday, January 3, 2024 at 9:00\u202fPM EST",
        "58 minutes",
        "Example+",
        "Released",
    ]
    assert not doc.xpath("//main//a[contains(@href, '.ics')]")
    assert not doc.xpath("//main//a[starts-with(@href, 'https://calendar.google.com/')]")
    assert not doc.xpath("//a[@rel='prev']")


def test_share_cards(rich: Project) -> None:
    doc = page(rich, "s01/e01/index.html")
    url = BASE + "s01/e01/"
    assert doc.xpath("//link[@rel='canonical']/@href") == [url]
    assert meta(doc, "og:url") == url
    assert meta(doc, "og:type") == "video.episode"
    assert meta(doc, "og:title") == doc.findtext(".//title") == "Test Show S1 E1: Pilot"
    assert meta(doc, "og:description") == "Synopsis of episode 1."
    assert meta(doc, "og:site_name") == "Test Show"
    assert meta(doc, "og:locale") == "en_US"
    assert (
        meta(doc, "og:image") == meta(doc, "twitter:image") == "https://img.example.net/s01e01.jpg"
    )
    assert meta(doc, "og:image:alt") == "A lake at dawn"
    assert meta(doc, "twitter:card") == "summary_large_image"
    assert meta(doc, "twitter:title") == "Test Show S1 E1: Pilot"
    plain = page(rich, "s01/e02/index.html")
    assert meta(plain, "og:image") == "https://img.example.net/poster.png"  # the show's artwork
    index = page(rich, "index.html")
    assert meta(index, "og:type") == "website"
    assert meta(index, "og:url") == index.xpath("//link[@rel='canonical']/@href")[0] == BASE


def test_a_long_synopsis_is_cut_at_a_word_for_the_card(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(episodes={1: {"synopsis": "word " * 100}})
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    card = meta(page(project, "s01/e01/index.html"), "og:description")
    assert card is not None and len(card) <= 200 and card.endswith("word\u2026")
    assert meta(page(project, "s01/e01/index.html"), "twitter:card") == "summary"


# schema.org -------------------------------------------------------------------------------------

THING = {"@context", "@type", "@id", "name", "url", "description", "image", "sameAs"}
CREATIVE_WORK = THING | {"inLanguage", "datePublished", "timeRequired", "about", "isPartOf"}
SCHEMA_TYPES: dict[str, tuple[set[str], set[str]]] = {
    # type: (properties schema.org defines for it, properties famfeeds must give)
    "TVEpisode": (
        CREATIVE_WORK | {"episodeNumber", "partOfSeason", "partOfSeries"},
        {"name", "url", "episodeNumber", "partOfSeason", "partOfSeries", "description"},
    ),
    "TVSeason": (
        CREATIVE_WORK
        | {"seasonNumber", "numberOfEpisodes", "startDate", "partOfSeries", "episode"},
        {"name", "url", "seasonNumber"},
    ),
    "TVSeries": (
        CREATIVE_WORK | {"containsSeason", "numberOfSeasons", "numberOfEpisodes", "startDate"},
        {"name", "url"},
    ),
    "CollectionPage": (CREATIVE_WORK, {"name", "url"}),
}
INTEGER = {"episodeNumber", "seasonNumber", "numberOfEpisodes", "numberOfSeasons"}


NESTED_REQUIRED = {
    "TVEpisode": {"name", "url", "episodeNumber"},
    "TVSeason": {"name", "url", "seasonNumber"},
}


def check_item(item: object, top: bool = True) -> list[str]:
    """Problems of one schema.org item and the items inside it (which name what they point
    at, and need less)."""
    assert isinstance(item, dict)
    kind = item.get("@type")
    if kind not in SCHEMA_TYPES:
        return [f"unknown @type {kind!r}"]
    allowed, required = SCHEMA_TYPES[kind]
    if not top:
        required = NESTED_REQUIRED.get(kind, {"name", "url"})
    problems = [f"{kind}.{p} is not a schema.org property of {kind}" for p in set(item) - allowed]
    problems += [f"{kind} lacks {p}" for p in sorted(required - set(item))]
    for key, value in item.items():
        if key in INTEGER and not (isinstance(value, int) and value >= 0):
            problems.append(f"{kind}.{key} is not an Integer: {value!r}")
        if key in ("url", "@id", "image", "sameAs") and not str(value).startswith("https://"):
            problems.append(f"{kind}.{key} is not an absolute URL: {value!r}")
        if key in ("datePublished", "startDate"):
            text = str(value)
            parsed = datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
            if isinstance(parsed, datetime) and parsed.utcoffset() is None:
                problems.append(f"{kind}.{key} has a time without an offset: {text}")
        if key == "timeRequired" and not re.fullmatch(r"PT\d+M", str(value)):
            problems.append(f"{kind}.timeRequired is not an ISO 8601 duration: {value!r}")
        if key in ("description", "name", "inLanguage") and not (
            isinstance(value, str) and value.strip()
        ):
            problems.append(f"{kind}.{key} is empty")
        nested = value if isinstance(value, list) else [value]
        for sub in nested:
            if isinstance(sub, dict) and "@type" in sub:
                problems += check_item(sub, top=False)
    if kind == "TVEpisode" and top:
        assert item["partOfSeason"]["@type"] == "TVSeason"  # type: ignore[index]
        assert item["partOfSeries"]["@type"] == "TVSeries"  # type: ignore[index]
    return problems


def test_every_page_carries_valid_json_ld(rich: Project) -> None:
    pages = sorted(rich.output.rglob("*.html"))
    checked = 0
    for path in pages:
        if re.fullmatch(r"\d{4}-\d\d-\d\d\.html", path.name):
            continue  # a newsletter issue's browser copy is an email, not a site page
        data = json_ld(lxml.html.parse(str(path)).getroot())
        assert data["@context"] == "https://schema.org"
        assert check_item(data) == [], path
        checked += 1
    assert checked == 1 + 1 + 6 + 1  # index, season, episodes, newsletter archive
    episode = json_ld(page(rich, "s01/e01/index.html"))
    assert episode["datePublished"] == "2024-01-03T21:00:00-05:00"
    assert episode["image"] == "https://img.example.net/s01e01.jpg"
    assert episode["timeRequired"] == "PT58M"
    assert episode["inLanguage"] == "en"
    assert episode["partOfSeason"] == {
        "@type": "TVSeason",
        "seasonNumber": 1,
        "name": "Season 1",
        "url": BASE + "s01/",
    }
    assert episode["partOfSeries"] == {"@type": "TVSeries", "name": "Test Show", "url": BASE}
    assert "datePublished" not in json_ld(page(rich, "s01/e04/index.html"))  # cancelled
    series = json_ld(page(rich, "index.html"))
    assert series["@type"] == "TVSeries"
    assert series["containsSeason"] == [
        {
            "@type": "TVSeason",
            "seasonNumber": 1,
            "name": "Season 1",
            "url": BASE + "s01/",
            "numberOfEpisodes": 6,
            "startDate": "2024-01-03",
        }
    ]
    season = json_ld(page(rich, "s01/index.html"))
    assert [e["url"] for e in season["episode"]] == [BASE + f"s01/e0{n}/" for n in range(1, 7)]


def test_json_ld_cannot_be_broken_out_of(rich: Project) -> None:
    raw = (rich.output / "s01/e06/index.html").read_bytes()
    doc = html5lib.parse(raw, treebuilder="lxml", namespaceHTMLElements=False)
    scripts = doc.xpath("//script")
    assert [s.get("type") for s in scripts] == ["application/ld+json"]
    data = json.loads(scripts[0].text)
    assert "</script><script>alert(1)</script>" in data["description"]  # the text, as data
    assert "<!--" in data["description"]
    assert b"alert(1)</script>" not in raw and b"<!--" not in raw


# Links, sitemap ----------------------------------------------------------------------------


def page_url(base: str, relative: str) -> str:
    return base + (relative[: -len("index.html")] if relative.endswith("index.html") else relative)


def local_target(output: Path, base: str, url: str) -> Path | None:
    """The built file an internal URL names, or None for an external one."""
    url = re.sub(r"^webcal://", "https://", url)
    if not url.startswith(base):
        return None
    rest = url.removeprefix(base)
    return output / (rest + "index.html" if rest == "" or rest.endswith("/") else rest)


def ids_of(path: Path) -> set[str]:
    return set(lxml.html.parse(str(path)).getroot().xpath("//@id"))


def check_links(output: Path, base: str) -> int:
    """Every internal link in every built file resolves (fragments to an element's id);
    returns how many links it followed."""
    checked = 0
    missing = []
    url_pattern = re.compile(r"(?:https|webcal)://[^\s\"'<>)\\]+")
    for path in sorted(output.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or path.suffix == ".eml":
            continue  # .eml: quoted-printable; its two parts are the .txt and .html beside it
        relative = path.relative_to(output).as_posix()
        here = page_url(base, relative)
        text = path.read_bytes().decode("utf-8")
        if path.suffix == ".ics":
            text = text.replace("\r\n ", "")  # unfold
        urls = {u.rstrip(".,;") for u in url_pattern.findall(text)}
        if path.suffix == ".html":
            doc = lxml.html.document_fromstring(text)
            urls |= {urljoin(here, h) for h in doc.xpath("//a/@href | //link/@href")}
        for url in sorted(urls):
            address, fragment = urldefrag(url.replace("&amp;", "&"))
            target = local_target(output, base, address)
            if target is None:
                continue
            checked += 1
            if not target.is_file():
                missing.append(f"{relative}: {url}")
            elif fragment and fragment not in ids_of(target):
                missing.append(f"{relative}: {url} (no element with that id)")
    assert missing == []
    return checked


@pytest.mark.parametrize("as_of", ["2023-11-03", "2023-11-24", "2024-01-31"])
def test_every_internal_link_of_the_shipped_season_resolves(
    shipped: Project, run: Callable[..., Result], as_of: str
) -> None:
    assert run(*build_args(shipped, "--as-of", as_of)).exit_code == 0
    assert check_links(shipped.output, SHIPPED_BASE) > 100


def test_every_internal_link_of_a_timed_season_resolves(rich: Project) -> None:
    assert check_links(rich.output, BASE) > 50


def test_the_link_checker_finds_a_broken_link(rich: Project) -> None:
    (rich.output / "s01/e02/index.html").unlink()
    with pytest.raises(AssertionError, match="s01/e02/"):
        check_links(rich.output, BASE)


SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def sitemap(output: Path, name: str = "sitemap.xml") -> dict[str, str | None]:
    root = lxml.etree.parse(str(output / name)).getroot()
    assert root.tag == f"{SITEMAP}urlset"
    entries = {}
    for url in root.iter(f"{SITEMAP}url"):
        loc = url.findtext(f"{SITEMAP}loc")
        assert loc is not None and loc not in entries
        entries[loc] = url.findtext(f"{SITEMAP}lastmod")
    return entries


def test_the_sitemap_lists_every_page_with_dates_from_the_records(rich: Project) -> None:
    entries = sitemap(rich.output)
    pages = {
        page_url(BASE, p.relative_to(rich.output).as_posix()) for p in rich.output.rglob("*.html")
    }
    assert set(entries) == pages
    assert entries[BASE + "s01/e01/"] == "2024-01-05"  # its `updated`, after the release
    assert entries[BASE + "s01/e02/"] == "2024-01-10"  # released on the build's day
    assert entries[BASE + "s01/e03/"] is None  # still to come: no invented date
    assert entries[BASE + "s01/"] == entries[BASE] == "2024-01-10"
    assert entries[BASE + "newsletter/2024-01-10.html"] == "2024-01-10"
    assert all(v is None or re.fullmatch(r"\d{4}-\d\d-\d\d", v) for v in entries.values())


def test_a_sitemap_past_the_limit_becomes_an_index(shipped: Project) -> None:
    from famfeeds.build.pipeline import render
    from famfeeds.build.project import template_environment
    from famfeeds.render.pages import Site
    from famfeeds.render.pages import sitemap as site_sitemap

    build = render(shipped.content, as_of=date(2024, 1, 31))
    env = template_environment(None, "en")
    site = Site(build.plan.catalogue, build.plan.schedule, build.as_of, env, build.letters)
    files = site_sitemap(site, limit=10)
    index = lxml.etree.fromstring(files["sitemap.xml"])
    assert index.tag == f"{SITEMAP}sitemapindex"
    locs = [e.text for e in index.iter(f"{SITEMAP}loc")]
    assert locs == [SHIPPED_BASE + f"sitemap-{n}.xml" for n in (1, 2, 3)]
    counts = [len(lxml.etree.fromstring(files[f"sitemap-{n}.xml"])) for n in (1, 2, 3)]
    assert counts == [10, 10, 4]  # index, season, 10 episodes, archive, 11 issues


# The schedule table ---------------------------------------------------------------------------


def test_weeks_off_are_rows_and_states_are_words(rich: Project) -> None:
    doc = page(rich, "s01/index.html")
    rows = [
        [td.text_content().strip() for td in tr.xpath("./td")] for tr in doc.xpath("//tbody/tr")
    ]
    assert [th.text for th in doc.xpath("//thead//th")] == [
        "Release",
        "Episode",
        "Status",
        "Add to calendar",
    ]
    assert rows[2] == ["Wed, Jan 17, 2024", "No episode this week"]
    assert [r[2] for r in rows if len(r) == 4] == [
        "Released",
        "Released",
        "Next",
        "Cancelled",
        "Upcoming",
        "Upcoming",
    ]
    assert rows[0][0] == "Wed, Jan 3, 2024, 9:00\u202fPM EST"
    assert [bool(r[3]) for r in rows if len(r) == 4] == [False, False, True, False, True, True]


def test_a_long_break_is_one_row(project: Project, run: Callable[..., Result]) -> None:
    project.show()
    project.season(episodes={1: {}, 2: {"release": "2024-02-09"}})
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    rows = page(project, "index.html").xpath("//tbody/tr[@class='gap']")
    assert [r.xpath("string(./td[1])") for r in rows] == ["Fri, Jan 12, 2024"]
    assert "No episodes for 4 weeks" in rows[0].text_content()


# The newsletter -------------------------------------------------------------------------------


def test_an_issue_states_the_air_time_and_offers_the_calendar_only_for_what_is_to_come(
    rich: Project,
) -> None:
    text = (rich.output / "newsletter/2024-01-10.txt").read_text()
    assert "Episode 2 of 6 · Wednesday, January 10, 2024 at 9:00\u202fPM EST · Example+" in text
    assert "More about this episode: " + BASE + "s01/e02/" in text
    assert "episodes/s01e02.ics" not in text  # out today: nothing to add
    assert "What comes next: S1 E3 “Episode 3” on Wednesday, January 24, 2024 at 9:00" in text
    assert "Add to calendar: " + BASE + "episodes/s01e03.ics" in text
    doc = lxml.html.parse(str(rich.output / "newsletter/2024-01-10.html")).getroot()
    assert doc.xpath("//h2/a/@href") == [BASE + "s01/e02/"]
    assert doc.xpath("//a[contains(@class, 'button')]/@href") == [BASE + "episodes/s01e03.ics"]
    # "Hi," with no name: its cell closes up on what follows instead of leaving a blank band.
    (greeting,) = doc.xpath("//td[contains(@class, 'greeting')]")
    assert greeting.text_content().strip() == "Hi,"
    assert "padding-bottom:0" in greeting.get("style").replace(" ", "")
    assert "margin:0" in greeting.find("p").get("style").replace(" ", "")


# Feeds: Media RSS and the browser stylesheet --------------------------------------------------


def test_rss_items_carry_media_rss_images(rich: Project) -> None:
    raw = (rich.output / "rss.xml").read_bytes()
    root = lxml.etree.fromstring(raw)
    media = "http://search.yahoo.com/mrss/"
    assert root.nsmap.get("media") == media
    items = {i.findtext("title"): i for i in root.iter("item")}
    pilot = items["S1 E1 · Pilot"]
    (content,) = pilot.findall(f"{{{media}}}content")
    assert content.attrib == {
        "url": "https://img.example.net/s01e01.jpg",
        "type": "image/jpeg",
        "medium": "image",
    }
    (thumb,) = pilot.findall(f"{{{media}}}thumbnail")
    assert thumb.get("url") == "https://img.example.net/s01e01.jpg"
    assert not items["S1 E2 · Episode 2"].findall(f"{{{media}}}content")
    parsed = feedparser.parse(raw)
    assert parsed.bozo == 0
    assert parsed.entries[-1].media_content[0]["url"] == "https://img.example.net/s01e01.jpg"
    assert b"search.yahoo.com/mrss" not in (rich.output / "feed.xml").read_bytes()


def test_the_feed_stylesheet_is_off_by_default_and_renders_both_feeds(
    shipped: Project, run: Callable[..., Result]
) -> None:
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    assert not (shipped.output / "feed.xsl").exists()
    assert b"xml-stylesheet" not in (shipped.output / "feed.xml").read_bytes()
    show = shipped.content / "show.toml"
    show.write_text(
        show.read_text().replace("feed_entries = 50", "feed_entries = 50\nfeed_stylesheet = true")
    )
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    transform = lxml.etree.XSLT(lxml.etree.parse(str(shipped.output / "feed.xsl")))
    for name in ("feed.xml", "rss.xml"):
        raw = (shipped.output / name).read_bytes()
        assert raw.split(b"\n")[1] == b'<?xml-stylesheet type="text/xsl" href="feed.xsl"?>'
        assert feedparser.parse(raw).bozo == 0
        shown = lxml.html.document_fromstring(str(transform(lxml.etree.fromstring(raw))))
        assert shown.get("lang") == "en"
        assert shown.findtext(".//h1") == "For All Mankind"
        links = shown.xpath("//main//a")
        assert [a.text for a in links] == [
            f"S4 E{n} · {t}"
            for n, t in ((3, "The Bear Hug"), (2, "Have a Nice Sol"), (1, "Glasnost"))
        ]
        assert [a.get("href") for a in links] == [SHIPPED_BASE + f"s04/e0{n}/" for n in (3, 2, 1)]
        assert "This is a web feed." in shown.text_content()


# Looking at it --------------------------------------------------------------------------------


def chromium_screenshot(url: str, target: Path, profile: Path) -> Image.Image:
    command = [*chromium(profile), f"--screenshot={target}", "--window-size=1200,1600", url]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    return Image.open(target).convert("RGB")


def inked(image: Image.Image) -> float:
    """The share of pixels that differ from the most common colour (the background)."""
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    background = max(colours)[0]
    return 1 - background / (image.width * image.height)


@pytest.mark.parametrize(
    ("language", "path", "name"),
    [
        ("en", "s04/e04/index.html", "episode-page.png"),
        ("de", "newsletter/2023-11-10.html", "newsletter-de.png"),
    ],
)
def test_screenshots_of_an_episode_page_and_a_german_newsletter(
    shipped: Project,
    run: Callable[..., Result],
    tmp_path: Path,
    language: str,
    path: str,
    name: str,
) -> None:
    """Writes tests/artifacts/episode-page.png and newsletter-de.png to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    show = shipped.content / "show.toml"
    show.write_text(show.read_text().replace('language = "en"', f'language = "{language}"'))
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    shot = chromium_screenshot((shipped.output / path).as_uri(), ARTIFACTS / name, tmp_path)
    assert shot.size == (1200, 1600)
    assert inked(shot) > 0.02  # more than a blank page: text, boxes, buttons
    assert len(shot.getcolors(1 << 20) or []) > 50  # anti-aliased text, not a flat error page
