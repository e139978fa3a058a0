"""The two boundaries stay where the layout says: render/ is pure, imports go one way."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

PACKAGE = REPO / "src" / "famfeeds"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    """Every famfeeds module ``path`` imports, at any depth (function-level imports too)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in MODULES and m != name}


def graph(type_checking: bool = False) -> dict[str, set[str]]:
    return {name: imports_of(path, name) for name, path in MODULES.items()}


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    # famfeeds.cli registers commands from its submodules; a package importing its own
    # children is not a cycle in the design sense, so packages' __init__ edges are dropped.
    for name in edges:
        edges[name] = {m for m in edges[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


ROOMS = ("errors", "records", "plan", "render", "build", "delivery", "cli")
"""The pipeline's rooms, lowest first: a module imports only from its own room or lower."""


def room_of(name: str) -> int:
    """The floor of a famfeeds module: the index of its room in ROOMS."""
    part = name.split(".")[1] if "." in name else "cli"  # the package itself starts the CLI
    return len(ROOMS) - 1 if part == "__main__" else ROOMS.index(part)


def test_every_module_lives_in_a_room() -> None:
    loose = [
        name
        for name in MODULES
        if name.count(".") == 1 and name.split(".")[1] not in (*ROOMS, "__main__")
    ]
    assert not loose, f"modules outside the rooms {ROOMS}: {loose}"


def test_imports_run_down_the_pipeline_never_back_up() -> None:
    upward = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in sorted(targets)
        if room_of(target) > room_of(name)
    ]
    assert not upward, "imports running back up the pipeline: " + ", ".join(upward)


def test_nothing_below_the_build_imports_the_project_or_the_disk() -> None:
    for name, path in MODULES.items():
        if room_of(name) < ROOMS.index("build"):
            bad = [m for m in imports_of(path, name) if m.startswith("famfeeds.build")]
            assert not bad, f"{name} imports {bad}"


CACHE_MODULES = {"pickle", "marshal", "shelve", "sqlite3", "dbm", "diskcache"}
CACHE_NAMES = re.compile(
    r"\b(memo\w*|Memo\w*|LazyFiles|StaleMemo|Evaluator|Fingerprints|cache_key|"
    r"templates_key|season_keys?|show_key|key_of|remember)\b"
)


def test_render_holds_no_cache_code() -> None:
    """render/ knows nothing of caching: no store, no memo, no keys listed by hand. Its
    steps go through RenderContext.call, which the build's evaluator keys by the step's
    arguments (famfeeds.build.evaluate)."""
    for name, path in MODULES.items():
        if not name.startswith("famfeeds.render"):
            continue
        text = path.read_text(encoding="utf-8")
        imported = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & CACHE_MODULES, f"{name} imports {imported & CACHE_MODULES}"
        found = CACHE_NAMES.search(text)
        assert found is None, f"{name} names {found.group(0) if found else ''}"


def test_every_step_a_renderer_calls_is_a_module_function() -> None:
    """What goes through ``call(step, ...)`` is a module's own function, named, so its key
    is its module, its name and its arguments (a lambda or a local function could read an
    input no argument holds)."""
    steps = 0
    for name, path in MODULES.items():
        if not name.startswith("famfeeds.render"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            callee = node.func
            called = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
            if called != "call":
                continue
            step = node.args[0]
            assert isinstance(step, ast.Name) and step.id in top, (
                f"{name}:{node.lineno}: call() of something other than a module function"
            )
            steps += 1
    assert steps >= 10  # the calendar's, the feeds', the pages', the site's, the newsletter's


def test_delivery_never_imports_click() -> None:
    for name, path in MODULES.items():
        if name.startswith("famfeeds.delivery"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                    assert not any(n.split(".")[0] == "click" for n in names), name


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-c", f"import {name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in MODULES
        if not name.endswith("__main__")
    }
    failures = {}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=120)
        if process.returncode:
            failures[name] = output[-800:]
    assert not failures, failures


IMPURE = """\
import os
from datetime import date, datetime

def f() -> object:
    return datetime.now(), date.today(), os.environ
"""


def test_ruff_refuses_the_clock_and_the_environment_in_render() -> None:
    probe = PACKAGE / "render" / "probe.py"
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename", str(probe), "-"],
        input=IMPURE,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    for banned in ("`os` is banned", "`datetime.datetime.now` is banned", "date.today"):
        assert banned in result.stdout, result.stdout
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--select",
            "TID251",
            "--stdin-filename",
            str(PACKAGE / "build_probe.py"),
            "-",
        ],
        input=IMPURE,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert elsewhere.returncode == 0, elsewhere.stdout


def test_every_library_the_pure_side_imports_is_in_the_code_key() -> None:
    """A library imported by records/, plan/ or render/ shapes what a build makes, so an
    upgrade of it must clear the caches: its distribution is on famfeeds.build.keys.LIBRARIES."""
    import importlib.metadata

    from famfeeds.build import keys

    listed = {keys._normal(name) for name in keys.LIBRARIES}
    owners = importlib.metadata.packages_distributions()
    missing: dict[str, str] = {}
    for room in ("records", "plan", "render"):
        for path in sorted((PACKAGE / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    tops = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in tops:
                    if top in sys.stdlib_module_names or top in ("famfeeds", "__future__"):
                        continue
                    for dist in owners.get(top, [top]):
                        if keys._normal(dist) not in listed:
                            missing[keys._normal(dist)] = path.relative_to(PACKAGE).as_posix()
    assert missing == {}
