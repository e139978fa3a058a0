"""The build: plan, render every output in memory, then write them in one step.

The renderers are pure; this module does what they may not: it reads the clock (for the
default reference date), the calendar's lock file and the issue cache, and writes output/,
the lock and the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, overload
from zoneinfo import ZoneInfo

from famfeeds.build.inplace import index_path, record_index, update_in_place
from famfeeds.build.issue_cache import IssueCache
from famfeeds.build.load import plan
from famfeeds.build.lockfile import CalendarLock, load_lock
from famfeeds.build.project import Project, private_folder, shipped_templates, template_environment
from famfeeds.build.record_cache import save_deferred
from famfeeds.build.speed import render_encoded
from famfeeds.build.writer import (
    Guarded,
    WriteReport,
    hold,
    output_folder,
    resolve_output,
    write_output,
)
from famfeeds.errors import ContentError, FamfeedsError, Problem
from famfeeds.plan.issues import Issue, Plan
from famfeeds.plan.schedule import Schedule
from famfeeds.render.files import FileSet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jinja2 import Environment

    from famfeeds.build.evaluate import Fingerprints
    from famfeeds.build.issue_cache import DamagedEntry
    from famfeeds.render.context import RenderContext, Renderer
    from famfeeds.render.personal import Letter


E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True)
class BuildRequest:
    """What a build is asked for: where from and to, as of when, and how to write.

    The lock is saved only for a build at the published address (``base_url`` None and
    ``save_lock``): a preview or staging build must not rewrite the published history.
    ``overwrite``, ``wait``, ``waiting`` and ``sync`` are the writer's (famfeeds.build.writer).
    """

    content: Path
    output: Path
    templates: Path | None = None
    as_of: date | None = None
    """The reference date; None: SOURCE_DATE_EPOCH, else today (:func:`reference_date`)."""
    strict: bool = False
    """Warnings stop the build too."""
    base_url: str | None = None
    """Build for another address than show.toml's (a preview, a staging copy)."""
    save_lock: bool = True
    overwrite: bool = False
    wait: float | None = None
    waiting: Callable[[str], None] | None = None
    sync: bool = True


@dataclass(frozen=True)
class Build:
    """A rendered build, before it is written."""

    plan: Plan
    as_of: date
    files: Mapping[str, bytes]
    """By name under output/ (a FileSet: stored newsletter files are read when used)."""
    warnings: tuple[Problem, ...]
    lock: CalendarLock
    """The calendar's published state after this build; saved once the output is written."""
    letters: Sequence[Letter]
    """The published newsletter issues, still holding their personalisation markers
    (rendered or read from the issue cache when first asked for)."""
    cache: IssueCache

    @property
    def schedule(self) -> Schedule:
        """The schedule (shorthand)."""
        return self.plan.schedule


def renderers() -> tuple[Renderer, ...]:
    """Every renderer, in the order their files are merged (a later one never overwrites)."""
    from famfeeds.render import calendar, feeds, newsletter, pages, site

    return (feeds.render, calendar.render, newsletter.render, site.render, pages.render)


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
    """Load, validate and plan; ContentError lists every problem (warnings too, if strict).

    The show's language must have a message catalogue (see famfeeds.build.translations)."""
    from famfeeds.build.translations import load_messages
    from famfeeds.errors import display_path

    result = plan(content, base_url)
    load_messages(
        result.show.language, Project.of(content).locale, display_path(content / "show.toml")
    )
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
    prints: Fingerprints | None = None,
) -> tuple[Letter, ...]:
    """Every issue out by ``as_of`` (or just ``only``), from the cache where its key is
    there, else rendered. An issue's key is the code's, the templates' (``env``) and the
    issue's own fingerprint (``prints``: :func:`fingerprints`); each letter is registered
    there by its key."""
    from famfeeds.build import keys as code_keys

    published = [only] if only is not None else planned.published(as_of)
    if planned.show.newsletter is None or not published:
        return ()
    prints = prints or fingerprints(planned, env)
    base = code_keys.code_digest() + prints.of(env)
    found: list[Letter | None] = []
    keys: list[str] = []
    missing: list[tuple[int, str]] = []
    for issue in published:
        key = hashlib.sha256(f"{base}\0{prints.of(issue)}".encode()).hexdigest()
        letter = cache.get(key, issue)
        if letter is None:
            missing.append((len(found), key))
        found.append(letter)
        keys.append(key)
    if missing:
        indexes = [i for i, _ in missing]
        for (i, key), (header, body) in zip(
            missing, render_encoded(published, indexes, env), strict=True
        ):
            found[i] = cache.put_encoded(key, published[i], header, body)  # kept on disk
    letters = tuple(letter for letter in found if letter is not None)
    for letter, key in zip(letters, keys, strict=True):
        prints.register(letter, "letter:" + key)
    return letters


def fingerprints(planned: Plan, env: Environment) -> Fingerprints:
    """A build's :class:`~famfeeds.build.evaluate.Fingerprints`, with what the loaders
    know registered: the show by its record and its zone's rules, each season by the
    digest its loader took (its episodes by that and their number), the catalogue and the
    plan (made from them alone) by theirs, and the template environment by every template
    and message catalogue it can load."""
    from famfeeds.build.evaluate import Fingerprints
    from famfeeds.records.zones import zone_rules_digest
    from famfeeds.render.i18n import localiser

    prints = Fingerprints()
    catalogue, show = planned.catalogue, planned.show
    shown = show.model_dump_json() + zone_rules_digest(show.timezone)
    prints.register(show, "show:" + _hex(shown))
    seasons = []
    for season in catalogue.seasons:
        digest = catalogue.digest(season)
        seasons.append(digest)
        prints.register(season, "season:" + digest)
        for episode in season.episodes:
            prints.register(episode, f"episode:{digest}/{episode.number}")
    whole = _hex(f"{shown}\0{','.join(seasons)}")
    prints.register(catalogue, "catalogue:" + whole)
    prints.register(planned, "plan:" + whole)
    prints.register(env, "env:" + templates_key_of(env))
    l10n = localiser(env)
    prints.register(l10n, f"l10n:{l10n.tag}:{l10n.messages.digest}")
    return prints


def _hex(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def issue_letter(planned: Plan, issue: Issue, templates: Path | None = None) -> Letter:
    """One issue as a build renders it (from the issue cache where it is there, else
    rendered and kept there): what ``newsletter`` shows and ``send`` mails."""
    project = Project.of(planned.catalogue.root)
    show = planned.show
    env = template_environment(project.templates(templates), show.language, project.locale)
    cache = IssueCache(project.cache)
    (letter,) = render_letters(planned, issue.day, env, cache, only=issue)
    cache.save()
    return letter


def memo_name(base_url: str) -> str:
    """The render memo's file for builds at ``base_url``: a memo keeps one build's worth,
    so the published build and a preview (``serve``, ``--base-url``) keep one each rather
    than pushing each other's out."""
    from famfeeds.build.record_cache import MEMO_CACHE

    digest = hashlib.blake2b(base_url.encode(), digest_size=6).hexdigest()
    stem, _, suffix = MEMO_CACHE.rpartition(".")
    return f"{stem}-{digest}.{suffix}"


def templates_key_of(env: Environment) -> str:
    """A digest of every template ``env`` can load and of its message catalogue."""
    from famfeeds.build.issue_cache import templates_digest
    from famfeeds.render.i18n import localiser

    return templates_digest(env) + localiser(env).messages.digest


def render(
    content: Path,
    *,
    templates: Path | None = None,
    as_of: date | None = None,
    strict: bool = False,
    base_url: str | None = None,
    planned: Plan | None = None,
) -> Build:
    """Everything a build writes, in memory: nothing touches output/ here. The renderers'
    steps, and the whole of their work, go through one evaluator
    (famfeeds.build.evaluate) keyed by what each is given."""
    from jinja2 import TemplateError, TemplateSyntaxError

    from famfeeds.build.evaluate import Evaluator
    from famfeeds.build.record_cache import RenderMemo, save_later
    from famfeeds.render.calendar import publish_events
    from famfeeds.render.context import RenderContext
    from famfeeds.render.i18n import localiser

    project = Project.of(content)
    planned = planned or check(content, base_url=base_url, strict=strict)
    show = planned.show
    day = reference_date(show.zone, as_of)
    lock = load_lock(project.lock)
    env = template_environment(project.templates(templates), show.language, project.locale)
    cache = IssueCache(project.cache)
    files = FileSet()  # names only: stored newsletter files are read when written
    try:
        memo = RenderMemo.open(project.cache / memo_name(show.base_url))  # made before
        save_later(memo.path, memo.save)
        prints = fingerprints(planned, env)
        call = Evaluator(memo, prints)
        previous = lock.of_show(show.slug)
        events = publish_events(show, planned.schedule, previous, day, localiser(env), call)
        letters = LazyLetters(partial(render_letters, planned, day, env, cache, prints=prints))
        prints.register(letters, f"letters:{prints.of(planned)}:{day}:{prints.of(env)}")
        context = RenderContext(planned, day, env, events, letters, call)
        files.add(call(render_files, context))
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise FamfeedsError(f"{where}: template syntax error: {exc.message}") from None
    except TemplateError as exc:
        raise FamfeedsError(f"template error: {exc}") from None
    return Build(
        planned, day, files, planned.warnings, lock.with_show(show.slug, events), letters, cache
    )


def render_files(context: RenderContext) -> FileSet:
    """Every renderer's files, in :func:`renderers` order; a name made twice is an error."""
    files = FileSet()
    for renderer in renderers():
        made = renderer(context)
        for name in made:
            if name in files:
                raise FamfeedsError(f"two outputs want to write {name}")
        files.add(made)
    return files


class LazyLetters(Sequence["Letter"]):
    """The build's newsletter issues, rendered (or taken from the issue cache) when first
    asked for: a build whose files are all known from the memo never needs them."""

    def __init__(self, make: Callable[[], Sequence[Letter]]) -> None:
        self.make = make
        self.made: tuple[Letter, ...] | None = None

    def _letters(self) -> tuple[Letter, ...]:
        if self.made is None:
            self.made = tuple(self.make())
        return self.made

    @overload
    def __getitem__(self, index: int) -> Letter: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Letter]: ...
    def __getitem__(self, index: int | slice) -> Letter | Sequence[Letter]:
        return self._letters()[index]

    def __len__(self) -> int:
        return len(self._letters())

    def __iter__(self) -> Iterator[Letter]:
        return iter(self._letters())


def build(request: BuildRequest) -> tuple[Build, WriteReport]:
    """Validate, render everything, then swap it into ``request.output`` (see
    famfeeds.build.writer for the rules the write keeps: which folders it refuses, the
    user's files, one build at a time).

    Lock and output stay in step across a kill at any moment, because the lock is saved
    *before* the swap, while the output lock of this folder and of the project is held (so
    the lock that is read is the one the last build wrote):

    - killed before the lock is saved: old lock, old output; nothing happened.
    - killed after it, before the swap: the new lock with the old output. The next build
      starts from the new lock, so an event it raised keeps its raised SEQUENCE (content
      unchanged) or rises again (content changed back): what is published only rises.
    - killed after the swap: new lock, new output.

    The other order (swap, then save) can publish SEQUENCE n+1 while the lock keeps n; if
    the change is then undone, the next build publishes n again, and calendars ignore an
    update whose SEQUENCE went down.

    An issue cache entry found damaged while the output is written (its bytes changed in
    place behind famfeeds' back) is deleted and the build runs again, rendering that issue
    afresh, with a warning; nothing is published from a damaged entry.
    """
    from famfeeds.build.evaluate import StaleMemo
    from famfeeds.build.issue_cache import DamagedEntry

    repaired: list[str] = []
    forgot_memo = False
    while True:
        try:
            result, report = _build_once(request)
        except (DamagedEntry, StaleMemo, FamfeedsError) as exc:
            stale = _cause(exc, StaleMemo)
            if stale is not None:
                if forgot_memo:
                    raise FamfeedsError(
                        f"{stale}, twice (was a template or record changed while "
                        "building?): build again"
                    ) from None
                _forget_memos(Project.of(request.content).cache)
                forgot_memo = True
                repaired.append(f"{stale}; rendered everything again without the render memo")
                continue
            damaged = _damaged(exc)
            if damaged is None or len(repaired) >= MAX_REPAIRS:
                raise
            damaged.forget()
            repaired.append(f"{damaged}; rendered that issue again")
            continue
        result.cache.warnings.extend(repaired)
        return result, report


MAX_REPAIRS = 50
"""Damaged issue cache entries one build deletes and renders again before giving up."""


def _damaged(exc: BaseException) -> DamagedEntry | None:
    """The damaged cache entry behind ``exc`` (raised, or wrapped by the writer)."""
    from famfeeds.build.issue_cache import DamagedEntry

    return _cause(exc, DamagedEntry)


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """The exception of ``kind`` behind ``exc`` (raised, or wrapped by the writer)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _forget_memos(cache: Path) -> None:
    """Delete the project's render memos (every address's)."""
    for memo in cache.glob("memo-*.pickle"):
        with contextlib.suppress(OSError):
            memo.unlink()


def _build_once(request: BuildRequest) -> tuple[Build, WriteReport]:
    """:func:`build`, once."""
    content, output, templates = request.content, request.output, request.templates
    base_url, wait, waiting = request.base_url, request.wait, request.waiting
    project = Project.of(content)
    saving = base_url is None and request.save_lock
    guarded = (
        Guarded(project.root, "the project folder (content/'s parent)", inside_ok=True),
        Guarded(project.content, "the content folder"),
        Guarded(project.lock, "famfeeds.lock"),
        Guarded(project.state, "the delivery state folder"),
        Guarded(project.cache, "the issue cache"),
        Guarded(project.templates(templates), "the templates folder"),
        Guarded(shipped_templates(), "famfeeds' own templates"),
    )
    resolve_output(output, guarded)  # a refused output: nothing read, cached or written
    planned = check(content, base_url=base_url, strict=request.strict)  # errors: nothing written
    target = output_folder(output, guarded)
    folders = [target.parent, project.root] if saving else [target.parent]
    with hold(*folders, wait=wait, waiting=waiting):
        result = render(
            content,
            templates=templates,
            as_of=request.as_of,
            strict=request.strict,
            base_url=base_url,
            planned=planned,
        )
        save = (lambda: _save_lock(result.lock, output)) if saving else None
        # A large output is rebuilt in place when it can be (famfeeds.build.inplace); else swapped.
        index = index_path(project.cache, target)
        report = update_in_place(
            result.files,
            target,
            output,
            index,
            overwrite=request.overwrite,
            before_swap=save,
            sync=request.sync,
        )
        if report is None:
            report = write_output(
                result.files,
                target,
                overwrite=request.overwrite,
                guarded=guarded,
                before_swap=save,
                sync=request.sync,
                wait=wait,
                waiting=waiting,
            )
            record_index(result.files, target, index)
    result.cache.save()
    save_deferred()  # the parse caches and the memo, now that the output is written
    if project.cache.is_dir():  # private even when this build had nothing to save there
        with contextlib.suppress(OSError):
            private_folder(project.cache)
    return result, report


def _save_lock(lock: CalendarLock, output: Path) -> None:
    """Save the calendar's lock before the swap; a failure stops the build unpublished."""
    from famfeeds.errors import display_path

    try:
        lock.save()
    except OSError as exc:
        raise FamfeedsError(
            f"cannot save {display_path(lock.path)}: {exc.strerror or exc}. "
            f"Nothing was published; {display_path(output)} is unchanged."
        ) from None
