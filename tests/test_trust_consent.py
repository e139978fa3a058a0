"""Consent against a stranger, and the service against a client or relay that misbehaves
(issue 22, items 1-4, 13, 14): the real `famfeeds subscriptions` process under uvicorn,
aiosmtpd as the relay, counting what the relay received and what the store holds."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import http.client
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiosmtpd.controller import Controller

from famfeeds.delivery.store import SubscriberStore
from support import REPO
from test_service import (
    SLUG,
    Running,
    confirm_link,
    free_port,
    make_project,
    new_client,
    only_form,
    start_service,
)

ROTATE = (sys.executable, "-m", "famfeeds", "subscribers", "rotate-token")


class Relay:
    """An SMTP server that keeps each message's raw bytes, optionally slowly or stalling."""

    def __init__(self, delay: float = 0.0, stall: bool = False) -> None:
        self.delay = delay
        self.stall = stall
        self.raw: list[tuple[list[str], bytes]] = []
        self.in_data = threading.Event()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data.set()
        if self.stall:
            await asyncio.sleep(120)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.raw.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [
                email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
                for rcpt, raw in self.raw
                if address.lower() in (r.lower() for r in rcpt)
            ]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(found := self.to(address)) < count:
            assert time.monotonic() < deadline, f"no confirmation for {address} reached the relay"
            time.sleep(0.05)
        return found

    def recipients(self) -> set[str]:
        with self.lock:
            return {r.lower() for rcpt, _ in self.raw for r in rcpt}


def relay(handler: Relay) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


@pytest.fixture
def good() -> Iterator[Controller]:
    controller = relay(Relay())
    yield controller
    controller.stop()


def service_for(tmp_path: Path, controller: Controller, *args: str) -> tuple[Path, Running]:
    port = free_port()
    project = make_project(tmp_path, f"http://127.0.0.1:{port}")
    running = start_service(
        project.content, controller, "--port", str(port), "--behind-proxy", "127.0.0.1", *args
    )
    return project.content, running


def sign_up(client: httpx.Client, running: Running, address: str, **fields: str) -> int:
    response = client.post(
        running.endpoint("subscribe"), data={"email": address, **fields}, headers=new_client()
    )
    return response.status_code


def press(client: httpx.Client, link: str, ip: str = "203.0.113.9") -> httpx.Response:
    """Open a confirmation link and press its button, as the person does."""
    action, hidden = only_form(client.get(link))
    return client.post(action, data=hidden, headers={"X-Forwarded-For": ip})


def no_traceback(running: Running) -> None:
    assert "Traceback" not in "".join(running.lines), "".join(running.lines)


# -- item 1: the unsubscribe token never confirms ---------------------------------------


@pytest.mark.parametrize("left_by", ["one-click", "complaint"])
def test_a_stranger_with_an_old_issue_cannot_bring_anyone_back(
    tmp_path: Path, good: Controller, left_by: str
) -> None:
    handler: Relay = good.handler  # type: ignore[assignment]
    _, running = service_for(tmp_path, good)
    victim = "vic@example.org"
    try:
        with httpx.Client(timeout=20) as client:
            assert sign_up(client, running, victim, name="Vic") == 200
            first_link = confirm_link(handler.wait_for(victim)[0])
            assert press(client, first_link).status_code == 200
            with SubscriberStore.open(running.store) as store:
                (recipient,) = store.recipients(SLUG)
                before = store.subscriber(SLUG, victim)
                if left_by == "complaint":
                    store.suppress(SLUG, victim, "complained", "complaint", "ARF abuse")
            unsubscribe = running.endpoint("unsubscribe") + "?token=" + recipient.token
            if left_by == "one-click":  # the token every issue's List-Unsubscribe carries
                one_click = client.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
                assert one_click.status_code == 200
            # The stranger holds that token: sign the address up, then confirm with it.
            assert sign_up(client, running, victim, name="Mallory <b>") == 200
            confirm = running.endpoint("confirm") + "?token=" + recipient.token
            assert client.get(confirm).status_code == 404
            forged = client.post(confirm, data={"token": recipient.token})
            assert forged.status_code == 404
            again = client.post(
                running.endpoint("confirm"),
                data={"token": recipient.token},
                headers={"X-Forwarded-For": "198.51.100.66"},
            )
            assert again.status_code == 404
            # The person's own first link was used: pressed again, it brings nothing back.
            assert client.get(first_link).status_code == 410
            used = {"token": first_link.split("token=")[1]}
            stale = client.post(running.endpoint("confirm"), data=used)
            assert stale.status_code == 410
        with SubscriberStore.open(running.store) as store:
            after = store.subscriber(SLUG, victim)
        gone = "unsubscribed" if left_by == "one-click" else "complained"
        assert after is not None and before is not None and after.status == gone
        assert after.name == "Vic"  # not the stranger's words
        assert (after.consent_at, after.consent_ip) == (before.consent_at, before.consent_ip)
        for message in handler.to(victim):  # no mail ever carried the unsubscribe token
            assert recipient.token not in confirm_link(message)
    finally:
        running.stop()
    no_traceback(running)


def test_each_sign_up_gets_its_own_token_and_the_name_waits_for_it(
    tmp_path: Path, good: Controller
) -> None:
    handler: Relay = good.handler  # type: ignore[assignment]
    _, running = service_for(tmp_path, good)
    try:
        with httpx.Client(timeout=20) as client:
            assert sign_up(client, running, "ann@example.org", name="Ann") == 200
            link = confirm_link(handler.wait_for("ann@example.org")[0])
            with SubscriberStore.open(running.store) as store:
                row = store.subscriber(SLUG, "ann@example.org")
                (token,) = store.db.execute("SELECT token FROM subscribers").fetchone()
            assert row is not None and row.status == "pending" and row.name is None
            assert token not in link  # the row's unsubscribe token is not in the mail
            assert press(client, link).status_code == 200
            with SubscriberStore.open(running.store) as store:
                row = store.subscriber(SLUG, "ann@example.org")
                (recipient,) = store.recipients(SLUG)
            assert row is not None and row.status == "confirmed" and row.name == "Ann"
            assert recipient.token not in link
    finally:
        running.stop()
    no_traceback(running)


def test_the_unsubscribe_token_can_be_rotated(tmp_path: Path, good: Controller) -> None:
    content, running = service_for(tmp_path, good)
    try:
        with SubscriberStore.open(running.store) as store:
            store.add(SLUG, "ann@example.org", confirmed=True)
            store.add(SLUG, "bob@example.org", confirmed=True)
            old = {r.email: r.token for r in store.recipients(SLUG)}
        result = subprocess.run(
            [*ROTATE, "ann@example.org", "--content", str(content)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        assert "no longer work" in result.stdout and old["ann@example.org"] not in result.stdout
        with SubscriberStore.open(running.store) as store:
            new = {r.email: r.token for r in store.recipients(SLUG)}
        assert new["ann@example.org"] != old["ann@example.org"]
        assert new["bob@example.org"] == old["bob@example.org"]
        with httpx.Client(timeout=20) as client:
            url = running.endpoint("unsubscribe") + "?token="
            body = b"List-Unsubscribe=One-Click"
            assert client.post(url + old["ann@example.org"], content=body).status_code == 404
            assert client.post(url + new["ann@example.org"], content=body).status_code == 200
        missing = subprocess.run(
            [*ROTATE, "--content", str(content)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert missing.returncode == 2 and "--all" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        running.stop()


# -- item 2: the outbox survives SIGKILL and SIGTERM ------------------------------------


@pytest.mark.parametrize("count", [150, pytest.param(1000, marks=pytest.mark.slow)])
def test_every_sign_up_answered_200_is_mailed_after_sigkill(tmp_path: Path, count: int) -> None:
    handler = Relay(delay=0.03)
    slow = relay(handler)
    content, running = service_for(tmp_path, slow, "--signups-per-minute", "10000")
    addresses = [f"fan{i:04d}@example.org" for i in range(count)]
    try:
        with httpx.Client(timeout=20) as client, ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda a: sign_up(client, running, a), addresses))
        running.kill()  # while most confirmations are still queued
        assert codes == [200] * len(addresses)
        reached = len(handler.recipients())
        assert reached < len(addresses), "the kill came too late to prove anything"
        restarted = start_service(content, slow, "--port", "0", "--behind-proxy", "127.0.0.1")
        try:
            deadline = time.monotonic() + 30 + count * 0.05
            while handler.recipients() < set(addresses) and time.monotonic() < deadline:
                time.sleep(0.1)
            lost = set(addresses) - handler.recipients()
            assert not lost, f"{len(lost)} confirmations lost (before the restart: {reached})"
            with httpx.Client(timeout=20) as client:  # the throttle counts mails that went out
                assert sign_up(client, restarted, addresses[0]) == 200
            time.sleep(1)
            assert len(handler.to(addresses[0])) == 1
        finally:
            restarted.stop()
        no_traceback(restarted)
    finally:
        slow.stop()


def test_sigterm_with_a_stalled_relay_exits_within_ten_seconds(tmp_path: Path) -> None:
    stalled_handler = Relay(stall=True)
    stalled = relay(stalled_handler)
    content, running = service_for(tmp_path, stalled)
    try:
        with httpx.Client(timeout=20) as client:
            assert sign_up(client, running, "wait@example.org") == 200
        assert stalled_handler.in_data.wait(20)
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(30)
        took = time.monotonic() - started
        assert took < 10, f"the service took {took:.1f} s to stop"
        running.stop()
        no_traceback(running)
    finally:
        stalled.stop()
    working = Relay()
    fine = relay(working)
    try:
        again = start_service(content, fine, "--port", "0")
        try:
            working.wait_for("wait@example.org")  # put back, and mailed by the next start
        finally:
            again.stop()
    finally:
        fine.stop()


# -- items 3 and 4: distinct mailboxes, IDN headers -------------------------------------


def test_distinct_mailboxes_stay_distinct(tmp_path: Path, good: Controller) -> None:
    handler: Relay = good.handler  # type: ignore[assignment]
    _, running = service_for(tmp_path, good)
    try:
        with httpx.Client(timeout=20) as client:
            for address in ("Straße@example.org", "strasse@example.org"):
                assert sign_up(client, running, address) == 200
            links = [
                confirm_link(handler.wait_for(a)[0])
                for a in ("straße@example.org", "strasse@example.org")
            ]
            assert links[0] != links[1]
            for link in links:
                assert press(client, link).status_code == 200
            with SubscriberStore.open(running.store) as store:
                tokens = {r.email: r.token for r in store.recipients(SLUG)}
            assert set(tokens) == {"Straße@example.org", "strasse@example.org"}
            url = running.endpoint("unsubscribe") + "?token=" + tokens["strasse@example.org"]
            assert client.post(url, content=b"List-Unsubscribe=One-Click").status_code == 200
        with SubscriberStore.open(running.store) as store:
            assert store.status(SLUG, "strasse@example.org") == "unsubscribed"
            assert store.status(SLUG, "Straße@example.org") == "confirmed"
            assert store.status(SLUG, "STRASSE@Example.org") == "unsubscribed"  # plain case
    finally:
        running.stop()


def test_the_confirmation_to_an_idn_address_has_a_valid_to_header(
    tmp_path: Path, good: Controller
) -> None:
    handler: Relay = good.handler  # type: ignore[assignment]
    _, running = service_for(tmp_path, good)
    try:
        with httpx.Client(timeout=20) as client:
            assert sign_up(client, running, "ivan@exämple.com") == 200
        handler.wait_for("ivan@xn--exmple-cua.com")
        with handler.lock:
            ((_, raw),) = handler.raw
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        (to,) = [line for line in head.split("\r\n") if line.lower().startswith("to:")]
        assert to == "To: ivan@xn--exmple-cua.com"
        assert "=?" not in to
    finally:
        running.stop()


# -- items 13 and 14: trickling heads, redirects, disconnects ---------------------------


def test_trickling_clients_are_cut_off_and_do_not_stop_real_ones(
    tmp_path: Path, good: Controller
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    handler: Relay = good.handler  # type: ignore[assignment]
    _, running = service_for(tmp_path, good, "--header-timeout", "3")
    host, port = "127.0.0.1", int(running.url.rsplit(":", 1)[1].strip("/"))
    tricklers: list[socket.socket] = []
    try:
        with SubscriberStore.open(running.store) as store:
            store.add(SLUG, "leaving@example.org", confirmed=True)
            (leaving,) = store.recipients(SLUG)
        for _ in range(1000):
            sock = socket.create_connection((host, port))
            sock.sendall(b"POST /subscribe HTTP/1.1\r\nHost: x\r\n")
            tricklers.append(sock)
        opened = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.5):
                for sock in tricklers:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        with httpx.Client(timeout=20) as client:
            started = time.monotonic()
            assert sign_up(client, running, "real@example.org") == 200
            signup_took = time.monotonic() - started
            started = time.monotonic()
            url = running.endpoint("unsubscribe") + "?token=" + leaving.token
            assert client.post(url, content=b"List-Unsubscribe=One-Click").status_code == 200
            one_click_took = time.monotonic() - started
        assert signup_took < 1 and one_click_took < 1, (signup_took, one_click_took)
        handler.wait_for("real@example.org")
        time.sleep(max(0.0, opened + 5 - time.monotonic()))
        stop.set()
        thread.join()
        closed = 0
        for sock in tricklers:
            sock.settimeout(2)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == 1000, f"only {closed} of 1000 trickling connections were closed"
    finally:
        for sock in tricklers:
            sock.close()
        running.stop()
    no_traceback(running)


def test_the_default_head_timeout_is_ten_seconds(tmp_path: Path, good: Controller) -> None:
    _, running = service_for(tmp_path, good)
    host, port = "127.0.0.1", int(running.url.rsplit(":", 1)[1].strip("/"))
    try:
        with socket.create_connection((host, port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            sock.settimeout(20)
            assert sock.recv(1) == b""
            took = time.monotonic() - started
        assert 8 < took < 12, took
    finally:
        running.stop()


def test_no_redirect_from_the_host_header_and_one_line_for_a_client_that_left(
    tmp_path: Path, good: Controller
) -> None:
    _, running = service_for(tmp_path, good)
    host, port = "127.0.0.1", int(running.url.rsplit(":", 1)[1].strip("/"))
    try:
        for path in ("/unsubscribe/?token=" + "A" * 32, "/subscribe/", "/confirm/"):
            for method in ("POST", "GET"):
                connection = http.client.HTTPConnection(host, port, timeout=10)
                connection.putrequest(method, path, skip_host=True)
                connection.putheader("Host", "evil.example")
                connection.putheader("Content-Length", "0")
                connection.endheaders()
                response = connection.getresponse()
                assert response.status == 404, (method, path, response.status)
                assert response.getheader("Location") is None
                response.read()
                connection.close()
        with socket.create_connection((host, port)) as sock:
            sock.sendall(
                b"POST /subscribe HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 500\r\n\r\nemail=" + quote("half@example.org").encode()
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 5
        while "disconnected" not in "".join(running.lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        printed = "".join(running.lines)
        assert printed.count("disconnected before its request body") == 1, printed
    finally:
        running.stop()
    no_traceback(running)
