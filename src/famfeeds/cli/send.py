"""The ``send`` command (mail an issue) and ``bounces`` (read the bounce mailbox).

Registered on the ``famfeeds`` group at the end of :mod:`famfeeds.cli`. Thin: options in,
one call into :mod:`famfeeds.delivery.campaign` or :mod:`famfeeds.delivery.suppression`,
a printed report (or JSON) and an exit code out. Heavy modules are imported inside.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from famfeeds.cli.options import content_option

if TYPE_CHECKING:
    from famfeeds.delivery.campaign import Campaign, Report
    from famfeeds.delivery.engine import SendOptions
    from famfeeds.delivery.suppression import BounceReport

    NumberType = click.ParamType[float, Any]
    DurationType = click.ParamType[timedelta, Any]
else:  # click before 8.2 has no type parameters
    NumberType = DurationType = click.ParamType


class Seconds(NumberType):
    """A finite number of seconds within bounds (``inf`` and ``nan`` are refused)."""

    name = "seconds"

    def __init__(self, low: float, high: float, *, open_low: bool = False) -> None:
        self.low, self.high, self.open_low = low, high, open_low

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        too_low = number <= self.low if self.open_low else number < self.low
        if not math.isfinite(number) or too_low or number > self.high:
            low = f"more than {self.low:g}" if self.open_low else f"at least {self.low:g}"
            self.fail(f"{value!r}: give a number {low} and at most {self.high:g}", param, ctx)
        return number


class Rate(Seconds):
    name = "number"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r}: give a number from {self.low:g} to {self.high:g}", param, ctx)
        return number


rate_option = click.option(
    "--rate",
    type=Rate(0, 10_000),
    default=0,
    show_default=True,
    help="Messages per second across all connections; 0 for no limit.",
)
connections_option = click.option(
    "--connections",
    type=click.IntRange(1, 32),
    default=2,
    show_default=True,
    help="SMTP connections in parallel, each reused for many messages.",
)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhm]?)")
_UNITS = {"d": 86400.0, "": 86400.0, "h": 3600.0, "m": 60.0}


class Duration(DurationType):
    """``7d``, ``36h``, ``90m`` or a number of days; finite, positive, at most 10 years."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.fullmatch(str(value).strip().lower())
        seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
        if not math.isfinite(seconds) or not 0 < seconds <= 3650 * 86400:
            self.fail(
                f"{value!r} is not a duration: write e.g. 7d, 36h or 90m (more than 0, at "
                "most 3650d)",
                param,
                ctx,
            )
        return timedelta(seconds=seconds)


@click.command()
@click.argument("issue", metavar="ISSUE")
@click.option(
    "--subscribers",
    "subscribers_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A one-off CSV list (header row: email, and optionally name and token) instead "
    "of the subscriber store's confirmed subscribers; each address is still checked "
    "against the store, and unsubscribed, bounced or complained ones are skipped.",
)
@click.option(
    "--smtp",
    "smtp_url",
    metavar="URL",
    help="smtp://[user@]host:port (STARTTLS when offered; add ?starttls=required "
    "to insist) or smtps://[user@]host:465 [default: show.toml's smtp_url]. "
    "The password comes from FAMFEEDS_SMTP_PASSWORD and is only sent over TLS "
    "(?insecure-auth=true allows it for a relay on this machine).",
)
@rate_option
@connections_option
@click.option(
    "--attempts",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Tries per subscriber in this run when the server defers (4xx, dropped connection).",
)
@click.option(
    "--retry-wait",
    type=Seconds(0, 86_400),
    default=30,
    show_default=True,
    help="Seconds before the first retry of a deferred subscriber; doubled after.",
)
@click.option(
    "--data-timeout",
    type=Seconds(0, 3_600, open_low=True),
    default=600,
    show_default=True,
    help="Seconds to wait for the server's answer once a message is handed over (RFC 5321 "
    "suggests 10 minutes); past it the subscriber is reported uncertain, never resent.",
)
@click.option(
    "--max-age",
    type=Duration(),
    default="7d",
    show_default=True,
    help="Refuse an issue that came out longer ago than this (e.g. 7d, 36h); for 'latest' "
    "there is then nothing to send. --force overrides.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Send an issue before its episode is out, or older than --max-age, or to more than "
    "doctor_threshold recipients although the domain check (famfeeds doctor) failed (said "
    "out loud).",
)
@click.option(
    "--ignore-delivery-time",
    is_flag=True,
    help="Send to every subscriber now, even those whose local delivery time (show.toml's "
    "deliver and quiet_hours) has not come yet.",
)
@click.option(
    "--now",
    metavar="DATETIME",
    help="Act as if it were this moment, e.g. 2026-12-23T21:05 (the show's zone) or "
    "2026-12-23T21:05-05:00: which issue is out, and the Date of every message. For "
    "rehearsing a schedule with --dry-run [default: the clock; SOURCE_DATE_EPOCH is ignored].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render every message and report the counts, without connecting or writing.",
)
@click.option(
    "--test-to",
    metavar="ADDRESS",
    help="Send one copy to this address only, outside the delivery ledger (also before the "
    "issue is out: a proof for the editor).",
)
@click.option("--yes", is_flag=True, help="Send without asking for confirmation.")
@click.option(
    "--wait",
    is_flag=True,
    help="If another famfeeds is sending this issue, wait for it to finish instead of "
    "exiting (then send to whoever it did not reach).",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Send to the valid rows even if some rows of the list are invalid.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try again the subscribers whose server refused the issue for good (5xx); never "
    "those suppressed as bounced or complained.",
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Send again to subscribers whose delivery was cut off after the message "
    "was handed over (they may get it twice).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the outcome as JSON (counts and the addresses in each state), for scripts.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print nothing when this run had nothing to send (for cron, which mails any "
    "output); the exit code still tells.",
)
@content_option
@click.option(
    "--templates",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of your own templates, searched before the shipped ones "
    "[default: ./templates if it exists].",
)
def send(
    issue: str,
    subscribers_file: Path | None,
    smtp_url: str | None,
    rate: float,
    connections: int,
    attempts: int,
    retry_wait: float,
    data_timeout: float,
    max_age: timedelta,
    force: bool,
    ignore_delivery_time: bool,
    now: str | None,
    dry_run: bool,
    test_to: str | None,
    yes: bool,
    wait: bool,
    skip_invalid: bool,
    retry_failed: bool,
    resend_uncertain: bool,
    as_json: bool,
    quiet: bool,
    content: Path,
    templates: Path | None,
) -> None:
    """Email a newsletter issue to every subscriber, exactly once each.

    ISSUE is the issue's date (YYYY-MM-DD) or "latest": the newest issue whose episode is
    out (its release day and time in the show's zone). An issue before that moment, or
    older than --max-age, is refused unless --force. Recipients are the subscriber store's
    confirmed subscribers, or the rows of --subscribers. Every delivery is recorded in
    .famfeeds-state/ledger.sqlite3 beside the content folder: run the same command again
    after an interruption and it sends only to those who did not get the issue.

    Exit status: 0 everyone due was sent the issue (or nothing was due); 1 someone failed,
    is deferred or was not tried (or an error); 3 someone is uncertain (cut off after the
    message was handed over: see --resend-uncertain).

    \b
    Example:
        famfeeds send latest --dry-run
        famfeeds send latest --yes --quiet    # hourly from cron: each issue once
        FAMFEEDS_SMTP_PASSWORD=... famfeeds send 2023-11-24 \\
            --subscribers subscribers.csv --smtp smtp://news@mail.example.org:587
    """
    from famfeeds.delivery.campaign import Campaign, parse_moment
    from famfeeds.delivery.engine import SendOptions
    from famfeeds.errors import FamfeedsError

    if templates is not None and not templates.is_dir():
        raise FamfeedsError(f"--templates {templates}: no such folder")
    options = SendOptions(
        connections=connections,
        rate=rate,
        attempts=attempts,
        retry_wait=retry_wait,
        retry_failed=retry_failed,
        resend_uncertain=resend_uncertain,
        data_timeout=data_timeout,
    )
    campaign = Campaign(
        content,
        templates,
        issue,
        subscribers_file,
        smtp_url,
        now=parse_moment(now) if now else None,
        max_age=max_age,
        force=force,
        ignore_delivery_time=ignore_delivery_time,
    )
    try:
        if test_to:
            campaign.force = True  # a proof for the editor may come before the episode
            address = campaign.test(test_to, options)
            for note in campaign.overrides():
                click.echo(note.replace("--force: sending although", "Note:"), err=True)
            click.echo(f"Sent a test copy of {campaign.label} to {address} via {campaign.target}.")
            return
        if dry_run:
            report = campaign.dry_run(options, skip_invalid)
        else:
            report = _send(
                campaign,
                options,
                yes=yes,
                skip_invalid=skip_invalid,
                wait=wait,
                progress=not as_json,
            )
    except FamfeedsError as exc:
        if as_json:
            click.echo(json.dumps({"error": exc.message, "exit_code": exc.exit_code}))
            raise SystemExit(exc.exit_code) from None
        raise
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    elif not (quiet and _idle(report)):
        _print_report(report)
    raise SystemExit(report.exit_code)


def _idle(report: Report) -> bool:
    """True when this run had nothing to send and changed nothing (``--quiet`` stays
    silent)."""
    out = report.outcome
    acted = out.sent or out.failed or out.deferred or out.held or out.uncertain or out.untried
    return not (report.plan.todo or acted or out.skipped or report.notes)


def _send(
    campaign: Campaign,
    options: SendOptions,
    *,
    yes: bool,
    skip_invalid: bool,
    wait: bool,
    progress: bool,
) -> Report:
    """Send with a confirmation prompt (unless --yes) and a progress bar on a terminal."""
    from famfeeds.errors import FamfeedsError

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise FamfeedsError("not asking on a non-interactive input: pass --yes to send")
        return click.confirm(question, abort=True)

    def waiting(note: str) -> None:
        click.echo(note, err=True)

    if not progress or not sys.stdout.isatty():
        return campaign.send(
            options, skip_invalid=skip_invalid, confirm=confirm, wait=wait, waiting=waiting
        )
    bars: list[Any] = []

    def start(total: int) -> None:
        bars.append(click.progressbar(length=total, label="Sending", show_eta=True, show_pos=True))
        bars[0].__enter__()

    try:
        return campaign.send(
            options,
            skip_invalid=skip_invalid,
            wait=wait,
            waiting=waiting,
            confirm=confirm,
            progress=lambda n: bars[0].update(n),
            start_progress=start,
        )
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def _print_report(report: Report) -> None:
    """The outcome of a send or a dry run, as a person reads it (user and server text is
    escaped, so nothing in it can drive the terminal)."""
    from famfeeds.delivery.csvlist import shown

    for note in report.notes:
        click.echo(note, err=True)
    if report.waiting:
        click.echo(report.waiting)
    if report.nothing_due:
        click.echo(f"Nothing to send: {report.nothing_due}.")
        return
    planned, outcome = report.plan, report.outcome
    # Who the store kept out, by reason: a CSV's suppressed rows, or the store's addresses
    # that are not confirmed subscribers (pending ones said apart); then the run's skips.
    kept_out = {reason: len(found) for reason, found in planned.suppressed.items()}
    for reason, count in planned.unlisted.items():
        if reason != "pending":
            kept_out[reason] = kept_out.get(reason, 0) + count
    suppressed = ""
    if kept_out:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(kept_out.items()))
        suppressed = f", {sum(kept_out.values())} suppressed ({kinds})"
    if planned.unlisted.get("pending"):
        suppressed += f", {planned.unlisted['pending']} not confirmed"
    skips = (
        f"skipping {planned.already_sent} already sent, {len(planned.uncertain)} "
        f"uncertain, {len(planned.failed_before)} failed before{suppressed}"
    )
    source = f" to {report.source}" if report.source else ""
    if report.dry_run:
        for address, reason in outcome.failed:
            click.echo(f"  would fail: {shown(address)}: {shown(reason, 300)}", err=True)
        about = "about " if report.size_estimated else ""
        failing = f"; {len(outcome.failed)} would fail" if outcome.failed else ""
        click.echo(
            f"Dry run for {report.label}{source}: would send {len(planned.todo)} message(s) "
            f"({about}{report.size / 1024:.0f} KiB){failing}; {skips}. Nothing was sent."
        )
        return
    extra = f", uncertain {len(outcome.uncertain)}" if outcome.uncertain else ""
    extra += f", refused but not counted {len(outcome.held)}" if outcome.held else ""
    if outcome.skipped:
        reasons = Counter(reason for _, reason in outcome.skipped)
        kinds = ", ".join(f"{n} {shown(k)}" for k, n in sorted(reasons.items()))
        extra += f", skipped {len(outcome.skipped)} ({kinds})"
    click.echo(
        f"{report.label}: sent {len(outcome.sent)}, deferred {len(outcome.deferred)}, "
        f"failed {len(outcome.failed)}{extra}; {skips}."
    )
    for address in planned.uncertain:
        click.echo(
            f"  uncertain: {shown(address)} (cut off after the message was handed over; "
            "--resend-uncertain sends it again)",
            err=True,
        )
    for address, reason in outcome.uncertain:
        click.echo(
            f"  uncertain: {shown(address)}: {reason} (not sent again; --resend-uncertain would)",
            err=True,
        )
    bounced = {a for a, _ in outcome.bounced}
    for address, reply in outcome.failed:
        mark = " (marked bounced: later issues skip it)" if address in bounced else ""
        click.echo(f"  failed: {shown(address)}: {reply}{mark}", err=True)
    for address, reply in outcome.held:
        click.echo(
            f"  refused: {shown(address)}: {reply} (not marked failed or bounced: the server "
            "accepted nobody in this run; the next run tries again)",
            err=True,
        )
    for address in planned.failed_before:
        click.echo(f"  failed before: {shown(address)} (--retry-failed tries again)", err=True)
    for address, reply in outcome.deferred:
        click.echo(f"  deferred: {shown(address)}: {reply} (run the command again later)", err=True)
    for address, reason in outcome.skipped:
        click.echo(f"  skipped: {shown(address)}: {reason}", err=True)
    if outcome.stopped:
        click.echo(
            f"Stopped early: {outcome.stopped}. {len(outcome.untried)} subscriber(s) were not "
            "tried: run the same command again later.",
            err=True,
        )
    if report.undo:
        click.echo(
            f"{len(outcome.bounced)} address(es) marked bounced by this run (run "
            f"{report.run_id}). If the server was at fault, not the addresses, undo it with:\n"
            f"  {report.undo}",
            err=True,
        )


@click.command()
@click.option(
    "--mbox",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The bounce mailbox as an mbox file.",
)
@click.option(
    "--maildir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The bounce mailbox as a Maildir folder (new/ and cur/).",
)
@click.option(
    "--imap",
    "imap_url",
    metavar="URL",
    help="The bounce mailbox on an IMAP server: imaps://USER@HOST:993/INBOX (or imap:// with "
    "STARTTLS); the password comes from FAMFEEDS_IMAP_PASSWORD. Read-only: nothing is "
    "flagged or deleted.",
)
@click.option(
    "--soft-limit",
    type=click.IntRange(1, 100),
    default=None,
    help="Suppress an address once this many issues in a row soft-bounced "
    "[default: show.toml's soft_bounce_limit, 3].",
)
@click.option("--dry-run", is_flag=True, help="Report what the mailbox says, changing nothing.")
@click.option(
    "--accept-unmatched",
    is_flag=True,
    help="Also apply reports that match no message famfeeds sent (no valid VERP tag or "
    "Message-ID): anyone can write those, so check them first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@content_option
def bounces(
    mbox: Path | None,
    maildir: Path | None,
    imap_url: str | None,
    soft_limit: int | None,
    dry_run: bool,
    accept_unmatched: bool,
    as_json: bool,
    content: Path,
) -> None:
    """Read the bounce mailbox and stop mailing addresses that bounce or complain.

    Delivery status notifications (RFC 3464, and the formats of common mail systems) and
    complaint reports (ARF, RFC 5965) are recognised. A complaint marks the address
    complained, a permanent bounce marks it bounced; soft bounces (a full mailbox, a delay)
    mark it bounced once --soft-limit issues in a row soft-bounced. Every later send skips
    those addresses. Only a report about a message famfeeds sent (its keyed VERP tag or
    Message-ID) changes anything; others are listed as unmatched. Messages already read by
    an earlier run are not counted again, and a mailbox that cannot be read changes nothing.

    \b
    Example:
        famfeeds bounces --maildir ~/Maildir/.bounces --dry-run
        FAMFEEDS_IMAP_PASSWORD=... famfeeds bounces --imap imaps://bounces@mail.example.org/INBOX
    """
    import os

    from famfeeds.build.pipeline import check
    from famfeeds.build.project import Project
    from famfeeds.delivery.bounces import (
        IMAP_PASSWORD_ENV,
        BounceSourceError,
        read_imap,
        read_maildir,
        read_mbox,
    )
    from famfeeds.delivery.store import SubscriberStore
    from famfeeds.delivery.suppression import process_bounces
    from famfeeds.errors import FamfeedsError

    given = [
        name
        for name, value in (("--mbox", mbox), ("--maildir", maildir), ("--imap", imap_url))
        if value
    ]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --mbox FILE, --maildir DIR, --imap URL")
    planned = check(content)
    newsletter = planned.show.newsletter
    if newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: there is nothing to bounce")
    skipped: list[str] = []
    try:
        if mbox is not None:
            messages = read_mbox(mbox, on_skip=skipped.append)
        elif maildir is not None:
            messages = read_maildir(maildir, on_skip=skipped.append)
        else:
            assert imap_url is not None
            messages = read_imap(
                imap_url, os.environ.get(IMAP_PASSWORD_ENV, ""), on_skip=skipped.append
            )
    except BounceSourceError as exc:
        raise FamfeedsError(f"{exc}; nothing was changed") from None
    project = Project.of(content)
    project.private_state()
    with SubscriberStore.open(project.store, secret=project.secret) as store:
        report = process_bounces(
            messages,
            show=planned.show.slug,
            newsletter=newsletter,
            ledger_path=project.ledger,
            store=store,
            soft_limit=soft_limit or newsletter.soft_bounce_limit,
            dry_run=dry_run,
            skipped=skipped,
            secret=project.secret,
            accept_unmatched=accept_unmatched,
        )
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    _print_bounces(report)


def _print_bounces(report: BounceReport) -> None:
    for note in report.skipped_entries:
        click.echo(f"  skipped: {note}", err=True)
    for note in report.ignored:
        click.echo(f"  ignored: {note}")
    for label, items in (
        ("complained", report.complained),
        ("bounced", report.bounced),
        ("soft bounce", report.soft),
        ("bounced after soft bounces", report.soft_suppressed),
        ("not a subscriber", report.unknown),
        ("unmatched", report.unmatched),
    ):
        for address, reason in items:
            click.echo(f"  {label}: {address}: {reason}")
    change = "would mark" if report.dry_run else "marked"
    click.echo(
        f"Read {report.messages} message(s) ({report.already_read} read before, "
        f"{report.not_bounces} not bounces, {len(report.skipped_entries)} entries not mail): "
        f"{change} {len(report.complained)} complained and "
        f"{len(report.bounced) + len(report.soft_suppressed)} bounced; "
        f"{len(report.soft)} soft bounce(s) counted."
        + (" Nothing was changed (--dry-run)." if report.dry_run else "")
        + (
            f" {len(report.unmatched)} unmatched report(s) changed nothing (check them; "
            "--accept-unmatched applies them)."
            if report.unmatched
            else ""
        )
    )
