"""Time `famfeeds build` as whole processes, in one run, and print the ratios the
performance goals are stated in; run by hand.

    python bench/build.py [--repeat 3] [--seasons 1000] [--keep DIR]

Figures (each the best of --repeat runs, except the daily soap's first build, run once):

- the import floor: a fresh interpreter importing every module that a first build of the
  shipped season loads, famfeeds' own excepted (the libraries famfeeds declares, with the
  parts of them and of the standard library they pull in);
- the shipped season: first build (no output/, no cache, the committed lock), and rebuild
  with nothing changed. The first build is also timed with an empty user cache, so that
  the templates are compiled too (famfeeds keeps compiled templates in the user's cache,
  as Python keeps __pycache__: a machine's very first build pays for compiling them);
- the daily soap: 1,000 seasons of 10 daily episodes (10,000 episode files with long
  synopses, newsletter on: one issue per release day), generated into a temporary folder:
  first build, rebuild with nothing changed, rebuild after editing one synopsis, each also
  as a ratio to the shipped season's rebuild. "Nothing changed" is measured as the shipped
  season's rebuild is, after a build that wrote nothing; it is also given right after a
  build that wrote files (the first build, or an edit), when the writer lists again the
  output folders that build wrote into (famfeeds.inplace: a folder changed by a build is
  not trusted by its stamp); the number of files in output/; the peak RSS
  of the first build (os.wait4's rusage of that child process alone);
- `famfeeds --help` beside `python -c "import click"`.

Every figure comes from a separate process (`python -m famfeeds build`), as a user runs it.
famfeeds' own modules are byte-compiled first, as installing famfeeds with pip does (an
editable install with PYTHONDONTWRITEBYTECODE set would otherwise compile them from source
in every process, about 60 ms here, which no installed copy pays).
Ratios are given on wall time and, in brackets, on CPU time (user + system): on a shared
machine the CPU times vary less from run to run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOADED_MODULES = """
import contextlib, io, sys
from famfeeds.cli import cli
args = ["build", "--content", sys.argv[1], "--output", sys.argv[2], "--as-of", "2024-01-31"]
with contextlib.redirect_stdout(io.StringIO()):
    cli.main(args, prog_name="famfeeds", standalone_mode=False)
print("\\n".join(m for m in sys.modules if not m.startswith(("famfeeds", "__main__"))))
"""
SYNOPSIS = (
    "The crew of the *{n}th* mission wakes to alarms: a [pressure leak](https://example.org/leak) "
    "in the habitat ring, a supply ship running late, and a message from Earth that nobody "
    "wants to answer first. Meanwhile the engineers argue about whether the new drill can "
    "survive another week of dust storms, and the station chief has to decide who goes outside. "
)
SOAP_FIRST_DAY = date(2000, 1, 3)
SOAP_AS_OF = "2030-01-01"
SHIPPED_AS_OF = "2024-01-31"


@dataclass(frozen=True)
class Run:
    """One finished process: wall time, CPU time (user + system) and peak resident memory."""

    seconds: float
    cpu: float
    max_rss_mb: float


def run(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` to completion (``env``: variables set for it); its own rusage
    (os.wait4), not every child's maximum."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **env} if env else None,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    errors = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{errors}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def best(cmd: Sequence[str], repeat: int, fresh: Sequence[Path] = ()) -> Run:
    """The fastest of ``repeat`` runs; the paths in ``fresh`` are deleted before each."""
    runs = []
    for _ in range(repeat):
        for path in fresh:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        runs.append(run(cmd))
    return min(runs, key=lambda r: r.seconds)


def build_cmd(project: Path, as_of: str) -> list[str]:
    """`famfeeds build` of ``project``/content into ``project``/output."""
    return [
        sys.executable,
        "-m",
        "famfeeds",
        "build",
        "--content",
        str(project / "content"),
        "--output",
        str(project / "output"),
        "--as-of",
        as_of,
    ]


def import_floor_script(content: Path, scratch: Path) -> str:
    """A script importing every module a first build of ``content`` loads, famfeeds' own
    excepted. Lazily loaded parts of libraries (pydantic's internals, say) count as the
    library's cost."""
    names = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, str(content), str(scratch / "out-probe")],
        check=True,
        capture_output=True,
        text=True,
        cwd=scratch,
    ).stdout.split()
    shutil.rmtree(scratch / "out-probe", ignore_errors=True)
    return (
        "import importlib\n"
        f"for name in {names!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception:\n        pass\n"
    )


def compile_famfeeds() -> None:
    """Byte-compile the famfeeds package being measured, as pip does when installing it."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("famfeeds")
    assert spec is not None and spec.submodule_search_locations
    for folder in spec.submodule_search_locations:
        compileall.compile_dir(folder, quiet=1)


def episode_text(season: int, number: int, extra: str = "") -> str:
    """One episode file: front matter and a synopsis of about 1,000 characters."""
    text = "\n\n".join(SYNOPSIS.format(n=number) for _ in range(3)) + extra
    return f'+++\nnumber = {number}\ntitle = "Episode {number} of season {season}"\n+++\n\n{text}\n'


def daily_soap(project: Path, seasons: int) -> Path:
    """A project of ``seasons`` seasons of 10 daily episodes, back to back, newsletter on
    (the shipped show.toml has a [newsletter] table). Returns the content folder."""
    content = project / "content"
    content.mkdir(parents=True)
    shutil.copy(REPO / "content/show.toml", content / "show.toml")
    for s in range(1, seasons + 1):
        folder = content / f"season-{s:04d}"
        folder.mkdir()
        premiere = SOAP_FIRST_DAY + timedelta(days=10 * (s - 1))
        (folder / "season.toml").write_text(
            f'number = {s}\ntitle = "Season {s}"\npremiere = {premiere}\ncadence = "daily"\n'
            'description = "Another ten days in the habitat ring."\n'
        )
        for e in range(1, 11):
            (folder / f"{e:02d}-episode-{e}.md").write_text(episode_text(s, e))
    return content


def edit_one(content: Path, seasons: int) -> None:
    """Edit one synopsis in the middle of the catalogue (the file's size changes too)."""
    s, e = seasons // 2, 5
    path = content / f"season-{s:04d}" / f"{e:02d}-episode-{e}.md"
    stamp = time.time_ns()
    path.write_text(episode_text(s, e, f"\n\nEdited at {stamp}."))


def count_files(folder: Path) -> int:
    """Regular files under ``folder``."""
    return sum(len(files) for _, _, files in os.walk(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--seasons", type=int, default=1000, help="daily-soap seasons of 10 (0: skip the soap)"
    )
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    py = sys.executable
    rows: list[tuple[str, float, str]] = []

    def row(label: str, r: Run) -> Run:
        rows.append(
            (label, r.seconds, f"CPU {r.cpu * 1000:8.0f} ms   peak RSS {r.max_rss_mb:5.0f} MB")
        )
        return r

    compile_famfeeds()
    with tempfile.TemporaryDirectory(prefix="famfeeds-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        shipped = root / "shipped"
        shutil.rmtree(shipped, ignore_errors=True)
        shutil.copytree(REPO / "content", shipped / "content")
        shutil.copy(REPO / "famfeeds.lock", shipped / "famfeeds.lock")
        probe = import_floor_script(shipped / "content", root)
        cmd = build_cmd(shipped, SHIPPED_AS_OF)
        committed_lock = (REPO / "famfeeds.lock").read_bytes()

        def shipped_first_build(cold: bool = False) -> Run:
            for path in (shipped / "output", shipped / ".famfeeds-cache", root / "xdg"):
                shutil.rmtree(path, ignore_errors=True)
            (shipped / "famfeeds.lock").write_bytes(committed_lock)
            return run(cmd, env={"XDG_CACHE_HOME": str(root / "xdg")} if cold else None)

        # Interleaved, best of --repeat: the floor and the first build see the same machine.
        floors, firsts, colds = [], [], []
        for _ in range(args.repeat):
            floors.append(run([py, "-c", probe]))
            firsts.append(shipped_first_build())
            colds.append(shipped_first_build(cold=True))
        floor = row("import floor: the libraries a build loads", min(floors, key=seconds))
        shipped_first = row(
            "shipped season: first build (no output, no cache)", min(firsts, key=seconds)
        )
        shipped_cold = row(
            "  the same, and no compiled templates in the user's cache",
            min(colds, key=seconds),
        )
        rebuilds = [run(cmd) for _ in range(args.repeat)]

        if args.seasons:
            soap = root / "soap"
            shutil.rmtree(soap, ignore_errors=True)
            content = daily_soap(soap, args.seasons)
            episodes = args.seasons * 10
            soap_cmd = build_cmd(soap, SOAP_AS_OF)
            first = row(f"daily soap, {episodes:,} episodes: first build", run(soap_cmd))
            files = count_files(soap / "output")
            again, settled, edits = [], [], []
            for _ in range(args.repeat):  # interleaved with the shipped season's rebuilds
                again.append(run(soap_cmd))  # right after a build that wrote files
                settled.append(run(soap_cmd))  # after a build that wrote none
                rebuilds.append(run(cmd))
                edit_one(content, args.seasons)
                edits.append(run(soap_cmd))
        shipped_re = row("shipped season: rebuild, nothing changed", min(rebuilds, key=seconds))
        if args.seasons:
            unchanged = row(
                f"daily soap, {episodes:,} episodes: rebuild, nothing changed",
                min(settled, key=seconds),
            )
            after_write = row(
                "  the same, right after a build that wrote files", min(again, key=seconds)
            )
            edited = row(
                f"daily soap, {episodes:,} episodes: rebuild after one edit",
                min(edits, key=seconds),
            )
        click_only = row('python -c "import click"', best([py, "-c", "import click"], args.repeat))
        help_run = row("famfeeds --help", best([py, "-m", "famfeeds", "--help"], args.repeat))

    width = max(len(r[0]) for r in rows)
    for label, secs, note in rows:
        print(f"{label:<{width}}  {secs * 1000:8.0f} ms   {note}")
    if args.seasons:
        print(f"daily soap output: {files:,} files")
    print()

    print(f"{'ratios (wall time; CPU time in brackets)':<44}")

    def ratio(label: str, a: Run, b: Run, goal: float | None) -> None:
        value, cpu = a.seconds / b.seconds, a.cpu / b.cpu
        verdict = "" if goal is None else f"  (goal <= {goal:g}x: {_met(value <= goal)})"
        print(f"{label:<44} {value:7.2f}x [{cpu:6.2f}x]{verdict}")

    ratio("shipped first build / import floor", shipped_first, floor, 1.3)
    ratio("  the same, no compiled templates either", shipped_cold, floor, None)
    ratio("shipped rebuild / import floor", shipped_re, floor, None)
    if args.seasons:
        ratio("soap first build / import floor", first, floor, 40)
        ratio("soap first build / shipped rebuild", first, shipped_re, None)
        ratio("soap no-change rebuild / shipped rebuild", unchanged, shipped_re, 2)
        ratio("  right after a build that wrote files", after_write, shipped_re, None)
        ratio("soap one-edit rebuild / shipped rebuild", edited, shipped_re, 2)
        print(
            f"{'soap first build, peak RSS':<44} {first.max_rss_mb:7.0f} MB"
            f"  (goal <= 500 MB: {_met(first.max_rss_mb <= 500)})"
        )
    ratio("--help / import click", help_run, click_only, 1.5)


def seconds(r: Run) -> float:
    """Sort key: wall time."""
    return r.seconds


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
