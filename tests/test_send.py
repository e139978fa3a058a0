"""Sending, against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import Result

from famfeeds.delivery.store import SubscriberStore
from support import Project

PASSWORD = "s3cret-Pa55word"
NOW = "2023-11-24T09:00"
"""The moment every send here happens at: the morning of the issue's day, in the show's zone
(the shipped season's releases are all-day, so the issue of 2023-11-24 is out)."""


class Recorder:
    """An SMTP handler that records what it accepts and can refuse or stall on cue."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.replies: dict[str, list[str]] = {}  # address -> replies to RCPT, in turn
        self.slow: set[str] = set()
        self.slow_seconds = 1.5
        self.in_slow_data = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        planned = self.replies.get(address.lower())
        if planned:
            return planned.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # Like a real server: the message is queued first; the 250 may come late.
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if set(envelope.rcpt_tos) & self.slow:
            self.in_slow_data.set()
            await asyncio.sleep(self.slow_seconds)
        return "250 2.0.0 accepted"

    def received(self) -> Counter[str]:
        return Counter(r.lower() for _, rcpts, _ in self.messages for r in rcpts)

    def parsed(self, address: str) -> email.message.EmailMessage:
        (content,) = [c for _, r, c in self.messages if address in r]
        msg = email.message_from_bytes(content, policy=policy.default)
        assert not msg.defects
        return msg  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(handler: Recorder, **kwargs: object) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def server() -> Iterator[tuple[Recorder, str]]:
    handler = Recorder()
    controller = start(handler)
    yield handler, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def newsletter(shipped: Project) -> Project:
    return shipped


def subscribers(project: Project, rows: list[str], header: str = "email,name,token") -> Path:
    path = project.root / "subscribers.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def people(n: int) -> list[str]:
    return [f"fan{i}@example.com,Fan {i},tok{i}" for i in range(n)]


def send(run: Callable[..., Result], project: Project, csv: Path, url: str, *extra: str) -> Result:
    return run(
        "send",
        "2023-11-24",
        "--content",
        project.content,
        "--subscribers",
        csv,
        "--smtp",
        url,
        "--retry-wait",
        "0.05",
        "--now",
        NOW,
        *extra,
    )


def test_every_subscriber_gets_exactly_one_personal_copy(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    csv = subscribers(newsletter, [*people(12), "FAN3@Example.com,Duplicate,x"])
    result = send(run, newsletter, csv, url, "--yes", "--connections", "3")
    assert result.exit_code == 0, result.output
    assert "sent 12, deferred 0, failed 0" in result.output
    assert "Collapsed 1 duplicate" in result.output
    assert handler.received() == Counter({f"fan{i}@example.com": 1 for i in range(12)})
    for i in (0, 7):
        msg = handler.parsed(f"fan{i}@example.com")
        assert msg["To"] == f"fan{i}@example.com"
        assert msg["Subject"] == "For All Mankind S4 E3: The Bear Hug"
        assert f"token=tok{i}>" in msg["List-Unsubscribe"]
        plain = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert f"Hi Fan {i}," in plain and f"Hi Fan {i}," in html
        assert f"unsubscribe?token=tok{i}" in plain and f"unsubscribe?token=tok{i}" in html
    ids = {handler.parsed(f"fan{i}@example.com")["Message-ID"] for i in range(12)}
    assert len(ids) == 12
    again = send(run, newsletter, csv, url, "--yes")
    assert again.exit_code == 0
    assert "sent 0" in again.output and "skipping 12 already sent" in again.output
    assert sum(handler.received().values()) == 12


def test_transient_failures_are_retried_and_permanent_ones_reported(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    handler.replies = {
        "fan1@example.com": ["451 4.7.1 greylisted, try later"],
        "fan2@example.com": ["421 4.3.2 closing, busy", "451 4.3.0 still busy"],
        "fan3@example.com": ["550 5.1.1 no such user"],
    }
    csv = subscribers(newsletter, people(6))
    result = send(run, newsletter, csv, url, "--yes", "--connections", "2")
    assert result.exit_code == 1
    assert "sent 5, deferred 0, failed 1" in result.output
    assert "failed: fan3@example.com: 550 5.1.1 no such user" in result.output
    assert handler.received() == Counter({f"fan{i}@example.com": 1 for i in range(6) if i != 3})
    assert "(marked bounced: later issues skip it)" in result.output
    rerun = send(run, newsletter, csv, url, "--yes")
    assert rerun.exit_code == 0, rerun.output  # 5.1.1: the address is suppressed for good
    assert "1 suppressed (1 bounced)" in rerun.output
    retried = send(run, newsletter, csv, url, "--yes", "--retry-failed")
    assert retried.exit_code == 0 and "1 suppressed (1 bounced)" in retried.output
    assert sum(handler.received().values()) == 5


def test_a_subscriber_still_deferred_after_every_attempt(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    handler.replies = {"fan0@example.com": ["452 4.2.2 mailbox full"] * 2}
    csv = subscribers(newsletter, people(2))
    result = send(run, newsletter, csv, url, "--yes", "--attempts", "2")
    assert result.exit_code == 1
    assert "deferred: fan0@example.com: 452 4.2.2 mailbox full" in result.output
    later = send(run, newsletter, csv, url, "--yes")
    assert later.exit_code == 0
    assert handler.received() == Counter({"fan0@example.com": 1, "fan1@example.com": 1})


def test_sigkill_mid_send_then_rerun_delivers_everyone_exactly_once(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    handler.slow = {"fan8@example.com"}
    csv = subscribers(newsletter, people(20))
    args = [
        sys.executable,
        "-m",
        "famfeeds",
        "send",
        "2023-11-24",
        "--content",
        str(newsletter.content),
        "--subscribers",
        str(csv),
        "--smtp",
        url,
        "--yes",
        "--connections",
        "1",
        "--now",
        NOW,
    ]
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert handler.in_slow_data.wait(30), "the sender never reached fan8"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    received = handler.received()
    assert received["fan8@example.com"] == 1
    assert len(received) < 20
    ledger = newsletter.root / ".famfeeds-state/ledger.sqlite3"
    states = dict(
        sqlite3.connect(ledger)
        .execute("SELECT recipient, state FROM deliveries WHERE issue = '2023-11-24'")
        .fetchall()
    )
    assert states["fan8@example.com"] == "committing"
    handler.slow = set()
    rerun = send(run, newsletter, csv, url, "--yes")
    assert rerun.exit_code == 3, rerun.output  # uncertain recipients left
    assert "1 uncertain" in rerun.output
    assert handler.received() == Counter({f"fan{i}@example.com": 1 for i in range(20)})


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_password_from_the_environment_never_shown(
    newsletter: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"news"
            and auth_data.password == PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)

    handler = Recorder()
    controller = start(
        handler, authenticator=authenticator, auth_required=True, auth_require_tls=False
    )
    try:
        url = f"smtp://news@127.0.0.1:{controller.port}?insecure-auth=true"
        csv = subscribers(newsletter, people(3))
        missing = send(run, newsletter, csv, url, "--yes")
        assert missing.exit_code == 1 and "FAMFEEDS_SMTP_PASSWORD" in missing.output
        monkeypatch.setenv("FAMFEEDS_SMTP_PASSWORD", "wrong")
        wrong = send(run, newsletter, csv, url, "--yes")
        assert wrong.exit_code == 1 and "refused the login for news" in wrong.output
        assert "wrong" not in wrong.output.replace("wrong password", "")
        monkeypatch.setenv("FAMFEEDS_SMTP_PASSWORD", PASSWORD)
        result = send(run, newsletter, csv, url, "--yes")
        assert result.exit_code == 0, result.output
        assert len(handler.messages) == 3
        assert PASSWORD not in result.output
        ledger = (newsletter.root / ".famfeeds-state/ledger.sqlite3").read_bytes()
        assert PASSWORD.encode() not in ledger
        bad_url = send(run, newsletter, csv, f"smtp://news:{PASSWORD}@127.0.0.1:1", "--yes")
        assert bad_url.exit_code == 1 and PASSWORD not in bad_url.output
    finally:
        controller.stop()


def test_a_name_cannot_add_a_header(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    csv = subscribers(
        newsletter,
        ['eve@example.com,"Eve\r\nBcc: spy@example.com\r\n\r\n<script>x()</script>",tok'],
    )
    assert send(run, newsletter, csv, url, "--yes").exit_code == 0
    msg = handler.parsed("eve@example.com")
    assert msg.get_all("Bcc") is None
    assert [r for _, rcpts, _ in handler.messages for r in rcpts] == ["eve@example.com"]
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Hi Eve Bcc: spy@example.com" in msg.get_body(("plain",)).get_content()


def test_dry_run_and_test_copy_stay_out_of_the_ledger(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    csv = subscribers(newsletter, people(4))
    dry = run(
        "send",
        "2023-11-24",
        "--content",
        newsletter.content,
        "--subscribers",
        csv,
        "--smtp",
        "smtp://127.0.0.1:1",  # nothing listens there: a dry run never connects
        "--dry-run",
        "--now",
        NOW,
    )
    assert dry.exit_code == 0, dry.output
    assert "would send 4 message(s)" in dry.output and "Nothing was sent" in dry.output
    test = run(
        "send",
        "2023-11-24",
        "--content",
        newsletter.content,
        "--subscribers",
        csv,
        "--smtp",
        url,
        "--test-to",
        "editor@example.org",
        "--now",
        NOW,
    )
    assert test.exit_code == 0, test.output
    assert handler.received() == Counter({"editor@example.org": 1})
    real = send(run, newsletter, csv, url, "--yes")
    assert "sent 4" in real.output


def test_invalid_rows_stop_the_send_unless_skipped(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    csv = subscribers(
        newsletter,
        ["ok@example.com,Ok,t", "not-an-address,X,y", "two@@example.com,,", "also@example.com,,"],
    )
    refused = send(run, newsletter, csv, url, "--yes")
    assert refused.exit_code == 1
    assert "subscribers.csv line 3: not-an-address" in refused.output
    assert "subscribers.csv line 4: two@@example.com" in refused.output
    assert handler.messages == []
    skipped = send(run, newsletter, csv, url, "--yes", "--skip-invalid")
    assert skipped.exit_code == 0
    assert handler.received() == Counter({"ok@example.com": 1, "also@example.com": 1})


def test_refuses_without_yes_when_not_interactive(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    result = send(run, newsletter, subscribers(newsletter, people(2)), url)
    assert result.exit_code == 1 and "--yes" in result.output
    assert handler.messages == []


@pytest.mark.parametrize(
    "url,expected",
    [
        ("http://mail.example.org", "the scheme must be smtp:// or smtps://"),
        ("smtp://user:pass/word@mail.example.org", "must not carry a password"),
        ("smtpx://user:pass/word@host", "the scheme must be smtp:// or smtps://"),
        ("smtp:user:pass/word@host", "no server name after //"),
        ("smtp://user:pass/word@mail.example.org:25", "must not carry a password"),
        ("smtp://user:pass%2Fword@mail.example.org", "must not carry a password"),
        ("smtp://mail.example.org?tls=yes", "unknown option(s) tls"),
        ("smtp://mail.example.org:99999", "the port must be a number from 1 to 65535"),
        ("smtp://mail.example.org/pass/word", "has a path"),
        ("smtp://mail.example.org?verify=pass/word", "take true or false"),
    ],
)
def test_bad_smtp_urls_never_show_the_password(
    newsletter: Project, run: Callable[..., Result], url: str, expected: str
) -> None:
    result = send(run, newsletter, subscribers(newsletter, people(1)), url, "--yes")
    assert result.exit_code == 1 and expected in result.output, result.output
    assert "Traceback" not in result.output
    assert "pass/word" not in result.output and "pass%2F" not in result.output
    assert "pass" not in result.output.replace("password", "")


# -- who was left out, and the language of every copy ------------------------------------

SHOW = "for-all-mankind"


def store_of(project: Project) -> SubscriberStore:
    state = project.root / ".famfeeds-state"
    state.mkdir(mode=0o700, exist_ok=True)
    return SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")


def store_send(run: Callable[..., Result], project: Project, url: str, *extra: str) -> Result:
    """``famfeeds send`` to the store's subscribers."""
    args = ["send", "2023-11-24", "--content", project.content, "--smtp", url, "--now", NOW]
    return run(*args, "--retry-wait", "0.05", *extra)


def test_the_summary_counts_everyone_left_out_by_reason(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    with store_of(newsletter) as store:
        for i in range(3):
            store.add(SHOW, f"reader{i}@example.com", confirmed=True)
        store.add(SHOW, "waiting@example.com")  # signed up, never confirmed
        for i in range(2):
            store.add(SHOW, f"left{i}@example.com", confirmed=True)
            store.unsubscribe(SHOW, f"left{i}@example.com")
        store.suppress(SHOW, "dead@example.com", "bounced", "smtp-5xx", "550 5.1.1")
        store.suppress(SHOW, "angry@example.com", "complained", "arf", "abuse")
        store.add(SHOW, "gone@example.com")
        store.forget(SHOW, "gone@example.com")
    counted = "5 suppressed (1 bounced, 1 complained, 1 forgotten, 2 unsubscribed), 1 not confirmed"
    dry = store_send(run, newsletter, url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would send 3 message(s)" in dry.output and counted in dry.output
    real = store_send(run, newsletter, url, "--yes", "--json")
    assert real.exit_code == 0, real.output
    report = json.loads(real.stdout)
    assert report["left_out"] == {
        "bounced": 1,
        "complained": 1,
        "forgotten": 1,
        "not_confirmed": 1,
        "unsubscribed": 2,
    }
    counts = report["counts"]
    assert (counts["sent"], counts["suppressed"], counts["not_confirmed"]) == (3, 5, 1)
    assert counts["left_out"] == 6
    assert handler.received() == Counter({f"reader{i}@example.com": 1 for i in range(3)})
    again = store_send(run, newsletter, url, "--yes")
    assert f"skipping 3 already sent, 0 uncertain, 0 failed before, {counted}." in again.output


def test_a_csv_send_counts_its_suppressed_rows_in_the_json_too(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    handler, url = server
    with store_of(newsletter) as store:
        store.unsubscribe(SHOW, "fan1@example.com")
        store.suppress(SHOW, "fan2@example.com", "complained", "arf", "abuse")
    csv = subscribers(newsletter, people(4))
    result = send(run, newsletter, csv, url, "--yes", "--json")
    report = json.loads(result.stdout)
    assert report["left_out"] == {"complained": 1, "unsubscribed": 1}
    assert report["counts"]["left_out"] == 2 and report["counts"]["sent"] == 2
    assert handler.received() == Counter({"fan0@example.com": 1, "fan3@example.com": 1})


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_every_issue_says_the_language_of_the_show(
    newsletter: Project, server: tuple[Recorder, str], run: Callable[..., Result], language: str
) -> None:
    handler, url = server
    show_toml = newsletter.content / "show.toml"
    show_toml.write_text(
        show_toml.read_text().replace('language = "en"', f'language = "{language}"')
    )
    built = run("build", "--content", newsletter.content, "--output", newsletter.output)
    assert built.exit_code == 0, built.output
    emls = sorted((newsletter.output / "newsletter").glob("*.eml"))
    assert emls
    for path in emls:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message.get_all("Content-Language") == [language], path.name
        assert not message.defects
    csv = subscribers(newsletter, people(1))
    assert send(run, newsletter, csv, url, "--yes").exit_code == 0
    sent = handler.parsed("fan0@example.com")
    assert sent.get_all("Content-Language") == [language]
    html = sent.get_body(("html",)).get_content()
    assert f'lang="{language}"' in html  # the header and the page agree
