"""A one-off subscriber list: a CSV file with a header row (email; optionally name, token and
timezone).

Rules:

- Addresses are checked with email-validator (no DNS lookups). Internationalised ones are
  accepted: a domain in Unicode or ``xn--`` form is one address; a local part that is not
  ASCII is accepted here and needs a server offering SMTPUTF8 when it is sent.
- Duplicates (ignoring case) collapse to the first row; each dropped row is noted with the
  line that won.
- A token is at most :data:`MAX_TOKEN` characters once URL-encoded: it goes into the
  List-Unsubscribe header, whose line must stay within 998 octets.
- A row that is not valid CSV (a cell over the csv module's 131,072-character limit, a NUL
  byte) or not UTF-8 stops the whole list with the line number.
- A ``timezone`` cell is an IANA zone name the tz database knows (checked with
  :func:`famfeeds.plan.sendtime.subscriber_zone`); empty means the show's zone.
- Every value echoed back (in notes and errors) goes through :func:`shown`, so a cell cannot
  send escape sequences to the terminal.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from famfeeds.errors import FamfeedsError, display_path
from famfeeds.plan.sendtime import InvalidZone, subscriber_zone

MAX_TOKEN = 256
"""The longest token, in characters after URL encoding."""
SHOWN_LIMIT = 120


def shown(text: str, limit: int = SHOWN_LIMIT) -> str:
    """User or server text made safe for a terminal: anything not printable (control and
    format characters, escape sequences) written as ``\\x1b``-style escapes, and long
    values cut with an ellipsis."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(out)


@dataclass(frozen=True)
class Subscriber:
    """One recipient: a normalised address, and the values that personalise their copy."""

    email: str
    name: str | None = None
    token: str | None = None
    line: int = 0
    """The CSV line, or 0 for a recipient from the subscriber store."""
    timezone: str | None = None
    """The subscriber's IANA time zone; None for the show's."""

    @property
    def key(self) -> str:
        """The ledger's key: the address, lower-cased."""
        return self.email.lower()


@dataclass
class SubscriberList:
    """The valid subscribers, and what was wrong with the rest."""

    subscribers: list[Subscriber] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    """One line per bad row: 'line N: address: why' (terminal-safe)."""
    duplicates: list[str] = field(default_factory=list)
    """One line per collapsed row: which line it repeated (terminal-safe)."""
    columns: tuple[str, ...] = ()


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FamfeedsError(
            f"{display_path(path)}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the "
            "list as UTF-8 CSV"
        ) from None


def load_subscribers(path: Path) -> SubscriberList:
    """Read and validate a subscriber CSV; addresses are checked without DNS lookups."""
    from email_validator import EmailNotValidError, validate_email

    where = display_path(path)
    try:
        text = _decode(path, path.read_bytes())
    except OSError as exc:
        raise FamfeedsError(
            f"{where}: cannot read the subscriber list ({exc.strerror or exc})"
        ) from None
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(rows, [])]
    except csv.Error as exc:
        raise FamfeedsError(f"{where}:1: the header row is not valid CSV ({exc})") from None
    if "email" not in header:
        raise FamfeedsError(
            f"{where}:1: the header row has no 'email' column "
            "(expected a CSV like: email,name,token)"
        )
    col: dict[str, int] = {
        name: header.index(name)
        for name in ("email", "name", "token", "timezone")
        if name in header
    }
    out = SubscriberList(columns=tuple(col))
    seen: dict[str, int] = {}
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise FamfeedsError(
                f"{where}:{rows.line_num}: not a valid CSV row ({exc}); nothing was sent. "
                "Is this a subscriber list? Fix or remove that row"
            ) from None
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str | None:
            index = col.get(name)
            value = row[index].strip() if index is not None and index < len(row) else ""
            return value or None

        address = cell("email") or ""
        try:
            info = validate_email(address, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as exc:
            why = shown(str(exc), 300)
            out.invalid.append(f"line {line}: {shown(address) or '(empty)'}: {why}")
            continue
        token = cell("token")
        if token is not None and len(quote(token, safe="")) > MAX_TOKEN:
            out.invalid.append(
                f"line {line}: {shown(address)}: the token is {len(quote(token, safe='')):,} "
                f"characters long once URL-encoded; famfeeds takes at most {MAX_TOKEN} (it goes "
                "into the List-Unsubscribe header, whose line must stay within 998 octets)"
            )
            continue
        zone = cell("timezone")
        if zone is not None:
            try:
                zone = subscriber_zone(zone)
            except InvalidZone as exc:
                out.invalid.append(f"line {line}: {shown(address)}: {shown(exc.message, 300)}")
                continue
        normalised = info.normalized
        key = normalised.lower()
        if key in seen:
            out.duplicates.append(
                f"line {line}: {shown(address)} repeats line {seen[key]}, which is used"
            )
            continue
        seen[key] = line
        out.subscribers.append(Subscriber(normalised, cell("name"), token, line, zone))
    return out
