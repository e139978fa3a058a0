"""The command line: options in, one call into the pipeline, errors out.

``famfeeds --help`` starts at little more than click's own import: heavy libraries and the
rest of famfeeds are imported inside the commands, and the commands of cli/authoring.py,
cli/send.py and cli/subscribers.py are imported only when one of them runs or shows its
help (the listing takes their one-line help from :data:`LAZY_COMMANDS`).
"""

from __future__ import annotations

import importlib
import sys
from datetime import date
from typing import TYPE_CHECKING

import click

from famfeeds import __version__
from famfeeds.cli.options import (
    PathParam,
    as_of_option,
    checked_templates,
    content_option,
    output_option,
    parse_date,
    templates_option,
)

if TYPE_CHECKING:
    from pathlib import Path

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "bounces": (
        "famfeeds.cli.send",
        "Read the bounce mailbox and stop mailing addresses that bounce or complain.",
    ),
    "dkim": (
        "famfeeds.cli.deliverability",
        "Make the DKIM key that signs every message famfeeds sends.",
    ),
    "doctor": (
        "famfeeds.cli.doctor",
        "Check the sending domain before the first send: SPF, DKIM, DMARC, MX, unsubscribe, TLS.",
    ),
    "init": (
        "famfeeds.cli.authoring",
        "Start a project in FOLDER: a commented content/ folder, a .gitignore and a README.",
    ),
    "new": (
        "famfeeds.cli.authoring",
        "Add a season or an episode: new files with the next free numbers, never overwriting.",
    ),
    "report": (
        "famfeeds.cli.report",
        "Report what each issue did, from the ledger and the subscriber store (no tracking).",
    ),
    "run": (
        "famfeeds.cli.run",
        "Act at each release moment: build, publish, tell the WebSub hubs, send the issue.",
    ),
    "schedule": (
        "famfeeds.cli.authoring",
        "Show when every episode comes out, and why: a table of the computed schedule.",
    ),
    "send": (
        "famfeeds.cli.send",
        "Email a newsletter issue to every subscriber, exactly once each.",
    ),
    "status": (
        "famfeeds.cli.run",
        "Show the next moments famfeeds run acts at, and what it did at the last ones.",
    ),
    "subscribers": (
        "famfeeds.cli.subscribers",
        "Manage the subscriber store: import, export, list, add, unsubscribe, forget.",
    ),
    "subscriptions": (
        "famfeeds.cli.subscribers",
        "Run the subscriptions service: sign-up with double opt-in, one-click unsubscribe.",
    ),
}
"""Commands imported when used: name -> (module defining it under that name, the first
sentence of its help). A test keeps each sentence equal to the command's own."""


class Commands(click.Group):
    """The famfeeds group, loading the commands of :data:`LAZY_COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name][0])
            self.add_command(getattr(module, cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, as click writes it, without importing the lazy commands."""
        listed: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:  # not loaded: its first sentence stands in for its help
                command = click.Command(name, help=LAZY_COMMANDS[name][1])
            if not command.hidden:
                listed.append((name, command))
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            with formatter.section("Commands"):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in listed])


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace files in the output folder that famfeeds did not make, when a built file "
    "has the same name (without it, the build stops and lists them).",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="If another famfeeds build is writing into the same place, wait at most this long "
    "[default: until it has finished].",
)
def build(
    content: Path,
    output: Path,
    templates: Path | None,
    as_of: date | None,
    base_url: str | None,
    strict: bool,
    overwrite: bool,
    wait: float | None,
) -> None:
    """Validate the content and build every output into the output folder.

    Nothing is written unless the whole build succeeds. The output folder must be one
    of its own: famfeeds refuses the project folder, content/, your home folder or a
    mount point, and never replaces a file it did not make unless you pass --overwrite.

    \b
    Example:
        famfeeds build
        famfeeds build --content content --output public --as-of 2023-11-24
    """
    from famfeeds.build.pipeline import BuildRequest
    from famfeeds.build.pipeline import build as run_build
    from famfeeds.build.speed import fewer_collections
    from famfeeds.errors import display_path

    with fewer_collections():
        result, report = run_build(
            BuildRequest(
                content,
                output,
                templates=checked_templates(templates),
                as_of=as_of,
                strict=strict,
                base_url=base_url,
                overwrite=overwrite,
                wait=wait,
                waiting=lambda message: click.echo(message, err=True),
            )
        )
    for warning in (*result.warnings, *result.cache.warnings, *report.warnings):
        click.echo(f"warning: {warning}", err=True)
    released = result.schedule.released_count(result.as_of)
    total = len(result.schedule.releases)
    click.echo(
        f"Built {len(report.written)} files in {display_path(output)}/ "
        f"as of {result.as_of}: {released} of {total} episodes released."
    )
    lines: list[str] = []
    folders: dict[str, int] = {}
    for name in report.written:
        if "/" in name:
            folder = name.split("/", 1)[0]
            folders[folder] = folders.get(folder, 0) + 1
        else:
            lines.append(f"  {name}")
    lines += [f"  {folder}/ ({count} files)" for folder, count in folders.items()]
    for line in lines[:LISTED]:
        click.echo(line)
    if len(lines) > LISTED:  # a large catalogue: its first entries, not thousands of lines
        click.echo(f"  ... and {len(lines) - LISTED:,} more files and folders")
    if report.kept:
        click.echo(
            f"Kept {len(report.kept)} files famfeeds did not make: "
            + ", ".join(report.kept[:5])
            + (" ..." if len(report.kept) > 5 else "")
        )
    for name in report.replaced:
        click.echo(f"warning: replaced {name}, which famfeeds had not made (--overwrite)", err=True)


LISTED = 40
"""Lines of output/'s top level that `famfeeds build` lists."""


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
    from famfeeds.build.pipeline import check as run_check

    planned = run_check(content, strict=strict)
    for warning in planned.warnings:
        click.echo(f"warning: {warning}", err=True)
    catalogue = planned.catalogue
    click.echo(
        f"OK: {catalogue.show.title}, {len(catalogue.seasons)} season(s), "
        f"{catalogue.episode_count()} episodes."
    )


ISSUE_FORMS = {"html": ".html", "text": ".txt", "eml": ".eml"}
"""The forms of an issue newsletter can print or save, and their file suffixes."""


@cli.command()
@content_option
@click.option(
    "--output",
    type=PathParam(file_okay=False),
    default="output",
    show_default=True,
    help="Where famfeeds build put the site: the summary says whether the issue's files "
    "there are up to date. Nothing is written to it.",
)
@templates_option
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    callback=parse_date,
    help="Treat this day as today: issues dated up to it are out, so a later one can be "
    "previewed [default: SOURCE_DATE_EPOCH if set, else today in the show's time zone].",
)
@click.option(
    "--date",
    "day",
    metavar="YYYY-MM-DD",
    callback=parse_date,
    help="The issue of this date (a release day, or a week before a premiere).",
)
@click.option(
    "--latest", is_flag=True, help="The newest issue out by the reference date (the default)."
)
@click.option(
    "--html",
    "form",
    flag_value="html",
    help="Print the issue's HTML (the view-in-browser copy, CSS inlined) instead of a summary.",
)
@click.option(
    "--text",
    "form",
    flag_value="text",
    help="Print the issue's plain-text part instead of a summary.",
)
@click.option(
    "--eml",
    "form",
    flag_value="eml",
    help="Print the issue's ready-to-send .eml instead of a summary, for another mail tool.",
)
@click.option(
    "--save",
    metavar="FILE",
    type=PathParam(dir_okay=False),
    help="Write the issue to FILE instead of printing it: HTML, text or .eml by the "
    "name's suffix (.html, .txt, .eml) or by --html, --text or --eml.",
)
def newsletter(
    content: Path,
    output: Path,
    templates: Path | None,
    as_of: date | None,
    day: date | None,
    latest: bool,
    form: str | None,
    save: Path | None,
) -> None:
    """Show a newsletter issue: which one a date means, its subject, or the issue itself.

    Renders just that issue, in memory, and never writes to the output folder; with
    --as-of, an issue can be read before its day. --html, --text and --eml print it, and
    --save writes it to a file.

    \b
    Example:
        famfeeds newsletter --latest
        famfeeds newsletter --date 2023-12-08 --as-of 2023-12-08 --save preview.html
        famfeeds newsletter --latest --eml | sendmail -t
    """
    from famfeeds.build.pipeline import check, issue_letter, reference_date
    from famfeeds.build.writer import atomic_write
    from famfeeds.errors import FamfeedsError, display_path
    from famfeeds.plan.issues import find_issue
    from famfeeds.render.urls import issue_file

    if day is not None and latest:
        raise click.UsageError("give --date or --latest, not both")
    if save is not None and form is None:
        form = next((f for f, suffix in ISSUE_FORMS.items() if save.suffix == suffix), None)
        if form is None:
            raise click.UsageError(
                f"--save {save}: name it .html, .txt or .eml, or add --html, --text or --eml"
            )
    planned = check(content)
    if planned.show.newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: add one to make issues")
    today = reference_date(planned.show.zone, as_of)
    if day is not None and any(i.day == day > today for i in planned.issues):
        raise FamfeedsError(
            f"the issue of {day} is not out yet as of {today}: add --as-of {day} to read it"
        )
    issue = find_issue(planned.issues, "latest" if day is None else day.isoformat(), today)
    letter = issue_letter(planned, issue, checked_templates(templates))
    if form is not None:
        data = letter.files[issue_file(issue.slug, ISSUE_FORMS[form])]
        if save is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            return
        try:
            atomic_write(save, data, fsync=False)
        except OSError as exc:
            raise FamfeedsError(f"cannot write {display_path(save)}: {exc.strerror}") from None
        click.echo(f"Wrote {display_path(save)}: issue {issue.slug}, {letter.item.subject}")
        return
    click.echo(f"Issue {issue.slug}: {letter.item.subject}")
    stale = False
    for suffix in (".html", ".txt", ".eml"):
        name = issue_file(issue.slug, suffix)
        path = output / name
        if not path.is_file():
            state, stale = f"  (not there: a build as of {issue.slug} or later writes it)", True
        elif path.read_bytes() != letter.files[name]:
            state, stale = "  (out of date: run famfeeds build)", True
        else:
            state = ""
        click.echo(f"  {display_path(path)}{state}")
    if stale:
        dated = f" --date {issue.slug}" + (f" --as-of {today}" if as_of is not None else "")
        click.echo(f"Read it now: famfeeds newsletter{dated} --save {issue.slug}.html")


@cli.command()
@content_option
@click.option(
    "--output",
    type=PathParam(file_okay=False),
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
    good output and prints the error. The preview never updates famfeeds.lock. Only
    requests naming this machine (localhost, --host, an IP address) are answered.
    Stop with Ctrl-C.

    \b
    Example:
        famfeeds serve
        famfeeds serve --port 8080 --as-of 2023-11-24
    """
    from famfeeds.build.preview import run

    run(
        content,
        output,
        templates=checked_templates(templates),
        as_of=as_of,
        host=host,
        port=port,
        public_urls=public_urls,
        say=click.echo,
        complain=lambda text: click.echo(text, err=True),
    )


def main() -> None:
    """Console script entry point: the command, then a quick exit
    (famfeeds.build.speed.exit_now)."""
    from famfeeds.build.speed import exit_now

    try:
        cli(prog_name="famfeeds")
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    exit_now(code)
