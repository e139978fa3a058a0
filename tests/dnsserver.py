"""A real authoritative DNS server on loopback for tests: NLnet Labs' NSD (Debian's ``nsd``).

Each server runs in the foreground with its own configuration, zone files, pid file and log in
a folder of the test, on a free port (UDP and TCP), answers only for the zones it is given, and
is stopped when the ``with`` block ends. ``resolver`` gives a dnspython resolver that asks only
that server, so nothing leaves loopback.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver
import dns.zone

HOST = "127.0.0.1"
STARTUP_LIMIT = 30.0
"""Seconds NSD may take to answer for its zones before the fixture gives up (a safety net
for a broken set-up, not a measurement: it usually answers in well under a second)."""

# Filled in for a zone whose text has no SOA or no NS record at its apex.
DEFAULT_SOA = "@ 300 IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300"
DEFAULT_NS = "@ 300 IN NS ns1.{origin}"

CONFIG = """\
server:
    ip-address: {host}@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{folder}"
    database: ""
    zonelistfile: "{folder}/zone.list"
    xfrdfile: "{folder}/xfrd.state"
    xfrdir: "{folder}"
    pidfile: "{folder}/nsd.pid"
    logfile: "{folder}/nsd.log"
    server-count: 1
    verbosity: 1
    hide-version: yes
    refuse-any: no
    minimal-responses: no

remote-control:
    control-enable: no
"""

ZONE = """\
zone:
    name: "{origin}"
    zonefile: "{file}"
"""


def nsd_binary() -> str:
    """The NSD daemon; tests/debian-packages.txt lists the ``nsd`` package that ships it."""
    found = shutil.which("nsd") or next(
        (p for p in ("/usr/sbin/nsd", "/usr/local/sbin/nsd") if Path(p).exists()), None
    )
    assert found, "NSD is needed for the DNS tests: apt-get install nsd (tests/run.py does)"
    return found


MARKER_LABEL = "_dnsserver-marker"
"""Each served zone gets a TXT record here holding a random value of this server's: the
readiness check asks for it, so a server of another test that won the same port race
cannot pass for this one."""

DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
"""Run before NSD in its own process (a Python that then becomes NSD), not as a
``preexec_fn``, which is unsafe in a process with threads: ask Linux to stop NSD when the
test process dies, even by SIGKILL (elsewhere nothing is done; the ``with`` block still
stops it)."""


def complete_zone(origin: str, text: str) -> str:
    """The zone file NSD loads for ``origin``: ``$ORIGIN`` and a default ``$TTL 300`` first,
    then an SOA and an NS record at the apex when ``text`` has none, then ``text`` itself."""
    name = dns.name.from_text(origin)
    parsed = dns.zone.from_text(
        f"$TTL 300\n{text}", origin=name, relativize=False, check_origin=False
    )
    apex = parsed.get_node(name)
    types = {rdataset.rdtype for rdataset in apex} if apex is not None else set()
    lines = [f"$ORIGIN {name.to_text()}", "$TTL 300"]
    if dns.rdatatype.SOA not in types:
        lines.append(DEFAULT_SOA.format(origin=name.to_text()))
    if dns.rdatatype.NS not in types:
        lines.append(DEFAULT_NS.format(origin=name.to_text()))
    return "\n".join([*lines, text.rstrip("\n"), ""])


def free_port() -> int:
    """A loopback port free for both UDP and TCP at the time of asking."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port


def answers(host: str, port: int, origin: str | None, marker: str | None = None) -> bool:
    """Whether the server at ``host``:``port`` answers ``origin``'s SOA from its zone (for
    None: answers at all, even if only to refuse a question about the root); with
    ``marker``, whether its zone's marker record holds that value (see MARKER_LABEL)."""
    if origin is not None and marker is not None:
        query = dns.message.make_query(f"{MARKER_LABEL}.{origin}", dns.rdatatype.TXT)
    else:
        query = dns.message.make_query(origin or ".", dns.rdatatype.SOA)
    try:
        reply = dns.query.udp(query, host, port=port, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return False
    if origin is None:
        return True
    if not reply.answer or reply.rcode() != 0:
        return False
    if marker is None:
        return True
    found = {b"".join(r.strings).decode() for rrset in reply.answer for r in rrset}
    return found == {marker}


@contextmanager
def dns_server(folder: Path, zones: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Serve ``zones`` with NSD on loopback; yield ``("127.0.0.1", port)`` once every zone
    answers, stop the server on exit.

    ``zones`` maps an origin (``"example.test."``) to zone file text in the usual master file
    format, names relative to the origin, without ``$ORIGIN`` (it is added; ``$TTL`` defaults
    to 300). A zone without an SOA or an NS record at its apex gets
    ``ns1.<origin> hostmaster.<origin>`` ones. TXT values over 255 bytes must be written as
    several quoted strings, as in any zone file. A zone NSD refuses fails here with
    ``nsd-checkzone``'s message. With no zones at all the server refuses every question.
    """
    folder.mkdir(parents=True, exist_ok=True)
    marker = secrets.token_hex(16)
    zone_stanzas = []
    for index, (origin, text) in enumerate(sorted(zones.items())):
        name = dns.name.from_text(origin).to_text()
        file = folder / f"zone{index}.db"
        served = complete_zone(name, text) + f'{MARKER_LABEL} IN TXT "{marker}"\n'
        file.write_text(served, encoding="utf-8")
        check = subprocess.run(
            [str(Path(nsd_binary()).with_name("nsd-checkzone")), name, str(file)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, f"zone {name} is not valid: {check.stdout}{check.stderr}"
        zone_stanzas.append(ZONE.format(origin=name, file=file))
    origins: list[str | None] = [dns.name.from_text(o).to_text() for o in zones] or [None]
    for _attempt in range(5):
        port = free_port()
        config = folder / "nsd.conf"
        config.write_text(
            CONFIG.format(host=HOST, port=port, folder=folder) + "\n".join(zone_stanzas),
            encoding="utf-8",
        )
        log = folder / "nsd.log"
        log.unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-c", DIE_WITH_PARENT, nsd_binary(), "-d", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + STARTUP_LIMIT
            while process.poll() is None:
                if all(answers(HOST, port, origin, marker) for origin in origins):
                    break
                if time.monotonic() > deadline:
                    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
                    raise AssertionError(f"NSD did not answer for every zone: {text}")
                time.sleep(0.02)
            if process.poll() is not None:
                message = process.stderr.read().decode() if process.stderr else ""
                message += log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
                if "already in use" in message or "can't bind" in message:
                    continue  # another process took the port between asking and binding
                raise AssertionError(f"NSD stopped before answering: {message}")
            # Answered, and still ours: not a server that stopped right after the check.
            assert process.poll() is None, "NSD stopped right after answering"
            yield HOST, port
            return
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stderr:
                process.stderr.close()
    raise AssertionError("NSD could not bind a free loopback port in 5 attempts")


def resolver(host: str, port: int) -> dns.resolver.Resolver:
    """A dnspython resolver that asks only ``host``:``port`` (no /etc/resolv.conf, no cache)."""
    result = dns.resolver.Resolver(configure=False)
    result.nameservers = [host]
    result.port = port
    result.timeout = 2.0
    result.lifetime = 5.0
    result.cache = None
    return result
