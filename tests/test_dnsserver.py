"""The loopback DNS server the DKIM and doctor tests rely on (tests/dnsserver.py): it serves
what it is given, fills in the apex records, and is gone after the ``with`` block."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from dnsserver import answers, dns_server, resolver

LONG = "p=" + "A" * 400


def test_it_serves_the_zones_given_and_nothing_else(tmp_path: Path) -> None:
    zones = {
        "example.test.": "s1._domainkey IN TXT "
        f'( "v=DKIM1; k=rsa; " "{LONG[:250]}" "{LONG[250:]}" )\n'
        "@ 600 IN MX 10 mail\n",
        "other.test": '@ IN TXT "v=spf1 -all"\n',
    }
    with dns_server(tmp_path, zones) as (host, port):
        ask = resolver(host, port)
        (record,) = ask.resolve("s1._domainkey.example.test", "TXT")
        assert record.strings == (b"v=DKIM1; k=rsa; ", LONG[:250].encode(), LONG[250:].encode())
        (mx,) = ask.resolve("example.test", "MX")
        assert (mx.preference, mx.exchange.to_text()) == (10, "mail.example.test.")
        (soa,) = ask.resolve("other.test", "SOA")  # filled in
        assert soa.mname.to_text() == "ns1.other.test."
        (ns,) = ask.resolve("example.test", "NS")
        assert ns.target.to_text() == "ns1.example.test."
        with pytest.raises(dns.resolver.NXDOMAIN):
            ask.resolve("nothing.example.test", "TXT")
        with pytest.raises(dns.resolver.NoAnswer):
            ask.resolve("other.test", "MX")
        refused = dns.query.udp(dns.message.make_query("example.org", "A"), host, port=port)
        assert refused.rcode() == dns.rcode.REFUSED  # not a resolver: nothing leaves loopback
    assert not answers(host, port, None)  # stopped


def test_a_zone_with_its_own_soa_keeps_it(tmp_path: Path) -> None:
    zone = "@ IN SOA ns.example.test. admin.example.test. 42 3600 600 86400 60\n@ IN NS ns\n"
    with dns_server(tmp_path, {"example.test.": zone}) as (host, port):
        (soa,) = resolver(host, port).resolve("example.test", "SOA")
        assert soa.serial == 42


def test_each_server_marks_its_zones_and_is_told_apart(tmp_path: Path) -> None:
    """Every zone carries a random marker of its server: the readiness check asks for it,
    so a server of another test on a reused port cannot pass for this one."""
    from dnsserver import MARKER_LABEL

    zones = {"example.test.": '@ IN TXT "hello"\n'}
    with dns_server(tmp_path / "a", zones) as (host, port):
        (first,) = resolver(host, port).resolve(f"{MARKER_LABEL}.example.test", "TXT")
        mark = b"".join(first.strings).decode()
        assert len(mark) == 32
        assert answers(host, port, "example.test.", mark)
        assert not answers(host, port, "example.test.", "another server's marker")
        with dns_server(tmp_path / "b", zones) as (other_host, other_port):
            (second,) = resolver(other_host, other_port).resolve(
                f"{MARKER_LABEL}.example.test", "TXT"
            )
            assert b"".join(second.strings).decode() != mark


def test_the_server_stops_when_the_test_process_is_killed(tmp_path: Path) -> None:
    """A test process killed by SIGKILL leaves no NSD behind (PR_SET_PDEATHSIG, set in
    NSD's own process before it starts, not in a preexec_fn)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from pathlib import Path\n"
        "from dnsserver import dns_server\n"
        f"with dns_server(Path({str(tmp_path)!r}), {{'example.test.': '@ IN TXT \"x\"\\n'}}) "
        "as (host, port):\n"
        "    print(port, flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    port = int(child.stdout.readline())
    pid = int((tmp_path / "nsd.pid").read_text().split()[0])
    assert answers("127.0.0.1", port, "example.test.")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    for _ in range(500):  # a safety limit, not a measurement
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("NSD outlived the killed test process")
    assert not answers("127.0.0.1", port, "example.test.")
