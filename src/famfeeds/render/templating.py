"""The Jinja2 environment's rules (escaping, undefined values, filters), whatever loads the
templates; :func:`famfeeds.project.template_environment` gives it the project's folders."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import BaseLoader, Environment


def make_environment(loader: BaseLoader) -> Environment:
    """A Jinja2 environment over ``loader``: HTML and XML autoescaped, undefined values
    an error, the ``longdate`` filter."""
    from jinja2 import Environment, StrictUndefined, select_autoescape

    env = Environment(
        loader=loader,
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
