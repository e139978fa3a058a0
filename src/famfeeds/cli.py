"""The command line: options in, one call into the pipeline, errors out.

Heavy libraries are imported inside the commands, so ``famfeeds --help`` starts fast.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from famfeeds import __version__

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
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default="output",
    show_default=True,
    help="Folder to build into. Replaced in one step; files famfeeds did not make are kept.",
)
@click.option(
    "--templates",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of your own templates, searched before the shipped ones "
    "[default: ./templates if it exists].",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    callback=_parse_date,
    help="Reference date: episodes released by then appear in the feeds "
    "[default: SOURCE_DATE_EPOCH if set, else today in the show's time zone].",
)
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
    from famfeeds.errors import FamfeedsError, display_path

    if templates is not None and not templates.is_dir():
        raise FamfeedsError(f"--templates {templates}: no such folder")
    result, report = run_build(
        content, output, templates or Path("templates"), as_of, strict, base_url
    )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    released = len(result.schedule.released(result.as_of))
    total = len(result.schedule.releases)
    click.echo(
        f"Built {len(report.written)} files in {display_path(output)}/ "
        f"as of {result.as_of}: {released} of {total} episodes released."
    )
    for name in report.written:
        click.echo(f"  {name}")
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
    from famfeeds.errors import ContentError

    catalogue, schedule = run_check(content)
    if strict and schedule.warnings:
        raise ContentError(schedule.warnings, warnings_as_errors=True)
    for warning in schedule.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"OK: {catalogue.show.title}, {len(catalogue.seasons)} season(s), "
        f"{catalogue.episode_count()} episodes."
    )


def main() -> None:
    """Console script entry point."""
    cli(prog_name="famfeeds")
