"""The command line: options in, one call into the pipeline, errors out.

Heavy libraries are imported inside the commands, so ``famfeeds --help`` starts fast.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from famfeeds import __version__

if TYPE_CHECKING:
    from famfeeds.delivery.campaign import Campaign, Report
    from famfeeds.delivery.engine import SendOptions

content_option = click.option(
    "--content",
    type=click.Path(path_type=Path, file_okay=False),
    default="content",
    show_default=True,
    help="Folder holding show.toml and the season-NN folders.",
)


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD") from None


output_option = click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default="output",
    show_default=True,
    help="Folder to build into. Replaced in one step; files famfeeds did not make are kept.",
)
templates_option = click.option(
    "--templates",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of your own templates, searched before the shipped ones "
    "[default: ./templates if it exists].",
)
as_of_option = click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    callback=_parse_date,
    help="Reference date: episodes released by then appear in the feeds "
    "[default: SOURCE_DATE_EPOCH if set, else today in the show's time zone].",
)


def _templates(templates: Path | None) -> Path | None:
    """``--templates`` checked; None means the project's own templates/ folder, if any."""
    from famfeeds.errors import FamfeedsError

    if templates is not None and not templates.is_dir():
        raise FamfeedsError(f"--templates {templates}: no such folder")
    return templates


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="famfeeds")
def cli() -> None:
    """Build a show's episode feeds, calendar and newsletter from plain text records.

    \b
    Example:
        famfeeds check
        famfeeds build --as-of 2023-11-24
    """


@cli.command()
@content_option
@output_option
@templates_option
@as_of_option
@click.option(
    "--base-url",
    metavar="URL",
    help="Public URL where the output is published, replacing show.toml's base_url "
    "(e.g. https://staging.example.org/show/).",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def build(
    content: Path,
    output: Path,
    templates: Path | None,
    as_of: date | None,
    base_url: str | None,
    strict: bool,
) -> None:
    """Validate the content and build every output into the output folder.

    Nothing is written unless the whole build succeeds.

    \b
    Example:
        famfeeds build
        famfeeds build --content content --output public --as-of 2023-11-24
    """
    from famfeeds.build import build as run_build
    from famfeeds.errors import display_path

    result, report = run_build(
        content,
        output,
        templates=_templates(templates),
        as_of=as_of,
        strict=strict,
        base_url=base_url,
    )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    released = len(result.schedule.released(result.as_of))
    total = len(result.schedule.releases)
    click.echo(
        f"Built {len(report.written)} files in {display_path(output)}/ "
        f"as of {result.as_of}: {released} of {total} episodes released."
    )
    folders: dict[str, int] = {}
    for name in report.written:
        if "/" in name:
            folder = name.split("/", 1)[0]
            folders[folder] = folders.get(folder, 0) + 1
        else:
            click.echo(f"  {name}")
    for folder, count in folders.items():
        click.echo(f"  {folder}/ ({count} files)")
    if report.kept:
        click.echo(
            f"Kept {len(report.kept)} files famfeeds did not make: "
            + ", ".join(report.kept[:5])
            + (" ..." if len(report.kept) > 5 else "")
        )
    for name in report.replaced:
        click.echo(f"warning: replaced {name}, which famfeeds had not made", err=True)


@cli.command()
@content_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1 on any).")
def check(content: Path, strict: bool) -> None:
    """Validate the content and report every problem, writing nothing.

    Exits 0 when the content is valid, 1 otherwise.

    \b
    Example:
        famfeeds check --content content
    """
    from famfeeds.build import check as run_check

    planned = run_check(content, strict=strict)
    for warning in planned.warnings:
        click.echo(f"warning: {warning}", err=True)
    catalogue = planned.catalogue
    click.echo(
        f"OK: {catalogue.show.title}, {len(catalogue.seasons)} season(s), "
        f"{catalogue.episode_count()} episodes."
    )


@cli.command()
@content_option
@output_option
@templates_option
@as_of_option
@click.option(
    "--date",
    "day",
    metavar="YYYY-MM-DD",
    callback=_parse_date,
    help="The issue of this date (a release day, or a week before a premiere).",
)
@click.option(
    "--latest", is_flag=True, help="The newest issue out by the reference date (the default)."
)
@click.option(
    "--eml",
    is_flag=True,
    help="Write the issue's ready-to-send .eml to standard output, for another mail tool.",
)
def newsletter(
    content: Path,
    output: Path,
    templates: Path | None,
    as_of: date | None,
    day: date | None,
    latest: bool,
    eml: bool,
) -> None:
    """Show which newsletter issue a date means and where its files are.

    \b
    Example:
        famfeeds newsletter --latest
        famfeeds newsletter --date 2023-11-24 --as-of 2024-01-31
        famfeeds newsletter --latest --eml | sendmail -t
    """
    from famfeeds.build import render
    from famfeeds.errors import FamfeedsError, display_path
    from famfeeds.planning import find_issue
    from famfeeds.render.urls import issue_file

    if day is not None and latest:
        raise click.UsageError("give --date or --latest, not both")
    result = render(content, templates=_templates(templates), as_of=as_of)
    if result.plan.show.newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: add one to make issues")
    issue = find_issue(
        result.plan.issues, "latest" if day is None else day.isoformat(), result.as_of
    )
    letter = next(x for x in result.letters if x.item.issue.day == issue.day)
    if eml:
        sys.stdout.flush()
        sys.stdout.buffer.write(result.files[issue_file(issue.slug, ".eml")])
        return
    click.echo(f"Issue {issue.slug}: {letter.item.subject}")
    for suffix in (".html", ".txt", ".eml"):
        name = issue_file(issue.slug, suffix)
        path = output / name
        built = path.is_file() and path.read_bytes() == result.files[name]
        state = "" if built else "  (not built yet: run famfeeds build)"
        click.echo(f"  {display_path(path)}{state}")


@cli.command()
@click.argument("issue", metavar="ISSUE")
@click.option(
    "--subscribers",
    "subscribers_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV with a header row: email (required), name and token (optional).",
)
@click.option(
    "--smtp",
    "smtp_url",
    metavar="URL",
    help="smtp://[user@]host:port (STARTTLS when offered; add ?starttls=required "
    "to insist) or smtps://[user@]host:465 [default: show.toml's smtp_url]. "
    "The password comes from FAMFEEDS_SMTP_PASSWORD.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Messages per second across all connections; 0 for no limit.",
)
@click.option(
    "--connections",
    type=click.IntRange(1, 32),
    default=2,
    show_default=True,
    help="SMTP connections in parallel, each reused for many messages.",
)
@click.option(
    "--attempts",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Tries per subscriber in this run when the server defers (4xx, dropped connection).",
)
@click.option(
    "--retry-wait",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="Seconds before the first retry of a deferred subscriber; doubled after.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render every message and report the counts, without connecting.",
)
@click.option(
    "--test-to",
    metavar="ADDRESS",
    help="Send one copy to this address only, outside the delivery ledger.",
)
@click.option("--yes", is_flag=True, help="Send without asking for confirmation.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Send to the valid rows even if some rows of the list are invalid.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try again the subscribers whose server refused the issue for good (5xx).",
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Send again to subscribers whose delivery was cut off after the message "
    "was handed over (they may get it twice).",
)
@content_option
@templates_option
def send(
    issue: str,
    subscribers_file: Path,
    smtp_url: str | None,
    rate: float,
    connections: int,
    attempts: int,
    retry_wait: float,
    dry_run: bool,
    test_to: str | None,
    yes: bool,
    skip_invalid: bool,
    retry_failed: bool,
    resend_uncertain: bool,
    content: Path,
    templates: Path | None,
) -> None:
    """Email a newsletter issue to every subscriber, exactly once each.

    ISSUE is the issue's date (YYYY-MM-DD) or "latest". Every delivery is recorded in
    .famfeeds-state/ledger.sqlite3 beside the content folder: run the same command again
    after an interruption and it sends only to those who did not get the issue.

    \b
    Example:
        famfeeds send latest --subscribers subscribers.csv --dry-run
        FAMFEEDS_SMTP_PASSWORD=... famfeeds send 2023-11-24 \\
            --subscribers subscribers.csv --smtp smtp://news@mail.example.org:587
    """
    from famfeeds.delivery.campaign import Campaign
    from famfeeds.delivery.engine import SendOptions

    options = SendOptions(
        connections=connections,
        rate=rate,
        attempts=attempts,
        retry_wait=retry_wait,
        retry_failed=retry_failed,
        resend_uncertain=resend_uncertain,
    )
    campaign = Campaign(content, _templates(templates), issue, subscribers_file, smtp_url)
    if test_to:
        address = campaign.test(test_to)
        click.echo(f"Sent a test copy of {campaign.label} to {address} via {campaign.target}.")
        return
    if dry_run:
        report = campaign.dry_run(options, skip_invalid)
    else:
        report = _send(campaign, options, yes=yes, skip_invalid=skip_invalid)
    _print_report(report)
    raise SystemExit(report.exit_code)


def _send(campaign: Campaign, options: SendOptions, *, yes: bool, skip_invalid: bool) -> Report:
    """Send with a confirmation prompt (unless --yes) and a progress bar on a terminal."""
    from famfeeds.errors import FamfeedsError

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise FamfeedsError("not asking on a non-interactive input: pass --yes to send")
        return click.confirm(question, abort=True)

    if not sys.stdout.isatty():
        return campaign.send(options, skip_invalid=skip_invalid, confirm=confirm)
    bars: list[Any] = []

    def start(total: int) -> None:
        bars.append(click.progressbar(length=total, label="Sending", show_eta=True, show_pos=True))
        bars[0].__enter__()

    try:
        return campaign.send(
            options,
            skip_invalid=skip_invalid,
            confirm=confirm,
            progress=lambda n: bars[0].update(n),
            start_progress=start,
        )
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def _print_report(report: Report) -> None:
    """The outcome of a send or a dry run, as a person reads it."""
    for note in report.notes:
        click.echo(note, err=True)
    planned, outcome = report.plan, report.outcome
    skips = (
        f"skipping {planned.already_sent} already sent, {len(planned.uncertain)} "
        f"uncertain, {len(planned.failed_before)} failed before"
    )
    if report.dry_run:
        click.echo(
            f"Dry run for {report.label}: would send {len(planned.todo)} message(s) "
            f"({report.size / 1024:.0f} KiB); {skips}. Nothing was sent."
        )
        return
    click.echo(
        f"{report.label}: sent {outcome.sent}, deferred {len(outcome.deferred)}, "
        f"failed {len(outcome.failed)}; {skips}."
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


@cli.command()
@content_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=".famfeeds-preview",
    show_default=True,
    help="Folder for the preview build, kept apart from output/ because its links "
    "point at this server.",
)
@templates_option
@as_of_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 shows the preview to your network.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--public-urls",
    is_flag=True,
    help="Build with show.toml's base_url instead of this server's address.",
)
def serve(
    content: Path,
    output: Path,
    templates: Path | None,
    as_of: date | None,
    host: str,
    port: int,
    public_urls: bool,
) -> None:
    """Build, serve the result over HTTP, and rebuild when content or templates change.

    Open pages reload themselves after a good rebuild; a failed rebuild keeps the last
    good output and prints the error. Stop with Ctrl-C.

    \b
    Example:
        famfeeds serve
        famfeeds serve --port 8080 --as-of 2023-11-24
    """
    import threading

    from famfeeds.build import build as run_build
    from famfeeds.project import Project
    from famfeeds.serve import Preview, PreviewServer, watch

    template_dir = Project.of(content).templates(_templates(templates))
    preview = Preview(output, lambda: None)
    try:
        server = PreviewServer((host, port), preview)
    except OSError as exc:
        from famfeeds.errors import FamfeedsError

        raise FamfeedsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = server.server_address[1]
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}/"
    base_url = None if public_urls else url

    def rebuild() -> None:
        run_build(
            content,
            output,
            templates=template_dir,
            as_of=as_of,
            base_url=base_url,
            save_lock=False,
        )

    preview.rebuild = rebuild
    if not preview.refresh():
        server.server_close()
        raise SystemExit(1)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch, args=([content, template_dir], preview, stop), daemon=True
    )
    watcher.start()
    click.echo(
        f"Serving {url} (also http://{shown}:{bound}/); watching {content} and "
        f"{template_dir}. Ctrl-C stops."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        stop.set()
        server.server_close()


def main() -> None:
    """Console script entry point."""
    cli(prog_name="famfeeds")
