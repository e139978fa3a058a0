"""The newsletter as subscribers and mail tools see it: parsed with email, lxml and html5lib."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from datetime import date
from email import policy
from email.message import EmailMessage
from pathlib import Path

import html5lib
import lxml.html
import pytest
from click.testing import Result

from famfeeds.build.pipeline import render
from famfeeds.render.message import MessageTemplate
from famfeeds.render.personal import RenderedIssue
from support import Project, build_args

MARKER = re.compile(rb"famfeeds[0-9a-f]{16}[nt][0-9]+")

BASE = "https://famfeeds.example.org/for-all-mankind/"
ONCE = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?t={token}"
"""


@pytest.fixture
def finished(shipped: Project, run: Callable[..., Result]) -> Project:
    assert run(*build_args(shipped, "--as-of", "2024-01-31")).exit_code == 0
    return shipped


def read_eml(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    return plain.get_content(), html.get_content()


def test_the_shipped_season_yields_eleven_issues(finished: Project) -> None:
    folder = finished.output / "newsletter"
    emls = sorted(p.stem for p in folder.glob("*.eml"))
    assert len(emls) == 11
    assert emls[0] == "2023-11-03"  # the preview, a week before the premiere
    assert emls[1:] == [
        f"{d}"
        for d in (
            "2023-11-10",
            "2023-11-17",
            "2023-11-24",
            "2023-12-01",
            "2023-12-08",
            "2023-12-15",
            "2023-12-22",
            "2023-12-29",
            "2024-01-05",
            "2024-01-12",
        )
    ]
    for stem in emls:
        assert (folder / f"{stem}.html").is_file()
        assert (folder / f"{stem}.txt").is_file()
    archive = lxml.html.parse(str(folder / "index.html")).getroot()
    links = archive.xpath("//main//a/@href")
    assert links == [f"{stem}.html" for stem in reversed(emls)]


@pytest.mark.parametrize("stem", ["2023-11-03", "2023-11-10", "2023-11-24", "2024-01-12"])
def test_each_eml_is_a_clean_multipart_message(finished: Project, stem: str) -> None:
    msg = read_eml(finished.output / f"newsletter/{stem}.eml")
    assert not msg.defects
    for part in msg.walk():
        assert not part.defects
    for header in ONCE:
        assert len(msg.get_all(header, [])) == 1, header
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<https://famfeeds.example.org/unsubscribe?token=")
    assert "<mailto:unsubscribe@famfeeds.example.org" in msg["List-Unsubscribe"]
    assert msg["From"].addresses[0].addr_spec == "news@famfeeds.example.org"
    assert msg["Reply-To"] == "editor@famfeeds.example.org"
    assert msg["Date"].datetime.utcoffset() is not None
    assert "-0000" not in str(msg["Date"])
    assert msg["Message-ID"] == f"<{stem}.for-all-mankind@famfeeds.example.org>"
    assert msg["List-Id"].endswith("<for-all-mankind.famfeeds.example.org>")
    raw = (finished.output / f"newsletter/{stem}.eml").read_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    plain, html = parts(msg)
    # The text and HTML parts name the same links (and so the same episodes).
    doc = lxml.html.document_fromstring(html)
    hrefs = set(doc.xpath("//a/@href"))
    text_urls = set(re.findall(r"(?:https|webcal)://\S+", plain)) - {"https://tv.apple.com"}
    text_urls = {u.rstrip(").,") for u in text_urls}
    assert hrefs == text_urls
    titles = [t.text_content().strip() for t in doc.xpath("//h2")]
    for title in titles:
        assert title in plain


def test_the_html_is_email_safe(finished: Project) -> None:
    path = finished.output / "newsletter/2023-11-24.html"
    raw = path.read_bytes()
    assert len(raw) < 100_000
    html5lib.parse(raw, treebuilder="lxml", namespaceHTMLElements=False)  # parses as HTML5
    doc = lxml.html.document_fromstring(raw)
    subject = read_eml(finished.output / "newsletter/2023-11-24.eml")["Subject"]
    assert doc.findtext(".//title") == subject == "For All Mankind S4 E3: The Bear Hug"
    assert doc.get("lang") == "en"
    assert raw.startswith(b"<!DOCTYPE html>")
    assert not doc.xpath("//script") and b"onclick" not in raw
    for img in doc.xpath("//img"):
        assert img.get("alt") and img.get("src", "").startswith("https://")
    assert all(h.startswith(("https://", "webcal://")) for h in doc.xpath("//a/@href"))
    tables = doc.xpath("//table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    (container,) = doc.xpath("//table[contains(@class, 'container')]")
    assert container.get("width") == "600" and "width:600px" in container.get("style").replace(
        " ", ""
    )
    for cell in doc.xpath("//td[contains(@class, 'section') or contains(@class, 'footer')]"):
        assert "font-family" in cell.get("style", "")
    preheader = doc.xpath("//div[contains(@class, 'preheader')]")[0]
    assert "Episode 3 of 10" in preheader.text_content()
    assert "display:none" in preheader.get("style").replace(" ", "")
    unsubscribe = [a for a in doc.xpath("//a") if a.text_content() == "Unsubscribe"]
    assert unsubscribe and unsubscribe[0].get("href").startswith(
        "https://famfeeds.example.org/unsubscribe?token="
    )
    style = doc.findtext(".//style")
    assert "prefers-color-scheme: dark" in style and "!important" in style
    assert not MARKER.search(raw)


def test_what_an_issue_says(finished: Project) -> None:
    def text(stem: str) -> str:
        return parts(read_eml(finished.output / f"newsletter/{stem}.eml"))[0]

    week3 = text("2023-11-24")
    assert "S4 E3 · The Bear Hug" in week3
    assert "Episode 3 of 10" in week3
    assert "Apple TV+" in week3
    assert "What comes next: S4 E4 “House Divided” on Friday, December 1, 2023." in week3
    assert BASE + "s04/e03/" in week3  # the episode's page
    assert BASE + "episodes/s04e03.ics" not in week3  # out already: nothing to add to a calendar
    assert BASE + "episodes/s04e04.ics" in week3  # what comes next
    assert "webcal://famfeeds.example.org/for-all-mankind/calendar.ics" in week3
    assert BASE + "feed.xml" in week3
    premiere = text("2023-11-10")
    assert "Welcome to the first issue of the season." in premiere  # the editor's note
    assert "the season is complete" in text("2024-01-12")
    assert "(the season finale)" in text("2024-01-05")
    preview = text("2023-11-03")
    assert "Season 4 starts Friday, November 10, 2023" in preview
    assert "10 episodes · new episodes every Friday" in preview
    assert BASE + "season-04.ics" in preview


def test_personalisation_is_escaped_and_leaves_no_markers(shipped: Project) -> None:
    build = render(shipped.content, as_of=date(2024, 1, 31))
    item = rendered_issue(shipped, date(2023, 11, 24))
    html, text = item.personalise('<b>Ana</b> & "Co"', "tok/1 2")
    assert "Hi &lt;b&gt;Ana&lt;/b&gt; &amp; &quot;Co&quot;," in html
    assert 'Hi <b>Ana</b> & "Co",' in text
    assert "unsubscribe?token=tok%2F1%202" in html and "unsubscribe?token=tok%2F1%202" in text
    template = MessageTemplate.of(item, key=b"k" * 32)  # the project's secret, passed in

    def send_copy(to: str, name: str | None, token: str | None) -> EmailMessage:
        msg = email.message_from_bytes(template.render(to, name, token), policy=policy.default)
        assert isinstance(msg, EmailMessage) and not msg.defects
        return msg

    msg = send_copy("ana@example.com", '<b>Ana</b> & "Co"', "tok/1 2")
    assert msg["To"] == "ana@example.com"
    assert "token=tok%2F1%202" in msg["List-Unsubscribe"]
    plain, html_part = parts(msg)
    assert plain.replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert html_part.replace("\r\n", "\n") == html
    other = send_copy("bob@example.com", None, "x")
    assert msg["Message-ID"] != other["Message-ID"]
    again = send_copy("ANA@example.com ", None, None)
    assert msg["Message-ID"] == again["Message-ID"]
    assert "Hi," in parts(again)[0]
    bare_html, bare_text = item.personalise(None, None)
    assert "Hi," in bare_text and not MARKER.search((bare_html + bare_text).encode())
    assert len(build.plan.published(date(2024, 1, 31))) == 11


def rendered_issue(project: Project, day: date) -> RenderedIssue:
    from famfeeds.build.project import template_environment
    from famfeeds.render.newsletter import inliner, render_issue

    build = render(project.content, as_of=date(2024, 1, 31))
    (issue,) = [i for i in build.plan.issues if i.day == day]
    env = template_environment(None, "en")
    return render_issue(issue, env, inliner(build.plan.show.base_url))


def test_hostile_synopsis_never_reaches_the_html(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(
        episodes={
            1: {
                "synopsis": 'Hi <script>alert(1)</script> <a href="x" '
                'onclick="steal()">link</a> <img src=x onerror=y()>'
            }
        }
    )
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    for path in (project.output / "newsletter").glob("*"):
        data = path.read_bytes()
        scripts = data.replace(b'<script type="application/ld+json">', b"")  # the archive's data
        assert b"<script" not in scripts and b"onclick" not in data and b"onerror" not in data
        assert b"alert(" not in data and b"steal(" not in data


def test_a_title_with_a_line_break_is_rejected(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(episodes={1: {"title": "Glasnost\r\nBcc: someone@example.com"}})
    result = run(*build_args(project, "--as-of", "2024-02-01"))
    assert result.exit_code == 1
    assert "field 'title'" in result.output and "one line" in result.output


def test_header_injection_is_impossible_even_past_validation(shipped: Project) -> None:
    item = rendered_issue(shipped, date(2023, 11, 24))
    hostile = RenderedIssue(
        item.issue, "Glasnost\r\nBcc: someone@example.com", item.html, item.text, item.markers
    )
    parsed = email.message_from_bytes(MessageTemplate.of(hostile).render(), policy=policy.default)
    assert parsed.get_all("Bcc") is None
    assert parsed["Subject"] == "Glasnost Bcc: someone@example.com"


def test_notes_that_match_no_issue_warn_and_bad_names_fail(
    shipped: Project, run: Callable[..., Result]
) -> None:
    notes = shipped.content / "season-04/newsletter"
    (notes / "2023-11-25.md").write_text("A Saturday note.")
    result = run("check", "--content", shipped.content)
    assert result.exit_code == 0
    assert "newsletter/2023-11-25.md" in result.output and "no newsletter issue" in result.output
    assert run("check", "--content", shipped.content, "--strict").exit_code == 1
    (notes / "next-week.md").write_text("?")
    bad = run("check", "--content", shipped.content)
    assert bad.exit_code == 1
    assert "newsletter/next-week.md" in bad.output


def test_a_multi_episode_premiere_is_one_issue(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(episodes={1: {}, 2: {"release": "2024-01-05"}, 3: {}})
    assert run(*build_args(project, "--as-of", "2024-01-05")).exit_code == 0
    emls = sorted(p.name for p in (project.output / "newsletter").glob("*.eml"))
    assert emls == ["2023-12-29.eml", "2024-01-05.eml"]
    msg = read_eml(project.output / "newsletter/2024-01-05.eml")
    assert msg["Subject"] == "Test Show S1 E1\u2013E2: Episode 1, Episode 2"
    plain, _ = parts(msg)
    assert "S1 E1 · Episode 1" in plain and "S1 E2 · Episode 2" in plain


def test_no_newsletter_table_means_no_issues(project: Project, run: Callable[..., Result]) -> None:
    project.show()
    project.season()
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    assert not (project.output / "newsletter").exists()
    result = run("newsletter", "--content", project.content, "--as-of", "2024-02-01")
    assert result.exit_code == 1 and "[newsletter]" in result.output


def test_newsletter_command(finished: Project, run: Callable[..., Result]) -> None:
    common = ["--content", finished.content, "--output", finished.output, "--as-of", "2023-12-02"]
    latest = run("newsletter", *common)
    assert latest.exit_code == 0
    assert latest.output.startswith("Issue 2023-12-01: For All Mankind S4 E4: House Divided")
    assert "newsletter/2023-12-01.eml" in latest.output and "not built" not in latest.output
    dated = run("newsletter", *common, "--date", "2023-11-10")
    assert "Issue 2023-11-10" in dated.output
    eml = run("newsletter", *common, "--date", "2023-11-17", "--eml")
    assert eml.exit_code == 0
    msg = email.message_from_bytes(eml.stdout_bytes, policy=policy.default)
    assert msg["Subject"] == "For All Mankind S4 E2: Have a Nice Sol"
    assert eml.stdout_bytes == (finished.output / "newsletter/2023-11-17.eml").read_bytes()
    future = run("newsletter", *common, "--date", "2023-12-08")
    assert future.exit_code == 1 and "not out yet as of 2023-12-02" in future.output
    missing = run("newsletter", *common, "--date", "2023-11-11")
    assert missing.exit_code == 1 and "issues so far: 2023-11-03" in missing.output
    both = run("newsletter", *common, "--date", "2023-11-10", "--latest")
    assert both.exit_code == 2


def test_rebuilds_reuse_inlined_html(
    shipped: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(*build_args(shipped, "--as-of", "2024-01-31")).exit_code == 0
    first = shipped.snapshot()
    assert len(list((shipped.root / ".famfeeds-cache/issues").glob("*.json"))) == 11
    import premailer

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("inlined again")

    monkeypatch.setattr(premailer.Premailer, "transform", refuse)
    assert run(*build_args(shipped, "--as-of", "2024-01-31")).exit_code == 0
    assert shipped.snapshot() == first


@pytest.mark.parametrize("width", range(30, 90))
def test_a_folded_subject_never_holds_an_empty_encoded_word(width: int) -> None:
    """Wherever the one non-ASCII character falls against the fold, the Subject has no
    ``=?utf-8?q??=`` (RFC 2047 forbids it; strict readers show it as written) and reads
    back as written."""
    from famfeeds.render.message import _header

    value = f"{'Season 0 starts Friday, November 10, 2023 '[:width].ljust(width, 'x')} \u00b7 Next"
    raw = _header("Subject", value)
    assert not re.search(rb"=\?[^?]*\?[qb]\?\?=", raw, re.IGNORECASE), raw
    msg = email.message_from_bytes(raw + b"\r\n", policy=policy.default)
    assert str(msg["Subject"]) == value
