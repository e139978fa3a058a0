"""The subscriber list: a CSV file with a header row (email; optionally name and token)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from famfeeds.errors import FamfeedsError, display_path


@dataclass(frozen=True)
class Subscriber:
    """One recipient: a normalised address, and the values that personalise their copy."""

    email: str
    name: str | None = None
    token: str | None = None
    line: int = 0

    @property
    def key(self) -> str:
        """The ledger's key: the address, case-folded."""
        return self.email.lower()


@dataclass
class SubscriberList:
    """The valid subscribers, and what was wrong with the rest."""

    subscribers: list[Subscriber] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    """One line per bad row: 'line N: address: why'."""
    duplicates: int = 0


def load_subscribers(path: Path) -> SubscriberList:
    """Read and validate a subscriber CSV; addresses are checked without DNS lookups."""
    from email_validator import EmailNotValidError, validate_email

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FamfeedsError(
            f"{display_path(path)}: cannot read the subscriber list ({exc})"
        ) from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(rows, [])]
    if "email" not in header:
        raise FamfeedsError(
            f"{display_path(path)}:1: the header row has no 'email' column "
            "(expected a CSV like: email,name,token)"
        )
    col: dict[str, int] = {
        name: header.index(name) for name in ("email", "name", "token") if name in header
    }
    out = SubscriberList()
    seen: set[str] = set()
    for row in rows:
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str | None:
            index = col.get(name)
            value = row[index].strip() if index is not None and index < len(row) else ""
            return value or None

        address = cell("email") or ""
        try:
            info = validate_email(address, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            out.invalid.append(f"line {line}: {address or '(empty)'}: {exc}")
            continue
        normalised = info.normalized
        if normalised.lower() in seen:
            out.duplicates += 1
            continue
        seen.add(normalised.lower())
        out.subscribers.append(Subscriber(normalised, cell("name"), cell("token"), line))
    return out
