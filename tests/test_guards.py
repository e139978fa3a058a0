"""The reputation guards (issue 26, section 3): a send stops at the thresholds, not below.

Real programs only: aiosmtpd as the relay (refusing chosen recipients with 550 5.1.1, and
counting every session and message it holds), the subscriber store, and complaints (ARF
reports) delivered to a real dovecot and read back over IMAP by ``famfeeds bounces``.
"""

from __future__ import annotations

import email
import json
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import pytest
from click.testing import Result

from famfeeds.delivery.guards import BounceGuard
from famfeeds.delivery.report import percent
from famfeeds.delivery.store import SubscriberStore
from famfeeds.render.message import recipient_digest
from faults.smtp_faults import Faults, addresses, serve
from reports import arf_report
from support import Project

SHOW = "for-all-mankind"
USER_UNKNOWN = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in local table"
FIRST, SECOND = "2023-11-17", "2023-11-24"


def state(project: Project) -> Path:
    folder = project.root / ".famfeeds-state"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def open_store(project: Project) -> SubscriberStore:
    return SubscriberStore.open(
        state(project) / "subscribers.sqlite3", secret=state(project) / "secret.key"
    )


def confirmed(project: Project, names: list[str]) -> None:
    with open_store(project) as store:
        for address in names:
            store.add(SHOW, address, confirmed=True)


def settings(project: Project, text: str) -> None:
    """Append lines to show.toml's [newsletter] table (the file's last table)."""
    show = project.content / "show.toml"
    show.write_text(show.read_text() + text)


def send(run: Callable[..., Result], project: Project, url: str, day: str, *extra: str) -> Result:
    return run("send", day, "--content", project.content, "--smtp", url, "--now",
               f"{day}T09:00", "--yes", "--retry-wait", "0.05", *extra)  # fmt: skip


def ledger_rows(project: Project, issue: str) -> dict[str, str]:
    with sqlite3.connect(state(project) / "ledger.sqlite3") as db:
        rows = db.execute(
            "SELECT recipient, state FROM deliveries WHERE issue = ?", (issue,)
        ).fetchall()
    return dict(rows)


def refuse(faults: Faults, dead: list[str]) -> None:
    for address in dead:
        faults.reply_at("RCPT", USER_UNKNOWN.format(address=address), address=address)


# -- the hard-bounce rate of one run ----------------------------------------------------------


def test_a_run_over_the_bounce_rate_stops_and_keeps_the_rest_for_later(
    shipped: Project, run: Callable[..., Result]
) -> None:
    everyone = addresses(40)
    confirmed(shipped, everyone)
    order = sorted(everyone)  # the store's recipients come in key order
    dead = [order[3], order[11]]  # 2 of the first 20 answered: 10%, over 5%
    faults = Faults()
    refuse(faults, dead)
    with serve(faults) as url:
        result = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["stopped"].startswith(
        "2 of the 20 addresses tried in this run were refused as unknown or disabled (10%), "
        "over bounce_rate_stop (5%)"
    )
    assert "kept for a later run (not failed, not suppressed)" in report["stopped"]
    assert report["counts"]["sent"] == 18 and report["counts"]["failed"] == 2
    assert sorted(report["untried"]) == order[20:]
    # Judged at the relay and in the ledger: the 20 not tried were not touched.
    assert sum(faults.stored.values()) == 18
    rows = ledger_rows(shipped, SECOND)
    assert set(rows) == set(order[:20])
    assert Counter(rows.values()) == Counter({"sent": 18, "failed": 2})
    # The next run sends to the rest (the two bounced are suppressed), and stops no more.
    with serve(Faults()) as url:
        again = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    assert again.exit_code == 0, again.output
    assert sorted(json.loads(again.stdout)["sent"]) == order[20:]


def test_a_run_at_the_bounce_rate_and_a_small_sample_do_not_stop(
    shipped: Project, run: Callable[..., Result]
) -> None:
    twenty = addresses(20)
    confirmed(shipped, twenty)
    faults = Faults()
    refuse(faults, [sorted(twenty)[0]])  # 1 of 20: exactly 5%, not over it
    with serve(faults) as url:
        result = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    report = json.loads(result.stdout)
    assert report["stopped"] is None and report["untried"] == []
    assert report["counts"]["sent"] == 19 and report["counts"]["failed"] == 1
    assert sum(faults.stored.values()) == 19


def test_one_bounce_in_three_is_below_the_sample(
    shipped: Project, run: Callable[..., Result]
) -> None:
    three = addresses(3)
    confirmed(shipped, three)
    faults = Faults()
    refuse(faults, [sorted(three)[1]])  # 33%, but only 3 answered
    with serve(faults) as url:
        result = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    report = json.loads(result.stdout)
    assert report["stopped"] is None and report["counts"]["sent"] == 2


def test_the_bounce_rate_is_a_setting(shipped: Project, run: Callable[..., Result]) -> None:
    settings(shipped, "bounce_rate_stop = 0.2\n")
    everyone = addresses(30)
    confirmed(shipped, everyone)
    order = sorted(everyone)
    faults = Faults()
    refuse(faults, order[:4])  # 4 of the first 20 (20%) is not over 0.2
    with serve(faults) as url:
        result = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    assert json.loads(result.stdout)["stopped"] is None
    with open_store(shipped) as store:  # a fresh list for the same issue: 5 of 20 is
        for address in addresses(30, "example.net"):
            store.add(SHOW, address, confirmed=True)
    faults = Faults()
    refuse(faults, sorted(addresses(30, "example.net"))[:5])
    with serve(faults) as url:
        stopped = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    report = json.loads(stopped.stdout)
    assert stopped.exit_code == 1
    assert report["stopped"].startswith(
        "5 of the 20 addresses tried in this run were refused as unknown or disabled (25%)"
    )
    assert "over bounce_rate_stop (20%)" in report["stopped"]


def test_a_relay_refusing_everyone_still_trips_its_own_breaker_first(
    shipped: Project, run: Callable[..., Result]
) -> None:
    """The relay-wide rule stays: refusals before any success suppress nobody."""
    everyone = addresses(30)
    confirmed(shipped, everyone)
    faults = Faults()
    refuse(faults, everyone)
    with serve(faults) as url:
        result = send(run, shipped, url, SECOND, "--connections", "1", "--json")
    report = json.loads(result.stdout)
    assert report["stopped"].startswith("the server refused the first 10 subscribers for good")
    assert report["counts"]["bounced"] == 0 and report["counts"]["failed"] == 0
    with open_store(shipped) as store:
        assert {s.status for s in store.subscribers(SHOW)} == {"confirmed"}


@pytest.mark.parametrize(
    ("answers", "bounces", "stops"),
    [(19, 19, False), (20, 1, False), (20, 2, True), (100, 5, False), (100, 6, True)],
)
def test_bounce_guard_counts(answers: int, bounces: int, stops: bool) -> None:
    guard = BounceGuard(0.05)
    verdicts = [guard.answered() for _ in range(answers)]
    verdicts += [guard.hard() for _ in range(bounces)]
    assert (verdicts[-1] is not None) is stops
    assert percent(0.003) == "0.3%" and percent(0.05) == "5%" and percent(1 / 3) == "33.33%"


# -- complaints about the last issue stop the next send ----------------------------------------


@pytest.fixture
def dovecot() -> Iterator[object]:
    from test_bounces import start_dovecot, stop_dovecot

    root = Path(tempfile.mkdtemp(prefix="famfeeds-dovecot-"))
    try:
        server = start_dovecot(root, tls=False)
        try:
            yield server
        finally:
            stop_dovecot(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def complain(
    run: Callable[..., Result],
    project: Project,
    dovecot: object,
    monkeypatch: pytest.MonkeyPatch,
    about: list[str],
    issue: str = FIRST,
) -> None:
    """Deliver one ARF report per address (with the reported message's keyed Message-ID)
    to the dovecot mailbox, then read it with famfeeds bounces over IMAP."""
    from test_bounces import PASSWORD

    key = (state(project) / "secret.key").read_bytes()
    inbox = dovecot.maildir("bounce") / "new"  # type: ignore[attr-defined]
    for n, address in enumerate(about):
        digest = recipient_digest(address, key, SHOW)
        original = f"Message-ID: <{issue}.{SHOW}.{digest}@famfeeds.example.org>\n"
        raw = arf_report(address, to="abuse@famfeeds.example.org", original=original,
                         serial=f"{issue}-{address}")  # fmt: skip
        message = email.message_from_bytes(raw, policy=policy.default)
        inbox.joinpath(f"{issue}-{n}.M1P1.example.org").write_bytes(message.as_bytes())
    monkeypatch.setenv("FAMFEEDS_IMAP_PASSWORD", PASSWORD)
    imap = dovecot.url("bounce")  # type: ignore[attr-defined]
    result = run("bounces", "--imap", imap, "--content", project.content, "--json")
    assert result.exit_code == 0, result.output
    complained = [c["address"] for c in json.loads(result.stdout)["complained"]]
    assert sorted(complained) == sorted(about)


def test_complaints_over_the_stop_rate_stop_the_next_send_before_it_connects(
    shipped: Project, run: Callable[..., Result], dovecot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = addresses(20)
    confirmed(shipped, everyone)
    with serve(Faults()) as url:
        assert send(run, shipped, url, FIRST).exit_code == 0
    complain(run, shipped, dovecot, monkeypatch, [everyone[4]])  # 1 of 20: 5% > 0.3%
    faults = Faults()
    with serve(faults) as url:
        started = faults.sessions  # aiosmtpd's own check that the server is up
        dry = run("send", SECOND, "--content", shipped.content, "--smtp", url, "--now",
                  f"{SECOND}T09:00", "--dry-run")  # fmt: skip
        stopped = send(run, shipped, url, SECOND)
        assert faults.sessions == started, stopped.output  # stopped before connecting
        assert "A real send would stop here: 1 complaint(s) about the issue 2023-11-17" in (
            dry.output
        )
        assert stopped.exit_code == 1
        assert (
            "1 complaint(s) about the issue 2023-11-17 for 20 message(s) delivered (5%) is over "
            "complaint_rate_stop (0.3%)" in stopped.output
        )
        assert "Nothing was sent" in stopped.output and "--force" in stopped.output
        assert ledger_rows(shipped, SECOND) == {}
        forced = send(run, shipped, url, SECOND, "--force")
    assert forced.exit_code == 0, forced.output
    assert "--force: sending although 1 complaint(s) about the issue 2023-11-17" in forced.output
    # The complainer is suppressed; everyone else gets the second issue once.
    assert faults.stored == Counter(a for a in everyone if a != everyone[4])


def test_complaints_between_the_rates_warn_and_at_the_stop_rate_do_not_stop(
    shipped: Project, run: Callable[..., Result], dovecot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings(shipped, "complaint_rate_stop = 0.1\ncomplaint_rate_warn = 0.04\n")
    everyone = addresses(20)
    confirmed(shipped, everyone)
    with serve(Faults()) as url:
        assert send(run, shipped, url, FIRST).exit_code == 0
    complain(run, shipped, dovecot, monkeypatch, everyone[:2])  # 2 of 20: 10%, the stop rate
    faults = Faults()
    with serve(faults) as url:
        warned = send(run, shipped, url, SECOND)
    assert warned.exit_code == 0, warned.output
    assert (
        "Warning: 2 complaint(s) about the issue 2023-11-17 for 20 message(s) delivered (10%) "
        "is over complaint_rate_warn (4%)" in warned.output
    )
    assert sum(faults.stored.values()) == 18
    # A third complaint about the first issue (now 15%) does not stop a later issue: only the
    # issue that went out last counts, and the second had none.
    complain(run, shipped, dovecot, monkeypatch, [everyone[2]])
    with serve(Faults()) as url:
        quiet = send(run, shipped, url, "2023-12-01")
    assert quiet.exit_code == 0, quiet.output
    assert "complaint" not in quiet.output


def test_complaint_below_the_warn_rate_says_nothing(
    shipped: Project, run: Callable[..., Result], dovecot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings(shipped, "complaint_rate_stop = 0.5\ncomplaint_rate_warn = 0.05\n")
    everyone = addresses(20)
    confirmed(shipped, everyone)
    with serve(Faults()) as url:
        assert send(run, shipped, url, FIRST).exit_code == 0
    complain(run, shipped, dovecot, monkeypatch, [everyone[0]])  # 5%: the warn rate, not over
    with serve(Faults()) as url:
        result = send(run, shipped, url, SECOND)
    assert result.exit_code == 0 and "complaint" not in result.output.lower(), result.output


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("complaint_rate_stop = 1.5", "complaint_rate_stop"),
        ("complaint_rate_warn = -0.1", "complaint_rate_warn"),
        ('bounce_rate_stop = "5%"', "bounce_rate_stop"),
    ],
)
def test_rates_must_be_between_0_and_1(
    shipped: Project, run: Callable[..., Result], line: str, expected: str
) -> None:
    settings(shipped, line + "\n")
    result = run("check", "--content", shipped.content)
    assert result.exit_code == 1
    assert "show.toml" in result.output and expected in result.output
    assert "Traceback" not in result.output
