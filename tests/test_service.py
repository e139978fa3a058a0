"""The subscriptions service as people, mail clients and link scanners meet it: the real
`famfeeds subscriptions` process (uvicorn) on loopback, an SMTP sink (aiosmtpd) receiving
the confirmations, httpx for requests, headless Chromium for the sign-up form."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx
import lxml.html
import pytest
from aiosmtpd.controller import Controller
from click.testing import Result

from famfeeds.delivery.store import SubscriberStore
from support import REPO, SHOW_TOML, Project, build_args

SLUG = "test-show"
SENDER = "news@shows.example.net"
NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "{sender}"
service_url = "{service_url}"
"""
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}
SECURITY = {
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
BERLIN = ZoneInfo("Europe/Berlin")
_clients = (f"198.18.{i // 250}.{i % 250 + 1}" for i in itertools.count())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_client() -> dict[str, str]:
    """Headers that make the request come from a client address of its own (the shared
    service trusts X-Forwarded-For from 127.0.0.1)."""
    return {"X-Forwarded-For": next(_clients)}


class Sink:
    """An SMTP server that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.changed:
            self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            self.changed.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.changed:
            return [m for rcpt, m in self.messages if address.lower() in map(str.lower, rcpt)]

    def wait_for(self, address: str, count: int = 1, timeout: float = 15) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.to(address)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no confirmation for {address} reached the sink"
                self.changed.wait(left)
            return self.to(address)


@dataclass
class Running:
    """A `famfeeds subscriptions` process and what it printed."""

    process: subprocess.Popen[str]
    store: Path
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def endpoint(self, name: str) -> str:
        return self.url + name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
        if self.process.stdout:
            self.process.stdout.close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.stop()


def start_service(content: Path, sink: Controller, *args: str) -> Running:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "famfeeds",
            "subscriptions",
            "--content",
            str(content),
            "--smtp",
            f"smtp://127.0.0.1:{sink.port}",
            *args,
        ],
        cwd=content.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Running(process, content.parent / ".famfeeds-state" / "subscribers.sqlite3")

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while not running.url:
        found = re.search(r"Listening on (http://\S+/)", "".join(running.lines))
        if found:
            running.url = found.group(1)
        elif process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            pytest.fail("the service did not start:\n" + "".join(running.lines))
        else:
            time.sleep(0.05)
    return running


def make_project(
    root: Path, service_url: str, language: str = "en", timezone: str = "America/New_York"
) -> Project:
    project = Project(root)
    project.write(
        "show.toml",
        SHOW_TOML.format(timezone=timezone).replace('language = "en"', f'language = "{language}"')
        + NEWSLETTER.format(sender=SENDER, service_url=service_url),
    )
    project.season()
    return project


@pytest.fixture(scope="module")
def sink() -> Iterator[Controller]:
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Project:
    port = free_port()
    project = make_project(tmp_path_factory.mktemp("site"), f"http://127.0.0.1:{port}")
    project.port = port  # type: ignore[attr-defined]
    return project


@pytest.fixture(scope="module")
def service(site: Project, sink: Controller) -> Iterator[Running]:
    running = start_service(
        site.content,
        sink,
        "--port",
        str(site.port),  # type: ignore[attr-defined]
        "--behind-proxy",
        "127.0.0.1",
    )
    assert running.url == f"http://127.0.0.1:{site.port}/"  # type: ignore[attr-defined]
    yield running
    running.stop()
    assert "Traceback" not in "".join(running.lines), "".join(running.lines)


@pytest.fixture
def mails(sink: Controller) -> Sink:
    return sink.handler  # type: ignore[no-any-return]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20) as client:
        yield client


@pytest.fixture
def store(service: Running) -> Iterator[SubscriberStore]:
    with SubscriberStore.open(service.store) as opened:
        yield opened


def sign_up(http: httpx.Client, service: Running, address: str, **fields: str) -> httpx.Response:
    return http.post(
        service.endpoint("subscribe"), data={"email": address, **fields}, headers=new_client()
    )


def confirm_link(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = {u for u in re.findall(r"https?://\S+", text) if "/confirm?token=" in u}
    return link


def only_form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The page's one form: where it posts and its hidden fields; it has one button."""
    doc = lxml.html.document_fromstring(page.text)
    (form,) = doc.forms
    assert form.method == "POST" and len(form.xpath(".//button")) == 1
    assert not doc.xpath("//script")
    hidden = {i.name: i.value for i in form.inputs if i.get("type") == "hidden"}
    return urljoin(str(page.url), form.action), hidden


def rows(store: SubscriberStore) -> list[tuple[Any, ...]]:
    """Everything the store holds, to compare before and after."""
    db = store.db
    return [
        *db.execute("SELECT * FROM subscribers ORDER BY show, key"),
        *db.execute("SELECT * FROM events ORDER BY id"),
        *db.execute("SELECT * FROM suppressions ORDER BY hash"),
    ]


def assert_secure(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert value in response.headers.get(name, ""), (response.status_code, name)


def test_sign_up_confirm_and_one_click_unsubscribe(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    answer = sign_up(http, service, "Ann@Example.org", name="Ann")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert_secure(answer)
    (message,) = mails.wait_for("Ann@example.org")
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["Subject"] == "Confirm your subscription to Test weekly"
    assert message["Date"].endswith("+0000") and message["Message-ID"]
    assert "List-Unsubscribe" not in message
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    link = confirm_link(message)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert link in text.splitlines()[:6]  # near the top
    assert link.replace("&", "&amp;") in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert link.startswith(service.url + "confirm?token=")

    page = http.get(link)
    assert page.status_code == 200 and "Confirm your subscription" in page.text
    assert store.status(SLUG, "ann@example.org") == "pending"
    action, hidden = only_form(page)
    done = http.post(action, data=hidden)
    assert done.status_code == 200 and "You are subscribed" in done.text
    sub = store.subscriber(SLUG, "ann@example.org")
    assert sub is not None and sub.status == "confirmed"
    assert sub.consent_ip == "127.0.0.1" and sub.signup_ip and sub.signup_ip.startswith("198.18.")

    (ann,) = [r for r in store.recipients(SLUG) if r.key == "ann@example.org"]
    unsubscribe = f"{service.url}unsubscribe?token={ann.token}"
    # exactly what Gmail sends (RFC 8058): a form-encoded POST, no cookies, no redirects
    for _ in range(2):
        gone = httpx.post(unsubscribe, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert gone.status_code == 200 and "location" not in gone.headers
        assert "You are unsubscribed" in gone.text
    sub = store.subscriber(SLUG, "ann@example.org")
    assert sub is not None and (sub.status, sub.status_source) == ("unsubscribed", "one-click")
    assert [r for r in store.recipients(SLUG) if r.key == "ann@example.org"] == []


def test_one_click_multipart_and_the_page_button(
    service: Running, http: httpx.Client, store: SubscriberStore
) -> None:
    store.add(SLUG, "multi@example.org", confirmed=True)
    store.add(SLUG, "button@example.org", confirmed=True)
    tokens = {r.key: r.token for r in store.recipients(SLUG)}
    multipart = http.post(
        f"{service.url}unsubscribe?token={tokens['multi@example.org']}",
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert multipart.status_code == 200
    assert store.status(SLUG, "multi@example.org") == "unsubscribed"
    page = http.get(f"{service.url}unsubscribe?token={tokens['button@example.org']}")
    assert page.status_code == 200 and store.status(SLUG, "button@example.org") == "confirmed"
    action, hidden = only_form(page)
    assert http.post(action, data=hidden).status_code == 200
    sub = store.subscriber(SLUG, "button@example.org")
    assert sub is not None and (sub.status, sub.status_source) == ("unsubscribed", "page")


def test_a_link_scanner_changes_nothing(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    sign_up(http, service, "scanned@example.org")
    (message,) = mails.wait_for("scanned@example.org")
    store.add(SLUG, "reader@example.org", confirmed=True)
    reader = next(r for r in store.recipients(SLUG) if r.key == "reader@example.org")
    links = {
        url.rstrip(").,")
        for part in message.iter_parts()
        for url in re.findall(r"https?://[^\s\"'<>]+", part.get_content())  # type: ignore[attr-defined]
    }
    links = {u.replace("&amp;", "&") for u in links if u.startswith(service.url)}
    links |= {f"{service.url}unsubscribe?token={reader.token}", f"{service.url}subscribe"}
    assert any("/confirm?token=" in u for u in links)
    before = rows(store)
    for url in sorted(links):
        for method in ("GET", "HEAD"):
            assert http.request(method, url).status_code == 200, url
    assert rows(store) == before
    assert store.status(SLUG, "scanned@example.org") == "pending"
    assert store.status(SLUG, "reader@example.org") == "confirmed"


def test_the_answer_is_the_same_whatever_the_state(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    store.add(SLUG, "state-pending@example.org")
    store.add(SLUG, "state-confirmed@example.org", confirmed=True)
    store.add(SLUG, "state-left@example.org", confirmed=True)
    store.unsubscribe(SLUG, "state-left@example.org")
    store.suppress(SLUG, "state-bounced@example.org", "bounced", "smtp-5xx", "550 5.1.1")
    store.forget(SLUG, "state-forgotten@example.org")
    states = ("new", "pending", "confirmed", "left", "bounced", "forgotten")
    bodies = set()
    for state in states:
        address = f"state-{state}@example.org"
        answer = sign_up(http, service, address)
        assert answer.status_code == 200
        bodies.add(answer.text.replace(address, "ADDRESS"))
    assert len(bodies) == 1
    for state in states:
        if state != "confirmed":  # a way back for everyone else, by confirming
            mails.wait_for(f"state-{state}@example.org")
    time.sleep(0.3)
    assert mails.to("state-confirmed@example.org") == []
    assert store.status(SLUG, "state-left@example.org") == "unsubscribed"  # until confirmed
    assert store.suppressed(SLUG, "state-forgotten@example.org") == "forgotten"


def test_a_honeypot_sign_up_does_nothing(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    address = "bot@example.org"
    answer = sign_up(http, service, address, website="http://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    time.sleep(0.3)
    assert store.status(SLUG, address) is None and mails.to(address) == []


@pytest.mark.parametrize(
    "address",
    [
        "plainaddress",
        "@example.org",
        "ann@",
        "ann@@example.org",
        "ann@example",
        "ann@exa mple.org",
        "ann@example.org\r\nBcc: victim@example.org",
        "<script>alert(1)</script>@example.org",
        "a" * 300 + "@example.org",
        "ann@[127.0.0.1]",
        "ann@localhost",
    ],
)
def test_malformed_addresses_are_refused(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore, address: str
) -> None:
    before = rows(store)
    answer = sign_up(http, service, address)
    assert answer.status_code == 400
    assert "<script>" not in answer.text
    assert_secure(answer)
    assert rows(store) == before


def test_missing_fields_and_bad_tokens(
    service: Running, http: httpx.Client, store: SubscriberStore
) -> None:
    assert http.post(service.endpoint("subscribe"), data={"name": "x"}).status_code == 400
    assert http.post(service.endpoint("subscribe"), content=b"email=").status_code == 415
    assert http.post(service.endpoint("confirm"), data={}).status_code == 400
    assert http.post(service.endpoint("unsubscribe"), data={}).status_code == 400
    for path in ("confirm", "unsubscribe"):
        assert http.get(f"{service.url}{path}?token=short").status_code == 400
        assert http.get(f"{service.url}{path}?token=%3Cscript%3E").status_code == 400
        unknown = http.get(f"{service.url}{path}?token={'A' * 32}")
        assert unknown.status_code == 404 and "not valid" in unknown.text
        assert_secure(unknown)
    gone = http.post(f"{service.url}unsubscribe?token={'B' * 32}", content=b"", headers=ONE_CLICK)
    assert gone.status_code == 404
    assert http.get(service.url + "nothing-here").status_code == 404
    assert http.delete(service.endpoint("unsubscribe")).status_code == 405
    health = http.get(service.endpoint("healthz"))
    assert health.status_code == 200 and health.text == "ok\n"


def test_a_token_of_another_show_is_unknown(
    service: Running, http: httpx.Client, store: SubscriberStore
) -> None:
    store.add("other-show", "shared@example.org", confirmed=True)
    (theirs,) = store.recipients("other-show")
    url = f"{service.url}unsubscribe?token={theirs.token}"
    assert http.get(url).status_code == 404
    assert (
        http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 404
    )
    assert http.post(service.endpoint("confirm"), data={"token": theirs.token}).status_code == 404
    assert store.status("other-show", "shared@example.org") == "confirmed"


def test_names_with_sql_and_html_are_kept_verbatim_and_shown_escaped(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    name = 'Robert\'); DROP TABLE subscribers;-- <script>alert(1)</script> & "Bobby"'
    assert sign_up(http, service, "bobby@example.org", name=name).status_code == 200
    sub = store.subscriber(SLUG, "bobby@example.org")
    assert sub is not None and sub.name is None  # the name waits for the confirmation
    (message,) = mails.wait_for("bobby@example.org")
    for part in message.iter_parts():
        assert "DROP TABLE" not in part.get_content()  # type: ignore[attr-defined]
    page = http.get(confirm_link(message))
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    shown = lxml.html.document_fromstring(page.text).text_content()
    assert name in shown
    action, hidden = only_form(page)
    assert http.post(action, data=hidden).status_code == 200
    sub = store.subscriber(SLUG, "bobby@example.org")
    assert sub is not None and sub.status == "confirmed" and sub.name == name


def test_oversized_bodies_get_413(service: Running, http: httpx.Client) -> None:
    megabyte = b"email=" + b"a" * 1_000_000
    for path in ("subscribe", "unsubscribe?token=" + "C" * 32, "confirm"):
        answer = http.post(service.url + path, content=megabyte, headers=ONE_CLICK)
        assert answer.status_code == 413, path
        assert_secure(answer)

    def chunks() -> Iterator[bytes]:
        yield b"email="
        for _ in range(3):
            yield b"a" * 4096

    answer = http.post(service.endpoint("subscribe"), content=chunks(), headers=ONE_CLICK)
    assert answer.status_code == 413 and "content-length" not in answer.request.headers


def test_a_burst_from_one_client_is_limited_and_mails_each_address_once(
    service: Running, http: httpx.Client, mails: Sink
) -> None:
    client = new_client()
    addresses = [f"burst{i % 3}@example.org" for i in range(100)]

    def post(address: str, headers: dict[str, str] = client) -> int:
        answer = http.post(service.endpoint("subscribe"), data={"email": address}, headers=headers)
        return answer.status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(post, addresses))
        assert codes.count(200) == 5 and codes.count(429) == 95
        # many clients, one victim: at most one confirmation an hour
        victim = list(
            pool.map(post, ["victim@example.org"] * 30, [new_client() for _ in range(30)])
        )
    assert victim == [200] * 30
    mails.wait_for("victim@example.org")
    time.sleep(0.3)
    assert len(mails.to("victim@example.org")) == 1
    for i in range(3):
        assert len(mails.to(f"burst{i}@example.org")) <= 1


def test_expired_and_confirmed_links(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    sign_up(http, service, "late@example.org")
    link = confirm_link(mails.wait_for("late@example.org")[0])
    store.db.execute(
        "UPDATE requests SET at = '2000-01-01T00:00:00Z' WHERE key = ?",
        ("late@example.org",),
    )
    assert http.get(link).status_code == 410
    action, hidden = link.split("?")[0], {"token": link.split("token=")[1]}
    assert http.post(action, data=hidden).status_code == 410
    assert store.status(SLUG, "late@example.org") == "pending"


def test_a_locked_store_answers_503_then_works(
    service: Running, http: httpx.Client, store: SubscriberStore
) -> None:
    store.add(SLUG, "locked@example.org", confirmed=True)
    (locked,) = [r for r in store.recipients(SLUG) if r.key == "locked@example.org"]
    url = f"{service.url}unsubscribe?token={locked.token}"
    holder = sqlite3.connect(service.store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        busy = http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert "try again" in busy.text and "Traceback" not in busy.text and "sqlite" not in busy.text
    assert store.status(SLUG, "locked@example.org") == "confirmed"
    again = http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert again.status_code == 200
    assert store.status(SLUG, "locked@example.org") == "unsubscribed"


def test_acknowledged_unsubscribes_survive_sigkill(
    tmp_path: Path, sink: Controller, mails: Sink
) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9")
    state = tmp_path / ".famfeeds-state"
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"k{i}@example.org\n" for i in range(600)))
    with SubscriberStore.open(state / "subscribers.sqlite3") as store:
        store.import_csv(SLUG, people, confirmed=True)
        tokens = [r.token for r in store.recipients(SLUG)]
    acknowledged: list[str] = []
    unanswered = 0
    args = ("--port", "0", "--signups-per-minute", "10000")
    for round_ in range(3):
        running = start_service(project.content, sink, *args)
        todo = iter(tokens[round_ * 200 : (round_ + 1) * 200])
        lock = threading.Lock()

        def worker(
            running: Running = running,
            todo: Iterator[str] = todo,
            round_: int = round_,
            lock: threading.Lock = lock,
        ) -> int:
            failures = 0
            with httpx.Client(timeout=5) as http:
                for n, token in enumerate(todo):
                    try:
                        if n % 4 == 0:
                            http.post(
                                running.endpoint("subscribe"),
                                data={"email": f"crash{round_}-{token[:6]}@example.org"},
                            )
                        answer = http.post(
                            f"{running.url}unsubscribe?token={token}",
                            content=b"List-Unsubscribe=One-Click",
                            headers=ONE_CLICK,
                        )
                    except httpx.TransportError:
                        failures += 1
                        continue
                    if answer.status_code == 200:
                        with lock:
                            acknowledged.append(token)
            return failures

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(worker) for _ in range(6)]
            target = len(acknowledged) + 40 + 20 * round_
            deadline = time.monotonic() + 20
            while len(acknowledged) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            running.kill()
            unanswered += sum(f.result() for f in futures)
    assert unanswered > 0, "every request finished: the kill did not land mid-burst"
    running = start_service(project.content, sink, *args)
    try:
        assert httpx.get(running.endpoint("healthz")).status_code == 200
    finally:
        running.stop()
    with SubscriberStore.open(state / "subscribers.sqlite3") as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        left = {
            r[0]
            for r in store.db.execute("SELECT token FROM subscribers WHERE status = 'unsubscribed'")
        }
    assert len(acknowledged) >= 120
    assert set(acknowledged) <= left


def test_an_untrusted_peer_cannot_claim_another_address(
    tmp_path: Path, sink: Controller, mails: Sink
) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9")
    running = start_service(project.content, sink, "--port", "0", "--signups-per-minute", "2")
    try:
        codes = [
            httpx.post(
                running.endpoint("subscribe"),
                data={"email": f"spoof{i}@example.org"},
                headers={"X-Forwarded-For": f"192.0.2.{i}"},
            ).status_code
            for i in range(4)
        ]
    finally:
        running.stop()
    assert codes == [200, 200, 429, 429]  # one client, whatever the header says
    with SubscriberStore.open(tmp_path / ".famfeeds-state" / "subscribers.sqlite3") as store:
        (request,) = store.history(SLUG, "spoof0@example.org")  # the request's own record
    assert request.ip == "127.0.0.1"


def test_a_broken_store_stops_the_service_with_a_message(tmp_path: Path, sink: Controller) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9")
    state = tmp_path / ".famfeeds-state"
    state.mkdir()
    (state / "subscribers.sqlite3").write_bytes(b"garbage" * 1000)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "famfeeds",
            "subscriptions",
            "--content",
            str(project.content),
            "--smtp",
            "smtp://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "not a usable subscriber store" in result.stderr and "Traceback" not in result.stderr


# -- a person with a real browser ------------------------------------------------------


class Browser:
    """Headless Chromium driven over the DevTools protocol (--remote-debugging-pipe)."""

    def __init__(self, profile: Path) -> None:
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        assert found, "Debian's chromium is needed for the browser test (.ci/run installs it)"
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            # bash, not sh: dash takes single-digit descriptors only
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}', found, *flags],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self.buffer = b""
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        try:
            pages = [
                t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"
            ]
            self.session = self.call(
                "Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True
            )["sessionId"]
            self.page("Page.enable")
        except BaseException:
            self.close()
            raise

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self._read], [], [], max(0, deadline - time.monotonic()))
            assert ready, "Chromium did not answer in time"
            chunk = os.read(self._read, 1 << 16)
            assert chunk, "Chromium closed the pipe"
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)  # type: ignore[no-any-return]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            answer = self._message(deadline)
            if answer.get("id") == number:
                assert "error" not in answer, answer
                return answer["result"]  # type: ignore[no-any-return]
            self.events.append(answer)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self.session, **params)

    def loaded(self, action: Callable[[], object]) -> None:
        """Do ``action`` and wait until the page it leads to has loaded."""
        self.events.clear()
        action()
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._message(deadline))

    def node(self, selector: str) -> int:
        root = self.page("DOM.getDocument", depth=0)["root"]["nodeId"]
        found = self.page("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        assert found, f"no {selector} on the page"
        return int(found)

    def type_into(self, selector: str, text: str) -> None:
        self.page("DOM.focus", nodeId=self.node(selector))
        self.page("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        node = self.node(selector)
        self.page("DOM.scrollIntoViewIfNeeded", nodeId=node)
        quad = self.page("DOM.getBoxModel", nodeId=node)["model"]["content"]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def text(self) -> str:
        value = self.page("Runtime.evaluate", expression="document.body.innerText")
        return str(value["result"]["value"])

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)
        os.close(self._read)
        os.close(self._write)


def test_sign_up_from_the_built_page_in_chromium(
    site: Project,
    service: Running,
    mails: Sink,
    store: SubscriberStore,
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    assert run(*build_args(site, "--as-of", "2024-01-20")).exit_code == 0
    page = site.output / "index.html"
    form = lxml.html.parse(str(page)).getroot().get_element_by_id("signup")
    assert form.get("action") == f"{service.url}subscribe"
    scripts = form.getroottree().xpath("//script[not(@type='application/ld+json')]")
    # a plain form: no script sends it; the one script only fills in the browser's zone
    assert [s.text_content().count("submit") for s in scripts] == [0]
    assert "resolvedOptions().timeZone" in scripts[0].text_content()
    browser = Browser(tmp_path / "profile")
    try:
        browser.loaded(lambda: browser.page("Page.navigate", url=page.as_uri()))
        browser.type_into("#signup-email", "Chromium.User@Example.org")
        browser.type_into("#signup-name", "Chris")
        browser.loaded(lambda: browser.click("#signup button[type=submit]"))
        assert "Check your inbox" in browser.text()
        (message,) = mails.wait_for("Chromium.User@example.org")
        link = confirm_link(message)
        browser.loaded(lambda: browser.page("Page.navigate", url=link))
        assert "Confirm your subscription" in browser.text()
        assert store.status(SLUG, "chromium.user@example.org") == "pending"
        browser.loaded(lambda: browser.click("form button"))
        assert "You are subscribed" in browser.text()
    finally:
        browser.close()
    sub = store.subscriber(SLUG, "chromium.user@example.org")
    assert sub is not None and (sub.status, sub.name) == ("confirmed", "Chris")


# -- in the show's language --------------------------------------------------------------

LOCALE = REPO / "src" / "famfeeds" / "locale"
SAYS = {
    "de": {
        "form": ["Test weekly abonnieren", "E-Mail-Adresse", "(freiwillig)", "Anmelden"],
        "inbox": "Schauen Sie in Ihr Postfach",
        "interval": "in der letzten Stunde",
        "subject": "Bitte bestätigen Sie Ihre Anmeldung für Test weekly",
        "hello": "Hallo,",
        "mail": "bitte bestätigen Sie, dass Sie Test weekly an {address} bekommen möchten:",
        "lasts": "Der Link gilt 7 Tage lang, bis {date}.",
        "button": "Anmeldung bestätigen",
        "confirm": ["Bitte bestätigen Sie Ihre Anmeldung", "Ja, anmelden"],
        "confirmed": "Sie sind angemeldet",
        "leave": ["Test weekly abbestellen?", "bekommt keine Ausgaben mehr."],
        "left": ["Sie sind abgemeldet", "Wieder anmelden"],
        "already": ["Bereits abgemeldet", "An diese Adresse gehen derzeit keine Ausgaben"],
        "used": ["Dieser Link wurde schon verwendet", "melden Sie sich noch einmal an"],
        "unknown": ["Dieser Link ist ungültig", "Fehler 404.", "Zurück zu Test Show"],
        "incomplete": "Dieser Link ist unvollständig",
        "invalid": "An „not-an-address“ können wir keine E-Mails schicken.",
        "too large": "Zu groß",
        "not allowed": "Nicht erlaubt",
        "months": "Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|"
        "November|Dezember",
    },
    "fr": {
        "form": [
            "S\u2019inscrire à Test weekly",
            "Adresse e-mail",
            "(facultatif)",
            "S\u2019inscrire",
        ],
        "inbox": "Consultez votre boîte de réception",
        "interval": "au cours de la dernière heure",
        "subject": "Confirmez votre inscription à Test weekly",
        "hello": "Bonjour,",
        "mail": "Veuillez confirmer que vous souhaitez recevoir Test weekly à l\u2019adresse "
        "{address}\u00a0:",
        "lasts": "Le lien est valable 7 jours, jusqu\u2019au {date}.",
        "button": "Confirmer mon inscription",
        "confirm": ["Confirmez votre inscription", "Oui, je m\u2019inscris"],
        "confirmed": "Inscription confirmée",
        "leave": ["Se désabonner de Test weekly\u00a0?", "ne recevra plus aucun numéro."],
        "left": ["Désabonnement confirmé", "Se réinscrire"],
        "already": ["Désabonnement déjà fait", "Cette adresse ne reçoit aucun numéro"],
        "used": ["Ce lien a déjà été utilisé", "inscrivez-vous de nouveau"],
        "unknown": ["Ce lien n\u2019est pas valide", "Erreur 404.", "Retour à Test Show"],
        "incomplete": "Ce lien est incomplet",
        "invalid": "Nous ne pouvons pas envoyer d\u2019e-mail à «\u00a0not-an-address\u00a0».",
        "too large": "Trop volumineux",
        "not allowed": "Non autorisé",
        "months": "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|"
        "novembre|décembre",
    },
}


def english_left_in(text: str, language: str) -> list[str]:
    """English sentences of the service (its catalogue entries of several words that the
    language translates differently) found in ``text``."""
    from babel.messages.pofile import read_po

    def entries(name: str) -> dict[str, str]:
        with (LOCALE / name / "LC_MESSAGES" / "famfeeds.po").open("rb") as f:
            return {m.id: m.string for m in read_po(f) if isinstance(m.id, str) and m.id}

    english, other = entries("en"), entries(language)
    sentences = [
        english[key].split("%(")[0].strip()
        for key in english
        if other[key] != english[key] and " " in english[key].split("%(")[0].strip()
    ]
    return [s for s in sentences if len(s.split()) >= 2 and s in text]


def readable(page: httpx.Response | str) -> str:
    """What a person reads on a page: its text, one space between words."""
    html = page if isinstance(page, str) else page.text
    doc = lxml.html.document_fromstring(html)
    for style in doc.xpath("//style"):
        style.drop_tree()
    return re.sub(r"[ \t\r\n]+", " ", doc.text_content()).strip()  # no-break spaces stay


@pytest.mark.parametrize("language", ["de", "fr"])
def test_pages_and_confirmation_speak_the_show_language(
    tmp_path: Path, sink: Controller, mails: Sink, language: str
) -> None:
    from babel.dates import format_date

    says = SAYS[language]
    port = free_port()
    project = make_project(tmp_path, f"http://127.0.0.1:{port}", language, "Europe/Berlin")
    running = start_service(project.content, sink, "--port", str(port))
    seen: list[str] = []
    try:
        http = httpx.Client(timeout=20)
        form = http.get(running.endpoint("subscribe"))
        doc = lxml.html.document_fromstring(form.text)
        assert doc.get("lang") == language and form.headers["content-language"] == language
        assert all(text in readable(form) for text in says["form"]), readable(form)

        address = f"{language}-reader@example.org"
        days = [
            format_date((datetime.now(UTC) + timedelta(days=7)).astimezone(BERLIN), "full",
                        locale=language)
        ]  # fmt: skip
        answer = http.post(running.endpoint("subscribe"), data={"email": address})
        assert answer.status_code == 200
        assert says["inbox"] in readable(answer) and says["interval"] in readable(answer)
        (message,) = mails.wait_for(address)
        days.append(
            format_date((datetime.now(UTC) + timedelta(days=7)).astimezone(BERLIN), "full",
                        locale=language)
        )  # fmt: skip
        assert message["Subject"] == says["subject"]
        assert message["Content-Language"] == language
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert text.startswith(says["hello"] + "\n")
        assert max(len(line) for line in text.splitlines()) <= 78  # wrapped for plain text
        text = re.sub(r"(?<=\S)\n(?=\S)", " ", text)  # its paragraphs, unwrapped
        assert says["mail"].format(address=address) in text
        assert any(says["lasts"].format(date=day) in text for day in days), text
        assert re.search(f"\\d{{1,2}}\\.? ({says['months']}) 20\\d\\d\\.", text), text
        assert lxml.html.document_fromstring(html).get("lang") == language
        assert says["button"] in readable(html)
        assert any(says["lasts"].format(date=day) in readable(html) for day in days)
        seen += [text, readable(html), str(message["Subject"])]

        page = http.get(confirm_link(message))
        assert all(t in readable(page) for t in says["confirm"]), readable(page)
        action, hidden = only_form(page)
        done = http.post(action, data=hidden)
        assert says["confirmed"] in readable(done)
        seen += [readable(page), readable(done)]

        with SubscriberStore.open(running.store) as store:
            (reader,) = [r for r in store.recipients(SLUG) if r.key == address]
        leave = http.get(f"{running.url}unsubscribe?token={reader.token}")
        assert all(t in readable(leave) for t in says["leave"]), readable(leave)
        gone = http.post(
            f"{running.url}unsubscribe?token={reader.token}",
            content=b"List-Unsubscribe=One-Click",
            headers=ONE_CLICK,
        )
        assert gone.status_code == 200
        assert all(t in readable(gone) for t in says["left"]), readable(gone)
        seen += [readable(leave), readable(gone)]
        already = http.get(f"{running.url}unsubscribe?token={reader.token}")
        assert all(t in readable(already) for t in says["already"]), readable(already)
        used = http.get(confirm_link(message))
        assert all(t in readable(used) for t in says["used"]), readable(used)
        seen += [readable(already), readable(used)]

        errors = {
            "unknown": http.get(f"{running.url}confirm?token={'A' * 32}"),
            "incomplete": http.get(f"{running.url}confirm?token=short"),
            "invalid": http.post(running.endpoint("subscribe"), data={"email": "not-an-address"}),
            "too large": http.post(
                running.endpoint("subscribe"), content=b"email=" + b"a" * 20_000, headers=ONE_CLICK
            ),
            "not allowed": http.delete(running.endpoint("subscribe")),
        }
        for key, response in errors.items():
            wanted = says[key] if isinstance(says[key], list) else [says[key]]
            assert all(t in readable(response) for t in wanted), (key, readable(response))
            assert lxml.html.document_fromstring(response.text).get("lang") == language
            seen.append(readable(response))
        http.close()
    finally:
        running.stop()
    assert "Traceback" not in "".join(running.lines)
    assert english_left_in("\n".join(seen), language) == []


def test_all_interfaces_announce_and_link_an_address_a_browser_opens(
    tmp_path: Path, sink: Controller, mails: Sink
) -> None:
    project = Project(tmp_path)
    project.write(
        "show.toml",
        SHOW_TOML.format(timezone="America/New_York")
        + NEWSLETTER.format(sender=SENDER, service_url="").replace(
            'service_url = ""', 'unsubscribe_url = "https://shows.example.net/u?t={token}"'
        ),
    )
    project.season()
    running = start_service(project.content, sink, "--host", "0.0.0.0", "--port", "0")
    try:
        port = running.url.rsplit(":", 1)[1].strip("/")
        assert running.url == f"http://127.0.0.1:{port}/"
        said = "".join(running.lines)
        assert "0.0.0.0" not in said and "(all interfaces)" in said
        assert f"public URL http://127.0.0.1:{port}/" in said
        answer = httpx.post(running.endpoint("subscribe"), data={"email": "any@example.org"})
        assert answer.status_code == 200
        link = confirm_link(mails.wait_for("any@example.org")[0])
        assert link.startswith(f"http://127.0.0.1:{port}/confirm?token=")
        assert httpx.get(link).status_code == 200
    finally:
        running.stop()


# -- what a link says once it no longer does what it did --------------------------------


def page_text(page: httpx.Response) -> str:
    """What a person reads on a page (its text, without the style sheet)."""
    return readable(page)


def test_a_used_confirmation_link_says_so_and_whether_the_address_gets_issues(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    addresses = ["used-left@example.org", "used-bounced@example.org", "used-stays@example.org"]
    links = {}
    for address in addresses:
        sign_up(http, service, address)
        links[address] = confirm_link(mails.wait_for(address)[0])
        action, hidden = only_form(http.get(links[address]))
        assert "You are subscribed" in http.post(action, data=hidden).text
    (left,) = [r for r in store.recipients(SLUG) if r.key == "used-left@example.org"]
    gone = http.post(
        f"{service.url}unsubscribe?token={left.token}",
        content=b"List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
    )
    assert gone.status_code == 200
    store.suppress(SLUG, "used-bounced@example.org", "bounced", "smtp-5xx", "550 5.1.1")

    before = rows(store)
    stays = http.get(links["used-stays@example.org"])
    assert stays.status_code == 200
    said = page_text(stays)
    assert "This link was already used" in said and "receives Test weekly" in said
    assert "expired" not in said and "used-stays" not in said
    assert "<form" not in stays.text  # nothing left to press

    pages = {}
    for address in ("used-left@example.org", "used-bounced@example.org"):
        page = http.get(links[address])
        assert page.status_code == 410
        said = page_text(page)
        assert "This link was already used" in said
        assert "gets no issues of Test weekly now" in said and "sign up again" in said
        assert "expired" not in said and "7 days" not in said
        assert address.split("@")[0] not in page.text  # nor the address, to whoever holds it
        for reason in ("unsubscribed", "bounced", "complained"):
            assert reason not in said
        pages[address] = said
    # why an address gets nothing stays unsaid: left and bounced read alike
    assert pages["used-left@example.org"] == pages["used-bounced@example.org"]
    assert rows(store) == before  # GET changed nothing

    # pressing the button of a stale page says the same, and confirms nothing
    token = links["used-left@example.org"].split("token=")[1]
    again = http.post(service.endpoint("confirm"), data={"token": token})
    assert again.status_code == 410 and page_text(again) == pages["used-left@example.org"]
    assert store.status(SLUG, "used-left@example.org") == "unsubscribed"
    assert store.status(SLUG, "used-bounced@example.org") == "bounced"


def test_a_sign_up_cancelled_by_an_unsubscribe_says_so(
    service: Running, http: httpx.Client, mails: Sink, store: SubscriberStore
) -> None:
    store.add(SLUG, "cancelled@example.org")
    sign_up(http, service, "cancelled@example.org")
    link = confirm_link(mails.wait_for("cancelled@example.org")[0])
    assert store.unsubscribe(SLUG, "cancelled@example.org") == "pending"
    page = http.get(link)
    said = page_text(page)
    assert page.status_code == 410 and "This sign-up was cancelled" in said
    assert "already used" not in said and "expired" not in said
    assert "gets no issues of Test weekly now" in said
    assert store.status(SLUG, "cancelled@example.org") == "unsubscribed"


def test_the_unsubscribe_link_of_an_address_that_left_says_it_is_done(
    service: Running, http: httpx.Client, store: SubscriberStore
) -> None:
    for state in ("left", "bounced", "complained", "reading"):
        store.add(SLUG, f"done-{state}@example.org", confirmed=True)
    store.unsubscribe(SLUG, "done-left@example.org")
    store.suppress(SLUG, "done-bounced@example.org", "bounced", "smtp-5xx", "550 5.1.1")
    store.suppress(SLUG, "done-complained@example.org", "complained", "arf", "abuse")
    tokens = {s.email: t for s in store.subscribers(SLUG) for t in [
        store.db.execute("SELECT token FROM subscribers WHERE key = ?", (s.key,)).fetchone()[0]
    ]}  # fmt: skip
    before = rows(store)
    said = set()
    for state in ("left", "bounced", "complained"):
        address = f"done-{state}@example.org"
        page = http.get(f"{service.url}unsubscribe?token={tokens[address]}")
        assert page.status_code == 200
        text = page_text(page)
        assert "Already unsubscribed" in text and "gets no issues of Test weekly now" in text
        assert "Unsubscribe from" not in text and "<form" not in page.text
        assert f"done-{state}" not in page.text
        said.add(text)
    assert len(said) == 1  # the reason (left, bounced, complained) is not told
    reading = http.get(f"{service.url}unsubscribe?token={tokens['done-reading@example.org']}")
    assert "Unsubscribe from Test weekly?" in page_text(reading)
    assert rows(store) == before


# -- the name given with the sign-up ---------------------------------------------------


def to_header(raw: bytes) -> tuple[str, str]:
    """To's display name and address as RFC 2047 reads them: parsed by the email
    package's compat32 parser, the name decoded word by word (``decode_header``)."""
    from email.header import decode_header, make_header
    from email.utils import getaddresses

    message = email.message_from_bytes(raw)
    values = message.get_all("To")
    assert values is not None and len(values) == 1
    ((name, address),) = getaddresses(values)
    return str(make_header(decode_header(name))) if name else "", address


class RawSink(Sink):
    """A sink that keeps each message's bytes too."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, bytes] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.raw[rcpt.lower()] = envelope.content
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, RawSink]]:
    """A service of its own whose sink keeps the bytes of every confirmation."""
    handler = RawSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    port = free_port()
    project = make_project(tmp_path_factory.mktemp("named"), f"http://127.0.0.1:{port}")
    running = start_service(
        project.content, controller, "--port", str(port), "--behind-proxy", "127.0.0.1"
    )
    yield running, handler
    running.stop()
    controller.stop()
    assert "Traceback" not in "".join(running.lines)


@pytest.mark.parametrize(
    ("name", "greeted"),
    [
        ("Ann", "Ann"),
        ('Robert "Bob" O\'Brien, Jr (the elder)', 'Robert "Bob" O\'Brien, Jr (the elder)'),
        ("Zoë Ørsted 渡辺 Ça", "Zoë Ørsted 渡辺 Ça"),
        ("Ann\r\nBcc: victim@example.org", None),  # an address: not a name
        ("Ann\r\nBcc victim", "Ann Bcc victim"),  # one line, no header of its own
        ("Ann\u2028X-Evil yes\u0085more", "Ann X-Evil yes more"),
        ("=?us-ascii?q?Evil?=", "=?us-ascii?q?Evil?="),  # shown as typed, never decoded
        ('Zoë =?us-ascii?q?Evil?= "q"', 'Zoë =?us-ascii?q?Evil?= "q"'),
        ("é" * 300, "é" * 100),  # the store keeps 100 characters
        ("Wilhelmina " * 20, ("Wilhelmina " * 20)[:100].strip()),
        ("Visit cheap-pills.example today", None),  # a link: left out
        ("Call 555 0100 now", None),  # a phone number: left out
        ("see https://evil.example", None),
        ("   ", None),
    ],
    ids=lambda v: repr(v)[:24] if isinstance(v, str) else str(v),
)
def test_the_confirmation_greets_by_the_name_given(
    named: tuple[Running, RawSink], http: httpx.Client, name: str, greeted: str | None
) -> None:
    running, handler = named
    address = f"name-{abs(hash(name)) % 10**9}@example.org"
    answer = http.post(
        running.endpoint("subscribe"),
        data={"email": address, "name": name},
        headers=new_client(),
    )
    assert answer.status_code == 200
    (message,) = handler.wait_for(address)
    raw = handler.raw[address]
    assert not message.defects
    assert "Bcc" not in message and "X-Evil" not in message
    display, to = to_header(raw)
    assert to == address
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    greeting = lxml.html.document_fromstring(html).xpath("//p[starts-with(., 'Hi')]")[0]
    if greeted is None:
        assert display == ""
        assert text.splitlines()[0] == "Hi,"
        assert greeting.text_content() == "Hi,"
    else:
        assert display == greeted
        assert text.splitlines()[0] == f"Hi {greeted},"
        assert greeting.text_content() == f"Hi {greeted},"
        if len(greeted) < 40:  # the email package's own reader agrees (it cannot join words)
            assert message["To"].addresses[0].display_name == greeted
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
