"""User-facing errors: every content problem names the file, line, record and field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in the content, precise enough to fix without guessing."""

    file: str
    line: int | None
    record: str
    field: str | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = None if self.field is None else f"field '{self.field}'"
        what = ", ".join(part for part in (self.record, field) if part)
        text = f"{where}: {what}: {self.message}" if what else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


class FamfeedsError(click.ClickException):
    """A user error: reported without a traceback, exit status 1."""


OUTCOMES = {"build": "nothing was written", "send": "nothing was sent"}
"""What a command says it left undone when the content stops it, by the command's name; a
command not listed (check, schedule, newsletter) writes nothing anyway and says nothing."""


class ContentError(FamfeedsError):
    """One or more problems in the content, found before anything was done.

    The first line says what the command did not do: ``outcome`` if given, else the entry
    of :data:`OUTCOMES` for the click command that is running (``build``: "nothing was
    written"), else nothing (``check`` never writes, so it does not say so).
    """

    def __init__(
        self,
        problems: Iterable[Problem],
        *,
        warnings_as_errors: bool = False,
        outcome: str | None = None,
    ) -> None:
        self.problems = sorted(set(problems), key=_sort_key)
        self.warnings_as_errors = warnings_as_errors
        if outcome is None:
            ctx = click.get_current_context(silent=True)
            outcome = OUTCOMES.get(ctx.command.name or "", "") if ctx is not None else ""
        self.outcome = outcome
        count = len(self.problems)
        if warnings_as_errors:
            head = f"{count} warning{'s' * (count != 1)} with warnings treated as errors (--strict)"
        else:
            head = f"{count} problem{'s' * (count != 1)} in the content"
        lines = [head + (f"; {outcome}:" if outcome else ":")]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def _sort_key(p: Problem) -> tuple[str, int, str, str]:
    return (p.file, p.line or 0, p.field or "", p.message)
