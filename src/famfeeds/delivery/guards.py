"""Guards that keep a send from ruining the sender's reputation.

Mailbox providers judge a sender by two figures, and famfeeds watches both:

- **Complaints** (Gmail and Yahoo require under 0.3% of delivered mail, and advise under
  0.1%): before a send connects to the relay, :func:`complaint_check` reads the issue that
  went out last (see :func:`famfeeds.delivery.report.previous_issue`). Complaints about it
  over ``complaint_rate_stop`` of its deliveries stop the send, with the figure, the issue
  and what to do; ``--force`` sends anyway and says so. Over ``complaint_rate_warn`` the
  send goes on with a warning. Complaints are ARF reports read by ``famfeeds bounces`` and
  any complaint the subscriber store recorded otherwise (see :mod:`famfeeds.delivery.report`).
- **Hard bounces** (Amazon SES reviews an account at 5%): :class:`BounceGuard` counts, within
  one run, the addresses the relay answered for good and those it refused in a way that
  blames the address. Once at least :data:`BOUNCE_SAMPLE` addresses were answered and the
  hard bounces are over ``bounce_rate_stop`` of them, the run stops: whoever was not tried
  yet stays untouched in the ledger for a later run (neither failed nor suppressed), and
  the command exits 1. The relay-wide breaker of the engine (refusals before any success)
  is separate and stays.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from famfeeds.delivery.report import percent, previous_issue, read_season

BOUNCE_SAMPLE = 20
"""Addresses a run must have had answered before its hard-bounce rate can stop it: one
bounce among the first three is bad luck, not a bad list."""


@dataclass(frozen=True)
class Verdict:
    """What the complaint guard says about the next send."""

    level: Literal["ok", "warn", "stop"]
    message: str


def complaint_check(
    ledger: Path,
    store: Path,
    show: str,
    sending: str,
    *,
    stop_rate: float,
    warn_rate: float,
    now: datetime,
) -> Verdict:
    """The complaint rate of the issue that went out last, against the two settings."""
    season = read_season(ledger, store, show, now=now)
    last = previous_issue(season, sending)
    if last is None or not last.complaints:
        return Verdict("ok", "")
    rate = last.complaint_rate
    figure = (
        f"{last.complaints} complaint(s) about the issue {last.issue} for {last.sent} "
        f"message(s) delivered ({percent(rate)})"
    )
    if rate > stop_rate:
        return Verdict(
            "stop",
            f"{figure} is over complaint_rate_stop ({percent(stop_rate)}), the rate above "
            "which Gmail and Yahoo start refusing a sender's mail. Nothing was sent. Before "
            "the next issue, look at why readers mark it as spam (do they remember signing "
            "up? is the unsubscribe link easy to find?), see famfeeds report; then send "
            "again with --force to send anyway",
        )
    if rate > warn_rate:
        return Verdict(
            "warn",
            f"Warning: {figure} is over complaint_rate_warn ({percent(warn_rate)}); over "
            f"{percent(stop_rate)} the next send stops (see famfeeds report).",
        )
    return Verdict("ok", "")


class BounceGuard:
    """One run's hard-bounce rate (thread-safe): :meth:`answered` for each address the
    relay answered for good, :meth:`hard` for each refusal that blames the address; each
    returns why the run must stop, or None."""

    def __init__(self, stop_rate: float, sample: int = BOUNCE_SAMPLE) -> None:
        self.stop_rate = stop_rate
        self.sample = sample
        self.lock = threading.Lock()
        self.tried = 0
        self.bounced = 0

    def answered(self) -> str | None:
        with self.lock:
            self.tried += 1
            return self._verdict()

    def hard(self) -> str | None:
        with self.lock:
            self.bounced += 1
            return self._verdict()

    def _verdict(self) -> str | None:
        tried = max(self.tried, self.bounced)
        if tried < self.sample or self.bounced <= self.stop_rate * tried:
            return None
        return (
            f"{self.bounced} of the {tried} addresses tried in this run were refused as "
            f"unknown or disabled ({percent(self.bounced / tried)}), over bounce_rate_stop "
            f"({percent(self.stop_rate)}); providers review a sender at 5%. The subscribers "
            "not yet tried are kept for a later run (not failed, not suppressed): check where "
            "the list came from and remove stale addresses, then run the same command again"
        )
