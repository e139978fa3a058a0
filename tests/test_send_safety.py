"""Send safety: only what is out, dated when sent, never to addresses that bounce or complain.

Against a real SMTP server on loopback (aiosmtpd, counting what it stored), the subscriber
store, and the bounce mailbox read back by ``famfeeds bounces``.
"""

from __future__ import annotations

import email
import json
import mailbox
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from famfeeds.build.load import plan
from famfeeds.delivery.store import SubscriberStore
from famfeeds.plan.issues import NotOutYet, find_issue
from famfeeds.render.message import (
    MessageTemplate,
    header_text,
    message_id,
    recipient_digest,
)
from famfeeds.render.personal import one_line
from faults.smtp_faults import (
    Faults,
    addresses,
    clean_env,
    ledger_states,
    people,
    send_args,
    serve,
    write_csv,
)
from reports import arf_report, dsn_report
from support import Project

NEW_YORK = ZoneInfo("America/New_York")
KEY = b"k" * 32
"""A project secret for messages rendered outside a send (a send reads the project's)."""


def secret_of(project: Project) -> bytes:
    """The project's secret, which keys its Message-IDs and VERP tags."""
    return (project.root / ".famfeeds-state" / "secret.key").read_bytes()


NEWSLETTER = """
[newsletter]
sender_name = "Test Show weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?token={token}"
"""


def timed_show(project: Project, newsletter: str = NEWSLETTER, episodes: int = 3) -> None:
    """A show released at 21:00 in New York on Wednesdays from 2026-12-09: issues on
    2026-12-02 (the preview), 12-09, 12-16 and 12-23."""
    project.show(timezone="America/New_York")
    show = project.content / "show.toml"
    show.write_text(show.read_text() + newsletter)
    project.season(premiere="2026-12-09", extra="release_time = 21:00:00", episodes=episodes)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def cli_send(
    run: Callable[..., Result], project: Project, url: str, issue: str, now: str, *extra: str
) -> Result:
    args = ["send", issue, "--content", project.content, "--smtp", url, "--now", now]
    return run(*args, "--retry-wait", "0.05", *extra)


# -- one rule for "which issue is this" -------------------------------------------------------


def test_latest_is_the_newest_issue_whose_episode_is_out(project: Project) -> None:
    timed_show(project)
    issues = plan(project.content).issues
    assert [i.slug for i in issues] == ["2026-12-02", "2026-12-09", "2026-12-16", "2026-12-23"]
    assert find_issue(issues, "latest", at("2026-12-09T09:00")).slug == "2026-12-02"
    assert find_issue(issues, "latest", at("2026-12-09T20:59")).slug == "2026-12-02"
    assert find_issue(issues, "latest", at("2026-12-09T21:00")).slug == "2026-12-09"
    # A date means the end of that day, as a build of that date sees it (newsletter --as-of).
    assert find_issue(issues, "latest", at("2026-12-09T09:00").date()).slug == "2026-12-09"
    with pytest.raises(NotOutYet, match="the first, 2026-12-02, comes out on 2026-12-02 00:00"):
        find_issue(issues, "latest", at("2026-12-01T23:59"))


def test_a_future_issue_is_refused_with_its_moment_and_force_says_so(
    project: Project, run: Callable[..., Result]
) -> None:
    timed_show(project)
    write_csv(project.root, people(2))
    csv = project.root / "subscribers.csv"
    early = run(*send_args(project.content, csv, "smtp://127.0.0.1:1", "--dry-run"),
                "--now", "2026-11-27T09:00")  # fmt: skip
    assert early.exit_code == 1
    assert (
        "the issue of 2026-12-23 is not out yet" not in early.output
    )  # send_args asks for 2023-11-24, which this show does not have
    future = cli_send(run, project, "smtp://127.0.0.1:1", "2026-12-23", "2026-11-27T09:00",
                      "--subscribers", csv, "--dry-run")  # fmt: skip
    assert future.exit_code == 1
    assert (
        "the issue of 2026-12-23 is not out yet as of 2026-11-27 09:00 EST (America/New_York): "
        "it comes out on 2026-12-23 21:00 EST (America/New_York), in 26 days 12 hours; "
        "--force sends it anyway"
    ) in future.output
    forced = cli_send(run, project, "smtp://127.0.0.1:1", "2026-12-23", "2026-11-27T09:00",
                      "--subscribers", csv, "--dry-run", "--force")  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert "--force: sending although the issue of 2026-12-23 is not out yet" in forced.output
    assert "would send 2 message(s)" in forced.output
    newsletter = run("newsletter", "--content", project.content, "--date", "2026-12-23",
                     "--as-of", "2026-11-27")  # fmt: skip
    assert newsletter.exit_code == 1 and "not out yet as of 2026-11-27" in newsletter.output


def test_an_old_issue_is_refused_and_latest_then_has_nothing_new(
    project: Project, run: Callable[..., Result]
) -> None:
    timed_show(project)
    csv = write_csv(project.root, people(2))
    faults = Faults()
    with serve(faults) as url:
        old = cli_send(run, project, url, "2026-12-23", "2027-01-01T09:00",
                       "--subscribers", csv, "--yes")  # fmt: skip
        assert old.exit_code == 1
        assert "the issue of 2026-12-23 came out 8 days 12 hours ago, on 2026-12-23 21:00 EST" in (
            old.output
        )
        latest = cli_send(run, project, url, "latest", "2027-01-01T09:00",
                          "--subscribers", csv, "--yes")  # fmt: skip
        assert latest.exit_code == 0, latest.output
        assert latest.output.startswith("Nothing to send: the issue of 2026-12-23 came out")
        assert "no later issue is scheduled; --force sends it anyway" in latest.output
        assert faults.stored == Counter()
        wider = cli_send(run, project, url, "latest", "2027-01-01T09:00",
                         "--subscribers", csv, "--yes", "--max-age", "9d")  # fmt: skip
        assert wider.exit_code == 0 and "sent 2" in wider.output
    assert faults.stored == Counter(addresses(2))


def test_source_date_epoch_does_not_move_the_clock_of_a_send(
    shipped: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_csv(shipped.root, people(1))
    env = clean_env() | {"SOURCE_DATE_EPOCH": "1700830800"}  # 2023-11-24T13:00:00Z
    args = ["send", "2023-11-24", "--content", str(shipped.content), "--subscribers", str(csv)]
    result = subprocess.run(
        [sys.executable, "-m", "famfeeds", *args, "--dry-run", "--smtp", "smtp://127.0.0.1:1"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1 and "came out" in result.stderr  # judged by the real clock


# -- Date when sent, Message-ID stable --------------------------------------------------------


def test_each_copy_is_dated_when_sent_and_the_built_eml_keeps_its_date(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(2))
    with serve(faults) as url:
        result = run(*send_args(shipped.content, csv, url, "--yes"))
    assert result.exit_code == 0, result.output
    message = faults.parsed("fan1@example.com")
    sent = parsedate_to_datetime(message["Date"])
    assert sent == datetime(2023, 11, 24, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert message["Date"].endswith("-0800")  # the show's zone, a real offset
    digest = recipient_digest("fan1@example.com", secret_of(shipped), "for-all-mankind")
    assert message["Message-ID"] == f"<2023-11-24.for-all-mankind.{digest}@famfeeds.example.org>"
    build = run("build", "--content", shipped.content, "--output", shipped.output,
                "--as-of", "2023-11-24")  # fmt: skip
    assert build.exit_code == 0, build.output
    built = email.message_from_bytes(
        (shipped.output / "newsletter" / "2023-11-24.eml").read_bytes(), policy=policy.default
    )
    assert built["Date"] == "Fri, 24 Nov 2023 00:00:00 -0800"


def test_without_now_the_date_is_the_real_clock(shipped: Project) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(1))
    before = datetime.now(ZoneInfo("UTC")).replace(microsecond=0)
    with serve(faults) as url:
        args = ["send", "2023-11-24", "--content", str(shipped.content), "--subscribers",
                str(csv), "--smtp", url, "--yes", "--force"]  # fmt: skip
        result = subprocess.run([sys.executable, "-m", "famfeeds", *args], capture_output=True,
                                text=True, env=clean_env(), check=False)  # fmt: skip
    after = datetime.now(ZoneInfo("UTC"))
    assert result.returncode == 0, result.stderr
    assert "--force: sending although the issue of 2023-11-24 came out" in result.stderr
    assert before <= parsedate_to_datetime(faults.parsed("fan0@example.com")["Date"]) <= after


# -- exit codes and JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script,code",
    [
        ({}, 0),
        ({"RCPT": "550 5.1.1 no such user"}, 1),
        ({"RCPT": "451 4.3.0 try later"}, 1),
        ({"drop": ""}, 3),
        ({"drop": "", "RCPT": "550 5.1.1 no such user"}, 3),
    ],
    ids=["all-sent", "failed", "deferred", "uncertain", "uncertain-wins"],
)
def test_exit_codes_and_json(
    shipped: Project, run: Callable[..., Result], script: dict[str, str], code: int
) -> None:
    faults = Faults()
    if "RCPT" in script:
        faults.reply_at("RCPT", script["RCPT"], address="fan1@example.com", times=5)
    if "drop" in script:
        faults.after_dot = "drop"
        faults.after_dot_for = {"fan2@example.com"}
    csv = write_csv(shipped.root, people(3))
    with serve(faults) as url:
        result = run(*send_args(shipped.content, csv, url, "--yes", "--json", "--attempts", "2"))
    assert result.exit_code == code, result.output
    report = json.loads(result.stdout)
    assert report["exit_code"] == code and report["issue"] == "2023-11-24"
    counts = report["counts"]
    assert counts["sent"] + counts["failed"] + counts["deferred"] + counts["uncertain"] == 3
    assert sorted(report["sent"]) == sorted(
        a for a in addresses(3) if not (a == "fan1@example.com" and "RCPT" in script)
        and not (a == "fan2@example.com" and "drop" in script)
    )  # fmt: skip


# -- suppression across issues --------------------------------------------------------------


def open_store(project: Project) -> SubscriberStore:
    state = project.root / ".famfeeds-state"
    return SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")


def test_a_permanent_bounce_stops_every_later_issue_even_with_retry_failed(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.reply_at("RCPT", "550 5.1.1 <fan1@example.com>: user unknown", "fan1@example.com")
    csv = write_csv(shipped.root, people(3))
    with serve(faults) as url:
        first = run(*send_args(shipped.content, csv, url, "--yes"))
        assert first.exit_code == 1 and "(marked bounced: later issues skip it)" in first.output
        next_args = ["send", "2023-12-01", "--content", shipped.content, "--subscribers", csv,
                     "--smtp", url, "--now", "2023-12-01T09:00", "--yes"]  # fmt: skip
        later = run(*next_args)
        again = run(*next_args, "--retry-failed")
    assert later.exit_code == 0, later.output
    assert "sent 2" in later.output and "1 suppressed (1 bounced)" in later.output
    assert again.exit_code == 0 and "sent 0" in again.output
    assert faults.stored == Counter({"fan0@example.com": 2, "fan2@example.com": 2})
    with open_store(shipped) as store:
        assert store.status("for-all-mankind", "fan1@example.com") == "bounced"
        (event,) = [e for e in store.history("for-all-mankind", "fan1@example.com")]
        assert event.source == "smtp-5xx" and "5.1.1" in event.detail


def test_the_store_decides_who_gets_it(shipped: Project, run: Callable[..., Result]) -> None:
    show = "for-all-mankind"
    shipped.root.joinpath(".famfeeds-state").mkdir(mode=0o700)
    with open_store(shipped) as store:
        for address in addresses(4):
            store.add(show, address, "Fan", confirmed=True)
        store.add(show, "pending@example.com")
        store.unsubscribe(show, "fan3@example.com")
        tokens = {r.email: r.token for r in store.recipients(show)}
    faults = Faults()
    with serve(faults) as url:
        result = run(*send_args(shipped.content, None, url, "--yes"))
    assert result.exit_code == 0, result.output
    assert "sent 3" in result.output
    assert faults.stored == Counter(addresses(3))
    message = faults.parsed("fan1@example.com")
    assert f"token={tokens['fan1@example.com']}>" in message["List-Unsubscribe"]


def test_a_csv_is_checked_against_the_store_and_uses_its_tokens(
    shipped: Project, run: Callable[..., Result]
) -> None:
    show_toml = shipped.content / "show.toml"
    show_toml.write_text(
        show_toml.read_text().replace(
            'unsubscribe_url = "https://famfeeds.example.org/unsubscribe?token={token}"',
            'service_url = "https://famfeeds.example.org/subscriptions"',
        )
    )
    show = "for-all-mankind"
    shipped.root.joinpath(".famfeeds-state").mkdir(mode=0o700)
    with open_store(shipped) as store:
        store.add(show, "fan0@example.com", confirmed=True)
        store.unsubscribe(show, "fan1@example.com")
        store.suppress(show, "fan2@example.com", "bounced", "bounce", "5.1.1")
        store.add(show, "fan3@example.com")
        store.forget(show, "fan3@example.com")
        known = {r.email: r.token for r in store.recipients(show)}
    csv = write_csv(shipped.root, people(6))
    faults = Faults()
    with serve(faults) as url:
        dry = run(*send_args(shipped.content, csv, url, "--dry-run"))
        real = run(*send_args(shipped.content, csv, url, "--yes", "--json"))
    assert dry.exit_code == 0, dry.output
    assert "would send 3 message(s)" in dry.output
    assert "3 suppressed (1 bounced, 1 forgotten, 1 unsubscribed)" in dry.output
    assert "2 row(s) have no token yet, e.g. fan4@example.com" in dry.output
    assert "the token column is not used" in dry.output
    report = json.loads(real.stdout)
    assert report["suppressed"] == {
        "bounced": ["fan2@example.com"],
        "forgotten": ["fan3@example.com"],
        "unsubscribed": ["fan1@example.com"],
    }
    assert faults.stored == Counter({"fan0@example.com": 1, "fan4@example.com": 1,
                                     "fan5@example.com": 1})  # fmt: skip
    unsubscribe = faults.parsed("fan0@example.com")["List-Unsubscribe"]
    assert f"token={known['fan0@example.com']}>" in unsubscribe
    with open_store(shipped) as store:
        assert store.status(show, "fan4@example.com") == "pending"  # a row for its token
        assert "fan4@example.com" not in {r.email for r in store.recipients(show)}
        token = next(r for r in store.subscribers(show) if r.email == "fan4@example.com")
    assert token.status_source == "list"


def test_an_unsubscribe_during_a_send_is_honoured(shipped: Project) -> None:
    show = "for-all-mankind"
    shipped.root.joinpath(".famfeeds-state").mkdir(mode=0o700)
    with open_store(shipped) as store:
        for address in addresses(12):
            store.add(show, address, confirmed=True)
    faults = Faults()
    faults.slow_seconds = 0.15
    with serve(faults) as url:
        args = [
            sys.executable,
            "-m",
            "famfeeds",
            *send_args(shipped.content, None, url, "--yes", "--json", "--connections", "1"),
        ]
        process = subprocess.Popen(args, env=clean_env(), stdout=subprocess.PIPE, text=True)
        assert faults.in_data.wait(60)
        with open_store(shipped) as store:  # the last in key order, while the send runs
            store.unsubscribe_token(show, store.recipients(show)[-1].token, "one-click")
        output, _ = process.communicate(timeout=60)
    report = json.loads(output)
    assert process.returncode == 0
    assert report["skipped"] == [{"address": "fan9@example.com", "reason": "unsubscribed"}]
    assert faults.stored == Counter(a for a in addresses(12) if a != "fan9@example.com")


# -- VERP and the bounce mailbox --------------------------------------------------------------


def dsn(to: str, recipient: str, status: str, original_id: str = "") -> EmailMessage:
    raw = dsn_report(
        [recipient],
        to=to,
        status=status,
        action="failed" if status.startswith("5") else "delayed",
        original=f"Message-ID: {original_id}\n" if original_id else "",
        serial=str(abs(hash((to, recipient, status, original_id)))),
    )
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def complaint(recipient: str, original_id: str) -> EmailMessage:
    """An ARF report with the reported message's headers (its keyed Message-ID)."""
    raw = arf_report(
        recipient,
        to="abuse@famfeeds.example.org",
        original=f"Message-ID: {original_id}\n",
        serial=recipient,
    )
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def write_mbox(path: Path, messages: list[EmailMessage], junk: bool = False) -> Path:
    box = mailbox.mbox(path)
    for message in messages:
        box.add(message)
    box.flush()
    box.close()
    if junk:
        with path.open("ab") as out:
            out.write(b"From junk Thu Jan  1 00:00:00 2024\nthis line is not mail at all\n\n")
    return path


def send_issue(run: Callable[..., Result], project: Project, url: str, day: str) -> Result:
    csv = project.root / "subscribers.csv"
    return run("send", day, "--content", project.content, "--subscribers", csv, "--smtp", url,
               "--now", f"{day}T09:00", "--yes")  # fmt: skip


def test_verp_envelope_and_bounces_read_back_by_mail(
    shipped: Project, run: Callable[..., Result]
) -> None:
    show_toml = shipped.content / "show.toml"
    show_toml.write_text(show_toml.read_text() + 'bounce_address = "bounces@famfeeds.example.org"\n'
                         "verp = true\nsoft_bounce_limit = 2\n"
                         # one complaint in five would stop the next send (test_guards.py)
                         "complaint_rate_stop = 1\n")  # fmt: skip
    write_csv(shipped.root, [*people(4), "gone@example.com,Gone,tg"])
    faults = Faults()
    with serve(faults) as url:
        for day in ("2023-11-17", "2023-11-24"):
            assert send_issue(run, shipped, url, day).exit_code == 0
    senders = {rcpts[0]: sender for sender, rcpts, _ in faults.messages}
    key = secret_of(shipped)
    digest = recipient_digest("fan0@example.com", key, "for-all-mankind")
    assert senders["fan0@example.com"] == f"bounces+{digest}@famfeeds.example.org"

    def mid(day: str, address: str) -> str:
        tag = recipient_digest(address, key, "for-all-mankind")
        return f"<{day}.for-all-mankind.{tag}@famfeeds.example.org>"

    messages = [
        # The remote server rewrote the address: only the VERP tag says it is fan0.
        dsn(f"bounces+{digest}@famfeeds.example.org", "f.0@mx.example.com", "5.1.1"),
        complaint("fan1@example.com", mid("2023-11-24", "fan1@example.com")),
        dsn("bounces@famfeeds.example.org", "fan2@example.com", "4.2.2",
            mid("2023-11-17", "fan2@example.com")),
        dsn("bounces@famfeeds.example.org", "nobody@example.com", "5.1.1"),
        dsn("bounces@famfeeds.example.org", "fan3@example.com", "4.4.1",
            mid("2023-11-24", "fan3@example.com")),
    ]  # fmt: skip
    mbox = write_mbox(shipped.root / "bounces.mbox", messages, junk=True)
    dry = run("bounces", "--mbox", mbox, "--content", shipped.content, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Nothing was changed (--dry-run)" in dry.output
    with open_store(shipped) as store:
        assert store.status("for-all-mankind", "fan0@example.com") is None  # a CSV address
    result = run("bounces", "--mbox", mbox, "--content", shipped.content, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [b["address"] for b in report["bounced"]] == ["fan0@example.com"]
    assert [c["address"] for c in report["complained"]] == ["fan1@example.com"]
    assert sorted(s["address"] for s in report["soft"]) == ["fan2@example.com", "fan3@example.com"]
    assert report["unknown"] == [
        {"address": "nobody@example.com", "reason": "never mailed for this show; ignored"}
    ]
    assert report["counts"]["skipped_entries"] == 1 and report["counts"]["messages"] == 5
    again = run("bounces", "--mbox", mbox, "--content", shipped.content)
    assert "Read 5 message(s) (5 read before" in again.output  # nothing counted twice
    # fan2's second soft bounce in a row (the newer issue) reaches the limit of 2.
    second = write_mbox(shipped.root / "later.mbox", [dsn(
        "bounces@famfeeds.example.org", "fan2@example.com", "5.2.2",
        mid("2023-11-24", "fan2@example.com"))])  # fmt: skip
    later = run("bounces", "--mbox", second, "--content", shipped.content)
    assert "bounced after soft bounces: fan2@example.com: soft bounces for 2 issues in a row" in (
        later.output
    )
    with open_store(shipped) as store:
        statuses = {a: store.status("for-all-mankind", a) for a in addresses(4)}
    assert statuses == {
        "fan0@example.com": "bounced",
        "fan1@example.com": "complained",
        "fan2@example.com": "bounced",
        "fan3@example.com": None,  # one soft bounce: not yet
    }
    faults = Faults()
    with serve(faults) as url:
        next_issue = send_issue(run, shipped, url, "2023-12-01")
    assert "3 suppressed (2 bounced, 1 complained)" in next_issue.output
    assert faults.stored == Counter({"fan3@example.com": 1, "gone@example.com": 1})


def test_a_maildir_and_bad_mailboxes(
    shipped: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAMFEEDS_IMAP_PASSWORD", "secret-imap-pw")
    write_csv(shipped.root, people(2))
    with serve(Faults()) as url:
        send_issue(run, shipped, url, "2023-11-24")
    folder = mailbox.Maildir(shipped.root / "Maildir", create=True)
    digest = recipient_digest("fan1@example.com", secret_of(shipped), "for-all-mankind")
    returned = f"<2023-11-24.for-all-mankind.{digest}@famfeeds.example.org>"
    folder.add(dsn("bounces@famfeeds.example.org", "fan1@example.com", "5.1.1", returned))
    folder.close()
    result = run("bounces", "--maildir", shipped.root / "Maildir", "--content", shipped.content)
    assert result.exit_code == 0 and "bounced: fan1@example.com: 5.1.1" in result.output
    missing = run("bounces", "--mbox", shipped.root / "nope.mbox", "--content", shipped.content)
    assert missing.exit_code == 1 and "does not exist; nothing was changed" in missing.output
    both = run("bounces", "--mbox", "a", "--maildir", "b", "--content", shipped.content)
    assert both.exit_code == 2 and "exactly one of" in both.output
    for url, problem in (
        ("imaps://u:secret@mail.example.org/INBOX", "leave the password out"),
        ("imap://bounces@127.0.0.1:1/INBOX", "connection refused"),
    ):
        bad = run("bounces", "--imap", url, "--content", shipped.content)
        assert bad.exit_code == 1 and problem in bad.output, bad.output
        assert "secret" not in bad.output and "Traceback" not in bad.output
    with open_store(shipped) as store:
        assert store.status("for-all-mankind", "fan1@example.com") == "bounced"
        assert store.status("for-all-mankind", "fan0@example.com") is None


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


def test_bounces_from_an_imap_mailbox(
    shipped: Project, run: Callable[..., Result], dovecot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_bounces import PASSWORD

    write_csv(shipped.root, people(2))
    with serve(Faults()) as url:
        send_issue(run, shipped, url, "2023-11-24")
    inbox = dovecot.maildir("bounce") / "new"  # type: ignore[attr-defined]
    digest = recipient_digest("fan0@example.com", secret_of(shipped), "for-all-mankind")
    returned = f"<2023-11-24.for-all-mankind.{digest}@famfeeds.example.org>"
    inbox.joinpath("1.M1P1.example.org").write_bytes(
        dsn("bounces@famfeeds.example.org", "fan0@example.com", "5.1.1", returned).as_bytes()
    )
    monkeypatch.setenv("FAMFEEDS_IMAP_PASSWORD", PASSWORD)
    imap = dovecot.url("bounce")  # type: ignore[attr-defined]
    result = run("bounces", "--imap", imap, "--content", shipped.content)
    assert result.exit_code == 0, result.output
    assert "bounced: fan0@example.com" in result.output and PASSWORD not in result.output
    with open_store(shipped) as store:
        assert store.status("for-all-mankind", "fan0@example.com") == "bounced"


# -- cron: send latest --yes every hour -----------------------------------------------------------


def test_an_hourly_cron_sends_each_issue_once_and_only_after_its_episode(
    project: Project, run: Callable[..., Result]
) -> None:
    timed_show(project)
    csv = write_csv(project.root, people(2))
    start = at("2026-12-01T09:00")
    moments = [start + timedelta(hours=12 * i) for i in range(64)]  # to 2027-01-02
    moments += [
        at(f"2026-12-{d}T{t}") for d in ("09", "16", "23") for t in ("20:59", "21:00", "21:30")
    ]
    faults = Faults()
    sent_at: dict[str, list[datetime]] = {}
    with serve(faults) as url:
        for moment in sorted(moments):
            before = len(faults.messages)
            result = cli_send(run, project, url, "latest", moment.isoformat(),
                              "--subscribers", csv, "--yes", "--quiet")  # fmt: skip
            assert result.exit_code == 0, (moment, result.output)
            new = faults.messages[before:]
            if not new:
                assert result.output == "", (moment, result.output)
            for _, _, content in new:
                message = email.message_from_bytes(content, policy=policy.default)
                assert parsedate_to_datetime(message["Date"]) == moment
                issue = message["Message-ID"][1:11]
                sent_at.setdefault(issue, []).append(moment)
    assert sent_at == {
        "2026-12-02": [at("2026-12-02T09:00")] * 2,
        "2026-12-09": [at("2026-12-09T21:00")] * 2,
        "2026-12-16": [at("2026-12-16T21:00")] * 2,
        "2026-12-23": [at("2026-12-23T21:00")] * 2,
    }
    assert faults.stored == Counter({a: 4 for a in addresses(2)})
    assert set(ledger_states(project.root).values()) <= {"sent"}


# -- markers that cannot collide (hypothesis) -------------------------------------------------

MARKERISH = st.sampled_from(["famfeeds", "n0", "t0", " ", "=?utf-8?q?", "?=", "0123456789abcdef"])
TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
    max_size=30,
)
HOSTILE = st.lists(st.one_of(MARKERISH, TEXT), min_size=1, max_size=6).map("".join)
# What content/ accepts in a title: no control, format or unassigned characters.
TITLE_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Cn", "Co")), max_size=30
)
TITLE = st.lists(st.one_of(MARKERISH, TITLE_TEXT), min_size=1, max_size=6).map("".join)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=TITLE.map(str.strip).filter(bool), name=HOSTILE, token=HOSTILE)
def test_personalising_never_touches_content_and_every_copy_parses_back(
    tmp_path_factory: pytest.TempPathFactory, title: str, name: str, token: str
) -> None:
    from famfeeds.build.pipeline import render

    project = Project(tmp_path_factory.mktemp("markers"))
    timed_show(project, episodes=1)
    project.season(premiere="2026-12-09", extra="release_time = 21:00:00",
                   episodes={1: {"title": title, "synopsis": f"About {title}."}})  # fmt: skip
    build = render(project.content, as_of=at("2026-12-10T00:00").date())
    letter = next(x for x in build.letters if x.item.issue.slug == "2026-12-09")
    template = MessageTemplate.of(letter.item, KEY)
    raw = template.render("fan@example.com", name, token, date=at("2026-12-10T08:00"))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=policy.default)
    assert not message.defects
    assert message["Subject"] == letter.item.subject == header_text(letter.item.subject)
    assert " ".join(title.split()) in message["Subject"]  # as the subject's renderer says
    assert message["Message-ID"] == message_id(letter.item, "fan@example.com", KEY)
    unsubscribe = message["List-Unsubscribe"].split(",")[0]
    assert unsubscribe == f"<https://shows.example.net/unsubscribe?token={quote(token, safe='')}>"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    greeting = f"Hi {one_line(name)}," if one_line(name) else "Hi,"
    assert greeting in plain
    assert one_line(title) in " ".join(plain.split())  # the title exactly as written
    for marker in (letter.item.markers.name, letter.item.markers.token):
        assert marker not in plain and marker not in html and marker not in raw.decode("latin-1")
    built = email.message_from_bytes(
        build.files["newsletter/2026-12-09.eml"], policy=policy.default
    )
    assert built["Subject"] == message["Subject"]


@pytest.mark.parametrize(
    "title",
    [
        "=?utf-8?q?Hello?=",
        "famfeedsfamfeedsfamfeedsfamfeedsfamfeeds",
        "no\u00a0break and  two spaces",
        "Déjà vu =?iso-8859-1?b?SGk=?= again",
        "=?",
        "x" * 1500,
        "Ünïcödé " * 120,
    ],
)
def test_any_title_is_the_subject_a_reader_sees(project: Project, title: str) -> None:
    from famfeeds.build.pipeline import render

    timed_show(project, NEWSLETTER + "\n[limits]\ntitle_characters = 2000\n", episodes=1)
    project.season(premiere="2026-12-09", extra="release_time = 21:00:00",
                   episodes={1: {"title": title}})  # fmt: skip
    build = render(project.content, as_of=at("2026-12-10T00:00").date())
    for raw in (
        build.files["newsletter/2026-12-09.eml"],
        MessageTemplate.of(build.letters[-1].item, KEY).render("a@example.com", "A", "t"),
    ):
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        message = email.message_from_bytes(raw, policy=policy.default)
        expected = f"Test Show S1 E1: {' '.join(title.split())} (season finale)"
        assert message["Subject"] == expected


def test_a_proof_may_go_out_before_the_episode_but_subscribers_wait(
    project: Project, run: Callable[..., Result]
) -> None:
    timed_show(project)
    faults = Faults()
    with serve(faults) as url:
        proof = cli_send(run, project, url, "2026-12-23", "2026-12-20T09:00",
                         "--test-to", "editor@example.org")  # fmt: skip
        nobody = cli_send(run, project, url, "2026-12-23", "2026-12-20T09:00", "--yes")
    assert proof.exit_code == 0, proof.output
    assert "Note: the issue of 2026-12-23 is not out yet" in proof.output
    assert faults.stored == Counter({"editor@example.org": 1})
    assert nobody.exit_code == 1 and "not out yet" in nobody.output


def test_without_a_list_or_a_store_there_is_nobody_to_send_to(
    shipped: Project, run: Callable[..., Result]
) -> None:
    result = run(*send_args(shipped.content, None, "smtp://127.0.0.1:1", "--yes"))
    assert result.exit_code == 1
    assert ".famfeeds-state/subscribers.sqlite3 does not exist. Add subscribers" in result.output
