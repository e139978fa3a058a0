"""Each subscriber's morning: issues delivered at a local time in each subscriber's zone.

`famfeeds send --now` (the real command) runs at a series of moments against an SMTP
server on loopback (aiosmtpd); the expected moments are written out by hand from the
zones' published offsets, not computed by famfeeds. The browser's zone comes from a real
Chromium sign-up run with a time zone override, is shown on the confirm page, and can be
changed there; import and export carry it."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import lxml.html  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller
from click.testing import Result

from famfeeds.delivery.campaign import Campaign
from famfeeds.delivery.store import SubscriberStore
from support import SHOW_TOML, Project, build_args
from test_service import SLUG, Sink, confirm_link, free_port, start_service

NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@shows.example.net"
service_url = "{service_url}"
deliver = "08:00"
quiet_hours = "22:00-07:00"
"""
READERS = {
    "kiri@example.org": "Pacific/Auckland",
    "berta@example.org": "Europe/Berlin",
    "lou@example.org": "America/Los_Angeles",
    "sol@example.org": "America/Sao_Paulo",
    "plain@example.org": "",  # no zone: the show's (Europe/Berlin)
}
# The episode is out on Saturday 2026-03-28 at 21:00 in Berlin (CET, UTC+1): 20:00 UTC.
# That night Berlin moves to CEST (UTC+2), so its 08:00 on Sunday is 06:00 UTC, not 07:00.
# Auckland keeps NZDT (UTC+13) until 5 April, Los Angeles is on PDT (UTC-7) since
# 8 March, and Sao Paulo has no daylight-saving time (UTC-3).
RELEASE = "2026-03-28T20:00:00Z"
DUE = {
    "berta@example.org": "2026-03-29T06:00:00Z",  # 08:00 CEST, the first morning on CEST
    "plain@example.org": "2026-03-29T06:00:00Z",
    "sol@example.org": "2026-03-29T11:00:00Z",  # 08:00 UTC-3
    "lou@example.org": "2026-03-29T15:00:00Z",  # 08:00 PDT
    "kiri@example.org": "2026-03-29T19:00:00Z",  # Monday 08:00 NZDT: Sunday 09:00 was past
}
MOMENTS = [
    "2026-03-28T19:59:00Z",  # before the release: nothing is out
    "2026-03-28T20:00:00Z",  # the release: 21:00 in Berlin, nobody's 08:00 yet
    "2026-03-28T23:30:00Z",
    "2026-03-29T05:59:00Z",
    "2026-03-29T06:00:00Z",
    "2026-03-29T07:00:00Z",  # where 08:00 CET would have been
    "2026-03-29T10:59:00Z",
    "2026-03-29T11:00:00Z",
    "2026-03-29T15:00:30Z",
    "2026-03-29T18:00:00Z",
    "2026-03-29T19:01:00Z",
    "2026-03-29T23:00:00Z",
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Inbox:
    """An SMTP handler that notes every message with the moment of the run it came in."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, email.message.EmailMessage]] = []
        self.moment = ""
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt.lower(), self.moment, message))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def zoned_project(root: Path, service_url: str = "https://news.example.net") -> Project:
    project = Project(root)
    project.write(
        "show.toml",
        SHOW_TOML.format(timezone="Europe/Berlin") + NEWSLETTER.format(service_url=service_url),
    )
    project.season(premiere="2026-03-28", extra="release_time = 21:00:00", episodes=2)
    return project


def people_csv(path: Path, readers: dict[str, str]) -> Path:
    lines = [
        "email,name,timezone",
        *(f"{a},{a.split('@')[0].title()},{z}" for a, z in readers.items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_each_subscriber_gets_the_issue_once_at_their_local_morning(
    tmp_path: Path, inbox: tuple[Inbox, str], run: Callable[..., Result]
) -> None:
    handler, url = inbox
    project = zoned_project(tmp_path)
    content = ["--content", project.content]
    imported = run(
        "subscribers", "import", people_csv(tmp_path / "in.csv", READERS), "--confirmed", *content
    )
    assert imported.exit_code == 0, imported.output
    waiting: list[tuple[str, int, str | None]] = []
    for moment in MOMENTS:
        handler.moment = moment
        campaign = Campaign(project.content, None, "latest", None, url, now=utc(moment))
        upcoming = campaign.next_due()
        result = run("send", "latest", "--yes", "--json", "--smtp", url, "--now", moment, *content)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        waiting.append((moment, report["counts"]["not_yet_due"], report["next_due"]))
        later = sorted(d for a, d in DUE.items() if utc(d) > utc(moment))
        if utc(moment) < utc(RELEASE):
            assert report["nothing_due"] and upcoming is None
            continue
        assert upcoming == (utc(later[0]) if later else None), moment
    # Everyone once, at the first run at or after their moment, never before the release.
    got = {address: [m for a, m, _ in handler.received if a == address] for address in READERS}
    for address, due in DUE.items():
        first = min(m for m in MOMENTS if utc(m) >= utc(due))
        assert got[address] == [first], (address, got[address])
        (message,) = [msg for a, _, msg in handler.received if a == address]
        assert parsedate_to_datetime(message["Date"]) == utc(first)
        assert utc(first) >= utc(RELEASE)
    # What each run said of the rest: how many wait, and the next moment.
    expected: list[tuple[str, int, str | None]] = []
    for moment in MOMENTS:
        if utc(moment) < utc(RELEASE):
            expected.append((moment, 0, None))
            continue
        later = sorted(d for d in DUE.values() if utc(d) > utc(moment))
        expected.append((moment, len(later), later[0] if later else None))
    assert waiting == expected


def test_the_text_report_names_the_next_moment_and_everyone_now_overrides(
    tmp_path: Path, inbox: tuple[Inbox, str], run: Callable[..., Result]
) -> None:
    handler, url = inbox
    project = zoned_project(tmp_path)
    content = ["--content", project.content]
    run("subscribers", "import", people_csv(tmp_path / "in.csv", READERS), "--confirmed", *content)
    early = "2026-03-29T05:00:00Z"
    handler.moment = early
    said = run("send", "latest", "--yes", "--smtp", url, "--now", early, *content)
    assert said.exit_code == 0
    assert "Not yet due: 5 (next at 2026-03-29 06:00 UTC (08:00 CEST))" in said.output
    quiet = run("send", "latest", "--yes", "--quiet", "--smtp", url, "--now", early, *content)
    assert quiet.exit_code == 0 and quiet.output == ""  # waiting is no news for cron
    assert handler.received == []
    everyone = run(
        "send", "latest", "--yes", "--ignore-delivery-time", "--smtp", url, "--now", early, *content
    )
    assert everyone.exit_code == 0, everyone.output
    assert sorted(a for a, _, _ in handler.received) == sorted(READERS)
    handler.moment = "2026-03-29T20:00:00Z"
    again = run(
        "send", "latest", "--yes", "--json", "--smtp", url, "--now", handler.moment, *content
    )
    counts = json.loads(again.output)["counts"]
    assert (counts["sent"], counts["already_sent"], counts["not_yet_due"]) == (0, 5, 0)


def test_import_export_and_the_commands_carry_the_zone(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    project = zoned_project(tmp_path)
    content = ["--content", project.content]
    rows = dict(READERS)
    rows["bad@example.org"] = "Mars/Olympus_Mons"
    imported = run("subscribers", "import", people_csv(tmp_path / "in.csv", rows), *content)
    assert imported.exit_code == 0
    assert (
        "1 invalid" in imported.output
        and "unknown time zone 'Mars/Olympus_Mons'" in imported.output
    )
    exported = tmp_path / "out.csv"
    assert run("subscribers", "export", "-o", exported, *content).exit_code == 0
    table = {r["email"]: r for r in csv.DictReader(io.StringIO(exported.read_text("utf-8")))}
    assert {a: r["timezone"] for a, r in table.items()} == READERS
    # The export imports into another project as it was.
    other = zoned_project(tmp_path / "other")
    again = run("subscribers", "import", exported, "--content", other.content)
    assert again.exit_code == 0, again.output
    with SubscriberStore.open(other.root / ".famfeeds-state" / "subscribers.sqlite3") as store:
        assert {s.email: s.timezone or "" for s in store.subscribers(SLUG)} == READERS
    # set-zone, list and history.
    moved = run("subscribers", "set-zone", "lou@example.org", "America/New_York", *content)
    assert moved.exit_code == 0 and "America/New_York" in moved.output
    back = run("subscribers", "set-zone", "sol@example.org", "show", *content)
    assert back.exit_code == 0 and "the show's (Europe/Berlin)" in back.output
    wrong = run("subscribers", "set-zone", "kiri@example.org", "Pacific/Atlantis", *content)
    assert wrong.exit_code == 1 and "unknown time zone 'Pacific/Atlantis'" in wrong.output
    assert "Traceback" not in wrong.output
    listed = {
        line.split("\t")[0]: line.split("\t")[-1]
        for line in run("subscribers", "list", *content).output.splitlines()
    }
    assert listed["lou@example.org"] == "America/New_York" and listed["sol@example.org"] == ""
    assert listed["kiri@example.org"] == "Pacific/Auckland"
    history = run("subscribers", "history", "sol@example.org", *content).output
    assert "time zone  the show's (Europe/Berlin)" in history
    # An import with an empty zone keeps the stored one.
    keep = people_csv(tmp_path / "keep.csv", {"kiri@example.org": ""})
    assert run("subscribers", "import", keep, *content).exit_code == 0
    history = run("subscribers", "history", "kiri@example.org", *content).output
    assert "time zone  Pacific/Auckland" in history


def test_a_bad_delivery_setting_is_a_clear_error(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    project = zoned_project(tmp_path)
    show = project.content / "show.toml"
    show.write_text(show.read_text().replace('"22:00-07:00"', '"22:00 to 07:00"'))
    result = run("check", "--content", project.content)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "quiet_hours" in result.output and "HH:MM-HH:MM" in result.output


# -- the browser's zone ------------------------------------------------------------------


@pytest.fixture
def zoned_service(tmp_path: Path) -> Iterator[tuple[Project, Any, Sink]]:
    sink = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    sink.start()
    port = free_port()
    project = zoned_project(tmp_path, f"http://127.0.0.1:{port}")
    running = start_service(project.content, sink, "--port", str(port))
    try:
        yield project, running, sink.handler
    finally:
        running.stop()
        sink.stop()
    assert "Traceback" not in "".join(running.lines), "".join(running.lines)


def test_the_browser_zone_is_recorded_shown_and_can_be_changed(
    zoned_service: tuple[Project, Any, Sink], run: Callable[..., Result]
) -> None:
    from browsing import chromium_browser, offline

    project, running, mails = zoned_service
    assert run(*build_args(project, "--as-of", "2026-03-20")).exit_code == 0
    built = project.output / "index.html"
    with chromium_browser() as browser:
        # The service's own form, under its CSP (the script runs only by its hash).
        auckland = browser.new_context(timezone_id="Pacific/Auckland")
        page = auckland.new_page()
        offline(page)
        page.goto(running.endpoint("subscribe"))
        assert page.input_value("input[name=timezone]") == "Pacific/Auckland"
        page.fill("#email", "kiri@example.org")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "Check your inbox" in page.inner_text("body")
        page.goto(confirm_link(mails.wait_for("kiri@example.org")[0]))
        assert page.inner_text("#zone-shown") == "Pacific/Auckland · New Zealand Time"
        assert page.input_value("select[name=timezone]") == "Pacific/Auckland"
        page.select_option("select[name=timezone]", "America/Los_Angeles")
        page.click("form button")
        page.wait_for_load_state()
        assert "You are subscribed" in page.inner_text("body")
        assert page.inner_text("#zone-shown") == "America/Los_Angeles · Pacific Time"
        auckland.close()
        # The built page's form, in Sao Paulo, confirmed as it stands.
        brazil = browser.new_context(timezone_id="America/Sao_Paulo")
        page = brazil.new_page()
        offline(page)
        page.goto(built.as_uri())
        page.fill("#signup-email", "sol@example.org")
        page.click("#signup button[type=submit]")
        page.wait_for_load_state()
        page.goto(confirm_link(mails.wait_for("sol@example.org")[0]))
        assert page.inner_text("#zone-shown") == "America/Sao_Paulo · Brasilia Time"
        page.click("form button")
        page.wait_for_load_state()
        brazil.close()
        # Without script the field stays empty: the show's zone.
        plain = browser.new_context(timezone_id="Asia/Tokyo", java_script_enabled=False)
        page = plain.new_page()
        offline(page)
        page.goto(running.endpoint("subscribe"))
        page.fill("#email", "plain@example.org")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(confirm_link(mails.wait_for("plain@example.org")[0]))
        assert page.inner_text("#zone-shown") == "Europe/Berlin · Central European Time"
        assert page.input_value("select[name=timezone]") == ""  # the show's, whatever it is
        page.click("form button")
        page.wait_for_load_state()
        plain.close()
    # A forged zone is dropped, not stored.
    with httpx.Client(timeout=20) as http:
        http.post(
            running.endpoint("subscribe"),
            data={"email": "forged@example.org", "timezone": "../../etc/passwd"},
        )
        link = confirm_link(mails.wait_for("forged@example.org")[0])
        form = lxml.html.document_fromstring(http.get(link).text).forms[0]
        fields = {"token": form.fields["token"], "timezone": "Mars/Base"}
        done = http.post(running.endpoint("confirm"), data=fields)
        assert done.status_code == 200 and "You are subscribed" in done.text
    with SubscriberStore.open(running.store) as store:
        zones = {s.email: s.timezone for s in store.subscribers(SLUG)}
    assert zones == {
        "kiri@example.org": "America/Los_Angeles",
        "sol@example.org": "America/Sao_Paulo",
        "plain@example.org": None,
        "forged@example.org": None,
    }


def test_the_confirm_page_names_the_zone_in_the_show_language(tmp_path: Path) -> None:
    sink = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    sink.start()
    port = free_port()
    project = zoned_project(tmp_path, f"http://127.0.0.1:{port}")
    show = project.content / "show.toml"
    show.write_text(show.read_text().replace('language = "en"', 'language = "de"'))
    running = start_service(project.content, sink, "--port", str(port))
    try:
        with httpx.Client(timeout=20) as http:
            form = http.get(running.endpoint("subscribe"))
            assert "script-src 'sha256-" in form.headers["content-security-policy"]
            http.post(
                running.endpoint("subscribe"),
                data={"email": "ana@example.org", "timezone": "America/Sao_Paulo"},
            )
            mails: Sink = sink.handler
            page = http.get(confirm_link(mails.wait_for("ana@example.org")[0]))
    finally:
        running.stop()
        sink.stop()
    text = " ".join(lxml.html.document_fromstring(page.text).text_content().split())
    assert (
        "Die Ausgaben kommen nach der Uhr dieser Zeitzone: America/Sao_Paulo · Brasília-Zeit."
        in text
    )
    assert "Wie die Serie: Europe/Berlin · Mitteleuropäische Zeit" in text
    assert "Zeitzone" in text and "Time zone" not in text
