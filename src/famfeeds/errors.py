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
        what = self.record if self.field is None else f"{self.record}, field '{self.field}'"
        text = f"{where}: {what}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


class FamfeedsError(click.ClickException):
    """A user error: reported without a traceback, exit status 1."""


class ContentError(FamfeedsError):
    """One or more problems in the content; nothing was written."""

    def __init__(self, problems: Iterable[Problem], *, warnings_as_errors: bool = False) -> None:
        self.problems = sorted(set(problems), key=_sort_key)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        kind = "warnings treated as errors (--strict)" if warnings_as_errors else "content"
        lines = [f"{count} {noun} in the {kind}; nothing was written:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def _sort_key(p: Problem) -> tuple[str, int, str, str]:
    return (p.file, p.line or 0, p.field or "", p.message)
