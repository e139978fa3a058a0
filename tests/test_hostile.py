"""The hostile corpus: every odd value a content folder can hold goes through a real build.

Each case changes one thing in a small valid project (a show with a newsletter, one weekly
season of three episodes) and runs ``famfeeds build``. A case either expects a refusal (exit
status 1, its message fragments, output/ untouched) or a build, after which every output is
read back by its own consumer (feedparser and lxml for the feeds, icalendar and vobject for
the calendars, the email package for the .eml, html5lib and lxml for the pages, json) and
must carry no live markup, no extra header or property line, and no line longer than its
format allows (iCalendar 75 octets, email 998).

Keep the table growing: a new hostile value is one more row.
"""

from __future__ import annotations

import email
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import html5lib
import icalendar
import lxml.etree
import lxml.html
import pytest
import vobject
from click.testing import Result

from famfeeds.records.richtext import ALLOWED_TAGS, OUTPUT_ATTRIBUTES
from support import Project, episode_text, toml_string

AS_OF = "2024-02-01"
SHOW = """\
title = {title}
slug = "hostile"
base_url = {base_url}
id_date = 2020-01-01
language = "en"
service = {service}
timezone = {timezone}
description = {description}
{extra}
[author]
name = {author}
uri = "https://shows.example.net/"

[newsletter]
sender_name = {sender_name}
sender_address = {sender}
unsubscribe_url = {unsubscribe}
signup_url = "https://shows.example.net/subscribe"
{limits}"""
SEASON = """\
number = 1
title = {title}
premiere = 2024-01-05
cadence = "weekly"
description = {description}
{extra}
"""
EPISODE_COUNT = 3
HEADERS = {
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "MIME-Version",
    "Content-Language",
    "Content-Type",
}
"""Every header a built .eml may have: a value that adds another has injected it."""
EVENT_PROPERTIES = {
    "UID",
    "DTSTAMP",
    "SEQUENCE",
    "DTSTART",
    "DTEND",
    "SUMMARY",
    "DESCRIPTION",
    "URL",
    "LOCATION",
    "CATEGORIES",
    "STATUS",
    "TRANSP",
    "CLASS",
}
"""Every property a VEVENT may have."""
URL_SCHEMES = {"http", "https", "mailto", "webcal"}


@dataclass
class Values:
    """What a case sets: TOML values are written as TOML strings unless noted."""

    show_title: str = "Hostile Show"
    base_url: str = "https://shows.example.net/hostile/"
    service: str = "Example+"
    timezone: str = "America/New_York"
    description: str = "A show for hostile tests."
    author: str = "Tester"
    sender_name: str = "Hostile weekly"
    sender: str = "news@shows.example.net"
    unsubscribe: str = "https://shows.example.net/unsubscribe?t={token}"
    show_extra: str = ""
    limits: str = ""
    season_title: str = "Season 1"
    season_description: str = "The first season."
    season_extra: str = ""
    titles: dict[int, str] = field(default_factory=dict)
    synopses: dict[int, str] = field(default_factory=dict)
    front: dict[int, dict[str, str]] = field(default_factory=dict)
    """Extra front-matter lines per episode: TOML literals, written as they are."""
    raw: dict[str, bytes] = field(default_factory=dict)
    """Files written byte for byte (relative to content/), after everything else."""


@dataclass(frozen=True)
class Refused:
    """The build must fail with these fragments in its message."""

    fragments: tuple[str, ...]


@dataclass(frozen=True)
class Builds:
    """The build must succeed; its outputs are checked, and these expectations too."""

    titles: tuple[str, ...] = ()
    """Episode titles that every output must show exactly as written."""
    warnings: tuple[str, ...] = ()
    """Fragments the build's warnings must contain."""
    ascii_domain: str | None = None
    """The ASCII host that ids, UIDs, links and Message-IDs must use."""
    strict_refuses: bool = False
    """With --strict the same content must be refused."""
    released: int = EPISODE_COUNT
    """How many episodes the feeds list."""
    episodes: int = EPISODE_COUNT
    """How many events calendar.ics holds (every episode, released or not)."""


@dataclass(frozen=True)
class Case:
    values: Values
    expect: Refused | Builds
    setup: Callable[[Project], None] | None = None
    args: tuple[str, ...] = ()


def write_project(project: Project, v: Values) -> None:
    project.write(
        "show.toml",
        SHOW.format(
            title=toml_string(v.show_title),
            base_url=toml_string(v.base_url),
            service=toml_string(v.service),
            timezone=toml_string(v.timezone),
            description=toml_string(v.description),
            author=toml_string(v.author),
            sender_name=toml_string(v.sender_name),
            sender=toml_string(v.sender),
            unsubscribe=toml_string(v.unsubscribe),
            extra=v.show_extra,
            limits=v.limits,
        ),
    )
    project.write(
        "season-01/season.toml",
        SEASON.format(
            title=toml_string(v.season_title),
            description=toml_string(v.season_description),
            extra=v.season_extra,
        ),
    )
    for n in range(1, EPISODE_COUNT + 1):
        title = v.titles.get(n, f"Episode {n}")
        synopsis = v.synopses.get(n, f"Synopsis of episode {n}.")
        project.write(
            f"season-01/{n:02d}-episode-{n}.md",
            episode_text(n, title, synopsis, **v.front.get(n, {})),
        )
    for relative, data in v.raw.items():
        path = project.content / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def with_titles(*titles: str) -> Values:
    return Values(titles=dict(enumerate(titles, start=1)))


def with_synopsis(synopsis: str) -> Values:
    return Values(synopses={1: synopsis})


def front(n: int, **lines: str) -> Values:
    return Values(front={n: lines})


def outside_link(kind: str) -> Callable[[Project], None]:
    """A link under content/ to a folder or file outside it."""

    def setup(project: Project) -> None:
        elsewhere = project.root / "elsewhere"
        elsewhere.mkdir()
        if kind == "season":
            (elsewhere / "season.toml").write_text(
                SEASON.format(title='"Two"', description='""', extra="").replace(
                    "number = 1", "number = 2"
                )
            )
            (elsewhere / "01-stolen.md").write_text(episode_text(1, "Stolen"))
            (project.content / "season-02").symlink_to(elsewhere, target_is_directory=True)
        else:
            (elsewhere / "secret.md").write_text(episode_text(4, "Stolen"))
            (project.content / "season-01/04-stolen.md").symlink_to(elsewhere / "secret.md")

    return setup


def inside_link(project: Project) -> None:
    """A link that stays inside content/ is fine."""
    shared = project.content / "shared"
    shared.mkdir()
    (shared / "episode.md").write_text(episode_text(4, "Linked"))
    (project.content / "season-01/04-linked.md").symlink_to(shared / "episode.md")


HEBREW = "\u05e9\u05dc\u05d5\u05dd"  # shalom
ARABIC = "\u0645\u0631\u062d\u0628\u0627"  # marhaba
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # with a ZWNJ
LONG_CJK = "長" * 200
LONG_WORD = "W" * 200
LONG_EMOJI = "👨‍👩‍👧" * 40  # 5 code points each: 200 characters
MARKUP = '<script>alert("famx")</script><img src=x onerror="famx()">'

CASES: dict[str, Case] = {
    # Markup and entities in text: shown as written, never live.
    "markup in a title": Case(with_titles(MARKUP), Builds(titles=(MARKUP,))),
    "entities in a title": Case(
        with_titles("Tom &amp; Jerry &lt;b&gt; &#60;i&#62;"),
        Builds(titles=("Tom &amp; Jerry &lt;b&gt; &#60;i&#62;",)),
    ),
    "CDATA end and quotes in a title": Case(
        with_titles("]]> \"quoted\" 'single' </title>"),
        Builds(titles=("]]> \"quoted\" 'single' </title>",)),
    ),
    "iCalendar specials in a title": Case(
        with_titles("A;B,C\\D:E"), Builds(titles=("A;B,C\\D:E",))
    ),
    "encoded-word lookalike title": Case(
        with_titles("=?utf-8?q?Hacked?= =?utf-8?b?SGFja2Vk?="),
        Builds(titles=("=?utf-8?q?Hacked?= =?utf-8?b?SGFja2Vk?=",)),
    ),
    "header lookalike in a title": Case(
        with_titles("Bcc: victim@example.org"), Builds(titles=("Bcc: victim@example.org",))
    ),
    "code span with markup in a synopsis": Case(
        with_synopsis("Shows `<img src=x onerror=famx()>` literally."), Builds()
    ),
    "escaped entities in a synopsis": Case(
        with_synopsis("&lt;script&gt;famx()&lt;/script&gt; and \\<img src=x onerror=famx()>"),
        Builds(),
    ),
    "raw HTML in a synopsis": Case(
        with_synopsis(
            '<img src=x onerror="famx()"><a href="javascript:famx()">click</a> '
            '<iframe src="https://evil.example/"></iframe><b style="x" onclick="famx()">b</b>'
            '<svg onload="famx()"></svg> ok'
        ),
        Builds(),
    ),
    "a synopsis that sanitising empties": Case(
        with_synopsis("<script>famx()</script>"),
        Builds(warnings=("synopsis is empty once unsafe HTML is removed", "<script> element")),
        # A warning, so --strict refuses it.
    ),
    "markup in the show's and season's titles": Case(
        Values(show_title=MARKUP, season_title=MARKUP, service=MARKUP, author=MARKUP),
        Builds(),
    ),
    "hostile sender name": Case(Values(sender_name='Team "A", <B> =?utf-8?q?x?='), Builds()),
    "hostile image alt": Case(
        front(1, image='"https://shows.example.net/a.jpg"', image_alt='"\\" onerror=\\"famx()"'),
        Builds(),
    ),
    "calendar lines in a synopsis": Case(
        with_synopsis("Line one\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:injected\r\nUID:x"),
        Builds(),
    ),
    "header lines in a synopsis": Case(
        with_synopsis("Text\n\nBcc: victim@example.org\n\n.\n\nSubject: injected"), Builds()
    ),
    "line and paragraph separators in a synopsis": Case(
        with_synopsis("One\u2028two\u2029three"), Builds()
    ),
    # Line breaks, controls and invisible characters.
    "CR LF in a title": Case(
        with_titles("A\r\nBcc: victim@example.org"), Refused(("'title'", "one line of text"))
    ),
    "line separator in a title": Case(
        with_titles("A\u2028B"), Refused(("'title'", "one line of text"))
    ),
    "control character in a title": Case(
        with_titles("Bell\u0007"), Refused(("'title'", "control characters"))
    ),
    "control character in a synopsis": Case(
        with_synopsis("Bell \u0007 here"), Refused(("control character U+0007",))
    ),
    "C1 control in a synopsis": Case(
        with_synopsis("Next \u0085 line"), Refused(("control character U+0085",))
    ),
    "a title of only spaces": Case(
        with_titles("   "), Refused(("field 'title': title is empty (only spaces)",))
    ),
    "DEL in a title": Case(
        Values(raw={"season-01/03-episode-3.md": b'+++\nnumber = 3\ntitle = "a\x7fb"\n+++\n'}),
        Refused(("03-episode-3.md:3", "control character U+007F at column 11")),
    ),
    "noncharacter in a synopsis": Case(
        with_synopsis("non\ufffe char"), Refused(("noncharacter U+FFFE",))
    ),
    "NUL byte in a file": Case(
        Values(raw={"season-01/03-episode-3.md": b'+++\nnumber = 3\ntitle = "x"\n+++\n\0\n'}),
        Refused(("03-episode-3.md:5", "control character U+0000")),
    ),
    "invalid UTF-8": Case(
        Values(raw={"season-01/03-episode-3.md": b'+++\nnumber = 3\ntitle = "\xff"\n+++\n'}),
        Refused(("03-episode-3.md:3", "not valid UTF-8")),
    ),
    "a byte-order mark and CRLF line ends": Case(
        Values(
            raw={
                "season-01/03-episode-3.md": '\ufeff+++\r\nnumber = 3\r\ntitle = "Three"\r\n'
                "+++\r\n\r\nSynopsis.\r\n".encode()
            }
        ),
        Builds(titles=("Three",)),
    ),
    "right-to-left override in a title": Case(
        with_titles("Episode \u202egnp.exe"),
        Refused(("'title'", "U+202E RIGHT-TO-LEFT OVERRIDE")),
    ),
    "zero-width space in a title": Case(
        with_titles("Epi\u200bsode"), Refused(("'title'", "U+200B ZERO WIDTH SPACE"))
    ),
    "tag characters in a title": Case(
        with_titles("Nice\U000e0069\U000e0067"), Refused(("'title'", "U+E0069"))
    ),
    "right-to-left override in a synopsis": Case(
        with_synopsis("See \u202eevil\u202c here"),
        Refused(("'synopsis'", "U+202E RIGHT-TO-LEFT OVERRIDE", "column 5")),
    ),
    "isolates and marks in a synopsis": Case(
        with_synopsis(f"The title \u2067{HEBREW}\u2069 means peace\u200f."), Builds()
    ),
    "joiners in a title": Case(
        with_titles("Family 👨‍👩‍👧 time", PERSIAN),
        Builds(titles=("Family 👨‍👩‍👧 time", PERSIAN)),
    ),
    "right-to-left and combining text": Case(
        with_titles(HEBREW, ARABIC, "Z̸̢̛a̵l̶g̷o̴"),
        Builds(titles=(HEBREW, ARABIC, "Z̸̢̛a̵l̶g̷o̴")),
    ),
    "&#0; in a synopsis": Case(
        with_synopsis("Nothing &#0; here"), Refused(("'synopsis'", "&#0; at column 9"))
    ),
    "surrogate reference in a synopsis": Case(
        with_synopsis("Half &#xD800; a pair"), Refused(("'synopsis'", "&#xD800;"))
    ),
    "noncharacter reference in a synopsis": Case(
        with_synopsis("&#xFFFE; and &#7;"), Refused(("&#xFFFE;", "&#7;"))
    ),
    "valid references in a synopsis": Case(
        with_synopsis("caf&#233; &#x1F680; &amp; &copy;"), Builds()
    ),
    # Sizes.
    "a title over the limit": Case(
        with_titles("x" * 201), Refused(("'title'", "201 characters long; the limit is 200"))
    ),
    "a long CJK title": Case(with_titles(LONG_CJK), Builds(titles=(LONG_CJK,))),
    "a long title without spaces": Case(with_titles(LONG_WORD), Builds(titles=(LONG_WORD,))),
    "a long emoji title": Case(with_titles(LONG_EMOJI), Builds(titles=(LONG_EMOJI,))),
    "a synopsis over the limit": Case(
        with_synopsis("a" * 20_001),
        Refused(("'synopsis'", "20,001 characters long; the limit is 20,000")),
    ),
    "a long synopsis under a raised limit": Case(
        Values(synopses={1: "word " * 6_000}, limits="[limits]\nsynopsis_characters = 40000\n"),
        Builds(),
    ),
    "a long line of one word": Case(with_synopsis("x" * 19_000), Builds()),
    "a file over the limit": Case(
        Values(raw={"season-01/03-episode-3.md": episode_text(3, "x", "y" * 1_000_001).encode()}),
        Refused(("03-episode-3.md", "bytes; the limit is 1,000,000")),
    ),
    "a 3,000-character word as a title under a raised limit": Case(
        Values(titles={1: "t" * 3000}, limits="[limits]\ntitle_characters = 5000\n"),
        Builds(titles=("t" * 3000,)),
    ),
    "a season title over the limit": Case(
        Values(season_title="s" * 201), Refused(("season.toml:2", "'title'", "201 characters"))
    ),
    "a sender name of 200 characters": Case(Values(sender_name="N" * 200), Builds()),
    "a sender name over 200 characters": Case(
        Values(sender_name="N" * 1200),
        Refused(("'newsletter.sender_name'", "at most 200 characters", "NNN…")),
    ),
    "a slug longer than a DNS label": Case(
        Values(show_extra=""),
        Refused(("'slug'", "at most 63 characters")),
        setup=lambda p: p.write(
            "show.toml",
            (p.content / "show.toml").read_text().replace('"hostile"', '"' + "s" * 64 + '"'),
        ),
    ),
    "a host name over 253 characters": Case(
        Values(base_url="https://" + "a" * 60 + ("." + "b" * 60) * 4 + ".example/"),
        Refused(("'base_url'", "host name is too long")),
    ),
    "a URL over 2,000 characters": Case(
        front(1, image='"https://shows.example.net/' + "i" * 2000 + '.jpg"'),
        Refused(("'image'", "at most 2,000 work")),
    ),
    "an unsubscribe URL too long for its header": Case(
        Values(unsubscribe="https://shows.example.net/u/" + "u" * 900 + "?t={token}"),
        Refused(("'newsletter.unsubscribe_url'", "List-Unsubscribe")),
    ),
    "&#0; in the show's description": Case(
        Values(description="Zero &#0;"), Refused(("show.toml:8", "'description'", "&#0;"))
    ),
    "an override in an editor's note": Case(
        Values(raw={"season-01/newsletter/2024-01-12.md": "Note \u202e here".encode()}),
        Refused(("newsletter/2024-01-12.md:1", "'note'", "U+202E")),
    ),
    "markup in an editor's note": Case(
        Values(raw={"season-01/newsletter/2024-01-12.md": MARKUP.encode()}), Builds()
    ),
    "a title limit of 300": Case(
        Values(titles={1: "t" * 250}, limits="[limits]\ntitle_characters = 300\n"),
        Builds(titles=("t" * 250,)),
    ),
    # Internationalised domains and URLs.
    "IDN base_url": Case(
        Values(base_url="https://例え.jp/ショー/"), Builds(ascii_domain="xn--r8jz45g.jp")
    ),
    "IDN --base-url": Case(
        Values(),
        Builds(ascii_domain="xn--bcher-kva.example"),
        args=("--base-url", "https://Bücher.example/"),
    ),
    "IDN in every URL and address": Case(
        Values(
            base_url="https://bücher.example/",
            sender="news@bücher.example",
            unsubscribe="https://bücher.example/ab?t={token}",
            show_extra='homepage = "https://bücher.example/home"\n'
            'artwork = "https://bücher.example/art.jpg"\n',
            front={1: {"image": '"https://bücher.example/bild-ä.jpg"'}},
        ),
        Builds(ascii_domain="xn--bcher-kva.example"),
    ),
    "an invalid internationalised domain": Case(
        Values(base_url="https://-bad-.例/"),
        Refused(("'base_url'", "not a valid internationalised domain name")),
    ),
    "a quote in a URL": Case(
        front(1, image='"https://shows.example.net/a.jpg\\"onerror=\\"x"'),
        Refused(("'image'", "must not contain", "%22")),
    ),
    "an angle bracket in the unsubscribe URL": Case(
        Values(unsubscribe="https://shows.example.net/u?t={token}>, <https://evil.example/"),
        Refused(("'newsletter.unsubscribe_url'",)),
    ),
    "a non-ASCII sender local part": Case(
        Values(sender="ñews@shows.example.net"),
        Refused(("'newsletter.sender_address'", "before the @-sign")),
    ),
    "a javascript: base_url": Case(
        Values(base_url="javascript:alert(1)//"), Refused(("'base_url'", "absolute http(s) URL"))
    ),
    # Time zones and dates.
    "a +12:45 zone with late releases": Case(
        Values(timezone="Pacific/Chatham", season_extra="release_time = 23:59:59"), Builds()
    ),
    "a +14 zone and a -12 offset": Case(
        Values(
            timezone="Pacific/Kiritimati",
            front={2: {"release": "2024-01-11T23:30:00-12:00"}},
        ),
        Builds(),
    ),
    "a fixed-offset zone": Case(
        Values(timezone="Etc/GMT-14", season_extra="release_time = 00:00:00"),
        Builds(warnings=("Etc/GMT-14",), strict_refuses=True),
    ),
    "a half-hour daylight-saving zone": Case(
        Values(timezone="Australia/Lord_Howe", season_extra="release_time = 01:45:00"), Builds()
    ),
    "a time the clocks skip": Case(
        Values(front={3: {"release": "2024-03-10T02:30:00"}}),
        Builds(warnings=("does not exist in America/New_York",), strict_refuses=True),
        args=("--as-of", "2024-03-31"),
    ),
    "an impossible unquoted date": Case(
        front(2, release="2024-02-30"),
        Refused(("02-episode-2.md:4", "'release'", "February 2024 has 29 days")),
    ),
    "a two-digit year": Case(
        front(2, release="24-01-12"), Refused(("02-episode-2.md:4", "'release'", "YYYY-MM-DD"))
    ),
    "an impossible time": Case(
        front(2, release="2024-01-12T25:00:00"),
        Refused(("02-episode-2.md:4", "'release'", "not a valid time of day")),
    ),
    "a date-time without seconds": Case(
        front(2, release="2024-01-12T21:00"),
        Refused(("02-episode-2.md:4", "'release'", "needs seconds", "2024-01-12T21:00:00")),
    ),
    "a zone name after a date-time": Case(
        front(2, release="2024-01-12T21:00:00 Europe/Berlin"),
        Refused(("02-episode-2.md:4", "'release'", "Europe/Berlin")),
    ),
    "an impossible quoted date": Case(
        front(2, release='"2024-13-01"'), Refused(("02-episode-2.md:4", "'release'", "valid date"))
    ),
    "an impossible season premiere": Case(
        Values(raw={"season-01/season.toml": b'number = 1\ntitle = "S"\npremiere = 2023-11-31\n'}),
        Refused(("season.toml:3", "'premiere'", "November 2023 has 30 days")),
    ),
    "a far-future year": Case(
        front(2, release="9999-12-31"), Refused(("'release'", "not a plausible date"))
    ),
    "a year typo": Case(
        front(2, release="2034-01-12"),
        Builds(
            warnings=(
                "02-episode-2.md:4",
                "more than a year after the season's premiere (2024-01-05)",
                "3,660 days after E1 (2024-01-05)",
                "E2 → 2034-01-12, E3 → 2034-01-20",  # E3 keeps the Friday rhythm
            ),
            strict_refuses=True,
            released=1,
        ),
    ),
    "a release before the previous episode": Case(
        front(3, release="2024-01-01"),
        Builds(warnings=("before E2 (2024-01-12)", "E3 → 2024-01-01"), strict_refuses=True),
    ),
    "a finale before the premiere": Case(
        Values(front={1: {"release": "2024-01-05"}, 3: {"release": "2023-12-01"}}),
        Builds(warnings=("the finale is released 2023-12-01",), strict_refuses=True),
    ),
    "a long break": Case(
        front(3, release="2024-06-07"),
        Builds(warnings=("more than 8 steps of the weekly cadence",), strict_refuses=True),
        args=("--as-of", "2024-06-30"),
    ),
    # Files and folders.
    "duplicate episode numbers": Case(
        Values(raw={"season-01/03-again.md": episode_text(3, "Again").encode()}),
        Refused(
            (
                "content/season-01/03-episode-3.md:2",
                "episode number 3 is also used by content/season-01/03-again.md:2",
            )
        ),
    ),
    "a season folder linked from outside": Case(
        Values(),
        Refused(("content/season-02", "outside the content folder")),
        setup=outside_link("season"),
    ),
    "an episode file linked from outside": Case(
        Values(),
        Refused(("content/season-01/04-stolen.md", "outside the content folder")),
        setup=outside_link("file"),
    ),
    "a link that stays inside": Case(
        Values(), Builds(titles=("Linked",), released=4, episodes=4), setup=inside_link
    ),
}


@pytest.fixture
def case_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_value(name: str, case_project: Project, run: Callable[..., Result]) -> None:
    case = CASES[name]
    project = case_project
    write_project(project, case.values)
    if case.setup is not None:
        case.setup(project)
    args = ["build", "--content", "content", "--output", "output", "--as-of", AS_OF, *case.args]
    result = run(*args)
    if isinstance(case.expect, Refused):
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        for fragment in case.expect.fragments:
            assert fragment in result.output, f"{fragment!r} missing from:\n{result.output}"
        assert "Illegal character '\\x" not in result.output  # no raw parser repr, told once
        assert not project.output.exists()
        return
    assert result.exit_code == 0, result.output
    for fragment in case.expect.warnings:
        assert fragment in result.output, f"{fragment!r} missing from:\n{result.output}"
    check_outputs(project, case)
    if case.expect.strict_refuses:
        strict = run(*args, "--strict")
        assert strict.exit_code == 1
        assert "--strict" in strict.output


# ---- reading every output back ----------------------------------------------------------


def check_outputs(project: Project, case: Case) -> None:
    files = project.snapshot()
    subjects = []
    expect = case.expect
    assert isinstance(expect, Builds)
    for name, data in files.items():
        assert "\ufffd".encode() not in data, f"U+FFFD in {name}"
        if name.endswith((".xml", ".xsl")):
            lxml.etree.fromstring(data)
        if name.endswith(".html"):
            check_page(name, data)
        elif name.endswith(".ics"):
            check_calendar(name, data, expect)
        elif name.endswith(".eml"):
            subjects.append(check_message(name, data, expect))
        elif name.endswith(".json"):
            json.loads(data)
    check_feeds(files, expect)
    for title in expect.titles:  # each title is some issue's Subject, exactly as written
        assert any(f": {title}" in s for s in subjects), (title, subjects)


def check_feeds(files: dict[str, bytes], expect: Builds) -> None:
    atom = feedparser.parse(files["feed.xml"])
    rss = feedparser.parse(files["rss.xml"])
    for parsed in (atom, rss):
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert len(parsed.entries) == expect.released
    titles = {e.title for e in atom.entries}
    for title in expect.titles:
        assert any(t.endswith(f" · {title}") for t in titles), (title, titles)
    assert {e.title for e in rss.entries} == titles
    for entry in atom.entries:
        assert_url(entry.link)
        assert_ascii_domain(entry.id, expect, tag=True)
    for entry in rss.entries:
        assert_ascii_domain(entry.id, expect, tag=True)
    channel = lxml.etree.fromstring(files["rss.xml"]).find("channel")
    assert channel is not None
    texts = [channel.findtext("description") or ""]
    for item in channel.iter("item"):
        texts.append(item.findtext("description") or "")
        texts.append(item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded") or "")
    atom_xml = lxml.etree.fromstring(files["feed.xml"])
    for content in atom_xml.iter("{http://www.w3.org/2005/Atom}content"):
        texts.append(content.text or "")
    for item in json.loads(files["feed.json"])["items"]:
        texts.append(item["content_html"])
    for html in texts:
        assert_inert_fragment(html)
    for href in atom_xml.xpath("//*[local-name()='link']/@href"):
        assert_ascii_domain(href, expect)


def assert_url(url: str) -> None:
    assert urlsplit(url).scheme in URL_SCHEMES, url
    assert url.isascii(), url


def assert_ascii_domain(value: str, expect: Builds, tag: bool = False) -> None:
    assert value.isascii(), value
    if expect.ascii_domain is None:
        return
    if tag:
        assert value.startswith(f"tag:{expect.ascii_domain},"), value
    else:
        host = urlsplit(value).hostname or ""
        assert host == expect.ascii_domain or not host.startswith("xn--"), value


def assert_inert_fragment(html: str) -> None:
    """Sanitised HTML: only allowed elements and attributes, only safe URLs."""
    for top in html5lib.parseFragment(html, treebuilder="lxml", namespaceHTMLElements=False):
        if not isinstance(top, str):
            for element in top.iter():
                check_element(element, allowed=True)


def check_element(element: lxml.etree._Element, *, allowed: bool) -> None:
    tag = element.tag
    if not isinstance(tag, str) or tag in ("DOCUMENT_FRAGMENT", "html", "head", "body"):
        return
    if allowed:
        assert tag in ALLOWED_TAGS, f"<{tag}> in sanitised HTML"
    for name, value in element.attrib.items():
        assert not name.lower().startswith("on"), f"{name} on <{tag}>"
        if allowed:
            assert name in OUTPUT_ATTRIBUTES.get(tag, set()), f"{name} on <{tag}>"
        if name in ("href", "src", "action", "formaction"):
            scheme = urlsplit(value.strip()).scheme
            assert scheme in URL_SCHEMES | {""}, f"{name}={value!r}"


def check_page(name: str, data: bytes) -> None:
    """A page: parses; no script but JSON-LD (which parses); no handler, no unsafe URL."""
    lxml.html.fromstring(data)
    tree = html5lib.parse(data, treebuilder="lxml", namespaceHTMLElements=False)
    for element in tree.iter():
        if element.tag in ("iframe", "object", "embed", "svg"):
            pytest.fail(f"<{element.tag}> in {name}")
        if element.tag == "script":
            assert element.get("type") == "application/ld+json", f"script in {name}"
            json.loads(element.text or "")
        check_element(element, allowed=False)


CONTENT_LINE = re.compile(rb"^[A-Z][A-Z0-9-]*(;[^:]*)?:")


def check_calendar(name: str, data: bytes, expect: Builds) -> None:
    """Folded at 75 octets, CRLF only, every line a property or a continuation; both
    parsers agree; only the known properties; UIDs on the ASCII domain."""
    assert data.endswith(b"\r\n")
    for line in data[:-2].split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, f"bare line break in {name}"
        assert len(line) <= 75, f"{len(line)}-octet line in {name}"
        assert line.startswith(b" ") or CONTENT_LINE.match(line), f"{line[:40]!r} in {name}"
    calendar = icalendar.Calendar.from_ical(data)
    events = list(calendar.walk("VEVENT"))
    parsed = vobject.readOne(data.decode("utf-8"))
    assert len(parsed.contents.get("vevent", [])) == len(events)
    for event in events:
        extra = {key for key in event if key not in EVENT_PROPERTIES}
        assert not extra, f"unexpected {extra} in {name}"
        assert_ascii_domain(str(event["URL"]), expect)
        uid = str(event["UID"])
        assert uid.isascii(), uid
        if expect.ascii_domain:
            assert uid.endswith(f"@{expect.ascii_domain}"), uid
    summaries = [str(e["SUMMARY"]) for e in events]
    if name == "calendar.ics":
        assert len(events) == expect.episodes, f"{len(events)} events"  # none injected
        for title in expect.titles:
            assert any(s.endswith(f": {title}") for s in summaries), (title, summaries)
        assert [v.summary.value for v in parsed.vevent_list] == summaries


def check_message(name: str, data: bytes, expect: Builds) -> str:
    """Lines of at most 998 octets, only the known headers, each once; a Subject that shows
    the title as written; bodies that decode."""
    for line in data.split(b"\r\n"):
        assert len(line) <= 998, f"{len(line)}-octet line in {name}"
    assert b"\n" not in data.replace(b"\r\n", b""), f"bare LF in {name}"
    assert data.split(b"\r\n\r\n", 1)[0].isascii(), f"8-bit header in {name}"
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects, msg.defects
    names = [key for key in msg]
    assert set(names) <= HEADERS, set(names) - HEADERS
    assert len(names) == len(set(names)), names
    message_id = str(msg["Message-ID"])
    assert message_id.isascii()
    if expect.ascii_domain:
        assert message_id.endswith(f"@{expect.ascii_domain}>"), message_id
        assert str(msg["List-Id"]).endswith(f".{expect.ascii_domain}>")
    subject = str(msg["Subject"])
    assert "\n" not in subject and "\r" not in subject
    for part in msg.iter_parts():
        assert isinstance(part, EmailMessage)
        body = part.get_content()
        assert "\ufffd" not in body
        if part.get_content_type() == "text/html":
            check_page(name, body.encode())
    return subject


def test_the_corpus_covers_every_kind_of_hostile_value() -> None:
    """The table keeps its breadth: every class the issue names has a case."""
    names = " ".join(CASES)
    for kind in (
        "markup",
        "entities",
        "CR LF",
        "control",
        "override",
        "long",
        "IDN",
        "zone",
        "impossible",
        "linked",
    ):
        assert kind in names, kind
