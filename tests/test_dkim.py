"""DKIM signing: what a real send hands to a real SMTP server (aiosmtpd) verifies with dkimpy
and with SpamAssassin's DKIM rules, both reading the public key from a real DNS server (NSD)
on loopback; a copy altered after signing does not.

The DNS records here are made from the key files by the test itself (cryptography), or taken
from what `famfeeds dkim new` printed, never from famfeeds' own record code. SpamAssassin runs
with every network test but DNS off, and its DNS goes to the loopback server only. Debian 12's
Mail::DKIM (1.20230212) has no ed25519-sha256, so SpamAssassin judges the RSA mail; dkimpy
judges both key types.
"""

from __future__ import annotations

import base64
import email
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import dkim
import dns.resolver
import httpx
import pytest
from aiosmtpd.controller import Controller
from click.testing import Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from dnsserver import dns_server, resolver
from famfeeds.delivery.dkim import Signer
from support import SHOW_TOML, Project

SELECTOR = "ff2026"
DOMAIN = "famfeeds.example.org"
"""The shipped show's sender domain (news@famfeeds.example.org)."""
NOW = "2023-11-24T09:00"
"""The morning of the shipped season's issue of 2023-11-24 (it is out)."""
COVERED = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
}


class Recorder:
    """An SMTP server's handler that keeps each message exactly as it received it."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.changed:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
            self.changed.notify_all()
        return "250 2.0.0 queued"

    def wait_for(self, count: int, timeout: float = 20) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.messages)} of {count} messages arrived"
                self.changed.wait(left)
            return [content for _, content in self.messages]


def famfeeds(*args: object) -> list[str]:
    """The command line of a famfeeds process."""
    return [sys.executable, "-m", "famfeeds", *map(str, args)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, str]]:
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def write_key(path: Path, key_type: str, bits: int = 2048, mode: int = 0o600) -> Path:
    """A private key made by the test (not by famfeeds), as PEM."""
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=bits)
        if key_type == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(mode)
    return path


def dns_record(path: Path) -> str:
    """The DKIM TXT value for a key file, as RFC 6376 / RFC 8463 define it."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    assert isinstance(key, rsa.RSAPrivateKey)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def txt(value: str) -> str:
    """A TXT record's data in zone file syntax: strings of at most 255 characters."""
    return "( " + " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255)) + " )"


def enable(project: Project, key: str, domain: str = DOMAIN) -> None:
    """Turn signing on in the project's show.toml."""
    path = project.content / "show.toml"
    line = f'dkim = {{ selector = "{SELECTOR}", domain = "{domain}", key = "{key}" }}'
    text = path.read_text(encoding="utf-8")
    assert "[newsletter]\n" in text
    path.write_text(text.replace("[newsletter]\n", f"[newsletter]\n{line}\n", 1), encoding="utf-8")


def lookup(host: str, port: int) -> Callable[..., bytes | None]:
    """dkimpy's ``dnsfunc``: the TXT record at a name, from the loopback server only."""
    ask = resolver(host, port)

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = ask.resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        (record,) = list(answer)
        return b"".join(record.strings)

    return dnsfunc


def spamassassin(message: bytes, host: str, port: int, home: Path) -> set[str]:
    """The rules SpamAssassin's ``-t`` report says hit: its DNS is the loopback server,
    and every other network test (block lists, URI lists, Razor, Pyzor, DCC) is off."""
    home.mkdir(parents=True, exist_ok=True)
    settings = [
        f"dns_server {host}:{port}",
        "dns_available yes",
        "skip_rbl_checks 1",
        "skip_uribl_checks 1",
        "use_razor2 0",
        "use_pyzor 0",
        "use_dcc 0",
        "use_bayes 0",
    ]
    done = subprocess.run(
        ["spamassassin", "-t", f"--prefspath={home / 'user_prefs'}"]
        + [f"--cf={line}" for line in settings],
        input=message,
        capture_output=True,
        check=False,
        env={**os.environ, "HOME": str(home)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    report = email.message_from_bytes(done.stdout, policy=policy.default)
    status = str(report["X-Spam-Status"])
    found = re.search(r"tests=(\S*)", re.sub(r",\s+", ",", status))
    assert found, status
    return set(found.group(1).split(","))


def signature_tags(message: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(message, policy=policy.compat32)
    (header,) = parsed.get_all("DKIM-Signature")
    value = "".join(str(header).split())
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def send(run: Callable[..., Result], project: Project, url: str, *extra: str) -> Result:
    csv = project.root / "subscribers.csv"
    rows = [f"fan{i}@example.com,Fan {i}" for i in range(3)]
    csv.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    args = ["send", "2023-11-24", "--content", project.content, "--smtp", url, "--now", NOW]
    if "--test-to" not in extra:
        args += ["--subscribers", csv]
    return run(*args, *extra)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every message famfeeds signed in this test, as the signer returned it."""
    signed: list[bytes] = []
    original = Signer.sign

    def sign(self: Signer, message: bytes) -> bytes:
        result = original(self, message)
        signed.append(result)
        return result

    monkeypatch.setattr(Signer, "sign", sign)
    return signed


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_every_message_of_a_send_verifies_against_the_dns(
    key_type: str,
    shipped: Project,
    smtp: tuple[Recorder, str],
    run: Callable[..., Result],
    recorded: list[bytes],
    tmp_path: Path,
) -> None:
    handler, url = smtp
    key = write_key(shipped.root / "keys" / "dkim.pem", key_type)
    enable(shipped, "keys/dkim.pem")
    result = send(run, shipped, url, "--yes")
    assert result.exit_code == 0, result.output
    received = handler.wait_for(3)
    assert len(received) == 3
    # Byte for byte what was signed: the SMTP hand-over (dot-stuffing, line ends) and the
    # server changed nothing.
    assert all(message in recorded for message in received)  # (and the key's probe)
    zone = {f"{DOMAIN}.": f"{SELECTOR}._domainkey IN TXT {txt(dns_record(key))}\n"}
    with dns_server(tmp_path / "dns", zone) as (host, port):
        for message in received:
            assert b"\n" not in message.replace(b"\r\n", b"")  # CRLF only
            assert b"\r\n." in message  # lines the SMTP hand-over dot-stuffed (CSS rules)
            tags = signature_tags(message)
            assert tags["d"] == DOMAIN and tags["s"] == SELECTOR
            assert tags["a"] == {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}[key_type]
            assert tags["c"] == "relaxed/relaxed" and "l" not in tags
            assert set(tags["h"].lower().split(":")) >= COVERED
            assert dkim.verify(message, dnsfunc=lookup(host, port))
        if key_type == "rsa":
            hits = spamassassin(received[0], host, port, tmp_path / "sa")
            assert {"DKIM_SIGNED", "DKIM_VALID", "DKIM_VALID_AU"} <= hits, hits


def test_a_message_altered_after_signing_fails(
    shipped: Project, smtp: tuple[Recorder, str], run: Callable[..., Result], tmp_path: Path
) -> None:
    handler, url = smtp
    key = write_key(shipped.root / "dkim.pem", "rsa")
    enable(shipped, "dkim.pem")
    assert send(run, shipped, url, "--yes").exit_code == 0
    message = handler.wait_for(3)[0]
    (unsubscribe,) = re.findall(rb"List-Unsubscribe: <https://[^>]+>", message)
    changed = message.replace(unsubscribe, unsubscribe.replace(b"token=", b"token=x"))
    assert changed != message
    added = message.replace(
        b"\r\nList-Unsubscribe:",
        b"\r\nList-Unsubscribe: <https://evil.example/u>\r\nList-Unsubscribe:",
        1,
    )
    zone = {f"{DOMAIN}.": f"{SELECTOR}._domainkey IN TXT {txt(dns_record(key))}\n"}
    with dns_server(tmp_path / "dns", zone) as (host, port):
        dnsfunc = lookup(host, port)
        assert dkim.verify(message, dnsfunc=dnsfunc)
        assert not dkim.verify(changed, dnsfunc=dnsfunc)
        assert not dkim.verify(added, dnsfunc=dnsfunc)  # the header is signed once more
        hits = spamassassin(changed, host, port, tmp_path / "sa")
        assert "DKIM_SIGNED" in hits and not hits & {"DKIM_VALID", "DKIM_VALID_AU"}, hits


def test_a_test_copy_is_signed_and_a_dry_run_proves_the_key(
    shipped: Project,
    smtp: tuple[Recorder, str],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    handler, url = smtp
    key = write_key(shipped.root / "dkim.pem", "ed25519")
    enable(shipped, "dkim.pem")
    dry = send(run, shipped, url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"DKIM-signed for {DOMAIN} (selector {SELECTOR}, ed25519" in dry.output
    assert f"{SELECTOR}._domainkey.{DOMAIN}" in dry.output
    assert handler.messages == []
    proof = send(run, shipped, url, "--test-to", "editor@example.com")
    assert proof.exit_code == 0, proof.output
    (message,) = handler.wait_for(1)
    zone = {f"{DOMAIN}.": f"{SELECTOR}._domainkey IN TXT {txt(dns_record(key))}\n"}
    with dns_server(tmp_path / "dns", zone) as (host, port):
        assert dkim.verify(message, dnsfunc=lookup(host, port))


def garbage(path: Path) -> None:
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)


def encrypted(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    path.chmod(0o600)


BAD_KEYS: dict[str, tuple[Callable[[Path], object], str]] = {
    "readable by others": (
        lambda p: write_key(p, "rsa", mode=0o644),
        "can be read by others (mode 0644)",
    ),
    "not a key": (garbage, "is not a private key"),
    "1024-bit RSA": (lambda p: write_key(p, "rsa", bits=1024), "is a 1024-bit RSA key"),
    "a passphrase": (encrypted, "is protected by a passphrase"),
    "missing": (lambda p: None, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_a_bad_key_stops_the_send_before_anything_is_sent(
    case: str, shipped: Project, smtp: tuple[Recorder, str], run: Callable[..., Result]
) -> None:
    """A real send (a process of its own, as a user runs it), a dry run and a test copy."""
    handler, url = smtp
    make, expected = BAD_KEYS[case]
    path = shipped.root / "private" / "dkim.pem"
    path.parent.mkdir()
    make(path)
    enable(shipped, "private/dkim.pem")
    secret = path.read_bytes().splitlines()[1].decode() if path.exists() else "\0"
    csv = shipped.root / "subscribers.csv"
    csv.write_text("email\nfan@example.com\n", encoding="utf-8")
    common = ["--now", NOW, "--subscribers", csv, "--content", shipped.content, "--smtp", url]
    done = subprocess.run(
        famfeeds("send", "2023-11-24", *common, "--yes"),
        capture_output=True,
        cwd=shipped.root,
        check=False,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the DKIM key private/dkim.pem {expected}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr and secret not in done.stderr
    if case == "readable by others":
        assert "Run: chmod 600 private/dkim.pem" in done.stderr
    for extra in (["--dry-run"], ["--test-to", "editor@example.com"]):
        result = run("send", "2023-11-24", *common, *extra)
        assert result.exit_code == 1, result.output
        assert expected in result.output and secret not in result.output
    assert handler.messages == []


def test_a_dkim_domain_the_from_address_is_not_under_is_refused(
    shipped: Project, run: Callable[..., Result]
) -> None:
    write_key(shipped.root / "dkim.pem", "rsa")
    enable(shipped, "dkim.pem", domain="other.example")
    result = run("check", "--content", shipped.content)
    assert result.exit_code == 1
    assert "dkim.domain 'other.example' does not match sender_address's domain" in result.output
    assert f"Set dkim.domain = '{DOMAIN}'" in result.output


def test_dkim_new_prints_a_record_that_verifies_its_mail(
    shipped: Project,
    smtp: tuple[Recorder, str],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    handler, url = smtp
    made = run(
        "dkim", "new", "--selector", SELECTOR, "--domain", DOMAIN, "--content", shipped.content
    )
    assert made.exit_code == 0, made.output
    key = shipped.root / ".famfeeds-state" / "dkim" / f"{SELECTOR}.{DOMAIN}.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    body = b"".join(key.read_bytes().splitlines()[1:-1]).decode()
    assert body[:40] not in made.output and body[-40:] not in made.output
    (zone_line,) = [line.strip() for line in made.output.splitlines() if " IN TXT " in line]
    name, _, data = zone_line.partition(" 3600 IN TXT ")
    assert name == f"{SELECTOR}._domainkey.{DOMAIN}."
    strings = re.findall(r'"([^"]*)"', data)
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == dns_record(key)  # the record of the key it wrote
    (line,) = [
        line.strip() for line in made.output.splitlines() if line.strip().startswith("dkim = ")
    ]
    path = shipped.content / "show.toml"
    text = path.read_text(encoding="utf-8").replace("[newsletter]\n", f"[newsletter]\n{line}\n", 1)
    path.write_text(text, encoding="utf-8")
    assert send(run, shipped, url, "--yes").exit_code == 0
    with dns_server(tmp_path / "dns", {f"{DOMAIN}.": zone_line + "\n"}) as (host, port):
        for message in handler.wait_for(3):
            assert dkim.verify(message, dnsfunc=lookup(host, port))
        hits = spamassassin(handler.messages[0][1], host, port, tmp_path / "sa")
        assert {"DKIM_VALID", "DKIM_VALID_AU"} <= hits, hits
    again = run(
        "dkim", "new", "--selector", SELECTOR, "--domain", DOMAIN, "--content", shipped.content
    )
    assert again.exit_code == 1 and "never overwrites a key" in again.output
    assert "".join(strings) == dns_record(key)


def test_dkim_new_refuses_names_that_are_not_dns_names(run: Callable[..., Result]) -> None:
    bad = run("dkim", "new", "--selector", "ff 2026", "--domain", DOMAIN)
    assert bad.exit_code == 2 and "'ff 2026' is not a DKIM selector" in bad.output
    bad = run("dkim", "new", "--selector", SELECTOR, "--domain", "localhost")
    assert bad.exit_code == 2 and "'localhost' is not a domain" in bad.output


def test_the_confirmation_mail_of_the_subscriptions_service_verifies(
    tmp_path: Path, smtp: tuple[Recorder, str]
) -> None:
    """The sign-up confirmation, signed by the parent domain of the From address (relaxed
    alignment, as DMARC allows)."""
    handler, url = smtp
    port = free_port()
    project = Project(tmp_path / "site")
    project.write(
        "show.toml",
        SHOW_TOML.format(timezone="UTC")
        + "\n[newsletter]\n"
        + 'sender_name = "Test weekly"\nsender_address = "news@shows.example.net"\n'
        + f'service_url = "http://127.0.0.1:{port}"\n'
        + f'dkim = {{ selector = "{SELECTOR}", domain = "example.net", key = "dkim.pem" }}\n',
    )
    project.season()
    key = write_key(project.root / "dkim.pem", "rsa")
    process = subprocess.Popen(
        famfeeds("subscriptions", "--content", project.content, "--smtp", url, "--port", port),
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/subscribe", data={"email": "ann@example.org"}
                )
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert answer.status_code == 200
        (message,) = handler.wait_for(1)
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert "Traceback" not in output
    tags = signature_tags(message)
    assert tags["d"] == "example.net" and set(tags["h"].split(":")) >= COVERED
    zone = {"example.net.": f"{SELECTOR}._domainkey IN TXT {txt(dns_record(key))}\n"}
    with dns_server(tmp_path / "dns", zone) as (host, port):
        assert dkim.verify(message, dnsfunc=lookup(host, port))
        assert "DKIM_VALID" in spamassassin(message, host, port, tmp_path / "sa")


def test_the_service_does_not_start_with_a_bad_key(
    tmp_path: Path, smtp: tuple[Recorder, str]
) -> None:
    _, url = smtp
    project = Project(tmp_path / "site")
    project.write(
        "show.toml",
        SHOW_TOML.format(timezone="UTC")
        + '\n[newsletter]\nsender_name = "T"\nsender_address = "news@example.net"\n'
        + 'service_url = "http://127.0.0.1:9"\n'
        + f'dkim = {{ selector = "{SELECTOR}", domain = "example.net", key = "dkim.pem" }}\n',
    )
    project.season()
    write_key(project.root / "dkim.pem", "rsa", mode=0o640)
    done = subprocess.run(
        famfeeds(
            "subscriptions", "--content", project.content, "--smtp", url, "--port", free_port()
        ),
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "dkim.pem can be read by others (mode 0640)" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_dkim_new_ed25519_to_a_chosen_file_signs_a_test_copy(
    shipped: Project,
    smtp: tuple[Recorder, str],
    run: Callable[..., Result],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    handler, url = smtp
    out = tmp_path_factory.mktemp("keys") / "new" / "ed.pem"  # outside the project
    made = run(
        "dkim", "new", "--selector", SELECTOR, "--domain", DOMAIN, "--type", "ed25519",
        "--out", out, "--content", shipped.content,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert out.stat().st_mode & 0o777 == 0o600 and out.parent.stat().st_mode & 0o777 == 0o700
    (zone_line,) = [line.strip() for line in made.output.splitlines() if " IN TXT " in line]
    assert zone_line.endswith(f'( "{dns_record(out)}" )')  # one string: short enough
    (line,) = [line.strip() for line in made.output.splitlines() if line.strip().startswith("dkim")]
    assert f'key = "{out}"' in line  # outside the project: the absolute path
    path = shipped.content / "show.toml"
    text = path.read_text(encoding="utf-8").replace("[newsletter]\n", f"[newsletter]\n{line}\n", 1)
    path.write_text(text, encoding="utf-8")
    assert send(run, shipped, url, "--test-to", "editor@example.com").exit_code == 0
    (message,) = handler.wait_for(1)
    assert signature_tags(message)["a"] == "ed25519-sha256"
    with dns_server(tmp_path / "dns", {f"{DOMAIN}.": zone_line + "\n"}) as (host, port):
        assert dkim.verify(message, dnsfunc=lookup(host, port))


def test_selector_and_domain_are_read_as_dns_names() -> None:
    from pydantic import ValidationError

    from famfeeds.records.models import Dkim, Newsletter

    setting = Dkim(selector="FF2026.News", domain="Bücher.Example.", key="k.pem")
    assert (setting.selector, setting.domain) == ("ff2026.news", "xn--bcher-kva.example")
    sender = {"sender_name": "N", "unsubscribe_url": "https://x.example/u?t={token}"}
    Newsletter(**sender, sender_address="news@lists.bücher.example", dkim=setting)
    with pytest.raises(ValidationError, match="does not match sender_address's domain"):
        Newsletter(**sender, sender_address="news@notbücher.example", dkim=setting)
    for selector in ("", "-ff", "ff_2026!", "a" * 64):
        with pytest.raises(ValidationError, match="is not a DKIM selector"):
            Dkim(selector=selector, domain="example.org", key="k.pem")
    with pytest.raises(ValidationError, match="path of the private key file"):
        Dkim(selector="s", domain="example.org", key="")


def test_an_rsa_and_an_ed25519_key_both_sign_rsa_on_top(
    shipped: Project,
    smtp: tuple[Recorder, str],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    """dkim as a list of two tables (the Ed25519 one first in show.toml): every message
    carries two signatures, the RSA one first, and each verifies against the DNS."""
    handler, url = smtp
    ed = write_key(shipped.root / "keys" / "ed.pem", "ed25519")
    rsa_key = write_key(shipped.root / "keys" / "rsa.pem", "rsa")
    path = shipped.content / "show.toml"
    both = (
        f'dkim = [{{ selector = "ed", domain = "{DOMAIN}", key = "keys/ed.pem" }}, '
        f'{{ selector = "{SELECTOR}", domain = "{DOMAIN}", key = "keys/rsa.pem" }}]'
    )
    text = path.read_text(encoding="utf-8").replace("[newsletter]\n", f"[newsletter]\n{both}\n", 1)
    path.write_text(text, encoding="utf-8")
    dry = send(run, shipped, url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"selector {SELECTOR}, rsa 2048 bits" in dry.output
    assert "selector ed, ed25519" in dry.output
    assert send(run, shipped, url, "--yes").exit_code == 0
    received = handler.wait_for(3)
    zone = (
        f"{SELECTOR}._domainkey IN TXT {txt(dns_record(rsa_key))}\n"
        f"ed._domainkey IN TXT {txt(dns_record(ed))}\n"
    )
    with dns_server(tmp_path / "dns", {f"{DOMAIN}.": zone}) as (host, port):
        for message in received:
            parsed = email.message_from_bytes(message, policy=policy.compat32)
            headers = ["".join(str(h).split()) for h in parsed.get_all("DKIM-Signature")]
            assert len(headers) == 2
            assert "a=rsa-sha256" in headers[0] and "a=ed25519-sha256" in headers[1]
            assert message.startswith(b"DKIM-Signature:")
            verifier = dkim.DKIM(message)
            assert verifier.verify(idx=0, dnsfunc=lookup(host, port))
            assert verifier.domain == DOMAIN.encode() and verifier.selector == SELECTOR.encode()
            assert dkim.DKIM(message).verify(idx=1, dnsfunc=lookup(host, port))
        hits = spamassassin(received[0], host, port, tmp_path / "sa")
        assert {"DKIM_SIGNED", "DKIM_VALID", "DKIM_VALID_AU"} <= hits, hits


def test_dkim_new_ed25519_says_to_keep_an_rsa_key(
    shipped: Project, run: Callable[..., Result], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("keys") / "ed.pem"
    made = run(
        "dkim", "new", "--selector", "ed", "--domain", DOMAIN, "--type", "ed25519",
        "--out", out, "--content", shipped.content,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "Keep an RSA key beside this Ed25519 one" in " ".join(made.output.split())
    rsa_made = run(
        "dkim", "new", "--selector", "rs", "--domain", DOMAIN,
        "--out", out.with_name("rsa.pem"), "--content", shipped.content,
    )  # fmt: skip
    assert "Keep an RSA key" not in rsa_made.output


def test_two_keys_under_one_selector_are_refused() -> None:
    from pydantic import ValidationError

    from famfeeds.records.models import Newsletter

    sender = {"sender_name": "N", "unsubscribe_url": "https://x.example/u?t={token}"}
    one = {"selector": "s", "domain": "example.org", "key": "a.pem"}
    single = Newsletter(**sender, sender_address="n@example.org", dkim=one)
    assert [key.selector for key in single.dkim] == ["s"]
    with pytest.raises(ValidationError, match="two dkim keys use selector 's'"):
        Newsletter(**sender, sender_address="n@example.org", dkim=[one, {**one, "key": "b.pem"}])


def test_headers_a_message_lacks_are_signed_as_absent(tmp_path: Path) -> None:
    """h= lists Reply-To, Cc, Sender, In-Reply-To, References, MIME-Version and
    Content-Type once more than the message has them: adding any of them breaks the
    signature."""
    from famfeeds.delivery.dkim import Signer, load_signer
    from famfeeds.records.models import Dkim

    key = write_key(tmp_path / "k.pem", "rsa")
    signer = Signer.of([load_signer(Dkim(selector=SELECTOR, domain=DOMAIN, key="k.pem"), tmp_path)])
    message = (
        f"From: news@{DOMAIN}\r\nTo: fan@example.com\r\nSubject: Hi\r\n"
        f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@{DOMAIN}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
    ).encode()
    signed = signer.sign(message)
    listed = signature_tags(signed)["h"].lower().split(":")
    for name, count in [
        ("reply-to", 1), ("cc", 1), ("sender", 1), ("in-reply-to", 1), ("references", 1),
        ("mime-version", 2), ("content-type", 2),
    ]:  # fmt: skip
        assert listed.count(name) == count, (name, listed)
    zone = {f"{DOMAIN}.": f"{SELECTOR}._domainkey IN TXT {txt(dns_record(key))}\n"}
    with dns_server(tmp_path / "dns", zone) as (host, port):
        assert dkim.verify(signed, dnsfunc=lookup(host, port))
        head, _, body = signed.partition(b"\r\n\r\n")
        for added in (b"Cc: evil@example.com", b"Sender: evil@example.com",
                      b"References: <x@example.com>", b"Content-Type: text/html"):  # fmt: skip
            assert not dkim.verify(head + b"\r\n" + added + b"\r\n\r\n" + body,
                                   dnsfunc=lookup(host, port)), added  # fmt: skip
