"""``famfeeds doctor``: check the sending domain before the first send.

What the large mailbox providers require of a bulk sender (see
/work/shared/notes/deliverability.md), checked from the outside, as a receiver would, one
line each, every line ``pass``, ``warn`` or ``fail`` with what was found and, unless it
passed, the record to publish or the setting to change:

- **SPF** (RFC 7208), for the From domain and the bounce (envelope) domain: exactly one
  ``v=spf1`` TXT record; valid, and needing at most 10 DNS look-ups, both as pyspf (the
  standard Python evaluator, on dnspython) finds when it evaluates the record for an
  address that matches nothing, so that every mechanism is looked up; and, where the relay
  is known, authorising it: each ``[newsletter] relay_spf`` source (``ip4:``/``ip6:``
  evaluated by pyspf, ``include:`` found in the record or in what it includes), else the
  addresses of smtp_url's host. A relay on loopback or a private network has no public
  address famfeeds can know: that line warns until relay_spf names it.
- **DKIM**: the TXT record at ``<selector>._domainkey.<domain>`` of each of famfeeds' own
  keys (``[newsletter] dkim``, one table or a list) exists, is valid and carries the public
  half of the key file; each relay key (``[newsletter] relay_dkim``) exists and is valid.
  Only RSA keys count for DMARC alignment (most receivers do not verify Ed25519): when
  every key that checked out is Ed25519, a ``dkim_rsa`` line warns.
- **DMARC** (RFC 7489): one ``v=DMARC1`` record at ``_dmarc.<From domain>``, else at the
  organisational domain (the Public Suffix List's registrable domain), with a valid ``p=``;
  and aligned: the From domain shares its organisational domain (relaxed; equal under
  ``aspf=s``/``adkim=s``) with the bounce domain whose SPF authorises the relay, or with
  the ``d=`` domain of a DKIM key whose record checked out.
- **MX** for the bounce domain (bounces must reach it): MX records, or an A/AAAA record as
  the fallback (warn), not a null MX (RFC 7505).
- **One-click unsubscribe** (RFC 8058): the List-Unsubscribe URL is https, and answers a
  one-click POST. The probe carries a random token no subscriber holds, so it changes
  nothing: the subscriptions service answers such a token 404 with the header
  ``Famfeeds-Unsubscribe: unknown-token`` (on that answer only), which counts as answered;
  a 404 of the service without it (a wrong path), a redirect, 405 or any other error fails.
- **TLS**: the relay (smtp_url) offers STARTTLS in its EHLO reply, or speaks TLS from the
  first byte (smtps://), and the handshake succeeds (with the URL's ``verify`` setting).

The DNS server asked is the system's, or the one ``nameserver`` names (``HOST[:PORT]``;
``FAMFEEDS_NAMESERVER`` for ``famfeeds send``).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from famfeeds.errors import FamfeedsError

if TYPE_CHECKING:
    import dns.resolver

    from famfeeds.records.models import Dkim, Newsletter

NAMESERVER_ENV = "FAMFEEDS_NAMESERVER"
"""``HOST[:PORT]`` of the DNS server ``famfeeds send`` asks for its pre-send check."""
MAX_LOOKUPS = 10
"""DNS look-ups an SPF evaluation may need (RFC 7208, section 4.6.4)."""
PROBE_ADDRESS = "240.0.0.1"
"""The address SPF is evaluated for to count look-ups: reserved (240.0.0.0/4, never
assigned), so no record matches it and every mechanism is evaluated. IPv4, so that ``a``
and ``mx`` ask for the A records most hosts have (an empty answer is a void look-up)."""
HTTP_TIMEOUT = 10.0
SMTP_TIMEOUT = 10.0
UNKNOWN_TOKEN_HEADER = "Famfeeds-Unsubscribe"
UNKNOWN_TOKEN_VALUE = "unknown-token"
"""The header (and its value) the subscriptions service puts on its answer to an
unsubscribe POST with a token it does not know, and on nothing else: the one-click probe's
proof that the URL reached the unsubscribe endpoint (not some other 404)."""
DOCTOR_FILE = "doctor.json"
"""In the private state folder: the issues whose pre-send check passed."""

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Line:
    """One check's outcome."""

    check: str
    """Which check: spf, spf_lookups, spf_relay, dkim, dkim_rsa, dmarc, dmarc_alignment,
    mx, unsubscribe_https, one_click, tls."""
    subject: str
    """What was checked: a domain, a DNS name, a URL or the relay."""
    status: Status
    found: str
    """What was found, in words."""
    fix: str = ""
    """The record to publish or the setting to change ('' when it passed)."""


@dataclass
class Checkup:
    """Every line of one run of the checks."""

    lines: list[Line] = field(default_factory=list)

    @property
    def failed(self) -> list[Line]:
        return [line for line in self.lines if line.status == "fail"]

    @property
    def warnings(self) -> list[Line]:
        return [line for line in self.lines if line.status == "warn"]

    @property
    def exit_code(self) -> int:
        """1 when a line failed, else 0 (warnings do not fail)."""
        return 1 if self.failed else 0

    def line(self, check: str, subject: str | None = None) -> Line | None:
        """The first line of ``check`` (about ``subject``), or None."""
        return next(
            (x for x in self.lines if x.check == check and subject in (None, x.subject)), None
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "counts": {s: sum(x.status == s for x in self.lines) for s in ("pass", "warn", "fail")},
            "lines": [asdict(x) for x in self.lines],
        }


# -- DNS ---------------------------------------------------------------------------------


class DnsTrouble(Exception):
    """The DNS server gave no usable answer (timeout, refusal, server failure)."""


def make_resolver(
    nameserver: str | None = None, source: str = "--nameserver"
) -> dns.resolver.Resolver:
    """A dnspython resolver asking ``nameserver`` (``HOST[:PORT]``, ``[IPv6]:PORT``), or
    the system's when None; an error names ``source``, where the value came from."""
    import socket

    import dns.resolver

    if nameserver is None:
        try:
            return dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise FamfeedsError(
                f"this machine has no DNS server configured: set {source} HOST[:PORT]"
            ) from None
    text = nameserver.strip()
    host, port = text, 53
    number: str
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), nameserver, source)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, nameserver, source)
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            address = str(socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0][4][0])
        except (OSError, UnicodeError):
            raise FamfeedsError(
                f"{source} {nameserver}: no such host; give HOST[:PORT], e.g. 127.0.0.1:5353"
            ) from None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [address]
    resolver.port = port
    resolver.timeout = 3.0
    resolver.lifetime = 8.0
    return resolver


def _port(text: str, given: str, source: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise FamfeedsError(f"{source} {given}: the port must be a number from 1 to 65535")
    return int(text)


class Dns:
    """The look-ups the checks make, through one resolver."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    def records(self, name: str, kind: str) -> list[Any]:
        """The answer's records ([] for no such name or no such record)."""
        import dns.exception
        import dns.resolver

        try:
            answer = self.resolver.resolve(name, kind, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return []
        except dns.resolver.NoNameservers:
            raise DnsTrouble(f"no DNS server would answer for {name} ({kind})") from None
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
            raise DnsTrouble(f"the DNS server did not answer in time for {name} ({kind})") from None
        except dns.exception.DNSException as exc:
            raise DnsTrouble(f"DNS look-up of {name} ({kind}) failed: {exc}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    def txt(self, name: str) -> list[str]:
        """Each TXT record's strings joined (RFC 7208 3.3), as text."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self.records(name, "TXT")]

    def addresses(self, name: str) -> list[str]:
        return [r.address for kind in ("A", "AAAA") for r in self.records(name, kind)]

    @contextlib.contextmanager
    def for_pyspf(self) -> Iterator[None]:
        """pyspf asks DNS through its module-level ``DNSLookup``: point it at this resolver
        for the duration (its own calls dnspython's deprecated ``query``)."""
        import spf  # type: ignore[import-untyped]

        def lookup(
            name: str, qtype: str, strict: object = True, timeout: float = 30
        ) -> list[tuple[tuple[str, str], Any]]:
            try:
                found = self.records(name, qtype)
            except DnsTrouble as exc:
                raise spf.TempError(f"DNS {exc}") from None
            out: list[tuple[tuple[str, str], Any]] = []
            for rdata in found:
                if qtype in ("A", "AAAA"):
                    out.append(((name, qtype), rdata.address))
                elif qtype == "MX":
                    out.append(((name, qtype), (rdata.preference, rdata.exchange)))
                elif qtype == "PTR":
                    out.append(((name, qtype), rdata.target.to_text(True)))
                elif qtype in ("TXT", "SPF"):
                    out.append(((name, qtype), rdata.strings))
            return out

        before = spf.DNSLookup
        spf.DNSLookup = lookup
        try:
            yield
        finally:
            spf.DNSLookup = before


def organisational(domain: str) -> str:
    """The organisational domain (RFC 7489 3.2): the Public Suffix List's registrable
    domain, or the domain itself when it is a suffix."""
    from publicsuffixlist import PublicSuffixList

    global _PSL
    if _PSL is None:
        _PSL = PublicSuffixList()
    return str(_PSL.privatesuffix(domain.lower().rstrip(".")) or domain.lower().rstrip("."))


_PSL: Any = None


def aligned(one: str, other: str, strict: bool) -> bool:
    """DMARC identifier alignment: equal (strict) or sharing the organisational domain."""
    a, b = one.lower().rstrip("."), other.lower().rstrip(".")
    return a == b if strict else organisational(a) == organisational(b)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def tags(record: str) -> dict[str, str]:
    """A DKIM or DMARC record's ``tag=value`` list (RFC 6376 3.2); the first of a repeated
    tag wins. Raises ValueError on a part without ``=``."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part!r} is not tag=value")
        found.setdefault(name.strip().lower(), "".join(value.split()))
    return found


# -- the checks ----------------------------------------------------------------------------


@dataclass
class Doctor:
    """The checks for one newsletter's settings."""

    newsletter: Newsletter
    dns: Dns
    smtp_url: str | None = None
    """The relay [default: the newsletter's smtp_url]."""
    base: Path = field(default_factory=Path.cwd)
    """Where a relative DKIM key path starts (the project folder)."""
    lines: list[Line] = field(default_factory=list)
    spf_relay: dict[str, Status] = field(default_factory=dict)
    """Per domain, the status of its relay line (for SPF alignment)."""
    dkim_ok: list[str] = field(default_factory=list)
    """d= domains whose RSA DKIM record checked out (for DKIM alignment)."""
    dkim_ed25519: list[str] = field(default_factory=list)
    """d= domains whose Ed25519 record checked out: not counted for DMARC, since most
    receivers do not verify Ed25519 signatures."""

    @property
    def from_domain(self) -> str:
        return domain_of(self.newsletter.sender_address)

    @property
    def bounce_domain(self) -> str:
        return domain_of(self.newsletter.bounce_address or self.newsletter.sender_address)

    @property
    def relay_url(self) -> str | None:
        return self.smtp_url or self.newsletter.smtp_url

    def add(self, check: str, subject: str, status: Status, found: str, fix: str = "") -> None:
        self.lines.append(Line(check, subject, status, found, "" if status == "pass" else fix))

    def run(self, http_probe: bool = True, tls_probe: bool = True) -> Checkup:
        """Every check, in order: DNS (SPF, DKIM, DMARC, MX), then the network probes."""
        for domain in dict.fromkeys((self.from_domain, self.bounce_domain)):
            self.guard("spf", domain, lambda d=domain: self.check_spf(d))  # type: ignore[misc]
        if not self.dkim_keys():
            self.add(
                "dkim",
                f"*._domainkey.{self.from_domain}",
                "fail",
                "no DKIM key is set: Gmail, Yahoo and Microsoft require bulk mail to be signed",
                "make a key with famfeeds dkim new and set [newsletter] dkim, or name the key "
                'your relay signs with: relay_dkim = [{ selector = "..." }]',
            )
        for selector, domain, key in self.dkim_keys():
            where = f"{selector}._domainkey.{domain}"
            self.guard(
                "dkim",
                where,
                lambda s=selector, d=domain, k=key: self.check_dkim(s, d, k),  # type: ignore[misc]
            )
        if self.dkim_ed25519 and not self.dkim_ok:
            self.add(
                "dkim_rsa",
                f"*._domainkey.{self.from_domain}",
                "warn",
                "only Ed25519 DKIM keys checked out: most receivers do not verify Ed25519 "
                "(RFC 8463), so to them the mail is unsigned and DMARC cannot count DKIM",
                f"keep an RSA key beside it: famfeeds dkim new --selector <another selector> "
                f"--domain {organisational(self.from_domain)} (RSA by default), publish its "
                "record and list both tables: dkim = [{ ... rsa ... }, { ... ed25519 ... }]",
            )
        self.guard("dmarc", f"_dmarc.{self.from_domain}", self.check_dmarc)
        self.guard("mx", self.bounce_domain, self.check_mx)
        if http_probe:
            self.check_one_click()
        if tls_probe:
            self.check_tls()
        return Checkup(list(self.lines))

    def guard(self, check: str, subject: str, step: Callable[[], None]) -> None:
        """Run ``step``; a DNS server that does not answer fails its line."""
        try:
            step()
        except DnsTrouble as exc:
            self.add(
                check,
                subject,
                "fail",
                str(exc),
                "make sure the DNS server answers (or point --nameserver at one that does)",
            )

    # -- SPF --------------------------------------------------------------------------

    def spf_records(self, domain: str) -> list[str]:
        return [t for t in self.dns.txt(domain) if t.lower() == "v=spf1" or _spf_start(t)]

    def suggested_spf(self) -> str:
        sources = list(self.newsletter.relay_spf) or [
            f"ip{ipaddress.ip_address(a).version}:{a}" for a in self.relay_addresses() or []
        ]
        return "v=spf1 " + " ".join(sources or ["include:<your relay's SPF domain>"]) + " -all"

    def check_spf(self, domain: str) -> None:
        import spf

        records = self.spf_records(domain)
        if not records:
            self.add(
                "spf",
                domain,
                "fail",
                "no SPF record (no TXT record starting v=spf1)",
                f'publish a TXT record at {domain}: "{self.suggested_spf()}"',
            )
            return
        if len(records) > 1:
            listed = "; ".join(f'"{r}"' for r in records)
            self.add(
                "spf",
                domain,
                "fail",
                f"{len(records)} SPF records ({listed}): receivers then treat SPF as broken "
                "(permerror)",
                f"merge them into one TXT record at {domain} and delete the others",
            )
            return
        record = records[0]
        with self.dns.for_pyspf():
            query = spf.query(
                i=PROBE_ADDRESS, s=f"postmaster@{domain}", h=domain, strict=True, timeout=20
            )
            result, _, explanation = query.check()
        lookups = query.lookups
        if result == "temperror":
            raise DnsTrouble(f"SPF of {domain}: {explanation}")
        if result == "permerror" and "DNS lookups" in explanation:
            self.add("spf", domain, "pass", f'"{record}"')
            self.add(
                "spf_lookups",
                domain,
                "fail",
                f"evaluating it takes more than {MAX_LOOKUPS} DNS look-ups (include, a, mx, "
                "ptr, exists and redirect each count, also inside includes): receivers stop "
                "there with a permerror",
                "flatten the record: replace includes you do not send through with nothing, "
                "and includes of fixed servers with their ip4:/ip6: ranges, until at most "
                f"{MAX_LOOKUPS} look-ups remain",
            )
            return
        if result == "permerror":
            self.add(
                "spf",
                domain,
                "fail",
                f'"{record}" is not valid: {explanation.removeprefix("SPF Permanent Error: ")}',
                f"correct the TXT record at {domain} (RFC 7208 syntax), e.g. "
                f'"{self.suggested_spf()}"',
            )
            return
        ending = _spf_all(record)
        close = f'end the TXT record at {domain} with -all (or ~all), e.g. "{self.suggested_spf()}"'
        if ending in ("+", ""):
            self.add(
                "spf",
                domain,
                "fail",
                f'"{record}" ends with {ending}all: it authorises every server on the internet '
                "to send as this domain, so SPF proves nothing and receivers distrust it",
                close,
            )
            return
        if ending in ("?", None):
            self.add(
                "spf",
                domain,
                "warn",
                f'"{record}" '
                + ("ends with ?all (neutral)" if ending == "?" else "has no all (nor redirect=)")
                + ": mail from servers it does not name is not marked as failing SPF",
                close,
            )
        else:
            self.add("spf", domain, "pass", f'"{record}"')
        self.add("spf_lookups", domain, "pass", f"{lookups} of at most {MAX_LOOKUPS} DNS look-ups")
        self.check_spf_relay(domain, record)

    def relay_addresses(self) -> list[str] | None:
        """The public addresses of smtp_url's host; None when they cannot be known (no
        smtp_url, a host on loopback or a private network, a name that does not resolve)."""
        url = self.relay_url
        if not url:
            return None
        from famfeeds.delivery.smtp import SmtpTarget

        host = SmtpTarget.parse(url).host
        try:
            found = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            try:
                found = self.dns.addresses(host)
            except DnsTrouble:
                return None
        public = [a for a in found if ipaddress.ip_address(a).is_global]
        return public or None

    def check_spf_relay(self, domain: str, record: str) -> None:
        import spf

        sources = list(self.newsletter.relay_spf)
        origin = "relay_spf"
        if not sources:
            addresses = self.relay_addresses()
            if addresses is None:
                self.spf_relay[domain] = "warn"
                self.add(
                    "spf_relay",
                    domain,
                    "warn",
                    "famfeeds cannot tell which servers send your mail (no smtp_url, or a relay "
                    "on this machine or a private network)",
                    "name what your SPF must authorise in show.toml, e.g. [newsletter] "
                    'relay_spf = ["include:_spf.your-relay.example"] or ["ip4:203.0.113.7"]',
                )
                return
            sources = [f"ip{ipaddress.ip_address(a).version}:{a}" for a in addresses]
            origin = "smtp_url's host"
        missing: list[str] = []
        for source in sources:
            kind, _, value = source.partition(":")
            if kind == "include":
                if not self.includes(domain, record, value, depth=0):
                    missing.append(source)
                continue
            network = ipaddress.ip_network(value, strict=False)
            # A range counts as authorised when its first and its last address both are
            # (a record that excludes a gap inside it is not caught).
            for address in dict.fromkeys((network.network_address, network.broadcast_address)):
                with self.dns.for_pyspf():
                    result, _, explanation = spf.query(
                        i=str(address), s=f"postmaster@{domain}", h=domain, strict=True, timeout=20
                    ).check()
                if result == "temperror":
                    raise DnsTrouble(f"SPF of {domain}: {explanation}")
                if result != "pass":
                    missing.append(source)
                    break
        if missing:
            found = f"the SPF record does not authorise {', '.join(missing)} ({origin})"
            fix = (
                f"add {' '.join(missing)} to the TXT record at {domain}, before its final "
                "-all (or ~all)"
            )
            if domain != self.bounce_domain:
                # Receivers evaluate SPF for the envelope sender (MAIL FROM) only.
                self.spf_relay[domain] = "warn"
                self.add(
                    "spf_relay",
                    domain,
                    "warn",
                    f"{found}; receivers check SPF for the bounce domain {self.bounce_domain} "
                    "(the envelope sender), not for the From domain, so this mail is not "
                    "affected",
                    f"{fix}, if mail is ever sent with this domain as the envelope sender",
                )
                return
            if origin != "relay_spf":
                # A submission host (SES, SendGrid, Mailgun, Gmail) is rarely the server
                # that delivers the mail: its addresses prove nothing either way.
                self.spf_relay[domain] = "warn"
                self.add(
                    "spf_relay",
                    domain,
                    "warn",
                    f"{found}; but the host you submit to is often not the server that "
                    "delivers your mail (SES, SendGrid, Mailgun and Gmail hand it on)",
                    "name the relay's sending servers in show.toml, as its documentation "
                    'gives them: [newsletter] relay_spf = ["include:_spf.your-relay.example"] '
                    f'or ["ip4:203.0.113.7"], and make sure the TXT record at {domain} '
                    "authorises them",
                )
                return
            self.spf_relay[domain] = "fail"
            self.add(
                "spf_relay",
                domain,
                "fail",
                f"{found}: receivers would see the relay's mail as forged",
                fix,
            )
            return
        self.spf_relay[domain] = "pass"
        self.add("spf_relay", domain, "pass", f"authorises {', '.join(sources)} ({origin})")

    def includes(self, domain: str, record: str, target: str, depth: int) -> bool:
        """Whether ``record`` (of ``domain``) authorises through ``include:target``: the
        include has no qualifier or ``+`` (``-``/``~``/``?include`` does not pass) and comes
        before any ``all`` (terms after it are never evaluated), directly or in a record it
        so includes, or redirects to when it has no ``all`` (at most 10 levels)."""
        if depth > MAX_LOOKUPS:
            return False
        redirects: list[str] = []
        for term in record.split()[1:]:
            lowered = term.lower()
            qualifier = lowered[:1] if lowered[:1] in "+-~?" else ""
            bare = lowered[len(qualifier) :]
            if bare == "all":
                redirects = []  # redirect= is ignored when the record has an all
                break
            if bare.startswith("redirect="):
                redirects.append(bare.partition("=")[2])
                continue
            name, _, value = bare.partition(":")
            if name != "include" or qualifier not in ("", "+"):
                continue
            if self._names(value, target, depth):
                return True
        return any(self._names(value, target, depth) for value in redirects)

    def _names(self, value: str, target: str, depth: int) -> bool:
        """Whether the SPF domain ``value`` is ``target`` or authorises through it."""
        if "%" in value:
            return False
        value = value.rstrip(".")
        if value == target:
            return True
        nested = self.spf_records(value)
        return len(nested) == 1 and self.includes(value, nested[0], target, depth + 1)

    # -- DKIM -------------------------------------------------------------------------

    def dkim_keys(self) -> list[tuple[str, str, Dkim | None]]:
        """(selector, d= domain, famfeeds' own setting or None for a relay's key)."""
        keys: list[tuple[str, str, Dkim | None]] = []
        for own in self.newsletter.dkim:
            keys.append((own.selector, own.domain.lower(), own))
        for relay in self.newsletter.relay_dkim:
            keys.append((relay.selector, (relay.domain or self.from_domain).lower(), None))
        return keys

    def check_dkim(self, selector: str, domain: str, own: Dkim | None) -> None:
        from famfeeds.delivery.dkim import key_path, load_signer

        name = f"{selector}._domainkey.{domain}"
        kind, public = "", b""
        if own is not None:
            try:
                signer = load_signer(own, self.base)
            except FamfeedsError as exc:
                self.add("dkim", name, "fail", exc.message, "fix [newsletter] dkim.key")
                return
            kind, public = signer.key_type, base64.b64decode(signer.public)
            publish = (
                f'publish a TXT record at {name}: "{signer.record}" (famfeeds dkim new printed it)'
            )
        else:
            publish = f"publish the TXT record your relay gives for selector {selector} at {name}"
        records = self.dns.txt(name)
        records = [t for t in records if "p=" in t.replace(" ", "")] or records
        if not records:
            self.add("dkim", name, "fail", f"no DKIM record at {name}", publish)
            return
        if len(records) > 1:
            self.add(
                "dkim",
                name,
                "fail",
                f"{len(records)} TXT records at {name}: receivers may pick either",
                f"keep one: {publish}",
            )
            return
        try:
            found = tags(records[0])
        except ValueError as exc:
            self.add("dkim", name, "fail", f"the record is not valid DKIM: {exc}", publish)
            return
        problem = ""
        if found.get("v", "DKIM1") != "DKIM1":
            problem = f"v={found['v']} (must be DKIM1, or left out)"
        elif "p" not in found:
            problem = "it has no p= (public key) tag"
        elif not found["p"]:
            problem = "its p= is empty: the key is revoked"
        elif found.get("k", "rsa") not in ("rsa", "ed25519"):
            problem = f"k={found['k']} (rsa or ed25519)"
        if not problem:
            try:
                published = base64.b64decode(found["p"], validate=True)
            except ValueError:
                problem = "its p= is not base64"
        if problem:
            self.add("dkim", name, "fail", f"the record is not valid DKIM: {problem}", publish)
            return
        if own is not None and not same_key(kind, public, found.get("k", "rsa"), published):
            self.add(
                "dkim",
                name,
                "fail",
                f"the record at {name} holds another key than {key_path(own, self.base).name}: "
                "every signature would fail",
                f"replace it: {publish}",
            )
            return
        if own is not None:
            trouble = signer.check_record(records[0])
            if trouble:
                self.add(
                    "dkim",
                    name,
                    "fail",
                    f"a message signed with {key_path(own, self.base).name} does not verify "
                    f"against the record at {name} ({trouble})",
                    f"replace it: {publish}",
                )
                return
        kind = found.get("k", "rsa").lower()
        what = "matches the key file" if own is not None else "the relay's key is published"
        if found.get("t", "").lower().replace(" ", "").split(":").count("y"):
            self.add(
                "dkim",
                name,
                "warn",
                f"k={kind}, {what}, but t=y marks the key as in testing: receivers may treat "
                "its signatures as if the mail were unsigned",
                f"publish the record without t=y at {name}",
            )
        else:
            self.add("dkim", name, "pass", f"k={kind}, {what}")
        (self.dkim_ed25519 if kind == "ed25519" else self.dkim_ok).append(domain)

    # -- DMARC ------------------------------------------------------------------------

    def check_dmarc(self) -> None:
        domain = self.from_domain
        org = organisational(domain)
        where = f"_dmarc.{domain}"
        records = [t for t in self.dns.txt(where) if _dmarc_start(t)]
        if not records and org != domain:
            where = f"_dmarc.{org}"
            records = [t for t in self.dns.txt(where) if _dmarc_start(t)]
        publish = (
            f'publish a TXT record at _dmarc.{org}: "v=DMARC1; p=none; '
            f'rua=mailto:dmarc-reports@{org}" (p=none monitors; quarantine or reject later)'
        )
        if not records:
            self.add(
                "dmarc",
                f"_dmarc.{domain}",
                "fail",
                f"no DMARC record at _dmarc.{domain}"
                + (f" or _dmarc.{org}" if org != domain else ""),
                publish,
            )
            return
        if len(records) > 1:
            self.add(
                "dmarc",
                where,
                "fail",
                f"{len(records)} DMARC records at {where}: receivers then ignore DMARC",
                f"keep one: {publish}",
            )
            return
        try:
            found = tags(records[0])
        except ValueError as exc:
            self.add("dmarc", where, "fail", f'"{records[0]}" is not valid: {exc}', publish)
            return
        policy = found.get("p", "").lower()
        if found.get("v") != "DMARC1" or policy not in ("none", "quarantine", "reject"):
            self.add(
                "dmarc",
                where,
                "fail",
                f'"{records[0]}" is not valid: it must start v=DMARC1 and have p=none, '
                "p=quarantine or p=reject",
                publish,
            )
            return
        subpolicy = found.get("sp", "").lower()
        if where != f"_dmarc.{domain}" and subpolicy:
            # The organisational domain's record: its sp= applies to a subdomain From.
            if subpolicy not in ("none", "quarantine", "reject"):
                self.add(
                    "dmarc",
                    where,
                    "fail",
                    f'"{records[0]}" is not valid: sp={subpolicy} (none, quarantine or reject)',
                    publish,
                )
                return
            self.add("dmarc", where, "pass", f"sp={subpolicy} applies to {domain} (p={policy})")
        else:
            self.add("dmarc", where, "pass", f"p={policy}")
        self.check_alignment(found)

    def check_alignment(self, found: dict[str, str]) -> None:
        domain, bounce = self.from_domain, self.bounce_domain
        strict_spf = found.get("aspf", "r").lower() == "s"
        strict_dkim = found.get("adkim", "r").lower() == "s"
        spf_state = self.spf_relay.get(bounce)
        spf_aligned = aligned(domain, bounce, strict_spf)
        dkim = [d for d in self.dkim_ok if aligned(domain, d, strict_dkim)]
        mode = "strict" if strict_spf or strict_dkim else "relaxed"
        if dkim:
            self.add("dmarc_alignment", domain, "pass", f"DKIM d={dkim[0]} is aligned ({mode})")
            return
        if spf_aligned and spf_state == "pass":
            self.add(
                "dmarc_alignment", domain, "pass", f"SPF of the bounce domain {bounce} is aligned"
            )
            return
        fix = (
            f"sign with DKIM under d={organisational(domain)} ([newsletter] dkim, or your "
            f"relay's key under relay_dkim), or send with a bounce_address in "
            f"{organisational(domain)} whose SPF authorises the relay"
        )
        if spf_aligned and spf_state == "warn":
            self.add(
                "dmarc_alignment",
                domain,
                "warn",
                f"aligned through SPF of {bounce} only if its record authorises the relay, "
                "which famfeeds cannot tell; no aligned DKIM key checked out",
                fix,
            )
            return
        why = [f"the bounce domain {bounce} is not aligned with {domain}"]
        if spf_aligned:
            why = [f"the SPF record of {bounce} does not authorise the relay"]
        why.append("no DKIM key under an aligned d= domain checked out")
        self.add("dmarc_alignment", domain, "fail", "; ".join(why) + f" ({mode})", fix)

    # -- MX ---------------------------------------------------------------------------

    def check_mx(self) -> None:
        domain = self.bounce_domain
        exchanges = self.dns.records(domain, "MX")
        if len(exchanges) == 1 and exchanges[0].exchange.to_text() == ".":
            self.add(
                "mx",
                domain,
                "fail",
                f"{domain} publishes a null MX (RFC 7505): it accepts no mail, so bounces are lost",
                f"publish an MX record for {domain} naming the server that receives bounces, "
                "or set bounce_address to an address whose domain receives mail",
            )
            return
        if exchanges:
            names = ", ".join(sorted(str(r.exchange).rstrip(".") for r in exchanges))
            self.add("mx", domain, "pass", f"MX: {names}")
            return
        publish = (
            f'publish an MX record for {domain} (e.g. "{domain}. MX 10 mail.{domain}.") '
            "naming the server that receives bounces"
        )
        if self.dns.addresses(domain):
            self.add(
                "mx",
                domain,
                "warn",
                f"no MX record; mail goes to {domain}'s own address (A/AAAA fallback)",
                publish,
            )
            return
        self.add("mx", domain, "fail", f"no MX and no address record for {domain}", publish)

    # -- one-click unsubscribe --------------------------------------------------------

    def check_one_click(self) -> None:
        """POST a one-click unsubscribe with a token no subscriber holds."""
        template = self.newsletter.unsubscribe_template
        probe = secrets.token_urlsafe(24)
        url = template.replace("{token}", probe)
        shown = template
        if urlsplit(url).scheme.lower() != "https":
            self.add(
                "unsubscribe_https",
                shown,
                "fail",
                "the List-Unsubscribe URL is not https: Gmail and Yahoo ignore one-click "
                "unsubscribe over http",
                "serve the subscriptions service behind https and set service_url (or "
                "unsubscribe_url) to its https:// address",
            )
        else:
            self.add("unsubscribe_https", shown, "pass", "https")
        status, headers, problem = post_one_click(url)
        fix_reach = (
            "start famfeeds subscriptions where service_url points (or make unsubscribe_url "
            "answer a POST of List-Unsubscribe=One-Click)"
        )
        if problem:
            self.add("one_click", shown, "fail", f"no answer: {problem}", fix_reach)
        elif 200 <= status < 300:
            self.add("one_click", shown, "pass", f"the one-click POST was answered {status}")
        elif status == 404 and headers.get(UNKNOWN_TOKEN_HEADER.lower()) == UNKNOWN_TOKEN_VALUE:
            self.add(
                "one_click",
                shown,
                "pass",
                "the subscriptions service answered the one-click POST (404 for the probe's "
                "unknown token; nothing changed)",
            )
        elif 300 <= status < 400:
            self.add(
                "one_click",
                shown,
                "fail",
                f"the one-click POST was redirected ({status}): mailbox providers do not follow it",
                "point service_url (or unsubscribe_url) at the address that answers itself",
            )
        elif status == 405:
            self.add(
                "one_click",
                shown,
                "fail",
                "the URL does not take POST (405): one-click unsubscribe is a POST (RFC 8058)",
                fix_reach,
            )
        elif status == 404 and _famfeeds_service(headers):
            self.add(
                "one_click",
                shown,
                "fail",
                "the one-click POST was answered 404 by famfeeds subscriptions, but not by its "
                "unsubscribe endpoint: the URL's path is wrong, so every unsubscribe would fail",
                "set service_url to the service's public base address, including the path it "
                "is served under (famfeeds subscriptions --base-path), or fix unsubscribe_url",
            )
        else:
            self.add(
                "one_click",
                shown,
                "warn" if status in (400, 404) else "fail",
                f"the one-click POST with an unknown token was answered {status}, not by "
                "famfeeds subscriptions",
                "make sure a POST of List-Unsubscribe=One-Click to this URL unsubscribes "
                "(test it with a real token)",
            )

    # -- TLS --------------------------------------------------------------------------

    def check_tls(self) -> None:
        from famfeeds.delivery.smtp import Connection, ConnectTrouble, SmtpTarget

        url = self.relay_url
        if not url:
            self.add(
                "tls",
                "(no relay)",
                "warn",
                "no smtp_url: the relay's TLS is not checked",
                "set [newsletter] smtp_url (or pass --smtp)",
            )
            return
        target = SmtpTarget.parse(url)
        # Without a user: the check never logs in (and needs no password).
        connection = Connection(replace(target, user=None, starttls="auto"), None, SMTP_TIMEOUT)
        try:
            connection.open()
        except (ConnectTrouble, FamfeedsError) as exc:
            message = exc.message if isinstance(exc, FamfeedsError) else str(exc)
            self.add(
                "tls",
                str(target),
                "fail",
                f"could not open a session: {message}",
                "make sure smtp_url names the relay and that it answers",
            )
            return
        try:
            encrypted = connection.smtp is not None and isinstance(
                connection.smtp.sock, ssl.SSLSocket
            )
            version = connection.smtp.sock.version() if encrypted else None  # type: ignore[union-attr]
        finally:
            connection.close()
        if encrypted:
            how = "TLS from the first byte" if target.encrypted_from_start else "STARTTLS"
            self.add("tls", str(target), "pass", f"{how} ({version})")
            return
        if _on_loopback(target.host):
            self.add(
                "tls",
                str(target),
                "warn",
                "the relay runs on this machine and offers no STARTTLS: the hand-over stays on "
                "this machine, but whether mail leaves it encrypted is the relay's own setting",
                "make sure the relay uses TLS when it delivers: for Postfix, set "
                "smtp_tls_security_level = may in main.cf (postconf -e), then postfix reload",
            )
            return
        self.add(
            "tls",
            str(target),
            "fail",
            "the relay offers no STARTTLS: addresses, the password and every message would "
            "travel unencrypted",
            "turn on TLS at the relay (a certificate and STARTTLS on its submission port), "
            "or use its smtps:// port (usually 465)",
        )


def _on_loopback(host: str) -> bool:
    """Whether the relay's host is this machine: ``localhost`` or a loopback address."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _spf_all(record: str) -> str | None:
    """The qualifier of an SPF record's ``all`` (``"+"``, ``"-"``, ``"~"``, ``"?"``, or
    ``""`` when it has none), ``"redirect"`` when instead a ``redirect=`` decides, or None
    when the record has neither."""
    redirect = False
    for term in record.split()[1:]:
        lowered = term.lower()
        qualifier = lowered[:1] if lowered[:1] in "+-~?" else ""
        if lowered[len(qualifier) :] == "all":
            return qualifier
        redirect = redirect or lowered.startswith("redirect=")
    return "redirect" if redirect else None


def _spf_start(text: str) -> bool:
    return text[:7].lower() == "v=spf1 "


def _dmarc_start(text: str) -> bool:
    return text.replace(" ", "")[:9].lower() == "v=dmarc1;" or text.strip().lower() == "v=dmarc1"


def _famfeeds_service(headers: dict[str, str]) -> bool:
    """Whether a response carries the subscriptions service's security headers."""
    return (
        "default-src 'none'" in headers.get("content-security-policy", "")
        and headers.get("referrer-policy", "") == "no-referrer"
    )


def post_one_click(url: str) -> tuple[int, dict[str, str], str]:
    """POST ``List-Unsubscribe=One-Click`` to ``url`` as a mailbox provider does (no
    cookies, no redirects followed): (status, lower-cased headers, '' or the problem)."""
    import http.client

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return 0, {}, "the URL's port is not a number"
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme.lower() == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=HTTP_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT)
    body = b"List-Unsubscribe=One-Click"
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "famfeeds-doctor",
            },
        )
        response = connection.getresponse()
        response.read(65536)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, ""
    except ssl.SSLCertVerificationError as exc:
        return 0, {}, f"its TLS certificate was not accepted ({exc.verify_message})"
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return 0, {}, f"{host}:{port or parts.scheme}: {reason}"
    finally:
        connection.close()


def same_key(kind: str, public: bytes, published_kind: str, published: bytes) -> bool:
    """Whether a record's key is ``public`` (an RSA record may hold the bare PKCS#1 key)."""
    if kind != published_kind.lower():
        return False
    if published == public:
        return True
    if kind != "rsa":
        return False
    from cryptography.hazmat.primitives import serialization

    try:
        pkcs1 = serialization.load_der_public_key(public).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    except ValueError:
        return False
    return published == pkcs1


def examine(
    newsletter: Newsletter,
    *,
    nameserver: str | None = None,
    nameserver_source: str = "--nameserver",
    resolver: dns.resolver.Resolver | None = None,
    smtp_url: str | None = None,
    base: Path | None = None,
    http_probe: bool = True,
    tls_probe: bool = True,
) -> Checkup:
    """Run every check for ``newsletter`` (see the module's rules)."""
    chosen = resolver if resolver is not None else make_resolver(nameserver, nameserver_source)
    doctor = Doctor(newsletter, Dns(chosen), smtp_url, base or Path.cwd())
    return doctor.run(http_probe=http_probe, tls_probe=tls_probe)


# -- once per issue, for famfeeds send -----------------------------------------------------


def passed_before(state: Path, show: str, issue: str) -> bool:
    """Whether the pre-send check of ``issue`` passed (recorded by :func:`remember`)."""
    try:
        data = json.loads((state / DOCTOR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and f"{show}/{issue}" in data.get("passed", {})


def remember(state: Path, show: str, issue: str) -> None:
    """Record that ``issue`` passed its pre-send check (0600, written whole and synced,
    so a resumed send after SIGKILL does not check again)."""
    from famfeeds.build.project import PRIVATE_FILE_MODE

    path = state / DOCTOR_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    passed = data.setdefault("passed", {})
    passed[f"{show}/{issue}"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    temporary = path.with_name(f".{DOCTOR_FILE}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    with contextlib.suppress(OSError):
        folder = os.open(state, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
