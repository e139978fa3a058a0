"""Helpers for the build fault tests and bench/faults_build.py: generated projects, real
`famfeeds build` processes killed at random moments, trees compared byte for byte, and
SEQUENCE per UID read back with icalendar."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import icalendar

from support import Project

AS_OF = "2006-06-01"
KILLPOINT = Path(__file__).with_name("killpoint.py")
Tree = dict[str, tuple[str, int, bytes | str]]


def tree(root: Path) -> Tree:
    """Everything under ``root`` (itself included, as "."): kind, mode, bytes or link."""
    found: Tree = {}
    if not root.exists():
        return found
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        name = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", 0, str(path.readlink()))
        elif stat.S_ISDIR(info.st_mode):
            found[name] = ("dir", stat.S_IMODE(info.st_mode), b"")
        elif stat.S_ISREG(info.st_mode):
            found[name] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
        else:
            found[name] = ("special", stat.S_IMODE(info.st_mode), b"")
    return found


def user_tree(root: Path) -> Tree:
    """``tree`` without famfeeds' disposable caches (.famfeeds-cache/, which the README says
    can be deleted at any time, and which loading the content may refresh): what a refused
    build must leave exactly as it was."""
    return {k: v for k, v in tree(root).items() if ".famfeeds-cache" not in k.split("/")}


def make_project(root: Path, seasons: int = 30, per_season: int = 10) -> Project:
    """A show of ``seasons`` x ``per_season`` episodes (weekly seasons from 2001)."""
    project = Project(root)
    project.show()
    for number in range(1, seasons + 1):
        project.season(number=number, premiere=f"{2000 + number}-01-05", episodes=per_season)
    return project


def set_title(project: Project, title: str) -> None:
    """Give season 1's first episode ``title``: a change that raises its SEQUENCE."""
    path = project.content / "season-01/01-episode-1.md"
    text = re.sub(r'(?m)^title = ".*"$', f'title = "{title}"', path.read_text())
    path.write_text(text)


def command(project: Project, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "famfeeds",
        "build",
        "--content",
        str(project.content),
        "--output",
        str(project.output),
        "--as-of",
        AS_OF,
        *extra,
    ]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}


def build(project: Project, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a real `famfeeds build` to completion."""
    return subprocess.run(
        command(project, *extra), capture_output=True, text=True, env=environment(), timeout=300
    )


def sequences(output: Path) -> dict[str, int]:
    """SEQUENCE of every event of the published calendar.ics, by UID."""
    path = output / "calendar.ics"
    if not path.exists():
        return {}
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    return {str(e["UID"]): int(e.get("SEQUENCE", 0)) for e in calendar.walk("VEVENT")}


def lock_text(project: Project) -> str:
    path = project.root / "famfeeds.lock"
    return path.read_text() if path.exists() else ""


def reference(project: Project, scratch: Path, as_of: str = AS_OF) -> tuple[Tree, str]:
    """The tree and lock a complete build of ``project`` would make now, from a copy."""
    from famfeeds.build.pipeline import BuildRequest
    from famfeeds.build.pipeline import build as run_build

    shutil.rmtree(scratch, ignore_errors=True)
    copy = Project(scratch)
    shutil.copytree(project.content, copy.content)
    if (project.root / "famfeeds.lock").exists():
        shutil.copy(project.root / "famfeeds.lock", scratch / "famfeeds.lock")
    if project.output.exists():
        shutil.copytree(project.output, copy.output, symlinks=True)
    run_build(BuildRequest(copy.content, copy.output, as_of=date.fromisoformat(as_of)))
    return tree(copy.output), lock_text(copy)


def leftovers(project: Project) -> list[str]:
    """Staging folders of killed builds beside the output."""
    prefix = f".{project.output.name}.famfeeds-"
    return sorted(p.name for p in project.root.iterdir() if p.name.startswith(prefix))


@dataclass
class Tally:
    """What the kill trials found."""

    trials: int = 0
    output_old: int = 0
    output_new: int = 0
    lock_ahead: int = 0
    """Kills that landed between the lock's save and the swap (new lock, old output)."""
    unchanged_lock: int = 0
    duration: float = 0.0
    """Seconds a whole build took, measured before the trials."""
    violations: list[str] = field(default_factory=list)


def kill_trials(
    project: Project,
    scratch: Path,
    trials: int,
    seed: int,
    log: Callable[[str], None] = lambda text: None,
    spread: tuple[float, float] = (0.0, 1.0),
) -> Tally:
    """Kill real builds at random moments and check what is left after each.

    Each trial changes an episode's title, starts `famfeeds build`, SIGKILLs it after a
    random time drawn from a whole build's duration (``spread``: the range, as fractions
    of it), checks that output/ is exactly the
    old tree or exactly the new one and that the lock is never older than the output,
    then *reverts* the title (the case where a lock behind its output publishes a lower
    SEQUENCE) and builds to completion. SEQUENCE per UID must never go down across
    everything published, and no staging folder may survive a complete build.
    """
    rng = random.Random(seed)
    tally = Tally()
    first = build(project)
    if first.returncode != 0:
        raise AssertionError(first.stdout + first.stderr)
    start = time.perf_counter()
    build(project)
    duration = tally.duration = time.perf_counter() - start
    published = sequences(project.output)
    for trial in range(trials):
        tally.trials += 1
        set_title(project, f"Changed in trial {trial}")
        old_tree, old_lock = tree(project.output), lock_text(project)
        new_tree, new_lock = reference(project, scratch)
        delay = rng.uniform(spread[0] * duration, spread[1] * duration)
        process = subprocess.Popen(
            command(project),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment(),
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        after, lock = tree(project.output), lock_text(project)
        where = f"seed {seed} trial {trial} (killed after {delay:.3f} s)"
        if after == old_tree:
            tally.output_old += 1
        elif after == new_tree:
            tally.output_new += 1
        else:
            tally.violations.append(f"{where}: output/ is neither the old tree nor the new")
        if lock not in (old_lock, new_lock):
            tally.violations.append(f"{where}: famfeeds.lock is neither the old nor the new")
        if after == new_tree and lock == old_lock and new_lock != old_lock:
            tally.violations.append(f"{where}: the new output was published with the old lock")
        if after == old_tree and lock == new_lock and new_lock != old_lock:
            tally.lock_ahead += 1
        if new_lock == old_lock:
            tally.unchanged_lock += 1
        _check_rising(published, sequences(project.output), f"{where}, after the kill", tally)
        set_title(project, "Episode 1")  # revert: the dangerous case for a lagging lock
        done = build(project)
        if done.returncode != 0:
            tally.violations.append(f"{where}: the next build failed: {done.stderr}")
        _check_rising(published, sequences(project.output), f"{where}, next build", tally)
        if leftovers(project):
            tally.violations.append(f"{where}: left behind {leftovers(project)}")
        log(
            f"trial {trial}: killed after {delay:.3f} s; output "
            f"{'old' if after == old_tree else 'new' if after == new_tree else 'MIXED'}, lock "
            f"{'new' if lock == new_lock and lock != old_lock else 'old'}"
        )
    return tally


def _check_rising(published: dict[str, int], now: dict[str, int], where: str, tally: Tally) -> None:
    """Record any UID whose SEQUENCE went down; raise ``published`` to what is seen now."""
    for uid, sequence in now.items():
        if sequence < published.get(uid, 0):
            tally.violations.append(
                f"{where}: {uid} SEQUENCE went from {published[uid]} down to {sequence}"
            )
        published[uid] = max(sequence, published.get(uid, 0))
