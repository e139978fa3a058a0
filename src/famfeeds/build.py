"""The pipeline: load, validate, schedule, render every output, then write them in one step."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from famfeeds.cache import CACHE_DIR, IssueCache
from famfeeds.content import Catalogue, load_catalogue
from famfeeds.errors import ContentError, FamfeedsError, Problem
from famfeeds.issues import plan_issues
from famfeeds.models import normalise_base_url
from famfeeds.schedule import Schedule, build_schedule
from famfeeds.state import LOCK_NAME, Lock, load_lock
from famfeeds.writer import WriteReport, write_output

if TYPE_CHECKING:
    from famfeeds.newsletter import RenderedIssue


@dataclass(frozen=True)
class Build:
    """A rendered build, before it is written."""

    catalogue: Catalogue
    schedule: Schedule
    as_of: date
    files: dict[str, bytes]
    warnings: tuple[Problem, ...]
    lock: Lock
    """The calendar's published state after this build; saved once the output is written."""
    rendered: dict[str, str]
    """Newly rendered newsletter issues, for the cache."""
    letters: list[RenderedIssue]
    """The published newsletter issues, still holding their personalisation markers."""
    cache: IssueCache


def reference_date(
    zone: ZoneInfo, as_of: date | None = None, environ: dict[str, str] | None = None
) -> date:
    """The build's reference date: ``as_of``, else SOURCE_DATE_EPOCH, else today, in ``zone``."""
    if as_of is not None:
        return as_of
    env = os.environ if environ is None else environ
    epoch = env.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            instant = datetime.fromtimestamp(int(epoch), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise FamfeedsError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a count of seconds since 1970-01-01"
            ) from None
        return instant.astimezone(zone).date()
    return datetime.now(tz=zone).date()


def lock_path(content: Path) -> Path:
    """famfeeds.lock lives beside the content folder, at the project's root."""
    return content.absolute().parent / LOCK_NAME


def check(content: Path, base_url: str | None = None) -> tuple[Catalogue, Schedule]:
    """Load, validate and schedule; ContentError lists every problem.

    The schedule's warnings include newsletter notes that match no issue.

    ``base_url`` replaces show.toml's, e.g. to build a staging copy of the site.
    """
    catalogue = load_catalogue(content)
    if base_url is not None:
        try:
            url = normalise_base_url(base_url)
        except ValueError as exc:
            raise FamfeedsError(f"--base-url {base_url}: {exc}") from None
        show = catalogue.show.model_copy(update={"base_url": url})
        catalogue = replace(catalogue, show=show)
    schedule = build_schedule(catalogue)
    _, note_warnings = plan_issues(catalogue, schedule)
    if note_warnings:
        schedule = replace(schedule, warnings=schedule.warnings + tuple(note_warnings))
    return catalogue, schedule


def render(
    content: Path,
    templates: Path | None,
    as_of: date | None = None,
    strict: bool = False,
    base_url: str | None = None,
) -> Build:
    """Everything a build writes, in memory: nothing touches output/ here."""
    from famfeeds.calendar import render_calendars
    from famfeeds.feeds import render_feeds
    from famfeeds.site import render_site
    from famfeeds.templating import environment

    catalogue, schedule = check(content, base_url)
    if strict and schedule.warnings:
        raise ContentError(schedule.warnings, warnings_as_errors=True)
    day = reference_date(catalogue.show.zone, as_of)
    from jinja2 import TemplateError, TemplateSyntaxError

    env = environment(templates)
    files: dict[str, bytes] = {}
    files.update(render_feeds(catalogue.show, schedule, day))
    calendars, lock = render_calendars(catalogue.show, schedule, load_lock(lock_path(content)), day)
    files.update(calendars)
    cache = IssueCache(content.absolute().parent / CACHE_DIR)
    rendered: dict[str, str] = {}
    letters: list[RenderedIssue] = []
    latest: date | None = None
    try:
        if catalogue.show.newsletter is not None:
            from famfeeds.newsletter import render_newsletter

            issues, _ = plan_issues(catalogue, schedule)
            newsletter_files, rendered, letters = render_newsletter(issues, day, env, cache)
            files.update(newsletter_files)
            latest = letters[-1].issue.day if letters else None
        files.update(render_site(catalogue, schedule, day, env, latest))
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise FamfeedsError(f"{where}: template syntax error: {exc.message}") from None
    except TemplateError as exc:
        raise FamfeedsError(f"template error: {exc}") from None
    return Build(catalogue, schedule, day, files, schedule.warnings, lock, rendered, letters, cache)


def build(
    content: Path,
    output: Path,
    templates: Path | None,
    as_of: date | None = None,
    strict: bool = False,
    base_url: str | None = None,
) -> tuple[Build, WriteReport]:
    """Render everything, then swap it into ``output``."""
    result = render(content, templates, as_of, strict, base_url)
    report = write_output(result.files, output)
    if base_url is None:  # a build at another address must not rewrite the published history
        result.lock.save()
    result.cache.update(result.rendered)
    return result, report
