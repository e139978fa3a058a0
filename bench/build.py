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
  output folders that build wrote into (famfeeds.build.inplace: a folder changed by a build is
  not trusted by its stamp); the number of files in output/; the peak RSS
  of the first build (os.wait4's rusage of that child process alone);
- `famfeeds --help` beside `python -c "import click"`.

Every figure comes from a separate process (`python -m famfeeds build`), as a user runs it.
famfeeds' own modules are byte-compiled first, as installing famfeeds with pip does (an
editable install with PYTHONDONTWRITEBYTECODE set would otherwise compile them from source
in every process, about 60 ms here, which no installed copy pays).
Ratios are given on wall time and, in brackets, on CPU time (user + system): on a shared
machine the CPU times vary less from run to run.

    python bench/build.py --peers [--repeat 5] [--seasons 1000] [--keep DIR] [--json FILE]

--peers compares famfeeds with Hugo (`hugo` on PATH; Debian's package) on the same daily
soap, written a second time as a Hugo site: bench/peers/hugo (hugo.toml, layouts/_default/
baseof, single and list.html; no theme, no network) and content/ with a home page
(_index.md: the show's description; its list template lists every season and episode), a
section per season (season-NNNN/_index.md) and a page per episode, with the same title,
release day and synopsis. Hugo makes one RSS feed (the home page's, 50 entries, as
famfeeds' feed_entries), the sitemap and the pages. Each figure is the median of --repeat
processes (peak RSS: the largest), famfeeds' and Hugo's interleaved:

- first build: famfeeds with no output/, cache or lock (the user's compiled templates
  kept, as in the default mode) and `hugo` with no public/ or resources/;
- rebuild with nothing changed, and after editing one synopsis (the same episode in both),
  each a new process; famfeeds' no-change rebuild after a build that wrote nothing;
- serve, one edit: `famfeeds serve --port P` and `hugo server --port P` (a user's defaults:
  in memory, fast render mode, live reload), one at a time; once the edited episode's page
  answers and the server is idle (no CPU for a second), the synopsis is rewritten in place
  and the page is fetched over loopback every 15 ms (a new connection each time) until it
  has the new text: the time from the write to that response; --repeat edits, a new text
  each, the server idle again before the next;
- serve start: from starting the server until "/" answers 200 with the show's title;
  famfeeds' on a built project (output/ and cache, no .famfeeds-preview: right after a
  first build) and on one previewed before too; Hugo's on the built site;
- the shipped season's first build and no-change rebuild, and the import floor, as above.

It prints one table: famfeeds, Hugo (or famfeeds' own reference figure), the ratio on wall
time (CPU time in brackets) and the goal, met or not; --json writes every figure and run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
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


def synopsis(number: int, extra: str = "") -> str:
    """An episode's synopsis, about 1,000 characters of Markdown, and ``extra``."""
    return "\n\n".join(SYNOPSIS.format(n=number) for _ in range(3)) + extra


def episode_text(season: int, number: int, extra: str = "") -> str:
    """One episode file: front matter and a synopsis of about 1,000 characters."""
    text = synopsis(number, extra)
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


# --- peers: the daily soap beside the same catalogue as a Hugo site (--peers) -------------

HUGO_SKELETON = REPO / "bench/peers/hugo"
POLL_INTERVAL = 0.015  # seconds between two GETs of a served page
SERVE_LIMIT = 600.0  # seconds a server may take to answer, or to show an edit
HUGO_SERVER_NOTE = (
    "hugo server --port P (a user's defaults: pages rendered to memory, fast render mode on, "
    "live reload on)"
)


def release_day(season: int, number: int) -> date:
    """The day the daily soap releases episode ``number`` of ``season`` (famfeeds' dates)."""
    return SOAP_FIRST_DAY + timedelta(days=10 * (season - 1) + number - 1)


def edited_episode(seasons: int) -> tuple[int, int]:
    """The episode edit_one edits: season ``seasons // 2`` (at least 1), episode 5."""
    return max(1, seasons // 2), 5


def famfeeds_episode_file(content: Path, season: int, number: int) -> Path:
    """The daily soap's file for one episode."""
    return content / f"season-{season:04d}" / f"{number:02d}-episode-{number}.md"


def hugo_episode_file(site: Path, season: int, number: int) -> Path:
    """The Hugo site's file for the same episode (same folder and file names)."""
    return famfeeds_episode_file(site / "content", season, number)


def hugo_episode_text(season: int, number: int, extra: str = "") -> str:
    """One Hugo page: the episode's title, day and number, and the same synopsis."""
    return (
        f'+++\ntitle = "Episode {number} of season {season}"\n'
        f"date = {release_day(season, number)}\nweight = {number}\nnumber = {number}\n+++\n\n"
        f"{synopsis(number, extra)}\n"
    )


def hugo_site(site: Path, seasons: int) -> None:
    """The daily soap as a Hugo site in ``site``: bench/peers/hugo (hugo.toml and layouts/:
    baseof, single, list) and content/: the home page (_index.md, the show's description), a
    section per season (season-NNNN/_index.md) and a page per episode."""
    shutil.copytree(HUGO_SKELETON, site)
    content = site / "content"
    content.mkdir()
    show = (REPO / "content/show.toml").read_text()
    description = show.split('description = """', 1)[1].split('"""', 1)[0].strip()
    (content / "_index.md").write_text(f'+++\ntitle = "For All Mankind"\n+++\n\n{description}\n')
    for s in range(1, seasons + 1):
        folder = content / f"season-{s:04d}"
        folder.mkdir()
        (folder / "_index.md").write_text(
            f'+++\ntitle = "Season {s}"\nweight = {s}\n+++\n\n'
            "Another ten days in the habitat ring.\n"
        )
        for e in range(1, 11):
            (folder / f"{e:02d}-episode-{e}.md").write_text(hugo_episode_text(s, e))


def median_of(runs: Sequence[Run]) -> Run:
    """The median wall and CPU time of ``runs``, and the largest peak RSS of any of them."""
    return Run(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.max_rss_mb for r in runs),
    )


def wait_for_famfeeds(limit: float = 600.0) -> None:
    """Wait (at most ``limit`` seconds) until `python -m famfeeds --help` works: famfeeds'
    modules may be moving about while the bench starts."""
    deadline = time.monotonic() + limit
    while True:
        probe = subprocess.run(
            [sys.executable, "-m", "famfeeds", "--help"], capture_output=True, text=True
        )
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"famfeeds does not start:\n{probe.stderr}")
        print("famfeeds does not start yet; trying again in 30 s", file=sys.stderr)
        time.sleep(30)


def free_port() -> int:
    """A TCP port free on loopback just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, bytes] | None:
    """GET ``path`` from 127.0.0.1:``port`` on a new connection: (status, body), or None
    if nothing answers (yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cache-Control": "no-cache"})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for_page(proc: subprocess.Popen[bytes], port: int, path: str, needle: bytes) -> float:
    """Poll ``path`` every POLL_INTERVAL until it answers 200 with ``needle`` in the body;
    the moment (time.perf_counter) that response was read."""
    deadline = time.perf_counter() + SERVE_LIMIT
    while True:
        got = http_get(port, path)
        now = time.perf_counter()
        if got is not None and got[0] == 200 and needle in got[1]:
            return now
        if proc.poll() is not None:
            raise SystemExit(f"the server stopped ({proc.returncode}) before {path} had {needle!r}")
        if now > deadline:
            raise SystemExit(f"{path} did not have {needle!r} after {SERVE_LIMIT:.0f} s")
        time.sleep(POLL_INTERVAL)


def tree_cpu_ticks(pid: int) -> int:
    """CPU clock ticks (user + system) used so far by ``pid`` and its living descendants."""
    procs: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += procs.get(current, (0, 0))[1]
        todo.extend(child for child, (parent, _) in procs.items() if parent == current)
    return total


def wait_idle(pid: int, quiet: float = 1.0) -> float:
    """Wait until ``pid`` and its children have used no CPU for ``quiet`` seconds (so that
    a rebuild going on after the page shows the edit is over before the next edit);
    returns the moment (time.perf_counter, to 0.1 s) they last used any."""
    deadline = time.perf_counter() + SERVE_LIMIT
    last, busy = tree_cpu_ticks(pid), time.perf_counter()
    while (now := time.perf_counter()) < deadline and now - busy < quiet:
        time.sleep(0.1)
        ticks = tree_cpu_ticks(pid)
        if ticks != last:
            last, busy = ticks, time.perf_counter()
    return busy


def start_server(cmd: Sequence[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a preview server, its output appended to ``log``."""
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server as Ctrl-C does (SIGINT), killing it if it does not stop in 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Started:
    """A server start: seconds until its front page answered, and until it was idle."""

    answered: float
    idle: float


def serve_start(cmd: Sequence[str], cwd: Path, port: int, log: Path) -> Started:
    """Start a server, time it until "/" answers 200 with the show's title, then until it
    is idle, and stop it."""
    start = time.perf_counter()
    proc = start_server(cmd, cwd, log)
    try:
        answered = wait_for_page(proc, port, "/", b"For All Mankind") - start
        return Started(answered, wait_idle(proc.pid) - start)
    finally:
        stop_server(proc)


def serve_edits(
    cmd: Sequence[str],
    cwd: Path,
    port: int,
    log: Path,
    page: str,
    edit: Callable[[str], None],
    repeat: int,
) -> list[float]:
    """Start a server, wait until it serves ``page`` and is idle; then ``repeat`` times:
    ``edit`` the synopsis (a new marker each time), poll ``page`` until the marker is in it,
    and wait until the server is idle again. Returns the seconds from each write to the
    first response that has the edit."""
    proc = start_server(cmd, cwd, log)
    times = []
    try:
        wait_for_page(proc, port, page, b"Episode 5 of season")
        wait_idle(proc.pid)
        for _ in range(repeat):
            time.sleep(1.0)
            marker = f"Edited at {time.time_ns()}."
            written = time.perf_counter()
            edit(marker)
            times.append(wait_for_page(proc, port, page, marker.encode()) - written)
            wait_idle(proc.pid)
    finally:
        stop_server(proc)
    return times


def clear(*paths: Path) -> None:
    """Delete files and folders, those that exist."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Goal:
    """One line of the table: famfeeds' figure, the one it is compared with, the goal."""

    label: str
    ours: float
    theirs: float | None  # None: an absolute goal on ``ours`` alone
    unit: str  # "ms", "MB"
    goal: str
    limit: float | None  # the goal: ours / theirs <= limit (ours <= limit if absolute)
    cpu: tuple[float, float] | None = None  # CPU times, for the ratio in brackets
    absolute: bool = False

    def ratio(self) -> float | None:
        return None if self.theirs is None else self.ours / self.theirs

    def met(self) -> bool | None:
        if self.limit is None:
            return None
        value = self.ratio() if not self.absolute else self.ours
        return value is not None and value <= self.limit


def peers(repeat: int, seasons: int, keep: Path | None, json_path: Path | None) -> None:
    """--peers: famfeeds and Hugo on the daily soap, and the shipped season's ratios."""
    hugo = shutil.which("hugo")
    if hugo is None:
        raise SystemExit("--peers needs hugo on PATH (Debian: apt-get install hugo)")
    hugo_version = subprocess.run(
        [hugo, "version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    wait_for_famfeeds()
    compile_famfeeds()
    py = sys.executable
    episodes = seasons * 10
    s, e = edited_episode(seasons)
    with tempfile.TemporaryDirectory(prefix="famfeeds-peers-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        log = root / "servers.log"
        log.write_bytes(b"")

        # The shipped season and the import floor, as the default mode measures them.
        shipped = root / "shipped"
        clear(shipped)
        shutil.copytree(REPO / "content", shipped / "content")
        committed_lock = (REPO / "famfeeds.lock").read_bytes()
        probe = import_floor_script(shipped / "content", root)
        cmd = build_cmd(shipped, SHIPPED_AS_OF)
        floors, shipped_firsts, shipped_rebuilds = [], [], []
        print(f"shipped season and import floor, {repeat} times", file=sys.stderr)
        for _ in range(repeat):
            floors.append(run([py, "-c", probe]))
            clear(shipped / "output", shipped / ".famfeeds-cache")
            (shipped / "famfeeds.lock").write_bytes(committed_lock)
            shipped_firsts.append(run(cmd))
            run(cmd)  # the rebuild is timed after a build that wrote nothing
            shipped_rebuilds.append(run(cmd))
        floor, shipped_first = median_of(floors), median_of(shipped_firsts)
        shipped_rebuild = median_of(shipped_rebuilds)

        # The daily soap, for famfeeds and as a Hugo site.
        print(f"writing the daily soap ({episodes:,} episodes) twice", file=sys.stderr)
        soap, site = root / "soap", root / "hugo"
        clear(soap, site)
        content = daily_soap(soap, seasons)
        hugo_site(site, seasons)
        soap_cmd = build_cmd(soap, SOAP_AS_OF)
        hugo_cmd = [hugo, "--source", str(site)]
        port = free_port()
        ff_serve = [
            py, "-m", "famfeeds", "serve", "--content", "content",
            "--as-of", SOAP_AS_OF, "--port", str(port),
        ]  # fmt: skip
        hugo_serve = [hugo, "server", "--port", str(port)]
        ff_page = f"/s{s:02d}/e{e:02d}/"
        hugo_page = f"/season-{s:04d}/{e:02d}-episode-{e}/"

        def edit_famfeeds(marker: str) -> None:
            famfeeds_episode_file(content, s, e).write_text(episode_text(s, e, f"\n\n{marker}"))

        def edit_hugo(marker: str) -> None:
            hugo_episode_file(site, s, e).write_text(hugo_episode_text(s, e, f"\n\n{marker}"))

        ff_first, ff_after_write, ff_unchanged, ff_edit = [], [], [], []
        hugo_first, hugo_unchanged, hugo_edit = [], [], []
        ff_starts_built: list[Started] = []
        for i in range(repeat):
            print(f"builds, round {i + 1} of {repeat}", file=sys.stderr)
            clear(soap / "output", soap / ".famfeeds-cache", soap / ".famfeeds-preview")
            clear(soap / "famfeeds.lock")  # a new project, as the default mode's first build
            ff_first.append(run(soap_cmd))
            clear(site / "public", site / "resources", site / ".hugo_build.lock")
            hugo_first.append(run(hugo_cmd))
            # Built (output/, cache), never previewed: the front page, from a new process.
            ff_starts_built.append(serve_start(ff_serve, soap, port, log))
            ff_after_write.append(run(soap_cmd))
            ff_unchanged.append(run(soap_cmd))
            hugo_unchanged.append(run(hugo_cmd))
            marker = f"Edited at {time.time_ns()}."
            edit_famfeeds(marker)
            edit_hugo(marker)
            ff_edit.append(run(soap_cmd))
            hugo_edit.append(run(hugo_cmd))
        ff_page_file = soap / "output" / ff_page.strip("/") / "index.html"
        if marker not in ff_page_file.read_text():
            raise SystemExit(f"{ff_page_file} does not have the edit")
        hugo_page_file = site / "public" / hugo_page.strip("/") / "index.html"
        if marker not in hugo_page_file.read_text():
            raise SystemExit(f"{hugo_page_file} does not have the edit")
        ff_files, hugo_files = count_files(soap / "output"), count_files(site / "public")

        print(f"serve: {repeat} edits each", file=sys.stderr)
        ff_serve_edits = serve_edits(ff_serve, soap, port, log, ff_page, edit_famfeeds, repeat)
        hugo_serve_edits = serve_edits(hugo_serve, site, port, log, hugo_page, edit_hugo, repeat)
        print(f"serve start, {repeat} times each", file=sys.stderr)
        ff_starts_again, hugo_starts = [], []
        for _ in range(repeat):
            # Built and previewed before (.famfeeds-preview too), nothing changed since.
            ff_starts_again.append(serve_start(ff_serve, soap, port, log))
            hugo_starts.append(serve_start(hugo_serve, site, port, log))
        server_log = log.read_text(errors="replace")

    def median(values: Sequence[float]) -> float:
        return statistics.median(values)

    first, h_first = median_of(ff_first), median_of(hugo_first)
    unchanged, h_unchanged = median_of(ff_unchanged), median_of(hugo_unchanged)
    after_write = median_of(ff_after_write)
    edited, h_edited = median_of(ff_edit), median_of(hugo_edit)
    serve_edit, h_serve_edit = median(ff_serve_edits), median(hugo_serve_edits)
    start_built = median([x.answered for x in ff_starts_built])
    start_again = median([x.answered for x in ff_starts_again])
    h_start = median([x.answered for x in hugo_starts])
    ms = 1000.0
    goals = [
        Goal(
            "first build (no output/ cache | no public/ resources/)",
            first.seconds * ms, h_first.seconds * ms, "ms",
            "<= 5x Hugo", 5, (first.cpu, h_first.cpu),
        ),
        Goal(
            "first build: peak RSS", first.max_rss_mb, h_first.max_rss_mb, "MB",
            "famfeeds <= 500 MB", 500, absolute=True,
        ),
        Goal(
            "rebuild, nothing changed (fresh process)",
            unchanged.seconds * ms, h_unchanged.seconds * ms, "ms",
            "<= 0.15x Hugo", 0.15, (unchanged.cpu, h_unchanged.cpu),
        ),
        Goal(
            "  famfeeds right after a build that wrote files",
            after_write.seconds * ms, h_unchanged.seconds * ms, "ms",
            "", None, (after_write.cpu, h_unchanged.cpu),
        ),
        Goal(
            "rebuild after one edit (fresh process)",
            edited.seconds * ms, h_edited.seconds * ms, "ms",
            "<= 0.2x Hugo", 0.2, (edited.cpu, h_edited.cpu),
        ),
        Goal(
            "  the same / shipped season's rebuild [ref]",
            edited.seconds * ms, shipped_rebuild.seconds * ms, "ms",
            "<= 3x shipped rebuild", 3, (edited.cpu, shipped_rebuild.cpu),
        ),
        Goal(
            "serve: one edit until the served page has it",
            serve_edit * ms, h_serve_edit * ms, "ms", "<= 1x Hugo server", 1,
        ),
        Goal(
            "serve start, built, not previewed: / answers",
            start_built * ms, h_start * ms, "ms", "", None,
        ),
        Goal(
            "  the same / famfeeds no-change rebuild [ref]",
            start_built * ms, unchanged.seconds * ms, "ms", "<= 1x no-change rebuild", 1,
        ),
        Goal(
            "serve start, built and previewed: / answers",
            start_again * ms, h_start * ms, "ms", "", None,
        ),
        Goal(
            "  the same / famfeeds no-change rebuild [ref]",
            start_again * ms, unchanged.seconds * ms, "ms", "(<= 1x no-change rebuild)", None,
        ),
        Goal(
            "shipped first build / import floor [ref]",
            shipped_first.seconds * ms, floor.seconds * ms, "ms",
            "<= 1.3x import floor", 1.3, (shipped_first.cpu, floor.cpu),
        ),
        Goal(
            "shipped rebuild / import floor [ref]",
            shipped_rebuild.seconds * ms, floor.seconds * ms, "ms",
            "<= 1.15x import floor", 1.15, (shipped_rebuild.cpu, floor.cpu),
        ),
    ]  # fmt: skip

    print(f"famfeeds vs {hugo_version}")
    print(
        f"daily soap: {episodes:,} episodes; famfeeds wrote {ff_files:,} files, "
        f"Hugo {hugo_files:,}; median of {repeat} (peak RSS: the largest)"
    )
    print(f"Hugo's server: {HUGO_SERVER_NOTE}; famfeeds: famfeeds serve --port P --as-of ...")
    print("[ref]: the right-hand column is famfeeds' own reference figure, not Hugo's")
    print()
    width = max(len(g.label) for g in goals)
    print(
        f"{'':<{width}}  {'famfeeds':>10}  {'Hugo / ref':>10}  {'ratio':>7}  {'[CPU]':>8}"
        f"  {'goal':<26} verdict"
    )
    for g in goals:
        theirs = "" if g.theirs is None else f"{g.theirs:7.0f} {g.unit}"
        ratio = g.ratio()
        shown = "" if ratio is None else f"{ratio:6.2f}x"
        cpu = "" if g.cpu is None else f"[{g.cpu[0] / g.cpu[1]:5.2f}x]"
        met = g.met()
        verdict = "" if met is None else _met(met)
        ours = f"{g.ours:7.0f} {g.unit}"
        print(f"{g.label:<{width}}  {ours:>10}  {theirs:>10}  {shown:>7}  {cpu:>8}"
              f"  {g.goal:<26} {verdict}")  # fmt: skip
    print()
    print(
        "serve edits, each (ms): famfeeds "
        + ", ".join(f"{x * ms:.0f}" for x in ff_serve_edits)
        + "; Hugo "
        + ", ".join(f"{x * ms:.0f}" for x in hugo_serve_edits)
    )
    print(
        "serve start until idle (median, ms): famfeeds built "
        f"{median([x.idle for x in ff_starts_built]) * ms:.0f}, previewed "
        f"{median([x.idle for x in ff_starts_again]) * ms:.0f}; Hugo "
        f"{median([x.idle for x in hugo_starts]) * ms:.0f}"
    )
    printed = sorted(
        {
            line.strip()
            for line in server_log.splitlines()
            if any(word in line.lower() for word in ("error", "warn", "traceback", "fail"))
        }
    )
    if printed:
        print("the servers printed (errors and warnings, each once):")
        for line in printed[:20]:
            print("  " + line)

    if json_path is not None:

        def figure(runs: Sequence[Run]) -> dict[str, object]:
            m = median_of(runs)
            return {
                "seconds": m.seconds,
                "cpu_seconds": m.cpu,
                "max_rss_mb": m.max_rss_mb,
                "runs": [asdict(r) for r in runs],
            }

        def starts(values: Sequence[Started]) -> dict[str, object]:
            return {
                "seconds": median([x.answered for x in values]),
                "idle_seconds": median([x.idle for x in values]),
                "runs": [asdict(x) for x in values],
            }

        figures = {
            "hugo_version": hugo_version,
            "hugo_server": HUGO_SERVER_NOTE,
            "repeat": repeat,
            "episodes": episodes,
            "edited_episode": {"season": s, "episode": e},
            "files": {"famfeeds": ff_files, "hugo": hugo_files},
            "import_floor": figure(floors),
            "shipped_first_build": figure(shipped_firsts),
            "shipped_rebuild": figure(shipped_rebuilds),
            "famfeeds": {
                "first_build": figure(ff_first),
                "rebuild_unchanged": figure(ff_unchanged),
                "rebuild_after_write": figure(ff_after_write),
                "rebuild_one_edit": figure(ff_edit),
                "serve_one_edit": {"seconds": serve_edit, "runs": ff_serve_edits},
                "serve_start_built": starts(ff_starts_built),
                "serve_start_previewed": starts(ff_starts_again),
            },
            "hugo": {
                "first_build": figure(hugo_first),
                "rebuild_unchanged": figure(hugo_unchanged),
                "rebuild_one_edit": figure(hugo_edit),
                "serve_one_edit": {"seconds": h_serve_edit, "runs": hugo_serve_edits},
                "serve_start": starts(hugo_starts),
            },
            "goals": [
                {"label": g.label, "famfeeds": g.ours, "other": g.theirs, "unit": g.unit,
                 "ratio": g.ratio(), "goal": g.goal, "met": g.met()}
                for g in goals
            ],
        }  # fmt: skip
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--seasons", type=int, default=1000, help="daily-soap seasons of 10 (0: skip the soap)"
    )
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="compare the daily soap with the same catalogue as a Hugo site (needs hugo)",
    )
    parser.add_argument("--json", type=Path, help="with --peers: also write the figures here")
    args = parser.parse_args()
    if args.peers:
        if args.seasons < 1:
            parser.error("--peers needs --seasons 1 or more")
        peers(args.repeat, args.seasons, args.keep, args.json)
        return
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
