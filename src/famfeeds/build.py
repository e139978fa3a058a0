"""The build: plan, render every output in memory, then write them in one step.

The renderers are pure; this module does what they may not: it reads the clock (for the
default reference date), the calendar's lock file and the issue cache, and writes output/,
the lock and the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from famfeeds.errors import ContentError, FamfeedsError, Problem
from famfeeds.lockfile import CalendarLock, load_lock
from famfeeds.planning import Issue, Plan, plan
from famfeeds.project import Project, template_environment
from famfeeds.schedule import Schedule
from famfeeds.writer import WriteReport, write_output

if TYPE_CHECKING:
    from jinja2 import Environment

    from famfeeds.issue_cache import IssueCache
    from famfeeds.render.context import Renderer
    from famfeeds.render.personal import Letter


@dataclass(frozen=True)
class Build:
    """A rendered build, before it is written."""

    plan: Plan
    as_of: date
    files: dict[str, bytes]
    warnings: tuple[Problem, ...]
    lock: CalendarLock
    """The calendar's published state after this build; saved once the output is written."""
    letters: tuple[Letter, ...]
    """The published newsletter issues, still holding their personalisation markers."""
    cache: IssueCache

    @property
    def schedule(self) -> Schedule:
        """The schedule (shorthand)."""
        return self.plan.schedule


def renderers() -> tuple[Renderer, ...]:
    """Every renderer, in the order their files are merged (a later one never overwrites)."""
    from famfeeds.render import calendar, feeds, newsletter, site

    return (feeds.render, calendar.render, newsletter.render, site.render)


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


def check(content: Path, *, base_url: str | None = None, strict: bool = False) -> Plan:
    """Load, validate and plan; ContentError lists every problem (warnings too, if strict)."""
    result = plan(content, base_url)
    if strict and result.warnings:
        raise ContentError(result.warnings, warnings_as_errors=True)
    return result


def render_letters(
    planned: Plan,
    as_of: date,
    env: Environment,
    cache: IssueCache,
    *,
    only: Issue | None = None,
) -> tuple[Letter, ...]:
    """Every issue out by ``as_of`` (or just ``only``), from the cache where its key is
    there, else rendered."""
    from famfeeds.issue_cache import IssueKeys, code_digest, templates_digest
    from famfeeds.render.newsletter import inliner, issue_files, render_issue
    from famfeeds.render.personal import Letter

    published = [only] if only is not None else planned.published(as_of)
    if planned.show.newsletter is None or not published:
        return ()
    keys = IssueKeys(code_digest() + templates_digest(env), planned.show.model_dump_json())
    premailer = None
    letters = []
    for issue in published:
        key = keys.issue(issue)
        letter = cache.get(key, issue)
        if letter is None:
            premailer = premailer or inliner(planned.show.base_url)
            item = render_issue(issue, env, premailer)
            letter = Letter(item, issue_files(item))
            cache.put(key, letter)
        letters.append(letter)
    return tuple(letters)


def render(
    content: Path,
    *,
    templates: Path | None = None,
    as_of: date | None = None,
    strict: bool = False,
    base_url: str | None = None,
    planned: Plan | None = None,
) -> Build:
    """Everything a build writes, in memory: nothing touches output/ here."""
    from jinja2 import TemplateError, TemplateSyntaxError

    from famfeeds.issue_cache import IssueCache
    from famfeeds.render.calendar import publish_events
    from famfeeds.render.context import RenderContext

    project = Project.of(content)
    planned = planned or check(content, base_url=base_url, strict=strict)
    show = planned.show
    day = reference_date(show.zone, as_of)
    lock = load_lock(project.lock)
    events = publish_events(show, planned.schedule, lock.of_show(show.slug), day)
    env = template_environment(project.templates(templates))
    cache = IssueCache(project.cache)
    files: dict[str, bytes] = {}
    try:
        letters = render_letters(planned, day, env, cache)
        context = RenderContext(planned, day, env, events, letters)
        for renderer in renderers():
            for name, data in renderer(context).items():
                if name in files:
                    raise FamfeedsError(f"two outputs want to write {name}")
                files[name] = data
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise FamfeedsError(f"{where}: template syntax error: {exc.message}") from None
    except TemplateError as exc:
        raise FamfeedsError(f"template error: {exc}") from None
    return Build(
        planned, day, files, planned.warnings, lock.with_show(show.slug, events), letters, cache
    )


def build(
    content: Path,
    output: Path,
    *,
    templates: Path | None = None,
    as_of: date | None = None,
    strict: bool = False,
    base_url: str | None = None,
    save_lock: bool = True,
) -> tuple[Build, WriteReport]:
    """Render everything, then swap it into ``output``.

    The lock is saved only for a build at the published address (``base_url`` None and
    ``save_lock``): a preview or staging build must not rewrite the published history.
    """
    result = render(content, templates=templates, as_of=as_of, strict=strict, base_url=base_url)
    report = write_output(result.files, output)
    if base_url is None and save_lock:
        result.lock.save()
    result.cache.save()
    return result, report
