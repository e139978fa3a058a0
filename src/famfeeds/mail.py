"""Email messages of newsletter issues: multipart/alternative, deterministic bytes."""

from __future__ import annotations

import hashlib
from datetime import datetime, time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from famfeeds.newsletter import RenderedIssue

PLACEHOLDER_TO = "undisclosed-recipients:;"
"""The To of a built .eml: a valid empty group, which sending replaces per subscriber."""


def _one_line(value: str) -> str:
    """Header text on one line: CR, LF and other whitespace runs become one space."""
    return " ".join(value.split())


def message_id(item: RenderedIssue, recipient: str | None = None) -> str:
    """A Message-ID stable for the issue, or for the (issue, recipient) pair."""
    show = item.issue.show
    local = f"{item.issue.slug}.{show.slug}"
    if recipient is not None:
        digest = hashlib.sha256(recipient.strip().lower().encode("utf-8")).hexdigest()[:20]
        local += f".{digest}"
    return f"<{local}@{show.domain}>"


def issue_message(
    item: RenderedIssue, html: str, text: str, to: str | None = None, token: str | None = None
) -> EmailMessage:
    """The message of one issue, personalised already (``html`` and ``text``).

    Without ``to`` it is the ready-to-send .eml, with a placeholder recipient.
    """
    from famfeeds.newsletter import unsubscribe_url

    issue = item.issue
    show = issue.show
    newsletter = show.newsletter
    assert newsletter is not None
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((_one_line(newsletter.sender_name), newsletter.sender_address))
    if newsletter.reply_to:
        msg["Reply-To"] = newsletter.reply_to
    msg["To"] = to or PLACEHOLDER_TO
    msg["Subject"] = _one_line(item.subject)
    msg["Date"] = format_datetime(datetime.combine(issue.day, time(0), tzinfo=show.zone))
    msg["Message-ID"] = message_id(item, to)
    msg["List-Id"] = f"{_one_line(newsletter.sender_name)} <{show.slug}.{show.domain}>"
    targets = [f"<{unsubscribe_url(newsletter, token)}>"]
    if newsletter.unsubscribe_mailto:
        targets.append(f"<mailto:{newsletter.unsubscribe_mailto}?subject=unsubscribe>")
    msg["List-Unsubscribe"] = ", ".join(targets)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # belongs to the message, not to each part
    for part in msg.iter_parts():
        del part["MIME-Version"]  # belongs to the message, not to each part
    digest = hashlib.sha256((html + "\x00" + text).encode("utf-8")).hexdigest()[:32]
    msg.set_boundary(f"famfeeds-{digest}")
    return msg
