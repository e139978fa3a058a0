"""The send command's flow: find the issue, check the list, ask, send, and report."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

import click

from famfeeds.errors import FamfeedsError, display_path
from famfeeds.ledger import LEDGER_NAME, STATE_DIR, Ledger
from famfeeds.mail import MessageTemplate
from famfeeds.send import Outcome, Plan, SendOptions, plan, send_issue, send_one
from famfeeds.smtp import PASSWORD_ENV, SmtpTarget
from famfeeds.subscribers import SubscriberList, load_subscribers


@dataclass
class Campaign:
    """One issue, one subscriber list, one SMTP server."""

    content: Path
    templates: Path
    issue_name: str
    subscribers_file: Path
    smtp_url: str | None

    @cached_property
    def template(self) -> MessageTemplate:
        """The issue, rendered and inlined once."""
        from famfeeds.build import render

        day: date | None = None
        if self.issue_name != "latest":
            try:
                day = date.fromisoformat(self.issue_name)
            except ValueError:
                raise click.BadParameter(
                    f"{self.issue_name!r}: give a date (YYYY-MM-DD) or 'latest'", param_hint="ISSUE"
                ) from None
        result = render(self.content, self.templates, as_of=day)
        if result.catalogue.show.newsletter is None:
            raise FamfeedsError("show.toml has no [newsletter] table: nothing to send")
        if not result.letters:
            raise FamfeedsError(f"no newsletter issue is out as of {result.as_of}")
        if day is None:
            return MessageTemplate.of(result.letters[-1])
        for item in result.letters:
            if item.issue.day == day:
                return MessageTemplate.of(item)
        dates = ", ".join(item.issue.slug for item in result.letters)
        raise FamfeedsError(f"no issue is dated {day}; the issues are: {dates}")

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

    @property
    def ledger_path(self) -> Path:
        return self.content.absolute().parent / STATE_DIR / LEDGER_NAME

    def subscribers(self, skip_invalid: bool = False) -> SubscriberList:
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
            click.echo(f"Skipping {len(found.invalid)} invalid row(s):\n{listing}", err=True)
        if found.duplicates:
            click.echo(f"Collapsed {found.duplicates} duplicate address(es).", err=True)
        return found

    def plan(self, options: SendOptions, skip_invalid: bool) -> Plan:
        ledger = Ledger(self.ledger_path)
        try:
            states = ledger.states(self.template.item.issue.slug)
        finally:
            ledger.close()
        return plan(self.subscribers(skip_invalid).subscribers, states, options)

    def test(self, address: str) -> None:
        """Send one copy to ``address``, outside the ledger."""
        from email_validator import EmailNotValidError, validate_email

        try:
            address = validate_email(
                address, check_deliverability=False, allow_smtputf8=False
            ).normalized
        except EmailNotValidError as exc:
            raise click.BadParameter(str(exc), param_hint="--test-to") from None
        send_one(self.template, address, self.target, self.password)
        click.echo(f"Sent a test copy of {self.label} to {address} via {self.target}.")

    def dry_run(self, options: SendOptions, skip_invalid: bool = True) -> None:
        """Render every message and report what a real run would do."""
        planned = self.plan(options, skip_invalid)
        size = sum(len(self.template.render(s.email, s.name, s.token)) for s in planned.todo)
        click.echo(
            f"Dry run for {self.label}: would send {len(planned.todo)} message(s) "
            f"({size / 1024:.0f} KiB); {self._skips(planned)}. Nothing was sent."
        )

    @staticmethod
    def _skips(planned: Plan) -> str:
        return (
            f"skipping {planned.already_sent} already sent, {len(planned.uncertain)} "
            f"uncertain, {len(planned.failed_before)} failed before"
        )

    def send(self, options: SendOptions, yes: bool, skip_invalid: bool = False) -> None:
        """Send for real, after confirmation; exit 1 if anyone failed or is deferred."""
        planned = self.plan(options, skip_invalid)
        target, password = self.target, self.password
        if planned.todo and not yes:
            if not sys.stdin.isatty():
                raise FamfeedsError("not asking on a non-interactive input: pass --yes to send")
            click.confirm(
                f"Send {self.label} to {len(planned.todo)} subscriber(s) via {target}?", abort=True
            )
        outcome = self._deliver(planned, options, target, password)
        self._report(planned, outcome)

    def _deliver(
        self, planned: Plan, options: SendOptions, target: SmtpTarget, password: str | None
    ) -> Outcome:
        if not planned.todo:
            return Outcome()
        if not sys.stdout.isatty():
            return send_issue(
                self.template, planned.todo, target, password, self.ledger_path, options
            )
        lock = threading.Lock()
        with click.progressbar(
            length=len(planned.todo), label="Sending", show_eta=True, show_pos=True
        ) as bar:

            def progress(n: int) -> None:
                with lock:
                    bar.update(n)

            return send_issue(
                self.template, planned.todo, target, password, self.ledger_path, options, progress
            )

    def _report(self, planned: Plan, outcome: Outcome) -> None:
        click.echo(
            f"{self.label}: sent {outcome.sent}, deferred {len(outcome.deferred)}, "
            f"failed {len(outcome.failed)}; {self._skips(planned)}."
        )
        for address in planned.uncertain:
            click.echo(
                f"  uncertain: {address} (cut off after the message was handed over; "
                "--resend-uncertain sends it again)",
                err=True,
            )
        for address, reply in outcome.failed:
            click.echo(f"  failed: {address}: {reply}", err=True)
        for address in planned.failed_before:
            click.echo(f"  failed before: {address} (--retry-failed tries again)", err=True)
        for address, reply in outcome.deferred:
            click.echo(f"  deferred: {address}: {reply} (run the command again later)", err=True)
        if outcome.failed or outcome.deferred or planned.failed_before:
            raise SystemExit(1)
