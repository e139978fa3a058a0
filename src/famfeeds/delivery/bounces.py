"""Read the bounce mailbox (mbox, Maildir or IMAP) and classify what arrives there.

Readers yield :class:`email.message.EmailMessage` objects one at a time and never change the
mailbox. :func:`classify` turns one message into :class:`BounceEvent` values: RFC 3464 delivery
status notifications, RFC 5965 feedback (complaint) reports, other formats through flufl.bounce,
and the VERP token of the address the message was returned to. :func:`summarise` keeps the
strongest event per address. Nothing here imports click; reader failures raise
:class:`BounceSourceError` with a message meant for people.

Classification reports what it found, not whether to believe it: whether a report is about a
message famfeeds really sent (its keyed Message-ID or VERP tag) is decided by
:mod:`famfeeds.delivery.suppression`. A DSN Status outside RFC 3463's classes (2, 4, 5) and a
flufl.bounce detector that fails on a message are passed over with a note, never a traceback.
"""

from __future__ import annotations

import contextlib
import email.errors
import imaplib
import ipaddress
import logging
import mailbox
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.feedparser import BytesFeedParser
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Literal, Protocol, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from flufl.bounce import all_failures

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_VERP_PREFIX",
    "IMAP_PASSWORD_ENV",
    "BounceEvent",
    "BounceSourceError",
    "ImapSource",
    "Kind",
    "OversizedMessageDefect",
    "SkipHandler",
    "Source",
    "classify",
    "parse_imap_url",
    "read_imap",
    "read_maildir",
    "read_mbox",
    "summarise",
]

Kind = Literal["hard", "soft", "complaint"]
Source = Literal["dsn", "arf", "flufl", "verp"]
SkipHandler = Callable[[str], None]
"""Called with a one-line note for each mailbox entry a reader passes over."""

DEFAULT_VERP_PREFIX = "bounces"
DEFAULT_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
IMAP_PASSWORD_ENV = "FAMFEEDS_IMAP_PASSWORD"

_STRENGTH: dict[Kind, int] = {"soft": 0, "hard": 1, "complaint": 2}

# flufl.bounce logs a detector's failure with its traceback (logging.exception), which with
# no logging set up goes to stderr and into every cron mail. classify() notes the failure
# with the message it was reading instead; flufl's own log is kept quiet.
_FLUFL_LOG = logging.getLogger("flufl.bounce")
_FLUFL_LOG.addHandler(logging.NullHandler())
_FLUFL_LOG.propagate = False
_LINE_CAP = 64 * 1024
_TEXT_CAP = 64 * 1024
_REASON_CAP = 160
_MAX_DEPTH = 16


class BounceSourceError(Exception):
    """A bounce mailbox could not be read; the message says which one and why."""


class OversizedMessageDefect(email.errors.MessageDefect):
    """The message was longer than the reader's limit; only its beginning was parsed."""


@dataclass(frozen=True)
class BounceEvent:
    """One recipient's bounce or complaint, as reported by one message.

    ``address`` is lower-case, or empty when only the VERP ``token`` identifies the recipient
    (the caller maps tokens to subscribers). ``source`` names the evidence: "dsn", "arf",
    "flufl" (a non-standard bounce) or "verp" (a failure notice with no readable recipient).
    """

    address: str
    kind: Kind
    reason: str
    source: Source
    token: str | None = None


# --------------------------------------------------------------------------------------------
# Reading mailboxes


class _LimitedParser:
    """Feed bytes to a policy-default parser, ignoring everything past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self._parser = BytesFeedParser(EmailMessage, policy=policy.default)
        self._room = limit
        self._limit = limit
        self.truncated = False

    def feed(self, data: bytes) -> None:
        if len(data) > self._room:
            data = data[: self._room]
            self.truncated = True
        if data:
            self._parser.feed(data)
            self._room -= len(data)

    def close(self) -> EmailMessage:
        message = self._parser.close()
        if self.truncated:
            message.defects.append(
                OversizedMessageDefect(f"message longer than {self._limit} bytes; rest ignored")
            )
        return message


_MAIL_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "delivered-to",
        "content-type",
        "mime-version",
    }
)


def _looks_like_mail(message: Message) -> bool:
    """True when the message has at least one ordinary mail header."""
    return any(name.lower() in _MAIL_HEADERS for name, _ in message.raw_items())


def _check_limit(limit: int) -> None:
    if limit < 1024:
        raise ValueError("max_message_bytes must be at least 1024")


def read_mbox(
    path: str | Path,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    on_skip: SkipHandler | None = None,
) -> Iterator[EmailMessage]:
    """Yield the messages of an mbox file one by one, reading it as a stream.

    Messages start at lines beginning with "From ". Only the first ``max_message_bytes`` of a
    message are parsed (it then carries an :class:`OversizedMessageDefect`). Entries that are not
    mail, and text before the first "From " line, are passed over and reported to ``on_skip``.
    A file that is missing, unreadable or holds no "From " line raises BounceSourceError.
    """
    _check_limit(max_message_bytes)
    mbox = Path(path)
    if not mbox.is_file():
        if mbox.is_dir():
            what = "is a folder (for a Maildir use read_maildir)"
        else:
            what = "is not a regular file" if mbox.exists() else "does not exist"
        raise BounceSourceError(f"mbox file {mbox} {what}")
    return _mbox_messages(mbox, max_message_bytes, on_skip or _ignore)


def _ignore(note: str) -> None:
    del note


def _mbox_messages(path: Path, limit: int, on_skip: SkipHandler) -> Iterator[EmailMessage]:
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise BounceSourceError(f"cannot open mbox file {path}: {exc.strerror}") from exc
    with stream:
        current: _LimitedParser | None = None
        entry, entry_offset, offset = 0, 0, 0
        preamble = False
        line_start = True
        while True:
            try:
                line = stream.readline(_LINE_CAP)
            except OSError as exc:
                raise BounceSourceError(f"cannot read mbox file {path}: {exc.strerror}") from exc
            if not line or (line_start and line.startswith(b"From ")):
                if current is not None:
                    message = current.close()
                    if _looks_like_mail(message):
                        yield message
                    else:
                        on_skip(f"{path}: entry {entry} (byte {entry_offset}) is not mail; skipped")
                elif preamble and line:
                    on_skip(f"{path}: text before the first 'From ' line is not mail; skipped")
                if not line:
                    break
                entry += 1
                entry_offset = offset
                current = _LimitedParser(limit)
            elif current is not None:
                current.feed(line)
            elif line.strip():
                preamble = True
            offset += len(line)
            line_start = line.endswith(b"\n")
        if entry == 0 and preamble:
            raise BounceSourceError(
                f"{path} is not an mbox file: no line starts with 'From ' (a single message "
                "file? put it in a Maildir's new/ folder)"
            )


def read_maildir(
    path: str | Path,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    on_skip: SkipHandler | None = None,
) -> Iterator[EmailMessage]:
    """Yield the messages in a Maildir's new/ and cur/ folders, oldest file name first.

    Files are not moved or flagged. Only the first ``max_message_bytes`` of a message are parsed.
    Files that are not mail, or vanish while reading, are reported to ``on_skip``. A path that is
    not a Maildir (no cur/ and new/ folders) raises BounceSourceError.
    """
    _check_limit(max_message_bytes)
    root = Path(path)
    if not root.is_dir():
        what = "is a file (for an mbox use read_mbox)" if root.exists() else "does not exist"
        raise BounceSourceError(f"Maildir {root} {what}")
    missing = [name for name in ("cur", "new") if not (root / name).is_dir()]
    if missing:
        folders = " and ".join(f"{name}/" for name in missing)
        raise BounceSourceError(f"{root} is not a Maildir: it has no {folders} folder")
    return _maildir_messages(root, max_message_bytes, on_skip or _ignore)


def _maildir_messages(root: Path, limit: int, on_skip: SkipHandler) -> Iterator[EmailMessage]:
    box = mailbox.Maildir(root, factory=None, create=False)
    try:
        keys = sorted(box.keys())
    except OSError as exc:
        raise BounceSourceError(f"cannot list Maildir {root}: {exc.strerror}") from exc
    for key in keys:
        try:
            stream = box.get_file(key)
        except (KeyError, OSError):
            on_skip(f"{root}: message {key} vanished before it could be read; skipped")
            continue
        with stream:
            parser = _LimitedParser(limit)
            try:
                _feed_stream(parser, stream, limit)
            except OSError as exc:
                raise BounceSourceError(f"cannot read {root} message {key}: {exc}") from exc
        message = parser.close()
        if _looks_like_mail(message):
            yield message
        else:
            on_skip(f"{root}: message {key} is not mail; skipped")


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def _feed_stream(parser: _LimitedParser, stream: _Readable, limit: int) -> None:
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(_LINE_CAP, remaining))
        if not chunk:
            return
        parser.feed(chunk)
        remaining -= len(chunk)


@dataclass(frozen=True)
class ImapSource:
    """Where the bounce mailbox lives on an IMAP server (never holds the password)."""

    host: str
    port: int
    user: str
    folder: str
    tls: Literal["implicit", "starttls", "none"]
    cafile: Path | None = None

    def __str__(self) -> str:
        scheme = "imaps" if self.tls == "implicit" else "imap"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{self.user}@{host}:{self.port}/{self.folder}"


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def parse_imap_url(url: str) -> ImapSource:
    """Parse ``imap://user@host:port/FOLDER`` or ``imaps://user@host:993/INBOX``.

    imaps is TLS from the start; imap must upgrade with STARTTLS. Both verify the server's
    certificate, against ``?cafile=PATH`` when given. ``?insecure=true`` (imap only) skips TLS and
    is allowed for loopback test servers only. The folder defaults to INBOX. A password in the
    URL is refused: pass it separately.
    """
    try:
        secret = urlsplit(url).netloc.rpartition("@")[0].partition(":")[2]
    except ValueError:
        secret = ""
    shown = url.replace(secret, "***") if secret else url

    def bad(problem: str) -> BounceSourceError:
        return BounceSourceError(f"IMAP URL {shown!r}: {problem}")

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(f"{exc} (expected imaps://USER@HOST:993/INBOX)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise bad("the scheme must be imap:// or imaps:// (e.g. imaps://USER@HOST:993/INBOX)")
    if parts.password is not None:
        raise bad(f"leave the password out of the URL and set {IMAP_PASSWORD_ENV} instead")
    if not parts.hostname:
        raise bad("no server name (expected imaps://USER@HOST:993/INBOX)")
    if not parts.username:
        raise bad("no user name (expected imaps://USER@HOST:993/INBOX)")
    user = unquote(parts.username)
    if not user.isprintable():
        raise bad("the user name contains control characters")
    if port == 0:
        raise bad("the port must be between 1 and 65535")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if not folder.isascii() or any(ch in folder for ch in "\r\n\0"):
        raise bad("the folder name must be plain ASCII")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"insecure", "cafile"})
    if unknown:
        raise bad(f"unknown option {unknown[0]!r} (known: insecure, cafile)")
    insecure = _flag(options.get("insecure", "false"))
    if insecure is None:
        raise bad("insecure must be true or false")
    cafile = Path(options["cafile"]) if options.get("cafile") else None
    if insecure:
        if scheme == "imaps":
            raise bad("imaps is always encrypted; drop ?insecure=true")
        if cafile is not None:
            raise bad("?cafile has no effect with ?insecure=true")
        if not _is_loopback(parts.hostname):
            raise bad(
                "?insecure=true sends the password unencrypted; it is only allowed for a "
                "test server on loopback (127.0.0.1, ::1, localhost)"
            )
    tls: Literal["implicit", "starttls", "none"] = (
        "implicit" if scheme == "imaps" else "none" if insecure else "starttls"
    )
    default_port = 993 if scheme == "imaps" else 143
    return ImapSource(
        host=parts.hostname,
        port=port or default_port,
        user=user,
        folder=folder,
        tls=tls,
        cafile=cafile,
    )


def _flag(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in _LOOPBACK_NAMES


def read_imap(
    url: str,
    password: str,
    *,
    timeout: float = 30.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    on_skip: SkipHandler | None = None,
) -> Iterator[EmailMessage]:
    """Yield the messages of an IMAP folder (see :func:`parse_imap_url` for the URL).

    The folder is opened read-only and messages are fetched one at a time with BODY.PEEK, so
    nothing is flagged \\Seen. The URL is checked at once; the connection opens on the first
    ``next()``. Any failure raises BounceSourceError; its text never contains the password.
    """
    _check_limit(max_message_bytes)
    source = parse_imap_url(url)
    if not password:
        raise BounceSourceError(f"no password for {source}: set {IMAP_PASSWORD_ENV}")
    return _imap_messages(source, password, timeout, max_message_bytes, on_skip or _ignore)


def _imap_messages(
    source: ImapSource, password: str, timeout: float, limit: int, on_skip: SkipHandler
) -> Iterator[EmailMessage]:
    try:
        connection = _imap_connect(source, timeout)
        try:
            _imap_login(connection, source, password)
            yield from _imap_fetch(connection, source, limit, on_skip)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise BounceSourceError(f"{source}: connection failed: {_describe(exc)}") from None
        finally:
            _imap_close(connection)
    except BounceSourceError as exc:
        raise BounceSourceError(str(exc).replace(password, "***")) from None


def _describe(exc: BaseException) -> str:
    """The human part of an exception from socket, ssl or imaplib (which may carry bytes)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    detail = exc.args[0] if exc.args else ""
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    return " ".join(text.split()) or type(exc).__name__


def _tls_context(source: ImapSource) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=source.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise BounceSourceError(
            f"{source}: cannot load the CA file {source.cafile}: {_describe(exc)}"
        ) from None


def _imap_connect(source: ImapSource, timeout: float) -> imaplib.IMAP4:
    where = f"{source}"
    context = _tls_context(source) if source.tls != "none" else None
    try:
        if context is not None and source.tls == "implicit":
            connection: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                source.host, source.port, ssl_context=context, timeout=timeout
            )
        else:
            connection = imaplib.IMAP4(source.host, source.port, timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        raise _certificate_error(where, exc) from None
    except ssl.SSLError as exc:
        raise BounceSourceError(f"{where}: TLS failed: {exc.reason or exc}") from None
    except socket.gaierror:
        raise BounceSourceError(f"{where}: server name {source.host!r} not found") from None
    except ConnectionRefusedError:
        raise BounceSourceError(
            f"{where}: connection refused (is the IMAP server running on port {source.port}?)"
        ) from None
    except TimeoutError:
        raise BounceSourceError(f"{where}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise BounceSourceError(f"{where}: cannot connect: {_describe(exc)}") from None
    except imaplib.IMAP4.error as exc:
        raise BounceSourceError(
            f"{where}: the server did not answer like an IMAP server: {_describe(exc)}"
        ) from None
    if context is not None and source.tls == "starttls":
        try:
            if "STARTTLS" not in connection.capabilities:
                raise BounceSourceError(
                    f"{where}: the server does not offer STARTTLS, and the password must not "
                    "travel unencrypted (use imaps://, or ?insecure=true for a loopback test "
                    "server)"
                )
            connection.starttls(ssl_context=context)
        except ssl.SSLCertVerificationError as exc:
            _imap_close(connection)
            raise _certificate_error(where, exc) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            _imap_close(connection)
            raise BounceSourceError(f"{where}: STARTTLS failed: {_describe(exc)}") from None
        except BounceSourceError:
            _imap_close(connection)
            raise
    return connection


def _certificate_error(where: str, exc: ssl.SSLCertVerificationError) -> BounceSourceError:
    return BounceSourceError(
        f"{where}: the server's TLS certificate was not accepted ({exc.verify_message}); "
        "for a private CA add ?cafile=PATH to the URL"
    )


def _imap_login(connection: imaplib.IMAP4, source: ImapSource, password: str) -> None:
    """LOGIN for plain ASCII credentials; AUTHENTICATE PLAIN (UTF-8) for others or when the
    server disables LOGIN."""
    capabilities = connection.capabilities
    plain_ascii = source.user.isascii() and password.isascii() and password.isprintable()
    try:
        if plain_ascii and "LOGINDISABLED" not in capabilities:
            connection.login(source.user, password)
        elif "AUTH=PLAIN" in capabilities:
            credentials = f"\0{source.user}\0{password}".encode()
            connection.authenticate("PLAIN", lambda _challenge: credentials)
        else:
            why = "has disabled LOGIN" if plain_ascii else "only offers LOGIN"
            raise BounceSourceError(
                f"{source}: the server {why} and does not offer AUTHENTICATE PLAIN"
                + ("" if plain_ascii else ", needed for non-ASCII or control characters")
            )
    except imaplib.IMAP4.error as exc:
        raise BounceSourceError(
            f"{source}: login as {source.user!r} refused: {_describe(exc)}; check the user "
            f"name in the URL and the password in {IMAP_PASSWORD_ENV}"
        ) from None


def _imap_fetch(
    connection: imaplib.IMAP4, source: ImapSource, limit: int, on_skip: SkipHandler
) -> Iterator[EmailMessage]:
    quoted = '"' + source.folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
    status, data = connection.select(quoted, readonly=True)
    if status != "OK":
        detail = _describe(imaplib.IMAP4.error(data[-1] if data else status))
        raise BounceSourceError(f"{source}: cannot open folder {source.folder!r}: {detail}")
    status, found = connection.uid("SEARCH", "ALL")
    if status != "OK":
        raise BounceSourceError(f"{source}: cannot list the folder's messages")
    first = found[0] if found else None
    uids = [uid.decode("ascii") for uid in first.split()] if isinstance(first, bytes) else []
    for uid in uids:
        status, fetched = connection.uid("FETCH", uid, f"(BODY.PEEK[]<0.{limit + 1}>)")
        literal = next((item[1] for item in fetched if isinstance(item, tuple)), None)
        if status != "OK" or not isinstance(literal, bytes):
            on_skip(f"{source}: message UID {uid} vanished before it could be read; skipped")
            continue
        parser = _LimitedParser(limit)
        parser.feed(literal)
        message = parser.close()
        if _looks_like_mail(message):
            yield message
        else:
            on_skip(f"{source}: message UID {uid} is not mail; skipped")


def _imap_close(connection: imaplib.IMAP4) -> None:
    try:
        connection.logout()
    except (OSError, imaplib.IMAP4.error):
        with contextlib.suppress(OSError):
            connection.shutdown()


# --------------------------------------------------------------------------------------------
# Classification

_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY_CODE_RE = re.compile(r"(?:^|[:;]\s*)([245])\d\d(?=[\s-])")
_REPLY_PREFIX_RE = re.compile(r"(?<![\w.])[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?")
_DIAGNOSTIC_TYPE_RE = re.compile(r"^\s*[A-Za-z][\w-]*\s*;\s*")
_FAILURE_SENDERS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})
_FAILURE_SUBJECT = re.compile(
    r"undeliver|not (be )?delivered|delivery (status|failure|failed|has failed|problem|"
    r"notification|incomplete|delayed)|failure notice|returned mail|returned to sender|"
    r"mail delivery (failed|failure|system|subsystem)|non-?delivery|delayed mail",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|answer)|out of (the )?office|vacation|away)\b",
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponse", "x-vacation")
_VERP_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
_ARF_NOT_COMPLAINT = frozenset({"not-spam", "auth-failure", "virus"})
_ADDRESS_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+$")


def classify(
    message: Message, verp: str | None = None, notes: list[str] | None = None
) -> list[BounceEvent]:
    """Return the bounce and complaint events one message reports (empty if it is neither).

    Rules, in order: an ARF report (message/feedback-report) is a complaint, except the types
    not-spam, auth-failure and virus; a DSN (message/delivery-status) gives per recipient
    soft for Action delayed or Status 4.x.x, hard for failed/5.x.x, nothing for delivered or
    relayed; 5.2.2 (mailbox full), 5.3.4 (too big), 5.6.x (content) and 5.7.x (policy) are soft,
    since they say nothing against the address. An auto-reply is not a bounce. Other formats go
    to flufl.bounce. A failure notice that names no recipient still yields an address-less event
    when it was returned to a VERP address. ``verp`` is the VERP local-part prefix (default
    "bounces", as in bounces+TOKEN@example.org); every event carries the token when one is found.

    A DSN recipient block whose Status is not an RFC 3463 code of class 2, 4 or 5 (``9.9.9``)
    gives no event, whatever its Action says. That, and a flufl.bounce detector that fails on
    the message (read as no bounce), is told by a one-line note appended to ``notes``.
    """
    notes = notes if notes is not None else []
    prefix = (verp if verp is not None else DEFAULT_VERP_PREFIX).rstrip("+").lower()
    if not prefix:
        raise ValueError("the VERP prefix must not be empty")
    parts = list(_own_parts(message))
    types = {part.get_content_type() for part in parts}
    if "message/disposition-notification" in types:
        return []
    for part in parts:
        if part.get_content_type() == "message/feedback-report":
            return _arf_events(message, parts, part, prefix)
    token = _verp_token(_header_values(message, *_VERP_HEADERS), prefix)
    reports = [p for p in parts if p.get_content_type() in _DSN_TYPES]
    if reports:
        token = token or _verp_token(_dsn_sender_values(reports, parts), prefix)
        found = _dsn_events(reports, token, prefix, notes)
        if found is not None:
            return _dedupe(found)
    failure = _looks_like_failure(message, types)
    if not failure and _is_auto_reply(message):
        return []
    events = _flufl_events(message, parts, token, prefix, notes)
    if events:
        return _dedupe(events)
    if failure:
        token = token or _verp_token(_original_return_path(parts), prefix)
        if token:
            status, line = _text_status(_notification_text(parts), None)
            kind = _kind_for(status, default="soft")
            reason = _reason(status, line) if status else "failure notice naming no recipient"
            return [BounceEvent("", kind, reason, "verp", token)]
    return []


def summarise(events: Iterable[BounceEvent]) -> dict[str, BounceEvent]:
    """Keep the strongest event per address: complaint > hard > soft (first one on a tie).

    Keys are lower-case addresses. An event without an address (VERP token only) raises
    ValueError: map its token to the subscriber's address first (``dataclasses.replace``).
    """
    strongest: dict[str, BounceEvent] = {}
    for event in events:
        if not event.address:
            raise ValueError(
                f"bounce event with VERP token {event.token!r} has no address; "
                "map the token to an address before summarising"
            )
        key = event.address.lower()
        held = strongest.get(key)
        if held is None or _STRENGTH[event.kind] > _STRENGTH[held.kind]:
            strongest[key] = event
    return strongest


def _dedupe(events: list[BounceEvent]) -> list[BounceEvent]:
    kept: dict[str, BounceEvent] = {}
    for event in events:
        held = kept.get(event.address)
        if held is None or _STRENGTH[event.kind] > _STRENGTH[held.kind]:
            kept[event.address] = event
    return list(kept.values())


_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})


def _own_parts(message: Message, depth: int = 0) -> Iterator[Message]:
    """The message and its MIME parts, not looking inside attached messages or reports."""
    yield message
    if depth >= _MAX_DEPTH or message.get_content_maintype() == "message":
        return
    if message.is_multipart():
        for part in cast(list[Message], message.get_payload()):
            if isinstance(part, Message):
                yield from _own_parts(part, depth + 1)


def _unfold(value: object) -> str:
    return re.sub(r"\s*\r?\n[ \t]+", " ", str(value)).strip()


def _header_values(message: Message, *names: str) -> list[str]:
    """Raw (unparsed, unfolded) values of the named headers, in the order asked for."""
    items = [(name.lower(), value) for name, value in message.raw_items()]
    return [_unfold(value) for wanted in names for name, value in items if name == wanted]


def _header(message: Message, name: str) -> str:
    values = _header_values(message, name)
    return values[0] if values else ""


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


def _normalise(value: str, prefix: str) -> str | None:
    """A lower-case address from a header or DSN field value, or None if it isn't one."""
    value = value.strip()
    kind, sep, rest = value.partition(";")
    if sep and "@" not in kind:
        value = rest.strip()
    address = parseaddr(value)[1] or value.strip("<> \t")
    address = address.strip().strip("<>").rstrip(".").lower()
    if not _ADDRESS_RE.match(address) or _verp_token([address], prefix) is not None:
        return None
    if address.split("@", 1)[0] == prefix:
        return None
    return address


def _verp_token(values: Iterable[str], prefix: str) -> str | None:
    """The TOKEN of the first ``prefix+TOKEN@domain`` address among the header values."""
    for _name, address in getaddresses(list(values)):
        local, at, _domain = address.strip().rpartition("@")
        if not at:
            continue
        head, plus, token = local.partition("+")
        if plus and head.lower() == prefix and token:
            return token
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks: list[Message] = []
        for block in payload:
            if isinstance(block, Message):
                blocks.append(block)
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    blocks.extend(_parse_blocks(body.encode("utf-8", "replace")))
        return blocks
    raw = part.get_payload(decode=True)
    return _parse_blocks(raw) if isinstance(raw, bytes) else []


def _parse_blocks(raw: bytes) -> list[Message]:
    parser = BytesHeaderParser(policy=policy.default)
    chunks = re.split(rb"\r?\n[ \t]*\r?\n", raw)
    return [parser.parsebytes(chunk.strip(b"\r\n") + b"\n") for chunk in chunks if chunk.strip()]


def _dsn_sender_values(reports: list[Message], parts: list[Message]) -> list[str]:
    """Where a DSN may name our envelope sender: X-Postfix-Sender, the original's Return-Path."""
    values: list[str] = []
    for report in reports:
        for block in _field_blocks(report)[:1]:
            values += [v.partition(";")[2] or v for v in _header_values(block, "x-postfix-sender")]
    return values + _original_return_path(parts)


def _dsn_events(
    reports: list[Message], token: str | None, prefix: str, notes: list[str]
) -> list[BounceEvent] | None:
    """Events for the DSN's per-recipient blocks; None if it has no readable recipient block.
    A block with a Status that is not an RFC 3463 code is passed over, with a note."""
    events: list[BounceEvent] = []
    readable = False
    for report in reports:
        for block in _field_blocks(report):
            recipients = _header_values(block, "original-recipient", "final-recipient")
            address = next((a for v in recipients if (a := _normalise(v, prefix))), None)
            if address is None:
                continue
            readable = True
            action = _header(block, "action").lower()
            diagnostic = _header(block, "diagnostic-code")
            given = _header(block, "status")
            if given and _status(given) is None:
                notes.append(
                    f"Status {given[:40]!r} for {address} is not an RFC 3463 status code "
                    "(class 2, 4 or 5 and two numbers, as in 5.1.1): this recipient is ignored"
                )
                continue
            status = _status(given) or _status(diagnostic)
            kind = _dsn_kind(action, status)
            if kind is not None:
                reason = _reason(status, _DIAGNOSTIC_TYPE_RE.sub("", diagnostic), action)
                events.append(BounceEvent(address, kind, reason, "dsn", token))
    return events if readable else None


def _dsn_kind(action: str, status: str | None) -> Kind | None:
    if action.startswith("delayed"):
        return "soft"
    if action.startswith(("delivered", "relayed", "expanded")):
        return None
    if status is not None and status[0] in "45":
        return _kind_for(status, default="hard")
    if action.startswith(("failed", "error")):
        return "hard"
    return None


def _status(text: str) -> str | None:
    """The first RFC 3463 enhanced status code (d.d.d) in the text."""
    match = _STATUS_RE.search(text)
    return ".".join(match.groups()) if match else None


def _kind_for(status: str | None, default: Kind) -> Kind:
    """Soft for 4.x.x, and for 5.x.x codes that blame the message or sender, not the address."""
    if status is None:
        return default
    klass, subject, detail = status.split(".")
    if klass == "4":
        return "soft"
    if klass != "5":
        return default
    if subject in ("6", "7") or (subject, detail) in (("2", "2"), ("3", "4")):
        return "soft"
    return "hard"


def _reason(status: str | None, text: str, fallback: str = "") -> str:
    """One short line: the status code and the server's words."""
    words = _REPLY_PREFIX_RE.sub(" ", _unfold(text))
    if status:
        words = re.sub(rf"^\s*{re.escape(status)}\b", "", words)
    words = " ".join(words.split())
    line = " ".join(item for item in (status or "", words or fallback) if item)
    return line if len(line) <= _REASON_CAP else line[: _REASON_CAP - 1].rstrip() + "…"


def _looks_like_failure(message: Message, types: set[str]) -> bool:
    """Positive signs of a delivery failure notice from a mail system."""
    if types & _DSN_TYPES or _header_values(message, "x-failed-recipients"):
        return True
    sender = parseaddr(_header(message, "from"))[1].lower()
    if sender.partition("@")[0] in _FAILURE_SENDERS:
        return True
    return bool(_FAILURE_SUBJECT.search(_decoded(_header(message, "subject"))))


def _is_auto_reply(message: Message) -> bool:
    """Vacation and other automatic answers (RFC 3834 Auto-Submitted, common vendor headers)."""
    submitted = _header(message, "auto-submitted").lower()
    if submitted and not submitted.startswith("no"):
        return True
    if _header_values(message, *_AUTO_REPLY_HEADERS):
        return True
    if _header(message, "precedence").lower() == "auto_reply":
        return True
    return bool(_AUTO_REPLY_SUBJECT.search(_decoded(_header(message, "subject"))))


def _original_headers(parts: list[Message]) -> Message | None:
    """The returned or reported original message's headers, when attached."""
    for part in parts:
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return BytesHeaderParser(policy=policy.default).parsebytes(raw)
    return None


def _original_return_path(parts: list[Message]) -> list[str]:
    original = _original_headers(parts)
    return _header_values(original, "return-path") if original is not None else []


def _arf_events(
    message: Message, parts: list[Message], report: Message, prefix: str
) -> list[BounceEvent]:
    """A complaint for the reported recipient: Original-Rcpt-To, Removal-Recipient, or the
    attached original's To (only when it names one address); plus the VERP token of the
    original envelope sender."""
    blocks = _field_blocks(report)
    fields = blocks[0] if blocks else Message()
    feedback_type = _header(fields, "feedback-type").lower() or "abuse"
    if feedback_type in _ARF_NOT_COMPLAINT:
        return []
    original = _original_headers(parts)
    candidates = _header_values(fields, "original-rcpt-to", "removal-recipient")
    addresses = [a for v in candidates if (a := _normalise(v, prefix))]
    if not addresses and original is not None:
        named = getaddresses(_header_values(original, "to"))
        if len(named) == 1:
            addresses = [a for _, v in named if (a := _normalise(v, prefix))]
    token = _verp_token(
        _header_values(fields, "original-mail-from")
        + (_header_values(original, "return-path") if original is not None else [])
        + _header_values(message, *_VERP_HEADERS),
        prefix,
    )
    agent = _header(fields, "user-agent")
    reason = f"feedback report: {feedback_type}" + (f" from {agent}" if agent else "")
    reason = _reason(None, reason)
    if addresses:
        return _dedupe([BounceEvent(a, "complaint", reason, "arf", token) for a in addresses])
    if token:
        return [BounceEvent("", "complaint", reason, "arf", token)]
    return []


def _flufl_events(
    message: Message, parts: list[Message], token: str | None, prefix: str, notes: list[str]
) -> list[BounceEvent]:
    """Non-standard bounces through flufl.bounce's detectors; status codes refine the kind.
    A detector that fails on odd input makes no bounce: the failure is noted, not logged."""
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a heuristic detector tripping on odd input
        what = " ".join(str(exc).split())[:100]
        notes.append(
            f"flufl.bounce's detectors failed on it ({type(exc).__name__}"
            + (f": {what}" if what else "")
            + "): read as no bounce"
        )
        return []
    text = _notification_text(parts)
    single = len(temporary | permanent) == 1
    events: list[BounceEvent] = []
    for raw, transient in [(a, True) for a in sorted(temporary)] + [
        (a, False) for a in sorted(permanent)
    ]:
        text_address = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        address = _normalise(text_address, prefix)
        if address is None:
            continue
        status, line = _text_status(text, address, whole=single)
        kind: Kind = "soft" if transient else _kind_for(status, default="hard")
        reason = _reason(status, line) if status else "non-standard bounce"
        events.append(BounceEvent(address, kind, reason, "flufl", token))
    return events


def _notification_text(parts: list[Message]) -> str:
    """The human-readable text of the notice itself (not of attached messages)."""
    texts: list[str] = []
    for wanted in ("text/plain", "text/html"):
        for part in parts:
            if part.get_content_type() != wanted or part.is_multipart():
                continue
            raw = part.get_payload(decode=True)
            if not isinstance(raw, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                text = raw[:_TEXT_CAP].decode(charset, "replace")
            except LookupError:
                text = raw[:_TEXT_CAP].decode("utf-8", "replace")
            if wanted == "text/html":
                text = re.sub(r"<[^>]*>", " ", text)
            texts.append(text)
        if texts:
            break
    return "\n".join(texts)


def _text_status(text: str, address: str | None, whole: bool = True) -> tuple[str | None, str]:
    """A status code near the address in the text (or anywhere, if ``whole``) and its line."""
    lines = text.splitlines()
    if address is not None:
        for index, line in enumerate(lines):
            if address in line.lower():
                for nearby in lines[index : index + 6]:
                    if found := _line_status(nearby):
                        return found, nearby
    if whole:
        for line in lines:
            if found := _line_status(line):
                return found, line
    return None, ""


def _line_status(line: str) -> str | None:
    status = _status(line)
    if status is None and (match := _REPLY_CODE_RE.search(line.strip())):
        status = f"{match.group(1)}.0.0"
    return status
