"""The bounce reader: sample bounces from real MTAs' formats, mbox, Maildir and a real dovecot."""

from __future__ import annotations

import dataclasses
import email
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from famfeeds.delivery.bounces import (
    DEFAULT_MAX_MESSAGE_BYTES,
    BounceEvent,
    BounceSourceError,
    OversizedMessageDefect,
    _imap_login,
    classify,
    parse_imap_url,
    read_imap,
    read_maildir,
    read_mbox,
    summarise,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
PASSWORD = "Imap-Pa55word-7Q"

# fixture file -> (address, kind, source, VERP token) for every event classify() returns
EXPECTED: dict[str, list[tuple[str, str, str, str | None]]] = {
    "postfix-user-unknown.eml": [("nosuchuser@example.net", "hard", "dsn", None)],
    "exim-dsn.eml": [("gone@example.com", "hard", "dsn", None)],
    "exim-plain.eml": [("old.reader@example.net", "hard", "flufl", None)],
    "gmail-user-unknown.eml": [("absent.person@example.com", "hard", "dsn", None)],
    "outlook-recipient-not-found.eml": [("ghost@example.net", "hard", "dsn", None)],
    "delayed-4.4.1.eml": [("slow@example.net", "soft", "dsn", None)],
    "policy-block-5.7.1.eml": [("blocked.reader@example.com", "soft", "dsn", None)],
    "dsn-delivered.eml": [],
    "qmail.eml": [("nobody.home@example.net", "hard", "flufl", None)],
    "arf-abuse-with-original.eml": [("complainer@example.com", "complaint", "arf", "c0ffee")],
    "arf-no-original.eml": [("angry@example.net", "complaint", "arf", None)],
    "arf-headers-only.eml": [("reader@example.net", "complaint", "arf", "5eed01")],
    "auto-reply.eml": [],
    "verp-dsn.eml": [("reader.one@example.com", "hard", "dsn", "7f3a9c")],
    "verp-garbled.eml": [("", "hard", "verp", "9d2e41")],
}

REASONS = {
    "postfix-user-unknown.eml": "5.1.1 <NoSuchUser@Example.NET>: Recipient address rejected",
    "exim-dsn.eml": "5.0.0 No such mailbox here",
    "exim-plain.eml": "5.1.1 <old.reader@example.net>: mailbox does not exist",
    "gmail-user-unknown.eml": "5.1.1 The email account that you tried to reach does not exist",
    "outlook-recipient-not-found.eml": "5.1.10 RESOLVER.ADR.RecipientNotFound",
    "delayed-4.4.1.eml": "4.4.1 connect to mx.example.net",
    "policy-block-5.7.1.eml": "5.7.1 Service unavailable",
    "arf-abuse-with-original.eml": "feedback report: abuse",
    "verp-dsn.eml": "5.2.1 mailbox disabled",
    "verp-garbled.eml": "5.1.1",
}


def load(name: str) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes((FIXTURES / name).read_bytes())


def found(events: list[BounceEvent]) -> list[tuple[str, str, str, str | None]]:
    return [(e.address, e.kind, e.source, e.token) for e in events]


def kinds(messages: Iterator[EmailMessage]) -> list[list[tuple[str, str]]]:
    return [[(e.address, e.kind) for e in classify(m)] for m in messages]


def assert_secret_kept(exc: BaseException, *secrets: str) -> None:
    """Neither the message nor a formatted traceback shows any of the secrets."""
    shown = str(exc) + "".join(traceback.format_exception(exc))
    for secret in secrets:
        assert secret not in shown


# ---------------------------------------------------------------------------------------------
# Classification


def test_every_fixture_has_an_expectation() -> None:
    assert {p.name for p in FIXTURES.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_events(name: str) -> None:
    events = classify(load(name))
    assert found(events) == EXPECTED[name]
    for event in events:
        assert "\n" not in event.reason and 0 < len(event.reason) <= 160
    if name in REASONS:
        assert events[0].reason.startswith(REASONS[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_compat32_messages_classify_the_same(name: str) -> None:
    message = email.message_from_bytes((FIXTURES / name).read_bytes())
    assert found(classify(message)) == EXPECTED[name]


def test_verp_prefix_is_configurable() -> None:
    raw = (FIXTURES / "verp-dsn.eml").read_bytes().replace(b"bounces+7f3a9c@", b"ret+7f3a9c@")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert found(classify(message)) == [("reader.one@example.com", "hard", "dsn", None)]
    for prefix in ("ret", "RET+"):
        assert classify(message, verp=prefix)[0].token == "7f3a9c"
    assert classify(load("verp-dsn.eml"), verp="ret")[0].token is None
    with pytest.raises(ValueError, match="prefix"):
        classify(message, verp="+")


def dsn(*blocks: str, to: str = "bounces@example.org") -> EmailMessage:
    """A minimal RFC 3464 report with the given per-recipient blocks."""
    recipients = "\n".join(blocks)
    raw = f"""\
From: MAILER-DAEMON@mail.example.org
To: {to}
Subject: Delivery report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Report follows.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org

{recipients}
--b--
"""
    return BytesParser(policy=policy.default).parsebytes(raw.encode())


def block(action: str | None, status: str | None, address: str = "user@example.com") -> str:
    lines = [f"Final-Recipient: rfc822; {address}"]
    lines += [f"Action: {action}"] if action else []
    lines += [f"Status: {status}"] if status else []
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("failed", "5.1.1", "hard"),
        ("failed", "5.1.10", "hard"),
        ("failed", "5.4.4", "hard"),
        ("failed", "5.0.0", "hard"),
        ("failed", None, "hard"),
        (None, "5.1.1", "hard"),
        ("failed", "4.4.7", "soft"),
        ("delayed", "4.4.1", "soft"),
        ("delayed", "5.1.1", "soft"),
        (None, "4.2.0", "soft"),
        ("failed", "5.2.2", "soft"),
        ("failed", "5.3.4", "soft"),
        ("failed", "5.6.0", "soft"),
        ("failed", "5.7.26", "soft"),
        ("failed (bad address)", "5.1.1 (user unknown)", "hard"),
        ("delivered", "2.0.0", None),
        ("relayed", "2.0.0", None),
        ("expanded", "2.0.0", None),
    ],
)
def test_dsn_action_and_status_rules(action: str | None, status: str | None, kind: str) -> None:
    events = classify(dsn(block(action, status)))
    assert [(e.address, e.kind) for e in events] == ([("user@example.com", kind)] if kind else [])


def test_dsn_reports_each_recipient_and_prefers_original_recipient() -> None:
    second = "Original-Recipient: rfc822; Alias@Example.NET\n" + block("failed", "5.1.1", "x@y.net")
    events = classify(
        dsn(block("delayed", "4.4.1"), second, block("delivered", "2.0.0", "o@k.org"))
    )
    assert [(e.address, e.kind) for e in events] == [
        ("user@example.com", "soft"),
        ("alias@example.net", "hard"),
    ]


def test_dsn_without_recipient_blocks_falls_back_to_verp() -> None:
    garbled = dsn("Nothing-Useful: here\n", to="bounces+tok3n@example.org")
    assert found(classify(garbled)) == [("", "soft", "verp", "tok3n")]
    assert classify(dsn("Nothing-Useful: here\n")) == []


def test_own_addresses_are_never_reported() -> None:
    events = classify(dsn(block("failed", "5.1.1", "bounces+abc@example.org")))
    assert events == []


def arf(feedback_type: str, fields: str = "", original: str = "") -> EmailMessage:
    third = f"--r\nContent-Type: message/rfc822\n\n{original}\n" if original else ""
    raw = f"""\
From: fbl@fbl.example.net
To: fbl@example.org
Subject: report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="r"

--r
Content-Type: text/plain

A report.

--r
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
Version: 1
{fields}
{third}--r--
"""
    return BytesParser(policy=policy.default).parsebytes(raw.encode())


@pytest.mark.parametrize(
    ("feedback_type", "complaint"),
    [
        ("abuse", True),
        ("fraud", True),
        ("other", True),
        ("x-unregistered", True),
        ("not-spam", False),
        ("auth-failure", False),
        ("virus", False),
    ],
)
def test_arf_feedback_types(feedback_type: str, complaint: bool) -> None:
    events = classify(arf(feedback_type, "Original-Rcpt-To: someone@example.com"))
    assert found(events) == (
        [("someone@example.com", "complaint", "arf", None)] if complaint else []
    )


def test_arf_recipient_sources() -> None:
    assert classify(arf("abuse")) == []
    removal = arf("abuse", "Removal-Recipient: gone@example.net")
    assert found(classify(removal)) == [("gone@example.net", "complaint", "arf", None)]
    # Original-Rcpt-To names the envelope recipient, so it wins over the original's To.
    both = arf("abuse", "Original-Rcpt-To: env@example.com", "To: header@example.com\n\nHi")
    assert [e.address for e in classify(both)] == ["env@example.com"]
    # An original addressed to several people does not say who complained; the token does.
    several = arf(
        "abuse",
        "Original-Mail-From: <bounces+77aa@example.org>",
        "To: one@example.com, two@example.com\n\nHi",
    )
    assert found(classify(several)) == [("", "complaint", "arf", "77aa")]


def test_auto_replies_are_not_bounces() -> None:
    raw = (FIXTURES / "auto-reply.eml").read_bytes()
    plain = raw.replace(b"Auto-Submitted: auto-replied\n", b"").replace(b"X-Autoreply: yes\n", b"")
    outlook = plain.replace(b"Out of office:", b"Automatic reply:")
    for variant in (raw, plain, outlook):
        assert classify(BytesParser(policy=policy.default).parsebytes(variant)) == []


def test_summarise_keeps_the_strongest_event_per_address() -> None:
    soft = BounceEvent("a@example.com", "soft", "4.4.1", "dsn")
    hard = BounceEvent("a@example.com", "hard", "5.1.1", "dsn")
    complaint = BounceEvent("A@Example.com", "complaint", "abuse", "arf")
    other = BounceEvent("b@example.com", "soft", "4.2.2", "dsn")
    later_soft = BounceEvent("b@example.com", "soft", "4.4.7", "flufl")
    result = summarise([soft, other, hard, complaint, hard, later_soft])
    assert result == {"a@example.com": complaint, "b@example.com": other}
    assert summarise([soft, hard]) == {"a@example.com": hard}
    assert summarise([]) == {}
    with pytest.raises(ValueError, match="token"):
        summarise([BounceEvent("", "hard", "5.1.1", "verp", "9d2e41")])
    resolved = dataclasses.replace(
        BounceEvent("", "hard", "5.1.1", "verp", "9d2e41"), address="x@y.org"
    )
    assert summarise([resolved]) == {"x@y.org": resolved}


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(EXPECTED)),
    cut=st.integers(min_value=0, max_value=6000),
    noise=st.binary(max_size=300),
)
def test_damaged_messages_never_crash(name: str, cut: int, noise: bytes) -> None:
    raw = (FIXTURES / name).read_bytes()
    for data in (raw[:cut] + noise, noise + raw[cut:], noise):
        events = classify(BytesParser(policy=policy.default).parsebytes(data))
        assert all(e.kind in ("hard", "soft", "complaint") for e in events)


# ---------------------------------------------------------------------------------------------
# mbox and Maildir

MBOX_EXPECTED = [
    [("nosuchuser@example.net", "hard")],
    [("old.reader@example.net", "hard")],
    [],  # the auto-reply
    [("angry@example.net", "complaint")],
    [("reader.one@example.com", "hard")],
]


def test_read_mbox_passes_over_junk() -> None:
    skipped: list[str] = []
    messages = list(read_mbox(FIXTURES / "bounces.mbox", on_skip=skipped.append))
    assert kinds(iter(messages)) == MBOX_EXPECTED
    assert len(skipped) == 3
    assert "before the first 'From ' line" in skipped[0]
    assert "entry 3 " in skipped[1] and "entry 5 " in skipped[2]
    assert all(isinstance(m, EmailMessage) for m in messages)
    assert kinds(read_mbox(str(FIXTURES / "bounces.mbox"))) == MBOX_EXPECTED


def test_read_mbox_edge_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert list(read_mbox(empty)) == []
    blank = tmp_path / "blank.mbox"
    blank.write_bytes(b"\n\n  \n")
    assert list(read_mbox(blank)) == []
    no_newline = tmp_path / "last.mbox"
    no_newline.write_bytes(
        b"From x Mon Jan  1 00:00:00 2024\n" + (FIXTURES / "verp-garbled.eml").read_bytes().rstrip()
    )
    assert kinds(read_mbox(no_newline)) == [[("", "hard")]]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        ("folder", "is a folder"),
        (b"Subject: just one message\n\nHello\n", "not an mbox file"),
        (b"\x89PNG\r\n\x1a\n\x00binary", "not an mbox file"),
    ],
)
def test_read_mbox_refuses_what_is_not_an_mbox(
    tmp_path: Path, content: bytes | str | None, problem: str
) -> None:
    path = tmp_path / "box"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(BounceSourceError, match=problem) as caught:
        list(read_mbox(path))
    assert str(path) in str(caught.value)


def test_a_50_mb_mbox_streams_in_bounded_memory(tmp_path: Path) -> None:
    """Oversized messages are cut at the limit; the file is never held in memory whole."""
    path = tmp_path / "big.mbox"
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\n"
    with path.open("wb") as out:
        out.write(b"From MAILER-DAEMON Tue Jan  9 19:02:14 2024\n")
        out.write((FIXTURES / "postfix-user-unknown.eml").read_bytes() + b"\n")
        out.write(b"From MAILER-DAEMON Tue Jan  9 19:03:00 2024\n")
        out.write((FIXTURES / "exim-dsn.eml").read_bytes().split(b"\n--1704874540-eximdsn-1--")[0])
        out.write(b"\n--1704874540-eximdsn-1\nContent-Type: application/octet-stream\n")
        out.write(b"Content-Transfer-Encoding: base64\n\n")
        out.write(line * (40 * 1024 * 1024 // len(line)))
        out.write(b"--1704874540-eximdsn-1--\n\n")
        out.write(b"From junk Wed Jan 10 09:00:00 2024\n")
        out.write(b"x" * (8 * 1024 * 1024) + b"\n\n")  # one 8 MB line, no header
        out.write(b"From MAILER-DAEMON Thu Jan 11 12:00:05 2024\n")
        out.write((FIXTURES / "verp-dsn.eml").read_bytes())
    assert path.stat().st_size > 48 * 1024 * 1024
    skipped: list[str] = []
    tracemalloc.start()
    try:
        results = [
            (classify(m), any(isinstance(d, OversizedMessageDefect) for d in m.defects))
            for m in read_mbox(path, on_skip=skipped.append)
        ]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [([(e.address, e.kind) for e in events], cut) for events, cut in results] == [
        ([("nosuchuser@example.net", "hard")], False),
        ([("gone@example.com", "hard")], True),
        ([("reader.one@example.com", "hard")], False),
    ]
    assert len(skipped) == 1 and "entry 3 " in skipped[0]
    # Peak memory follows the per-message limit (the parser holds a few copies), not the file.
    assert peak < 10 * DEFAULT_MAX_MESSAGE_BYTES < path.stat().st_size / 2


MAILDIR_EXPECTED = [
    [],  # cur/1704870000: the auto-reply
    [("slow@example.net", "soft")],
    [("ghost@example.net", "hard")],
    [("absent.person@example.com", "hard")],
    [("complainer@example.com", "complaint")],
]


def test_read_maildir_in_file_name_order_without_moving_files() -> None:
    root = FIXTURES / "maildir"
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    skipped: list[str] = []
    assert kinds(read_maildir(root, on_skip=skipped.append)) == MAILDIR_EXPECTED
    assert len(skipped) == 1 and "1705100000.M6P2006Q6" in skipped[0]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_read_maildir_cuts_oversized_messages() -> None:
    sizes = []
    for message in read_maildir(FIXTURES / "maildir", max_message_bytes=1024):
        sizes.append(any(isinstance(d, OversizedMessageDefect) for d in message.defects))
    assert sizes == [False, True, True, True, True]
    with pytest.raises(ValueError, match="at least 1024"):
        read_maildir(FIXTURES / "maildir", max_message_bytes=10)


def test_read_maildir_refuses_what_is_not_a_maildir(tmp_path: Path) -> None:
    with pytest.raises(BounceSourceError, match="does not exist"):
        read_maildir(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BounceSourceError, match="is a file"):
        read_maildir(tmp_path / "file")
    (tmp_path / "half" / "cur").mkdir(parents=True)
    with pytest.raises(BounceSourceError, match=r"no new/ folder"):
        read_maildir(tmp_path / "half")
    (tmp_path / "half" / "new").mkdir()
    assert list(read_maildir(tmp_path / "half")) == []


# ---------------------------------------------------------------------------------------------
# IMAP: URLs and failures without a server

SECRET_IN_URL = "hunter2-in-the-url"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://bounce@example.org/INBOX", "imap:// or imaps://"),
        ("bounce@example.org", "imap:// or imaps://"),
        ("imaps://example.org/INBOX", "no user name"),
        ("imaps://bounce@/INBOX", "no server name"),
        ("imaps://bounce@example.org:imap/INBOX", "Port could not be cast"),
        ("imaps://bounce@example.org:70000/INBOX", "out of range"),
        ("imaps://bounce@example.org:0/INBOX", "between 1 and 65535"),
        ("imaps://bounce@[::1/INBOX", "Invalid IPv6 URL"),
        ("imaps://bounce@example.org/INBOX?insecure=true", "always encrypted"),
        ("imap://bounce@mail.example.org/INBOX?insecure=true", "only allowed for a test server"),
        ("imap://bounce@127.0.0.1/INBOX?insecure=maybe", "true or false"),
        ("imap://bounce@127.0.0.1/INBOX?insecure=1&cafile=/ca.pem", "no effect"),
        ("imaps://bounce@example.org/INBOX?verify=no", "unknown option 'verify'"),
        ("imaps://bounce@example.org/Bo%C3%AEte", "plain ASCII"),
        ("imaps://bo%0D%0Aunce@example.org/INBOX", "control characters"),
        (f"imaps://bounce:{SECRET_IN_URL}@example.org/INBOX", "leave the password out"),
    ],
)
def test_malformed_imap_urls(url: str, problem: str) -> None:
    with pytest.raises(BounceSourceError, match=problem) as caught:
        read_imap(url, PASSWORD)  # checked at once, before any connection
    assert_secret_kept(caught.value, PASSWORD, SECRET_IN_URL)


def test_imap_url_forms() -> None:
    source = parse_imap_url("imaps://bounce@mail.example.org/INBOX")
    assert (source.host, source.port, source.user, source.folder, source.tls) == (
        "mail.example.org",
        993,
        "bounce",
        "INBOX",
        "implicit",
    )
    assert str(source) == "imaps://bounce@mail.example.org:993/INBOX"
    starttls = parse_imap_url("IMAP://bounce%40example.org@Mail.Example.org?cafile=/etc/ca.pem")
    assert (starttls.host, starttls.port, starttls.user, starttls.folder, starttls.tls) == (
        "mail.example.org",
        143,
        "bounce@example.org",
        "INBOX",
        "starttls",
    )
    assert starttls.cafile == Path("/etc/ca.pem")
    folder = parse_imap_url("imap://u@localhost:1143/Bounces%20Box/2024?insecure=true")
    assert (folder.folder, folder.tls, folder.port) == ("Bounces Box/2024", "none", 1143)
    assert parse_imap_url("imap://u@[::1]:1143/INBOX?insecure=yes").host == "::1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_imap_server() -> None:
    port = free_port()
    messages = read_imap(f"imap://bounce@127.0.0.1:{port}/INBOX?insecure=true", PASSWORD)
    with pytest.raises(BounceSourceError, match="connection refused") as caught:
        next(messages)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert_secret_kept(caught.value, PASSWORD)


def test_silent_imap_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        url = f"imaps://bounce@127.0.0.1:{port}/INBOX"
        with pytest.raises(BounceSourceError, match=r"no answer within 0\.3 s") as caught:
            next(read_imap(url, PASSWORD, timeout=0.3))
    assert_secret_kept(caught.value, PASSWORD)


def test_imap_needs_a_password() -> None:
    with pytest.raises(BounceSourceError, match="FAMFEEDS_IMAP_PASSWORD"):
        read_imap("imaps://bounce@mail.example.org/INBOX", "")


def test_imap_missing_ca_file(tmp_path: Path) -> None:
    url = f"imaps://bounce@127.0.0.1:{free_port()}/INBOX?cafile={tmp_path / 'none.pem'}"
    with pytest.raises(BounceSourceError, match="cannot load the CA file") as caught:
        next(read_imap(url, PASSWORD))
    assert_secret_kept(caught.value, PASSWORD)


# ---------------------------------------------------------------------------------------------
# IMAP against a real dovecot on loopback

DOVECOT = Path("/usr/sbin/dovecot")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
UNICODE_PASSWORD = "Pässwörd-ünïcode-9"


@dataclasses.dataclass
class Dovecot:
    """A private dovecot: its folder, ports, users and the CA that signed its certificate."""

    root: Path
    imap_port: int
    imaps_port: int
    ca: Path
    process: subprocess.Popen[bytes]

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user

    def url(self, user: str = "bounce", query: str = "insecure=true", tls: bool = False) -> str:
        if tls:
            return f"imaps://{user}@127.0.0.1:{self.imaps_port}/INBOX?{query}"
        return f"imap://{user}@127.0.0.1:{self.imap_port}/INBOX?{query}"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def run_tool(*args: str, cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, check=False)
    if result.returncode:
        pytest.fail(f"{' '.join(args[:2])} failed: {result.stderr.decode(errors='replace')}")


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    run_tool(
        OPENSSL, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=famfeeds test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign", cwd=root,
    )  # fmt: skip
    run_tool(
        OPENSSL, "req", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1", cwd=root,
    )  # fmt: skip
    (root / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run_tool(
        OPENSSL, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=root,
    )  # fmt: skip
    return root / "ca.pem", root / "server.pem", root / "server.key"


def start_dovecot(root: Path, tls: bool) -> Dovecot:
    """Run ``dovecot -F`` on two free loopback ports with passwd-file users and Maildirs.

    As root, mail processes run as nobody (dovecot refuses uid 0); otherwise as the current user.
    """
    if not DOVECOT.exists():
        pytest.fail(
            "dovecot is not installed: the IMAP tests need a real server "
            "(Debian: apt-get install dovecot-imapd, which brings dovecot-core and openssl)"
        )
    root.chmod(0o755)
    if os.geteuid() == 0:
        mail_uid = mail_gid = 65534
        users = ""
    else:
        mail_uid, mail_gid = os.getuid(), os.getgid()
        name = pwd.getpwuid(mail_uid).pw_name
        group = grp.getgrgid(mail_gid).gr_name
        users = (
            f"default_internal_user = {name}\ndefault_internal_group = {group}\n"
            f"default_login_user = {name}\nservice anvil {{\n  chroot =\n}}\n"
        )
    ca, cert, key = make_certificates(root) if tls else (root / "none", root, root)
    ssl_settings = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n" if tls else "ssl = no\n"
    imap_port, imaps_port = free_port(), free_port()
    (root / "passwd").write_text(
        f"bounce:{{PLAIN}}{PASSWORD}\nother:{{PLAIN}}{PASSWORD}\n"
        f"unicode:{{PLAIN}}{UNICODE_PASSWORD}\n",
        encoding="utf-8",
    )
    for user in ("bounce", "other", "unicode"):
        for sub in ("cur", "new", "tmp"):
            (root / "mail" / user / sub).mkdir(parents=True)
    for directory in (root / "mail", *(root / "mail").rglob("*")):
        os.chown(directory, mail_uid, mail_gid)
    (root / "dovecot.conf").write_text(
        f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{users}protocols = imap
listen = 127.0.0.1
{ssl_settings}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}
service imap-login {{
  chroot = {"login" if os.geteuid() == 0 else ""}
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port if tls else 0}
  }}
}}
"""
    )
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = Dovecot(root, imap_port, imaps_port, ca, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", imap_port), timeout=1).close()
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.communicate(timeout=5)[0].decode(errors="replace")
                stop_dovecot(server)
                pytest.fail(f"dovecot did not start:\n{output}\n{server.log()}")
            time.sleep(0.05)


def stop_dovecot(server: Dovecot) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    # Not pytest's tmp_path: mail processes run as another user and must reach the folder.
    root = Path(tempfile.mkdtemp(prefix="famfeeds-dovecot-"))
    try:
        server = start_dovecot(root, tls=True)
        try:
            yield server
        finally:
            stop_dovecot(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def deliver(server: Dovecot, user: str, names: list[str]) -> None:
    """Drop fixture files into the user's Maildir new/ folder, as a local delivery would."""
    for number, name in enumerate(names):
        target = server.maildir(user) / "new" / f"{1704800000 + number}.M{number}P1.example.org"
        target.write_bytes((FIXTURES / name).read_bytes())
        os.chown(target, server.maildir(user).stat().st_uid, server.maildir(user).stat().st_gid)


IMAP_FIXTURES = [
    "postfix-user-unknown.eml",
    "gmail-user-unknown.eml",
    "auto-reply.eml",
    "arf-abuse-with-original.eml",
    "verp-dsn.eml",
    "delayed-4.4.1.eml",
]


def by_message_id(messages: Iterator[EmailMessage]) -> dict[str, list[BounceEvent]]:
    return {str(m["Message-ID"]): classify(m) for m in messages}


def expected_by_message_id(names: list[str]) -> dict[str, list[tuple[str, str, str, str | None]]]:
    return {str(load(name)["Message-ID"]): EXPECTED[name] for name in names}


def test_imap_round_trip_with_dovecot(dovecot: Dovecot) -> None:
    deliver(dovecot, "bounce", IMAP_FIXTURES)
    skipped: list[str] = []
    got = by_message_id(read_imap(dovecot.url(), PASSWORD, timeout=5, on_skip=skipped.append))
    assert {k: found(v) for k, v in got.items()} == expected_by_message_id(IMAP_FIXTURES)
    assert skipped == []
    # Read-only: nothing was flagged \Seen.
    connection = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=5)
    try:
        connection.login("bounce", PASSWORD)
        connection.select("INBOX", readonly=True)
        status, flags = connection.fetch("1:*", "(FLAGS)")
        assert status == "OK" and len(flags) == len(IMAP_FIXTURES)
        assert not any(b"\\Seen" in item for item in flags if isinstance(item, bytes))
    finally:
        connection.logout()


def test_imap_over_tls_with_a_private_ca(dovecot: Dovecot) -> None:
    deliver(dovecot, "other", ["exim-dsn.eml", "arf-no-original.eml"])
    expected = expected_by_message_id(["exim-dsn.eml", "arf-no-original.eml"])
    for url in (
        dovecot.url("other", f"cafile={dovecot.ca}"),  # STARTTLS
        dovecot.url("other", f"cafile={dovecot.ca}", tls=True),  # imaps
    ):
        got = by_message_id(read_imap(url, PASSWORD, timeout=5))
        assert {k: found(v) for k, v in got.items()} == expected


def test_imap_refuses_an_unknown_certificate(dovecot: Dovecot) -> None:
    for url in (dovecot.url("other", "", tls=True), dovecot.url("other", "")):
        with pytest.raises(BounceSourceError, match="certificate was not accepted") as caught:
            next(read_imap(url, PASSWORD, timeout=5))
        assert "?cafile=PATH" in str(caught.value)
        assert_secret_kept(caught.value, PASSWORD)


def test_imap_missing_folder(dovecot: Dovecot) -> None:
    url = dovecot.url().replace("/INBOX?", "/No%20Such%20Folder?")
    with pytest.raises(BounceSourceError, match="cannot open folder 'No Such Folder'") as caught:
        next(read_imap(url, PASSWORD, timeout=5))
    assert_secret_kept(caught.value, PASSWORD)


def test_imap_non_ascii_password_and_empty_folder(dovecot: Dovecot) -> None:
    assert list(read_imap(dovecot.url("unicode"), UNICODE_PASSWORD, timeout=5)) == []


def test_imap_refusals_on_a_server_without_tls() -> None:
    """A private plain-text server: without STARTTLS only ?insecure=true logs in, and a wrong
    password is refused.

    Its own instance, because dovecot then delays every later login from 127.0.0.1 (auth penalty).
    """
    root = Path(tempfile.mkdtemp(prefix="famfeeds-dovecot-"))
    try:
        server = start_dovecot(root, tls=False)
        try:
            url = f"imap://bounce@127.0.0.1:{server.imap_port}/INBOX"
            with pytest.raises(BounceSourceError, match="does not offer STARTTLS") as caught:
                next(read_imap(url, PASSWORD, timeout=5))
            assert_secret_kept(caught.value, PASSWORD)
            assert list(read_imap(url + "?insecure=true", PASSWORD, timeout=5)) == []
            wrong = "Wrong-Pa55word-Zz"
            with pytest.raises(BounceSourceError, match="login as 'bounce' refused") as caught:
                next(read_imap(url + "?insecure=true", wrong, timeout=5))
            assert "FAMFEEDS_IMAP_PASSWORD" in str(caught.value)
            assert_secret_kept(caught.value, wrong, PASSWORD)
        finally:
            stop_dovecot(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class FakeConnection:
    """Records how _imap_login authenticates, for servers dovecot cannot imitate here."""

    def __init__(self, *capabilities: str) -> None:
        self.capabilities = ("IMAP4REV1", *capabilities)
        self.calls: list[str] = []

    def login(self, user: str, password: str) -> None:
        self.calls.append("LOGIN")

    def authenticate(self, mechanism: str, answer: object) -> None:
        self.calls.append(f"AUTHENTICATE {mechanism}")


@pytest.mark.parametrize(
    ("capabilities", "password", "outcome"),
    [
        (("AUTH=PLAIN",), PASSWORD, "LOGIN"),
        (("AUTH=PLAIN",), UNICODE_PASSWORD, "AUTHENTICATE PLAIN"),
        (("LOGINDISABLED", "AUTH=PLAIN"), PASSWORD, "AUTHENTICATE PLAIN"),
        ((), "tab\there", "only offers LOGIN"),
        (("LOGINDISABLED", "AUTH=LOGIN"), PASSWORD, "has disabled LOGIN"),
    ],
)
def test_imap_login_mechanism(capabilities: tuple[str, ...], password: str, outcome: str) -> None:
    fake = FakeConnection(*capabilities)
    source = parse_imap_url("imaps://bounce@mail.example.org/INBOX")
    if outcome.isupper():
        _imap_login(fake, source, password)  # type: ignore[arg-type]
        assert fake.calls == [outcome]
    else:
        with pytest.raises(BounceSourceError, match=outcome) as caught:
            _imap_login(fake, source, password)  # type: ignore[arg-type]
        assert fake.calls == []
        assert_secret_kept(caught.value, password)
