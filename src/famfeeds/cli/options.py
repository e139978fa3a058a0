"""Options shared by several commands, declared once."""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pathlib import Path


class PathParam(click.Path):
    """``click.Path`` whose values are :class:`pathlib.Path`; pathlib is imported when a
    value is converted, not when the command is declared (``famfeeds --help`` stays
    fast)."""

    def __init__(self, *, file_okay: bool = True, dir_okay: bool = True) -> None:
        super().__init__(file_okay=file_okay, dir_okay=dir_okay)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from pathlib import Path

        converted = super().convert(value, param, ctx)
        return converted if isinstance(converted, Path) else Path(os.fsdecode(converted))


content_option = click.option(
    "--content",
    type=PathParam(file_okay=False),
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
        from famfeeds.records.loader import explain_day

        raise click.BadParameter(explain_day(value)) from None


output_option = click.option(
    "--output",
    type=PathParam(file_okay=False),
    default="output",
    show_default=True,
    help="Folder to build into. Replaced in one step; files famfeeds did not make are kept.",
)
templates_option = click.option(
    "--templates",
    type=PathParam(file_okay=False),
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
