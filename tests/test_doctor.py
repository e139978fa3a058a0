"""`famfeeds doctor` and the pre-send check of `famfeeds send`, against real servers on
loopback: NSD serving a good zone and one zone per fault (tests/dnsserver.py), the real
subscriptions service (uvicorn) behind an https front, aiosmtpd with and without STARTTLS.
Certificates come from a throwaway CA (trustme) that the process trusts through
SSL_CERT_FILE."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from click.testing import Result

from dnsserver import dns_server, resolver
from famfeeds.delivery.dkim import txt_strings
from famfeeds.delivery.doctor import DOCTOR_FILE, examine
from famfeeds.records.models import Dkim
from support import SHOW_TOML, Project
from test_dkim import dns_record, write_key
from test_service import make_project, start_service

SELECTOR = "ff2026"
RELAY = "192.0.2.10"
RELAY_SPF = f'["ip4:{RELAY}", "include:_spf.relay.test"]'


def quoted(value: str) -> str:
    """A TXT value as zone file strings (each at most 255 bytes)."""
    return "( " + " ".join(f'"{part}"' for part in txt_strings(value)) + " )"


def good_zone(
    domain: str, dkim: str, *, ed: str = "", drop: str = "", spf: str = "", extra: str = ""
) -> str:
    """A zone where every line passes; ``drop`` leaves out the lines of one kind (spf, mx,
    dkim, dmarc), ``spf`` replaces the SPF record. The SPF record needs exactly 10 DNS
    look-ups: the include and nine a: mechanisms. ``ed`` is an Ed25519 key's record, at
    selector ``ed``."""
    hosts = " ".join(f"a:h{n}.{domain}" for n in range(1, 10))
    lines = {
        "spf": f'@ TXT "{spf or f"v=spf1 ip4:{RELAY} include:_spf.relay.test {hosts} -all"}"',
        "mx": "@ MX 10 mx\nmx A 192.0.2.25",
        "dkim": f"{SELECTOR}._domainkey TXT {dkim}",
        "ed": f"ed._domainkey TXT {ed}" if ed else "",
        "dmarc": f'_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"',
    }
    hosts_a = "\n".join(f"h{n} A 198.51.100.{n}" for n in range(1, 12))
    return "\n".join(v for k, v in lines.items() if k != drop) + f"\n{hosts_a}\n{extra}\n"


@dataclass
class Keys:
    own: Path
    record: str
    other_record: str
    ed: Path
    ed_record: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Keys made by the test (cryptography), their records built as RFC 6376 and RFC 8463
    define them (test_dkim's dns_record), not by famfeeds."""
    folder = tmp_path_factory.mktemp("keys")
    own, other, ed = (write_key(folder / name, kind) for name, kind in KEY_FILES)
    return Keys(own, dns_record(own), dns_record(other), ed, dns_record(ed))


KEY_FILES = (("own.pem", "rsa"), ("other.pem", "rsa"), ("ed.pem", "ed25519"))


CASES: dict[str, dict[str, str]] = {
    "good": {"extra": f'mail TXT "v=spf1 ip4:{RELAY} include:_spf.relay.test -all"\nmail MX 10 mx'},
    "nospf": {"drop": "spf"},
    "twospf": {"extra": '@ TXT "v=spf1 ip4:203.0.113.9 -all"'},
    "lookups": {
        "spf": f"v=spf1 ip4:{RELAY} include:_spf.relay.test "
        + " ".join(f"a:h{n}.lookups.test" for n in range(1, 11))
        + " -all"
    },
    "norelay": {"spf": "v=spf1 ip4:198.51.100.7 mx -all"},
    "nodkim": {"drop": "dkim"},
    "otherkey": {},
    "nodmarc": {"drop": "dmarc"},
    "nomx": {"drop": "mx"},
    "unaligned": {"drop": "dkim"},
    "qualified": {"spf": f"v=spf1 ip4:{RELAY} ~include:_spf.relay.test -all"},
    "deadinclude": {"spf": f"v=spf1 ip4:{RELAY} -all include:_spf.relay.test"},
    "cidr": {"spf": "v=spf1 ip4:192.0.2.0/25 include:_spf.relay.test -all"},
    "plusall": {"spf": "v=spf1 +all"},
    "queryall": {"spf": f"v=spf1 ip4:{RELAY} include:_spf.relay.test ?all"},
    "noall": {"spf": f"v=spf1 ip4:{RELAY} include:_spf.relay.test"},
    "submit": {"extra": "smtp A 44.0.0.1"},
    "subpolicy": {"extra": '_dmarc TXT "v=DMARC1; p=reject; sp=none"', "drop": "dmarc"},
    "duptag": {},
    "testing": {},
}
"""Each zone (<name>.test) and how it differs from the good one."""


@pytest.fixture(scope="module")
def nameserver(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[str]:
    own = quoted(keys.record)
    records = {
        "otherkey": quoted(keys.other_record),
        # Right key, tags that look valid one by one; dkimpy refuses a repeated tag.
        "duptag": quoted(keys.record + "; k=rsa"),
        "testing": quoted(keys.record.replace("v=DKIM1;", "v=DKIM1; t=y;")),
    }
    zones = {
        f"{name}.test.": good_zone(
            f"{name}.test",
            records.get(name, own),
            ed=quoted(keys.ed_record),
            **how,
        )
        for name, how in CASES.items()
    }
    zones["relay.test."] = '_spf TXT "v=spf1 ip4:198.51.100.0/24 -all"\n'
    relay_key = quoted(keys.other_record)
    zones["foreign.test."] = good_zone("foreign.test", own, extra=f"s1._domainkey TXT {relay_key}")
    with dns_server(tmp_path_factory.mktemp("dns"), zones) as (host, port):
        yield f"{host}:{port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[trustme.CA, Path]]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    yield authority, path


@pytest.fixture(autouse=True)
def trust(ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every TLS client in this process (doctor's probes, send's STARTTLS) trusts the CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca[1]))
    monkeypatch.delenv("FAMFEEDS_NAMESERVER", raising=False)


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


class TlsFront:
    """An https front on loopback that pipes each connection to a plain HTTP port, as a
    reverse proxy in front of famfeeds subscriptions does."""

    def __init__(self, context: ssl.SSLContext, backend: int) -> None:
        self.backend = backend
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            back_reader, back_writer = await asyncio.open_connection("127.0.0.1", self.backend)
            await asyncio.gather(pipe(reader, back_writer), pipe(back_reader, writer))

        async def serve() -> None:
            self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, ssl=context)
            ready.set()

        def main() -> None:
            self.loop.run_until_complete(serve())
            self.loop.run_forever()
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Sink:
    def __init__(self) -> None:
        self.received: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(list(envelope.rcpt_tos))
        return "250 OK"


@dataclass
class Service:
    url: str
    """The https URL of the front."""
    plain: str
    """The service's own http URL."""
    store: Path


@pytest.fixture(scope="module")
def relay(ca: tuple[trustme.CA, Path]) -> Iterator[tuple[Sink, int]]:
    """aiosmtpd offering STARTTLS with a certificate for 127.0.0.1."""
    sink = Sink()
    controller = Controller(
        sink, hostname="127.0.0.1", port=free_port(), tls_context=server_context(ca[0])
    )
    controller.start()
    yield sink, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    ca: tuple[trustme.CA, Path],
    relay: tuple[Sink, int],
) -> Iterator[Service]:
    port = free_port()
    site = make_project(tmp_path_factory.mktemp("site"), f"http://127.0.0.1:{port}")
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    running = start_service(site.content, controller, "--port", str(port))
    front = TlsFront(server_context(ca[0]), port)
    yield Service(f"https://127.0.0.1:{front.port}/", running.url, running.store)
    front.stop()
    running.stop()
    controller.stop()
    assert "Traceback" not in "".join(running.lines), "".join(running.lines)


def doctor_project(
    root: Path,
    name: str,
    keys: Keys,
    service: Service,
    smtp_port: int,
    **settings: str,
) -> Project:
    """A project sending from news@<name>.test, signing with the module's key."""
    project = Project(root / name)
    domain = f"{name}.test"
    values = {
        "sender_name": '"Test weekly"',
        "sender_address": f'"news@{domain}"',
        "service_url": f'"{service.url}"',
        "smtp_url": f'"smtp://127.0.0.1:{smtp_port}"',
        "relay_spf": RELAY_SPF,
        "dkim": f'{{ selector = "{SELECTOR}", domain = "{domain}", key = "{keys.own}" }}',
        **settings,
    }
    newsletter = "".join(f"{k} = {v}\n" for k, v in values.items() if v)
    project.write("show.toml", SHOW_TOML.format(timezone="UTC") + "\n[newsletter]\n" + newsletter)
    project.season()
    return project


def doctor(run: Callable[..., Result], project: Project, nameserver: str, *extra: str) -> Any:
    result = run(
        "doctor", "--content", project.content, "--nameserver", nameserver, "--json", *extra
    )
    report = json.loads(result.stdout)
    assert result.exit_code == report["exit_code"] == (1 if report["counts"]["fail"] else 0)
    return report


def lines(report: Any, status: str) -> list[tuple[str, str]]:
    return [(x["check"], x["subject"]) for x in report["lines"] if x["status"] == status]


def line(report: Any, check: str) -> dict[str, str]:
    (found,) = [x for x in report["lines"] if x["check"] == check]
    return found  # type: ignore[no-any-return]


@pytest.fixture
def setup(
    tmp_path: Path,
    keys: Keys,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
) -> Callable[..., Any]:
    """Run `famfeeds doctor --json` for the project of a zone."""

    def check(name: str, **settings: str) -> Any:
        project = doctor_project(tmp_path, name, keys, service, relay[1], **settings)
        return doctor(run, project, nameserver)

    return check


EVERY_CHECK = [
    "spf", "spf_lookups", "spf_relay", "dkim", "dmarc", "dmarc_alignment", "mx",
    "unsubscribe_https", "one_click", "tls",
]  # fmt: skip


def test_the_good_domain_passes_every_line(setup: Callable[..., Any], service: Service) -> None:
    before = store_rows(service.store)
    report = setup("good")
    assert [x["check"] for x in report["lines"]] == EVERY_CHECK
    assert lines(report, "pass") == [(x["check"], x["subject"]) for x in report["lines"]]
    assert all(x["fix"] == "" for x in report["lines"])
    assert line(report, "spf_lookups")["found"] == "10 of at most 10 DNS look-ups"
    assert "ip4:192.0.2.10, include:_spf.relay.test" in line(report, "spf_relay")["found"]
    assert line(report, "dkim")["subject"] == f"{SELECTOR}._domainkey.good.test"
    assert line(report, "dmarc")["found"] == "p=quarantine"
    assert "STARTTLS" in line(report, "tls")["found"]
    assert "subscriptions service answered" in line(report, "one_click")["found"]
    assert store_rows(service.store) == before  # the one-click probe changed nothing


def store_rows(path: Path) -> list[tuple[Any, ...]]:
    """Everything the service's store holds (read-only)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [(t, *row) for t in sorted(tables) for row in db.execute(f"SELECT * FROM {t}")]


@pytest.mark.parametrize(
    ("zone", "check", "subject", "found", "fix"),
    [
        (
            "nospf",
            "spf",
            "nospf.test",
            "no SPF record",
            'publish a TXT record at nospf.test: "v=spf1 ip4:192.0.2.10 '
            'include:_spf.relay.test -all"',
        ),
        ("twospf", "spf", "twospf.test", "2 SPF records", "merge them into one TXT record"),
        ("lookups", "spf_lookups", "lookups.test", "more than 10 DNS look-ups", "flatten"),
        (
            "norelay",
            "spf_relay",
            "norelay.test",
            "does not authorise ip4:192.0.2.10, include:_spf.relay.test",
            "add ip4:192.0.2.10 include:_spf.relay.test to the TXT record at norelay.test",
        ),
        ("nodkim", "dkim", "ff2026._domainkey.nodkim.test", "no DKIM record", "{record}"),
        ("otherkey", "dkim", "ff2026._domainkey.otherkey.test", "another key", "{record}"),
        (
            "nodmarc",
            "dmarc",
            "_dmarc.nodmarc.test",
            "no DMARC record",
            'publish a TXT record at _dmarc.nodmarc.test: "v=DMARC1; p=none',
        ),
        ("nomx", "mx", "nomx.test", "no MX and no address record", "publish an MX record"),
    ],
)
def test_each_broken_zone_fails_its_line_with_the_fix(
    setup: Callable[..., Any],
    keys: Keys,
    zone: str,
    check: str,
    subject: str,
    found: str,
    fix: str,
) -> None:
    report = setup(zone)
    assert lines(report, "fail") == [(check, subject)]
    (failed,) = [x for x in report["lines"] if x["status"] == "fail"]
    assert found in failed["found"]
    assert fix.replace("{record}", keys.record) in failed["fix"]
    assert {x["check"] for x in report["lines"]} >= {"one_click", "tls", check}


def test_dmarc_not_aligned_with_spf_or_dkim(setup: Callable[..., Any]) -> None:
    """From unaligned.test, bounces to foreign.test and the relay's key under foreign.test:
    both pass for themselves, neither counts for DMARC."""
    report = setup(
        "unaligned",
        dkim="",
        bounce_address='"bounces@foreign.test"',
        relay_dkim='[{ selector = "s1", domain = "foreign.test" }]',
    )
    assert lines(report, "fail") == [("dmarc_alignment", "unaligned.test")]
    assert ("spf_relay", "foreign.test") in lines(report, "pass")
    assert ("dkim", "s1._domainkey.foreign.test") in lines(report, "pass")
    assert ("mx", "foreign.test") in lines(report, "pass")
    failed = line(report, "dmarc_alignment")
    assert "foreign.test is not aligned" in failed["found"]
    assert "sign with DKIM under d=unaligned.test" in failed["fix"]


def test_no_dkim_key_at_all_fails_and_spf_alone_aligns(setup: Callable[..., Any]) -> None:
    report = setup("good", dkim="")
    assert lines(report, "fail") == [("dkim", "*._domainkey.good.test")]
    assert "famfeeds dkim new" in line(report, "dkim")["fix"]
    assert line(report, "dmarc_alignment")["found"] == (
        "SPF of the bounce domain good.test is aligned"
    )


def test_the_table_names_each_fix(
    tmp_path: Path,
    keys: Keys,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per row: the words are not wrapped
    project = doctor_project(tmp_path, "nodmarc", keys, service, relay[1])
    result = run("doctor", "--content", project.content, "--nameserver", nameserver)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "DMARC record" in text and "fail" in text
    assert "publish a TXT record at _dmarc.nodmarc.test" in text
    assert "8 passed, 0 warned, 1 failed." in text


def test_dmarc_of_the_organisational_domain_and_relaxed_alignment(
    setup: Callable[..., Any],
) -> None:
    """From mail.good.test, which has no DMARC record of its own: good.test's applies, and
    the signature under d=good.test is aligned (relaxed)."""
    report = setup("good", sender_address='"news@mail.good.test"')
    assert lines(report, "fail") == lines(report, "warn") == []
    assert ("dmarc", "_dmarc.good.test") in lines(report, "pass")
    assert ("spf", "mail.good.test") in lines(report, "pass")
    assert ("mx", "mail.good.test") in lines(report, "pass")
    assert line(report, "dmarc_alignment")["found"] == "DKIM d=good.test is aligned (relaxed)"


def test_one_click_over_http_and_to_a_closed_port(
    setup: Callable[..., Any], service: Service
) -> None:
    plain = setup("good", service_url=f'"{service.plain}"')
    assert lines(plain, "fail") == [
        ("unsubscribe_https", f"{service.plain}unsubscribe?token={{token}}")
    ]
    assert "https" in line(plain, "unsubscribe_https")["fix"]
    assert line(plain, "one_click")["status"] == "pass"  # the service itself answers

    closed = f"https://127.0.0.1:{free_port()}/"
    report = setup("good", service_url=f'"{closed}"')
    assert lines(report, "fail") == [("one_click", f"{closed}unsubscribe?token={{token}}")]
    assert "Connection refused" in line(report, "one_click")["found"]
    assert "start famfeeds subscriptions" in line(report, "one_click")["fix"]


def test_a_relay_on_loopback_without_starttls_warns_about_postfix(
    setup: Callable[..., Any],
) -> None:
    """The operator's own Postfix on this machine: the hop to it needs no TLS, its
    outgoing TLS is what matters."""
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        report = setup("good", smtp_url=f'"smtp://127.0.0.1:{controller.port}"')
    finally:
        controller.stop()
    assert lines(report, "fail") == []
    assert lines(report, "warn") == [("tls", f"smtp://127.0.0.1:{controller.port}")]
    assert "offers no STARTTLS" in line(report, "tls")["found"]
    assert "smtp_tls_security_level = may" in line(report, "tls")["fix"]


def test_certificates_nobody_vouches_for_fail(
    setup: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test CA, the relay's and the service's certificates are not trusted."""
    monkeypatch.delenv("SSL_CERT_FILE")
    report = setup("good")
    assert {check for check, _ in lines(report, "fail")} == {"one_click", "tls"}
    assert "certificate was not accepted" in line(report, "tls")["found"]
    assert "TLS certificate was not accepted" in line(report, "one_click")["found"]


def test_a_dns_server_that_will_not_answer_fails_the_dns_lines(
    setup: Callable[..., Any], keys: Keys
) -> None:
    """NSD refuses names outside its zones: every DNS line fails, and says why."""
    report = setup(
        "elsewhere",
        sender_address='"news@elsewhere.example"',
        dkim=f'{{ selector = "ff2026", domain = "elsewhere.example", key = "{keys.own}" }}',
    )
    failed = {check for check, _ in lines(report, "fail")}
    assert failed == {"spf", "dkim", "dmarc", "mx"}
    assert "no DNS server would answer for elsewhere.example" in line(report, "spf")["found"]
    assert all("no DNS server would answer" in line(report, c)["found"] for c in failed)
    assert "--nameserver" in line(report, "mx")["fix"]


def test_a_relay_on_loopback_without_relay_spf_warns(setup: Callable[..., Any]) -> None:
    report = setup("good", relay_spf="")
    assert lines(report, "fail") == []
    assert lines(report, "warn") == [("spf_relay", "good.test")]
    assert "relay_spf" in line(report, "spf_relay")["fix"]


def test_examine_with_a_resolver(nameserver: str, keys: Keys, service: Service) -> None:
    """The library call: the same lines, with a dnspython resolver of the caller's."""
    from famfeeds.records.models import Newsletter

    host, _, port = nameserver.partition(":")
    newsletter = Newsletter(
        sender_name="Test",
        sender_address="news@nomx.test",
        service_url=service.url,
        relay_spf=[f"ip4:{RELAY}"],
        dkim=Dkim(selector=SELECTOR, domain="nomx.test", key=str(keys.own)),
    )
    checkup = examine(
        newsletter, resolver=resolver(host, int(port)), http_probe=False, tls_probe=False
    )
    assert [(x.check, x.subject) for x in checkup.failed] == [("mx", "nomx.test")]
    assert checkup.exit_code == 1


# -- send: the check before a bulk send ----------------------------------------------------

NOW = "2023-11-24T09:00"


def send_project(
    shipped: Project, service: Service, relay_port: int, threshold: int, domain: str = "good.test"
) -> Project:
    """The shipped season, sending from news@<domain> through the relay (relay_dkim: the
    module's key under the selector, so messages need no signing of famfeeds' own)."""
    show = shipped.content / "show.toml"
    text = show.read_text(encoding="utf-8")
    text = text.replace("news@famfeeds.example.org", f"news@{domain}")
    text = text.replace(
        'unsubscribe_url = "https://famfeeds.example.org/unsubscribe?token={token}"',
        f'unsubscribe_url = "{service.url}unsubscribe?token={{token}}"',
    )
    text = text.replace(
        'smtp_url = "smtp://localhost:587"',
        f'smtp_url = "smtp://127.0.0.1:{relay_port}"\nrelay_spf = {RELAY_SPF}\n'
        f'relay_dkim = [{{ selector = "{SELECTOR}" }}]\ndoctor_threshold = {threshold}',
    )
    show.write_text(text, encoding="utf-8")
    return shipped


def send(run: Callable[..., Result], project: Project, rows: int, *extra: str) -> Result:
    csv = project.root / "subscribers.csv"
    csv.write_text(
        "email,name\n" + "".join(f"fan{i}@example.com,Fan {i}\n" for i in range(rows)),
        encoding="utf-8",
    )
    return run(
        "send", "2023-11-24", "--content", project.content, "--subscribers", csv,
        "--now", NOW, "--yes", *extra,
    )  # fmt: skip


def test_send_above_the_threshold_stops_on_a_failed_line_unless_forced(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, port = relay
    project = send_project(shipped, service, port, threshold=2, domain="nodmarc.test")
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", nameserver)
    before = len(sink.received)
    stopped = send(run, project, 3)
    assert stopped.exit_code == 1
    assert "nothing was sent" in stopped.output
    assert "more than doctor_threshold (2)" in stopped.output
    assert "dmarc (_dmarc.nodmarc.test): no DMARC record" in stopped.output
    assert len(sink.received) == before
    assert not (project.root / ".famfeeds-state" / DOCTOR_FILE).exists()

    forced = send(run, project, 3, "--force")
    assert forced.exit_code == 0, forced.output
    assert "--force: sending although the domain check failed: dmarc" in forced.output
    assert len(sink.received) == before + 3


def test_send_below_the_threshold_does_not_check(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, port = relay
    project = send_project(shipped, service, port, threshold=3, domain="nodmarc.test")
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", f"127.0.0.1:{free_port()}")  # nobody answers
    before = len(sink.received)
    result = send(run, project, 3)
    assert result.exit_code == 0, result.output
    assert "domain check" not in result.output
    assert len(sink.received) == before + 3


def test_a_passed_check_is_remembered_for_the_issue(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, port = relay
    project = send_project(shipped, service, port, threshold=2)
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", nameserver)
    before = len(sink.received)
    first = send(run, project, 3)
    assert first.exit_code == 0, first.output
    assert len(sink.received) == before + 3
    state = project.root / ".famfeeds-state" / DOCTOR_FILE
    assert state.stat().st_mode & 0o777 == 0o600
    assert "/2023-11-24" in state.read_text(encoding="utf-8")

    # The list grew; the DNS is gone: the same issue is not checked again.
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", f"127.0.0.1:{free_port()}")
    second = send(run, project, 6)
    assert second.exit_code == 0, second.output
    assert len(sink.received) == before + 6


def test_doctor_help_and_a_bad_nameserver(run: Callable[..., Result], shipped: Project) -> None:
    result = run("doctor", "--content", shipped.content, "--nameserver", "127.0.0.1:99999")
    assert result.exit_code == 1
    assert "port must be a number from 1 to 65535" in result.output
    listing = subprocess.run(
        [sys.executable, "-m", "famfeeds", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "doctor" in listing


def test_an_issue_sent_in_groups_is_checked_as_a_whole(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first group (3) is under the threshold (4); the second group is 3 more, but the
    issue then goes to 6 in all: the check runs and stops it."""
    sink, port = relay
    project = send_project(shipped, service, port, threshold=4, domain="nodmarc.test")
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", nameserver)
    before = len(sink.received)
    first = send(run, project, 3)
    assert first.exit_code == 0, first.output
    assert len(sink.received) == before + 3
    second = send(run, project, 6)
    assert second.exit_code == 1, second.output
    assert "this issue goes to 6 recipients, more than doctor_threshold (4)" in second.output
    assert "dmarc (_dmarc.nodmarc.test): no DMARC record" in second.output
    assert len(sink.received) == before + 3


def test_a_dry_run_above_the_threshold_reports_the_domain_check(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", nameserver)
    project = send_project(shipped, service, relay[1], threshold=2, domain="nodmarc.test")
    failing = send(run, project, 3, "--dry-run")
    assert failing.exit_code == 0, failing.output
    text = " ".join(failing.output.split())
    assert "A real send would stop here: this issue goes to 3 recipients" in text
    assert "dmarc (_dmarc.nodmarc.test): no DMARC record" in text
    assert not (project.root / ".famfeeds-state" / DOCTOR_FILE).exists()


def test_a_dry_run_says_the_domain_check_passed(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    nameserver: str,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", nameserver)
    good = send_project(shipped, service, relay[1], threshold=2)
    state = good.root / ".famfeeds-state" / DOCTOR_FILE
    passing = send(run, good, 3, "--dry-run")
    assert "Domain check passed" in " ".join(passing.output.split())
    assert not state.exists()  # a dry run records nothing
    assert send(run, good, 3).exit_code == 0
    again = send(run, good, 3, "--dry-run")
    assert "Domain check: already passed for this issue." in " ".join(again.output.split())


def test_a_bad_famfeeds_nameserver_is_named(
    shipped: Project,
    service: Service,
    relay: tuple[Sink, int],
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = send_project(shipped, service, relay[1], threshold=2)
    monkeypatch.setenv("FAMFEEDS_NAMESERVER", "127.0.0.1:99999")
    result = send(run, project, 3)
    assert result.exit_code == 1
    assert "FAMFEEDS_NAMESERVER 127.0.0.1:99999: the port must be" in result.output


def test_one_click_to_a_wrong_path_of_the_service_fails(
    setup: Callable[..., Any], service: Service
) -> None:
    """The service answers a path it has no route for 404 too (with its security headers),
    but only its unsubscribe endpoint marks the answer: a wrong service_url path fails."""
    wrong = f"{service.url}famfeeds/"
    report = setup("good", service_url=f'"{wrong}"')
    assert lines(report, "fail") == [("one_click", f"{wrong}unsubscribe?token={{token}}")]
    assert "not by its unsubscribe endpoint" in line(report, "one_click")["found"]
    assert "--base-path" in line(report, "one_click")["fix"]


def test_only_the_unknown_token_answer_carries_the_marker(service: Service) -> None:
    """Read back with http.client: the marker is on the one-click POST's 404, not on the
    unsubscribe page's 404 nor on an unknown route's."""
    from famfeeds.delivery.doctor import post_one_click

    marker, token = "famfeeds-unsubscribe", "N0body-h0lds-this-t0ken-at-all12"
    status, headers, problem = post_one_click(f"{service.plain}unsubscribe?token={token}")
    assert (status, headers.get(marker), problem) == (404, "unknown-token", "")
    status, headers, _ = post_one_click(f"{service.plain}nowhere?token={token}")
    assert status == 404 and marker not in headers
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as page:
        urllib.request.urlopen(f"{service.plain}unsubscribe?token={token}", timeout=10)
    page.value.close()
    assert page.value.code == 404 and page.value.headers.get(marker) is None


def test_an_rsa_and_an_ed25519_key_are_each_checked(setup: Callable[..., Any], keys: Keys) -> None:
    both = (
        f'[{{ selector = "{SELECTOR}", domain = "good.test", key = "{keys.own}" }}, '
        f'{{ selector = "ed", domain = "good.test", key = "{keys.ed}" }}]'
    )
    report = setup("good", dkim=both)
    assert lines(report, "fail") == lines(report, "warn") == []
    assert line(report, "dmarc_alignment")["found"] == "DKIM d=good.test is aligned (relaxed)"
    dkim_lines = [x for x in report["lines"] if x["check"] == "dkim"]
    assert [(x["subject"], x["found"]) for x in dkim_lines] == [
        (f"{SELECTOR}._domainkey.good.test", "k=rsa, matches the key file"),
        ("ed._domainkey.good.test", "k=ed25519, matches the key file"),
    ]


def test_an_ed25519_key_alone_warns_and_does_not_align(
    setup: Callable[..., Any], keys: Keys
) -> None:
    """From unaligned.test with bounces at foreign.test: only the Ed25519 key could align,
    and it does not count (most receivers do not verify Ed25519)."""
    report = setup(
        "unaligned",
        dkim=f'{{ selector = "ed", domain = "unaligned.test", key = "{keys.ed}" }}',
        bounce_address='"bounces@foreign.test"',
    )
    assert ("dkim", "ed._domainkey.unaligned.test") in lines(report, "pass")
    assert lines(report, "warn") == [("dkim_rsa", "*._domainkey.unaligned.test")]
    assert "keep an RSA key beside it" in line(report, "dkim_rsa")["fix"]
    assert lines(report, "fail") == [("dmarc_alignment", "unaligned.test")]


@pytest.mark.parametrize(
    ("zone", "relay_spf", "missing"),
    [
        ("qualified", '["include:_spf.relay.test"]', "include:_spf.relay.test"),
        ("deadinclude", '["include:_spf.relay.test"]', "include:_spf.relay.test"),
        ("cidr", '["ip4:192.0.2.0/24"]', "ip4:192.0.2.0/24"),
    ],
)
def test_includes_that_do_not_authorise_and_ranges_half_covered_fail(
    setup: Callable[..., Any], zone: str, relay_spf: str, missing: str
) -> None:
    """~include: never passes, an include after -all is never evaluated, and a /24 of which
    the record covers only the first half is not authorised."""
    report = setup(zone, relay_spf=relay_spf)
    assert ("spf_relay", f"{zone}.test") in lines(report, "fail")
    assert f"does not authorise {missing} (relay_spf)" in line(report, "spf_relay")["found"]


def test_a_range_the_record_covers_whole_passes(setup: Callable[..., Any]) -> None:
    report = setup("cidr", relay_spf='["ip4:192.0.2.0/25", "ip4:192.0.2.127"]')
    assert line(report, "spf_relay")["status"] == "pass"


def test_the_from_domain_need_not_authorise_the_relay_when_bounces_go_elsewhere(
    setup: Callable[..., Any],
) -> None:
    """From norelay.test, envelope sender at good.test: receivers check SPF for good.test
    only, so norelay.test's record that leaves the relay out only warns."""
    report = setup("norelay", bounce_address='"bounces@good.test"')
    assert lines(report, "fail") == []
    assert lines(report, "warn") == [("spf_relay", "norelay.test")]
    (warned,) = [x for x in report["lines"] if x["status"] == "warn"]
    assert "receivers check SPF for the bounce domain good.test" in warned["found"]
    assert ("spf_relay", "good.test") in lines(report, "pass")


def test_a_mismatch_found_through_smtp_urls_host_warns(
    nameserver: str, keys: Keys, service: Service
) -> None:
    """Without relay_spf, the submission host's address (44.0.0.1) stands in for the relay;
    it is not in the record, but such hosts rarely deliver the mail themselves: warn."""
    from famfeeds.records.models import Newsletter

    host, _, port = nameserver.partition(":")
    newsletter = Newsletter(
        sender_name="Test",
        sender_address="news@submit.test",
        service_url=service.url,
        smtp_url="smtp://smtp.submit.test:587",
        dkim=Dkim(selector=SELECTOR, domain="submit.test", key=str(keys.own)),
    )
    checkup = examine(
        newsletter, resolver=resolver(host, int(port)), http_probe=False, tls_probe=False
    )
    assert checkup.failed == []
    (warned,) = checkup.warnings
    assert (warned.check, warned.subject) == ("spf_relay", "submit.test")
    assert "does not authorise ip4:44.0.0.1 (smtp_url's host)" in warned.found
    assert "name the relay's sending servers" in warned.fix and "relay_spf" in warned.fix


@pytest.mark.parametrize(
    ("zone", "status", "found"),
    [
        ("plusall", "fail", "ends with +all: it authorises every server"),
        ("queryall", "warn", "ends with ?all (neutral)"),
        ("noall", "warn", "has no all (nor redirect=)"),
    ],
)
def test_an_spf_record_that_lets_anyone_send_is_flagged(
    setup: Callable[..., Any], zone: str, status: str, found: str
) -> None:
    report = setup(zone)
    assert line(report, "spf")["status"] == status
    assert found in line(report, "spf")["found"]
    assert "-all" in line(report, "spf")["fix"]
    assert lines(report, "fail") == ([("spf", f"{zone}.test")] if status == "fail" else [])


def test_a_record_that_does_not_verify_fails_and_testing_mode_warns(
    setup: Callable[..., Any],
) -> None:
    """duptag's record carries the right p= but repeats k=: dkimpy (as receivers) refuses
    it, so the probe signed with the key does not verify. testing's record has t=y."""
    report = setup("duptag")
    assert lines(report, "fail") == [("dkim", f"{SELECTOR}._domainkey.duptag.test")]
    assert "does not verify against the record" in line(report, "dkim")["found"]
    testing = setup("testing")
    assert lines(testing, "fail") == []
    assert lines(testing, "warn") == [("dkim", f"{SELECTOR}._domainkey.testing.test")]
    assert "t=y" in line(testing, "dkim")["found"]
    assert "without t=y" in line(testing, "dkim")["fix"]


def test_a_subdomain_from_shows_the_sp_policy_that_applies(setup: Callable[..., Any]) -> None:
    report = setup("subpolicy", sender_address='"news@mail.subpolicy.test"')
    assert line(report, "dmarc")["subject"] == "_dmarc.subpolicy.test"
    assert line(report, "dmarc")["found"] == "sp=none applies to mail.subpolicy.test (p=reject)"
    own = setup("subpolicy")
    assert line(own, "dmarc")["found"] == "p=reject"


def test_a_dns_server_that_never_answers_fails_the_dns_lines_in_time(
    keys: Keys, service: Service
) -> None:
    """A UDP port that swallows every question: each DNS line fails, saying the server
    did not answer in time (the resolver's own short lifetime ends each wait)."""
    import dns.resolver

    from famfeeds.records.models import Newsletter

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        ask = dns.resolver.Resolver(configure=False)
        ask.nameservers = ["127.0.0.1"]
        ask.port = silent.getsockname()[1]
        ask.timeout = ask.lifetime = 0.3
        newsletter = Newsletter(
            sender_name="Test",
            sender_address="news@good.test",
            service_url=service.url,
            relay_spf=[f"ip4:{RELAY}"],
            dkim=Dkim(selector=SELECTOR, domain="good.test", key=str(keys.own)),
        )
        checkup = examine(newsletter, resolver=ask, http_probe=False, tls_probe=False)
    assert {x.check for x in checkup.failed} == {"spf", "dkim", "dmarc", "mx"}
    assert all("did not answer in time" in x.found for x in checkup.failed), checkup.failed
    assert all("--nameserver" in x.fix for x in checkup.failed)
