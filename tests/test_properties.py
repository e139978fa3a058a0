"""Generated records, hostile text included: every feed still parses and says the same thing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import feedparser
import html5lib
import lxml.etree
import lxml.html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from famfeeds.build.pipeline import render
from famfeeds.records.loader import CONTROL_CHARS, HIDING_CHARS
from famfeeds.records.richtext import ALLOWED_TAGS, OUTPUT_ATTRIBUTES
from support import Project, toml_string

# Any printable text, XML's special characters and emoji included; no control characters and
# no invisible format characters (titles refuse them: see test_hostile.py).
TEXT = (
    st.text(
        st.characters(
            blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp"),
            blacklist_characters="\ufffe\uffff",
        ),
        min_size=1,
        max_size=80,
    )
    .map(str.strip)
    .filter(bool)
)
TITLE = TEXT  # written with TOML escapes (support.toml_string): quotes and backslashes too


def allowed_in_markdown(text: str) -> bool:
    """What the loader accepts in a synopsis: no control or hiding characters."""
    return not CONTROL_CHARS.search(text.replace("\n", "").replace("\t", "")) and not (
        HIDING_CHARS.search(text)
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=TITLE,
    synopsis=st.text(max_size=300).filter(allowed_in_markdown),
)
def test_hostile_text_round_trips_through_every_feed(
    tmp_path: Path, title: str, synopsis: str
) -> None:
    project = Project(tmp_path / f"p{abs(hash((title, synopsis)))}")
    project.show()
    project.season(episodes={1: {"title": title, "synopsis": synopsis}})
    build = render(project.content, as_of=date(2024, 2, 1))
    expected = f"S1 E1 · {title.strip()}"
    for name in ("feed.xml", "rss.xml"):
        parsed = feedparser.parse(build.files[name])
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        (entry,) = parsed.entries
        assert entry.title == expected
        if entry.get("content"):
            doc = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
            assert not doc.xpath("//script")
    (item,) = json.loads(build.files["feed.json"])["items"]
    assert item["title"] == expected


# Pieces a synopsis is made of: what HTML and Markdown treat specially, in every spelling.
PIECES = st.sampled_from(
    [
        "<",
        ">",
        "&",
        "&amp;",
        "&lt;",
        "&lt;script&gt;",
        "&#60;",
        "&#x3C;",
        "&copy;",
        "&nosuch;",
        "\\",
        "\\<",
        "\\&lt;",
        "`",
        "`<img src=x onerror=alert(1)>`",
        "``a ` <b> ``",
        "<b>",
        "</b>",
        "<em>x</em>",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href="https://example.org/?a=1&b=2" onclick="x">link</a>',
        "<style>p{}</style>",
        "<!-- c -->",
        "<![CDATA[x]]>",
        "]]>",
        "*",
        "_",
        "[a](https://example.org/)",
        "![alt <i>](https://example.org/i.png)",
        "    code <b>\n",
        "\n\n",
        "\n",
        " ",
        "> ",
        "- ",
        '"',
        "'",
        "é",
        "😀",
    ]
)
SYNOPSIS = st.lists(
    st.one_of(PIECES, st.text(st.characters(codec="ascii", categories=["L", "N", "P", "S"]))),
    max_size=25,
).map("".join)
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"


def visible(html: str) -> str:
    """The text a reader shows for an HTML fragment (html5lib, as a browser parses it),
    whitespace collapsed, and every element and attribute checked against the allow-list."""
    parts = []
    for node in html5lib.parseFragment(html, treebuilder="lxml", namespaceHTMLElements=False):
        if isinstance(node, str):
            parts.append(node)
            continue
        for element in node.iter():
            assert element.tag in ALLOWED_TAGS, f"<{element.tag}> in {html!r}"
            extra = set(element.attrib) - OUTPUT_ATTRIBUTES.get(element.tag, set())
            assert not extra, f"{extra} on <{element.tag}> in {html!r}"
        parts.append(lxml.etree.tostring(node, method="text", encoding="unicode", with_tail=True))
    return " ".join("".join(parts).split())


def plain(text: str) -> str:
    return " ".join(text.split())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(synopsis=SYNOPSIS, description=SYNOPSIS)
def test_rss_descriptions_are_sanitised_html_that_shows_the_atom_text(
    tmp_path: Path, synopsis: str, description: str
) -> None:
    """RSS readers parse <description> as HTML: what they show is exactly the Atom text, and
    no element or attribute outside famfeeds' allow-list ever appears, read by feedparser
    and by lxml + html5lib."""
    project = Project(tmp_path / f"p{abs(hash((synopsis, description)))}")
    project.show(**{'"A show for tests."': toml_string(description.strip() or "x")})
    project.season(episodes={1: {"synopsis": synopsis}})
    build = render(project.content, as_of=date(2024, 2, 1))
    atom = lxml.etree.fromstring(build.files["feed.xml"])
    rss = lxml.etree.fromstring(build.files["rss.xml"])
    entry = atom.find(f"{ATOM}entry")
    item = rss.find("channel/item")
    assert entry is not None and item is not None
    summary = entry.findtext(f"{ATOM}summary") or ""
    content = entry.findtext(f"{ATOM}content") or ""
    # lxml + html5lib: the raw XML's text, parsed as the HTML a reader sees.
    assert visible(item.findtext("description") or content) == plain(summary or visible(content))
    assert visible(item.findtext(CONTENT_ENCODED) or "") == visible(content)
    channel = rss.findtext("channel/description") or ""
    assert visible(channel) == plain(atom.findtext(f"{ATOM}subtitle") or "")
    # feedparser: its own sanitiser finds nothing to remove, and shows the same text.
    parsed_rss = feedparser.parse(build.files["rss.xml"])
    parsed_atom = feedparser.parse(build.files["feed.xml"])
    assert parsed_rss.bozo == 0 and parsed_atom.bozo == 0
    (rss_entry,) = parsed_rss.entries
    (atom_entry,) = parsed_atom.entries
    atom_text = atom_entry.get("summary_detail")  # the summary, or else the content
    if atom_text is None:
        expected = ""
    elif atom_text.type == "text/plain":
        expected = plain(atom_text.value)
    else:
        expected = visible(atom_text.value)
    assert visible(rss_entry.get("summary", "")) == expected
    assert visible(parsed_rss.feed.subtitle) == plain(parsed_atom.feed.subtitle)
