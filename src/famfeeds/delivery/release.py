"""The release minute: ``famfeeds run`` acts at each moment a show's outputs change.

At each moment of the plan (:mod:`famfeeds.plan.moments`), at start, at the start of each
day in the show's zone (the page says which day its schedule is as of), and when content/
or the templates change, one *tick* does, in this order, each step only after the one before
it succeeded:

1. **build** as of the moment's day in the show's zone (the normal build: nothing is
   written unless all of it succeeds);
2. **publish**: the ``[publish]`` command, when output/ differs from what it last published
   (no command: the output folder is the site);
3. **hubs**: a WebSub ping for each feed that changed since the hubs were last told (a hub
   that refuses is logged and asked again at the next tick; readers that poll still see
   the feed, so a hub never holds the mail back);
4. **send** each newsletter issue that is out and not older than ``max_age`` to the
   subscribers due by now (each at their own delivery time); the ledger keeps it once each.

What was done, and when, is kept per show in ``run.sqlite3`` beside the ledger. Every step
is safe to repeat, so a run killed at any point redoes its unfinished steps when it starts
again: a build writes the same bytes, a publish and a hub ping may run a second time, mail
never goes twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from famfeeds.build.project import Project, private_file, private_folder
from famfeeds.delivery.sqlite import immediate
from famfeeds.errors import ContentError, FamfeedsError, display_path

if TYPE_CHECKING:
    from famfeeds.delivery.engine import SendOptions
    from famfeeds.plan.issues import Plan
    from famfeeds.plan.moments import Moment

STATE_NAME = "run.sqlite3"
SLACK = timedelta(minutes=2)
"""A moment acted on later than this is reported as caught up."""
RETRY = timedelta(minutes=1)
"""The first wait before a failed build or publish is tried again; doubled each time."""
RETRY_LIMIT = timedelta(minutes=30)
KEEP = timedelta(days=366)
"""Steps older than this are dropped from the run state."""
HUB_TIMEOUT = 10.0
HUB_ATTEMPTS = 2
"""A hub gets this long to answer, this many times, at each tick (all hubs at once)."""
LOG_LIMIT = 2_000
"""Characters of a publish command's output kept in the log and the state."""


class Clock(Protocol):
    """Where ``run`` reads the time, and how it waits."""

    def now(self) -> datetime:
        """The current instant (aware)."""
        ...

    def sleep(self, until: datetime, wake: threading.Event) -> None:
        """Return at ``until`` or as soon as ``wake`` is set, whichever is first."""
        ...


class SystemClock:
    """The machine's clock. Long waits are taken in slices of a minute at most, so a clock
    set forward (NTP, a suspended laptop waking up) is noticed within a minute."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, until: datetime, wake: threading.Event) -> None:
        while not wake.is_set():
            left = (until - self.now()).total_seconds()
            if left <= 0:
                return
            wake.wait(min(left, 60.0))


class FileClock:
    """A clock read from a file holding one ISO 8601 instant (``--clock-file``): for
    rehearsing a season against a test mail server, and for tests. The file is read again
    every tenth of a second while waiting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last: datetime | None = None

    def now(self) -> datetime:
        """The file's moment; a file caught half-rewritten gives the last good one (a
        file that never held one is an error)."""
        try:
            self.last = self._read()
        except FamfeedsError:
            if self.last is None:
                raise
        return self.last

    def _read(self) -> datetime:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
            moment = datetime.fromisoformat(text)
        except (OSError, ValueError) as exc:
            raise FamfeedsError(
                f"--clock-file {display_path(self.path)}: cannot read an ISO 8601 date and "
                f"time with an offset from it ({exc})"
            ) from None
        if moment.tzinfo is None:
            raise FamfeedsError(
                f"--clock-file {display_path(self.path)}: {text!r} has no UTC offset; write "
                "e.g. 2023-11-10T08:00:00+00:00"
            )
        return moment

    def sleep(self, until: datetime, wake: threading.Event) -> None:
        while not wake.is_set() and self.now() < until:
            wake.wait(0.1)


# -- the state -------------------------------------------------------------------------------


class RunState:
    """What ``run`` did for one show: the steps done at each moment, and the marks it
    compares with (what output/ held when last published, the feeds the hubs were told
    about). One SQLite file, each change a commit of its own (it survives SIGKILL)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS steps (
        show TEXT NOT NULL,
        moment TEXT NOT NULL,
        step TEXT NOT NULL,
        at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (show, moment, step)
    );
    CREATE TABLE IF NOT EXISTS marks (
        show TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (show, name)
    );
    """

    def __init__(self, path: Path, show: str) -> None:
        self.path, self.show = path, show
        try:
            private_folder(path.parent)
            private_file(path)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL").fetchone()
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(self.SCHEMA)
            newest = self.db.execute("SELECT max(at) FROM steps").fetchone()[0]
            if newest:  # a year of steps before the newest is plenty for status
                cutoff = datetime.fromisoformat(newest.replace("Z", "+00:00")) - KEEP
                with immediate(self.db) as db:
                    db.execute("DELETE FROM steps WHERE at < ?", (_stamp(cutoff),))
        except PermissionError as exc:
            raise FamfeedsError(state_trouble(path.parent, exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise FamfeedsError(
                f"{display_path(path)}: cannot open the run state ({exc})"
            ) from None

    def record(self, moment: str, step: str, at: datetime, ok: bool, detail: str = "") -> None:
        """Note that ``step`` of ``moment`` was done (or failed) at ``at``."""
        with immediate(self.db) as db:
            db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?)",
                (self.show, moment, step, _stamp(at), int(ok), detail),
            )

    def done(self, moment: str, step: str) -> bool:
        """True when ``step`` of ``moment`` succeeded."""
        row = self.db.execute(
            "SELECT ok FROM steps WHERE show = ? AND moment = ? AND step = ?",
            (self.show, moment, step),
        ).fetchone()
        return bool(row and row[0])

    def steps(self, limit: int = 40) -> list[dict[str, Any]]:
        """The latest steps, newest first."""
        rows = self.db.execute(
            "SELECT moment, step, at, ok, detail FROM steps WHERE show = ? "
            "ORDER BY at DESC, rowid DESC LIMIT ?",
            (self.show, limit),
        ).fetchall()
        return [
            {"moment": m, "step": s, "at": a, "ok": bool(o), "detail": d} for m, s, a, o, d in rows
        ]

    def mark(self, name: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM marks WHERE show = ? AND name = ?", (self.show, name)
        ).fetchone()
        return row[0] if row else None

    def set_mark(self, name: str, value: str) -> None:
        with immediate(self.db) as db:
            db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?, ?)", (self.show, name, value))

    def close(self) -> None:
        self.db.close()


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_trouble(folder: Path, exc: OSError) -> str:
    """Why the state folder cannot be used, and what to do, in words."""
    import pwd

    who = pwd.getpwuid(os.getuid()).pw_name
    owner = ""
    with contextlib.suppress(OSError, KeyError):
        owner = f" (it belongs to {pwd.getpwuid(folder.stat().st_uid).pw_name})"
    return (
        f"{display_path(folder)}{owner} cannot be used by {who}: {exc.strerror or exc}. "
        "famfeeds run keeps its state, the ledger and the subscriber store there: run it as "
        "the folder's owner, or give the folder to this user (chown -R)"
    )


def state_path(project: Project) -> Path:
    """The run state of a project: beside the ledger."""
    return project.state / STATE_NAME


# -- the steps -------------------------------------------------------------------------------


def tree_digest(folder: Path) -> str:
    """A digest of every file under ``folder`` (names and bytes): what a publish sends."""
    digest = hashlib.blake2b(digest_size=16)
    if not folder.is_dir():
        return ""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        name = path.relative_to(folder).as_posix()
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class Published:
    """What the publish command did."""

    ok: bool
    summary: str
    output: str


def run_publish(command: str, output: Path, timeout: float) -> Published:
    """Run the ``[publish]`` command with /bin/sh in the current folder, FAMFEEDS_OUTPUT set
    to the output folder, in a process group of its own: at ``timeout`` the whole group is
    stopped (TERM, then KILL), so no rsync or ssh is left running. Of its output (stdout and
    stderr together) the last :data:`LOG_LIMIT` characters are kept, read as it comes."""
    from collections import deque

    env = dict(os.environ, FAMFEEDS_OUTPUT=str(output.resolve()))
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Published(False, f"could not start /bin/sh: {exc}", "")
    tail: deque[bytes] = deque()
    size = [0, 0]  # bytes read, bytes kept

    def read() -> None:
        assert process.stdout is not None
        stream = process.stdout
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            size[0] += len(chunk)
            tail.append(chunk)
            size[1] += len(chunk)
            while size[1] - len(tail[0]) > 4 * LOG_LIMIT:
                size[1] -= len(tail.popleft())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        return _finish(process, reader, tail, size, timeout)
    finally:
        if process.stdout is not None:
            process.stdout.close()


def _finish(
    process: subprocess.Popen[bytes],
    reader: threading.Thread,
    tail: Any,
    size: list[int],
    timeout: float,
) -> Published:
    """Wait for the publish command (stopping its group at ``timeout``) and say how it went."""
    import signal

    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop_group(process, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            _stop_group(process, signal.SIGKILL)
            process.wait()
        reader.join(5)
        return Published(
            False, f"stopped after {timeout:g} s (the [publish] timeout)", _text(b"".join(tail))
        )
    reader.join(5)
    text = _text(b"".join(tail), size[0])
    if code != 0:
        why = f"exit status {code}" if code > 0 else "killed by a signal"
        return Published(False, why, text)
    return Published(True, "exit status 0", text)


def _stop_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _text(raw: bytes, total: int | None = None) -> str:
    """A command's output as log text: control characters replaced, the end kept; output
    that is mostly not text is described instead of shown."""
    text = raw.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text).strip()
    if text and text.count("\ufffd") > len(text) // 4:
        return f"({total if total is not None else len(raw):,} bytes of output that is not text)"
    return text[-LOG_LIMIT:]


# -- one tick --------------------------------------------------------------------------------


@dataclass
class RunOptions:
    """How ``run`` runs."""

    content: Path
    output: Path
    templates: Path | None
    send: SendOptions
    clock: Clock
    log: Callable[[str], None]
    max_age: timedelta = timedelta(days=7)
    smtp_url: str | None = None


@dataclass
class Tick:
    """What one tick did, and when the next is due."""

    ok: bool = True
    wake: datetime | None = None
    """The next instant something is due (None: only a change to the content)."""
    acted: list[str] = field(default_factory=list)


class Runner:
    """The state between ticks of one ``run`` process."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.project = Project.of(options.content)
        self.started = False
        self.changed = True
        """Content or templates changed since the last build (true at start)."""
        self.failures = 0
        self.label = ""
        """The name of the last build (a moment's key, or start, edit or day and a time)."""
        self.day: date | None = None
        """The day (in the show's zone) output/ was last built as of."""
        self.hub_failures = 0
        self.hubs_again: datetime | None = None
        """While hubs fail: not before this moment again."""

    def log(self, line: str) -> None:
        self.options.log(line)

    def tick(self) -> Tick:
        """Do everything due now (see the module's docstring)."""
        from famfeeds.build.pipeline import check
        from famfeeds.plan.moments import due, moments

        now = self.options.clock.now()
        try:
            planned = check(self.options.content)
        except ContentError as exc:
            self.log(
                f"the content has errors; nothing was built, published or sent until they are "
                f"fixed (saving a file under content/ tries again):\n{exc.message}"
            )
            self.changed = False
            return Tick(ok=False, wake=now + RETRY_LIMIT)
        show = planned.show
        found = moments(planned)
        state = RunState(state_path(self.project), show.slug)
        try:
            last = state.mark("moment")
            after = datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None
            passed = due(found, after, now)
            missed = [m for m in passed if now - m.at > SLACK]
            if after is not None and missed:
                self.log(
                    f"catching up {len(missed)} moment(s) that passed since the last run "
                    f"({', '.join(self._when(m.at, planned) for m in missed)})"
                )
            tick = Tick()
            today = now.astimezone(show.zone).date()
            building = (
                bool(passed)
                or self.changed
                or not self.started
                or build_day(planned, now) != self.day
            )
            if building and not self._build(planned, passed, now, state, tick):
                return self._failed(tick, now)
            self.started = True
            if not self._publish(planned, now, state, tick):
                return self._failed(tick, now)
            self.failures = 0
            self._hubs(planned, now, state, tick)
            self._send(planned, found, now, state, tick)
            later = [m.at for m in found if m.at > now]
            if later:
                tick.wake = _sooner(tick.wake, min(later))
                # The page says "as of" its day: a new day is a new build (no mail).
                tick.wake = _sooner(tick.wake, show.midnight(today + timedelta(days=1)))
            return tick
        finally:
            state.close()

    def _failed(self, tick: Tick, now: datetime) -> Tick:
        self.failures += 1
        wait = min(RETRY * 2 ** (self.failures - 1), RETRY_LIMIT)
        tick.ok = False
        tick.wake = now + wait
        self.log(f"trying again in {_duration(wait)}")
        return tick

    def _when(self, moment: datetime, planned: Plan) -> str:
        from famfeeds.plan.issues import describe_moment

        return describe_moment(moment, planned.show.zone)

    def _why(self, passed: list[Moment], now: datetime) -> tuple[str, str]:
        """The name a build is recorded under, and why it is made, in words."""
        if passed:
            return passed[-1].key, "; ".join(r for m in passed for r in m.reasons)
        if not self.started:
            return f"start {_stamp(now)}", "started"
        if self.changed:
            return f"edit {_stamp(now)}", "the content changed"
        return f"day {_stamp(now)}", "a new day"

    def _build(
        self, planned: Plan, passed: list[Moment], now: datetime, state: RunState, tick: Tick
    ) -> bool:
        from famfeeds.build.pipeline import BuildRequest, build
        from famfeeds.build.speed import fewer_collections

        as_of = build_day(planned, now)
        label, why = self._why(passed, now)
        self.label = label
        self.changed = False  # a change from here on is seen by the next tick
        try:
            with fewer_collections():
                result, report = build(
                    BuildRequest(
                        self.options.content,
                        self.options.output,
                        templates=self.options.templates,
                        as_of=as_of,
                    )
                )
        except FamfeedsError as exc:
            self.log(f"build as of {as_of} failed ({why}); nothing was written:\n{exc.message}")
            state.record(label, "build", now, False, exc.message[:LOG_LIMIT])
            return False
        released = result.schedule.released_count(result.as_of)
        detail = f"as of {as_of}: {released} of {len(result.schedule.releases)} episodes released"
        self.log(f"built {display_path(self.options.output)}/ {detail} ({why})")
        for warning in (*result.warnings, *result.cache.warnings, *report.warnings):
            self.log(f"warning: {warning}")
        self.day = as_of
        for moment in passed:
            state.record(moment.key, "build", now, True, detail)
        if not passed:
            state.record(label, "build", now, True, detail)
        if passed:
            state.set_mark("moment", passed[-1].key)
        tick.acted.append("build")
        return True

    def _publish(self, planned: Plan, now: datetime, state: RunState, tick: Tick) -> bool:
        settings = planned.show.publish
        # What was published: the output's bytes and the command (a new destination is a
        # new publish, even of the same files).
        command = settings.command if settings is not None else ""
        digest = (
            tree_digest(self.options.output) + ":" + hashlib.sha256(command.encode()).hexdigest()
        )
        if digest == state.mark("published"):
            return True
        label = self.label
        if settings is None:
            state.record(label, "publish", now, True, "no [publish] command: output/ is the site")
        else:
            self.log(f"publishing: {settings.command}")
            done = run_publish(settings.command, self.options.output, settings.timeout)
            for line in done.output.splitlines()[-20:]:
                self.log(f"  | {line}")
            state.record(label, "publish", now, done.ok, f"{done.summary}\n{done.output}".strip())
            if not done.ok:
                self.log(
                    f"publish failed ({done.summary}): the hubs are not told and no mail is "
                    "sent until it succeeds"
                )
                return False
            self.log(f"published ({done.summary})")
        state.set_mark("published", digest)
        tick.acted.append("publish")
        return True

    def _hubs(self, planned: Plan, now: datetime, state: RunState, tick: Tick) -> None:
        """Ping every hub about every changed feed, all at once (a hub that hangs costs one
        time-out, not one per feed), never more than once per back-off while they fail."""
        from concurrent.futures import ThreadPoolExecutor

        from famfeeds.delivery.websub import changed_topics, ping_one

        hubs = planned.show.feeds.hubs
        if not hubs or (self.hubs_again is not None and now < self.hubs_again):
            return
        told = json.loads(state.mark("hubs") or "{}")
        current, changed = changed_topics(planned.show, self.options.output, told)
        if not changed:
            return
        pairs = [(hub, topic) for hub in hubs for topic in changed]
        with ThreadPoolExecutor(max_workers=min(len(pairs), 16)) as pool:
            results = list(
                pool.map(
                    lambda pair: ping_one(
                        *pair, timeout=HUB_TIMEOUT, attempts=HUB_ATTEMPTS, log=self.log
                    ),
                    pairs,
                )
            )
        # A hub that failed (5xx, no answer) is asked again later; one that refused (4xx)
        # will refuse again: that feed counts as told until it changes.
        failed = {r.topic for r in results if r.outcome == "failed"}
        for topic in changed:
            if topic not in failed:
                told[topic] = current[topic]
        state.set_mark("hubs", json.dumps(told, sort_keys=True))
        accepted = sum(1 for r in results if r.ok)
        detail = (
            f"{accepted} of {len(results)} pings accepted ({_count(len(changed), 'feed')}, "
            f"{_count(len(hubs), 'hub')})"
        )
        state.record(f"hubs {_stamp(now)}", "hubs", now, accepted == len(results), detail)
        self.log(f"hubs told: {detail}")
        if accepted < len(results):
            tick.ok = False
        if failed:
            self.hub_failures += 1
            wait = min(RETRY * 2 ** (self.hub_failures - 1), RETRY_LIMIT)
            self.hubs_again = now + wait
            self.log(f"asking the hubs again in {_duration(wait)}")
            tick.wake = _sooner(tick.wake, self.hubs_again)
        else:
            self.hub_failures, self.hubs_again = 0, None
        tick.acted.append("hubs")

    def _send(
        self, planned: Plan, found: list[Moment], now: datetime, state: RunState, tick: Tick
    ) -> None:
        from famfeeds.delivery.campaign import Campaign

        if planned.show.newsletter is None:
            return
        if not self.project.store.exists():
            if not state.done("subscribers", "none yet"):
                self.log(
                    "no subscriber store yet: issues go out once someone subscribes (famfeeds "
                    "subscriptions, or famfeeds subscribers add/import)"
                )
                state.record("subscribers", "none yet", now, True, "no subscriber store")
            return
        for issue in planned.issues:
            out = issue.released_at
            if out > now:
                continue
            if now - out > self.options.max_age:
                key = f"issue {issue.slug}"
                if not state.done(key, "too old"):
                    self.log(
                        f"the issue {issue.slug} came out {self._when(out, planned)}, more "
                        f"than --max-age ({_duration(self.options.max_age)}) ago: nobody who "
                        "has not had it yet is sent it now"
                    )
                    state.record(key, "too old", now, True, "older than --max-age")
                continue
            campaign = Campaign(
                self.options.content,
                self.options.templates,
                issue.slug,
                None,
                self.options.smtp_url,
                now=now,
                max_age=self.options.max_age,
            )
            try:
                report = campaign.send(self.options.send, confirm=lambda question: True)
            except FamfeedsError as exc:
                self.log(f"issue {issue.slug}: not sent: {exc.message}")
                state.record(f"issue {issue.slug}", f"send {_stamp(now)}", now, False, exc.message)
                tick.ok = False
                tick.wake = _sooner(tick.wake, now + RETRY_LIMIT)
                continue
            counts = report.as_json()["counts"]
            later = campaign.next_due()
            if later is not None:
                tick.wake = _sooner(tick.wake, later)
            if report.plan.todo or report.outcome.sent or report.outcome.stopped:
                detail = (
                    f"{counts['sent']} sent, {counts['deferred']} deferred, "
                    f"{counts['failed']} failed, {counts['uncertain']} uncertain"
                    + (f"; next group due {self._when(later, planned)}" if later else "")
                )
                self.log(f"issue {issue.slug}: {detail}")
                if report.outcome.stopped:
                    detail += f"; stopped early: {report.outcome.stopped}"
                    self.log(f"issue {issue.slug}: stopped early: {report.outcome.stopped}")
                for note in report.notes:
                    self.log(f"issue {issue.slug}: {note}")
                state.record(
                    f"issue {issue.slug}", f"send {_stamp(now)}", now, report.exit_code == 0, detail
                )
                tick.acted.append(f"send {issue.slug}")
            elif report.waiting:
                self.log(f"issue {issue.slug}: {report.waiting}")
            if report.exit_code != 0:
                tick.ok = False
                retry = timedelta(seconds=max(self.options.send.retry_wait, 60))
                tick.wake = _sooner(tick.wake, now + retry)


def build_day(planned: Plan, now: datetime) -> date:
    """The day a build at ``now`` is made as of: today in the show's zone, or yesterday
    while an episode of today with a time of day is still to come (a build is as of a day,
    and would list it from the start of its day; so it waits for its minute)."""
    today = now.astimezone(planned.show.zone).date()
    for release in planned.schedule.releases:
        if release.day == today and not release.cancelled and release.instant > now:
            return today - timedelta(days=1)
    return today


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _sooner(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _duration(span: timedelta) -> str:
    """A span in words: "1 minute", "4 minutes", "2 hours", "7 days"."""
    seconds = round(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if (seconds >= size and seconds % size == 0) or (unit == "minute" and seconds >= size):
            count = round(seconds / size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


# -- the process -----------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(project: Project, show: str) -> Iterator[None]:
    """One ``famfeeds run`` per show at a time (an OS lock, released however it ends)."""
    from famfeeds.delivery.ledger import process_lock

    with process_lock(
        project.state / f"run-{show}.lock",
        f"another famfeeds run is running for {show}",
        "Stop it first, or let it do the work",
    ):
        yield


def watch_changes(
    runner: Runner, paths: list[Path], wake: threading.Event, stop: threading.Event
) -> None:
    """Mark the content changed and set ``wake`` whenever a file under ``paths`` changes,
    until ``stop`` is set (run in a thread of its own)."""
    import watchfiles

    existing = [p for p in paths if p.exists()]
    if not existing:
        return
    for _ in watchfiles.watch(*existing, stop_event=stop, debounce=400, raise_interrupt=False):
        runner.changed = True
        wake.set()


def run_forever(
    runner: Runner, stop: threading.Event, wake: threading.Event, *, once: bool = False
) -> int:
    """Tick, then sleep until the next moment, a change to the content or templates, or
    ``stop`` (whoever sets ``stop`` sets ``wake`` too). Exit status: 0; with ``once``, 1
    when the tick failed."""
    options = runner.options
    if once:
        return 0 if runner.tick().ok else 1
    watched = [options.content, runner.project.templates(options.templates)]
    threading.Thread(
        target=watch_changes, args=(runner, watched, wake, stop), name="watch", daemon=True
    ).start()
    troubles = 0
    while not stop.is_set():
        wake.clear()
        try:
            tick = runner.tick()
            troubles = 0
        except FamfeedsError as exc:  # the state folder unwritable, the disk full, ...
            troubles += 1
            tick = Tick(ok=False, wake=options.clock.now() + min(RETRY * 2**troubles, RETRY_LIMIT))
            runner.log(f"error: {exc.message}")
        except Exception as exc:  # a bug: say what, keep the daemon alive, back off
            import traceback

            troubles += 1
            tick = Tick(ok=False, wake=options.clock.now() + min(RETRY * 2**troubles, RETRY_LIMIT))
            where = traceback.extract_tb(exc.__traceback__)[-1]
            runner.log(
                f"unexpected error ({type(exc).__name__}: {exc}, at {Path(where.filename).name}:"
                f"{where.lineno}); trying again later. Please report it."
            )
        if stop.is_set():
            break
        if tick.wake is None:
            runner.log("nothing more is scheduled: waiting for a change to the content")
            until = options.clock.now() + timedelta(days=365)
        else:
            until = tick.wake
            runner.log(f"next: {_stamp(until)}")
        if not runner.changed:
            options.clock.sleep(until, wake)
    return 0


# -- status ----------------------------------------------------------------------------------


def status(content: Path, clock: Clock, count: int = 5) -> dict[str, Any]:
    """What ``famfeeds status`` shows: the next moments, the next delivery of each issue
    out in the last 7 days whose subscribers are not all due yet, and the steps done lately."""
    from famfeeds.build.pipeline import check
    from famfeeds.plan.issues import describe_moment
    from famfeeds.plan.moments import moments, upcoming

    planned = check(content)
    show = planned.show
    now = clock.now()
    project = Project.of(content)
    path = state_path(project)
    try:
        present = path.exists() and bool(path.stat())
    except PermissionError as exc:
        raise FamfeedsError(state_trouble(project.state, exc)) from None
    steps: list[dict[str, Any]] = []
    marks: dict[str, str | None] = {"moment": None, "published": None}
    if present:
        state = RunState(path, show.slug)
        try:
            steps = state.steps()
            marks = {"moment": state.mark("moment"), "published": state.mark("published")}
        finally:
            state.close()
    waiting = []
    if show.newsletter is not None and project.store.exists():
        from famfeeds.delivery.campaign import DEFAULT_MAX_AGE, Campaign

        for issue in planned.issues:
            if not now - DEFAULT_MAX_AGE <= issue.released_at <= now:
                continue
            later = Campaign(content, None, issue.slug, None, None, now=now).next_due()
            if later is not None:
                waiting.append(
                    {
                        "issue": issue.slug,
                        "at": _stamp(later),
                        "local": describe_moment(later, show.zone),
                    }
                )
    return {
        "show": show.slug,
        "now": _stamp(now),
        "deliveries": waiting,
        "next": [
            {
                "at": m.key,
                "local": describe_moment(m.at, show.zone),
                "reasons": list(m.reasons),
                "issues": list(m.issues),
            }
            for m in upcoming(moments(planned), now)[:count]
        ],
        "last_moment": marks["moment"],
        "steps": steps,
        "state": display_path(path) if present else None,
    }
