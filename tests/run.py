#!/usr/bin/env python3
"""Install everything the tests need, then run them: ``python3 tests/run.py [pytest args]``.

On a Debian or Ubuntu machine with only python3, as root or as a user who may use sudo:

1. the Debian packages of tests/debian-packages.txt whose check fails, with apt-get (dovecot's
   system instance is stopped afterwards: the tests start their own on free ports);
2. the npm packages of tests/package-lock.json into tests/node_modules, with ``npm ci``;
3. .venv, made by this python3, with ``pip install -e '.[test]'``;
4. pytest over both cores (pytest-xdist); the arguments given to this script go to pytest.
   The tests' tmp_path folders go to /dev/shm when it is a writable folder with 2 GiB free
   (a tmpfs on Linux: the builds' fsync and syncfs cost nothing there, where on a disk
   they wait for every other test's writes); PYTEST_DEBUG_TEMPROOT, when set, chooses
   instead.

Each step is skipped when its result is already there (the packages' checks pass, a stamp
records the digest of the lock file and of what pip reads from pyproject.toml), so a second
run starts pytest at once. ``--dry-run`` prints what would be installed and run, and changes
nothing.

Written in Python, not shell, so that it runs wherever python3 does, reads its package list
with errors that name the line, and its decisions are tested (tests/test_run_script.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
PACKAGE_LIST = TESTS / "debian-packages.txt"
VENV = REPO / ".venv"
WORKERS = "4"
"""pytest-xdist workers: the suite spends much of its time waiting on the processes it
starts (builds it kills, servers, Chromium), so four workers keep two cores busier than two."""
MEMORY = Path("/dev/shm")
MEMORY_FREE = 2 * 1024**3
"""The tests' folders go to MEMORY when it has this many bytes free (a container's default
/dev/shm of 64 MB does not)."""
TEMP_ROOT = "PYTEST_DEBUG_TEMPROOT"
"""pytest's variable for the folder under which tmp_path folders are made."""
NPM_STAMP = ".famfeeds-lock-digest"
PIP_STAMP = ".famfeeds-test-install"
CHECK_KINDS = ("command", "file", "library", "module")


class SetupError(Exception):
    """Something this script cannot do by itself: the message says what to do instead."""


@dataclass(frozen=True)
class Requirement:
    """One line of the package list: a Debian package and how to tell it is there."""

    package: str
    kind: str
    target: str
    why: str


def read_requirements(path: Path = PACKAGE_LIST) -> list[Requirement]:
    """The list's lines ``package kind:target # why``; blank lines and comment lines skipped."""
    found: list[Requirement] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text, _, why = line.partition("#")
        words = text.split()
        if not words:
            continue
        where = f"{path}, line {number}"
        if len(words) != 2 or ":" not in words[1]:
            raise SetupError(f"{where}: expected a package and a check such as command:tmux")
        kind, _, target = words[1].partition(":")
        if kind not in CHECK_KINDS or not target:
            raise SetupError(
                f"{where}: the check {words[1]!r} must be one of "
                + ", ".join(f"{k}:NAME" for k in CHECK_KINDS)
            )
        found.append(Requirement(words[0], kind, target, why.strip()))
    return found


def loads(library: str) -> bool:
    """Whether the dynamic linker finds and loads ``library``, as cairocffi will."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


@dataclass
class Machine:
    """What the script asks of the machine; the tests give it stand-ins."""

    which: Callable[[str], str | None] = shutil.which
    exists: Callable[[str], bool] = os.path.exists
    loads: Callable[[str], bool] = loads
    has_module: Callable[[str], bool] = lambda name: importlib.util.find_spec(name) is not None
    euid: Callable[[], int] = os.geteuid
    commands: list[list[str]] = field(default_factory=list)

    def present(self, requirement: Requirement) -> bool:
        """Whether the requirement's command, file, library or module is there."""
        check = {
            "command": lambda t: self.which(t) is not None,
            "file": self.exists,
            "library": self.loads,
            "module": self.has_module,
        }[requirement.kind]
        return bool(check(requirement.target))


def missing(requirements: Sequence[Requirement], machine: Machine) -> list[Requirement]:
    """The requirements whose check fails, in the list's order."""
    return [r for r in requirements if not machine.present(r)]


def privilege(machine: Machine, packages: Sequence[str]) -> list[str]:
    """The prefix that lets apt-get install: none as root, sudo otherwise."""
    if machine.which("apt-get") is None:
        raise SetupError(
            "this machine has no apt-get; install these Debian packages (or their equivalents) "
            "by hand, then run this again: " + " ".join(packages)
        )
    if machine.euid() == 0:
        return []
    if machine.which("sudo") is not None:
        return ["sudo"]
    raise SetupError(
        "the tests need Debian packages that are not installed, and installing them needs root: "
        "run this as root, or install sudo, or run as root: apt-get update && apt-get install -y "
        + " ".join(packages)
    )


def install_commands(packages: Sequence[str], prefix: Sequence[str]) -> list[list[str]]:
    """apt-get update and install; then dovecot's system instance is stopped when it came."""
    apt = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    commands = [[*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", *packages]]
    if "dovecot-imapd" in packages:
        stop = "systemctl stop dovecot >/dev/null 2>&1 || service dovecot stop >/dev/null 2>&1"
        commands.append([*prefix, "sh", "-c", stop + " || true"])
    return commands


def digest(*paths: Path) -> str:
    """The SHA-256 of the files' bytes and of where this checkout is."""
    hashed = hashlib.sha256(str(REPO).encode())
    for path in paths:
        hashed.update(path.read_bytes())
    return hashed.hexdigest()


def install_digest(pyproject: Path) -> str:
    """The digest of what ``pip install -e`` reads from ``pyproject`` (the build system, the
    project's metadata and dependencies, hatch's build settings) and of where this checkout
    is: a change to the tools' settings (pytest, ruff, mypy) installs nothing again. A file
    that does not parse: the digest of its bytes (pip will say what is wrong)."""
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return digest(pyproject)
    read = {
        "build-system": data.get("build-system"),
        "project": data.get("project"),
        "hatch": data.get("tool", {}).get("hatch"),
    }
    hashed = hashlib.sha256(str(REPO).encode())
    hashed.update(json.dumps(read, sort_keys=True, default=str).encode())
    return hashed.hexdigest()


def stamped(stamp: Path, value: str) -> bool:
    """Whether ``stamp`` holds ``value``: the step that wrote it has nothing left to do."""
    return stamp.is_file() and stamp.read_text(encoding="utf-8") == value


def npm_commands(tests: Path = TESTS) -> list[list[str]]:
    """``npm ci`` unless tests/node_modules came from today's package-lock.json."""
    if stamped(tests / "node_modules" / NPM_STAMP, digest(tests / "package-lock.json")):
        return []
    return [["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(tests)]]


def venv_commands(venv: Path = VENV, repo: Path = REPO) -> list[list[str]]:
    """Make .venv when it is missing; install the project with its [test] extra when
    pyproject.toml changed since the last install."""
    commands = []
    if not (venv / "bin" / "python").exists():
        commands.append([sys.executable, "-m", "venv", str(venv)])
    if not stamped(venv / PIP_STAMP, install_digest(repo / "pyproject.toml")):
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        commands.append([*pip, "--disable-pip-version-check", "-e", f"{repo}[test]"])
    return commands


def pytest_command(args: Sequence[str], venv: Path = VENV) -> list[str]:
    """pytest in .venv, on WORKERS workers unless the arguments choose (-n, -p no:xdist)."""
    chosen = any(a == "no:xdist" or a.startswith(("-n", "--numprocesses")) for a in args)
    workers = [] if chosen else ["-n", WORKERS, "--dist", "worksteal"]
    return [str(venv / "bin" / "python"), "-m", "pytest", *workers, *args]


def temp_variables(
    environ: Mapping[str, str] = os.environ, memory: Path = MEMORY
) -> dict[str, str]:
    """The variables pytest gets besides the caller's: the tests' temporary folders in
    ``memory`` when it is a writable folder with MEMORY_FREE bytes free, unless the caller
    chose a folder (TEMP_ROOT set)."""
    if TEMP_ROOT in environ or not memory.is_dir() or not os.access(memory, os.W_OK | os.X_OK):
        return {}
    try:
        found = os.statvfs(memory)
    except OSError:
        return {}
    if found.f_bavail * found.f_frsize < MEMORY_FREE:
        return {}
    return {TEMP_ROOT: str(memory)}


def run(command: Sequence[str], cwd: Path = REPO) -> None:
    """Run one step, echoed; a failed step ends the script with its exit code."""
    print("+ " + " ".join(command), flush=True)
    done = subprocess.run(command, cwd=cwd, check=False)
    if done.returncode:
        raise SystemExit(done.returncode)


def main(argv: Sequence[str], machine: Machine | None = None) -> int:
    """Install what is missing, then run pytest; ``--dry-run`` only prints the plan."""
    machine = machine or Machine()
    dry = "--dry-run" in argv
    args = [a for a in argv if a != "--dry-run"]
    try:
        if sys.version_info < (3, 11):  # noqa: UP036 (python3 may be older than the project)
            raise SetupError(f"famfeeds needs Python 3.11 or newer, not {sys.version.split()[0]}")
        absent = missing(read_requirements(), machine)
        packages = list(dict.fromkeys(r.package for r in absent))
        steps: list[list[str]] = []
        if packages:
            for r in absent:
                print(f"missing {r.package} ({r.kind} {r.target}): {r.why}", flush=True)
            steps += install_commands(packages, privilege(machine, packages))
    except SetupError as error:
        print(f"tests/run.py: {error}", file=sys.stderr)
        return 2
    if dry:
        # The later steps' stamps depend on the earlier steps, so they are shown as they stand.
        shown = [f"{k}={v}" for k, v in temp_variables().items()]
        steps += npm_commands() + venv_commands() + [[*shown, *pytest_command(args)]]
        for command in steps:
            print(" ".join(command))
        if not packages:
            print("(every Debian package the tests need is installed)")
        return 0
    for command in steps:
        run(command)
    for command in npm_commands():
        run(command)
        stamp = TESTS / "node_modules" / NPM_STAMP
        stamp.write_text(digest(TESTS / "package-lock.json"), encoding="utf-8")
    for command in venv_commands():
        run(command)
    (VENV / PIP_STAMP).write_text(install_digest(REPO / "pyproject.toml"), encoding="utf-8")
    command = pytest_command(args)
    variables = temp_variables()
    print("+ " + " ".join([*(f"{k}={v}" for k, v in variables.items()), *command]), flush=True)
    os.environ.update(variables)
    os.chdir(REPO)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
