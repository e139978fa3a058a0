"""The feeds as a feed reader sees them: read back with feedparser, lxml and json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import feedparser
import icalendar
import lxml.etree
import lxml.html
import pytest
import vobject
from click.testing import Result

from support import Project, build_args

BASE = "https://famfeeds.example.org/for-all-mankind/"
ATOM = "{http://www.w3.org/2005/Atom}"


def parse(project: Project, name: str) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(project.output / name)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


@pytest.fixture
def mid_season(shipped: Project, run: Callable[..., Result]) -> Project:
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    return shipped


@pytest.mark.parametrize("name", ["feed.xml", "rss.xml"])
def test_reader_sees_released_episodes_newest_first(mid_season: Project, name: str) -> None:
    feed = parse(mid_season, name)
    assert feed.feed.title == "For All Mankind"
    assert [e.title for e in feed.entries] == [
        "S4 E3 · The Bear Hug",
        "S4 E2 · Have a Nice Sol",
        "S4 E1 · Glasnost",
    ]
    assert [e.link for e in feed.entries] == [BASE + f"s04/e0{n}/" for n in (3, 2, 1)]
    published = [datetime(*e.published_parsed[:6], tzinfo=UTC) for e in feed.entries]
    # Midnight in Los Angeles on each Friday.
    assert published == [
        datetime(2023, 11, 24, 8, tzinfo=UTC),
        datetime(2023, 11, 17, 8, tzinfo=UTC),
        datetime(2023, 11, 10, 8, tzinfo=UTC),
    ]
    assert all(
        e.tags[0].get("label", e.tags[0].term) == "Season 4" or e.tags[0].term == "Season 4"
        for e in feed.entries
    )
    assert "asteroid" in feed.entries[2].summary


def test_atom_links_ids_and_updated(mid_season: Project) -> None:
    feed = parse(mid_season, "feed.xml")
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": BASE + "feed.xml", "alternate": BASE}
    assert feed.feed.updated_parsed == feed.entries[0].updated_parsed
    ids = [e.id for e in feed.entries]
    assert ids[0] == "tag:famfeeds.example.org,2023-11-01:for-all-mankind/s4/e3"
    assert len(set(ids)) == len(ids)
    assert feed.feed.language == "en"
    assert feed.feed.author_detail.name == "famfeeds"
    assert feed.entries[0].content[0].type == "text/html"


def test_rss_channel_links_to_the_site_and_self(mid_season: Project) -> None:
    feed = parse(mid_season, "rss.xml")
    assert feed.feed.link == BASE
    tree = lxml.etree.parse(str(mid_season.output / "rss.xml"))
    (self_link,) = tree.findall(f"channel/{ATOM}link")
    assert self_link.get("rel") == "self"
    assert self_link.get("href") == BASE + "rss.xml"
    guids = tree.findall("channel/item/guid")
    assert {g.get("isPermaLink") for g in guids} == {"false"}
    assert tree.findtext("channel/lastBuildDate") == "Fri, 24 Nov 2023 00:00:00 -0800"
    assert "python-feedgen" not in (mid_season.output / "rss.xml").read_text()


def test_json_feed(mid_season: Project) -> None:
    feed = json.loads((mid_season.output / "feed.json").read_text())
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == BASE + "feed.json"
    assert feed["home_page_url"] == BASE
    assert [i["title"] for i in feed["items"]] == [
        "S4 E3 · The Bear Hug",
        "S4 E2 · Have a Nice Sol",
        "S4 E1 · Glasnost",
    ]
    assert feed["items"][0]["date_published"] == "2023-11-24T00:00:00-08:00"
    atom = parse(mid_season, "feed.xml")
    assert [i["id"] for i in feed["items"]] == [e.id for e in atom.entries]


def test_after_the_finale_all_ten_are_listed(shipped: Project, run: Callable[..., Result]) -> None:
    assert run(*build_args(shipped, "--as-of", "2024-02-01")).exit_code == 0
    feed = parse(shipped, "feed.xml")
    assert len(feed.entries) == 10
    assert feed.entries[0].title == "S4 E10 · Perestroika"
    assert feed.entries[-1].title == "S4 E1 · Glasnost"


def test_before_the_premiere_the_feed_is_empty_but_valid(
    shipped: Project, run: Callable[..., Result]
) -> None:
    assert run(*build_args(shipped, "--as-of", "2023-11-01")).exit_code == 0
    for name in ("feed.xml", "rss.xml"):
        feed = parse(shipped, name)
        assert feed.entries == []
    atom = parse(shipped, "feed.xml")
    assert atom.feed.updated.startswith("2023-11-01")


def test_ids_do_not_change_when_title_or_text_change(
    shipped: Project, run: Callable[..., Result]
) -> None:
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    before = [e.id for e in parse(shipped, "feed.xml").entries]
    path = shipped.content / "season-04/03-the-bear-hug.md"
    path.write_text(
        path.read_text().replace("The Bear Hug", "A Bear Hug").replace("Negotiations", "Talks")
    )
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    after = parse(shipped, "feed.xml").entries
    assert [e.id for e in after] == before
    assert after[0].title == "S4 E3 · A Bear Hug"


def test_entry_limit(project: Project, run: Callable[..., Result]) -> None:
    project.show(**{'description = "A show for tests."': 'description = "x"\nfeed_entries = 2'})
    project.season(episodes=5)
    assert run(*build_args(project, "--as-of", "2024-12-31")).exit_code == 0
    feed = parse(project, "feed.xml")
    assert [e.title for e in feed.entries] == ["S1 E5 · Episode 5", "S1 E4 · Episode 4"]


def test_cancelled_and_future_episodes_are_not_in_the_feed(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(episodes={1: {}, 2: {"status": '"cancelled"'}, 3: {}, 4: {}})
    assert run(*build_args(project, "--as-of", "2024-01-19")).exit_code == 0
    titles = [e.title for e in parse(project, "feed.xml").entries]
    assert titles == ["S1 E3 · Episode 3", "S1 E1 · Episode 1"]


def test_episodes_on_one_day_have_distinct_updated_values(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(cadence="all-at-once", episodes={1: {}, 2: {}, 3: {"updated": "2024-01-05"}})
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    tree = lxml.etree.parse(str(project.output / "feed.xml"))
    updated = [u.text for u in tree.iterfind(f"{ATOM}entry/{ATOM}updated")]
    assert len(updated) == 3
    assert len(set(updated)) == 3
    titles = [e.title for e in parse(project, "feed.xml").entries]
    assert titles == ["S1 E3 · Episode 3", "S1 E2 · Episode 2", "S1 E1 · Episode 1"]


def test_record_updated_date_is_the_entry_updated(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(episodes={1: {"updated": "2024-01-20T10:00:00Z"}})
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    (entry,) = parse(project, "feed.xml").entries
    assert datetime(*entry.updated_parsed[:6]) == datetime(2024, 1, 20, 10, 0)
    assert datetime(*entry.published_parsed[:6]) == datetime(2024, 1, 5, 5, 0)


HOSTILE = """\
Plain <b>bold</b> and <script>alert("x")</script> text with
<a href="/cast/" onclick="steal()">a relative link</a>, [markdown link](episodes/two.html),
<img src="stills/one.jpg" onerror="x()" alt="still">, <a href="javascript:alert(1)">js</a>
and <iframe src="https://evil.example/"></iframe> & ampersands < > "quotes".
"""


def test_entry_html_is_sanitised_and_every_url_absolute(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(episodes={1: {"synopsis": HOSTILE, "image": '"https://img.example.net/1.jpg"'}})
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    for name in ("feed.xml", "rss.xml"):
        (entry,) = parse(project, name).entries
        html = entry.content[0].value
        doc = lxml.html.fragment_fromstring(html, create_parent="div")
        assert not doc.xpath("//script | //iframe")
        assert not [a for el in doc.iter() for a in el.attrib if a.startswith("on")]
        urls = [u for el in doc.iter() for k, u in el.attrib.items() if k in {"href", "src"}]
        assert urls, html
        assert all(u.startswith("https://") for u in urls), urls
        assert "https://shows.example.net/cast/" in urls  # root-relative
        assert "https://shows.example.net/test/episodes/two.html" in urls
        assert "https://img.example.net/1.jpg" in urls
        assert all(img.get("alt") for img in doc.iter("img"))
        assert "alert" not in html
        assert "steal" not in html
    item = json.loads((project.output / "feed.json").read_text())["items"][0]
    assert item["image"] == "https://img.example.net/1.jpg"
    assert "<script" not in item["content_html"]


def test_an_updated_date_after_as_of_is_not_shown(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(episodes={1: {"updated": "2024-03-01"}})
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    (entry,) = parse(project, "feed.xml").entries
    assert entry.updated == entry.published
    assert run(*build_args(project, "--as-of", "2024-03-02")).exit_code == 0
    (entry,) = parse(project, "feed.xml").entries
    assert entry.updated.startswith("2024-03-01")


def test_rss_description_is_html_that_shows_the_summary_as_written(
    project: Project, run: Callable[..., Result]
) -> None:
    """RSS readers parse <description> as HTML: text that shows markup stays text."""
    synopsis = "Shows `<img src=x onerror=alert(1)>`, &lt;script&gt; and \\<b> as text."
    project.show(**{"A show for tests.": "About `<script>` & co."})
    project.season(episodes={1: {"synopsis": synopsis}})
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    shown = "Shows <img src=x onerror=alert(1)>, <script> and <b> as text."
    rss = lxml.etree.parse(project.output / "rss.xml").getroot()
    # Escaped once for HTML here, and once more for XML in the file.
    assert rss.findtext("channel/item/description") == (
        "Shows &lt;img src=x onerror=alert(1)&gt;, &lt;script&gt; and &lt;b&gt; as text."
    )
    # The ampersands as hexadecimal references (the RSS Best Practices Profile's form, which
    # the W3C validator asks for), never as markup.
    raw = (project.output / "rss.xml").read_text()
    assert "Shows &#x26;lt;img src=x onerror=alert(1)&#x26;gt;," in raw
    assert "<img" not in raw and "&lt;img" not in raw
    assert rss.findtext("channel/description") == "About &lt;script&gt; &amp; co."
    (atom_entry,) = parse(project, "feed.xml").entries
    (rss_entry,) = parse(project, "rss.xml").entries
    assert atom_entry.summary == shown
    doc = lxml.html.fragment_fromstring(rss_entry.summary, create_parent="div")
    assert doc.text_content() == shown
    assert not list(doc.iterdescendants())
    assert parse(project, "rss.xml").feed.subtitle == "About &lt;script&gt; &amp; co."


# The W3C Feed Validation Service's own patterns (w3c/feedvalidator, validators.py: rfc2396,
# rfc2396_full and tag_re): a feed whose ids or links fail them gets "not a valid TAG" or
# "IRI found where URL expected".
URI_RE = re.compile(
    "([a-zA-Z][0-9a-zA-Z+\\-\\.]*:)?/{0,2}(\\[[0-9A-Fa-f:]+\\])?[0-9a-zA-Z;/?:@&=+$\\.\\-_!~*'()%,#]*$"
)
FULL_URI_RE = re.compile("[a-zA-Z][0-9a-zA-Z+\\-\\.]*:(//)?[0-9a-zA-Z;/?:@&=+$\\.\\-_!~*'()%,#]+$")
TAG_RE = re.compile(
    r"^tag:([a-z0-9\-\._]+?@)?[a-z0-9\.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:"
    r"[0-9a-zA-Z;/\?:@&=+$\.\-_!~*'\(\)%,]*(#[0-9a-zA-Z;/\?:@&=+$\.\-_!~*'\(\)%,]*)?$"
)
IDN_BASE = "https://例え.jp/ショー/"
IDN_ASCII = "https://xn--r8jz45g.jp/%E3%82%B7%E3%83%A7%E3%83%BC/"


@pytest.mark.parametrize("where", ["show.toml", "--base-url"])
def test_an_idn_show_passes_the_feed_validators_rules(
    project: Project, run: Callable[..., Result], where: str
) -> None:
    project.show(
        **{
            '[author]\nname = "Tester"\n': '[author]\nname = "Tester"\nemail = "ed@例え.jp"\n'
            'uri = "https://例え.jp/"\n',
            'description = "A show for tests."': 'description = "A show for tests."\n'
            'artwork = "https://例え.jp/アート.jpg"\nhomepage = "https://例え.jp/"',
        }
    )
    if where == "show.toml":
        (project.content / "show.toml").write_text(
            (project.content / "show.toml")
            .read_text()
            .replace("https://shows.example.net/test/", IDN_BASE)
        )
    image = {"image": '"https://例え.jp/画像.jpg"', "synopsis": "[x](/a/ü)"}
    project.season(episodes={1: image, 2: {}, 3: {}})
    extra = ("--base-url", IDN_BASE) if where == "--base-url" else ()
    assert run(*build_args(project, "--as-of", "2024-02-01", *extra)).exit_code == 0
    atom = lxml.etree.parse(project.output / "feed.xml").getroot()
    ids = [
        atom.findtext(f"{ATOM}id"),
        *(e.findtext(f"{ATOM}id") for e in atom.iter(f"{ATOM}entry")),
    ]
    assert ids[0] == "tag:xn--r8jz45g.jp,2020-01-01:test-show"
    for value in ids:
        assert value and TAG_RE.match(value), value
    uris = [*atom.xpath("//*[local-name()='link']/@href"), atom.findtext(f"{ATOM}logo")]
    uris += [atom.findtext(f"{ATOM}author/{ATOM}uri")]
    rss = lxml.etree.parse(project.output / "rss.xml").getroot()
    uris += [rss.findtext("channel/link"), rss.findtext("channel/image/url")]
    uris += rss.xpath("//item/link/text() | //*[local-name()='link']/@href")
    uris += rss.xpath("//*[local-name()='content' or local-name()='thumbnail']/@url")
    assert IDN_ASCII + "feed.xml" in uris
    assert "https://xn--r8jz45g.jp/%E7%94%BB%E5%83%8F.jpg" in uris
    for value in uris:
        assert value and FULL_URI_RE.match(value) and URI_RE.match(value), value
    for guid in rss.xpath("//item/guid/text()"):
        assert TAG_RE.match(guid), guid
    assert rss.findtext("channel/managingEditor") == "ed@xn--r8jz45g.jp (Tester)"
    content = " ".join(c.text or "" for c in atom.iter(f"{ATOM}content"))
    assert 'href="https://xn--r8jz45g.jp/a/%C3%BC"' in content  # a relative link resolved
    feed = json.loads((project.output / "feed.json").read_text())
    assert feed["home_page_url"] == IDN_ASCII
    assert all(FULL_URI_RE.match(i["url"]) and TAG_RE.match(i["id"]) for i in feed["items"])
    for name in ("feed.xml", "rss.xml"):
        parse(project, name)  # feedparser: bozo 0
    calendar = (project.output / "calendar.ics").read_bytes()
    events = list(icalendar.Calendar.from_ical(calendar).walk("VEVENT"))
    assert [str(e["UID"]) for e in events] == [
        f"test-show-s01e0{n}@xn--r8jz45g.jp" for n in (1, 2, 3)
    ]
    assert all(FULL_URI_RE.match(str(e["URL"])) for e in events)
    assert len(vobject.readOne(calendar.decode()).vevent_list) == 3


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "There is no synopsis of this episode yet; its page is "),
        ("de", "Zu dieser Folge gibt es noch keine Inhaltsangabe; ihre Seite: "),
        ("fr", "Cet épisode n\u2019a pas encore de résumé\u00a0; sa page\u00a0: "),
    ],
)
def test_an_episode_whose_synopsis_sanitising_empties_still_has_a_text(
    project: Project, run: Callable[..., Result], language: str, expected: str
) -> None:
    """Only an <iframe>: nothing is left once it is removed, yet every feed format gives
    the entry a sentence in the show's language (Atom readers and the W3C validator need
    textual content), pointing at the episode's page."""
    project.show(**{'language = "en"': f'language = "{language}"'})
    project.season(
        episodes={1: {"synopsis": '<iframe src="https://video.example/x"></iframe>'}, 2: {}}
    )
    assert run(*build_args(project, "--as-of", "2024-01-06")).exit_code == 0
    page = "https://shows.example.net/test/s01/e01/"
    text = expected + page
    atom = lxml.etree.parse(str(project.output / "feed.xml"))
    (entry,) = atom.findall(f"{ATOM}entry")
    texts = [
        "".join(lxml.html.fragment_fromstring(el.text or "", create_parent="div").itertext())
        for el in (entry.find(f"{ATOM}summary"), entry.find(f"{ATOM}content"))
        if el is not None
    ]
    assert texts == [text, text]
    for name in ("feed.xml", "rss.xml"):
        (parsed,) = parse(project, name).entries
        assert parsed.summary == text
        assert "iframe" not in parsed.summary
    (rss_item,) = lxml.etree.parse(str(project.output / "rss.xml")).iter("item")
    assert rss_item.findtext("description") == text
    (item,) = json.loads((project.output / "feed.json").read_text())["items"]
    assert item["summary"] == text
    assert item["content_html"] == f"<p>{text}</p>"
