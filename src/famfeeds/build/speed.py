"""The speed tricks, all in one place, each with the reason it was measured for.

- :func:`collection_paused` and :func:`fewer_collections`: the garbage collector walks the
  hundreds of thousands of long-lived objects a large catalogue makes (a third of planning,
  15% of a rebuild of 10,000 episodes) unless told not to.
- :func:`render_encoded`: newsletter issues shared out between forked processes, one per
  CPU, once there are enough of them to pay for the fork.
- :func:`exit_now`: a one-shot command ends without tearing the interpreter down.

Nothing else in famfeeds tunes the interpreter; the plan's frozen-dataclass shortcut is
in famfeeds.plan.schedule (``fast_new``), used by the schedule and the issues.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

    from famfeeds.plan.issues import Issue


@contextlib.contextmanager
def collection_paused(*, freeze: bool = False) -> Iterator[None]:
    """Run the block with Python's cyclic garbage collector paused, then count what it made
    as old: it runs as before once the block ends (a caller that paused it keeps it paused).

    Loading a catalogue makes a few hundred thousand objects that all live on, none of them
    in a reference cycle: every collection their allocation triggers walks them all again
    (on 10,000 episodes, a third of planning), and so would the first one after the block,
    over everything the block made. Instead they join the oldest generation untouched
    (``gc.freeze`` then ``gc.unfreeze``, when nothing else is frozen): still collected, at
    the next full collection, if they ever form garbage cycles.

    ``freeze`` keeps them frozen (:func:`gc.freeze`) for the rest of the process, out of
    every later collection too: for a one-shot process such as ``famfeeds build``, not a
    long-running one (``serve``), where garbage cycles alive at that moment would never be
    collected. Reference counting frees frozen objects all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if freeze:
            gc.freeze()
        elif enabled and not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
    finally:
        if enabled:
            gc.enable()


COLLECT_AFTER = (50_000, 20, 100)
"""The garbage collector's thresholds during a build (Python's are 700, 10, 10)."""


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Let the garbage collector run less often meanwhile: a build of a large catalogue
    makes hundreds of thousands of objects that live until it ends, and the default
    thresholds would walk them again and again (about 15% of a rebuild of 10,000
    episodes). Unreachable cycles are still collected, a little later."""
    before = gc.get_threshold()
    gc.set_threshold(*COLLECT_AFTER)
    try:
        yield
    finally:
        gc.set_threshold(*before)


PARALLEL_FROM = 64
"""Issues to render from which a second process pays for itself."""
_JOB: tuple[list[Issue], Environment] | None = None
"""What forked workers render from (inherited, not pickled)."""


def render_encoded(
    issues: list[Issue], indexes: list[int], env: Environment
) -> list[tuple[bytes, bytes]]:
    """Render ``issues[i]`` for each of ``indexes``, encoded for the issue cache
    (famfeeds.build.issue_cache.encode), in order. Many issues are shared out between processes
    (one per CPU, forked: each inherits the plan and the templates), when this process may
    fork: no other thread runs; otherwise, or if a worker fails, here, one by one."""
    import threading

    workers = min(cpu_count(), len(indexes) // PARALLEL_FROM)
    if workers > 1 and threading.active_count() == 1 and "fork" in _start_methods():
        import multiprocessing

        global _JOB
        _JOB = (issues, env)
        size = -(-len(indexes) // (workers * 4))
        chunks = [indexes[i : i + size] for i in range(0, len(indexes), size)]
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                return [entry for part in pool.map(_render_chunk, chunks) for entry in part]
        except Exception:  # rendered again below, one by one, where errors are reported
            pass
        finally:
            _JOB = None
    _JOB = (issues, env)
    try:
        return _render_chunk(indexes)
    finally:
        _JOB = None


def cpu_count() -> int:
    """The CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _render_chunk(indexes: list[int]) -> list[tuple[bytes, bytes]]:
    """Render and encode the issues of :data:`_JOB` at ``indexes``."""
    from famfeeds.build.issue_cache import encode
    from famfeeds.render.newsletter import inliner, issue_files, render_issue
    from famfeeds.render.personal import Letter

    assert _JOB is not None
    issues, env = _JOB
    premailer = inliner(issues[indexes[0]].show.base_url)
    out = []
    for i in indexes:
        item = render_issue(issues[i], env, premailer)
        out.append(encode(Letter(item, issue_files(item))))
    return out


def exit_now(code: object) -> None:
    """End the process with ``code`` without tearing the interpreter down (output flushed
    first, as mypy does): freeing a large catalogue's objects one by one takes longer
    than the rest of a no-change rebuild. Only when no other thread runs (else as
    ``sys.exit``); every file famfeeds writes is closed (and synced) by then."""
    import threading

    if threading.active_count() > 1:
        sys.exit(code)  # type: ignore[arg-type]
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: exit as Python would
        code = code or 120
    os._exit(code)
