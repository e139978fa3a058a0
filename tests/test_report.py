"""``famfeeds report`` (issue 26, section 4): honest figures from the ledger and the store.

One season of real sends is made once for the module: the shipped show, twelve confirmed
subscribers, aiosmtpd as the relay (one address refused with 550 5.1.1, one deferred with
451 on every try, one left uncertain by a garbled reply after the "."), a Maildir of
returned mail read by ``famfeeds bounces`` (a hard bounce, a soft bounce and an ARF
complaint about the first issue), unsubscribes through the real subscriptions service
(uvicorn: one-click POSTs and the page's button) and two new subscribers between issues.
The figures are then read back from ``--json``, from the HTML page parsed by html5lib and
lxml, and from Chromium screenshots at 1280 and 390 px.
"""

from __future__ import annotations

import email
import json
import mailbox
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import html5lib
import httpx
import lxml.html
import pytest
from click.testing import CliRunner, Result

from famfeeds.cli import cli
from famfeeds.delivery.store import SubscriberStore
from famfeeds.render.message import recipient_digest
from faults.smtp_faults import Faults, addresses, free_port, serve
from reports import arf_report, dsn_report
from support import REPO, SHIPPED_CONTENT

SHOW = "for-all-mankind"
FIRST, SECOND = "2023-11-17", "2023-11-24"
SHOTS = REPO / "tests" / "artifacts" / "report"
SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass
class Season:
    root: Path
    content: Path
    html: Path
    report: dict[str, Any]
    messages: dict[str, list[EmailMessage]]
    """Every message the relay held, by issue."""
    service: str


def invoke(*args: str | Path) -> Result:
    runner = CliRunner()
    return runner.invoke(
        cli, [str(a) for a in args], catch_exceptions=False, env={"SOURCE_DATE_EPOCH": None}
    )


def send(content: Path, url: str, day: str, *extra: str) -> Result:
    return invoke("send", day, "--content", content, "--smtp", url, "--now", f"{day}T09:00",
                  "--yes", "--retry-wait", "0.05", *extra)  # fmt: skip


def parsed(faults: Faults) -> list[EmailMessage]:
    return [
        email.message_from_bytes(content, policy=policy.default)
        for _, _, content in faults.messages
    ]


def one_click_url(message: EmailMessage) -> str:
    found = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
    assert found, message["List-Unsubscribe"]
    return found.group(1)


def to(messages: list[EmailMessage], address: str) -> EmailMessage:
    (found,) = [
        m for m in messages if str(m["To"]).endswith(f"<{address}>") or str(m["To"]) == address
    ]
    return found


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Season]:
    from test_trust_send import start_service

    root = tmp_path_factory.mktemp("season")
    content = root / "content"
    shutil.copytree(SHIPPED_CONTENT, content)
    shutil.copy(REPO / "famfeeds.lock", root / "famfeeds.lock")
    port = free_port()
    show_toml = content / "show.toml"
    show_toml.write_text(
        show_toml.read_text().replace(
            'unsubscribe_url = "https://famfeeds.example.org/unsubscribe?token={token}"',
            f'service_url = "http://127.0.0.1:{port}/"',
        )
        + "complaint_rate_stop = 0.2\ncomplaint_rate_warn = 0.05\n"
    )
    state = root / ".famfeeds-state"
    state.mkdir(mode=0o700)
    fans = addresses(12)
    with SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key") as store:
        for address in fans:
            store.add(SHOW, address, confirmed=True)
    faults = Faults()
    faults.reply_at(
        "RCPT", "550 5.1.1 <fan3@example.com>: user unknown", address="fan3@example.com"
    )
    faults.reply_at("RCPT", "451 4.3.0 try later", address="fan5@example.com", times=3)
    faults.after_dot, faults.after_dot_for = "garbage", {"fan7@example.com"}
    messages: dict[str, list[EmailMessage]] = {}
    with serve(faults) as url:
        first = send(content, url, FIRST)
        assert first.exit_code == 3, first.output  # fan7 is uncertain
        messages[FIRST] = parsed(faults)
        service, base, lines = start_service(content, url, port)
        try:
            # Returned mail about the first issue, in a Maildir: a hard bounce (fan1), a soft
            # one (fan2) and a complaint (fan4), each naming the keyed Message-ID it returns.
            key = (state / "secret.key").read_bytes()

            def mid(address: str) -> str:
                digest = recipient_digest(address, key, SHOW)
                return f"Message-ID: <{FIRST}.{SHOW}.{digest}@famfeeds.example.org>\n"

            box = mailbox.Maildir(root / "Maildir", create=True)
            for raw in (
                dsn_report(["fan1@example.com"], to="news@famfeeds.example.org",
                           original=mid("fan1@example.com"), serial="hard"),
                dsn_report(["fan2@example.com"], to="news@famfeeds.example.org", status="4.2.2",
                           action="delayed", original=mid("fan2@example.com"), serial="soft"),
                arf_report("fan4@example.com", to="abuse@famfeeds.example.org",
                           original=mid("fan4@example.com"), serial="arf"),
            ):  # fmt: skip
                box.add(email.message_from_bytes(raw, policy=policy.default))
            box.close()
            read = invoke("bounces", "--maildir", root / "Maildir", "--content", content)
            assert read.exit_code == 0, read.output
            with httpx.Client(timeout=20) as http:
                # fan6 by one-click (as a mail client POSTs it), fan8 by the page's button.
                one_click = one_click_url(to(messages[FIRST], "fan6@example.com"))
                assert one_click.startswith(base)
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                reply = http.post(one_click, content=b"List-Unsubscribe=One-Click", headers=form)
                assert reply.status_code == 200
                page = one_click_url(to(messages[FIRST], "fan8@example.com"))
                assert http.get(page).status_code == 200
                assert http.post(page, data={"from": "page"}).status_code == 200
            with SubscriberStore.open(
                state / "subscribers.sqlite3", secret=state / "secret.key"
            ) as store:
                for address in ("new1@example.com", "new2@example.com"):
                    store.add(SHOW, address, confirmed=True)
            faults.messages.clear()
            faults.after_dot = "answer"  # the relay is well again
            second = send(content, url, SECOND)
            assert second.exit_code == 0, second.output
            assert "Warning: 1 complaint(s) about the issue 2023-11-17" in second.output
            messages[SECOND] = parsed(faults)
            with httpx.Client(timeout=20) as http:
                one_click = one_click_url(to(messages[SECOND], "fan9@example.com"))
                reply = http.post(one_click, data={"List-Unsubscribe": "One-Click"})
                assert reply.status_code == 200
        finally:
            service.terminate()
            service.wait(10)
        assert "Traceback" not in "".join(lines)
    html = root / "report.html"
    result = invoke("report", "--content", content, "--json", "--html", html)
    assert result.exit_code == 0, result.output
    yield Season(root, content, html, json.loads(result.stdout), messages, base)


EXPECTED = {
    FIRST: {
        "sent": 9, "deferred": 1, "failed": 1, "uncertain": 1, "hard_bounces": 2,
        "soft_bounces": 1, "complaints": 1, "list_at_send": 12, "list_after": 9,
        "net_growth": -3, "unsubscribes": {"one-click": 1, "page": 1, "complaint": 1, "other": 0},
        "unsubscribes_total": 3,
    },
    SECOND: {
        "sent": 9, "deferred": 0, "failed": 0, "uncertain": 0, "hard_bounces": 0,
        "soft_bounces": 0, "complaints": 0, "list_at_send": 9, "list_after": 8,
        "net_growth": -1, "unsubscribes": {"one-click": 1, "page": 0, "complaint": 0, "other": 0},
        "unsubscribes_total": 1,
    },
}  # fmt: skip
"""What happened, counted from the script above: the first issue went to twelve; fan3 was
refused (a hard bounce), fan5 deferred, fan7 uncertain; fan1 bounced later (hard), fan2
soft-bounced, fan4 complained; fan6 and fan8 unsubscribed. Five left, two joined: nine got
the second issue, after which fan9 unsubscribed."""


def test_the_json_counts_what_happened(season: Season) -> None:
    report = season.report
    got = {f["issue"]: {k: f[k] for k in EXPECTED[FIRST]} for f in report["issues"]}
    assert got == EXPECTED
    first = report["issues"][0]
    assert first["complaint_rate"] == round(1 / 9, 6)
    assert first["hard_bounce_rate"] == round(2 / 11, 6)
    assert report["list_now"] == 8
    assert report["thresholds"] == {
        "complaint_rate_stop": 0.2, "complaint_rate_warn": 0.05, "bounce_rate_stop": 0.05
    }  # fmt: skip
    assert "no tracking pixel and no redirecting link" in report["tracking"]
    sizes = [s["confirmed"] for s in report["list_sizes"]]
    # Changes within one second are one point (the twelve sign-ups and the first bounce may
    # share one): the series ends at 8 and never leaves 8..12.
    assert sizes[-1] == 8 and len(sizes) >= 2 and all(8 <= n <= 12 for n in sizes)


def test_one_issue_latest_and_an_unknown_one(season: Season) -> None:
    one = invoke("report", FIRST, "--content", season.content, "--json")
    assert [f["issue"] for f in json.loads(one.stdout)["issues"]] == [FIRST]
    latest = invoke("report", "latest", "--content", season.content, "--json")
    assert [f["issue"] for f in json.loads(latest.stdout)["issues"]] == [SECOND]
    unknown = invoke("report", "2020-01-01", "--content", season.content)
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    assert "the ledger has no issue '2020-01-01'" in unknown.output
    assert f"issues it knows: {FIRST}, {SECOND}" in unknown.output


def test_the_table_says_it_tracks_nothing(season: Season) -> None:
    result = invoke("report", "--content", season.content)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "famfeeds puts no tracking pixel and no redirecting link in any message" in text
    rows = [line.split() for line in result.output.splitlines() if line.startswith(FIRST)]
    assert rows[0] == [FIRST, "9", "1", "1", "1", "2", "1", "18.18%"]  # in 80 columns
    assert rows[1] == [FIRST, "1", "11.11%", "3", "(1/1/1/0)", "-3"]


def test_reading_a_report_changes_nothing(season: Season) -> None:
    state = season.root / ".famfeeds-state"
    before = {p.name: p.read_bytes() for p in state.iterdir() if p.suffix == ".sqlite3"}
    mode = state.stat().st_mode
    state.chmod(0o500)  # a report must work where it may not write at all
    try:
        result = invoke("report", "--content", season.content, "--json")
    finally:
        state.chmod(mode)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["issues"][0]["sent"] == 9
    after = {p.name: p.read_bytes() for p in state.iterdir() if p.suffix == ".sqlite3"}
    assert after == before


# -- the HTML page ------------------------------------------------------------------------------


def bar_values(article: Any, ns: str = SVG) -> dict[str, str]:
    values = {}
    for group in article.iter(f"{ns}g"):
        texts = [t.text for t in group.iter(f"{ns}text")]
        values[group.get("data-figure")] = texts[1]
    return values


def test_the_html_page_shows_the_same_figures(season: Season) -> None:
    source = season.html.read_text(encoding="utf-8")
    tree = html5lib.parse(source)  # a browser's parser: SVG gets the SVG namespace
    articles = {a.get("data-issue"): a for a in tree.iter(f"{XHTML}article")}
    assert sorted(articles) == [FIRST, SECOND]
    for issue, expected in EXPECTED.items():
        values = bar_values(articles[issue])
        assert values == {
            "sent": str(expected["sent"]),
            "deferred": str(expected["deferred"]),
            "failed": str(expected["failed"]),
            "uncertain": str(expected["uncertain"]),
            "hard-bounces": str(expected["hard_bounces"]),
            "soft-bounces": str(expected["soft_bounces"]),
            "complaints": str(expected["complaints"]),
            "unsubscribes-total": str(expected["unsubscribes_total"]),
            "net-growth": f"{expected['net_growth']:+d}",
        }
        how = {
            li.get("data-how"): li.find(f"{XHTML}strong").text
            for li in articles[issue].iter(f"{XHTML}li")
        }
        assert how == {k: str(v) for k, v in expected["unsubscribes"].items()}  # type: ignore[attr-defined]
    page = lxml.html.fromstring(source)
    assert page.get_element_by_id("list-now").text == "8"
    rates = {
        (row.get("data-issue"), row.get("data-rate")): row.find_class("figure")[0].text
        for row in page.find_class("rate")
    }
    assert rates == {
        (FIRST, "complaint"): "11.11%", (FIRST, "bounce"): "18.18%",
        (SECOND, "complaint"): "0%", (SECOND, "bounce"): "0%",
    }  # fmt: skip
    levels = {
        (row.get("data-issue"), row.get("data-rate")): row.find_class("figure")[0].get("class")
        for row in page.find_class("rate")
    }
    assert levels[(FIRST, "complaint")] == "figure rate-warn-text"  # over 5%, under 20%
    assert levels[(FIRST, "bounce")] == "figure rate-stop-text"  # over 5%
    assert "no tracking pixel and no redirecting link" in page.get_element_by_id("no-tracking").text


def test_the_html_page_is_self_contained(season: Season) -> None:
    page = lxml.html.fromstring(season.html.read_bytes())
    assert page.xpath("//script") == [] and page.xpath("//link") == []
    assert page.xpath("//img") == [] and page.xpath("//iframe") == []
    for element in page.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            if name in ("href", "src", "xlink:href", "action"):
                pytest.fail(f"{element.tag} {name}={value}: the page must load nothing")
    style = " ".join(page.xpath("//style/text()"))
    assert "url(" not in style and "@import" not in style


# -- no tracking in any message or issue page -----------------------------------------------------


def urls_of(html: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, URL) of every link and resource of an HTML document."""
    page = lxml.html.fromstring(html)
    found = []
    for element in page.iter():
        if not isinstance(element.tag, str):
            continue
        for name in ("href", "src", "srcset", "background", "action", "poster"):
            if element.get(name):
                found.append((element.tag, name, element.get(name)))
        style = element.get("style") or ""
        found += [(element.tag, "style", u) for u in re.findall(r"url\(([^)]*)\)", style)]
    return found


def assert_no_tracking(html: str, allowed_personal: set[str], where: str) -> None:
    """No pixel (an image of at most 1x1 or hidden, or any remote image with a query), and
    no redirecting link (one that carries another URL, or points through a redirector)."""
    page = lxml.html.fromstring(html)
    for img in page.iter("img"):
        width, height = img.get("width", ""), img.get("height", "")
        style = (img.get("style") or "").replace(" ", "").lower()
        assert not (width in ("0", "1") or height in ("0", "1")), (where, lxml.html.tostring(img))
        assert "display:none" not in style and "visibility:hidden" not in style, where
        assert not urlsplit(img.get("src", "")).query, (where, img.get("src"))
    for _, _, url in urls_of(html):
        if url not in allowed_personal:
            assert_not_a_redirect(url, where)


def assert_not_a_redirect(url: str, where: str) -> None:
    """A link that hands the reader on to another address (a query value or fragment that
    is a URL, or a redirector's path) is how click tracking works."""
    parts = urlsplit(url)
    values = [v for _, v in parse_qsl(parts.query)] + [parts.fragment]
    assert not any(re.match(r"(?i)(https?:)?//|www\.", v) for v in values), (where, url)
    path = parts.path
    assert not re.search(r"(?i)/(r|redirect|click|track|open|pixel)(/|$)", path), (where, url)


def test_no_message_carries_a_pixel_or_a_redirecting_link(season: Season) -> None:
    for issue, messages in season.messages.items():
        assert len(messages) >= 9
        bodies: dict[str, list[tuple[str, str, str]]] = {}
        for message in messages:
            html_part = message.get_body(("html",))
            assert html_part is not None
            html = html_part.get_content()
            unsubscribe = one_click_url(message)
            assert unsubscribe.startswith(season.service)
            assert_no_tracking(html, {unsubscribe}, f"{issue} to {message['To']}")
            # Nothing in a copy is personal but its unsubscribe link: no per-reader URL.
            urls = [u for u in urls_of(html) if u[2] != unsubscribe]
            bodies[str(message["To"])] = urls
            text = message.get_body(("plain",))
            assert text is not None
            for url in re.findall(r"https?://[^\s>)]+", text.get_content()):
                if url != unsubscribe:
                    assert_not_a_redirect(url, f"{issue} text to {message['To']}")
        distinct = {json.dumps(urls) for urls in bodies.values()}
        assert len(distinct) == 1, f"{issue}: copies differ in more than the unsubscribe link"
        assert distinct != {"[]"}


def test_no_issue_page_carries_a_pixel_or_a_redirecting_link(season: Season) -> None:
    output = season.root / "output"
    result = invoke("build", "--content", season.content, "--output", output,
                    "--as-of", SECOND)  # fmt: skip
    assert result.exit_code == 0, result.output
    pages = sorted((output / "newsletter").glob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        assert_no_tracking(page.read_text(encoding="utf-8"), set(), str(page))


def test_the_tracking_check_catches_a_pixel_and_a_redirect() -> None:
    pixel = '<p><img src="https://t.example.com/o.gif?u=1" width="1" height="1"></p>'
    redirect = '<p><a href="https://l.example.com/r?url=https%3A%2F%2Fshow.example.org">x</a></p>'
    for html in (pixel, redirect):
        with pytest.raises(AssertionError):
            assert_no_tracking(html, set(), "sample")
    assert_no_tracking('<p><a href="https://show.example.org/s4/e3/">x</a></p>', set(), "ok")


# -- in Chromium --------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_reads_well_in_chromium(season: Season, width: int) -> None:
    from browsing import chromium_browser, file_url, offline

    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium_browser() as browser:
        page = browser.new_page(viewport={"width": width, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        offline(page)
        page.goto(file_url(season.html))
        page.screenshot(full_page=True, path=str(SHOTS / f"report-{width}.png"))
        measured = page.evaluate(
            """() => {
              const doc = document.documentElement;
              const cards = [...document.querySelectorAll('article.issue')].map(a => {
                const r = a.getBoundingClientRect();
                const texts = [...a.querySelectorAll('svg.bars text')].map(t => {
                  const b = t.getBoundingClientRect();
                  return {text: t.textContent, size: b.height, left: b.left, right: b.right};
                });
                return {left: r.left, right: r.right, top: r.top, texts};
              });
              const chart = document.querySelector('svg.size-chart').getBoundingClientRect();
              return {scroll: doc.scrollWidth, client: doc.clientWidth, cards,
                      chart: chart.width};
            }"""
        )
        page.close()
    assert requests == [file_url(season.html)]  # nothing else loaded
    assert measured["scroll"] <= measured["client"], "the page scrolls sideways"
    cards = measured["cards"]
    if width == 390:
        assert len({round(c["left"]) for c in cards}) == 1  # stacked, one column
    else:
        assert len({round(c["top"]) for c in cards}) == 1  # side by side
    for card in cards:  # readable: the chart is not shrunk to illegible text, nor cut off
        assert len(card["texts"]) == 18
        for text in card["texts"]:
            assert text["size"] >= 13, text
            assert card["left"] <= text["left"] and text["right"] <= card["right"], text
    assert measured["chart"] > min(width, 1180) * 0.8


# -- before any send, and an older ledger -----------------------------------------------------


def test_a_project_that_never_sent_reports_nothing_to_report(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(SHIPPED_CONTENT, content)
    result = invoke("report", "--content", content, "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    assert "The ledger holds no issue of this show yet: nothing was sent." in result.output
    assert not (tmp_path / ".famfeeds-state").exists()  # reading created nothing
    page = lxml.html.fromstring((tmp_path / "r.html").read_bytes())
    assert page.xpath("//article") == []
    latest = invoke("report", "latest", "--content", content)
    assert latest.exit_code == 1 and "no issue of for-all-mankind was sent yet" in latest.output


def test_a_ledger_from_before_the_reports_table_is_read_and_upgraded(tmp_path: Path) -> None:
    from famfeeds.delivery.engine import utc_now
    from famfeeds.delivery.ledger import Ledger
    from famfeeds.delivery.report import read_season

    path = tmp_path / "state" / "ledger.sqlite3"
    ledger = Ledger(path)
    ledger.claim(SHOW, FIRST, "a@example.com", 0, ())
    ledger.mark(SHOW, FIRST, "a@example.com", "sent", "250 ok")
    ledger.db.execute("DROP TABLE issue_reports")
    ledger.db.execute("PRAGMA user_version = 3")
    ledger.close()
    season = read_season(path, tmp_path / "state" / "none.sqlite3", SHOW, now=utc_now())
    assert [(f.issue, f.sent, f.hard_bounces) for f in season.issues] == [(FIRST, 1, 0)]
    ledger = Ledger(path)  # a send or famfeeds bounces opens it: schema 4
    ledger.note_reports(SHOW, [("a@example.com", FIRST, "hard")] * 2)
    ledger.close()
    season = read_season(path, tmp_path / "state" / "none.sqlite3", SHOW, now=utc_now())
    assert [(f.issue, f.sent, f.hard_bounces) for f in season.issues] == [(FIRST, 1, 1)]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        (who,) = db.execute("SELECT who FROM issue_reports").fetchone()
    assert "example.com" not in who and len(who) == 64  # a keyed hash, not the address
