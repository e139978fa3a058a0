"""The build's caches are invisible: a differential test.

A small generated project gets a random sequence of edits of every kind of input (records,
files and folders, templates, linked template folders, message catalogues, zone rules,
famfeeds' code digest and library versions, the reference date, output files, the caches
on disk, the lock). After each edit the project is built incrementally (its
.famfeeds-cache/, output/ and famfeeds.lock kept), and the same inputs are built from
nothing in a fresh folder (a copy of content/, templates/ with links followed, locale/,
and the famfeeds.lock the incremental build started from). The two must agree: the same
exit code and messages, byte-identical output trees (the user's own files in output/
aside, which must be kept as they are) and the same famfeeds.lock; a failed build leaves
output/ and famfeeds.lock exactly as they were.

The builds run in-process through the public CLI (``famfeeds build``). When the machine has
more than one CPU, the build from nothing runs in a forked copy of the process at the same
time as the incremental one: twice as fast, and it starts from the process as it was before
the incremental build (both see the same monkeypatched zone rules and code digest).

The default suite runs six seeds of 50 edits or more (every kind of edit in each): 300 edits;
``-m slow`` runs four more seeds of 50 and a long run of 5,000.

Failures name the seed, the step, the first differing files with a diff, and the edit log;
``FAMFEEDS_DIFFERENTIAL_SEED`` and ``FAMFEEDS_DIFFERENTIAL_EDITS`` run the slow variant
(``python -m pytest -m slow tests/test_differential.py``) with another seed and length.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import json
import os
import random
import re
import shutil
import sys
import time
import warnings
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner, Result

import differential_edits as edits
from differential_edits import Hooks, State

# Adapters: the only places that name famfeeds' internals -------------------------------------
#
# famfeeds keys its caches on a digest of its own code and on the versions of the libraries
# that shape its output (now in famfeeds.build.keys: code_digest and versions). So that the
# test keeps working while modules move, these adapters patch whichever of the names below
# exist, in whichever of the modules below are there, and every alias of them that any
# loaded famfeeds module has imported; then they clear every functools cache of those
# modules, so that no value computed with the old key survives. Repoint the tuples when the
# names change.

KEY_MODULES = (
    "famfeeds.build.keys",
    "famfeeds.build.cache",
    "famfeeds.build.record_cache",
    "famfeeds.build.issue_cache",
    "famfeeds.build.project",
    "famfeeds.record_cache",
    "famfeeds.issue_cache",
    "famfeeds.project",
)
CODE_KEY_NAMES = ("code_key", "code_digest", "output_key", "code_version", "code")
"""Functions that return famfeeds' code digest, or a key made from it."""
LIBRARY_VERSION_NAMES = ("versions", "library_versions")
"""Functions that return the versions of installed libraries (given their names)."""
IN_PLACE_MODULES = ("famfeeds.build.inplace", "famfeeds.build.writer", "famfeeds.inplace")
IN_PLACE_NAME = "PER_FILE_FROM"
"""Outputs of this many files or more are rebuilt in place (file by file)."""

_ORIGINAL = "__differential_original__"


def _famfeeds_modules(names: tuple[str, ...]) -> list[ModuleType]:
    """Every loaded famfeeds module, after importing those of ``names`` that exist."""
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return [
        module
        for name, module in sorted(sys.modules.items())
        if (name == "famfeeds" or name.startswith("famfeeds.")) and module is not None
    ]


def clear_key_caches() -> None:
    """Forget every value a functools cache of the key modules holds (keys computed with a
    patched or an unpatched function alike)."""
    for name in KEY_MODULES:
        module = sys.modules.get(name)
        for value in list(vars(module).values()) if module is not None else []:
            clear = getattr(getattr(value, _ORIGINAL, value), "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", "").startswith("famfeeds"):
                clear()


def _patch_functions(
    monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...], value: str | None, label: str
) -> list[str]:
    """Replace each function called one of ``names`` in KEY_MODULES, and every alias of it,
    by one whose result has ``label=value`` added (``value`` None: the real function
    again). Returns the module.attribute names patched."""
    modules = _famfeeds_modules(KEY_MODULES)
    originals: set[int] = set()
    for name in KEY_MODULES:
        module = sys.modules.get(name)
        for attribute in names:
            found = getattr(module, attribute, None) if module is not None else None
            if callable(found):
                originals.add(id(getattr(found, _ORIGINAL, found)))
    patched = []
    for module in modules:
        for attribute, found in list(vars(module).items()):
            original = getattr(found, _ORIGINAL, found)
            if id(original) not in originals or not callable(original):
                continue
            replacement = original if value is None else _suffixed(original, f"{label}={value}")
            monkeypatch.setattr(module, attribute, replacement)
            patched.append(f"{module.__name__}.{attribute}")
    clear_key_caches()
    assert patched, f"none of {names} found in {KEY_MODULES}: repoint the adapter"
    return patched


def _suffixed(original: Callable[..., Any], suffix: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def patched(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if isinstance(result, str):
            return f"{result};{suffix};"
        if isinstance(result, bytes):
            return result + f";{suffix};".encode()
        return (result, suffix)

    setattr(patched, _ORIGINAL, original)
    return patched


def change_code_digest(monkeypatch: pytest.MonkeyPatch, value: str | None) -> list[str]:
    """Stand for another famfeeds (an upgrade, a local change): every key made from
    famfeeds' code digest changes with ``value`` (None: the real digest again)."""
    return _patch_functions(monkeypatch, CODE_KEY_NAMES, value, "test-code")


def change_library_versions(monkeypatch: pytest.MonkeyPatch, value: str | None) -> list[str]:
    """Stand for `pip install -U` of the libraries famfeeds keys on: every versions string
    gets ``value`` (None: the real versions again)."""
    return _patch_functions(monkeypatch, LIBRARY_VERSION_NAMES, value, "test-library")


def write_in_place(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make famfeeds rebuild every output in place (file by file), the writer of large
    catalogues, as if this small project were one."""
    patched = []
    for module in _famfeeds_modules(IN_PLACE_MODULES):
        if isinstance(getattr(module, IN_PLACE_NAME, None), int):
            monkeypatch.setattr(module, IN_PLACE_NAME, 1)
            patched.append(f"{module.__name__}.{IN_PLACE_NAME}")
    assert patched, f"{IN_PLACE_NAME} not found in {IN_PLACE_MODULES}: repoint the adapter"
    return patched


# Zone rules ----------------------------------------------------------------------------------

DEFAULT_TZPATH = tuple(zoneinfo.TZPATH)


def zone_file(zone: str) -> bytes:
    """The compiled rules of ``zone`` as zoneinfo finds them (the system's, else tzdata's)."""
    for folder in DEFAULT_TZPATH:
        path = Path(folder) / zone
        if path.is_file():
            return path.read_bytes()
    from importlib import resources

    return resources.files("tzdata").joinpath("zoneinfo", zone).read_bytes()


def use_zone_rules(folder: Path, replaced: dict[str, str]) -> None:
    """Point zoneinfo at a zone database where each zone of ``replaced`` has its donor's
    rules (an update of tzdata): ``folder``, a new one each time, searched before the real
    database. Empty ``replaced``: the real database again."""
    if replaced:
        for zone, donor in replaced.items():
            path = folder / zone
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zone_file(donor))
        zoneinfo.reset_tzpath(to=[str(folder), *DEFAULT_TZPATH])
    else:
        zoneinfo.reset_tzpath(to=list(DEFAULT_TZPATH))
    zoneinfo.ZoneInfo.clear_cache()


# Builds --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a build said: exit code, stdout, stderr, and an exception famfeeds did not turn
    into a message (type and text)."""

    exit_code: int
    stdout: str
    stderr: str
    exception: str | None


def famfeeds_build(root: Path, as_of: date, options: list[str]) -> Outcome:
    """``famfeeds build --content ROOT/content --as-of AS_OF OPTIONS``, in-process."""
    from famfeeds.cli import cli

    args = ["build", "--content", str(root / "content"), "--as-of", as_of.isoformat()]
    result: Result = CliRunner().invoke(cli, [*args, *options])
    error = result.exception
    shown = None if error is None or isinstance(error, SystemExit) else f"{type(error).__name__}"
    if shown is not None:
        shown += f": {error}"
    return Outcome(result.exit_code, result.stdout, result.stderr, shown)


FORK = hasattr(os, "fork") and (os.cpu_count() or 1) > 1
CHILD_TIMEOUT = 120.0


def build_both(
    project: Path, scratch: Path, as_of: date, options: Callable[[Path], list[str]], fork: bool
) -> tuple[Outcome, Outcome]:
    """The incremental build of ``project`` and the build from nothing of ``scratch`` (each
    with ``options(root)``): the second in a forked child at the same time if ``fork``."""
    if not fork:
        incremental = famfeeds_build(project, as_of, options(project))
        return incremental, famfeeds_build(scratch, as_of, options(scratch))
    answer = scratch.with_name(scratch.name + ".outcome.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            outcome = famfeeds_build(scratch, as_of, options(scratch))
            answer.write_text(json.dumps(asdict(outcome)))
        finally:
            os._exit(0)
    incremental = famfeeds_build(project, as_of, options(project))
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            status = -9
            break
        time.sleep(0.002)
    if not answer.exists():
        return incremental, Outcome(-1, "", f"the scratch build's process ended: {status}", None)
    return incremental, Outcome(**json.loads(answer.read_text()))


def snapshot(output: Path) -> dict[str, bytes]:
    """Every file under ``output``, by relative name."""
    if not output.is_dir():
        return {}
    return {
        p.relative_to(output).as_posix(): p.read_bytes()
        for p in sorted(output.rglob("*"))
        if p.is_file()
    }


def tree_differences(got: dict[str, bytes], expected: dict[str, bytes], limit: int = 3) -> str:
    """The names only one tree has, and a short unified diff of the first differing files."""
    lines = []
    only_got, only_expected = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
    if only_got:
        lines.append(f"only in the incremental build: {only_got[:10]}")
    if only_expected:
        lines.append(f"only in the build from nothing: {only_expected[:10]}")
    differing = [name for name in sorted(set(got) & set(expected)) if got[name] != expected[name]]
    if differing:
        lines.append(f"{len(differing)} files differ: {differing[:10]}")
    for name in differing[:limit]:
        lines += text_diff(name, got[name], expected[name])
    return "\n".join(lines)


def text_diff(
    name: str, got: bytes, expected: bytes, context: int = 1, most: int = 30
) -> list[str]:
    diff = list(
        difflib.unified_diff(
            expected.decode("utf-8", "replace").splitlines(),
            got.decode("utf-8", "replace").splitlines(),
            f"scratch/{name}",
            f"incremental/{name}",
            n=context,
            lineterm="",
        )
    )
    if not diff:
        return [f"--- {name}: same text, other bytes"]
    return [line[:300] for line in diff[:most]] + (["..."] if len(diff) > most else [])


# The messages --------------------------------------------------------------------------------

REPAIRS = {
    "issues": re.compile(r"issue cache entry|rendered that issue again"),
    "memo": re.compile(r"without the render memo"),
}
"""Warnings a build may give after a cache was damaged (which part it repaired)."""


def normal(text: str, paths: dict[str, str]) -> str:
    """``text`` with each of ``paths`` replaced by its placeholder, longest first."""
    for path in sorted(paths, key=len, reverse=True):
        text = text.replace(path, paths[path])
    return text


def stdout_lines(text: str) -> list[str]:
    """A build's summary without the line about the user's own files (the build from
    nothing has none)."""
    return [line for line in text.splitlines() if not line.startswith("Kept ")]


# The run -------------------------------------------------------------------------------------

KINDS: tuple[tuple[str, int], ...] = (
    ("episode", 3),
    ("season", 2),
    ("show", 2),
    ("note", 1),
    ("structure", 2),
    ("content links", 1),
    ("template", 2),
    ("catalogue", 1),
    ("zone rules", 1),
    ("code and libraries", 1),
    ("as-of", 2),
    ("output", 1),
    ("cache", 2),
    ("lock", 1),
    ("build options", 1),
    ("nothing", 1),
)
"""Each kind of edit and how many times it comes in every round of the deck."""


@dataclass
class Tally:
    edits: int = 0
    built: int = 0
    failed_alike: int = 0
    repairs: int = 0
    kinds: dict[str, int] | None = None


class Run:
    """One project, one seed, one sequence of edits."""

    def __init__(self, seed: int, base: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool):
        self.seed = seed
        self.base = base
        self.monkeypatch = monkeypatch
        self.rng = random.Random(seed)
        self.log: list[str] = []
        self.tally = Tally(kinds={})
        root = base / "project"
        elsewhere = base / "elsewhere"
        elsewhere.mkdir(parents=True)
        as_of = edits.make_project(root, self.rng)
        hooks = Hooks(
            code_digest=lambda value: self._patched(change_code_digest, value),
            library_versions=lambda value: self._patched(change_library_versions, value),
            zone_rules=self.zone_rules,
            key_days=self.key_days,
        )
        self.state = State(root, elsewhere, self.rng, hooks, as_of, in_place)
        self.user_cache = base / "xdg" / "famfeeds"
        self.zone_folders = 0
        self.stopped_by_strict = False
        """The last build failed only because --strict made its warnings errors."""
        import famfeeds

        package = Path(famfeeds.__file__).resolve().parent
        self.shipped_locale = package / "locale"
        found = [package / "templates", package.parents[1] / "templates"]
        self.shipped_templates = next(p for p in found if (p / "base.html.j2").is_file())
        self.deck: list[str] = []

    # Hooks

    def _patched(self, adapter: Callable[..., list[str]], value: str | None) -> None:
        adapter(self.monkeypatch, value)

    def zone_rules(self, zone: str, donor: str | None) -> str:
        if donor is None:
            self.state.zones.pop(zone, None)
        else:
            self.state.zones[zone] = donor
        self.zone_folders += 1
        use_zone_rules(self.base / f"tz-{self.zone_folders}", dict(self.state.zones))
        rules = ", ".join(f"{z} has {d}'s rules" for z, d in sorted(self.state.zones.items()))
        return f"zone rules: {rules or 'the real ones again'}"

    def key_days(self) -> list[date]:
        """Release and issue days, from ``famfeeds schedule --json`` ([] if it fails)."""
        from famfeeds.cli import cli

        args = ["schedule", "--content", str(self.state.content), "--json"]
        result = CliRunner().invoke(cli, [*args, "--as-of", self.state.as_of.isoformat()])
        if result.exit_code != 0:
            return []
        found: set[str] = set()
        for season in json.loads(result.stdout).get("seasons", []):
            found.add(season.get("preview_issue") or "")
            for episode in season.get("episodes", []):
                found.update((episode.get("date") or "", episode.get("issue") or ""))
        return sorted(date.fromisoformat(day) for day in found if day)

    # Edits

    def next_kind(self) -> str:
        if not self.deck:
            self.deck = [kind for kind, weight in KINDS for _ in range(weight)]
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    def edit(self) -> tuple[str, str]:
        state = self.state
        if state.broken and self.rng.random() < 0.5:
            return "fix", edits.fix(state)
        if self.stopped_by_strict and self.rng.random() < 0.5:
            # Warnings no edit marked broken (a note left without its issue, a date moved
            # far) would otherwise stop every later build of a long run under --strict.
            state.strict = False
            return "fix", "no --strict (its warnings stopped the build)"
        kind = self.next_kind()
        make: dict[str, Callable[[], str]] = {
            "episode": lambda: edits.edit_episode(state),
            "season": lambda: edits.edit_season(state),
            "show": lambda: edits.edit_show(state),
            "note": lambda: edits.edit_note(state),
            "structure": lambda: edits.edit_structure(state),
            "content links": lambda: edits.edit_links(state),
            "template": lambda: edits.edit_template(state, self.shipped_templates),
            "catalogue": lambda: edits.edit_catalogue(state, self.shipped_locale),
            "zone rules": lambda: edits.edit_zone_rules(state),
            "code and libraries": lambda: edits.edit_code(state),
            "as-of": lambda: edits.edit_as_of(state),
            "output": lambda: edits.edit_output(state),
            "cache": lambda: edits.edit_cache(state, self.user_cache),
            "lock": lambda: edits.edit_lock(state),
            "build options": lambda: edits.edit_options(state),
            "nothing": lambda: edits.nothing(state),
        }
        return kind, make[kind]()

    # Checks

    def fail(self, step: int, problem: str) -> NoReturn:
        log = "\n".join(self.log[-80:])
        pytest.fail(
            f"seed {self.seed}, step {step} (in place: {self.state.in_place}): {problem}\n"
            f"edit log (last 80 of {len(self.log)}; the step's edit is the last):\n{log}",
            pytrace=False,
        )

    def scratch_copy(self, step: int, lock: bytes | None) -> Path:
        """The inputs of the project, copied into a fresh folder (links followed)."""
        scratch = self.base / f"scratch-{step}"
        shutil.copytree(self.state.content, scratch / "content")
        for folder in ("templates", "locale"):
            source = self.state.root / folder
            if source.exists():
                shutil.copytree(source, scratch / folder)  # symlinks=False: follows links
        if lock is not None:
            (scratch / "famfeeds.lock").write_bytes(lock)
        return scratch

    def paths(self, root: Path) -> dict[str, str]:
        found = {str(root): "<PROJECT>", str(root.resolve()): "<PROJECT>"}
        templates = root / "templates"
        if templates.is_symlink():
            found[str(templates.resolve())] = "<PROJECT>/templates"
        partials = templates / "partials"
        if partials.is_symlink():
            found[str(partials.resolve())] = "<PROJECT>/templates/partials"
        return found

    def check(self, step: int) -> None:
        state = self.state
        lock_file = state.root / "famfeeds.lock"
        lock = lock_file.read_bytes() if lock_file.exists() else None
        before = snapshot(state.output)
        scratch = self.scratch_copy(step, lock)
        got, expected = build_both(state.root, scratch, state.as_of, state.options, FORK)
        self.stopped_by_strict = got.exit_code != 0 and "treated as errors" in got.stderr
        mine, theirs = self.paths(state.root), self.paths(scratch)

        # What the builds said.
        if got.exception != expected.exception or got.exit_code != expected.exit_code:
            self.fail(
                step,
                f"exit {got.exit_code} (incremental) != {expected.exit_code} (from nothing)\n"
                f"incremental: {got.exception}\n{normal(got.stderr, mine)}\n"
                f"from nothing: {expected.exception}\n{normal(expected.stderr, theirs)}",
            )
        said = normal(got.stderr, mine).splitlines()
        heard = normal(expected.stderr, theirs).splitlines()
        extra = [line for line in said if line not in heard]
        for part, pattern in REPAIRS.items():
            repaired = [line for line in extra if pattern.search(line)]
            if repaired and part in state.damaged:
                self.tally.repairs += 1
                said = [line for line in said if line not in repaired]
                if part == "memo":
                    state.damaged.discard(part)
        if said != heard:
            diff = difflib.unified_diff(heard, said, "from nothing", "incremental", lineterm="")
            self.fail(step, "the builds' messages differ:\n" + "\n".join(diff))
        if stdout_lines(normal(got.stdout, mine)) != stdout_lines(normal(expected.stdout, theirs)):
            self.fail(
                step, f"summaries differ:\n{got.stdout}\n---- from nothing:\n{expected.stdout}"
            )

        # What they wrote.
        after = snapshot(state.output)
        if got.exit_code != 0:
            if after != before:
                self.fail(
                    step, "a failed build changed output/:\n" + tree_differences(after, before)
                )
            if (lock_file.read_bytes() if lock_file.exists() else None) != lock:
                self.fail(step, "a failed build changed famfeeds.lock")
            self.tally.failed_alike += 1
        else:
            for name, data in state.own_files.items():
                if after.get(name) != data:
                    self.fail(step, f"the user's own output/{name} was not kept as it was")
            built = {name: data for name, data in after.items() if name not in state.own_files}
            made = snapshot(scratch / state.output_name)
            if built != made:
                self.fail(step, "output trees differ:\n" + tree_differences(built, made))
            mine_lock = lock_file.read_bytes() if lock_file.exists() else b""
            their_lock = scratch / "famfeeds.lock"
            expected_lock = their_lock.read_bytes() if their_lock.exists() else b""
            if mine_lock != expected_lock:
                lines = text_diff("famfeeds.lock", mine_lock, expected_lock, context=2)
                self.fail(step, "famfeeds.lock differs:\n" + "\n".join(lines))
            self.tally.built += 1
            state.locks = [*state.locks[-9:], mine_lock]
        shutil.rmtree(scratch)

    def run(self, count: int) -> Tally:
        """``count`` edits, then more until every kind of edit has come at least once: one
        round of the deck holds every kind, so a short run still covers them all."""
        every = {kind for kind, _ in KINDS}
        limit = count + 4 * sum(weight for _, weight in KINDS)
        self.log.append(f"step 0: a first build as of {self.state.as_of}")
        self.check(0)
        step = 0
        while step < count or not every <= set(self.tally.kinds or {}):
            step += 1
            if step > limit:
                self.fail(step, f"no edit of {sorted(every - set(self.tally.kinds or {}))}")
            kind, done = self.edit()
            assert self.tally.kinds is not None
            self.tally.kinds[kind] = self.tally.kinds.get(kind, 0) + 1
            self.log.append(f"step {step} [{kind}] {done} (as of {self.state.as_of})")
            self.check(step)
            self.tally.edits += 1
        return self.tally


@contextlib.contextmanager
def isolated(base: Path) -> Iterator[pytest.MonkeyPatch]:
    """A MonkeyPatch for one run; afterwards the real zone rules, code digest and library
    versions again, and no key computed under the patches left in any cache."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg"))
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        try:
            yield monkeypatch
        finally:
            use_zone_rules(base / "tz-none", {})
    clear_key_caches()


def differential(seed: int, count: int, base: Path, in_place: bool) -> Tally:
    with isolated(base) as monkeypatch:
        if in_place:
            write_in_place(monkeypatch)
        tally = Run(seed, base, monkeypatch, in_place).run(count)
    assert tally.built >= count // 2, f"too few builds succeeded to mean much: {tally}"
    return tally


# The tests -----------------------------------------------------------------------------------

MEMORY = Path("/dev/shm")


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    """A folder for the run, in memory (tmpfs) where there is one: every build flushes its
    output to disk (syncfs), which costs a tenth of a second a build on a real disk and
    nothing on tmpfs. FAMFEEDS_DIFFERENTIAL_TMP=disk keeps it in tmp_path."""
    import tempfile

    if os.environ.get("FAMFEEDS_DIFFERENTIAL_TMP") == "disk" or not (
        MEMORY.is_dir() and os.access(MEMORY, os.W_OK)
    ):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="famfeeds-differential-", dir=MEMORY))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SEEDS = (101, 202, 303, 404, 505, 606)
EDITS = 50
"""The default suite: 6 runs of at least 50 edits (300 in all), each followed by both builds
and the comparison (the even seeds write in place, the odd ones swap); every kind of edit
comes in each run (Run.run goes on until it has)."""
SLOW_SEEDS = (707, 808, 909, 1010)
SLOW_EDITS = 50
"""``-m slow`` adds 4 runs of 50 with other seeds, and the long run below."""


@pytest.mark.parametrize(
    ("seed", "count"),
    [pytest.param(seed, EDITS, id=str(seed)) for seed in SEEDS]
    + [pytest.param(seed, SLOW_EDITS, id=str(seed), marks=pytest.mark.slow) for seed in SLOW_SEEDS],
)
def test_incremental_builds_equal_builds_from_nothing(seed: int, count: int, base: Path) -> None:
    tally = differential(seed, count, base, in_place=seed % 2 == 0)
    assert tally.kinds is not None
    assert {kind for kind, _ in KINDS} <= set(tally.kinds), tally.kinds


@pytest.mark.slow
def test_a_long_run_of_edits(base: Path) -> None:
    """FAMFEEDS_DIFFERENTIAL_EDITS edits (default 5,000) with FAMFEEDS_DIFFERENTIAL_SEED,
    in place and swapped half each."""
    count = int(os.environ.get("FAMFEEDS_DIFFERENTIAL_EDITS", "5000"))
    seed = int(os.environ.get("FAMFEEDS_DIFFERENTIAL_SEED", "20261207"))
    half = count // 2
    differential(seed, half, base / "in-place", in_place=True)
    differential(seed + 1, count - half, base / "swap", in_place=False)
