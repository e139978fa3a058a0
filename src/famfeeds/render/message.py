"""Email messages of newsletter issues: multipart/alternative, deterministic bytes.

A :class:`MessageTemplate` is built once per issue. It encodes the constant headers
(RFC 2047 where needed, by the standard library's SMTP policy) and the quoted-
printable bodies once, cut at the personalisation markers; a subscriber's message
is then those bytes joined with their own few values. No subscriber's message is
re-rendered, re-inlined or re-encoded as a whole, so personalising is cheap.

Each cut ends in a quoted-printable soft line break ("=" at the end of a line),
which decodes to nothing: every piece starts a fresh line, so pieces encoded
separately join into valid quoted-printable with lines of at most 76 characters.

Header rules: every line is at most 998 octets (RFC 5322), and a subscriber's lines
that could grow past it (To, Message-ID, List-Unsubscribe with a long token) raise
:class:`HeaderTooLong` instead of going out. Text that looks like an RFC 2047 encoded
word (``=?utf-8?q?...?=``) is itself encoded, so the Subject a reader sees is the title
as written. A built .eml is dated at the issue's day; a sent copy is dated when it is
sent (``render(..., date=...)``). Every message, the built .eml included, says the show's
language in ``Content-Language`` (RFC 3282), as the confirmation mail does. An address
whose domain is internationalised goes into To in its ASCII (IDNA) form; one whose local
part is not ASCII goes in as UTF-8, which only a server offering SMTPUTF8 may receive (the
sender checks).

A recipient's copy carries a digest of the address in its Message-ID (and the sender puts the
same digest in the VERP envelope sender): an HMAC keyed with the project's secret, which the
caller passes in (this module reads no files), so that only famfeeds can make one and
``famfeeds bounces`` can tell a returned message of its own from a forged report. The built
.eml has no recipient and no digest.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from email import message_from_bytes
from email.header import Header
from email.policy import SMTP, default
from email.utils import format_datetime, formataddr, quote
from functools import lru_cache

import idna

from famfeeds.render.outputs import machine_time
from famfeeds.render.personal import Markers, RenderedIssue, one_line, values
from famfeeds.render.urls import unsubscribe_url

PLACEHOLDER_TO = "undisclosed-recipients:;"
"""The To of a built .eml: a valid empty group, which sending replaces per subscriber."""
CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
NAME, TOKEN = "name", "token"
MAX_LINE = 998
"""The longest header line RFC 5322 allows, in octets, without its CRLF."""


class HeaderTooLong(ValueError):
    """A subscriber's header line would be longer than 998 octets; the message is not sent."""


def _encoded_words(name: str, value: str) -> str:
    """``value`` as RFC 2047 UTF-8 encoded words, folded to 76-character lines."""
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


_BREAKS = re.compile(r"[ \t\r\n\v\f\x1c-\x1f\x85\u2028\u2029]+")


def header_text(value: str) -> str:
    """Text for one header line: line breaks, tabs and runs of spaces become one space;
    every other character (a no-break space included) stays as written."""
    return _BREAKS.sub(" ", value).strip(" ")


def _fold_ascii(name: str, value: str) -> bytes | None:
    """An ASCII value folded at its spaces into lines of at most 78 characters where the
    words allow; None when a word is too long to stand on a line of its own."""
    words = value.split(" ")
    if any(len(word) > MAX_LINE - 100 for word in words):
        return None
    lines, line = [], f"{name}:"
    for word in words:
        if len(line) > len(name) + 1 and len(line) + 1 + len(word) > 78:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


EMPTY_WORD = re.compile(rb"=\?[^?]*\?[qQbB]\?\?=")
"""An encoded word with no text, which RFC 2047 forbids and strict readers show as it is
(the email package's folding writes one in some cases: CPython issue 85725)."""


def _reads_back(name: str, raw: bytes, value: str) -> bool:
    """True when a reader's parser (the email package) gets exactly ``value`` back, and
    the line holds no empty encoded word."""
    if EMPTY_WORD.search(raw):
        return False
    message = message_from_bytes(raw + b"\r\n", policy=default)
    return not message.defects and str(message[name]) == value


def _header(name: str, value: str) -> bytes:
    """One unstructured header line, folded, non-ASCII text encoded as RFC 2047 words.

    The folded line is parsed back once (per issue, not per subscriber); whenever a reader
    would not see ``value`` exactly (a title that looks like an encoded word ``=?...?=``,
    a fold the parser reads as a leading space), the whole value is written as encoded
    words instead, which always reads back as written.
    """
    if "=?" not in value:
        if value.isascii() and len(name) + 2 + len(value) <= 78:
            return f"{name}: {value}\r\n".encode("ascii")  # what the policy would write
        if value.isascii():
            raw = _fold_ascii(name, value)
        else:
            raw = bytes(SMTP.fold_binary(name, SMTP.header_store_parse(name, value)[1]))
        if raw is not None and _reads_back(name, raw, value):
            return raw
    return f"{name}: {_encoded_words(name, value)}\r\n".encode("ascii")


def _mailbox(name: str, display: str, address: str) -> bytes:
    """An address header with a display name (From, List-Id): the name encoded as words
    when it holds ``=?`` (so it shows as written), else as the policy writes it."""
    if "=?" in display:
        return f"{name}: {_encoded_words(name, display)}\r\n <{address}>\r\n".encode("ascii")
    formatted = (
        formataddr((display, address)) if "@" in address else f"{_phrase(display)} <{address}>"
    )
    if formatted.isascii() and len(name) + 2 + len(formatted) <= 78:
        return f"{name}: {formatted}\r\n".encode("ascii")
    return bytes(SMTP.fold_binary(name, SMTP.header_store_parse(name, formatted)[1]))


SPECIALS = frozenset('()<>[]:;@\\,."')
"""RFC 5322's specials: a display name holding one is written as a quoted string."""


def _phrase(display: str) -> str:
    """A display name as RFC 5322 reads it (List-Id's, RFC 2919): as it is, else quoted,
    so that ``Smith, John (news) <x@y>`` is not read as a comment and an address."""
    if not SPECIALS.intersection(display):
        return display
    return f'"{quote(display)}"'


@lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """A domain in its ASCII form: IDNA A-labels (punycode) for an internationalised one."""
    if domain.isascii():
        return domain
    return idna.encode(domain, uts46=True).decode("ascii")


def header_address(address: str) -> str:
    """The address as To shows it: the domain in ASCII (IDNA); a non-ASCII local part stays
    UTF-8 (RFC 6532, for SMTPUTF8 servers only)."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{ascii_domain(domain)}"


def _check_line(line: bytes, what: str) -> bytes:
    if len(line) - 2 > MAX_LINE:
        raise HeaderTooLong(
            f"the {what} header line would be {len(line) - 2:,} octets long; RFC 5322 "
            f"allows {MAX_LINE} (is the token or the address too long?)"
        )
    return line


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (lines of at most 76 characters)."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", CRLF)


def _date_line(moment: datetime) -> bytes:
    """The Date line: RFC 5322 format with the numeric zone of ``moment``."""
    return f"Date: {format_datetime(machine_time(moment))}\r\n".encode("ascii")


def split_at(text: str, first: str, second: str) -> list[str]:
    """``text`` cut at each occurrence of ``first`` or ``second`` (non-empty), the
    separators kept at odd positions: ``re.split`` of the two alternatives, the first
    winning where both start, without compiling a pattern for every issue's markers."""
    out: list[str] = []
    start = 0
    while True:
        a, b = text.find(first, start), text.find(second, start)
        if a < 0 and b < 0:
            out.append(text[start:])
            return out
        at, found = (a, first) if a >= 0 and (b < 0 or a <= b) else (b, second)
        out += [text[start:at], found]
        start = at + len(found)


def _pieces(body: str, markers: Markers) -> list[bytes | str]:
    """The body cut at its markers: encoded bytes for the fixed parts, NAME or TOKEN for
    the places a subscriber's value goes."""
    out: list[bytes | str] = []
    for i, part in enumerate(split_at(body, markers.greeting, markers.token)):
        if i % 2:
            out.append(NAME if part == markers.greeting else TOKEN)
        elif part:
            out.append(_qp(part) + SOFT_BREAK)
    return out


DIGEST_LABEL = b"famfeeds-recipient\0"
"""Sets the digest's HMAC apart from the other uses of the project's secret."""


def recipient_digest(recipient: str, key: bytes, show: str) -> str:
    """20 hex digits that stand for an address (case-insensitively) of one show in the
    Message-ID and in a VERP envelope sender: HMAC-SHA256 keyed with the project's secret,
    the same for every issue, never the address itself, and not computable without the key
    (so a bounce that carries it came back from a message famfeeds sent)."""
    if not key:
        raise ValueError("a recipient digest needs the project's secret key")
    text = DIGEST_LABEL + show.encode() + b"\0" + recipient.strip().lower().encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:20]


def message_id(item: RenderedIssue, recipient: str | None = None, key: bytes = b"") -> str:
    """A Message-ID stable for the issue, or for the (issue, recipient) pair; the latter
    carries the recipient's keyed digest, so ``key`` (the project's secret) is required."""
    show = item.issue.show
    local = f"{item.issue.slug}.{show.slug}"
    if recipient is not None:
        local += f".{recipient_digest(recipient, key, show.slug)}"
    return f"<{local}@{ascii_domain(show.domain)}>"


@dataclass(frozen=True)
class MessageTemplate:
    """An issue's message, encoded once, ready to be completed per subscriber."""

    item: RenderedIssue
    head: bytes
    """From, Reply-To: the headers before To."""
    subject: bytes
    """The Subject line, after To."""
    date: bytes
    """The built .eml's Date line (the issue's day); a sent copy gets the moment of sending."""
    tail: bytes
    """List-Id, MIME headers and the boundary: after List-Unsubscribe."""
    text: list[bytes | str]
    html: list[bytes | str]
    boundary: bytes
    unsubscribe: str
    """The List-Unsubscribe targets after the https one (the mailto, if any)."""
    key: bytes = field(default=b"", repr=False)
    """The project's secret, for the recipient digest (none for the built .eml)."""

    @classmethod
    def of(cls, item: RenderedIssue, key: bytes = b"") -> MessageTemplate:
        """Encode an issue's constant parts; ``key`` (the project's secret, passed in: the
        render side reads no files) is needed to render a recipient's copy."""
        issue = item.issue
        show = issue.show
        newsletter = show.newsletter
        assert newsletter is not None
        head = _mailbox("From", one_line(newsletter.sender_name), newsletter.sender_address)
        if newsletter.reply_to:
            head += _header("Reply-To", newsletter.reply_to)
        subject = _header("Subject", header_text(item.subject))
        date = _date_line(datetime.combine(issue.day, time(0), tzinfo=show.zone))
        html, text = item.personalise(None, None)
        digest = hashlib.sha256((html + "\x00" + text).encode()).hexdigest()[:32]
        boundary = f"famfeeds-{digest}".encode()
        tail = (
            _mailbox("List-Id", one_line(newsletter.sender_name), f"{show.slug}.{show.domain}")
            + b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            + b"MIME-Version: 1.0\r\n"
            + _header("Content-Language", show.language)
            + b'Content-Type: multipart/alternative;\r\n boundary="'
            + boundary
            + b'"\r\n'
        )
        mailto = ""
        if newsletter.unsubscribe_mailto:
            mailto = f",\r\n <mailto:{newsletter.unsubscribe_mailto}?subject=unsubscribe>"
        pieces = (_pieces(item.text, item.markers), _pieces(item.html, item.markers))
        for line in (head + subject + date + tail).split(CRLF):
            _check_line(line + CRLF, "From, Subject or List-Id")
        return cls(item, head, subject, date, tail, *pieces, boundary, mailto, key)

    def tag(self, recipient: str) -> str:
        """The recipient's keyed digest: the VERP tag of the envelope sender."""
        return recipient_digest(recipient, self.key, self.item.issue.show.slug)

    def render(
        self,
        to: str | None = None,
        name: str | None = None,
        token: str | None = None,
        *,
        date: datetime | None = None,
    ) -> bytes:
        """The complete message for one subscriber (or, without ``to``, the .eml).

        ``to`` is the normalised address (the Message-ID carries its keyed digest, so the
        template needs the key); ``date`` is the moment of sending (default: the issue's
        day, as in the built .eml). Raises HeaderTooLong when a header line would pass 998
        octets, ValueError for a recipient's copy of a template made without the key.
        """
        newsletter = self.item.issue.show.newsletter
        assert newsletter is not None
        personal = values(name, token)
        url = unsubscribe_url(newsletter, token)
        if to:
            to_line = _check_line(f"To: {header_address(one_line(to))}\r\n".encode(), "To")
        else:
            to_line = _header("To", PLACEHOLDER_TO)
        unsubscribe = f"List-Unsubscribe: <{url}>"
        _check_line(f"{unsubscribe},\r\n".encode(), "List-Unsubscribe")
        parts = [
            self.head,
            to_line,
            self.subject,
            self.date if date is None else _date_line(date.astimezone(self.item.issue.show.zone)),
            _check_line(
                f"Message-ID: {message_id(self.item, to or None, self.key)}\r\n".encode(),
                "Message-ID",
            ),
            f"{unsubscribe}{self.unsubscribe}\r\n".encode(),
            self.tail,
            CRLF,
        ]
        for subtype, pieces, greeting in (
            ("plain", self.text, personal.greeting_text),
            ("html", self.html, personal.greeting_html),
        ):
            parts.append(b"--" + self.boundary + CRLF)
            parts.append(
                f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            )
            filled = {
                NAME: _qp(greeting) + SOFT_BREAK if greeting else b"",
                TOKEN: _qp(personal.token) + SOFT_BREAK if personal.token else b"",
            }
            parts += [filled[p] if isinstance(p, str) else p for p in pieces]
            parts.append(CRLF)
        parts.append(b"--" + self.boundary + b"--" + CRLF)
        return b"".join(parts)
