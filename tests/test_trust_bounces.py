"""Bounces are authenticated, odd reports change nothing, and ``forget`` leaves no trace.

Issue 22, items 6 to 8, with real processes where the operator meets them: ``famfeeds send``
against a relay on loopback (aiosmtpd) mails the store's subscribers once; the bounce
mailboxes are real mbox and Maildir files, built from the messages the relay received (a
genuine bounce carries their Message-ID or VERP tag) or forged by a stranger; ``famfeeds
bounces`` and ``famfeeds subscribers forget`` run as CLI processes; the store's rows are
counted afterwards and every state file is searched for the address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mailbox
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from famfeeds.delivery.store import SubscriberStore
from faults.smtp_faults import ISSUE, NOW, Faults, clean_env, serve
from reports import arf_report, dsn_report
from support import REPO, SHIPPED_CONTENT, Project

SHOW = "for-all-mankind"
DOMAIN = "famfeeds.example.org"
FANS = [f"fan{i:02d}@example.com" for i in range(51)]
VERP = 'bounce_address = "bounces@famfeeds.example.org"\nverp = true\n'


# -- a project that has mailed 51 subscribers once ------------------------------------------


class Sent:
    """A project folder after one real send, and what the relay received."""

    def __init__(self, root: Path, messages: dict[str, tuple[str, bytes]]) -> None:
        self.project = Project(root)
        self.root = root
        self.state = root / ".famfeeds-state"
        self.messages = messages
        """recipient -> (envelope sender, message bytes) as the relay stored them."""

    def headers(self, address: str) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.messages[address][1])

    def message_id(self, address: str) -> str:
        return str(self.headers(address)["Message-ID"])

    def tag(self, address: str) -> str:
        """The VERP tag of the envelope sender the relay saw for ``address``."""
        sender = self.messages[address][0]
        match = re.fullmatch(r"bounces\+([0-9a-f]+)@famfeeds\.example\.org", sender)
        assert match, sender
        return match.group(1)

    def statuses(self) -> dict[str, str]:
        with sqlite3.connect(self.state / "subscribers.sqlite3") as db:
            rows = db.execute(
                "SELECT key, status FROM subscribers WHERE show = ?", (SHOW,)
            ).fetchall()
        return dict(rows)

    def suppressed(self) -> dict[str, str]:
        return {a: s for a, s in self.statuses().items() if s != "confirmed"}


def famfeeds(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "famfeeds", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=clean_env(), cwd=cwd, check=False,
    )  # fmt: skip


def send(root: Path, url: str) -> subprocess.CompletedProcess[str]:
    return famfeeds("send", ISSUE, "--content", root / "content", "--smtp", url, "--now", NOW,
                    "--yes", "--connections", "4", cwd=root)  # fmt: skip


@pytest.fixture(scope="module")
def sent_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sent")
    shutil.copytree(SHIPPED_CONTENT, root / "content")
    shutil.copy(REPO / "famfeeds.lock", root / "famfeeds.lock")
    show_toml = root / "content" / "show.toml"
    show_toml.write_text(show_toml.read_text() + VERP)
    people = root / "people.csv"
    people.write_text("email\n" + "".join(f"{a}\n" for a in FANS))
    state = root / ".famfeeds-state"
    with SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key") as s:
        s.import_csv(SHOW, people, confirmed=True)
    faults = Faults()
    with serve(faults) as url:
        result = send(root, url)
    assert result.returncode == 0, result.stdout + result.stderr
    messages = {rcpts[0].lower(): (sender, content) for sender, rcpts, content in faults.messages}
    assert sorted(messages) == FANS
    (root / "relay.json").write_text(
        json.dumps({a: [s, c.decode("latin-1")] for a, (s, c) in messages.items()})
    )
    return root


@pytest.fixture
def sent(sent_once: Path, tmp_path: Path) -> Sent:
    """A private copy of the project that mailed FANS once."""
    root = tmp_path / "project"
    shutil.copytree(sent_once, root)
    data = json.loads((root / "relay.json").read_text())
    return Sent(root, {a: (s, c.encode("latin-1")) for a, (s, c) in data.items()})


# -- bounce messages --------------------------------------------------------------------------


def unkeyed(address: str) -> str:
    """The old VERP tag and Message-ID digest: anyone can compute it from the address."""
    return hashlib.sha256(address.encode()).hexdigest()[:20]


def other_key(address: str) -> str:
    """A tag of the right shape made with a key that is not the project's."""
    message = b"famfeeds-recipient\0" + SHOW.encode() + b"\0" + address.encode()
    return hmac.new(secrets.token_bytes(32), message, hashlib.sha256).hexdigest()[:20]


def forged_id(digest: str) -> str:
    return f"<{ISSUE}.{SHOW}.{digest}@{DOMAIN}>"


def dsn(
    recipients: list[str],
    *,
    to: str = f"bounces@{DOMAIN}",
    status: str = "5.1.1",
    original_id: str | None = None,
    serial: str = "",
) -> bytes:
    """An RFC 3464 report: one block per recipient, the original's headers if given."""
    original = (
        f"Message-ID: {original_id}\nFrom: For All Mankind weekly <news@{DOMAIN}>\n"
        if original_id
        else ""
    )
    return dsn_report(recipients, to=to, status=status, original=original, serial=serial)


def failure_notice(to: str) -> bytes:
    """A plain-text failure notice naming no recipient: only the VERP tag says whom."""
    return f"""\
From: MAILER-DAEMON@mx.example.com
To: {to}
Subject: failure notice
Message-ID: <notice-{secrets.token_hex(8)}@mx.example.com>

Sorry, we were unable to deliver your message.
550 5.1.1 mailbox unavailable
""".encode()


def arf(recipient: str, original_id: str | None = None) -> bytes:
    original = f"Message-ID: {original_id}\nTo: {recipient}\n" if original_id else ""
    return arf_report(recipient, to=f"abuse@{DOMAIN}", original=original)


def write_mbox(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in raws:
        box.add(BytesParser(policy=policy.default).parsebytes(raw))
    box.flush()
    box.close()
    return path


def write_maildir(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for raw in raws:
        box.add(raw)
    box.close()
    return path


def bounces(sent: Sent, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return famfeeds("bounces", *args, "--content", sent.root / "content", cwd=sent.root)


def report(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# -- item 6: only what matches a message famfeeds sent changes anything ------------------------


def test_a_report_naming_51_recipients_changes_only_the_one_it_matches(sent: Sent) -> None:
    box = write_mbox(sent.root / "many.mbox", [
        dsn(FANS),  # a stranger's report: no original, no tag
        dsn(FANS, original_id=sent.message_id("fan07@example.com")),  # returns fan07's copy
        dsn(FANS, to=f"bounces+{sent.tag('fan03@example.com')}@{DOMAIN}"),  # fan03's tag
    ])  # fmt: skip
    out = report(bounces(sent, "--mbox", box, "--json"))
    assert sent.suppressed() == {"fan03@example.com": "bounced", "fan07@example.com": "bounced"}
    counts = out["counts"]
    assert isinstance(counts, dict)
    assert counts["bounced"] == 2 and counts["unmatched"] == 49


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_forged_tags_and_message_ids_change_nothing(sent: Sent, kind: str) -> None:
    victims = FANS[10:16]
    forged = [
        failure_notice(f"bounces+{unkeyed(victims[0])}@{DOMAIN}"),  # the old, unkeyed tag
        failure_notice(f"bounces+{other_key(victims[1])}@{DOMAIN}"),  # another key
        failure_notice(f"bounces+{secrets.token_hex(10)}@{DOMAIN}"),  # any hex
        dsn([victims[2]], original_id=forged_id(unkeyed(victims[2]))),  # the old Message-ID
        dsn([victims[3]], original_id=forged_id(other_key(victims[3]))),
        dsn([victims[4]], to=f"bounces+{unkeyed(victims[4])}@{DOMAIN}"),
        # a genuine Message-ID, but of someone else's copy: not evidence against victims[5]
        dsn([victims[5]], original_id=sent.message_id(FANS[40])),
        arf(victims[5]),  # a complaint naming the address only
    ]
    genuine = [
        failure_notice(f"bounces+{sent.tag(FANS[20])}@{DOMAIN}"),
        arf(FANS[21], original_id=sent.message_id(FANS[21])),
    ]
    raws = forged + genuine
    path = sent.root / kind
    box = write_maildir(path, raws) if kind == "maildir" else write_mbox(path, raws)
    out = report(bounces(sent, f"--{kind}", box, "--json"))
    assert sent.suppressed() == {FANS[20]: "bounced", FANS[21]: "complained"}
    unmatched = out["unmatched"]
    assert isinstance(unmatched, list)
    assert {u["address"] for u in unmatched} >= {victims[2], victims[3], victims[5]}
    text = bounces(sent, f"--{kind}", box)  # read before: nothing new, still no change
    assert text.returncode == 0 and "Traceback" not in text.stderr
    assert sent.suppressed() == {FANS[20]: "bounced", FANS[21]: "complained"}


def test_unmatched_reports_apply_only_when_the_operator_says_so(sent: Sent) -> None:
    box = write_mbox(sent.root / "plain.mbox", [dsn([FANS[30], FANS[31]]), arf(FANS[32])])
    dry = bounces(sent, "--mbox", box)
    assert dry.returncode == 0, dry.stderr
    assert "unmatched" in dry.stdout and "--accept-unmatched" in dry.stdout
    assert sent.suppressed() == {}
    accepted = famfeeds("bounces", "--mbox", box, "--content", sent.root / "content",
                        "--accept-unmatched", cwd=sent.root)  # fmt: skip
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert sent.suppressed() == {
        FANS[30]: "bounced",
        FANS[31]: "bounced",
        FANS[32]: "complained",
    }


# -- item 7: parser edges ---------------------------------------------------------------------


def test_a_status_outside_the_rfc_3463_classes_is_ignored_and_said(sent: Sent) -> None:
    odd = ["9.9.9", "3.1.1", "1.0.0", "0.0.0", "6.1.1", "5.1.1000", "x.y.z"]
    raws = [
        dsn([FANS[i]], status=status, original_id=sent.message_id(FANS[i]))
        for i, status in enumerate(odd)
    ]
    raws.append(dsn([FANS[45]], status="5.1.1", original_id=sent.message_id(FANS[45])))
    box = write_mbox(sent.root / "odd.mbox", raws)
    result = bounces(sent, "--mbox", box)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert sent.suppressed() == {FANS[45]: "bounced"}
    for number, status in enumerate(odd, start=1):
        assert re.search(rf"message {number}\b.*{re.escape(status)}.*RFC 3463", result.stdout), (
            result.stdout
        )


def detector_crash(to: str) -> bytes:
    """A single-part notice without a From header: flufl.bounce's Yale detector raises."""
    return f"To: {to}\nSubject: failure notice\n\nThe message could not be delivered.\n".encode()


def test_a_detector_crash_is_reported_by_number_and_the_run_goes_on(sent: Sent) -> None:
    raws = [
        detector_crash(f"bounces@{DOMAIN}"),
        dsn([FANS[46]], original_id=sent.message_id(FANS[46])),
        detector_crash(f"bounces+{sent.tag(FANS[47])}@{DOMAIN}"),
        dsn([FANS[48]], original_id=sent.message_id(FANS[48])),
    ]
    box = write_mbox(sent.root / "crash.mbox", raws)
    result = bounces(sent, "--mbox", box)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Exception in detector" not in result.stderr
    assert re.search(r"message 1\b.*flufl", result.stdout + result.stderr)
    assert re.search(r"message 3\b.*flufl", result.stdout + result.stderr)
    assert sent.suppressed() == {FANS[46]: "bounced", FANS[48]: "bounced"}


# -- item 8: forget leaves no trace -----------------------------------------------------------


def state_files(state: Path) -> Iterator[Path]:
    return (p for p in sorted(state.rglob("*")) if p.is_file())


def traces(state: Path, address: str) -> dict[str, int]:
    """Copies of ``address`` (any case, ASCII or UTF-16) in every state file, by name."""
    needles = [address.encode(), address.encode("utf-16-le")]
    found: dict[str, int] = {}
    for path in state_files(state):
        data = path.read_bytes().lower()
        count = sum(data.count(n.lower()) for n in needles)
        if count:
            found[path.name] = count
    return found


def test_forget_leaves_no_copy_of_the_address_in_any_state_file(sent: Sent) -> None:
    target = FANS[50]
    # A soft bounce of the issue, recorded in the ledger with the address in its reason.
    box = write_mbox(sent.root / "soft.mbox", [
        dsn([target], status="4.2.2", original_id=sent.message_id(target)).replace(
            b"Status: 4.2.2\n", f"Status: 4.2.2\nDiagnostic-Code: smtp; 452 <{target}> full\n"
            .encode()),
    ])  # fmt: skip
    report(bounces(sent, "--mbox", box, "--json"))
    assert traces(sent.state, target), "the address should be in the state before forget"
    ledger = sent.state / "ledger.sqlite3"
    with sqlite3.connect(ledger) as db:
        (rows_before,) = db.execute("SELECT count(*) FROM deliveries").fetchone()
    forget = famfeeds("subscribers", "forget", target, "--content", sent.root / "content",
                      cwd=sent.root)  # fmt: skip
    assert forget.returncode == 0, forget.stdout + forget.stderr
    assert traces(sent.state, target) == {}
    secret = (sent.state / "secret.key").read_bytes()
    hashed = hmac.new(secret, SHOW.encode() + b"\0" + target.encode(), hashlib.sha256).hexdigest()
    with sqlite3.connect(ledger) as db:
        (rows_after,) = db.execute("SELECT count(*) FROM deliveries").fetchone()
        mine = db.execute(
            "SELECT state FROM deliveries WHERE recipient LIKE ?", (f"%{hashed}",)
        ).fetchall()
        soft = db.execute("SELECT count(*) FROM soft_bounces WHERE recipient = ?", (target,))
        assert soft.fetchone() == (0,)
    assert rows_after == rows_before and mine == [("sent",)]
    # The person signs up again and confirms: a rerun of the same issue still knows that
    # this address was mailed it, and does not mail it twice.
    with SubscriberStore.open(
        sent.state / "subscribers.sqlite3", secret=sent.state / "secret.key"
    ) as store:
        request = store.signup(SHOW, target, None, "192.0.2.1", timedelta(hours=1))
        assert request is not None
        assert store.confirm(SHOW, request.token, "192.0.2.1", timedelta(days=7)) == "confirmed"
    faults = Faults()
    with serve(faults) as url:
        again = send(sent.root, url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert faults.stored[target] == 0 and sum(faults.stored.values()) == 0
