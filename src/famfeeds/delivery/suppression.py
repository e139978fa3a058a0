"""Bounces and complaints that arrive by mail: from the bounce mailbox to suppressions.

``famfeeds bounces`` reads a mailbox (mbox, Maildir or IMAP, through
:mod:`famfeeds.delivery.bounces`, which classifies each message) and applies the rules:

- A **complaint** (an ARF feedback report) marks the address ``complained``; a **hard
  bounce** (a permanent failure that blames the address) marks it ``bounced``. Either stops
  every later issue to it, for CSV lists too (the store keeps rows for any address).
  Either is also noted against the issue it is about (as for a soft bounce, below), which
  ``famfeeds report`` counts and the next send's complaint guard reads.
- A **soft bounce** (mailbox full, a delay, a temporary refusal) is recorded against the
  issue it is about (the returned message's Message-ID names it; else the newest issue
  handed over to that address). When the newest ``soft_limit`` issues handed over to the
  address all soft-bounced, it is marked ``bounced``. An issue sent without a soft bounce
  breaks the run.
- Only a report about a message famfeeds sent changes anything. Anyone can mail the bounce
  address, so a DSN or ARF report is *matched* to an address only by evidence a stranger
  cannot make: the VERP tag of the envelope sender it came back to (``bounces+TAG@domain``),
  or the Message-ID of the returned or reported original, each carrying the recipient's
  digest keyed with the project's secret (:func:`famfeeds.render.message.recipient_digest`).
  A valid tag names the recipient (a remote server may rewrite the address it reports); a
  Message-ID vouches only for the address whose digest it carries. So a report naming 51
  recipients changes at most the one its evidence matches.
- Everything else (no tag or Message-ID, an old unkeyed one, one made with another key, a
  Message-ID of someone else's copy) is reported as *unmatched* and changes nothing, unless
  the operator passes ``accept_unmatched`` (``famfeeds bounces --accept-unmatched``): then
  the address the report names (or an old unkeyed tag's owner) is taken as it stands.
  Addresses famfeeds never mailed for this show (not in the ledger or the store) are
  reported and left alone either way. A message with unmatched reports is not marked read,
  so a later run with the option can still apply it.
- A message the classifier passes over in part (a DSN Status outside RFC 3463's classes,
  a flufl.bounce detector failing, any other failure to read it) is reported by its number
  in the mailbox, and the run goes on.
- Nothing half-applied: the whole mailbox is read and classified before anything changes; a
  mailbox that cannot be read changes nothing. Messages already read by an earlier run (by
  Message-ID, else a digest of the message) are skipped, so reading the same mailbox again
  counts nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

from famfeeds.build.project import SECRET_NAME
from famfeeds.delivery.csvlist import shown
from famfeeds.delivery.ledger import Ledger
from famfeeds.delivery.secret import project_secret
from famfeeds.delivery.store import Suppression
from famfeeds.errors import FamfeedsError
from famfeeds.render.message import recipient_digest

if TYPE_CHECKING:
    from famfeeds.delivery.bounces import BounceEvent
    from famfeeds.delivery.store import SubscriberStore
    from famfeeds.records.models import Newsletter

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
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    """Reports about subscribers that match no message famfeeds sent them: not applied."""
    ignored: list[str] = field(default_factory=list)
    """What the reader passed over, by message number (a bad Status, a detector failure)."""
    dry_run: bool = False
    accept_unmatched: bool = False

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
                "unmatched": len(self.unmatched),
                "ignored": len(self.ignored),
            },
            "complained": pairs(self.complained),
            "bounced": pairs(self.bounced),
            "soft": pairs(self.soft),
            "soft_suppressed": pairs(self.soft_suppressed),
            "unknown": pairs(self.unknown),
            "unmatched": pairs(self.unmatched),
            "ignored": list(self.ignored),
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
    notes: list[str]
    """What the classifier passed over, already labelled with the message number."""


def _legacy_digest(address: str) -> str:
    """The unkeyed digest of famfeeds before keyed tags: it names an address (for
    ``--accept-unmatched``) but proves nothing, since anyone can compute it."""
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()[:20]


def _read_one(number: int, message: EmailMessage, show: str, prefix: str) -> _Read:
    """Classify one message; a failure to read it is a note, never an exception."""
    from famfeeds.delivery.bounces import classify

    notes: list[str] = []
    try:
        events = classify(message, verp=prefix, notes=notes)
        mids = _original_message_ids(message)
    except Exception as exc:  # odd input the classifier did not foresee: skip, say so
        events, mids = [], []
        notes.append(f"could not be read as a bounce ({type(exc).__name__}); skipped")
    issues = [
        (m.group(1), m.group(3))
        for mid in mids
        if (m := _MESSAGE_ID.search(mid)) and m.group(2) == show
    ]
    mid = " ".join(str(message.get("Message-ID", "")).split())
    label = f"message {number}" + (f" {mid[:80]}" if mid else "")
    return _Read(message_key(message), events, issues, [f"{label}: {n}" for n in notes])


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
    secret: Path | None = None,
    accept_unmatched: bool = False,
) -> BounceReport:
    """Read every message, then apply what they report (see the module's rules).

    ``skipped`` is the list a reader's ``on_skip`` appends to (entries that are not mail).
    ``secret`` is the project's secret key file (default: ``secret.key`` beside the ledger),
    which keyed the tags and Message-IDs of the messages sent. ``accept_unmatched`` applies
    reports that match no message famfeeds sent. Raises FamfeedsError when the mailbox
    cannot be read; then nothing was changed.
    """
    from famfeeds.delivery.bounces import BounceSourceError, summarise

    prefix = (newsletter.bounce_address or newsletter.sender_address).rpartition("@")[0]
    prefix = prefix.partition("+")[0] or "bounces"
    report = BounceReport(dry_run=dry_run, accept_unmatched=accept_unmatched)
    read: list[_Read] = []
    try:
        for message in messages:
            report.messages += 1
            read.append(_read_one(report.messages, message, show, prefix))
    except BounceSourceError as exc:
        raise FamfeedsError(f"{exc}; nothing was changed") from None
    report.skipped_entries = [shown(s, 300) for s in skipped or []]
    key = project_secret(secret or ledger_path.parent / SECRET_NAME, create=False)

    ledger = Ledger(ledger_path, legacy_show=show)
    try:
        seen = ledger.seen_bounces(show, [r.key for r in read])
        fresh = [r for r in read if r.key not in seen]
        report.already_read = len(read) - len(fresh)
        report.not_bounces = sum(1 for r in fresh if not r.events)
        report.ignored = [shown(n, 300) for r in fresh for n in r.notes]
        known = set(ledger.recipients(show))
        tables: dict[str, dict[str, str]] = {}

        def owners(kind: str) -> dict[str, str]:
            """digest -> address for everyone mailed or in the store: keyed, or legacy."""
            if kind not in tables:
                everyone = known | {s.email for s in store.subscribers(show)}
                if kind == "keyed":
                    tables[kind] = (
                        {recipient_digest(a, key, show): a for a in everyone} if key else {}
                    )
                else:
                    tables[kind] = {_legacy_digest(a): a for a in everyone}
            return tables[kind]

        def vouches(address: str, digest: str) -> bool:
            return bool(key) and hmac.compare_digest(
                digest, recipient_digest(address, key or b"", show)
            )

        events: list[BounceEvent] = []
        unmatched: list[BounceEvent] = []
        held: set[str] = set()
        came_in: dict[str, set[str]] = {}
        """Messages with unmatched reports: not marked read, so --accept-unmatched can."""
        issue_of: dict[str, str] = {}
        for item in fresh:
            for event in item.events:
                address = event.address.lower()
                matched = False
                token = (event.token or "").lower()
                if token:  # our own tag beats what the report says (it may be rewritten)
                    owner = owners("keyed").get(token)
                    if owner is not None:
                        address, matched = owner.lower(), True
                    elif not address:
                        address = owners("legacy").get(token, "").lower()
                if not address:
                    tag = shown(event.token or "", 40)
                    report.unknown.append(
                        (f"(VERP tag {tag})", "no subscriber has it: not a tag famfeeds made")
                    )
                    continue
                for issue, digest in item.issues:
                    if vouches(address, digest):
                        matched = True
                        issue_of[address] = issue
                event = replace(event, address=address)
                if matched or accept_unmatched:
                    events.append(event)
                else:
                    unmatched.append(event)
                    came_in.setdefault(address, set()).add(item.key)
        strongest = summarise(events)
        for address, event in sorted(summarise(unmatched).items()):
            if address in strongest:
                continue
            if address not in known and store.status(show, address) is None:
                report.unknown.append((shown(address), "never mailed for this show; ignored"))
                continue
            why = shown(f"{event.reason} ({event.source})", 200)
            held |= came_in.get(address, set())
            report.unmatched.append(
                (
                    shown(address),
                    f"{why}: matches no message famfeeds sent it (no valid VERP tag or "
                    "Message-ID); changed nothing",
                )
            )
        soft_rows: list[tuple[str, str, str]] = []
        changes: list[Suppression] = []
        reports: list[tuple[str, str, str]] = []
        """(address, issue, kind) of hard bounces and complaints, for famfeeds report."""
        for address, event in sorted(strongest.items()):
            reason = shown(f"{event.reason} ({event.source})", 300)
            if address not in known and store.status(show, address) is None:
                report.unknown.append((shown(address), "never mailed for this show; ignored"))
                continue
            if event.kind in ("complaint", "hard"):
                sent = ledger.sent_issues(show, address)
                about = issue_of.get(address) or (sent[0] if sent else "")
                if about:
                    reports.append((address, about, event.kind))
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
            ledger.note_reports(show, reports)
            ledger.record_bounces(show, [r.key for r in fresh if r.key not in held], soft_rows)
    finally:
        ledger.close()
    return report
