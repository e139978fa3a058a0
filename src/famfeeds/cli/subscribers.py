"""The ``subscribers`` commands (the subscriber store) and ``subscriptions`` (the service).

Thin: options in, one call into famfeeds.delivery.store or famfeeds.delivery.service, a printed
report out. Heavy modules (sqlite3, email_validator, starlette, uvicorn) are imported
inside the commands, so ``famfeeds --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from famfeeds.delivery.store import ImportReport, RowNote, SubscriberStore

STATUS_CHOICES = ("pending", "confirmed", "unsubscribed", "bounced", "complained")
SERVICE_PORT = 8478
"""famfeeds.delivery.service.DEFAULT_PORT, written out so that --help does not import the
service (a test keeps the two equal)."""
LISTED = 50
"""Rows of each kind an import report lists before it only counts."""

content_option = click.option(
    "--content",
    type=click.Path(path_type=Path, file_okay=False),
    default="content",
    show_default=True,
    help="Folder holding show.toml; the store is .famfeeds-state/subscribers.sqlite3 beside it.",
)
status_option = click.option(
    "--status",
    type=click.Choice(STATUS_CHOICES),
    default=None,
    help="Only the subscribers with this status.",
)


def _show_slug(content: Path) -> str:
    """The show's slug from show.toml, without loading the episodes: a typo in an episode
    must never stop an operator from unsubscribing someone."""
    import re
    import tomllib

    from famfeeds.errors import FamfeedsError, display_path
    from famfeeds.records.models import SLUG_PATTERN

    path = content / "show.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FamfeedsError(
            f"{display_path(path)}: cannot read the show's slug ({exc}); "
            "give --content the folder that holds show.toml"
        ) from None
    slug = data.get("slug")
    if not isinstance(slug, str) or not re.fullmatch(SLUG_PATTERN, slug):
        raise FamfeedsError(
            f"{display_path(path)}: field 'slug' is missing or not lower-case letters, "
            "digits and hyphens; famfeeds check tells more"
        )
    return slug


@contextmanager
def _store(content: Path) -> Iterator[tuple[str, SubscriberStore]]:
    """The show's slug and the project's store, opened in its private state folder."""
    from famfeeds.build.project import Project
    from famfeeds.delivery.store import SubscriberStore

    slug = _show_slug(content)
    project = Project.of(content)
    project.private_state()
    with SubscriberStore.open(project.store, secret=project.secret) as store:
        yield slug, store


@click.group()
def subscribers() -> None:
    """Manage the subscriber store: import, export, list, add, unsubscribe, forget.

    Addresses are one row per show, case-insensitive. Nothing here ever subscribes an
    address that unsubscribed, bounced, complained or was forgotten: only the person can,
    by signing up again and confirming.

    \b
    Example:
        famfeeds subscribers import people.csv
        famfeeds subscribers stats
        famfeeds subscribers unsubscribe ann@example.org
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--confirmed",
    is_flag=True,
    help="Add new addresses as confirmed recipients (you assert they consented elsewhere) "
    "instead of pending.",
)
@content_option
def import_(file: Path, confirmed: bool, content: Path) -> None:
    """Import a CSV with a header row: email (required), name, status.

    New addresses become pending (or confirmed with --confirmed). A status column of
    unsubscribed, bounced or complained is recorded. Unsubscribed, bounced, complained
    and forgotten addresses are never brought back; they are listed with line numbers,
    as are invalid and duplicate rows. A bad header refuses the whole file.

    \b
    Example:
        famfeeds subscribers import people.csv
        famfeeds subscribers import old-list.csv --confirmed
    """
    with _store(content) as (slug, store):
        report = store.import_csv(slug, file, confirmed=confirmed)
    _print_import(file, report)


def _print_import(file: Path, report: ImportReport) -> None:
    from famfeeds.errors import display_path

    if report.ignored_columns:
        click.echo(f"note: ignored column(s): {', '.join(report.ignored_columns)}", err=True)
    click.echo(
        f"Imported {display_path(file)}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.suppressed)} suppressed, "
        f"{len(report.invalid)} invalid, {len(report.duplicates)} duplicate."
    )
    kinds: Sequence[tuple[str, list[RowNote]]] = (
        ("Not subscribed again (suppressed)", report.suppressed),
        ("Invalid, not imported", report.invalid),
        ("Duplicates, not imported", report.duplicates),
    )
    for title, notes in kinds:
        if notes:
            click.echo(f"{title}:", err=True)
            for note in notes[:LISTED]:
                click.echo(f"  {note}", err=True)
            if len(notes) > LISTED:
                click.echo(f"  ... and {len(notes) - LISTED} more", err=True)


@subscribers.command()
@status_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (created with mode 0600) instead of standard output.",
)
@content_option
def export(status: str | None, output: Path | None, content: Path) -> None:
    """Export the subscribers as CSV (without tokens); it imports back unchanged.

    \b
    Example:
        famfeeds subscribers export -o subscribers.csv
        famfeeds subscribers export --status confirmed
    """
    from famfeeds.errors import display_path

    with _store(content) as (slug, store):
        if output is None:
            store.export_csv(slug, sys.stdout, status)
            return
        count = store.export_file(slug, output, status)
    click.echo(f"Exported {count} subscriber(s) to {display_path(output)}.", err=True)


@subscribers.command("list")
@status_option
@content_option
def list_(status: str | None, content: Path) -> None:
    """List the subscribers: address, status, since when, how, name, and time zone (empty
    for the show's).

    \b
    Example:
        famfeeds subscribers list --status pending
    """
    with _store(content) as (slug, store):
        for sub in store.subscribers(slug, status):
            click.echo(
                f"{sub.email}\t{sub.status}\t{sub.status_changed_at}\t{sub.status_source}"
                f"\t{sub.name or ''}\t{sub.timezone or ''}"
            )


@subscribers.command()
@content_option
def stats(content: Path) -> None:
    """Count the subscribers per status, and the sign-ups and unsubscribes per week.

    \b
    Example:
        famfeeds subscribers stats
    """
    with _store(content) as (slug, store):
        result = store.stats(slug)
    for status, count in result.counts.items():
        click.echo(f"{status:<14}{count:>9}")
    click.echo(f"{'forgotten':<14}{result.forgotten:>9}")
    if result.weeks:
        click.echo(f"\n{'week':<10}{'sign-ups':>10}{'confirmed':>11}{'unsubscribed':>14}")
        for week in result.weeks:
            click.echo(
                f"{week.week:<10}{week.signups:>10}{week.confirmed:>11}{week.unsubscribed:>14}"
            )


@subscribers.command()
@click.argument("address")
@click.option("--name", default=None, help="The subscriber's name, for the greeting.")
@click.option(
    "--confirmed",
    is_flag=True,
    help="Add as a confirmed recipient (you assert the person consented) instead of pending.",
)
@content_option
def add(address: str, name: str | None, confirmed: bool, content: Path) -> None:
    """Add one address (pending unless --confirmed).

    \b
    Example:
        famfeeds subscribers add ann@example.org --name Ann --confirmed
    """
    from famfeeds.errors import FamfeedsError

    with _store(content) as (slug, store):
        result = store.add(slug, address, name, confirmed=confirmed)
    if result in ("added", "updated", "unchanged"):
        click.echo(f"{address}: {result}.")
        return
    raise FamfeedsError(
        f"{address} is {result}: famfeeds does not subscribe it again. The person can sign "
        "up again through the form and confirm."
    )


@subscribers.command()
@click.argument("address")
@content_option
def unsubscribe(address: str, content: Path) -> None:
    """Unsubscribe an address (recorded even if the store did not know it, so one-off
    lists skip it too).

    \b
    Example:
        famfeeds subscribers unsubscribe ann@example.org
    """
    with _store(content) as (slug, store):
        before = store.unsubscribe(slug, address)
    state = "was not in the store; recorded as unsubscribed" if before is None else before
    click.echo(f"{address}: unsubscribed ({state}).")


@subscribers.command()
@click.argument("address")
@content_option
def forget(address: str, content: Path) -> None:
    """Delete an address's personal data (its row and history) on request.

    Only a keyed hash of the address is kept, so that no import or add can subscribe it
    again; the person can still sign up again through the form and confirm.

    \b
    Example:
        famfeeds subscribers forget ann@example.org
    """
    from famfeeds.build.project import Project
    from famfeeds.delivery.ledger import Ledger

    with _store(content) as (slug, store):
        existed = store.forget(slug, address)
        ledger = Ledger(Project.of(content).ledger, legacy_show=slug)
        try:  # the ledger keeps only the keyed hash: a later send still knows it was mailed
            ledger.forget(slug, address)
        finally:
            ledger.close()
    what = "its data deleted" if existed else "it was not in the store"
    click.echo(f"{address}: forgotten ({what}); it will not be subscribed again by import.")


@subscribers.command("rotate-token")
@click.argument("address", required=False)
@click.option(
    "--all", "every", is_flag=True, help="Every subscriber of the show, instead of one address."
)
@content_option
def rotate_token(address: str | None, every: bool, content: Path) -> None:
    """Give an address (or, with --all, everyone) a new unsubscribe token.

    Do it when an issue with someone's links has leaked (a forward to a list, a public
    archive): the unsubscribe links in issues already sent stop working, and the next
    issue carries the new one. The token only ever unsubscribes; it cannot confirm a
    sign-up.

    \b
    Example:
        famfeeds subscribers rotate-token ann@example.org
        famfeeds subscribers rotate-token --all
    """
    from famfeeds.errors import FamfeedsError

    if (address is None) == (not every):
        raise click.UsageError("give one ADDRESS, or --all (not both)")
    with _store(content) as (slug, store):
        changed = store.rotate_token(slug, address)
    if address is not None and not changed:
        raise FamfeedsError(f"{address} is not in the store")
    who = address if address is not None else f"{changed} subscriber(s)"
    click.echo(f"{who}: new unsubscribe token; the links in earlier issues no longer work.")


@subscribers.command()
@click.argument("address")
@content_option
def history(address: str, content: Path) -> None:
    """Show an address's record and history: when and how it reached each status, and
    the proof of consent (sign-up and confirmation times and IP addresses).

    \b
    Example:
        famfeeds subscribers history ann@example.org
    """
    with _store(content) as (slug, store):
        sub = store.subscriber(slug, address)
        suppressed = store.suppressed(slug, address)
        events = store.history(slug, address)
    if sub is None:
        state = "forgotten" if suppressed == "forgotten" else "not in the store"
        click.echo(f"{address}: {state}.")
        return
    for label, value in (
        ("address", sub.email),
        ("name", sub.name),
        ("status", f"{sub.status} since {sub.status_changed_at} ({sub.status_source})"),
        ("created", sub.created_at),
        ("signed up", _at(sub.signup_at, sub.signup_ip)),
        ("consent", _at(sub.consent_at, sub.consent_ip)),
        ("time zone", sub.timezone or f"the show's ({_show_zone(content)})"),
    ):
        click.echo(f"{label:<10} {value or '-'}")
    for event in events:
        where = f" from {event.ip}" if event.ip else ""
        detail = f": {event.detail}" if event.detail else ""
        click.echo(f"  {event.at}  {event.event} ({event.source}){where}{detail}")


def _show_zone(content: Path) -> str:
    """The show's time zone from show.toml, or '?' when it cannot be read."""
    import tomllib

    try:
        zone = tomllib.loads((content / "show.toml").read_text(encoding="utf-8")).get("timezone")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "?"
    return zone if isinstance(zone, str) else "?"


@subscribers.command("set-zone")
@click.argument("address")
@click.argument("zone")
@content_option
def set_zone(address: str, zone: str, content: Path) -> None:
    """Set the time zone an address's issues follow (an IANA name such as Europe/Berlin),
    or "show" for the show's own zone. show.toml's deliver and quiet_hours are read on
    the subscriber's clock.

    \b
    Example:
        famfeeds subscribers set-zone ann@example.org America/Sao_Paulo
        famfeeds subscribers set-zone ann@example.org show
    """
    from famfeeds.errors import FamfeedsError
    from famfeeds.plan.sendtime import InvalidZone

    wanted = None if zone.strip().lower() == "show" else zone
    with _store(content) as (slug, store):
        try:
            found = store.set_zone(slug, address, wanted)
        except InvalidZone as exc:
            raise FamfeedsError(f"ZONE: {exc.message} (or 'show' for the show's zone)") from None
    if not found:
        raise FamfeedsError(f"{address} is not in the store")
    shown = wanted.strip() if wanted else f"the show's ({_show_zone(content)})"
    click.echo(f"{address}: time zone {shown}.")


def _at(moment: str | None, ip: str | None) -> str | None:
    if moment is None:
        return None
    return f"{moment} from {ip}" if ip else moment


@subscribers.command("clear-bounce")
@click.argument("address", required=False)
@click.option(
    "--run",
    "run_id",
    metavar="RUN_ID",
    help="Every address that this famfeeds send run marked bounced (its report names the run).",
)
@click.option(
    "--since",
    metavar="DATETIME",
    help="Every address bounced at or after this moment, e.g. 2026-12-07T04:00 (UTC unless "
    "it has an offset).",
)
@content_option
def clear_bounce(address: str | None, run_id: str | None, since: str | None, content: Path) -> None:
    """Make a bounced address a recipient again, once you know its mailbox works; or, with
    --run or --since, every address one send run (or anything since a moment) marked
    bounced, in one go (a relay that refused everyone, not the addresses).

    Only for addresses that had consented; unsubscribed and complained addresses can
    come back only by signing up again themselves.

    \b
    Example:
        famfeeds subscribers clear-bounce ann@example.org
        famfeeds subscribers clear-bounce --run 20261207T040050Z-a1b2c3
    """
    import re
    from datetime import UTC, datetime

    from famfeeds.errors import FamfeedsError

    if (address is None) == (run_id is None and since is None):
        raise click.UsageError("give an ADDRESS, or --run RUN_ID and/or --since DATETIME")
    if run_id is not None and not re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", run_id):
        raise click.BadParameter(
            "a run id looks like 20261207T040050Z-a1b2c3 (the send's report gives it)",
            param_hint="--run",
        )
    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(
                "not a date and time; write e.g. 2026-12-07T04:00 (UTC) or 2026-12-07T05:00+01:00",
                param_hint="--since",
            ) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    with _store(content) as (slug, store):
        if address is None:
            restored = store.clear_bounces(slug, run=run_id, since=moment)
        else:
            restored = [address] if store.clear_bounce(slug, address) else []
    if not restored and address is not None:
        raise FamfeedsError(f"{address} is not a bounced subscriber who had consented")
    if not restored:
        raise FamfeedsError(
            "no bounced subscriber who had consented matches "
            + " and ".join(f"{k} {v}" for k, v in (("--run", run_id), ("--since", since)) if v)
        )
    if address is not None:
        click.echo(f"{address}: confirmed again.")
        return
    for one in restored:
        click.echo(f"  {one}")
    click.echo(f"{len(restored)} address(es) confirmed again.")


@click.command()
@content_option
@click.option(
    "--templates",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of your own templates (service/*.j2), searched before the shipped ones "
    "[default: ./templates beside the content, if it exists].",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep 127.0.0.1 behind a reverse proxy.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=SERVICE_PORT,
    show_default=True,
    help="Port to listen on; 0 picks a free one. The default is taken by no common tool "
    "(local SMTP sinks use 8025 and 1025, famfeeds serve 8000), so all can run at once.",
)
@click.option(
    "--public-url",
    metavar="URL",
    default=None,
    help="Where people reach the service (confirmation links start with it) "
    "[default: show.toml's service_url, else the listening address].",
)
@click.option(
    "--base-path",
    default="/",
    show_default=True,
    help="Path the endpoints live under, as requests reach the service (e.g. /subscriptions).",
)
@click.option(
    "--smtp",
    "smtp_url",
    metavar="URL",
    default=None,
    help="SMTP server for the confirmation mail [default: show.toml's smtp_url]. "
    "The password comes from FAMFEEDS_SMTP_PASSWORD.",
)
@click.option(
    "--behind-proxy",
    "proxies",
    metavar="ADDR",
    multiple=True,
    help="A reverse proxy's address or network (repeatable): X-Forwarded-For is believed "
    "only from these, e.g. --behind-proxy 127.0.0.1. Without it, never.",
)
@click.option(
    "--pending-days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Days a sign-up may wait for its confirmation before it expires.",
)
@click.option(
    "--signups-per-minute",
    type=click.IntRange(1, 10_000),
    default=5,
    show_default=True,
    help="Sign-ups accepted per client address per minute; more get 429.",
)
@click.option(
    "--header-timeout",
    type=click.IntRange(1, 300),
    default=10,
    show_default=True,
    help="Seconds a client has to send a whole request head before it is disconnected.",
)
def subscriptions(
    content: Path,
    templates: Path | None,
    host: str,
    port: int,
    public_url: str | None,
    base_path: str,
    smtp_url: str | None,
    proxies: tuple[str, ...],
    pending_days: int,
    signups_per_minute: int,
    header_timeout: int,
) -> None:
    """Run the subscriptions service: sign-up with double opt-in, one-click unsubscribe.

    Endpoints: POST /subscribe, GET and POST /confirm, GET and POST /unsubscribe,
    GET /healthz, under --base-path. Stop with Ctrl-C or SIGTERM.

    \b
    Example:
        famfeeds subscriptions --public-url https://example.org/subscriptions
        famfeeds subscriptions --behind-proxy 127.0.0.1 --smtp smtp://localhost:587
    """
    from famfeeds.build.preview import wildcard
    from famfeeds.build.project import Project
    from famfeeds.delivery.service import Limits, parse_networks, run, smtp_mailer
    from famfeeds.delivery.smtp import PASSWORD_ENV
    from famfeeds.errors import FamfeedsError
    from famfeeds.records.loader import load_catalogue

    show = load_catalogue(content).show
    if show.newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: add one to take sign-ups")
    url = smtp_url or show.newsletter.smtp_url
    if not url:
        raise FamfeedsError(
            "no SMTP server for the confirmation mail: give --smtp smtp://host:587 or set "
            "smtp_url in show.toml's [newsletter]"
        )
    if public_url is not None:
        from famfeeds.records.models import normalise_base_url

        try:
            normalise_base_url(public_url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--public-url") from None
    project = Project.of(content)
    project.private_state()
    from famfeeds.delivery.dkim import project_signer  # a bad DKIM key stops it here

    signer = project_signer(show.newsletter, project.root)
    mailer = smtp_mailer(show, url, os.environ.get(PASSWORD_ENV), signer=signer)

    def announce(listening: str, public: str) -> None:
        where = " (all interfaces)" if wildcard(host) else ""
        click.echo(
            f"Listening on {listening}{where} (public URL {public}/); store {project.store}. "
            "Ctrl-C stops."
        )

    run(
        show,
        project.store,
        mailer,
        host=host,
        port=port,
        public_url=public_url,
        base_path=base_path,
        trusted_proxies=parse_networks(proxies),
        limits=Limits(
            signups_per_minute=signups_per_minute,
            pending_days=pending_days,
            head_timeout=header_timeout,
        ),
        templates=project.templates(templates),
        locale=project.locale,
        announce=announce,
    )
