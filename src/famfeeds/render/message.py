"""Email messages of newsletter issues: multipart/alternative, deterministic bytes.

A :class:`MessageTemplate` is built once per issue. It encodes the constant headers
(RFC 2047 where needed, by the standard library's SMTP policy) and the quoted-
printable bodies once, cut at the personalisation markers; a subscriber's message
is then those bytes joined with their own few values. No subscriber's message is
re-rendered, re-inlined or re-encoded as a whole, so personalising is cheap.

Each cut ends in a quoted-printable soft line break ("=" at the end of a line),
which decodes to nothing: every piece starts a fresh line, so pieces encoded
separately join into valid quoted-printable with lines of at most 76 characters.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, time
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from famfeeds.render.personal import Markers, RenderedIssue, one_line, values
from famfeeds.render.urls import unsubscribe_url

PLACEHOLDER_TO = "undisclosed-recipients:;"
"""The To of a built .eml: a valid empty group, which sending replaces per subscriber."""
CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
NAME, TOKEN = "name", "token"


def _header(name: str, value: str) -> bytes:
    """One header line, folded, non-ASCII text encoded as RFC 2047 words."""
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}\r\n".encode("ascii")  # what the policy would write
    return bytes(SMTP.fold_binary(name, SMTP.header_store_parse(name, value)[1]))


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (lines of at most 76 characters)."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", CRLF)


def _pieces(body: str, markers: Markers) -> list[bytes | str]:
    """The body cut at its markers: encoded bytes for the fixed parts, NAME or TOKEN for
    the places a subscriber's value goes."""
    cut = re.compile(f"({re.escape(markers.greeting)}|{re.escape(markers.token)})")
    out: list[bytes | str] = []
    for i, part in enumerate(cut.split(body)):
        if i % 2:
            out.append(NAME if part == markers.greeting else TOKEN)
        elif part:
            out.append(_qp(part) + SOFT_BREAK)
    return out


def message_id(item: RenderedIssue, recipient: str | None = None) -> str:
    """A Message-ID stable for the issue, or for the (issue, recipient) pair."""
    show = item.issue.show
    local = f"{item.issue.slug}.{show.slug}"
    if recipient is not None:
        digest = hashlib.sha256(recipient.strip().lower().encode("utf-8")).hexdigest()[:20]
        local += f".{digest}"
    return f"<{local}@{show.domain}>"


@dataclass(frozen=True)
class MessageTemplate:
    """An issue's message, encoded once, ready to be completed per subscriber."""

    item: RenderedIssue
    head: bytes
    """From, Reply-To: the headers before To."""
    middle: bytes
    """Subject and Date: between To and Message-ID."""
    tail: bytes
    """List-Id, MIME headers and the boundary: after List-Unsubscribe."""
    text: list[bytes | str]
    html: list[bytes | str]
    boundary: bytes
    unsubscribe: str
    """The List-Unsubscribe targets after the https one (the mailto, if any)."""

    @classmethod
    def of(cls, item: RenderedIssue) -> MessageTemplate:
        """Encode an issue's constant parts."""
        issue = item.issue
        show = issue.show
        newsletter = show.newsletter
        assert newsletter is not None
        head = _header(
            "From", formataddr((one_line(newsletter.sender_name), newsletter.sender_address))
        )
        if newsletter.reply_to:
            head += _header("Reply-To", newsletter.reply_to)
        middle = _header("Subject", one_line(item.subject)) + _header(
            "Date", format_datetime(datetime.combine(issue.day, time(0), tzinfo=show.zone))
        )
        html, text = item.personalise(None, None)
        digest = hashlib.sha256((html + "\x00" + text).encode()).hexdigest()[:32]
        boundary = f"famfeeds-{digest}".encode()
        tail = (
            _header("List-Id", f"{one_line(newsletter.sender_name)} <{show.slug}.{show.domain}>")
            + b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            + b"MIME-Version: 1.0\r\n"
            + b'Content-Type: multipart/alternative;\r\n boundary="'
            + boundary
            + b'"\r\n'
        )
        mailto = ""
        if newsletter.unsubscribe_mailto:
            mailto = f",\r\n <mailto:{newsletter.unsubscribe_mailto}?subject=unsubscribe>"
        pieces = (_pieces(item.text, item.markers), _pieces(item.html, item.markers))
        return cls(item, head, middle, tail, *pieces, boundary, mailto)

    def render(
        self, to: str | None = None, name: str | None = None, token: str | None = None
    ) -> bytes:
        """The complete message for one subscriber (or, without ``to``, the .eml)."""
        newsletter = self.item.issue.show.newsletter
        assert newsletter is not None
        personal = values(name, token)
        url = unsubscribe_url(newsletter, token)
        to_line = f"To: {one_line(to)}\r\n".encode() if to else _header("To", PLACEHOLDER_TO)
        parts = [
            self.head,
            to_line,
            self.middle,
            f"Message-ID: {message_id(self.item, to)}\r\n".encode(),
            f"List-Unsubscribe: <{url}>{self.unsubscribe}\r\n".encode(),
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
