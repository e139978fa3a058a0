"""Trust in a send when the relay misbehaves (issue 22, items 5, 9, 10, 11 and 12).

Real processes only: ``famfeeds send`` (and ``famfeeds subscriptions`` under uvicorn) as
subprocesses, aiosmtpd as the relay with scripted faults. What happened is judged at the
relay (one count per recipient the moment it holds a message, with the time MAIL FROM
arrived) and in the ledger and the subscriber store, never from the client's own report.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from famfeeds.delivery.store import SubscriberStore
from faults.smtp_faults import (
    FaultController,
    Faults,
    Handler,
    addresses,
    clean_env,
    famfeeds,
    free_port,
    ledger_states,
    people,
    send_args,
    serve,
    write_csv,
)
from support import Project

SHOW = "for-all-mankind"
USER_UNKNOWN = "550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown"


def every(n: int, count: int = 1) -> Counter[str]:
    return Counter({a: count for a in addresses(n)})


def report_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def open_store(project: Project) -> SubscriberStore:
    state = project.root / ".famfeeds-state"
    state.mkdir(mode=0o700, exist_ok=True)
    return SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")


def confirmed(project: Project, n: int) -> None:
    """The store holds fan0..fan{n-1} as confirmed subscribers."""
    with open_store(project) as store:
        for address in addresses(n):
            store.add(SHOW, address, confirmed=True)


def statuses(project: Project) -> Counter[str]:
    with open_store(project) as store:
        return Counter(s.status for s in store.subscribers(SHOW))


class OddHandler(Handler):
    """The fault handler, answering MAIL, RCPT or the final "." with a fixed reply chosen
    by the test (a message is counted as held whatever the reply after the "." says), and
    stamping when each session's MAIL FROM arrived."""

    def __init__(self, faults: Faults, *, mail: str = "", rcpt: str = "", dot: str = "") -> None:
        super().__init__(faults)
        self.mail, self.rcpt, self.dot = mail, rcpt, dot
        self.mailed: list[tuple[str, float]] = []
        """(recipient, time.time() of its MAIL FROM) for every message the relay holds."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        session.mail_at = time.time()
        if not self.mail:
            return await super().handle_MAIL(server, session, envelope, address, mail_options)
        envelope.mail_from = address
        return self.mail

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if not self.rcpt:
            return await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        envelope.rcpt_tos.append(address)
        return self.rcpt

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.faults.lock:
            self.mailed += [(r.lower(), session.mail_at) for r in envelope.rcpt_tos]
        if not self.dot:
            return await super().handle_DATA(server, session, envelope)
        with self.faults.lock:
            self.faults.stored.update(r.lower() for r in envelope.rcpt_tos)
        return self.dot


class OddRelay(FaultController):
    def __init__(self, handler: OddHandler) -> None:
        self.faults = handler.faults
        Controller.__init__(self, handler, hostname="127.0.0.1", port=free_port())


@contextlib.contextmanager
def odd_relay(handler: OddHandler) -> Iterator[str]:
    controller = OddRelay(handler)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


# -- 5. a relay that refuses everyone ------------------------------------------------------------


def test_a_relay_that_refuses_everyone_suppresses_nobody(shipped: Project) -> None:
    confirmed(shipped, 20)
    faults = Faults()
    faults.reply_at("RCPT", USER_UNKNOWN, times=10_000)
    with serve(faults) as url:
        for _ in range(2):  # the second run used to take the next batch
            result = famfeeds(*send_args(shipped.content, None, url, "--yes", "--json"))
            report = report_of(result)
            assert result.returncode == 1
            assert statuses(shipped) == Counter({"confirmed": 20})
            assert "failed" not in set(ledger_states(shipped.root).values())
            assert report["bounced"] == []
            assert "refused the first" in report["stopped"]
            assert "nobody was marked bounced" in report["stopped"]
        faults.script.clear()  # the operator fixes the relay: everyone gets the issue
        fixed = famfeeds(*send_args(shipped.content, None, url, "--yes", "--json"))
    assert fixed.returncode == 0, fixed.stderr
    assert report_of(fixed)["counts"]["sent"] == 20
    assert faults.stored == every(20)


def test_refusals_count_once_the_relay_has_accepted_someone_and_one_command_undoes_them(
    shipped: Project,
) -> None:
    confirmed(shipped, 6)
    with open_store(shipped) as store:  # an older bounce, not this run's
        store.add(SHOW, "old@example.com", confirmed=True)
        store.suppress(SHOW, "old@example.com", "bounced", "bounce", "5.1.1 earlier")
    faults = Faults()
    for dead in ("fan0@example.com", "fan3@example.com"):  # fan0 is refused first
        faults.reply_at("RCPT", USER_UNKNOWN, address=dead)
    with serve(faults) as url:
        result = famfeeds(*send_args(shipped.content, None, url, "--yes", "--connections", "1"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    dead = {"fan0@example.com", "fan3@example.com"}
    assert faults.stored == Counter(a for a in addresses(6) if a not in dead)
    assert statuses(shipped) == Counter({"confirmed": 4, "bounced": 3})
    undo = re.search(r"famfeeds subscribers clear-bounce --run (\S+)", result.stderr)
    assert undo, result.stderr
    assert "2 address(es) marked bounced by this run" in result.stderr
    cleared = famfeeds(
        "subscribers", "clear-bounce", "--run", undo.group(1), "--content", str(shipped.content)
    )
    assert cleared.returncode == 0, cleared.stderr
    assert "2 address(es) confirmed again" in cleared.stdout
    assert statuses(shipped) == Counter({"confirmed": 6, "bounced": 1})  # old stays bounced
    again = famfeeds(
        "subscribers", "clear-bounce", "--run", undo.group(1), "--content", str(shipped.content)
    )
    assert again.returncode == 1 and "Traceback" not in again.stderr
    bad = famfeeds("subscribers", "clear-bounce", "--since", "yesterday-ish",
                   "--content", str(shipped.content))  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    since = famfeeds("subscribers", "clear-bounce", "--since", "2000-01-01T00:00Z",
                     "--content", str(shipped.content))  # fmt: skip
    assert since.returncode == 0 and "1 address(es) confirmed again" in since.stdout


# -- 9. every 2yz is delivered; an odd reply is uncertain ---------------------------------------


def test_a_251_after_the_dot_is_delivered_once(shipped: Project) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(5))
    with odd_relay(OddHandler(faults, dot="251 2.0.0 queued")) as url:
        first = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
        second = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
    assert faults.stored == every(5)  # was 3 copies each in one run, 6 in two
    assert first.returncode == 0, first.stderr
    assert report_of(first)["counts"]["sent"] == 5
    assert report_of(second)["counts"]["already_sent"] == 5


def test_any_2yz_to_mail_and_rcpt_is_accepted(shipped: Project) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(3))
    handler = OddHandler(faults, mail="252 2.1.0 sender ok", rcpt="252 2.1.5 cannot verify")
    with odd_relay(handler) as url:
        result = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
    assert result.returncode == 0, result.stderr
    assert report_of(result)["counts"]["sent"] == 3
    assert faults.stored == every(3)


@pytest.mark.parametrize(
    "reply",
    [
        "354 go ahead",  # a 3yz after the "."
        "199 hmm",  # 1yz
        "600 what",  # not a reply class
        "250-fine\r\n550 5.0.0 not fine",  # lines that disagree
        "250-fine\r\nnonsense",  # a garbled continuation
        "2500 ok",  # four digits
    ],
)
def test_an_odd_reply_after_the_dot_is_uncertain_and_never_resent(
    shipped: Project, reply: str
) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(2))
    with odd_relay(OddHandler(faults, dot=reply)) as url:
        first = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
        second = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
    assert first.returncode == 3, first.stdout
    assert sorted(u["address"] for u in report_of(first)["uncertain"]) == addresses(2)
    assert report_of(second)["counts"]["sent"] == 0
    assert set(ledger_states(shipped.root).values()) == {"committing"}
    assert faults.stored == every(2)


# -- 10. an unsubscribe answered 200 is honoured at MAIL FROM ------------------------------------


def start_service(
    content: Path, smtp: str, port: int
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """A real ``famfeeds subscriptions`` process (uvicorn); returns it, its URL and its
    output (a thread keeps reading until it ends)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "famfeeds", "subscriptions", "--content", str(content),
         "--smtp", smtp, "--port", str(port)],
        cwd=content.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=clean_env(),
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        with process.stdout:
            lines.extend(process.stdout)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while True:
        found = re.search(r"Listening on (http://\S+/)", "".join(lines))
        if found:
            return process, found.group(1), lines
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the service did not start:\n" + "".join(lines))
        time.sleep(0.05)


def test_a_one_click_answered_200_mid_send_is_never_mailed_after(shipped: Project) -> None:
    port = free_port()
    show_toml = shipped.content / "show.toml"
    show_toml.write_text(
        show_toml.read_text().replace(
            'unsubscribe_url = "https://famfeeds.example.org/unsubscribe?token={token}"',
            f'service_url = "http://127.0.0.1:{port}/"',
        )
    )
    confirmed(shipped, 16)
    with open_store(shipped) as store:
        tokens = {r.email: r.token for r in store.recipients(SHOW)}
    faults = Faults()
    handler = OddHandler(faults)
    with odd_relay(handler) as url:
        service, base, lines = start_service(shipped.content, url, port)
        try:
            args = send_args(shipped.content, None, url, "--yes", "--json", "--rate", "4",
                             "--connections", "3")  # fmt: skip
            sender = subprocess.Popen(
                [sys.executable, "-m", "famfeeds", *args],
                env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while len(handler.mailed) < 4:  # mid-send: a quarter is out
                assert time.monotonic() < deadline and sender.poll() is None
                time.sleep(0.01)
            with faults.lock:
                started = {r for r, _ in handler.mailed}
            answered: dict[str, float] = {}
            with httpx.Client(timeout=20) as http:
                for address in sorted(set(tokens) - started):
                    reply = http.post(
                        f"{base}unsubscribe?token={tokens[address]}",
                        content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    assert reply.status_code == 200
                    answered[address] = time.time()
            output, errors = sender.communicate(timeout=60)
        finally:
            service.terminate()
            service.wait(10)
    assert "Traceback" not in errors + "".join(lines), errors
    report = json.loads(output)
    late = [(r, at - answered[r]) for r, at in handler.mailed if r in answered and at > answered[r]]
    assert late == [], f"{len(late)} of {len(answered)} mailed after their 200"
    assert len(answered) >= 8
    mailed = Counter(r for r, _ in handler.mailed)
    assert all(n == 1 for n in mailed.values())
    skipped = {s["address"] for s in report["skipped"]}
    assert skipped == set(answered) - set(mailed)
    assert report["counts"]["sent"] == len(mailed)


# -- 11. a relay that drops or stalls after the "." for everyone ---------------------------------


@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_uncertain_in_a_row_stops_the_run_and_leaves_the_rest_untouched(
    shipped: Project, fault: str
) -> None:
    faults = Faults()
    faults.after_dot = "drop" if fault == "drop" else "late"
    faults.late_seconds = 2.0
    csv = write_csv(shipped.root, people(20))
    args = send_args(shipped.content, csv, "", "--yes", "--json", "--data-timeout", "0.3")
    with serve(faults) as url:
        args[args.index("--smtp") + 1] = url
        started = time.monotonic()
        result = famfeeds(*args)
        took = time.monotonic() - started
        report = report_of(result)
        assert result.returncode == 3
        uncertain = {u["address"] for u in report["uncertain"]}
        assert 3 <= len(uncertain) <= 4  # the streak, and what the other connection had out
        assert "no answer after the message" in report["stopped"]
        assert "check the relay" in report["stopped"].lower()
        assert len(report["untried"]) == 20 - len(uncertain)
        states = ledger_states(shipped.root)  # the untried have no row at all
        assert len(states) == len(uncertain) and set(states.values()) == {"committing"}
        faults.after_dot = "answer"  # the relay is fixed: the untried get it, once
        later = famfeeds(*args)
    assert later.returncode == 3  # the uncertain stay uncertain
    assert report_of(later)["counts"]["sent"] == 20 - len(uncertain)
    assert faults.stored == every(20)
    assert took < 20


# -- 12. a symlink to the content is the same project --------------------------------------------


def test_a_symlink_to_the_content_uses_the_same_ledger_and_lock(
    shipped: Project, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = elsewhere / "content"
    link.symlink_to(shipped.content, target_is_directory=True)
    faults = Faults()
    csv = write_csv(shipped.root, people(40))
    with serve(faults) as url:
        first = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
        through = famfeeds(*send_args(link, csv, url, "--yes", "--json"))
        assert report_of(first)["counts"]["sent"] == 40
        assert report_of(through)["counts"]["sent"] == 0  # was 40 duplicates
        assert report_of(through)["counts"]["already_sent"] == 40
        assert not (elsewhere / ".famfeeds-state").exists()
        assert faults.stored == every(40)

        faults.hold.set()  # the first run waits at its first message while one through the link
        six = write_csv(tmp_path, people(6))
        args = send_args(shipped.content, six, url, "--yes", "--connections", "1")
        args[args.index("2023-11-24")] = "2023-12-01"
        args[args.index("2023-11-24T09:00")] = "2023-12-01T09:00"
        faults.in_data.clear()
        running = subprocess.Popen(
            [sys.executable, "-m", "famfeeds", *args],
            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert faults.in_data.wait(60)
        other = famfeeds(*[str(link) if a == str(shipped.content) else a for a in args])
        faults.hold.clear()
        running.communicate(timeout=60)
    assert other.returncode == 1, other.stdout
    assert "another famfeeds is sending the issue 2023-12-01" in other.stderr
    assert running.returncode == 0
    assert faults.stored == every(40) + every(6)


def test_project_state_is_keyed_by_the_resolved_content_path(tmp_path: Path) -> None:
    from famfeeds.build.project import Project as Paths

    real = tmp_path / "show" / "content"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    assert Paths.of(tmp_path / "link").state == Paths.of(real).state
    assert Paths.of(tmp_path / "link").state == (tmp_path / "show").resolve() / ".famfeeds-state"
