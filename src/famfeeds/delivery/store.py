"""The subscriber store: one SQLite file shared by the subscriptions service and ``send``.

Rules the code keeps:

- One row per (show, address). The address is normalised by email-validator (no DNS
  lookups); its key keeps the local part as written, lower-cased (``str.lower``, never a
  case-fold: ``Straße@`` and ``strasse@`` are two mailboxes), and the domain in its ASCII
  (IDNA) form, so ``Ann@Example.org`` and ``ann@example.org`` are one person. Several shows
  may share one store: every row, token and suppression is scoped by the show's slug, and a
  token of one show means nothing to another.
- Status: ``pending`` (no confirmed consent; never mailed by a normal send), ``confirmed``
  (a recipient), and the suppressions ``unsubscribed``, ``bounced`` and ``complained``.
  Every change records when and how (``status_changed_at``, ``status_source``) and adds an
  event to the subscriber's history, in one transaction.
- Only a sign-up confirmed by its own confirmation token (double opt-in) lifts a
  suppression. Imports, the CLI and ``ensure`` never do; ``suppress`` never does. An
  unsubscribe never deletes: the row stays as the suppression.
- Two kinds of token, never interchangeable. A row's *unsubscribe token* is in every issue
  it is sent (List-Unsubscribe, the footer); it can only unsubscribe, and ``rotate_token``
  replaces it. A *confirmation token* is drawn afresh for every sign-up request (the
  ``requests`` table), is mailed only to the address, confirms only that request, works
  once and expires. A sign-up of an address the store knows changes nothing in its row:
  the name, IP address and time of the request stay with the request and are applied only
  when its link is pressed.
- The outbox: a sign-up that should be mailed is committed as a queued request in the same
  transaction that answers it, and the service's mail threads take queued requests from the
  store (a lease, so a killed process's mail is taken again), so a sign-up answered 200 is
  mailed even after SIGKILL. At most one confirmation per address per interval: one queued
  or in flight, or one that actually went out within it, holds back a new one.
- ``forget`` deletes the row, its history and its requests but keeps a keyed hash of the
  address (HMAC-SHA256 with the project's secret, a 0600 file created once and never
  printed), so no import or ``add`` can bring the address back; a confirmed sign-up can.
  Deleted data is overwritten (``secure_delete``) and the WAL is checkpointed at once, so
  the address does not linger in the file.
- Tokens: 192 random bits from :mod:`secrets` (32 URL-safe characters), never derived from
  the address. A token is found by its first 16 characters and then compared in full in
  constant time.
- Proof of consent: for a confirmed sign-up the row keeps when and from which IP address
  the request was sent (``signup_at``, ``signup_ip``) and when and from where the
  confirmation was pressed (``consent_at``, ``consent_ip``). ``--confirmed`` imports record
  the import time as ``consent_at`` with source ``import`` and no IP address: the operator
  asserts consent given elsewhere.
- SQLite in WAL mode with ``synchronous=NORMAL`` and a busy timeout: a commit survives a
  killed process (SIGKILL included); a power cut may lose the last few commits. Every
  transaction is short: a large import commits in batches.
- Within one process, the connections to one store take turns to write (a lock per file,
  waited for up to the busy timeout): SQLite's own busy handler sleeps between tries, up
  to 100 ms at a time, which under a burst of concurrent writers (the service's threads)
  turned milliseconds into hundreds. Other processes are still waited for by SQLite.
- Times are UTC, stored as text ``YYYY-MM-DDTHH:MM:SSZ``.
- Each row may have an IANA time zone (``timezone``; NULL means the show's): a sign-up's
  (the browser's) stays with its request until confirmed; imports and the CLI set it. Every
  zone is checked against the tz database before it is stored (InvalidZone).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Literal

import idna
from email_validator import EmailNotValidError, validate_email

from famfeeds.build.project import SECRET_NAME, private_file, private_folder
from famfeeds.delivery.sqlite import immediate
from famfeeds.errors import FamfeedsError, display_path
from famfeeds.plan.sendtime import InvalidZone, subscriber_zone

STATUSES = ("pending", "confirmed", "unsubscribed", "bounced", "complained")
SUPPRESSING = frozenset({"unsubscribed", "bounced", "complained"})
FORGOTTEN = "forgotten"
"""What :meth:`SubscriberStore.suppressed` says of an address deleted by ``forget``."""
SOURCES = frozenset(
    {"signup", "import", "cli", "list", "one-click", "page", "smtp-5xx", "bounce", "complaint"}
)
"""How a status can be reached: a confirmed sign-up, an import, the CLI, a one-off list
of ``send --subscribers``, the one-click POST, the unsubscribe page's button, an SMTP 5xx
reply, an asynchronous bounce, a complaint (feedback loop)."""
Status = Literal["pending", "confirmed", "unsubscribed", "bounced", "complained"]

TOKEN_CHARS = 32
SELECTOR_CHARS = 16
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
"""Bytes that were not UTF-8, as the surrogateescape error handler reads them."""
NAME_LIMIT = 100
BATCH = 5000
IMPORT_CACHE_KIB = -131072
"""An import's page cache: 128 MiB."""
SQL_VARIABLES = 900
EXPORT_COLUMNS = (
    "email",
    "name",
    "status",
    "status_changed_at",
    "status_source",
    "created_at",
    "consent_at",
    "consent_ip",
    "signup_at",
    "signup_ip",
    "timezone",
)
IMPORT_COLUMNS = frozenset({"email", "name", "status", "timezone"})
"""The columns an import reads; the other export columns are accepted and ignored."""

_ROW = (
    "email, key, name, status, status_changed_at, status_source, created_at, consent_at, "
    "consent_ip, signup_at, signup_ip, token, timezone"
)
_REQUEST = "id, show, key, email, name, ip, at, token, closed_at, timezone"

MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 1: the subscribers.
    """
    CREATE TABLE subscribers (
        show TEXT NOT NULL,
        key TEXT NOT NULL,
        email TEXT NOT NULL,
        name TEXT,
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'confirmed', 'unsubscribed', 'bounced', 'complained')),
        status_changed_at TEXT NOT NULL,
        status_source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        consent_at TEXT,
        consent_ip TEXT,
        token TEXT NOT NULL,
        selector TEXT NOT NULL,
        last_confirmation_sent_at TEXT,
        PRIMARY KEY (show, key)
    );
    CREATE UNIQUE INDEX subscribers_by_selector ON subscribers (selector);
    CREATE INDEX subscribers_by_status ON subscribers (show, status);
    """,
    # 2: sign-up requests with their proof, history, and forgotten addresses.
    """
    ALTER TABLE subscribers ADD COLUMN signup_at TEXT;
    ALTER TABLE subscribers ADD COLUMN signup_ip TEXT;
    ALTER TABLE subscribers ADD COLUMN pending_since TEXT;
    CREATE INDEX subscribers_by_request ON subscribers (show, pending_since)
        WHERE pending_since IS NOT NULL;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        subscriber INTEGER NOT NULL,
        show TEXT NOT NULL,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        source TEXT NOT NULL,
        ip TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_by_subscriber ON events (subscriber);
    INSERT INTO events (subscriber, show, at, event, source, detail)
        SELECT rowid, show, status_changed_at, status, status_source, 'before history'
        FROM subscribers;
    CREATE TABLE suppressions (
        show TEXT NOT NULL,
        hash TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (show, hash)
    ) WITHOUT ROWID;
    """,
    # 3: sign-up requests of their own, each with a fresh confirmation token, and the
    # outbox of their confirmation mails (``mail``: queued, sending, sent or failed;
    # ``mail_after``: when a queued mail is due, or when a sending one's lease ends).
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        show TEXT NOT NULL,
        key TEXT NOT NULL,
        email TEXT NOT NULL,
        name TEXT,
        ip TEXT,
        at TEXT NOT NULL,
        token TEXT NOT NULL,
        selector TEXT NOT NULL,
        closed_at TEXT,
        mail TEXT NOT NULL CHECK (mail IN ('queued', 'sending', 'sent', 'failed')),
        mail_after TEXT NOT NULL,
        mail_tries INTEGER NOT NULL DEFAULT 0,
        mailed_at TEXT
    );
    CREATE UNIQUE INDEX requests_by_selector ON requests (selector);
    CREATE INDEX requests_by_key ON requests (show, key);
    CREATE INDEX requests_to_mail ON requests (show, mail_after)
        WHERE mail IN ('queued', 'sending');
    """,
    # 4: keys that keep the local part as written, and open sign-ups moved into requests.
    lambda db: _migrate_keys_and_requests(db),
    # 5: each subscriber's IANA time zone (NULL: the show's), and the one a sign-up sent.
    """
    ALTER TABLE subscribers ADD COLUMN timezone TEXT;
    ALTER TABLE requests ADD COLUMN timezone TEXT;
    """,
)
VERSION = len(MIGRATIONS)
_WRITERS: dict[str, threading.Lock] = {}
"""The write turn of each store file in this process, by its real path."""
_WRITERS_LOCK = threading.Lock()
OWN_TABLES = frozenset({"subscribers", "events", "suppressions", "requests"})
MAIL_LEASE = timedelta(minutes=2)
"""How long a mail thread holds a confirmation it took; then another may take it again."""
REQUESTS_KEPT = timedelta(days=30)
"""How long an expired sign-up request is kept (without name or IP address), so that its
link says it expired rather than that it is unknown."""


class StoreError(FamfeedsError):
    """The store cannot be used (locked, corrupt, newer, unreadable); says what to do."""


class StoreBusy(StoreError):
    """Another writer held the store for longer than the busy timeout; nothing was changed,
    so the same call may simply be tried again."""


class InvalidAddress(FamfeedsError):
    """An address that email-validator refuses; the message says why."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message goes to: the normalised address, the store's key, name and token, and
    the subscriber's time zone (None: the show's)."""

    email: str
    key: str
    name: str | None
    token: str
    timezone: str | None = None


@dataclass(frozen=True)
class Subscriber:
    """One row of the store as ``list`` and ``export`` show it (never the token)."""

    email: str
    key: str
    name: str | None
    status: str
    status_changed_at: str
    status_source: str
    created_at: str
    consent_at: str | None
    consent_ip: str | None
    signup_at: str | None
    signup_ip: str | None
    timezone: str | None = None
    """The subscriber's IANA time zone; None for the show's."""


@dataclass(frozen=True)
class Event:
    """One step of a subscriber's history: what happened, when, how, and from where."""

    at: str
    event: str
    source: str
    ip: str | None
    detail: str


@dataclass(frozen=True)
class Signup:
    """A sign-up request whose confirmation mail is in the outbox."""

    id: int
    email: str
    key: str
    name: str | None
    token: str
    """The request's own confirmation token (never the unsubscribe token)."""
    at: str
    """When the request was made."""
    tries: int = 0
    """Tries of its mail so far, this one included (when taken from the outbox)."""


@dataclass(frozen=True)
class Suppression:
    """One address to stop mailing, as :meth:`SubscriberStore.suppress_many` takes it."""

    address: str
    status: str
    """``bounced``, ``complained`` or ``unsubscribed``."""
    source: str
    reason: str = ""


RequestState = Literal["open", "confirmed", "withdrawn", "expired", ""]
"""Where a sign-up request stands: ``open`` (its link still confirms), ``confirmed`` (the
address was confirmed when it closed: its link, or a sibling's, was used), ``withdrawn``
(an unsubscribe closed it before it expired), ``expired``; '' for an unsubscribe token."""


@dataclass(frozen=True)
class TokenHolder:
    """What a token's pages may show: the subscriber's own address and state."""

    email: str
    name: str | None
    status: str
    request: RequestState = ""
    """For a confirmation token, where its sign-up request stands."""
    timezone: str | None = None
    """The time zone issues follow: an open request's own (the browser's), else the
    subscriber's; None for the show's."""

    @property
    def request_open(self) -> bool:
        """A sign-up waits for confirmation and has not expired."""
        return self.request == "open"


@dataclass(frozen=True)
class RowNote:
    """A CSV row that was not imported as asked, and why."""

    line: int
    address: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.address or '(empty)'}: {self.why}"


ImportRow = tuple[int, str, str, str | None, str | None, str | None]
"""One CSV row to import: line, address, key, name, status, time zone (None: not given)."""


@dataclass
class ImportReport:
    """What an import did, row by row where it did not simply add."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: list[RowNote] = field(default_factory=list)
    """Rows refused because the address is unsubscribed, bounced, complained or forgotten."""
    invalid: list[RowNote] = field(default_factory=list)
    duplicates: list[RowNote] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Week:
    """Sign-ups and unsubscribes in one ISO week (e.g. ``2024-W03``)."""

    week: str
    signups: int
    """Sign-up requests sent through the form."""
    confirmed: int
    unsubscribed: int


@dataclass(frozen=True)
class Stats:
    """Counts per status (every status present, zero included), and per ISO week."""

    counts: dict[str, int]
    forgotten: int
    weeks: list[Week]


def normalise(address: str) -> tuple[str, str]:
    """The address as email-validator normalises it (no DNS lookups) and its key: the local
    part as written, lower-cased, ``@`` and the domain's ASCII (IDNA) form. Raises
    InvalidAddress."""
    text = address.strip()
    if not text:
        raise InvalidAddress("the address is empty")
    try:
        info = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return info.normalized, address_key(info.normalized)


def address_key(address: str) -> str:
    """The store's key of an address already normalised by :func:`normalise`."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return f"{local.lower()}@{domain.lower()}"
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        ascii_domain = domain.lower()
    return f"{local.lower()}@{ascii_domain.lower()}"


def legacy_key(key: str) -> str:
    """The key schema version 3 and earlier gave the same address (the whole address
    case-folded, the domain in Unicode), under which forgotten addresses were hashed."""
    local, _, domain = key.rpartition("@")
    try:
        unicode_domain = idna.decode(domain) if "xn--" in domain else domain
    except idna.IDNAError:
        unicode_domain = domain
    return f"{local}@{unicode_domain}".casefold()


def _migrate_keys_and_requests(db: sqlite3.Connection) -> None:
    """Schema 4: every key in the new form, and the open sign-ups of rows the form made
    moved into ``requests`` (the link already mailed keeps working; the row gets a new
    unsubscribe token). An open re-sign-up of a suppressed row is dropped: its link was
    the unsubscribe token, which old issues carry."""
    for rowid, address in db.execute("SELECT rowid, email FROM subscribers").fetchall():
        try:
            db.execute(
                "UPDATE subscribers SET key = ? WHERE rowid = ?", (address_key(address), rowid)
            )
        except sqlite3.IntegrityError:
            continue  # cannot happen for addresses the store normalised; keep the old key
    opened = db.execute(
        "SELECT show, key, email, signup_ip, pending_since, token, last_confirmation_sent_at "
        "FROM subscribers WHERE pending_since IS NOT NULL AND status = 'pending' "
        "AND status_source = 'signup'"
    ).fetchall()
    for show, key, address, ip, since, token, mailed in opened:
        db.execute(
            "INSERT INTO requests (show, key, email, ip, at, token, selector, mail, "
            "mail_after, mailed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'sent', ?, ?)",
            (show, key, address, ip, since, token, token[:SELECTOR_CHARS], since, mailed),
        )
        fresh = _new_token()
        db.execute(
            "UPDATE subscribers SET token = ?, selector = ? WHERE show = ? AND key = ?",
            (fresh, fresh[:SELECTOR_CHARS], show, key),
        )
    db.execute("DROP INDEX subscribers_by_request")
    db.execute("ALTER TABLE subscribers DROP COLUMN pending_since")
    db.execute("ALTER TABLE subscribers DROP COLUMN last_confirmation_sent_at")


def clean_name(name: str | None) -> str | None:
    """A name as one line: control characters and runs of white space become one space,
    at most 100 characters; empty means none. Everything else is kept verbatim."""
    if name is None:
        return None
    if name.isprintable() and "  " not in name and name == name.strip():
        return name[:NAME_LIMIT] or None  # the common case, fast
    text = " ".join("".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in name).split())
    return text[:NAME_LIMIT] or None


def _check_suppression(status: str) -> None:
    if status not in SUPPRESSING:
        raise ValueError(f"a suppression is one of {sorted(SUPPRESSING)}, not {status!r}")


def valid_token(token: str) -> bool:
    """Whether ``token`` has a token's shape (32 URL-safe characters)."""
    return TOKEN_PATTERN.fullmatch(token) is not None


def stamp(moment: datetime) -> str:
    """A moment as the store writes it: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_token() -> str:
    return secrets.token_urlsafe(24)


class SubscriberStore:
    """One connection to the store. Use one per thread at a time (it may be closed from
    another); every change is one transaction."""

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection,
        secret: Path,
        clock: Callable[[], datetime],
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = path
        self.db = db
        self.secret_path = secret
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._secret: bytes | None = None
        with _WRITERS_LOCK:
            self._turn = _WRITERS.setdefault(os.path.realpath(path), threading.Lock())

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        secret: Path | None = None,
        clock: Callable[[], datetime] | None = None,
        busy_timeout: float = 5.0,
    ) -> SubscriberStore:
        """Open (creating or migrating) the store at ``path``: folder 0700, file 0600.

        ``secret`` is the project's secret key file (default: ``secret.key`` beside the
        store), read or created only when an address is forgotten or checked against
        the forgotten ones. Raises StoreError when the file is locked, corrupt or newer.
        """
        where = display_path(path)
        try:
            private_folder(path.parent)
            private_file(path)
        except OSError as exc:
            raise StoreError(f"{where}: cannot create the subscriber store ({exc})") from None
        db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        store = cls(path, db, secret or path.parent / SECRET_NAME, clock or _utc_now, busy_timeout)
        try:
            with store._guard("open"):
                db.execute("PRAGMA journal_mode=WAL").fetchone()
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA secure_delete=ON")
                store._migrate()
        except BaseException:
            db.close()
            raise
        return store

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            n for (n,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        foreign = tables - OWN_TABLES
        unlike = bool(tables or version) and "subscribers" not in tables
        if unlike or (foreign and version <= VERSION):  # a newer store may have more tables
            raise StoreError(
                f"{display_path(self.path)} is not a subscriber store (it holds "
                f"{', '.join(sorted(foreign)) or 'no subscribers table'}): the store is a file "
                "of its own, .famfeeds-state/subscribers.sqlite3"
            )
        if version > VERSION:
            raise StoreError(
                f"{display_path(self.path)} was made by a newer famfeeds (schema version "
                f"{version}, this one knows {VERSION}): upgrade famfeeds"
            )
        if version == VERSION:
            return
        with self._write():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, VERSION):
                step = MIGRATIONS[number]
                if callable(step):
                    step(self.db)
                    continue
                for statement in step.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {VERSION}")

    def check(self) -> None:
        """Raise StoreError unless the store answers a query."""
        with self._guard("read"):
            self.db.execute("SELECT 1 FROM subscribers LIMIT 1").fetchall()

    def checkpoint(self) -> None:
        """Copy committed transactions from the WAL into the store file, as far as readers
        allow, without waiting for anyone (SQLite's PASSIVE checkpoint)."""
        with self._guard("write to"):
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> SubscriberStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn SQLite's errors into a StoreError that says what to do."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            where = display_path(self.path)
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreBusy(
                    f"{where} is locked by another process (SQLite: {exc}); "
                    "try again in a moment, or stop the program holding it"
                ) from None
            raise StoreError(f"{where}: cannot {doing} the subscriber store ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{display_path(self.path)} is not a usable subscriber store (SQLite: {exc}); "
                "restore it from a backup or move it away to start a new one"
            ) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error,
        in this process's turn for the file (see the module's rules)."""
        if not self._turn.acquire(timeout=self.busy_timeout):
            raise StoreBusy(
                f"{display_path(self.path)} is busy: other writers in this process held it "
                f"for {self.busy_timeout:g} s; try again in a moment"
            )
        try:
            with self._guard("write to"), immediate(self.db) as db:
                yield db
        finally:
            self._turn.release()

    def _now(self) -> str:
        return stamp(self.clock())

    # -- the secret and forgotten addresses ----------------------------------------------

    def _key_secret(self, create: bool) -> bytes | None:
        """The project's secret (see :func:`famfeeds.delivery.secret.project_secret`)."""
        from famfeeds.delivery.secret import SecretError, project_secret

        if self._secret is not None:
            return self._secret
        try:
            data = project_secret(self.secret_path, create=create)
        except SecretError as exc:
            raise StoreError(exc.message) from None
        if data is None:
            return None
        self._secret = data
        return data

    def _hashes(self, show: str, keys: Iterable[str]) -> dict[str, str]:
        """Each key's keyed hash, or {} when nothing was ever forgotten (no secret yet)."""
        secret = self._key_secret(create=False)
        if secret is None:
            if self.db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone():
                raise StoreError(
                    f"{display_path(self.secret_path)} is missing, so forgotten addresses "
                    "cannot be recognised: restore it from a backup"
                )
            return {}
        prefix = show.encode() + b"\0"
        return {
            key: hmac.new(secret, prefix + key.encode(), hashlib.sha256).hexdigest() for key in keys
        }

    def _all_hashes(self, show: str, keys: Iterable[str]) -> dict[str, str]:
        """``{hash: key}`` for each key and, where it differs, its legacy form (a forgotten
        address may have been hashed under either)."""
        forms = {form: key for key in keys for form in (key, legacy_key(key))}
        return {h: forms[form] for form, h in self._hashes(show, forms).items()}

    def _forgotten(self, show: str, keys: list[str]) -> set[str]:
        """The keys among ``keys`` that were forgotten."""
        by_hash = self._all_hashes(show, keys)
        if not by_hash:
            return set()
        found: set[str] = set()
        values = list(by_hash)
        for i in range(0, len(values), SQL_VARIABLES):
            chunk = values[i : i + SQL_VARIABLES]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT hash FROM suppressions WHERE show = ? AND hash IN ({marks})",
                (show, *chunk),
            )
            found.update(by_hash[h] for (h,) in rows)
        return found

    # -- reading -------------------------------------------------------------------------

    def _row(self, show: str, key: str) -> sqlite3.Row | None:
        self.db.row_factory = sqlite3.Row
        try:
            row: sqlite3.Row | None = self.db.execute(
                f"SELECT {_ROW} FROM subscribers WHERE show = ? AND key = ?", (show, key)
            ).fetchone()
        finally:
            self.db.row_factory = None
        return row

    def _by_token(self, show: str, token: str, table: str = "subscribers") -> sqlite3.Row | None:
        """The row of ``table`` (``subscribers``: unsubscribe tokens; ``requests``:
        confirmation tokens) whose token is ``token``, found by selector and compared in
        constant time."""
        if not valid_token(token):
            return None
        columns = _ROW if table == "subscribers" else _REQUEST
        self.db.row_factory = sqlite3.Row
        try:
            row: sqlite3.Row | None = self.db.execute(
                f"SELECT {columns} FROM {table} WHERE selector = ? AND show = ?",
                (token[:SELECTOR_CHARS], show),
            ).fetchone()
        finally:
            self.db.row_factory = None
        if row is None or not hmac.compare_digest(row["token"], token):
            return None
        return row

    def recipients(self, show: str) -> list[Recipient]:
        """The confirmed subscribers, in key order."""
        with self._guard("read"):
            rows = self.db.execute(
                "SELECT email, key, name, token, timezone FROM subscribers "
                "WHERE show = ? AND status = 'confirmed' ORDER BY key",
                (show,),
            ).fetchall()
        return [Recipient(*row) for row in rows]

    def status(self, show: str, address: str) -> str | None:
        """The address's status, or None when the store does not know it (or it is not a
        valid address)."""
        try:
            _, key = normalise(address)
        except InvalidAddress:
            return None
        with self._guard("read"):
            row = self.db.execute(
                "SELECT status FROM subscribers WHERE show = ? AND key = ?", (show, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def suppressed(self, show: str, address: str) -> str | None:
        """Why the address must not be mailed: its suppressing status, or ``forgotten``;
        None when nothing stops it."""
        try:
            _, key = normalise(address)
        except InvalidAddress:
            return None
        with self._guard("read"):
            row = self.db.execute(
                "SELECT status FROM subscribers WHERE show = ? AND key = ?", (show, key)
            ).fetchone()
            if row is not None and row[0] in SUPPRESSING:
                return str(row[0])
            if self._forgotten(show, [key]):
                return FORGOTTEN
        return None

    def suppressions(self, show: str, addresses: Iterable[str]) -> dict[str, str]:
        """:meth:`suppressed` for many addresses at once, each already normalised the way
        :func:`normalise` does (``famfeeds send`` lists are): ``{address: why}`` for those
        that must not be mailed, in a few queries rather than one per address."""
        by_key = {address_key(address): address for address in addresses}
        keys = list(by_key)
        found: dict[str, str] = {}
        with self._guard("read"):
            for i in range(0, len(keys), SQL_VARIABLES):
                chunk = keys[i : i + SQL_VARIABLES]
                marks = ",".join("?" * len(chunk))
                for key, status in self.db.execute(
                    f"SELECT key, status FROM subscribers WHERE show = ? AND key IN ({marks})",
                    (show, *chunk),
                ):
                    if status in SUPPRESSING:
                        found[by_key[key]] = str(status)
            rest = [key for key in keys if by_key[key] not in found]
            for key in self._forgotten(show, rest):
                found[by_key[key]] = FORGOTTEN
        return found

    def find(self, show: str, token: str) -> TokenHolder | None:
        """What an unsubscribe token's page shows, or None for an unknown token. Changes
        nothing."""
        with self._guard("read"):
            row = self._by_token(show, token)
        if row is None:
            return None
        return TokenHolder(row["email"], row["name"], row["status"], timezone=row["timezone"])

    def find_request(self, show: str, token: str, max_age: timedelta) -> TokenHolder | None:
        """What a confirmation token's page shows (the request's own name, the address's
        status, where the request stands), or None for an unknown token. Changes nothing.

        A closed request was used (``confirmed``) when its address's history records a
        confirmation at the very moment it closed (confirming closes every open request of
        the address in that transaction); else it was ``withdrawn`` when it closed before
        its expiry, and ``expired`` otherwise."""
        with self._guard("read"):
            request = self._by_token(show, token, "requests")
            if request is None:
                return None
            row = self._row(show, request["key"])
            state: RequestState
            closed = request["closed_at"]
            if closed is None:
                state = "open" if self._open(request, max_age) else "expired"
            elif row is not None and self._confirmed_at(show, request["key"], closed):
                state = "confirmed"
            else:
                made = datetime.strptime(request["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                state = "withdrawn" if closed < stamp(made + max_age) else "expired"
        status = "pending" if row is None else str(row["status"])
        zone = row["timezone"] if row is not None else None
        if state == "open" and request["timezone"] is not None:
            zone = request["timezone"]
        return TokenHolder(request["email"], request["name"], status, state, zone)

    def _confirmed_at(self, show: str, key: str, at: str) -> bool:
        """Whether the address's history records a confirmation at ``at``."""
        found = self.db.execute(
            "SELECT 1 FROM events WHERE subscriber = (SELECT rowid FROM subscribers "
            "WHERE show = ? AND key = ?) AND event = 'confirmed' AND at = ? LIMIT 1",
            (show, key, at),
        ).fetchone()
        return found is not None

    def _open(self, request: sqlite3.Row, max_age: timedelta) -> bool:
        """Whether a request can still be confirmed: not used, withdrawn or expired."""
        return request["closed_at"] is None and request["at"] >= stamp(self.clock() - max_age)

    def subscribers(self, show: str, status: str | None = None) -> Iterator[Subscriber]:
        """Every row of the show (or those of one status), in key order, streamed."""
        fields = ", ".join(Subscriber.__dataclass_fields__)
        query = f"SELECT {fields} FROM subscribers WHERE show = ?"
        params: tuple[str, ...] = (show,)
        if status is not None:
            query += " AND status = ?"
            params += (status,)
        reader = self.db.cursor()
        with self._guard("read"):
            reader.execute(query + " ORDER BY key", params)
            while batch := reader.fetchmany(1000):
                yield from (Subscriber(*row) for row in batch)

    def subscriber(self, show: str, address: str) -> Subscriber | None:
        """The address's row, or None."""
        _, key = normalise(address)
        fields = ", ".join(Subscriber.__dataclass_fields__)
        with self._guard("read"):
            row = self.db.execute(
                f"SELECT {fields} FROM subscribers WHERE show = ? AND key = ?", (show, key)
            ).fetchone()
        return None if row is None else Subscriber(*row)

    def history(self, show: str, address: str) -> list[Event]:
        """How the address reached each of its statuses, oldest first."""
        _, key = normalise(address)
        with self._guard("read"):
            rows = self.db.execute(
                "SELECT at, event, source, ip, detail FROM events WHERE subscriber = "
                "(SELECT rowid FROM subscribers WHERE show = ? AND key = ?) ORDER BY id",
                (show, key),
            ).fetchall()
        return [Event(*row) for row in rows]

    def not_mailed(self, show: str) -> dict[str, int]:
        """How many of the show's addresses a send to its subscribers leaves out, by why:
        each status but ``confirmed`` (``pending`` included), and ``forgotten``; only
        reasons with at least one address."""
        with self._guard("read"):
            counts, forgotten = self._counts(show)
        left = {k: v for k, v in counts.items() if k != "confirmed" and v}
        if forgotten:
            left[FORGOTTEN] = forgotten
        return dict(sorted(left.items()))

    def _counts(self, show: str) -> tuple[dict[str, int], int]:
        """The show's addresses per status (every status, 0 where none), and how many
        were forgotten."""
        counts = dict.fromkeys(STATUSES, 0)
        for status, count in self.db.execute(
            "SELECT status, count(*) FROM subscribers WHERE show = ? GROUP BY status", (show,)
        ):
            counts[str(status)] = int(count)
        forgotten = self.db.execute(
            "SELECT count(*) FROM suppressions WHERE show = ?", (show,)
        ).fetchone()[0]
        return counts, int(forgotten)

    def stats(self, show: str) -> Stats:
        """Counts per status, forgotten addresses, and per ISO week the sign-ups (form
        requests), confirmations and unsubscribes."""
        with self._guard("read"):
            counts, forgotten = self._counts(show)
            days = self.db.execute(
                "SELECT substr(at, 1, 10), event, count(*) FROM events "
                "WHERE show = ? AND (event IN ('confirmed', 'unsubscribed') "
                "OR source = 'signup' AND event IN ('pending', 'signup')) GROUP BY 1, 2",
                (show,),
            ).fetchall()
        weeks: dict[str, list[int]] = {}
        for day, event, count in days:
            year, week, _ = date.fromisoformat(day).isocalendar()
            tally = weeks.setdefault(f"{year}-W{week:02d}", [0, 0, 0])
            if event == "confirmed":
                tally[1] += count
            elif event == "unsubscribed":
                tally[2] += count
            else:
                tally[0] += count
        return Stats(counts, forgotten, [Week(w, *weeks[w]) for w in sorted(weeks)])

    # -- changing ------------------------------------------------------------------------

    def _event(
        self,
        show: str,
        key: str,
        at: str,
        event: str,
        source: str,
        ip: str | None = None,
        detail: str = "",
    ) -> None:
        self.db.execute(
            "INSERT INTO events (subscriber, show, at, event, source, ip, detail) "
            "SELECT rowid, show, ?, ?, ?, ?, ? FROM subscribers WHERE show = ? AND key = ?",
            (at, event, source, ip, detail, show, key),
        )

    def _insert(
        self,
        show: str,
        email: str,
        key: str,
        name: str | None,
        status: str,
        source: str,
        now: str,
        *,
        consent: bool = False,
        signup_ip: str | None = None,
        detail: str = "",
    ) -> str:
        """A new row (and its first event); returns its token."""
        while True:
            token = _new_token()
            try:
                self.db.execute(
                    "INSERT INTO subscribers (show, key, email, name, status, "
                    "status_changed_at, status_source, created_at, consent_at, token, "
                    "selector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        show, key, email, name, status, now, source, now,
                        now if consent else None, token, token[:SELECTOR_CHARS],
                    ),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                if self._row(show, key) is not None:
                    raise
                continue  # a selector collision (2**-96): draw again
            self._event(show, key, now, status, source, signup_ip, detail)
            return token

    def _set_status(
        self, show: str, key: str, status: str, source: str, now: str, detail: str = ""
    ) -> None:
        self.db.execute(
            "UPDATE subscribers SET status = ?, status_changed_at = ?, status_source = ? "
            "WHERE show = ? AND key = ?",
            (status, now, source, show, key),
        )
        self._event(show, key, now, status, source, None, detail)

    def add(
        self,
        show: str,
        address: str,
        name: str | None = None,
        *,
        confirmed: bool = False,
        source: str = "cli",
    ) -> str:
        """Add one address as ``pending`` (or ``confirmed``: the operator asserts consent).

        Returns ``added``, ``updated`` (a pending row confirmed, or a new name),
        ``unchanged``, or the suppression that refused it (a suppressed or forgotten
        address is never brought back).
        """
        email, key = normalise(address)
        name = clean_name(name)
        with self._write():
            now = self._now()
            row = self._row(show, key)
            if row is not None and row["status"] in SUPPRESSING:
                return str(row["status"])
            if (row is None or row["status"] == "pending") and self._forgotten(show, [key]):
                return FORGOTTEN
            if row is None:
                status = "confirmed" if confirmed else "pending"
                self._insert(show, email, key, name, status, source, now, consent=confirmed)
                return "added"
            result = "unchanged"
            if name is not None and name != row["name"]:
                self.db.execute(
                    "UPDATE subscribers SET name = ? WHERE show = ? AND key = ?", (name, show, key)
                )
                result = "updated"
            if confirmed and row["status"] == "pending":
                self._set_status(show, key, "confirmed", source, now, "consent asserted")
                self.db.execute(
                    "UPDATE subscribers SET consent_at = ?, consent_ip = NULL "
                    "WHERE show = ? AND key = ?",
                    (now, show, key),
                )
                result = "updated"
            return result

    def ensure(
        self, show: str, address: str, name: str | None = None, source: str = "list"
    ) -> Recipient | None:
        """The address as a recipient of a one-off list, or None when it is suppressed.

        An address the store does not know gets a ``pending`` row (source ``list``), so its
        message carries a working unsubscribe token, without joining the store's
        recipients. An existing row keeps its status. The name given wins over the stored
        one for this message but is not stored.
        """
        email, key = normalise(address)
        name = clean_name(name)
        with self._write():
            row = self._row(show, key)
            if row is not None and row["status"] in SUPPRESSING:
                return None
            if (row is None or row["status"] == "pending") and self._forgotten(show, [key]):
                return None
            if row is None:
                token = self._insert(show, email, key, name, "pending", source, self._now())
                return Recipient(email, key, name, token)
            return Recipient(row["email"], key, name or row["name"], row["token"])

    def suppress(self, show: str, address: str, status: str, source: str, reason: str = "") -> None:
        """Stop mailing the address (``bounced``, ``complained`` or ``unsubscribed``),
        creating a row when the store does not know it. A row that is already suppressed
        keeps its status (the new report goes into its history); a forgotten address
        stays forgotten. Raises InvalidAddress."""
        _check_suppression(status)
        email, key = normalise(address)
        with self._write():
            self._suppress_row(show, email, key, Suppression(address, status, source, reason))

    def suppress_many(self, show: str, items: Iterable[Suppression]) -> list[Suppression]:
        """:meth:`suppress` for every item, in one transaction: all of them are recorded, or
        (on any error, or a process killed halfway) none. An address the store cannot
        hold (email-validator refuses it) is left out; those items are returned."""
        wanted: list[tuple[str, str, Suppression]] = []
        invalid: list[Suppression] = []
        for item in items:
            _check_suppression(item.status)
            try:
                email, key = normalise(item.address)
            except InvalidAddress:
                invalid.append(item)
                continue
            wanted.append((email, key, item))
        if not wanted:
            return invalid
        with self._write():
            forgotten = self._forgotten(show, [key for _, key, _ in wanted])
            for email, key, item in wanted:
                self._suppress_row(show, email, key, item, forgotten=key in forgotten)
        return invalid

    def _suppress_row(
        self, show: str, email: str, key: str, item: Suppression, forgotten: bool | None = None
    ) -> None:
        """Inside a write transaction: the rule of :meth:`suppress` for one address."""
        now = self._now()
        row = self._row(show, key)
        if row is None:
            if forgotten is None:
                forgotten = bool(self._forgotten(show, [key]))
            if not forgotten:
                self._insert(
                    show, email, key, None, item.status, item.source, now, detail=item.reason
                )
        elif row["status"] in SUPPRESSING:
            detail = item.reason or "already suppressed"
            self._event(show, key, now, item.status, item.source, None, detail)
        else:
            self._set_status(show, key, item.status, item.source, now, item.reason)

    def unsubscribe(self, show: str, address: str, source: str = "cli") -> str | None:
        """Unsubscribe the address (a row is created if the store does not know it, so
        one-off lists skip it too). Returns the status before, or None if there was none."""
        email, key = normalise(address)
        with self._write():
            now = self._now()
            row = self._row(show, key)
            if row is None:
                if not self._forgotten(show, [key]):
                    self._insert(show, email, key, None, "unsubscribed", source, now)
                return None
            self._unsubscribe_row(show, row, source, now)
            return str(row["status"])

    def _unsubscribe_row(self, show: str, row: sqlite3.Row, source: str, now: str) -> None:
        """Unsubscribe a row, and withdraw its open sign-up requests."""
        if row["status"] not in SUPPRESSING:
            self._set_status(show, row["key"], "unsubscribed", source, now)
        withdrawn = self.db.execute(
            "UPDATE requests SET closed_at = ? WHERE show = ? AND key = ? AND closed_at IS NULL",
            (now, show, row["key"]),
        ).rowcount
        if withdrawn and row["status"] in SUPPRESSING:
            self._event(show, row["key"], now, "request withdrawn", source)

    def unsubscribe_token(self, show: str, token: str, source: str) -> bool:
        """Unsubscribe the holder of the unsubscribe token (``one-click`` or ``page``);
        open sign-up requests are withdrawn too. Doing it again changes nothing. False for
        an unknown token (a confirmation token included)."""
        with self._write():
            row = self._by_token(show, token)
            if row is None:
                return False
            self._unsubscribe_row(show, row, source, self._now())
            return True

    def forget(self, show: str, address: str) -> bool:
        """Delete the address's row, history and sign-up requests, keeping only its keyed
        hash, so that no import or ``add`` brings it back. Returns whether there was a row."""
        _, key = normalise(address)
        self._key_secret(create=True)
        with self._write():
            hashed = self._hashes(show, [key])[key]
            self.db.execute(
                "DELETE FROM events WHERE subscriber = "
                "(SELECT rowid FROM subscribers WHERE show = ? AND key = ?)",
                (show, key),
            )
            deleted = self.db.execute(
                "DELETE FROM subscribers WHERE show = ? AND key = ?", (show, key)
            ).rowcount
            self.db.execute("DELETE FROM requests WHERE show = ? AND key = ?", (show, key))
            self.db.execute(
                "INSERT OR IGNORE INTO suppressions (show, hash, at) VALUES (?, ?, ?)",
                (show, hashed, self._now()[:10]),
            )
        with self._guard("write to"):  # copy the deletion into the file, emptying the WAL
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return deleted > 0

    def clear_bounce(self, show: str, address: str) -> bool:
        """Make a ``bounced`` address a recipient again, when it had consented before (the
        operator knows the mailbox works again). Returns False when that does not apply."""
        _, key = normalise(address)
        with self._write():
            row = self._row(show, key)
            if row is None or row["status"] != "bounced" or row["consent_at"] is None:
                return False
            self._set_status(show, key, "confirmed", "cli", self._now(), "bounce cleared")
            return True

    def clear_bounces(
        self, show: str, *, run: str | None = None, since: datetime | None = None
    ) -> list[str]:
        """:meth:`clear_bounce` for many addresses in one transaction: every ``bounced``
        address that had consented and was marked by the send run ``run`` (its status set
        by a ``smtp-5xx`` event whose detail begins ``run RUN_ID: ``), and/or whose bounce
        is at or after ``since``. Returns the addresses made recipients again."""
        if run is None and since is None:
            raise ValueError("clear_bounces needs run or since")
        clauses = ["s.show = ?", "s.status = 'bounced'", "s.consent_at IS NOT NULL"]
        params: list[str | int] = [show]
        if since is not None:
            clauses.append("s.status_changed_at >= ?")
            params.append(stamp(since))
        if run is not None:
            prefix = f"run {run}: "
            clauses.append(
                "s.status_source = 'smtp-5xx' AND EXISTS (SELECT 1 FROM events e WHERE "
                "e.subscriber = s.rowid AND e.at = s.status_changed_at AND e.event = 'bounced' "
                "AND e.source = 'smtp-5xx' AND substr(e.detail, 1, ?) = ?)"
            )
            params += [len(prefix), prefix]
        detail = "bounce cleared"
        detail += f" (run {run})" if run is not None else ""
        detail += f" (since {stamp(since)})" if since is not None else ""
        with self._write():
            rows = self.db.execute(
                f"SELECT s.key, s.email FROM subscribers s WHERE {' AND '.join(clauses)} "
                "ORDER BY s.key",
                params,
            ).fetchall()
            now = self._now()
            for key, _ in rows:
                self._set_status(show, key, "confirmed", "cli", now, detail)
        return [str(email) for _, email in rows]

    # -- the sign-up flow ----------------------------------------------------------------

    def signup(
        self,
        show: str,
        address: str,
        name: str | None,
        ip: str | None,
        interval: timedelta,
        zone: str | None = None,
    ) -> Signup | None:
        """Record a sign-up from the form; return the request whose confirmation was queued
        in the outbox, or None when no mail is due.

        A new address gets a ``pending`` row with no name. An address the store knows keeps
        its row as it is (its history notes the request): the name and IP address stay
        with the request until its link is pressed. A confirmed address gets nothing. At
        most one confirmation per address per ``interval``: a request whose mail is queued,
        in flight, or went out within it holds a new one back. ``zone`` (the browser's, or
        None) stays with the request until it is confirmed, like the name. Raises
        InvalidAddress, or InvalidZone for a zone the tz database does not know.
        """
        email, key = normalise(address)
        name = clean_name(name)
        zone = None if zone is None else subscriber_zone(zone)
        with self._write():
            now = self._now()
            row = self._row(show, key)
            if row is None:
                self._insert(show, email, key, None, "pending", "signup", now, signup_ip=ip)
            elif row["status"] == "confirmed":
                return None
            else:
                self._event(show, key, now, "signup", "signup", ip)
            busy = self.db.execute(
                "SELECT 1 FROM requests WHERE show = ? AND key = ? AND "
                "(mail IN ('queued', 'sending') OR mail = 'sent' AND mailed_at > ?) LIMIT 1",
                (show, key, stamp(self.clock() - interval)),
            ).fetchone()
            if busy is not None:
                return None
            while True:
                token = _new_token()
                try:
                    cursor = self.db.execute(
                        "INSERT INTO requests (show, key, email, name, ip, at, token, selector, "
                        "mail, mail_after, timezone) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                        (
                            show, key, email, name, ip, now, token, token[:SELECTOR_CHARS],
                            now, zone,
                        ),
                    )  # fmt: skip
                except sqlite3.IntegrityError:
                    continue  # a selector collision (2**-96): draw again
                break
        assert cursor.lastrowid is not None
        return Signup(cursor.lastrowid, email, key, name, token, now)

    def next_confirmation(self, show: str, lease: timedelta = MAIL_LEASE) -> Signup | None:
        """Take the oldest confirmation due from the outbox (queued and due, or in flight
        past its lease: a process died sending it) and lease it, in one transaction; None
        when nothing is due. Requests already closed or expired are not mailed."""
        with self._write():
            now = self._now()
            found = self.db.execute(
                "SELECT id, email, key, name, token, at, mail_tries FROM requests "
                "WHERE show = ? AND mail IN ('queued', 'sending') AND mail_after <= ? "
                "ORDER BY mail_after, id LIMIT 1",
                (show, now),
            ).fetchone()
            if found is None:
                return None
            request = Signup(*found)
            self.db.execute(
                "UPDATE requests SET mail = 'sending', mail_after = ?, mail_tries = ? WHERE id = ?",
                (stamp(self.clock() + lease), request.tries + 1, request.id),
            )
        return replace(request, tries=request.tries + 1)

    def confirmation_sent(self, request: Signup) -> None:
        """The request's mail went out: it counts for the interval between mails."""
        with self._write():
            self.db.execute(
                "UPDATE requests SET mail = 'sent', mailed_at = ? WHERE id = ?",
                (self._now(), request.id),
            )

    def confirmation_failed(self, request: Signup, retry_in: timedelta | None) -> None:
        """The request's mail was not sent: queue it again after ``retry_in``, or give it up
        (None), so that the next sign-up queues a new one."""
        with self._write():
            if retry_in is None:
                self.db.execute("UPDATE requests SET mail = 'failed' WHERE id = ?", (request.id,))
            else:
                self.db.execute(
                    "UPDATE requests SET mail = 'queued', mail_after = ? WHERE id = ?",
                    (stamp(self.clock() + retry_in), request.id),
                )

    def confirmation_put_back(self, request: Signup) -> None:
        """The request's mail was interrupted (the service is stopping): queue it again,
        due at once, this try not counted."""
        with self._write():
            self.db.execute(
                "UPDATE requests SET mail = 'queued', mail_after = ?, mail_tries = ? "
                "WHERE id = ? AND mail = 'sending'",
                (self._now(), request.tries - 1, request.id),
            )

    def take_over_mail(self, show: str) -> int:
        """At a service's start: the confirmations a process that died was sending are due
        at once (not when their lease ends). Returns how many."""
        with self._write():
            return int(
                self.db.execute(
                    "UPDATE requests SET mail = 'queued', mail_after = ? "
                    "WHERE show = ? AND mail = 'sending'",
                    (self._now(), show),
                ).rowcount
            )

    def confirm(
        self,
        show: str,
        token: str,
        ip: str | None,
        max_age: timedelta,
        zone: str | None = None,
    ) -> str | None:
        """Confirm the sign-up request of a confirmation token: its address becomes
        ``confirmed`` (lifting any suppression, a forgotten one included) with the request's
        name, time and IP address, and the consent's time and IP address; every open
        request of the address is closed. The time zone is ``zone`` (chosen on the confirm
        page; ``""`` for the show's own) or, with None, the request's, or else stays as it
        was (InvalidZone for a bad one).

        Returns ``confirmed``, ``already`` (the address is confirmed), ``expired`` (the
        request is used, withdrawn or too old) or None for an unknown token. An unsubscribe
        token is unknown here.
        """
        follow_show = zone == ""
        zone = subscriber_zone(zone) if zone else None
        with self._write():
            request = self._by_token(show, token, "requests")
            if request is None:
                return None
            key = request["key"]
            row = self._row(show, key)
            if row is not None and row["status"] == "confirmed":
                return "already"
            if not self._open(request, max_age):
                return "expired"
            now = self._now()
            if row is None:  # expired and swept, or forgotten, since the request
                self._insert(show, request["email"], key, None, "pending", "signup", now)
            self.db.execute(
                "UPDATE subscribers SET status = 'confirmed', status_changed_at = ?, "
                "status_source = 'signup', consent_at = ?, consent_ip = ?, signup_at = ?, "
                "signup_ip = ?, name = coalesce(?, name), "
                "timezone = CASE WHEN ? THEN NULL ELSE coalesce(?, ?, timezone) END "
                "WHERE show = ? AND key = ?",
                (
                    now, now, ip, request["at"], request["ip"], request["name"], follow_show,
                    zone, request["timezone"], show, key,
                ),
            )  # fmt: skip
            self._event(show, key, now, "confirmed", "signup", ip)
            self.db.execute(
                "UPDATE requests SET closed_at = ? "
                "WHERE show = ? AND key = ? AND closed_at IS NULL",
                (now, show, key),
            )
            hashes = list(self._all_hashes(show, [key]))
            if hashes:
                self.db.executemany(
                    "DELETE FROM suppressions WHERE show = ? AND hash = ?",
                    [(show, h) for h in hashes],
                )
            return "confirmed"

    def set_zone(self, show: str, address: str, zone: str | None) -> bool:
        """Set the address's time zone (None: follow the show's); False when the store does
        not know the address. Raises InvalidAddress, or InvalidZone for a bad zone."""
        _, key = normalise(address)
        zone = None if zone is None else subscriber_zone(zone)
        with self._write():
            changed = self.db.execute(
                "UPDATE subscribers SET timezone = ? WHERE show = ? AND key = ?",
                (zone, show, key),
            ).rowcount
            if changed:
                self._event(show, key, self._now(), "timezone", "cli", None, zone or "")
        return bool(changed)

    def rotate_token(self, show: str, address: str | None = None) -> int:
        """Give the address (or, with None, every row of the show) a new unsubscribe token:
        the links in issues already sent stop working. Returns how many rows changed."""
        keys: list[str]
        if address is not None:
            keys = [normalise(address)[1]]
        with self._write():
            if address is None:
                keys = [
                    k
                    for (k,) in self.db.execute(
                        "SELECT key FROM subscribers WHERE show = ?", (show,)
                    )
                ]
            changed = 0
            for key in keys:
                while True:
                    token = _new_token()
                    try:
                        changed += self.db.execute(
                            "UPDATE subscribers SET token = ?, selector = ? "
                            "WHERE show = ? AND key = ?",
                            (token, token[:SELECTOR_CHARS], show, key),
                        ).rowcount
                    except sqlite3.IntegrityError:
                        continue  # a selector collision (2**-96): draw again
                    break
        return changed

    def expire_pending(self, show: str, max_age: timedelta) -> int:
        """Close sign-ups older than ``max_age``: an open request is closed and loses the
        name and IP address it came with (a stranger's words are not kept), and is deleted
        30 days later (until then its link says it expired); a ``pending`` row a sign-up
        created, with no newer request, is deleted (no consent was given, so nothing is
        kept). Returns how many open requests expired."""
        now = self._now()
        cutoff = stamp(self.clock() - max_age)
        forgotten = stamp(self.clock() - max_age - REQUESTS_KEPT)
        doomed = (
            "SELECT rowid FROM subscribers WHERE show = ?1 AND status = 'pending' "
            "AND status_source = 'signup' AND consent_at IS NULL AND created_at < ?2 "
            "AND NOT EXISTS (SELECT 1 FROM requests WHERE requests.show = subscribers.show "
            "AND requests.key = subscribers.key AND requests.at >= ?2)"
        )
        with self._write():
            expired = self.db.execute(
                "UPDATE requests SET closed_at = ?, name = NULL, ip = NULL, "
                "mail = CASE WHEN mail IN ('queued', 'sending') THEN 'failed' ELSE mail END "
                "WHERE show = ? AND at < ? AND closed_at IS NULL",
                (now, show, cutoff),
            ).rowcount
            self.db.execute("DELETE FROM requests WHERE show = ? AND at < ?", (show, forgotten))
            self.db.execute(f"DELETE FROM events WHERE subscriber IN ({doomed})", (show, cutoff))
            self.db.execute(f"DELETE FROM subscribers WHERE rowid IN ({doomed})", (show, cutoff))
        return int(expired)

    # -- import and export ---------------------------------------------------------------

    def import_csv(
        self, show: str, path: Path, *, confirmed: bool = False, batch: int = BATCH
    ) -> ImportReport:
        """Import a CSV with a header row: ``email`` (required), ``name``, ``status``,
        ``timezone`` (an IANA name; empty or missing keeps the row's, or the show's zone).

        New addresses are added as ``pending``, or ``confirmed`` with ``confirmed`` (the
        operator asserts their consent). A ``status`` of unsubscribed, bounced or
        complained is recorded as that suppression. No row is ever taken out of a
        suppression, forgotten addresses included: they are reported, with line numbers,
        as are invalid and duplicate rows. A header without ``email`` or with a repeated
        or empty column name refuses the whole file before anything is written. The file
        is streamed and committed in batches of ``batch`` rows, so a large import does
        not hold the store; running it again after an interruption is safe.
        """
        where = display_path(path)
        report = ImportReport()
        try:
            handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
        except OSError as exc:
            raise FamfeedsError(f"{where}: cannot read the file ({exc.strerror})") from None
        with handle, self._bulk():
            rows = csv.reader(handle)
            columns = self._header(where, next(rows, None), report)
            pending: list[ImportRow] = []
            seen: set[str] = set()
            try:
                for row in rows:
                    item = self._parse_row(rows.line_num, row, columns, seen, report)
                    if item is not None:
                        pending.append(item)
                    if len(pending) >= batch:
                        self._import_batch(show, pending, confirmed, report)
                        pending = []
            except csv.Error as exc:
                raise FamfeedsError(
                    f"{where}:{rows.line_num}: not a valid CSV row ({exc}); the rows before "
                    "it were imported: fix it and import the file again"
                ) from None
            self._import_batch(show, pending, confirmed, report)
        return report

    @contextmanager
    def _bulk(self) -> Iterator[None]:
        """A larger page cache (new rows land all over the token index) and fewer, larger
        checkpoints, for the length of an import."""
        cache = int(self.db.execute("PRAGMA cache_size").fetchone()[0])
        self.db.execute(f"PRAGMA cache_size = {IMPORT_CACHE_KIB}")
        self.db.execute("PRAGMA wal_autocheckpoint = 16384")
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA cache_size = {cache}")
            self.db.execute("PRAGMA wal_autocheckpoint = 1000")

    @staticmethod
    def _header(where: str, header: list[str] | None, report: ImportReport) -> dict[str, int]:
        names = [h.strip().lower() for h in header or []]
        expected = "a header row such as: email,name"
        if "email" not in names:
            raise FamfeedsError(
                f"{where}:1: the header row has no 'email' column (expected {expected}); "
                "nothing was imported"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated or "" in names:
            what = f"repeats {', '.join(repeated)}" if repeated else "has an empty column name"
            raise FamfeedsError(
                f"{where}:1: the header row {what} (expected {expected}); nothing was imported"
            )
        report.ignored_columns = [
            n for n in names if n not in IMPORT_COLUMNS and n not in EXPORT_COLUMNS
        ]
        return {name: names.index(name) for name in IMPORT_COLUMNS if name in names}

    @staticmethod
    def _parse_row(
        line: int,
        row: list[str],
        columns: dict[str, int],
        seen: set[str],
        report: ImportReport,
    ) -> ImportRow | None:
        """(line, email, key, name, status, zone) of a row, or None (noted in the report)."""
        if not any(cell.strip() for cell in row):
            return None

        def cell(name: str) -> str:
            index = columns.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        address = cell("email")
        if _UNDECODABLE.search("".join(row)):
            shown = address.encode("utf-8", "replace").decode()
            report.invalid.append(RowNote(line, shown, "the row is not valid UTF-8"))
            return None
        status = cell("status").lower() or None
        if status is not None and status not in STATUSES:
            why = f"unknown status {status!r} (use one of {', '.join(STATUSES)})"
            report.invalid.append(RowNote(line, address, why))
            return None
        try:
            email, key = normalise(address)
        except InvalidAddress as exc:
            report.invalid.append(RowNote(line, address, exc.message))
            return None
        zone = cell("timezone") or None
        if zone is not None:
            try:
                zone = subscriber_zone(zone)
            except InvalidZone as exc:
                report.invalid.append(RowNote(line, email, exc.message))
                return None
        if key in seen:
            report.duplicates.append(RowNote(line, email, "already in an earlier row"))
            return None
        seen.add(key)
        return line, email, key, clean_name(cell("name")), status, zone

    def _import_batch(
        self,
        show: str,
        items: list[ImportRow],
        confirmed: bool,
        report: ImportReport,
    ) -> None:
        """One transaction: insert the new rows, update the changed ones, note the rest."""
        if not items:
            return
        with self._write():
            now = self._now()
            existing: dict[str, tuple[str, str | None, str | None]] = {}
            keys = [item[2] for item in items]
            for i in range(0, len(keys), SQL_VARIABLES):
                chunk = keys[i : i + SQL_VARIABLES]
                marks = ",".join("?" * len(chunk))
                for key, status, name, zone in self.db.execute(
                    f"SELECT key, status, name, timezone FROM subscribers "
                    f"WHERE show = ? AND key IN ({marks})",
                    (show, *chunk),
                ):
                    existing[key] = (status, name, zone)
            askable = [key for key in keys if key not in existing or existing[key][0] == "pending"]
            forgotten = self._forgotten(show, askable)
            inserts: list[tuple[object, ...]] = []
            status_changes: list[tuple[str, str, str]] = []
            renames: list[tuple[str | None, str, str]] = []
            rezones: list[tuple[str | None, str, str]] = []
            events: list[tuple[str, str, str, str]] = []
            for line, email, key, name, wanted, zone in items:
                old = existing.get(key)
                if wanted in SUPPRESSING:
                    if old is None and key in forgotten:
                        report.unchanged += 1
                    elif old is None:
                        token = _new_token()
                        inserts.append(
                            (show, key, email, name, wanted, now, "import", now, None, token,
                             token[:SELECTOR_CHARS], zone)
                        )  # fmt: skip
                        report.added += 1
                    elif old[0] in SUPPRESSING:
                        report.unchanged += 1
                    else:
                        status_changes.append((wanted, show, key))
                        events.append((now, wanted, show, key))
                        report.updated += 1
                    continue
                if key in forgotten:
                    report.suppressed.append(RowNote(line, email, FORGOTTEN))
                elif old is not None and old[0] in SUPPRESSING:
                    report.suppressed.append(RowNote(line, email, old[0]))
                elif old is None:
                    status = "confirmed" if confirmed else "pending"
                    token = _new_token()
                    inserts.append(
                        (show, key, email, name, status, now, "import", now,
                         now if confirmed else None, token, token[:SELECTOR_CHARS], zone)
                    )  # fmt: skip
                    report.added += 1
                else:
                    changed = False
                    if name is not None and name != old[1]:
                        renames.append((name, show, key))
                        changed = True
                    if zone is not None and zone != old[2]:
                        rezones.append((zone, show, key))
                        changed = True
                    if confirmed and old[0] == "pending":
                        status_changes.append(("confirmed", show, key))
                        events.append((now, "confirmed", show, key))
                        changed = True
                    if changed:
                        report.updated += 1
                    else:
                        report.unchanged += 1
            (last,) = self.db.execute("SELECT coalesce(max(rowid), 0) FROM subscribers").fetchone()
            self.db.executemany(
                "INSERT INTO subscribers (show, key, email, name, status, status_changed_at, "
                "status_source, created_at, consent_at, token, selector, timezone) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            self.db.executemany(
                "UPDATE subscribers SET name = ? WHERE show = ? AND key = ?", renames
            )
            self.db.executemany(
                "UPDATE subscribers SET timezone = ? WHERE show = ? AND key = ?", rezones
            )
            self.db.executemany(
                "UPDATE subscribers SET status = ?1, status_changed_at = ?4, "
                "status_source = 'import', "
                "consent_at = CASE WHEN ?1 = 'confirmed' THEN ?4 ELSE consent_at END "
                "WHERE show = ?2 AND key = ?3",
                [(status, show, key, now) for status, show, key in status_changes],
            )
            self.db.execute(
                "INSERT INTO events (subscriber, show, at, event, source) "
                "SELECT rowid, show, created_at, status, 'import' FROM subscribers "
                "WHERE rowid > ?",
                (last,),
            )
            self.db.executemany(
                "INSERT INTO events (subscriber, show, at, event, source) "
                "SELECT rowid, show, ?, ?, 'import' FROM subscribers WHERE show = ? AND key = ?",
                events,
            )

    def export_csv(self, show: str, out: IO[str], status: str | None = None) -> int:
        """Write the show's rows (or one status's) as CSV, tokens left out; returns how
        many. The file imports again without resubscribing anyone."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        count = 0
        for sub in self.subscribers(show, status):
            writer.writerow(
                ["" if getattr(sub, c) is None else getattr(sub, c) for c in EXPORT_COLUMNS]
            )
            count += 1
        return count

    def export_file(self, show: str, path: Path, status: str | None = None) -> int:
        """:meth:`export_csv` into ``path``, created (or truncated) with mode 0600."""
        try:
            private_file(path)
            with path.open("w", encoding="utf-8", newline="") as out:
                return self.export_csv(show, out, status)
        except OSError as exc:
            raise FamfeedsError(f"{display_path(path)}: cannot write ({exc.strerror})") from None
