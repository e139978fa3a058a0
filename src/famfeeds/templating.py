"""Jinja2 templates: the project's own templates/ first, the shipped defaults second."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment


def shipped_templates() -> Path:
    """The default templates: inside the installed wheel, or the repository's templates/."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def environment(project_templates: Path | None) -> Environment:
    """A Jinja2 environment searching ``project_templates`` before the shipped ones."""
    from jinja2 import (
        ChoiceLoader,
        Environment,
        FileSystemLoader,
        StrictUndefined,
        select_autoescape,
    )

    loaders = []
    if project_templates is not None and project_templates.is_dir():
        loaders.append(FileSystemLoader(project_templates))
    loaders.append(FileSystemLoader(shipped_templates()))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "html.j2", "xml"], default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["longdate"] = long_date
    return env


def long_date(day: date) -> str:
    """``Friday 10 November 2023``, the same in every locale."""
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    months = (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    )
    return f"{weekdays[day.weekday()]} {day.day} {months[day.month - 1]} {day.year}"
