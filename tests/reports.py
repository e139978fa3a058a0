"""Bounce and complaint reports as remote mail systems send them, for the bounce tests: an
RFC 3464 delivery report (DSN) and an RFC 5965 feedback report (ARF), each optionally
returning the headers of the message it is about."""

from __future__ import annotations

import secrets


def dsn_report(
    recipients: list[str],
    *,
    to: str,
    status: str = "5.1.1",
    action: str = "failed",
    original: str = "",
    serial: str = "",
) -> bytes:
    """A delivery report to ``to``: one block per recipient, then ``original`` (header
    lines of the returned message, e.g. its Message-ID) when given."""
    blocks = "".join(
        f"Final-Recipient: rfc822; {r}\nAction: {action}\nStatus: {status}\n\n" for r in recipients
    )
    returned = f"--b\nContent-Type: text/rfc822-headers\n\n{original}\n" if original else ""
    return f"""\
From: MAILER-DAEMON@mx.example.com
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{serial or secrets.token_hex(8)}@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

{blocks}{returned}--b--
""".encode()


def arf_report(recipient: str, *, to: str, original: str = "", serial: str = "") -> bytes:
    """An abuse complaint (feedback loop) to ``to`` about ``recipient``, with ``original``
    (header lines of the reported message) when given."""
    returned = f"--r\nContent-Type: text/rfc822-headers\n\n{original}\n" if original else ""
    return f"""\
From: fbl@isp.example.net
To: {to}
Subject: complaint
Message-ID: <fbl-{serial or secrets.token_hex(8)}@isp.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="r"

--r
Content-Type: text/plain

A complaint about a message from you.

--r
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: {recipient}

{returned}--r--
""".encode()
