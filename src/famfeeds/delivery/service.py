"""The subscriptions service: sign-up with double opt-in, confirmation, one-click unsubscribe.

A Starlette application served by uvicorn, in front of the subscriber store. The rules:

- ``POST /subscribe`` answers the same "check your inbox" page whatever the address's state,
  so the form cannot tell anyone who is subscribed. The confirmation is queued in the
  store's outbox in the transaction that answers the sign-up, and the outbox's threads mail
  it: a sign-up answered 200 is mailed even if the service is killed at once (the next
  start takes the queue up again). A filled-in honeypot field gets the same page and
  changes nothing.
- The confirmation link carries a token drawn for that one request, never the unsubscribe
  token that every issue carries: a stranger holding an old issue can unsubscribe its
  reader (that is what one-click means) but cannot confirm a sign-up, so cannot bring back
  an address that left, nor put a name of their choosing into its greeting.
- SIGTERM: uvicorn stops accepting and lets requests in flight finish (3 s at most); the
  outbox's threads get 3 s more to finish a mail, and a mail still in flight is put back
  in the queue. Confirmation mails have SMTP timeouts of their own (10 s), so a relay that
  stalls never keeps the process past 10 s.
- A request head that is not complete within 10 s is closed (``--header-timeout``), so
  clients that trickle a byte at a time cannot use up the service. Paths are answered as
  they are routed or 404: no redirect (a trailing slash is not redirected, so no Location
  is ever built from the Host header). A client that goes away during its body gets one
  log line.
- ``GET`` never changes state (link scanners fetch every link in a message): the confirm
  and unsubscribe links show a page with one button, a form that POSTs.
- A link that has done its work says so, and tells no more than its holder may know
  (a stranger may hold an old link): a confirmation link no longer open says whether it
  was used, its sign-up cancelled by an unsubscribe, or expired, and whether the address
  gets issues now, without the address, the name or why it gets none; the unsubscribe
  link of an address that gets no issues says it is already done, without the address
  or the reason (unsubscribed, bounced, complained), and with no button.
- ``POST /unsubscribe?token=...`` (RFC 8058 one-click, urlencoded or multipart, no cookies,
  or the page's button) unsubscribes at once and answers 200, never a redirect.
- Limits: request bodies are capped while they are read (with or without Content-Length),
  sign-ups per client address per minute (429 past it), one confirmation per address per
  interval (kept in the store, so restarts do not reset it), open sign-ups expire.
- Every response carries Content-Security-Policy, X-Content-Type-Options: nosniff,
  Referrer-Policy: no-referrer (tokens are in URLs) and Cache-Control: no-store; pages are
  Jinja2 templates with autoescape, so no input is echoed unescaped.
- Every page and the confirmation mail speak the show's language (show.toml ``language``),
  from the same gettext catalogues and CLDR formats as the build. The mail greets by the
  name typed into the form and puts it in To, unless it could carry a link, an address or
  a phone number into someone else's inbox (see :func:`mail_name`).
- Time zones: the sign-up forms carry a hidden ``timezone`` field that a small inline
  script (allowed by its hash in the CSP, nothing else may run) fills from the browser's
  ``Intl`` API. A value the tz database does not know is dropped (the show's zone then
  applies), never stored. The confirm page shows the zone in the page's language and a
  list to change it (its first entry follows the show's zone), sent with the confirming
  POST; a POST without the list keeps the sign-up's zone.
- The client address is the TCP peer; X-Forwarded-For counts only when the peer is one of
  the configured proxies (none by default).
- The store is asked from the event loop itself, on a connection that never waits: no busy
  timeout (a store held by another writer raises StoreBusy at once, and the request then
  waits for it in a worker thread, as every request did before) and no automatic
  checkpoint (a checkpoint syncs the disk; a thread of its own does it soon after writes).
  A store call takes a tenth of a millisecond; the hop to a worker thread cost three times
  that, and under a burst most of the service's time. Durability is SQLite's commit
  either way: a one-click unsubscribe is answered 200 only after its transaction committed,
  which survives SIGKILL (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import ipaddress
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from famfeeds.delivery.store import (
    SUPPRESSING,
    InvalidAddress,
    Signup,
    StoreBusy,
    StoreError,
    SubscriberStore,
    TokenHolder,
    valid_token,
)
from famfeeds.errors import FamfeedsError
from famfeeds.plan.sendtime import InvalidZone, subscriber_zone
from famfeeds.render.i18n import N_, localiser
from famfeeds.render.message import header_address
from famfeeds.render.personal import one_line

if TYPE_CHECKING:
    from babel import Locale
    from jinja2 import Environment
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from famfeeds.delivery.dkim import Signer
    from famfeeds.records.models import Show

Mailer = Callable[[str, str | None, str, str, str], None]
"""Sends one message: (address, name for To or None, subject, text, html)."""
Clock = Callable[[], datetime]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORT = 8478
"""Where the service listens unless told otherwise: a port no common tool takes by default
(not 8025/1025, the usual local SMTP sinks aiosmtpd and Mailpit; not 8000, famfeeds serve
and uvicorn; not 8080, 5000, 3000, 8888), so the README's steps can run side by side."""
HONEYPOT = "website"
"""The form field that people never see and bots fill in."""
ZONE_FIELD = "timezone"
"""The sign-up forms' hidden field for the browser's time zone (and the confirm page's list)."""
ZONE_SCRIPT = (
    'document.querySelectorAll("input[name=timezone]").forEach(function (field) {'
    " try { field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; }"
    " catch (error) {} });"
)
"""The one script of the service's pages: it fills the hidden time zone field."""
ZONE_SCRIPT_HASH = base64.b64encode(hashlib.sha256(ZONE_SCRIPT.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'sha256-{ZONE_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
HTTP_ERRORS = {
    400: (N_("Bad request"), N_("The request could not be understood.")),
    404: (N_("Not found"), N_("There is nothing at this address.")),
    405: (N_("Not allowed"), N_("This address does not take that kind of request.")),
    413: (N_("Too large"), N_("The request is larger than a sign-up can be.")),
}
"""Titles and messages of the error pages the framework raises, by status code."""
MAX_FIELDS = 20
EXPIRY_EVERY = 3600.0
"""Seconds between sweeps of expired sign-ups."""
CHECKPOINT_AFTER = 0.25
"""Seconds from a write by the event loop's connection to the checkpoint that follows it."""
OUTBOX_THREADS = 2
OUTBOX_POLL = 2.0
"""Seconds between looks at the outbox when no sign-up woke it (retries; queued mails of
another process that died)."""
OUTBOX_STOP_WAIT = 3.0
"""Seconds a stopping service waits for a confirmation in flight before putting it back."""
RETRY_WAITS = (60, 300, 900, 3600, 3600)
"""Seconds before each retry of a confirmation mail that failed for a passing reason."""
MAIL_TIMEOUT = 10.0
"""Seconds a confirmation mail waits for the relay at each step (connect, each reply)."""
HEAD_TIMEOUT = 10
"""Seconds a client has to send a whole request head."""
GRACEFUL_SHUTDOWN = 3
"""Seconds uvicorn lets requests in flight finish at SIGTERM."""

log = logging.getLogger("famfeeds.delivery.service")


@dataclass(frozen=True)
class Limits:
    """The abuse limits."""

    max_body: int = 8192
    """Bytes of a request body; larger gets 413."""
    signups_per_minute: int = 5
    """Sign-ups per client address per minute; more get 429."""
    confirmation_interval: timedelta = timedelta(hours=1)
    """At most one confirmation mail per address in this time."""
    pending_days: int = 7
    """A sign-up not confirmed within this many days expires."""
    head_timeout: int = HEAD_TIMEOUT
    """Seconds a client has to send a whole request head; then the connection is closed."""

    @property
    def pending_age(self) -> timedelta:
        """How long a sign-up stays open."""
        return timedelta(days=self.pending_days)


@dataclass(frozen=True)
class Settings:
    """Where the service is reachable and what it trusts."""

    public_url: str
    """The service's public address (confirmation links start with it)."""
    base_path: str = "/"
    """The path the service's endpoints live under, as requests arrive at it."""
    trusted_proxies: tuple[Network, ...] = ()
    """Peers whose X-Forwarded-For is believed."""
    limits: Limits = field(default_factory=Limits)
    templates: Path | None = None
    """The project's own templates, searched before the shipped ones."""
    locale: Path | None = None
    """The project's own message catalogues."""

    @property
    def prefix(self) -> str:
        """The base path without its trailing slash ('' for '/')."""
        return "/" + self.base_path.strip("/") if self.base_path.strip("/") else ""

    def endpoint(self, name: str) -> str:
        """The public URL of an endpoint."""
        return self.public_url.rstrip("/") + "/" + name


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Proxy addresses or networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)
    except ValueError as exc:
        raise FamfeedsError(f"not an IP address or network: {exc}") from None


def client_address(
    peer: str | None, forwarded: Iterable[str], trusted: tuple[Network, ...]
) -> str | None:
    """The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For entry that is not a trusted proxy itself."""
    if peer is None or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header: believe only the peer
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def parse_form(content_type: str, body: bytes) -> dict[str, str] | None:
    """A form body's fields (the first value of each), urlencoded or multipart; None for
    another media type or a body that is not a form. Raises ValueError past 20 fields."""
    header = Message()
    header["content-type"] = content_type or "application/octet-stream"
    media = header.get_content_type()
    if media == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", "replace")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name, value)
        return fields
    if media == "multipart/form-data" and header.get_param("boundary"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return None
        fields = {}
        for count, part in enumerate(message.iter_parts(), 1):
            if count > MAX_FIELDS:
                raise ValueError("too many fields")
            label = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(label, str) or part.get_filename() is not None:
                continue
            value = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            fields.setdefault(label, value)
        return fields
    return None


class RateLimit:
    """At most ``per_minute`` events per key in any 60 seconds (sliding window)."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when it is over the limit."""
        now = self.clock().timestamp()
        with self.lock:
            if len(self.hits) > 10_000:
                self.hits = {k: q for k, q in self.hits.items() if q and q[-1] > now - 60}
            hits = self.hits.setdefault(key, deque())
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False
            hits.append(now)
            return True


class Guard:
    """ASGI middleware: security headers on every response, and the body cap enforced
    while the body is read (a declared Content-Length over the cap fails at once)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = declared is not None and (
            not declared.isdigit() or int(declared) > self.max_body
        )
        received = 0

        async def capped() -> MutableMapping[str, Any]:
            nonlocal received
            if too_large:
                raise _payload_too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _payload_too_large()
            return message

        async def secured(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, capped, secured)


def _payload_too_large() -> Exception:
    from starlette.exceptions import HTTPException

    return HTTPException(413, "The request is too large.")


class StorePool:
    """One store connection per worker thread (SQLite connections stay in their thread),
    and the event loop's own, which never waits (see the module's rules)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        self.local = threading.local()
        self.opened: list[SubscriberStore] = []
        self.lock = threading.Lock()
        self.loop: SubscriberStore | None = None
        self.checkpoints = Checkpoints(self)

    def loop_store(self) -> SubscriberStore:
        """The event loop's connection, opened on first use: no busy timeout, no automatic
        checkpoint. Call it from the event loop's thread only."""
        if self.loop is None:
            store = SubscriberStore.open(self.path, clock=self.clock, busy_timeout=0)
            store.db.execute("PRAGMA wal_autocheckpoint = 0")
            self.loop = store
            with self.lock:
                self.opened.append(store)
        return self.loop

    def get(self) -> SubscriberStore:
        """This thread's connection, opened on first use."""
        store: SubscriberStore | None = getattr(self.local, "store", None)
        if store is None:
            store = SubscriberStore.open(self.path, clock=self.clock)
            self.local.store = store
            with self.lock:
                self.opened.append(store)
        return store

    def close(self) -> None:
        """Stop the checkpoints, then close every connection (at shutdown)."""
        self.checkpoints.stop()
        with self.lock:
            for store in self.opened:
                store.close()
            self.opened.clear()
            self.loop = None


class Checkpoints:
    """Checkpoints of the store in a thread of their own, soon after the event loop's
    connection wrote (that connection never checkpoints: a checkpoint syncs the disk)."""

    def __init__(self, pool: StorePool) -> None:
        self.pool = pool
        self.wanted = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def after_write(self) -> None:
        """Ask for a checkpoint shortly (many writes make one checkpoint)."""
        if self.thread is None:
            self.thread = threading.Thread(
                target=self.run, name="famfeeds-checkpoints", daemon=True
            )
            self.thread.start()
        self.wanted.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            if not self.wanted.wait(timeout=1.0):
                continue
            self.stopping.wait(CHECKPOINT_AFTER)
            self.wanted.clear()
            try:
                self.pool.get().checkpoint()
            except StoreError as exc:
                log.error("subscriber store: %s", exc.message)

    def stop(self) -> None:
        """Run a last checkpoint if one is due, and end the thread."""
        self.stopping.set()
        self.wanted.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None


class Outbox:
    """The threads that mail confirmations: each takes the next due request from the
    store's outbox (leased, so a killed process's mail is taken again), mails it and
    records the outcome; a passing failure is retried later, a permanent one given up."""

    def __init__(
        self, pool: StorePool, show: str, send: Callable[[Signup], None], threads: int
    ) -> None:
        self.pool = pool
        self.show = show
        self.send = send
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.in_flight: dict[int, Signup] = {}
        self.threads = [
            threading.Thread(target=self.run, name=f"famfeeds-confirmations-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        """Start the threads (they mail what earlier runs left queued, too)."""
        for thread in self.threads:
            thread.start()

    def notify(self) -> None:
        """A request was queued: look at the outbox now."""
        self.wake.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                request = self.pool.get().next_confirmation(self.show)
            except StoreError as exc:
                log.error("subscriber store: %s", exc.message)
                request = None
            if request is None:
                self.wake.wait(OUTBOX_POLL)
                continue
            ident = threading.get_ident()
            with self.lock:
                self.in_flight[ident] = request
            try:
                self.deliver(request)
            finally:
                with self.lock:
                    self.in_flight.pop(ident, None)

    def deliver(self, request: Signup) -> None:
        """Mail one request and record how it went."""
        try:
            self.send(request)
        except Exception as exc:
            if self.stopping.is_set():
                return  # stop() puts it back
            permanent = bool(getattr(exc, "permanent", False))
            last = permanent or request.tries >= len(RETRY_WAITS) + 1
            wait = RETRY_WAITS[min(request.tries, len(RETRY_WAITS)) - 1]
            log.error(
                "could not send a confirmation (try %d): %s; %s",
                request.tries,
                exc,
                "given up" if last else f"trying again in {wait} s",
            )
            try:
                self.pool.get().confirmation_failed(
                    request, None if last else timedelta(seconds=wait)
                )
            except StoreError as again:
                log.error("subscriber store: %s", again.message)
            return
        try:
            self.pool.get().confirmation_sent(request)
        except StoreError as exc:
            log.error("subscriber store: %s", exc.message)

    def stop(self) -> None:
        """Let the threads finish the mail in hand for a few seconds, then put back in the
        queue whatever is still in flight (the next start mails it)."""
        self.stopping.set()
        self.wake.set()
        deadline = time.monotonic() + OUTBOX_STOP_WAIT
        for thread in self.threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            stuck = list(self.in_flight.values())
        for request in stuck:
            try:
                self.pool.get().confirmation_put_back(request)
            except StoreError as exc:
                log.error("subscriber store: %s", exc.message)
        if stuck:
            log.warning(
                "%d confirmation mail(s) in flight put back in the queue; the next start "
                "sends them",
                len(stuck),
            )


class Service:
    """The endpoints, bound to one show, one store, one mailer and one clock."""

    def __init__(
        self,
        show: Show,
        store_path: Path,
        mailer: Mailer,
        settings: Settings,
        clock: Clock,
        templates: Environment,
    ) -> None:
        self.show = show
        self.settings = settings
        self.limits = settings.limits
        self.mailer = mailer
        self.clock = clock
        self.templates = templates
        self.l10n = localiser(templates)
        self.gettext = self.l10n.gettext
        self.ngettext = self.l10n.ngettext
        self.pool = StorePool(store_path, clock)
        self.signups = RateLimit(self.limits.signups_per_minute, clock)
        self.swept = 0.0
        self.outbox = Outbox(self.pool, show.slug, self.send_confirmation, OUTBOX_THREADS)
        """Confirmations go out from threads of their own: a slow SMTP server never holds
        up the store's requests, and the answer never waits for the mail."""

    def shutdown(self) -> None:
        """Stop the outbox (a mail in flight is put back), then close the store."""
        self.outbox.stop()
        self.pool.close()

    # -- helpers -------------------------------------------------------------------------

    async def _store(self, call: Callable[[SubscriberStore], Any], writes: bool = False) -> Any:
        """Run ``call`` on the event loop's connection; when another writer holds the store
        (StoreBusy: nothing was changed), again with a worker thread's connection, which
        waits for it. ``writes``: ``call`` may commit (a checkpoint follows)."""
        from starlette.concurrency import run_in_threadpool

        try:
            result = call(self.pool.loop_store())
        except StoreBusy:
            return await run_in_threadpool(lambda: call(self.pool.get()))
        if writes:
            self.pool.checkpoints.after_write()
        return result

    def page(
        self,
        name: str,
        code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """A page from templates/service/."""
        from starlette.responses import HTMLResponse

        html = self.templates.get_template(f"service/{name}.html.j2").render(
            show=self.show,
            newsletter=self.show.newsletter,
            zone_script=ZONE_SCRIPT,
            zone_label=self.zone_label,
            **context,
        )
        response = HTMLResponse(html, code, headers)
        response.headers["Content-Language"] = self.show.language
        return response

    def zone_label(self, name: str | None) -> str:
        """A zone as the page's language names it, after its IANA name (see
        :func:`zone_label`); None is the show's zone."""
        return zone_label(name or self.show.timezone, self.l10n.locale)

    def zone_choices(self) -> list[tuple[str, str]]:
        """Every zone for the confirm page's list, (IANA name, label), by name."""
        return zone_choices(self.l10n.locale)

    def error(self, status: int, title: str, message: str, **headers: str) -> Response:
        """A plain error page."""
        return self.page("error", status, headers, status=status, title=title, message=message)

    def unavailable(self, exc: StoreError) -> Response:
        """503 while the store is locked or broken; the reason goes to the log only."""
        log.error("subscriber store: %s", exc.message)
        return self.error(
            503,
            self.gettext("Please try again in a moment"),
            self.gettext("The subscription list is busy. Nothing was changed; please try again."),
            **{"Retry-After": "5"},
        )

    def client(self, request: Request) -> str | None:
        """The client's address (see client_address)."""
        peer = request.client.host if request.client else None
        forwarded = request.headers.getlist("x-forwarded-for")
        return client_address(peer, forwarded, self.settings.trusted_proxies)

    async def form(self, request: Request) -> dict[str, str] | None:
        """The request's form fields; None when the body is not a form. A client that goes
        away while sending its body ends the request with one log line."""
        from starlette.exceptions import HTTPException
        from starlette.requests import ClientDisconnect

        try:
            body = await request.body()
        except ClientDisconnect:
            log.warning("a client disconnected before its request body was complete")
            raise HTTPException(400) from None  # handled as any 400: no traceback
        try:
            return parse_form(request.headers.get("content-type", ""), body)
        except ValueError:
            return None

    def _token(self, request: Request, fields: dict[str, str] | None = None) -> str | Response:
        """The token of the query (or form), or a 400 page when it is missing or malformed."""
        token = request.query_params.get("token") or (fields or {}).get("token", "")
        if not valid_token(token):
            return self.error(
                400,
                self.gettext("This link is incomplete"),
                self.gettext(
                    "The link is missing its code or was cut short. Copy the whole link from "
                    "the message, or use the link in the message itself."
                ),
            )
        return token

    def _unknown(self) -> Response:
        return self.error(
            404,
            self.gettext("This link is not valid"),
            self.gettext("We do not know this link. It may be from an address that was removed."),
        )

    # -- endpoints -----------------------------------------------------------------------

    async def subscribe_form(self, request: Request) -> Response:
        """GET /subscribe: a sign-up form of the service's own."""
        return self.page("subscribe")

    async def subscribe(self, request: Request) -> Response:
        """POST /subscribe: record a sign-up, answer the same page whatever its state, and
        mail the confirmation (after the commit, from the outbox)."""
        client = self.client(request)
        if not self.signups.allow(client or "unknown"):
            return self.error(
                429,
                self.gettext("Too many sign-ups"),
                self.gettext(
                    "Too many sign-ups came from your address in the last minute. "
                    "Please wait a minute and try again."
                ),
                **{"Retry-After": "60"},
            )
        fields = await self.form(request)
        if fields is None:
            return self.error(
                415,
                self.gettext("Not a form"),
                self.gettext("Send the sign-up form as an HTML form does (urlencoded)."),
            )
        address = fields.get("email", "").strip()
        if fields.get(HONEYPOT, "").strip():
            return self.check_inbox(address)
        if not address:
            return self.error(
                400,
                self.gettext("No email address"),
                self.gettext("Please fill in your email address."),
            )
        if len(address) > 254:
            return self.error(
                400, self.gettext("Not an email address"), self.gettext("That address is too long.")
            )
        name = fields.get("name") or None
        zone = browser_zone(fields.get(ZONE_FIELD, ""))
        try:
            signup = await self._store(
                lambda store: self._signup(store, address, name, client, zone), writes=True
            )
        except InvalidAddress:
            return self.error(
                400,
                self.gettext("Not an email address"),
                self.gettext(
                    "We cannot send mail to “%(address)s”. Please check it for typing mistakes.",
                    address=address,
                ),
            )
        except StoreError as exc:
            return self.unavailable(exc)
        if signup is not None:
            self.outbox.notify()
        return self.check_inbox(address)

    def check_inbox(self, address: str) -> Response:
        """The one answer to every sign-up, whatever the address's state."""
        hours = max(1, round(self.limits.confirmation_interval.total_seconds() / 3600))
        return self.page("check-inbox", email=address, interval_hours=hours)

    def _signup(
        self,
        store: SubscriberStore,
        address: str,
        name: str | None,
        client: str | None,
        zone: str | None = None,
    ) -> Signup | None:
        now = time.monotonic()
        if now - self.swept > EXPIRY_EVERY:
            self.swept = now
            store.expire_pending(self.show.slug, self.limits.pending_age)
        return store.signup(
            self.show.slug, address, name, client, self.limits.confirmation_interval, zone
        )

    def confirmation(self, signup: Signup) -> tuple[str, str, str]:
        """The confirmation's subject, text and HTML, in the show's language. The link's
        last day is a date in the show's time zone."""
        assert self.show.newsletter is not None
        url = self.settings.endpoint("confirm") + "?token=" + quote(signup.token, safe="")
        last_day = (self.clock() + self.limits.pending_age).astimezone(self.show.zone).date()
        subject = self.gettext(
            "Confirm your subscription to %(newsletter)s",
            newsletter=self.show.newsletter.sender_name,
        )
        context = {
            "show": self.show,
            "newsletter": self.show.newsletter,
            "email": signup.email,
            "name": mail_name(signup.name),
            "confirm_url": url,
            "pending_days": self.limits.pending_days,
            "expires": self.l10n.full_date(last_day),
            "subject": subject,
        }
        text = self.templates.get_template("service/confirmation.txt.j2").render(context)
        html = self.templates.get_template("service/confirmation.html.j2").render(context)
        return subject, text, html

    def send_confirmation(self, signup: Signup) -> None:
        """Mail one request's confirmation (from the outbox's threads); raises on failure."""
        subject, text, html = self.confirmation(signup)
        self.mailer(signup.email, mail_name(signup.name), subject, text, html)

    async def confirm_page(self, request: Request) -> Response:
        """GET /confirm?token=...: a page with one button; changes nothing."""
        token = self._token(request)
        if not isinstance(token, str):
            return token
        try:
            holder: TokenHolder | None = await self._store(
                lambda store: store.find_request(self.show.slug, token, self.limits.pending_age)
            )
        except StoreError as exc:
            return self.unavailable(exc)
        if holder is None:
            return self._unknown()
        if not holder.request_open:
            return self._closed(holder)
        if holder.status == "confirmed":
            return self.page("confirmed", holder=holder)
        return self.page("confirm", holder=holder, token=token, zones=self.zone_choices())

    def _closed(self, holder: TokenHolder) -> Response:
        """The page of a confirmation link that no longer confirms: whether it was used,
        cancelled or expired, and whether the address gets the newsletter now (200 when it
        does, else 410). It never shows the address or the name (a stranger may hold an
        old link), nor why an address gets nothing (unsubscribed, bounced, complained)."""
        subscribed = holder.status == "confirmed"
        return self.page(
            "closed-link",
            200 if subscribed else 410,
            request=holder.request,
            subscribed=subscribed,
            pending_days=self.limits.pending_days,
        )

    async def confirm(self, request: Request) -> Response:
        """POST /confirm: confirm the sign-up, recording the consent's time and address."""
        fields = await self.form(request)
        token = self._token(request, fields)
        if not isinstance(token, str):
            return token
        client = self.client(request)
        chosen = (fields or {}).get(ZONE_FIELD)
        zone = None if chosen is None else (browser_zone(chosen) if chosen else "")
        try:
            outcome = await self._store(
                lambda store: store.confirm(
                    self.show.slug, token, client, self.limits.pending_age, zone
                ),
                writes=True,
            )
            holder = await self._store(
                lambda store: store.find_request(self.show.slug, token, self.limits.pending_age)
            )
        except StoreError as exc:
            return self.unavailable(exc)
        if outcome is None or holder is None:
            return self._unknown()
        if outcome == "expired" or (outcome == "already" and not holder.request_open):
            return self._closed(holder)
        return self.page("confirmed", holder=holder)

    async def unsubscribe_page(self, request: Request) -> Response:
        """GET /unsubscribe?token=...: a page with one button; changes nothing."""
        token = self._token(request)
        if not isinstance(token, str):
            return token
        try:
            holder = await self._store(lambda store: store.find(self.show.slug, token))
        except StoreError as exc:
            return self.unavailable(exc)
        if holder is None:
            return self._unknown()
        if holder.status in SUPPRESSING:  # already done: no button, no address, no reason
            return self.page("already-unsubscribed")
        return self.page("unsubscribe", holder=holder, token=token)

    async def unsubscribe(self, request: Request) -> Response:
        """POST /unsubscribe?token=...: one-click (RFC 8058) or the page's button;
        unsubscribes at once and answers 200 (never a redirect); twice is fine."""
        fields = await self.form(request)
        token = self._token(request, fields)
        if not isinstance(token, str):
            return token
        source = "page" if (fields or {}).get("from") == "page" else "one-click"
        try:
            found = await self._store(
                lambda store: store.unsubscribe_token(self.show.slug, token, source), writes=True
            )
        except StoreError as exc:
            return self.unavailable(exc)
        if not found:  # marked: famfeeds doctor's one-click probe knows the service answered
            from famfeeds.delivery.doctor import UNKNOWN_TOKEN_HEADER, UNKNOWN_TOKEN_VALUE

            answer = self._unknown()
            answer.headers[UNKNOWN_TOKEN_HEADER] = UNKNOWN_TOKEN_VALUE
            return answer
        return self.page("unsubscribed")

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: 200 "ok" when the store answers, else 503."""
        from starlette.responses import PlainTextResponse

        try:
            await self._store(lambda store: store.check())
        except StoreError as exc:
            log.error("subscriber store: %s", exc.message)
            return PlainTextResponse("store unavailable\n", 503)
        return PlainTextResponse("ok\n")


def browser_zone(value: str) -> str | None:
    """A zone name sent by a form, if the tz database knows it; None (the show's zone) for
    an empty or unknown one, which is logged and otherwise ignored."""
    if not value.strip():
        return None
    try:
        return subscriber_zone(value)
    except InvalidZone:
        log.info("a form sent an unknown time zone (%d characters): ignored", len(value))
        return None


@lru_cache(maxsize=4096)
def zone_label(name: str, locale: Locale) -> str:
    """A zone's IANA name and its generic name in ``locale``: ``Europe/Berlin ·
    Mitteleuropäische Zeit``; UTC as itself."""
    from zoneinfo import ZoneInfo

    from babel.dates import get_timezone_name

    if name in ("UTC", "Etc/UTC"):
        return name
    generic = str(get_timezone_name(ZoneInfo(name), "long", locale=locale))
    return f"{name} · {generic}"


@lru_cache(maxsize=8)
def zone_choices(locale: Locale) -> list[tuple[str, str]]:
    """The zones the confirm page lists, (IANA name, label in ``locale``): every place of
    the tz database's zone tables, and UTC. A stored zone outside them (an old alias a
    browser sent) is added to the page's list by the template, so it stays chosen."""
    from famfeeds.records.zones import places

    return [(n, zone_label(n, locale)) for n in sorted(places() | {"UTC"})]


def create_app(
    show: Show,
    store_path: Path,
    mailer: Mailer,
    settings: Settings,
    clock: Clock | None = None,
) -> ASGIApp:
    """The service as an ASGI application (Starlette, wrapped in the body cap and the
    security headers)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    from famfeeds.build.project import template_environment

    if show.newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: add one to take sign-ups")
    service = Service(
        show,
        store_path,
        mailer,
        settings,
        clock or _utc_now,
        template_environment(settings.templates, show.language, settings.locale),
    )
    prefix = settings.prefix

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title, message = HTTP_ERRORS.get(exc.status_code, HTTP_ERRORS[400])
        return service.error(
            exc.status_code,
            service.gettext(title),
            service.gettext(message),
            **(exc.headers or {}),
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        return service.error(
            500,
            service.gettext("Something went wrong"),
            service.gettext("Please try again later."),
        )

    routes = [
        Route(f"{prefix}/subscribe", service.subscribe_form, methods=["GET"]),
        Route(f"{prefix}/subscribe", service.subscribe, methods=["POST"]),
        Route(f"{prefix}/confirm", service.confirm_page, methods=["GET"]),
        Route(f"{prefix}/confirm", service.confirm, methods=["POST"]),
        Route(f"{prefix}/unsubscribe", service.unsubscribe_page, methods=["GET"]),
        Route(f"{prefix}/unsubscribe", service.unsubscribe, methods=["POST"]),
        Route(f"{prefix}/healthz", service.healthz, methods=["GET"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: http_error,
        Exception: server_error,
    }

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.outbox.start()
        yield
        service.shutdown()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.router.redirect_slashes = False  # a redirect's Location would come from Host
    return Guard(app, settings.limits.max_body)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run(
    show: Show,
    store_path: Path,
    mailer: Mailer,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    public_url: str | None = None,
    base_path: str = "/",
    trusted_proxies: tuple[Network, ...] = (),
    limits: Limits | None = None,
    templates: Path | None = None,
    locale: Path | None = None,
    announce: Callable[[str, str], None] = lambda listening, public: None,
) -> None:
    """Serve the service with uvicorn until SIGINT or SIGTERM.

    The store is opened (created or migrated) and swept of expired sign-ups first, so a
    broken store stops the service before it listens; confirmations a killed process was
    sending are taken over at once (one service per show and store is the rule).
    ``announce`` gets the URL it listens on (port 0 picks a free one; for a wildcard host
    such as 0.0.0.0, this machine's loopback address, which a browser can open) and its
    public URL (default: show.toml's service_url, else that address). Raises
    FamfeedsError (StoreError included).
    """
    import uvicorn

    from famfeeds.build.preview import (
        browsable_url,
        head_timeout_protocol,
        listen,
        raise_file_limit,
    )

    limits = limits or Limits()
    files = raise_file_limit()
    with SubscriberStore.open(store_path) as store:
        store.expire_pending(show.slug, limits.pending_age)
        store.take_over_mail(show.slug)
    sock = listen(host, port, backlog=2048)
    listening = browsable_url(host, sock.getsockname()[1])
    public = (public_url or default_public_url(show, listening, base_path)).rstrip("/")
    settings = Settings(public, base_path, trusted_proxies, limits, templates, locale)
    app = create_app(show, store_path, mailer, settings)
    config = uvicorn.Config(
        app,
        http=head_timeout_protocol(),
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        timeout_keep_alive=limits.head_timeout,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        limit_concurrency=max(64, files - 64),
    )
    announce(listening, public)
    uvicorn.Server(config).run(sockets=[sock])


# -- mail ------------------------------------------------------------------------------


_NOT_A_NAME = re.compile(r"[\d@/\\:]|\.\w")
"""What a link, an address or a phone number is made of, and a name is not."""


def mail_name(name: str | None) -> str | None:
    """The sign-up's name as its confirmation mail may use it (the greeting, To's display
    name): on one line; None when there is none, or when it holds a digit, ``@``, ``/``,
    ``\\``, ``:`` or a dot straight before a letter or digit. Whoever fills in the form
    chooses the name, and the mail goes to the address typed beside it: a name must not
    be able to carry a link, an address or a phone number into a stranger's inbox."""
    text = one_line(name or "")
    if not text or _NOT_A_NAME.search(text):
        return None
    return text


def to_line(address: str, name: str | None) -> bytes:
    """The To header line: the address (domain in its ASCII (IDNA) form; a non-ASCII local
    part stays UTF-8, for SMTPUTF8), after the display name when there is one. A name that
    is not plain ASCII, or that holds ``=?`` (which a reader would decode as an encoded
    word), is written as RFC 2047 UTF-8 encoded words, so it reads back exactly as typed;
    a plain one is quoted where RFC 5322 needs it. Lines are folded before 78 characters
    where the name allows."""
    mailbox = f"<{header_address(address)}>"
    if not name:
        return f"To: {header_address(address)}\r\n".encode()
    if name.isascii() and name.isprintable() and "=?" not in name:
        display = formataddr((name, "x@x")).rpartition(" <")[0]  # quoted when needed
    else:
        display = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
    last = display.rpartition("\r\n")[2]
    fold = "\r\n " if len("To: ") + len(last) + 1 + len(mailbox) > 78 else " "
    return f"To: {display}{fold}{mailbox}\r\n".encode()


def confirmation_message(
    show: Show,
    address: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    name: str | None = None,
) -> bytes:
    """The confirmation as a message: plain text then HTML, from the newsletter's sender,
    in the show's language (``Content-Language``), with CRLF line ends (ready for SMTP),
    to the address with the sign-up's name (see :func:`mail_name` and :func:`to_line`)."""
    newsletter = show.newsletter
    assert newsletter is not None
    language = show.language
    message = EmailMessage()
    message["From"] = formataddr((newsletter.sender_name, newsletter.sender_address))
    if newsletter.reply_to:
        message["Reply-To"] = newsletter.reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(now.astimezone(UTC))
    domain = newsletter.sender_address.rpartition("@")[2]
    message["Message-ID"] = make_msgid("confirm", domain=domain)
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    message["Content-Language"] = language  # after the parts: set_content clears Content-*
    utf8 = not address.rpartition("@")[0].isascii()  # such a local part needs SMTPUTF8
    raw = message.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    # To goes in as written here (the policy would parse the name again and decode any
    # "=?...?=" in it), right after From and its folded lines.
    at = raw.index(b"\r\n") + 2
    while raw[at : at + 1] in (b" ", b"\t"):
        at = raw.index(b"\r\n", at) + 2
    return raw[:at] + to_line(address, mail_name(name)) + raw[at:]


def smtp_mailer(
    show: Show,
    smtp_url: str,
    password: str | None,
    clock: Clock | None = None,
    signer: Signer | None = None,
) -> Mailer:
    """A mailer that sends each confirmation of ``show`` over its own SMTP session,
    DKIM-signed with ``signer`` when given."""
    from famfeeds.delivery.smtp import Connection, SmtpTarget

    newsletter = show.newsletter
    if newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: add one to take sign-ups")
    target = SmtpTarget.parse(smtp_url)
    now = clock or _utc_now

    def send(address: str, name: str | None, subject: str, text: str, html: str) -> None:
        message = confirmation_message(show, address, subject, text, html, now(), name)
        if signer is not None:
            message = signer.sign(message)
        connection = Connection(target, password, MAIL_TIMEOUT, MAIL_TIMEOUT)
        try:
            connection.deliver(newsletter.sender_address, address, message, lambda: None)
        finally:
            connection.close()

    return send


def default_public_url(show: Show, listening: str, base_path: str) -> str:
    """The service's public URL: show.toml's service_url, else where it listens."""
    if show.newsletter is not None and show.newsletter.service_url:
        return show.newsletter.service_url.rstrip("/")
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    parts = urlsplit(listening)
    return f"{parts.scheme}://{parts.netloc}{base}"
