"""Options shared by several commands, declared once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

content_option = click.option(
    "--content",
    type=click.Path(path_type=Path, file_okay=False),
    default="content",
    show_default=True,
    help="Folder holding show.toml and the season-NN folders.",
)


def parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
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
    callback=parse_date,
    help="Reference date: episodes released by then appear in the feeds "
    "[default: SOURCE_DATE_EPOCH if set, else today in the show's time zone].",
)


def checked_templates(templates: Path | None) -> Path | None:
    """``--templates`` checked; None means the project's own templates/ folder, if any."""
    from famfeeds.errors import FamfeedsError

    if templates is not None and not templates.is_dir():
        raise FamfeedsError(f"--templates {templates}: no such folder")
    return templates
