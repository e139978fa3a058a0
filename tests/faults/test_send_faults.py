"""Sending under faults: every failure mode of a real SMTP server, real processes, kills.

Judged at the server (what it stored, per recipient) and in the ledger, never from the
client's own account. The long kill loops live in bench/faults_send.py.
"""

from __future__ import annotations

import email
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import Result

from famfeeds.delivery.ledger import Ledger, LedgerError, send_lock
from famfeeds.delivery.smtp import Connection, DeliveryError, SmtpTarget
from faults.smtp_faults import (
    ISSUE,
    Faults,
    addresses,
    clean_env,
    famfeeds,
    ledger_states,
    people,
    send_args,
    serve,
    write_csv,
)
from support import Project

PASSWORD = "s3cret-Pa55word"


def send(run: Callable[..., Result], project: Project, csv: Path | None, url: str, *extra: str):
    return run(*send_args(project.content, csv, url, *extra))


def outcome(result: Result) -> dict:
    return json.loads(result.stdout)


def every(n: int, count: int = 1) -> Counter[str]:
    return Counter({a: count for a in addresses(n)})


# -- after the final "." -------------------------------------------------------------------------


def test_dropped_after_the_final_dot_is_uncertain_and_never_resent(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.after_dot = "drop"
    csv = write_csv(shipped.root, people(3))
    with serve(faults) as url:
        first = send(run, shipped, csv, url, "--yes", "--json")
        assert first.exit_code == 3, first.output
        report = outcome(first)
        assert sorted(u["address"] for u in report["uncertain"]) == addresses(3)
        assert all("may have it" in u["reason"] for u in report["uncertain"])
        assert report["counts"]["sent"] == 0 and report["counts"]["deferred"] == 0
        assert faults.stored == every(3)
        assert set(ledger_states(shipped.root).values()) == {"committing"}
        again = send(run, shipped, csv, url, "--yes")
        assert again.exit_code == 3 and "3 uncertain" in again.output
        assert "--resend-uncertain sends it again" in again.output
        assert faults.stored == every(3)
        faults.after_dot = "answer"
        resend = send(run, shipped, csv, url, "--yes", "--resend-uncertain")
        assert resend.exit_code == 0 and "sent 3" in resend.output
        assert faults.stored == every(3, 2)  # asked for: the only way to a second copy
    copies = [
        email.message_from_bytes(m, policy=policy.default)
        for _, r, m in faults.messages
        if r == ["fan1@example.com"]
    ]
    assert len(copies) == 2 and copies[0]["Message-ID"] == copies[1]["Message-ID"]


def test_an_answer_later_than_the_data_timeout_is_uncertain(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.after_dot = "late"
    faults.late_seconds = 1.0
    with serve(faults) as url:
        csv = write_csv(shipped.root, people(2))
        hurried = send(run, shipped, csv, url, "--yes", "--data-timeout", "0.3", "--json")
        assert hurried.exit_code == 3
        assert sorted(u["address"] for u in outcome(hurried)["uncertain"]) == addresses(2)
        assert faults.stored == every(2)
        faults.late_seconds = 0.3
        patient = send(run, shipped, write_csv(shipped.root, people(4)), url, "--yes")
        assert patient.exit_code == 3, patient.output  # the first two stay uncertain
        assert "sent 2" in patient.output and "2 uncertain" in patient.output
        assert faults.stored == every(4)


def test_an_unreadable_answer_after_the_dot_is_uncertain(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.after_dot = "garbage"
    faults.after_dot_for = {"fan1@example.com"}
    with serve(faults) as url:
        result = send(run, shipped, write_csv(shipped.root, people(3)), url, "--yes", "--json")
    assert result.exit_code == 3
    report = outcome(result)
    assert [u["address"] for u in report["uncertain"]] == ["fan1@example.com"]
    assert "unreadable answer" in report["uncertain"][0]["reason"]
    assert sorted(report["sent"]) == ["fan0@example.com", "fan2@example.com"]
    assert faults.stored == every(3)


# -- sessions that cannot be opened ------------------------------------------------------------


def test_a_refusal_at_the_greeting_is_transient_for_that_connection(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.max_sessions = 2
    with serve(faults) as url:
        csv = write_csv(shipped.root, people(30))
        result = send(run, shipped, csv, url, "--yes", "--connections", "4", "--json")
    assert result.exit_code == 0, result.output
    assert faults.refused_sessions >= 1  # the fault really happened
    assert faults.stored == every(30)
    assert outcome(result)["counts"]["sent"] == 30


def test_no_session_at_all_leaves_everyone_untouched_for_the_next_run(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.refuse_first = 1000
    csv = write_csv(shipped.root, people(5))
    with serve(faults) as url:
        result = send(run, shipped, csv, url, "--yes", "--connections", "2")
        assert result.exit_code == 1
        assert "Stopped early: no session could be opened after 3 tries" in result.output
        assert "421 4.7.0 too many connections" in result.output
        assert "5 subscriber(s) were not tried" in result.output
        assert ledger_states(shipped.root) == {}
        faults.refuse_first = 0
        later = send(run, shipped, csv, url, "--yes")
    assert later.exit_code == 0 and "sent 5" in later.output
    assert faults.stored == every(5)


def test_nothing_listening_is_a_clear_message(shipped: Project, run: Callable[..., Result]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    csv = write_csv(shipped.root, people(2))
    result = send(run, shipped, csv, f"smtp://127.0.0.1:{port}", "--yes", "--attempts", "2")
    assert result.exit_code == 1
    assert "connection refused (is an SMTP server listening on port" in result.output
    assert "Traceback" not in result.output


# -- 421 / 452 / 550 / 554 at each step ------------------------------------------------------------

CODES = {
    "421": "421 4.3.2 closing connection, busy",
    "452": "452 4.5.3 too many recipients",
    "550": "550 5.1.1 <fan1@example.com>: user unknown",
    "554": "554 5.7.1 <fan1@example.com>: Recipient address rejected: Access denied",
}


@pytest.mark.parametrize("step", ["MAIL", "RCPT", "DATA", "DOT"])
@pytest.mark.parametrize("code", sorted(CODES))
def test_replies_at_each_step(
    shipped: Project, run: Callable[..., Result], step: str, code: str
) -> None:
    faults = Faults()
    faults.reply_at(step, CODES[code], address="fan1@example.com" if step != "MAIL" else None)
    # MAIL's reply comes before the server knows the recipient: fan1 goes first.
    rows = people(3)
    csv = write_csv(shipped.root, [rows[1], rows[0], rows[2]])
    with serve(faults) as url:
        result = send(run, shipped, csv, url, "--yes", "--json", "--connections", "1")
    report = outcome(result)
    if code.startswith("4"):
        assert result.exit_code == 0, result.output
        assert faults.stored == every(3)  # retried, and once only
    else:
        assert result.exit_code == 1
        assert [f["address"] for f in report["failed"]] == ["fan1@example.com"]
        assert CODES[code].split(" ", 1)[1] in report["failed"][0]["reason"]
        assert faults.stored == Counter({"fan0@example.com": 1, "fan2@example.com": 1})
        blames = step in ("RCPT", "DOT")  # a refusal at MAIL or DATA is not about the address
        assert [b["address"] for b in report["bounced"]] == (["fan1@example.com"] * blames)


def test_relay_access_denied_stops_the_run_and_bounces_nobody(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    faults.reply_at("RCPT", "554 5.7.1 Relay access denied", times=1000)
    with serve(faults) as url:
        csv = write_csv(shipped.root, people(25))
        result = send(run, shipped, csv, url, "--yes", "--json", "--connections", "1")
    report = outcome(result)
    assert result.exit_code == 1
    assert report["bounced"] == []
    assert "refused the first 10 subscribers" in report["stopped"]
    # held, not failed: a server that accepts nobody does not fail anyone for good
    assert report["counts"]["held"] == 10 and report["counts"]["failed"] == 0
    assert report["counts"]["untried"] == 15
    assert faults.stored == Counter()


# -- two runs at once ----------------------------------------------------------------------------


def test_two_sends_at_once_never_give_anyone_two_copies(shipped: Project) -> None:
    faults = Faults()
    faults.slow_seconds = 0.1
    csv = write_csv(shipped.root, people(30))
    barrier = threading.Barrier(2)
    results: list[subprocess.CompletedProcess[str]] = []

    def one() -> None:
        barrier.wait()
        args = send_args(shipped.content, csv, url, "--yes", "--connections", "1")
        results.append(famfeeds(*args))

    with serve(faults) as url:
        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert sorted(r.returncode for r in results) == [0, 1], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 1)
    assert "another famfeeds is sending the issue 2023-11-24" in loser.stderr
    assert "Nothing was sent by this run" in loser.stderr and "Traceback" not in loser.stderr
    assert faults.stored == every(30)


def test_wait_lets_a_second_send_follow_the_first(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(3))
    state = shipped.root / ".famfeeds-state"
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with send_lock(state, "for-all-mankind", ISSUE):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    with serve(faults) as url:
        busy = send(run, shipped, csv, url, "--yes")
        assert busy.exit_code == 1 and "pass --wait to wait for it" in busy.output
        threading.Timer(0.5, release.set).start()
        waited = send(run, shipped, csv, url, "--yes", "--wait")
    thread.join()
    assert waited.exit_code == 0 and "waiting for it to finish" in waited.output
    assert faults.stored == every(3)


def test_a_claimed_recipient_is_never_sent_twice(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    other = Ledger(tmp_path / "ledger.sqlite3")
    claimable = {"sending", "deferred"}
    assert ledger.claim("show", ISSUE, "a@example.com", 0, claimable)
    assert not other.claim("show", ISSUE, "a@example.com", 0, claimable)  # planned absent
    ledger.mark("show", ISSUE, "a@example.com", "deferred")
    assert other.claim("show", ISSUE, "a@example.com", 1, claimable)
    assert not ledger.claim("show", ISSUE, "a@example.com", 1, claimable)  # stale version
    other.mark("show", ISSUE, "a@example.com", "sent")
    assert not ledger.claim("show", ISSUE, "a@example.com", 2, claimable)
    ledger.close()
    other.close()


# -- SIGKILL, in a short loop (bench/faults_send.py runs the long one) ----------------------------


@pytest.mark.parametrize("seed", [11, 27])
def test_sigkill_at_a_random_moment_then_rerun(shipped: Project, seed: int) -> None:
    rng = random.Random(seed)
    faults = Faults()
    faults.slow_seconds = 0.02
    csv = write_csv(shipped.root, people(40))
    with serve(faults) as url:
        args = [sys.executable, "-m", "famfeeds"]
        args += send_args(shipped.content, csv, url, "--yes", "--connections", "2")
        process = subprocess.Popen(
            args, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert faults.in_data.wait(60), "the send never reached the server"
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        faults.slow_seconds = 0
        rerun = famfeeds(*send_args(shipped.content, csv, url, "--yes", "--json"))
    report = json.loads(rerun.stdout)
    uncertain = {u["address"] for u in report["uncertain"]}
    assert rerun.returncode == (3 if uncertain else 0), rerun.stderr
    assert max(faults.stored.values()) == 1, f"seed {seed}: a second copy"
    for address in addresses(40):
        assert faults.stored[address] == 1 or address in uncertain, f"seed {seed}: {address} lost"


# -- credentials and TLS ---------------------------------------------------------------------------


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_password_over_a_connection_without_starttls(
    shipped: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAMFEEDS_SMTP_PASSWORD", PASSWORD)
    faults = Faults()  # offers AUTH but not STARTTLS: what a STARTTLS-stripping attacker shows
    csv = write_csv(shipped.root, people(2))
    with serve(faults, authenticator=authenticator, auth_require_tls=False) as url:
        user_url = url.replace("smtp://", "smtp://news@")
        refused = send(run, shipped, csv, user_url, "--yes")
        assert refused.exit_code == 1
        assert "offers no STARTTLS, so famfeeds did not log in" in refused.output
        assert "?insecure-auth=true" in refused.output
        assert faults.auth == [] and faults.stored == Counter()
        loopback = send(run, shipped, csv, user_url + "?insecure-auth=true", "--yes")
        assert loopback.exit_code == 0, loopback.output
        assert set(faults.auth) == {False} and faults.stored == every(2)
    assert PASSWORD not in refused.output + loopback.output


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from test_bounces import make_certificates

    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_starttls_then_auth_and_certificates_checked(
    shipped: Project,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    certificates: tuple[Path, Path, Path],
) -> None:
    ca, cert, key = certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("FAMFEEDS_SMTP_PASSWORD", PASSWORD)
    faults = Faults()
    csv = write_csv(shipped.root, people(2))
    with serve(faults, tls_context=context, authenticator=authenticator) as url:
        user_url = url.replace("smtp://", "smtp://news@")
        untrusted = send(run, shipped, csv, user_url, "--yes")
        assert untrusted.exit_code == 1
        assert "certificate was not accepted during STARTTLS" in untrusted.output
        assert faults.auth == []
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        trusted = send(run, shipped, csv, user_url + "?starttls=required", "--yes")
    assert trusted.exit_code == 0, trusted.output
    assert set(faults.auth) == {True} and faults.stored == every(2)


def test_smtps_against_a_plain_server_says_so(shipped: Project, run: Callable[..., Result]) -> None:
    with serve(Faults()) as url:
        plain = url.replace("smtp://", "smtps://")
        result = send(run, shipped, write_csv(shipped.root, people(1)), plain, "--yes")
    assert result.exit_code == 1
    assert "did not answer in TLS: it looks like a plain SMTP port" in result.output
    assert "WRONG_VERSION_NUMBER" not in result.output


# -- internationalised addresses ------------------------------------------------------------------


def test_idn_domains_go_out_in_ascii_and_utf8_local_parts_need_smtputf8(
    shipped: Project, run: Callable[..., Result]
) -> None:
    rows = [
        "ivan@exämple.com,Ivan,t1",
        "IVAN@xn--exmple-cua.com,Again,t2",
        "иван@пример.рф,Иван,t3",
        "plain@example.com,Plain,t4",
    ]
    csv = write_csv(shipped.root, rows)
    faults = Faults()
    with serve(faults) as url:
        result = send(run, shipped, csv, url, "--yes")
        test = send(run, shipped, csv, url, "--test-to", "Editor@Exämple.com")
    assert result.exit_code == 0, result.output
    assert "IVAN@xn--exmple-cua.com repeats line 2" in result.output
    assert faults.stored == Counter(
        {
            "ivan@xn--exmple-cua.com": 1,
            "иван@xn--e1afmkfd.xn--p1ai": 1,
            "plain@example.com": 1,
            "editor@xn--exmple-cua.com": 1,
        }
    )
    assert test.exit_code == 0, test.output
    ascii_message = faults.parsed("ivan@xn--exmple-cua.com")
    assert ascii_message["To"] == "ivan@xn--exmple-cua.com"
    utf8_message = faults.parsed("иван@xn--e1afmkfd.xn--p1ai")
    assert utf8_message["To"] == "иван@xn--e1afmkfd.xn--p1ai"
    options = [o for o in faults.mail_options if o]
    assert options == [["SMTPUTF8", "BODY=8BITMIME"]]  # only the message that needs it

    refusing = Faults()
    with serve(refusing, enable_SMTPUTF8=False) as url:
        (shipped.root / ".famfeeds-state").rename(shipped.root / "first-state")
        strict = send(run, shipped, csv, url, "--yes", "--json")
    report = outcome(strict)
    assert strict.exit_code == 1
    assert [f["address"] for f in report["failed"]] == ["иван@пример.рф"]
    assert "needs a server that offers SMTPUTF8" in report["failed"][0]["reason"]
    assert report["bounced"] == []
    assert refusing.stored == Counter({"ivan@xn--exmple-cua.com": 1, "plain@example.com": 1})


# -- lines and limits ----------------------------------------------------------------------------


def test_a_1200_character_token_is_refused_before_any_server_sees_it(
    shipped: Project, run: Callable[..., Result]
) -> None:
    csv = write_csv(shipped.root, ["long@example.com,Long," + "t" * 1200, *people(2)])
    faults = Faults()
    with serve(faults) as url:
        refused = send(run, shipped, csv, url, "--yes")
        assert refused.exit_code == 1
        assert (
            "the token is 1,200 characters long once URL-encoded; famfeeds takes at most 256"
            in (refused.output)
        )
        skipped = send(run, shipped, csv, url, "--yes", "--skip-invalid")
    assert skipped.exit_code == 0
    assert faults.stored == every(2)
    for _, _, content in faults.messages:
        assert max(len(line) for line in content.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    "option,value",
    [
        ("--retry-wait", "inf"),
        ("--retry-wait", "nan"),
        ("--retry-wait", "-1"),
        ("--data-timeout", "0"),
        ("--data-timeout", "1e309"),
        ("--rate", "inf"),
        ("--max-age", "inf"),
        ("--max-age", "0d"),
        ("--max-age", "a week"),
        ("--now", "tomorrow"),
    ],
)
def test_option_values_are_checked(
    shipped: Project, run: Callable[..., Result], option: str, value: str
) -> None:
    csv = write_csv(shipped.root, people(1))
    result = send(run, shipped, csv, "smtp://127.0.0.1:1", option, value, "--dry-run")
    assert result.exit_code in (1, 2), result.output
    assert value in result.output and "Traceback" not in result.output


def test_a_csv_field_over_the_csv_limit_is_a_clear_error(
    shipped: Project, run: Callable[..., Result]
) -> None:
    csv = write_csv(shipped.root, [*people(2), 'huge@example.com,"' + "x" * 200_000 + '",t'])
    result = send(run, shipped, csv, "smtp://127.0.0.1:1", "--dry-run")
    assert result.exit_code == 1
    assert "subscribers.csv:4: not a valid CSV row (field larger than field limit" in result.output


def test_terminal_escapes_in_a_cell_or_a_reply_are_shown_escaped(
    shipped: Project, run: Callable[..., Result]
) -> None:
    csv = write_csv(
        shipped.root, ["\x1b]0;owned\x07\x1b[2Jx@example.com,Evil,t", "fan1@example.com,F,t"]
    )
    faults = Faults()
    faults.reply_at("RCPT", "550 5.1.1 no such \x1b[31muser", address="fan1@example.com")
    with serve(faults) as url:
        result = send(run, shipped, csv, url, "--yes", "--skip-invalid")
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b]0;owned\\x07\\x1b[2Jx@example.com" in result.output
    assert "no such \\x1b[31muser" in result.output


# -- the ledger in trouble -------------------------------------------------------------------------


def test_a_corrupt_or_truncated_ledger_is_a_clear_message(
    shipped: Project, run: Callable[..., Result]
) -> None:
    faults = Faults()
    csv = write_csv(shipped.root, people(40))
    ledger = shipped.root / ".famfeeds-state" / "ledger.sqlite3"
    with serve(faults) as url:
        assert send(run, shipped, csv, url, "--yes").exit_code == 0
        data = ledger.read_bytes()
        ledger.write_bytes(data[: len(data) // 2])
        truncated = send(run, shipped, csv, url, "--yes")
        ledger.write_bytes(b"not a database at all, just text\n" * 200)
        corrupt = send(run, shipped, csv, url, "--yes")
    for result in (truncated, corrupt):
        assert result.exit_code == 1, result.output
        assert "is damaged or is not a famfeeds ledger" in result.output
        assert "restore it from a backup" in result.output and "Traceback" not in result.output
    assert faults.stored == every(40)


def test_a_locked_ledger_is_a_clear_message(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    ledger = Ledger(path, busy_timeout=0.1)
    with pytest.raises(LedgerError, match="is locked by another process"):
        ledger.claim("show", ISSUE, "a@example.com", 0, {"sending"})
    holder.execute("ROLLBACK")
    assert ledger.claim("show", ISSUE, "a@example.com", 0, {"sending"})


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_full_disk_stops_the_send_cleanly_and_the_rerun_finishes(
    shipped: Project, run: Callable[..., Result]
) -> None:
    state = shipped.root / ".famfeeds-state"
    state.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(state)], check=True)
    try:
        filler = state / "filler"
        with filler.open("wb") as out:
            out.write(b"\0" * (2 * 1024 * 1024 - 160 * 1024))
        faults = Faults()
        csv = write_csv(shipped.root, people(300))
        with serve(faults) as url:
            full = send(run, shipped, csv, url, "--yes", "--connections", "1")
            assert full.exit_code == 1, full.output
            assert "is full" in full.output and "free some space" in full.output
            assert "Traceback" not in full.output
            filler.unlink()
            rerun = send(run, shipped, csv, url, "--yes", "--json")
    finally:
        subprocess.run(["umount", str(state)], check=True)
    assert rerun.exit_code in (0, 3), rerun.output
    report = outcome(rerun)
    uncertain = {u["address"] for u in report["uncertain"]}
    assert len(faults.stored) > 0 and max(faults.stored.values()) == 1
    for address in addresses(300):
        assert faults.stored[address] == 1 or address in uncertain


# -- never a command inside an open DATA ---------------------------------------------------------


def test_a_failed_commit_closes_the_socket_without_a_word(tmp_path: Path) -> None:
    """A raw server: what arrives after 354 must be the message and nothing else."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 raw.example ESMTP\r\n")
            buffer = b""
            while b"DATA\r\n" not in buffer:
                chunk = conn.recv(4096)
                buffer += chunk
                for line in chunk.split(b"\r\n"):
                    if line.upper().startswith(b"EHLO"):
                        conn.sendall(b"250 raw.example\r\n")
                    elif line.upper().startswith((b"MAIL", b"RCPT")):
                        conn.sendall(b"250 OK\r\n")
            conn.sendall(b"354 go ahead\r\n")
            while chunk := conn.recv(4096):
                received.extend(chunk)

    thread = threading.Thread(target=server)
    thread.start()
    port = listener.getsockname()[1]
    connection = Connection(SmtpTarget("smtp", "127.0.0.1", port), None)

    def commit_fails() -> None:
        raise LedgerError("the disk is full")

    with pytest.raises(LedgerError):
        message = b"Subject: x\r\n\r\nhi\r\n"
        connection.deliver("news@example.org", "fan@example.com", message, commit_fails)
    connection.close()
    thread.join(10)
    listener.close()
    assert bytes(received) == b"Subject: x\r\n\r\nhi\r\n"  # no ".", no QUIT, no RSET


def test_a_refusal_before_data_resets_and_the_session_goes_on() -> None:
    faults = Faults()
    faults.reply_at("RCPT", "550 5.1.1 no such user", address="gone@example.com")
    with serve(faults) as url:
        target = SmtpTarget.parse(url)
        connection = Connection(target, None)
        with pytest.raises(DeliveryError) as refused:
            connection.deliver("news@example.org", "gone@example.com", b"x\r\n", lambda: None)
        assert refused.value.permanent and refused.value.enhanced == "5.1.1"
        assert refused.value.step == "RCPT"
        connection.deliver("news@example.org", "here@example.com", b"x\r\n", lambda: None)
        connection.close()
    assert faults.stored == Counter({"here@example.com": 1})
