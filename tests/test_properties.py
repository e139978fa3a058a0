"""Generated records, hostile text included: every feed still parses and says the same thing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import feedparser
import lxml.html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from famfeeds.build import render
from support import Project

# Any printable text, XML's special characters and emoji included; no control characters.
TEXT = (
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
        min_size=1,
        max_size=80,
    )
    .map(str.strip)
    .filter(bool)
)
TITLE = TEXT.filter(lambda t: '"' not in t and "\\" not in t)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=TITLE,
    synopsis=st.text(max_size=300).filter(
        lambda s: (
            not any(
                (ord(c) < 32 and c not in "\n\t")
                or c in "\x7f\ufffe\uffff"
                or 0xD800 <= ord(c) <= 0xDFFF
                for c in s
            )
        )
    ),
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
