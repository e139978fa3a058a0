"""The send command's flow: find the issue, gather the recipients, ask, send, and report.

No click here: the flow takes callables to confirm and to show progress, and returns a
:class:`Report` that the command prints (or writes as JSON) and turns into an exit code.

Rules:

- **Which issue:** :func:`famfeeds.plan.issues.find_issue` at the moment of sending (the clock,
  or ``now`` for a rehearsal): ``latest`` is the newest issue whose episode is out; a date
  before its release moment, or an issue older than ``max_age``, is refused unless
  ``force`` (which is then reported). ``latest`` with nothing new (the newest issue is
  older than ``max_age``, or none is out) is not an error: the report says so and the exit
  code is 0, so an hourly cron job stays quiet between issues.
- **Who:** without a CSV, the subscriber store's confirmed subscribers, each with the store's
  token. With a CSV, every address is first checked against the store: unsubscribed,
  bounced, complained and forgotten ones are skipped and counted. Each message carries the
  store's token (the address is added to the store as ``pending``, source ``list``, if it
  is new), except that a CSV ``token`` column is used when show.toml has no
  ``service_url`` (your own system answers ``unsubscribe_url``). The store is asked again
  just before each message.
- **Suppression:** a permanent refusal that blames the address (see
  :func:`famfeeds.delivery.engine.blames_address`) marks it ``bounced`` in the store, which
  every later send (CSV lists included) skips; ``--retry-failed`` does not override it.
  Only once the server has accepted someone in the same run (see the engine's breakers).
  Each real send has a run id (:func:`new_run_id`), recorded with every bounce it marks,
  so ``famfeeds subscribers clear-bounce --run RUN_ID`` undoes one run's suppressions in
  one command; the report says so whenever the run marked anyone.
- **When:** each recipient is due at the moment :mod:`famfeeds.plan.sendtime` gives for the
  issue's release moment, the subscriber's zone (the show's when none) and show.toml's
  ``deliver`` and ``quiet_hours``. A run sends only to those due at its clock; the others
  are counted as not yet due (with the earliest next moment) and stay out of the ledger,
  for a later run. ``ignore_delivery_time`` sends to everyone at once.
- **Reputation:** before a real send asks or connects, complaints about the issue that went
  out last over ``complaint_rate_stop`` of its deliveries stop it unless ``force`` (which is
  then reported); over ``complaint_rate_warn`` it warns. During the run, hard bounces over
  ``bounce_rate_stop`` of the addresses answered stop it (see :mod:`famfeeds.delivery.guards`).
- **One run per issue:** a real send holds :func:`famfeeds.delivery.ledger.send_lock` from
  planning to the last message.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from famfeeds.build.project import Project
from famfeeds.delivery.csvlist import Subscriber, load_subscribers, shown
from famfeeds.delivery.engine import (
    Outcome,
    SendOptions,
    SendPlan,
    plan_sends,
    send_issue,
    send_one,
    utc_now,
)
from famfeeds.delivery.ledger import Ledger, send_lock
from famfeeds.delivery.smtp import PASSWORD_ENV, DeliveryError, SmtpTarget
from famfeeds.errors import FamfeedsError, display_path

if TYPE_CHECKING:
    from famfeeds.delivery.dkim import Signer
    from famfeeds.delivery.store import SubscriberStore
    from famfeeds.plan.issues import Issue, Plan
    from famfeeds.plan.sendtime import DeliveryRule
    from famfeeds.records.models import Newsletter
    from famfeeds.render.message import MessageTemplate

EXIT_OK = 0
"""Everyone due was sent the issue (or nothing was due)."""
EXIT_FAILED = 1
"""Someone failed for good, is still deferred, or was not tried: run again later, or look
at the list. Errors (bad options, a locked ledger, another send running) exit 1 too."""
EXIT_UNCERTAIN = 3
"""Someone's delivery was cut off after the message was handed over (see ledger.py); wins
over 1, since only a person can decide (``--resend-uncertain``, or leave them be)."""
DEFAULT_MAX_AGE = timedelta(days=7)
STORE_SOURCE = "the subscriber store"
SIZE_SAMPLE = 1000
"""A dry run renders about this many messages, evenly spread over the list, and estimates
the total size from them (every message, for a list of up to twice as many)."""
JSON_REASONS = {
    "pending": "not_confirmed",
    "claimed by another famfeeds run": "claimed_by_another_run",
}
"""The keys of ``--json``'s ``left_out`` for reasons that are not one word."""
SAFE_INPUT = 300
"""Octets of an address, or of an unsubscribe URL with its token, that keep every header
line far within 998 octets; a dry run renders a message with longer ones in full, as the
send would, to learn whether it would be refused."""


@dataclass
class Report:
    """What a send (or a dry run) did, for the command to print."""

    label: str
    plan: SendPlan
    outcome: Outcome = field(default_factory=Outcome)
    notes: list[str] = field(default_factory=list)
    """Things the operator should know before the counts (skipped rows, overrides)."""
    dry_run: bool = False
    size: int = 0
    """Bytes of the messages a dry run would send (estimated when ``size_estimated``)."""
    size_estimated: bool = False
    issue: str = ""
    subject: str = ""
    source: str = ""
    """Where the recipients came from: the store, or the CSV's path."""
    nothing_due: str = ""
    """Why ``latest`` had nothing to send at this moment (then nothing was planned)."""
    run_id: str = ""
    """The real send's run id ('' for a dry run or nothing sent)."""
    undo: str = ""
    """The command that undoes this run's suppressions ('' when it marked nobody)."""
    not_yet_due: int = 0
    """Recipients whose local delivery moment is after this run's clock (left for later)."""
    audience: int = 0
    """The issue's whole audience: due now, not yet due, and already in its ledger (the
    pre-send domain check compares this, not one group, with doctor_threshold)."""
    next_due: datetime | None = None
    """The earliest of those moments (UTC), or None."""
    waiting: str = ""
    """What the command says of them ('' when nobody waits); not a note, so a ``--quiet``
    run that only waits stays silent."""

    @property
    def left_out(self) -> dict[str, int]:
        """Every address this run did not mail because of the store, counted by reason:
        a CSV's suppressed rows, the store's addresses that are not confirmed subscribers
        (``pending``, a suppression, ``forgotten``), and those skipped during the run (an
        unsubscribe or a bounce meanwhile, a claim by another run). The ledger's reasons
        (already sent, uncertain, failed before) are counted apart."""
        counts: dict[str, int] = {}
        for reason, addresses in self.plan.suppressed.items():
            counts[reason] = counts.get(reason, 0) + len(addresses)
        for reason, count in self.plan.unlisted.items():
            counts[reason] = counts.get(reason, 0) + count
        for _, reason in self.outcome.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def uncertain(self) -> list[str]:
        """Everyone left uncertain: by an earlier run, or by this one."""
        return self.plan.uncertain + [a for a, _ in self.outcome.uncertain]

    @property
    def exit_code(self) -> int:
        """3 when anyone is uncertain; else 1 when anyone failed, is deferred or was not
        tried; else 0 (everyone sent, or nothing due)."""
        if self.uncertain:
            return EXIT_UNCERTAIN
        out = self.outcome
        if out.failed or out.deferred or out.held or out.untried or self.plan.failed_before:
            return EXIT_FAILED
        return EXIT_OK

    def as_json(self) -> dict[str, Any]:
        """The outcome for scripts: counts, and the addresses in each state."""
        plan, out = self.plan, self.outcome

        def pairs(items: list[tuple[str, str]]) -> list[dict[str, str]]:
            return [{"address": a, "reason": r} for a, r in items]

        earlier = [(a, "cut off after hand-over in an earlier run") for a in plan.uncertain]
        left_out = {JSON_REASONS.get(k, k): n for k, n in self.left_out.items()}
        unlisted = sum(n for k, n in plan.unlisted.items() if k != "pending")
        return {
            "issue": self.issue or None,
            "subject": self.subject or None,
            "recipients_from": self.source or None,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "nothing_due": self.nothing_due or None,
            "counts": {
                "would_send": len(plan.todo) if self.dry_run else 0,
                "would_send_bytes": self.size if self.dry_run else 0,
                "sent": len(out.sent),
                "deferred": len(out.deferred),
                "failed": len(out.failed),
                "bounced": len(out.bounced),
                "held": len(out.held),
                "uncertain": len(self.uncertain),
                "skipped": len(out.skipped),
                "untried": len(out.untried),
                "already_sent": plan.already_sent,
                "failed_before": len(plan.failed_before),
                "suppressed": plan.suppressed_count + unlisted,
                "not_confirmed": plan.unlisted.get("pending", 0),
                "left_out": sum(left_out.values()),
                "not_yet_due": self.not_yet_due,
            },
            "next_due": None if self.next_due is None else f"{self.next_due:%Y-%m-%dT%H:%M:%SZ}",
            "left_out": left_out,
            "sent": list(out.sent),
            "deferred": pairs(out.deferred),
            "failed": pairs(out.failed),
            "bounced": pairs(out.bounced),
            "held": pairs(out.held),
            "uncertain": pairs(earlier + out.uncertain),
            "skipped": pairs(out.skipped),
            "untried": list(out.untried),
            "failed_before": list(plan.failed_before),
            "suppressed": {k: list(v) for k, v in sorted(plan.suppressed.items())},
            "stopped": out.stopped or None,
            "run_id": self.run_id or None,
            "undo": self.undo or None,
            "notes": list(self.notes),
            "waiting": self.waiting or None,
        }


class _StoreGate:
    """The store's say during a send, one connection per worker thread."""

    def __init__(self, campaign: Campaign, run_id: str) -> None:
        self.show = campaign.show_slug
        self.run_id = run_id
        store = campaign.open_store(create=True)
        assert store is not None
        self.store: SubscriberStore = store
        self.csv_tokens = campaign.csv_tokens and campaign.subscribers_file is not None
        self.from_csv = campaign.subscribers_file is not None

    def admit(self, sub: Subscriber) -> Subscriber | str:
        from famfeeds.delivery.store import InvalidAddress

        reason = self.store.suppressed(self.show, sub.email)
        if reason is not None:
            return reason
        if not self.from_csv or (self.csv_tokens and sub.token):
            return sub
        try:
            found = self.store.ensure(self.show, sub.email, sub.name, source="list")
        except InvalidAddress as exc:
            if sub.token:
                return sub
            raise DeliveryError(
                0,
                f"the subscriber store cannot hold this address ({exc.message}), so its "
                "message would have no working unsubscribe link",
                permanent=True,
            ) from None
        if found is None:
            return self.store.suppressed(self.show, sub.email) or "suppressed"
        return replace(sub, token=found.token)

    def suppressed(self, sub: Subscriber) -> str | None:
        return self.store.suppressed(self.show, sub.email)

    def bounced(self, sub: Subscriber, error: DeliveryError) -> None:
        """Suppress the address, tagged with the run id (see :func:`run_tag`)."""
        from famfeeds.delivery.store import InvalidAddress

        # An address the store cannot hold (a non-ASCII local part) cannot be marked.
        with contextlib.suppress(InvalidAddress):
            reason = f"{run_tag(self.run_id)}{error}"[:300]
            self.store.suppress(self.show, sub.email, "bounced", "smtp-5xx", reason)

    def close(self) -> None:
        self.store.close()


def new_run_id() -> str:
    """A real send's id: its start in UTC and 24 random bits, e.g. 20261207T040050Z-a1b2c3."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_tag(run_id: str) -> str:
    """How a bounce's detail in the store begins, naming the send run that marked it."""
    return f"run {run_id}: "


@dataclass
class Campaign:
    """One issue, one list of recipients, one SMTP server."""

    content: Path
    templates: Path | None
    issue_name: str
    subscribers_file: Path | None
    smtp_url: str | None
    now: datetime | None = None
    """A fixed moment of sending (a rehearsal or a test); None for the clock."""
    max_age: timedelta = DEFAULT_MAX_AGE
    force: bool = False
    ignore_delivery_time: bool = False
    """Send to every recipient now, whatever ``deliver`` and ``quiet_hours`` say."""

    def clock(self) -> datetime:
        """The moment of sending: ``now`` if given (without an offset: in the show's zone),
        else the clock (UTC). SOURCE_DATE_EPOCH plays no part: it is for builds."""
        if self.now is None:
            return utc_now()
        if self.now.tzinfo is None:
            return self.now.replace(tzinfo=self.planned.show.zone)
        return self.now

    @cached_property
    def project(self) -> Project:
        return Project.of(self.content)

    @cached_property
    def planned(self) -> Plan:
        from famfeeds.build.pipeline import check

        planned = check(self.content)
        if planned.show.newsletter is None:
            raise FamfeedsError("show.toml has no [newsletter] table: nothing to send")
        return planned

    @cached_property
    def moment(self) -> datetime:
        """The moment the issue is chosen at (the start of this run)."""
        return self.clock()

    @cached_property
    def issue(self) -> Issue:
        """The issue to send (IssueNotDue when it may not be sent now)."""
        from famfeeds.plan.issues import find_issue

        return find_issue(
            self.planned.issues,
            self.issue_name,
            self.moment,
            max_age=self.max_age,
            force=self.force,
            override="--force",
        )

    def overrides(self) -> list[str]:
        """What ``force`` overrode, to be said out loud."""
        from famfeeds.plan.issues import issue_blockers

        if not self.force:
            return []
        return [
            f"--force: sending although {why}"
            for why in issue_blockers(self.issue, self.moment, self.max_age)
        ]

    @cached_property
    def template(self) -> MessageTemplate:
        """The issue, rendered and inlined once, with the project's secret for the keyed
        Message-ID and VERP tag of each copy (created on first use)."""
        from famfeeds.build.pipeline import issue_letter
        from famfeeds.delivery.secret import project_secret
        from famfeeds.render.message import MessageTemplate

        letter = issue_letter(self.planned, self.issue, self.templates)
        key = project_secret(self.project.secret)  # created when missing
        assert key is not None
        return MessageTemplate.of(letter.item, key)

    @property
    def show_slug(self) -> str:
        return self.planned.show.slug

    @property
    def label(self) -> str:
        item = self.template.item
        return f"issue {item.issue.slug} “{item.subject}”"

    @cached_property
    def target(self) -> SmtpTarget:
        newsletter = self.planned.show.newsletter
        assert newsletter is not None
        url = self.smtp_url or newsletter.smtp_url
        if not url:
            raise FamfeedsError("no SMTP server: pass --smtp URL or set smtp_url in show.toml")
        return SmtpTarget.parse(url)

    @property
    def password(self) -> str | None:
        password = os.environ.get(PASSWORD_ENV) or None
        if self.target.user and password is None:
            raise FamfeedsError(f"{self.target} needs a password: set {PASSWORD_ENV}")
        return password

    @property
    def csv_tokens(self) -> bool:
        """True when a CSV's own tokens go into its messages: show.toml has no service_url,
        so the operator's own system answers unsubscribe_url."""
        newsletter = self.planned.show.newsletter
        return newsletter is not None and newsletter.service_url is None

    def open_store(self, create: bool) -> SubscriberStore | None:
        """The subscriber store, or None when it does not exist and ``create`` is False."""
        from famfeeds.delivery.store import SubscriberStore

        if not create and not self.project.store.exists():
            return None
        return SubscriberStore.open(self.project.store, secret=self.project.secret)

    def nothing_due(self) -> Report | None:
        """A report for ``latest`` with nothing to send now; None when there is an issue."""
        from famfeeds.plan.issues import IssueNotDue

        try:
            self.issue  # noqa: B018 (finds the issue, or says why not)
        except IssueNotDue as exc:
            if self.issue_name != "latest":
                raise
            return Report("latest issue", SendPlan([], 0, [], []), nothing_due=exc.message)
        return None

    # -- recipients --------------------------------------------------------------------------

    def recipients(
        self, store: SubscriberStore | None, skip_invalid: bool, notes: list[str]
    ) -> list[Subscriber]:
        """The store's confirmed subscribers, or the CSV's valid rows (refusing a list with
        bad rows unless told to skip them)."""
        if self.subscribers_file is None:
            if store is None:
                raise FamfeedsError(
                    f"no subscribers: {display_path(self.project.store)} does not exist. Add "
                    "subscribers with famfeeds subscribers import/add (or the sign-up form), "
                    "or pass --subscribers FILE.csv for a one-off list"
                )
            confirmed = [
                Subscriber(r.email, r.name, r.token, timezone=r.timezone)
                for r in store.recipients(self.show_slug)
            ]
            if not confirmed:
                notes.append(
                    f"{display_path(self.project.store)} has no confirmed subscribers: nobody to "
                    "send to (see famfeeds subscribers)."
                )
            return confirmed
        found = load_subscribers(self.subscribers_file)
        where = display_path(self.subscribers_file)
        if found.invalid:
            listing = "\n".join(f"  {where} {row}" for row in found.invalid)
            if not skip_invalid:
                raise FamfeedsError(
                    f"{len(found.invalid)} invalid row(s) in the subscriber list; nothing "
                    f"was sent (fix them, or pass --skip-invalid):\n{listing}"
                )
            notes.append(f"Skipping {len(found.invalid)} invalid row(s):\n{listing}")
        if found.duplicates:
            listing = "\n".join(f"  {where} {row}" for row in found.duplicates)
            notes.append(
                f"Collapsed {len(found.duplicates)} duplicate address(es), keeping the first "
                f"row of each:\n{listing}"
            )
        if "token" in found.columns and not self.csv_tokens:
            notes.append(
                f"{where}: the token column is not used: every message carries the subscriber "
                "store's token, which famfeeds subscriptions answers (show.toml sets "
                "service_url)."
            )
        return found.subscribers

    def plan(self, options: SendOptions, skip_invalid: bool, *, dry_run: bool) -> Report:
        """Whom this run would send to, and who is skipped and why."""
        notes = self.overrides()
        show = self.show_slug
        store = self.open_store(create=self.subscribers_file is not None and not dry_run)
        try:
            subscribers = self.recipients(store, skip_invalid, notes)
            ledger = Ledger(self.project.ledger, legacy_show=show)
            try:
                states = ledger.records(show, self.issue.slug)
            finally:
                ledger.close()

            reasons: dict[str, str] = {}
            if store is not None and self.subscribers_file is not None:
                reasons = store.suppressions(show, [sub.email for sub in subscribers])
            # The store's own recipients are its confirmed rows, read just now: none is
            # suppressed. Every recipient is asked about again just before its message.
            planned = plan_sends(subscribers, states, options, lambda sub: reasons.get(sub.email))
            audience = len(set(states) | {sub.key for sub in planned.todo})
            later = [] if self.ignore_delivery_time else self._not_yet_due(planned.todo)
            if later:
                not_yet = {sub.key for sub, _ in later}
                planned.todo = [sub for sub in planned.todo if sub.key not in not_yet]
            if store is not None and self.subscribers_file is None:
                planned.unlisted = store.not_mailed(show)
            if dry_run and self.subscribers_file is not None:
                notes += self._token_notes(store, planned.todo)
        finally:
            if store is not None:
                store.close()
        item = self.template.item
        soonest = min((moment for _, moment in later), default=None)
        waiting = ""
        if soonest is not None:
            waiting = (
                f"Not yet due: {len(later)} (next at {self.describe(soonest)}); a later run "
                "sends to them (--ignore-delivery-time sends to everyone now)."
            )
        return Report(
            self.label,
            planned,
            notes=notes,
            issue=item.issue.slug,
            subject=item.subject,
            source=display_path(self.subscribers_file) if self.subscribers_file else STORE_SOURCE,
            dry_run=dry_run,
            not_yet_due=len(later),
            audience=audience,
            next_due=soonest,
            waiting=waiting,
        )

    # -- delivery times ----------------------------------------------------------------------

    @cached_property
    def rule(self) -> DeliveryRule:
        """show.toml's ``deliver`` and ``quiet_hours``."""
        from famfeeds.plan.sendtime import DeliveryRule

        newsletter = self.planned.show.newsletter
        assert newsletter is not None
        return DeliveryRule.of_newsletter(newsletter)

    def due_at(self, sub: Subscriber) -> datetime:
        """When ``sub`` is due this issue (UTC): see :mod:`famfeeds.plan.sendtime`."""
        from zoneinfo import ZoneInfo

        release = self.issue.released_at
        if self.rule.immediate:
            return release.astimezone(UTC)
        zone = ZoneInfo(sub.timezone) if sub.timezone else self.planned.show.zone
        return self.rule.due(release, zone)

    def _not_yet_due(self, subscribers: list[Subscriber]) -> list[tuple[Subscriber, datetime]]:
        """Those of ``subscribers`` due after this run's clock, with their moments."""
        if self.rule.immediate:
            return []
        from zoneinfo import ZoneInfo

        from famfeeds.plan.sendtime import due_moment

        now = self.clock()
        quiet = self.rule.quiet
        waiting = []
        for sub in subscribers:
            moment = self.due_at(sub)
            if moment <= now and quiet is not None:
                # Due already, but a late run (a catch-up, a retry, cron) must not mail
                # inside the quiet hours either: then it waits for their end.
                zone = ZoneInfo(sub.timezone) if sub.timezone else self.planned.show.zone
                moment = due_moment(now, zone, None, quiet)
            if moment > now:
                waiting.append((sub, moment))
        return waiting

    def describe(self, moment: datetime) -> str:
        """A moment in UTC and in the show's zone, e.g. 2026-03-29 06:00 UTC (08:00 CEST)."""
        local = moment.astimezone(self.planned.show.zone)
        day = "" if local.date() == moment.astimezone(UTC).date() else f"{local:%Y-%m-%d} "
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({day}{local:%H:%M %Z})"

    def next_due(self) -> datetime | None:
        """The earliest due moment after the clock among this issue's recipients who have
        no row in the ledger yet (UTC), or None: no issue is due, or nobody is waiting.
        The ledger stays the one record of who was sent what."""
        from famfeeds.plan.issues import IssueNotDue

        if self.ignore_delivery_time:
            return None
        try:
            issue = self.issue
        except IssueNotDue:
            return None
        store = self.open_store(create=False)
        try:
            if self.subscribers_file is None and store is None:
                return None
            subscribers = self.recipients(store, True, [])
        finally:
            if store is not None:
                store.close()
        ledger = Ledger(self.project.ledger, legacy_show=self.show_slug)
        try:
            states = ledger.records(self.show_slug, issue.slug)
        finally:
            ledger.close()
        waiting = [sub for sub in subscribers if sub.key not in states]
        return min((moment for _, moment in self._not_yet_due(waiting)), default=None)

    def _token_notes(self, store: SubscriberStore | None, todo: list[Subscriber]) -> list[str]:
        """A dry run's warnings about CSV rows that have no token yet."""
        show = self.show_slug
        if self.csv_tokens:
            missing = [s for s in todo if not s.token]
            if not missing:
                return []
            return [
                f"{len(missing)} row(s) have no token, e.g. {shown(missing[0].email)}: their "
                "List-Unsubscribe link gets the subscriber store's token, which your "
                "unsubscribe_url does not know (add a token column, or run famfeeds "
                "subscriptions and set service_url)."
            ]
        unknown = [s for s in todo if store is None or store.status(show, s.email) is None]
        if not unknown:
            return []
        return [
            f"{len(unknown)} row(s) have no token yet, e.g. {shown(unknown[0].email)}: sending "
            "adds them to the subscriber store as pending (source 'list'), so that their "
            "unsubscribe link works; they do not become confirmed subscribers."
        ]

    @property
    def newsletter(self) -> Newsletter:
        newsletter = self.planned.show.newsletter
        assert newsletter is not None
        return newsletter

    @cached_property
    def signer(self) -> Signer | None:
        """The DKIM signer of show.toml's dkim setting, its key loaded and probed (DkimError
        before anything is sent); None without the setting."""
        from famfeeds.delivery.dkim import project_signer

        return project_signer(self.newsletter, self.project.root)

    def complaint_guard(self, *, dry_run: bool) -> list[str]:
        """The complaint guard's notes (see :mod:`famfeeds.delivery.guards`): a warning, or
        the override ``force`` made; raises FamfeedsError to stop a real send. Nothing is
        connected to before this."""
        from famfeeds.delivery.guards import complaint_check

        verdict = complaint_check(
            self.project.ledger,
            self.project.store,
            self.show_slug,
            self.issue.slug,
            stop_rate=self.newsletter.complaint_rate_stop,
            warn_rate=self.newsletter.complaint_rate_warn,
            now=utc_now(),
        )
        if verdict.level != "stop":
            return [verdict.message] if verdict.message else []
        if self.force:
            return [f"--force: sending although {verdict.message.partition('. Nothing')[0]}."]
        if dry_run:
            return [f"A real send would stop here: {verdict.message}."]
        raise FamfeedsError(verdict.message)

    def domain_check(self, audience: int, *, dry_run: bool = False) -> list[str]:
        """When the issue's whole audience (``audience``: due now, not yet due and already
        in its ledger, so a send in groups is checked as one) is more than
        ``doctor_threshold``, the checks of :mod:`famfeeds.delivery.doctor` (DNS from
        FAMFEEDS_NAMESERVER, else the system's), once per issue: a pass is recorded in the
        state folder, so a resumed send does not check again. A failed line stops the send
        (FamfeedsError) unless ``force``, which is then reported; warnings become notes. A
        dry run checks too but records nothing, and says what a real send would do."""
        from famfeeds.delivery import doctor

        newsletter, show, issue = self.newsletter, self.show_slug, self.issue.slug
        if audience <= newsletter.doctor_threshold:
            return []
        if doctor.passed_before(self.project.state, show, issue):
            return ["Domain check: already passed for this issue."] if dry_run else []
        checkup = doctor.examine(
            newsletter,
            nameserver=os.environ.get(doctor.NAMESERVER_ENV) or None,
            nameserver_source=doctor.NAMESERVER_ENV,
            smtp_url=self.smtp_url,
            base=self.project.root,
        )
        failed = "; ".join(f"{x.check} ({x.subject}): {x.found}" for x in checkup.failed)
        warnings = [
            f"Domain check warns: {x.check} ({x.subject}): {x.found}" for x in checkup.warnings
        ]
        above = (
            f"this issue goes to {audience} recipients, more than doctor_threshold "
            f"({newsletter.doctor_threshold})"
        )
        if dry_run:
            if not failed:
                return [f"Domain check passed ({above}).", *warnings]
            if self.force:
                forced = "--force: a real send would go on although the domain check failed: "
                return [f"{forced}{failed}.", *warnings]
            return [
                f"A real send would stop here: {above}, and the domain check failed: {failed}. "
                "Run famfeeds doctor for the fixes.",
                *warnings,
            ]
        if failed and not self.force:
            raise FamfeedsError(
                f"nothing was sent: {above}, and the domain check failed: {failed}. "
                "Run famfeeds doctor for the fixes, or pass --force to send anyway"
            )
        if failed:
            return [f"--force: sending although the domain check failed: {failed}."]
        doctor.remember(self.project.state, show, issue)
        return warnings

    # -- the three ways to run ---------------------------------------------------------------

    def test(self, address: str, options: SendOptions) -> str:
        """Send one copy to ``address``, outside the ledger; returns the address used."""
        from email_validator import EmailNotValidError, validate_email

        try:
            address = validate_email(
                address, check_deliverability=False, allow_smtputf8=True
            ).normalized
        except EmailNotValidError as exc:
            raise FamfeedsError(f"--test-to: {shown(str(exc), 300)}") from None
        send_one(
            self.template,
            address,
            self.target,
            self.password,
            clock=self.clock,
            data_timeout=options.data_timeout,
            signer=self.signer,
        )
        return address

    def dry_run(self, options: SendOptions, skip_invalid: bool = True) -> Report:
        """Report what a real run would do (writes nothing): whom it would send to and
        skip, exactly, without personalising every message.

        A message is refused only when a header line would pass 998 octets, which takes
        an address or an unsubscribe URL longer than :data:`SAFE_INPUT`: those messages
        are rendered in full and, when refused, reported as failures (as a send would).
        The size is measured on a sample of :data:`SIZE_SAMPLE` rendered messages.
        """
        from famfeeds.render.message import HeaderTooLong
        from famfeeds.render.urls import unsubscribe_url

        signer = self.signer  # the DKIM key loads and signs, or the dry run says why not
        due = self.nothing_due()
        if due is not None:
            due.dry_run = True
            return due
        report = self.plan(options, skip_invalid, dry_run=True)
        report.notes += self.complaint_guard(dry_run=True)
        report.notes += self.domain_check(report.audience, dry_run=True)
        newsletter = self.planned.show.newsletter
        assert newsletter is not None
        moment = self.clock()
        if signer is not None:
            report.notes.append(f"Each message is DKIM-signed for {signer.describe()}.")
        signature = 0
        todo = report.plan.todo
        every = max(1, len(todo) // SIZE_SAMPLE)
        kept: list[Subscriber] = []
        measured = sampled = 0
        for number, sub in enumerate(todo):
            token = sub.token or "x" * 32
            risky = (
                len(sub.email.encode()) > SAFE_INPUT
                or len(unsubscribe_url(newsletter, token)) > SAFE_INPUT
            )
            if risky or number % every == 0:
                try:
                    message = self.template.render(sub.email, sub.name, token, date=moment)
                except HeaderTooLong as exc:
                    report.outcome.failed.append((sub.email, f"not sent: {exc}"))
                    continue
                if signer is not None and not signature:  # one signature's size stands for all
                    signature = len(signer.signature(message))
                size = len(message) + signature
                if number % every == 0:
                    measured += size
                    sampled += 1
            kept.append(sub)
        report.plan.todo = kept
        report.size = round(measured / sampled * len(kept)) if sampled else 0
        report.size_estimated = every > 1
        return report

    def send(
        self,
        options: SendOptions,
        *,
        skip_invalid: bool = False,
        wait: bool = False,
        waiting: Callable[[str], None] = lambda note: None,
        confirm: Callable[[str], bool] = lambda question: False,
        progress: Callable[[int], None] | None = None,
        start_progress: Callable[[int], None] = lambda total: None,
    ) -> Report:
        """Send for real once ``confirm`` agrees (it is not asked when nobody is due)."""
        due = self.nothing_due()
        if due is not None:
            return due
        target, password, signer = self.target, self.password, self.signer
        self.project.private_state()
        with send_lock(
            self.project.state, self.show_slug, self.issue.slug, wait=wait, waiting=waiting
        ):
            report = self.plan(options, skip_invalid, dry_run=False)
            todo = report.plan.todo
            if not todo:
                return report
            report.notes += self.complaint_guard(dry_run=False)
            report.notes += self.domain_check(report.audience)
            options = replace(options, bounce_rate_stop=self.newsletter.bounce_rate_stop)
            question = f"Send {self.label} to {len(todo)} subscriber(s) via {target}?"
            if not confirm(question):
                raise FamfeedsError("nothing was sent")
            start_progress(len(todo))
            lock = threading.Lock()
            run_id = report.run_id = new_run_id()

            def step(n: int) -> None:
                if progress is not None:
                    with lock:
                        progress(n)

            report.outcome = send_issue(
                self.template,
                report.plan,
                target=target,
                password=password,
                ledger_path=self.project.ledger,
                options=options,
                gate=lambda: _StoreGate(self, run_id),
                clock=self.clock,
                progress=step,
                signer=signer,
            )
        if report.outcome.bounced:
            content = shlex.quote(display_path(self.content))
            report.undo = f"famfeeds subscribers clear-bounce --run {run_id} --content {content}"
        return report


def parse_moment(value: str) -> datetime:
    """``--now``: an ISO 8601 date and time; one without an offset is read in the show's
    zone (see :meth:`Campaign.clock`)."""
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise FamfeedsError(
            f"--now {shown(value)}: not a date and time; write e.g. 2026-12-23T21:05 (the "
            "show's zone) or 2026-12-23T21:05-05:00"
        ) from None
