"""The send command's flow: find the issue, check the list, ask, send, and report.

No click here: the flow takes callables to confirm and to show progress, and returns a
:class:`Report` that the command prints and turns into an exit code.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from famfeeds.delivery.engine import (
    Outcome,
    SendOptions,
    SendPlan,
    plan_sends,
    send_issue,
    send_one,
)
from famfeeds.delivery.ledger import Ledger
from famfeeds.delivery.smtp import PASSWORD_ENV, SmtpTarget
from famfeeds.delivery.subscribers import SubscriberList, load_subscribers
from famfeeds.errors import FamfeedsError, display_path
from famfeeds.project import Project
from famfeeds.render.message import MessageTemplate

EXIT_OK = 0
EXIT_FAILED = 1
"""Someone failed for good, or is still deferred: run again later, or look at the list."""
EXIT_UNCERTAIN = 3
"""Someone's delivery was cut off after the message was handed over (see ledger.py)."""


@dataclass
class Report:
    """What a send (or a dry run) did, for the command to print."""

    label: str
    plan: SendPlan
    outcome: Outcome = field(default_factory=Outcome)
    notes: list[str] = field(default_factory=list)
    """Things the operator should know before the counts (skipped rows, collapsed lines)."""
    dry_run: bool = False
    size: int = 0
    """Bytes of every message a dry run rendered."""

    @property
    def exit_code(self) -> int:
        """0 all sent; 1 failures or deferrals; 3 recipients left uncertain."""
        if self.outcome.failed or self.outcome.deferred or self.plan.failed_before:
            return EXIT_FAILED
        if self.plan.uncertain:
            return EXIT_UNCERTAIN
        return EXIT_OK


@dataclass
class Campaign:
    """One issue, one subscriber list, one SMTP server."""

    content: Path
    templates: Path | None
    issue_name: str
    subscribers_file: Path
    smtp_url: str | None
    as_of: date | None = None

    @cached_property
    def project(self) -> Project:
        return Project.of(self.content)

    @cached_property
    def template(self) -> MessageTemplate:
        """The issue, rendered and inlined once."""
        from famfeeds.build import check, reference_date, render_letters
        from famfeeds.issue_cache import IssueCache
        from famfeeds.planning import find_issue
        from famfeeds.project import template_environment

        planned = check(self.content)
        show = planned.show
        if show.newsletter is None:
            raise FamfeedsError("show.toml has no [newsletter] table: nothing to send")
        day = reference_date(show.zone, self.as_of)
        issue = find_issue(planned.issues, self.issue_name, day)
        env = template_environment(self.project.templates(self.templates))
        cache = IssueCache(self.project.cache)
        letters = render_letters(planned, issue.day, env, cache, only=issue)
        cache.save()
        return MessageTemplate.of(letters[-1].item)

    @property
    def show_slug(self) -> str:
        return self.template.item.issue.show.slug

    @property
    def label(self) -> str:
        item = self.template.item
        return f"issue {item.issue.slug} “{item.subject}”"

    @cached_property
    def target(self) -> SmtpTarget:
        newsletter = self.template.item.issue.show.newsletter
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

    def subscribers(self, skip_invalid: bool, notes: list[str]) -> SubscriberList:
        """The list, refusing a list with bad rows unless told to skip them."""
        found = load_subscribers(self.subscribers_file)
        if found.invalid:
            where = display_path(self.subscribers_file)
            listing = "\n".join(f"  {where} {row}" for row in found.invalid)
            if not skip_invalid:
                raise FamfeedsError(
                    f"{len(found.invalid)} invalid row(s) in the subscriber list; nothing "
                    f"was sent (fix them, or pass --skip-invalid):\n{listing}"
                )
            notes.append(f"Skipping {len(found.invalid)} invalid row(s):\n{listing}")
        if found.duplicates:
            notes.append(f"Collapsed {found.duplicates} duplicate address(es).")
        return found

    def plan(self, options: SendOptions, skip_invalid: bool) -> Report:
        """Whom this run would send to, and who is skipped and why."""
        notes: list[str] = []
        found = self.subscribers(skip_invalid, notes)
        ledger = Ledger(self.project.ledger, legacy_show=self.show_slug)
        try:
            states = ledger.states(self.show_slug, self.template.item.issue.slug)
        finally:
            ledger.close()
        return Report(self.label, plan_sends(found.subscribers, states, options), notes=notes)

    def test(self, address: str) -> str:
        """Send one copy to ``address``, outside the ledger; returns the address used."""
        from email_validator import EmailNotValidError, validate_email

        try:
            address = validate_email(
                address, check_deliverability=False, allow_smtputf8=False
            ).normalized
        except EmailNotValidError as exc:
            raise FamfeedsError(f"--test-to: {exc}") from None
        send_one(self.template, address, self.target, self.password)
        return address

    def dry_run(self, options: SendOptions, skip_invalid: bool = True) -> Report:
        """Render every message and report what a real run would do."""
        report = self.plan(options, skip_invalid)
        report.dry_run = True
        report.size = sum(
            len(self.template.render(s.email, s.name, s.token)) for s in report.plan.todo
        )
        return report

    def send(
        self,
        options: SendOptions,
        *,
        skip_invalid: bool = False,
        confirm: Callable[[str], bool] = lambda question: False,
        progress: Callable[[int], None] | None = None,
        start_progress: Callable[[int], None] = lambda total: None,
    ) -> Report:
        """Send for real once ``confirm`` agrees (it is not asked when nobody is due)."""
        report = self.plan(options, skip_invalid)
        todo = report.plan.todo
        target, password = self.target, self.password
        if not todo:
            return report
        question = f"Send {self.label} to {len(todo)} subscriber(s) via {target}?"
        if not confirm(question):
            raise FamfeedsError("nothing was sent")
        start_progress(len(todo))
        lock = threading.Lock()

        def step(n: int) -> None:
            if progress is not None:
                with lock:
                    progress(n)

        self.project.private_state()
        report.outcome = send_issue(
            self.template,
            todo,
            target=target,
            password=password,
            ledger_path=self.project.ledger,
            options=options,
            progress=step,
        )
        return report
