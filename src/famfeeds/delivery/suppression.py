"""Bounces and complaints that arrive by mail: from the bounce mailbox to suppressions.

``famfeeds bounces`` reads a mailbox (mbox, Maildir or IMAP, through
:mod:`famfeeds.delivery.bounces`, which classifies each message) and applies the rules:

- A **complaint** (an ARF feedback report) marks the address ``complained``; a **hard
  bounce** (a permanent failure that blames the address) marks it ``bounced``. Either stops
  every later issue to it, for CSV lists too (the store keeps rows for any address).
- A **soft bounce** (mailbox full, a delay, a temporary refusal) is recorded against the
  issue it is about (the returned message's Message-ID names it; else the newest issue
  handed over to that address). When the newest ``soft_limit`` issues handed over to the
  address all soft-bounced, it is marked ``bounced``. An issue sent without a soft bounce
  breaks the run.
- Whom a report is about: the VERP tag of the envelope sender it came back to
  (``bounces+TAG@domain``: the recipient's digest, see
  :func:`famfeeds.render.message.recipient_digest`) when it names a subscriber, since a
  remote server may rewrite the address it reports; else the address the report names. Addresses
  famfeeds never mailed for this show (not in the ledger or the store) are reported and left
  alone.
- Nothing half-applied: the whole mailbox is read and classified before anything changes; a
  mailbox that cannot be read changes nothing. Messages already read by an earlier run (by
  Message-ID, else a digest of the message) are skipped, so reading the same mailbox again
  counts nothing twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

from famfeeds.delivery.ledger import Ledger
from famfeeds.delivery.store import Suppression
from famfeeds.delivery.subscribers import shown
from famfeeds.errors import FamfeedsError
from famfeeds.render.message import recipient_digest

if TYPE_CHECKING:
    from famfeeds.delivery.bounces import BounceEvent
    from famfeeds.delivery.store import SubscriberStore
    from famfeeds.models import Newsletter

_MESSAGE_ID = re.compile(r"<(\d{4}-\d{2}-\d{2})\.([a-z0-9-]+)\.([0-9a-f]{20})@")


@dataclass
class BounceReport:
    """What one run over a bounce mailbox found and did."""

    messages: int = 0
    already_read: int = 0
    not_bounces: int = 0
    skipped_entries: list[str] = field(default_factory=list)
    """Mailbox entries that are not mail (terminal-safe notes)."""
    complained: list[tuple[str, str]] = field(default_factory=list)
    bounced: list[tuple[str, str]] = field(default_factory=list)
    soft: list[tuple[str, str]] = field(default_factory=list)
    """Soft bounces recorded: (address, 'reason; N of LIMIT issues in a row')."""
    soft_suppressed: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    """Reports about addresses this show never mailed (or a VERP tag nobody has)."""
    dry_run: bool = False

    def as_json(self) -> dict[str, object]:
        def pairs(items: list[tuple[str, str]]) -> list[dict[str, str]]:
            return [{"address": a, "reason": r} for a, r in items]

        return {
            "dry_run": self.dry_run,
            "counts": {
                "messages": self.messages,
                "already_read": self.already_read,
                "not_bounces": self.not_bounces,
                "skipped_entries": len(self.skipped_entries),
                "complained": len(self.complained),
                "bounced": len(self.bounced),
                "soft": len(self.soft),
                "soft_suppressed": len(self.soft_suppressed),
                "unknown": len(self.unknown),
            },
            "complained": pairs(self.complained),
            "bounced": pairs(self.bounced),
            "soft": pairs(self.soft),
            "soft_suppressed": pairs(self.soft_suppressed),
            "unknown": pairs(self.unknown),
            "skipped_entries": list(self.skipped_entries),
        }


def message_key(message: Message) -> str:
    """A bounce message's identity for "already read": its Message-ID, else a digest."""
    mid = message.get("Message-ID")
    if mid and str(mid).strip():
        return "mid:" + " ".join(str(mid).split())[:300]
    try:
        data = message.as_bytes(policy=default_policy)
    except Exception:  # a message the serialiser cannot write back: hash its text instead
        data = str(message.items()).encode("utf-8", "replace") + str(message.get_payload()).encode(
            "utf-8", "replace"
        )
    return "sha:" + hashlib.sha256(data).hexdigest()


def _original_message_ids(message: Message) -> list[str]:
    """Message-IDs of returned or reported originals attached to a report."""
    found: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        original: Message | None = None
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                original = payload[0]
        elif kind in ("text/rfc822-headers", "message/rfc822-headers"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                original = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        if original is not None and original.get("Message-ID"):
            found.append(str(original.get("Message-ID")))
    return found


@dataclass(frozen=True)
class _Read:
    key: str
    events: list[BounceEvent]
    issues: list[tuple[str, str]]
    """(issue slug, recipient digest) from the attached originals' Message-IDs."""


def process_bounces(
    messages: Iterable[EmailMessage],
    *,
    show: str,
    newsletter: Newsletter,
    ledger_path: Path,
    store: SubscriberStore,
    soft_limit: int,
    dry_run: bool = False,
    skipped: list[str] | None = None,
) -> BounceReport:
    """Read every message, then apply what they report (see the module's rules).

    ``skipped`` is the list a reader's ``on_skip`` appends to (entries that are not mail).
    Raises FamfeedsError when the mailbox cannot be read; then nothing was changed.
    """
    from famfeeds.delivery.bounces import BounceSourceError, classify, summarise

    prefix = (newsletter.bounce_address or newsletter.sender_address).rpartition("@")[0]
    prefix = prefix.partition("+")[0] or "bounces"
    report = BounceReport(dry_run=dry_run)
    read: list[_Read] = []
    try:
        for message in messages:
            report.messages += 1
            issues = [
                (m.group(1), m.group(3))
                for mid in _original_message_ids(message)
                if (m := _MESSAGE_ID.search(mid)) and m.group(2) == show
            ]
            read.append(_Read(message_key(message), classify(message, verp=prefix), issues))
    except BounceSourceError as exc:
        raise FamfeedsError(f"{exc}; nothing was changed") from None
    report.skipped_entries = [shown(s, 300) for s in skipped or []]

    ledger = Ledger(ledger_path, legacy_show=show)
    try:
        seen = ledger.seen_bounces(show, [r.key for r in read])
        fresh = [r for r in read if r.key not in seen]
        report.already_read = len(read) - len(fresh)
        report.not_bounces = sum(1 for r in fresh if not r.events)
        known = set(ledger.recipients(show))
        by_digest: dict[str, str] | None = None

        def digests() -> dict[str, str]:
            table = {recipient_digest(a): a for a in known}
            table.update({recipient_digest(s.email): s.email for s in store.subscribers(show)})
            return table

        events: list[BounceEvent] = []
        issue_of: dict[str, str] = {}
        for item in fresh:
            for event in item.events:
                address = event.address
                if event.token:  # our own tag beats what the report says (it may be rewritten)
                    by_digest = by_digest or digests()
                    address = by_digest.get(event.token.lower(), "") or address
                if not address:
                    tag = shown(event.token or "", 40)
                    report.unknown.append((f"(VERP tag {tag})", "no subscriber has it"))
                    continue
                event = replace(event, address=address.lower())
                events.append(event)
                for issue, digest in item.issues:
                    if digest == recipient_digest(event.address):
                        issue_of[event.address] = issue
        strongest = summarise(events)
        soft_rows: list[tuple[str, str, str]] = []
        changes: list[Suppression] = []
        for address, event in sorted(strongest.items()):
            reason = shown(f"{event.reason} ({event.source})", 300)
            if address not in known and store.status(show, address) is None:
                report.unknown.append((shown(address), "never mailed for this show; ignored"))
                continue
            if event.kind == "complaint":
                report.complained.append((shown(address), reason))
                changes.append(Suppression(address, "complained", "complaint", reason))
            elif event.kind == "hard":
                report.bounced.append((shown(address), reason))
                changes.append(Suppression(address, "bounced", "bounce", reason))
            else:
                sent = ledger.sent_issues(show, address)
                issue = issue_of.get(address) or (sent[0] if sent else "")
                if not issue:
                    report.unknown.append((shown(address), "no issue was handed over to it"))
                    continue
                soft_rows.append((address, issue, event.reason))
                bounced = ledger.soft_bounced(show, address) | {issue}
                streak = 0
                for handed in sent:
                    if handed not in bounced:
                        break
                    streak += 1
                note = f"{reason}; {streak} of {soft_limit} issue(s) in a row"
                report.soft.append((shown(address), note))
                if streak >= soft_limit:
                    why = f"soft bounces for {streak} issues in a row (last: {event.reason})"
                    report.soft_suppressed.append((shown(address), shown(why, 300)))
                    changes.append(Suppression(address, "bounced", "bounce", why))
        if not dry_run:
            # One store transaction for every suppression (an address the store cannot
            # hold, such as a non-ASCII local part, is left out), then one ledger
            # transaction marking the messages read. Killed between the two, the next run
            # reads the messages again and finds the same suppressions already there.
            store.suppress_many(show, changes)
            ledger.record_bounces(show, [r.key for r in fresh], soft_rows)
    finally:
        ledger.close()
    return report
