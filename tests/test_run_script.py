"""tests/run.py, the one command that installs what the tests need and runs them: what it
installs on a bare machine, with which rights, and that a second run installs nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support import REPO

SCRIPT = REPO / "tests" / "run.py"
BRIEF = ["chromium", "libcairo2", "dovecot-imapd", "tmux", "nodejs", "npm"]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("famfeeds_test_runner", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


runner = load_script()


def bare(euid: int, *commands: str) -> object:
    """A machine with none of the list's packages, only the given commands on PATH."""
    return runner.Machine(
        which=lambda name: f"/usr/bin/{name}" if name in commands else None,
        exists=lambda path: False,
        loads=lambda library: False,
        has_module=lambda name: False,
        euid=lambda: euid,
    )


def test_the_list_names_every_package_the_tests_drive() -> None:
    requirements = runner.read_requirements()
    packages = [r.package for r in requirements]
    assert set(BRIEF) <= set(packages)
    assert {"python3-venv", "gettext", "openssl", "git", "fonts-liberation"} <= set(packages)
    assert len(packages) == len(set(packages))
    assert all(r.why for r in requirements), "every package says which tests need it"


def test_a_bare_machine_as_root_installs_the_whole_list_then_stops_dovecot() -> None:
    machine = bare(0, "apt-get")
    requirements = runner.read_requirements()
    absent = runner.missing(requirements, machine)
    assert absent == requirements
    packages = [r.package for r in absent]
    commands = runner.install_commands(packages, runner.privilege(machine, packages))
    apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    assert commands[0] == [*apt, "update", "-qq"]
    assert commands[1] == [*apt, "install", "-y", "-qq", *packages]
    assert commands[2][:2] == ["sh", "-c"] and "systemctl stop dovecot" in commands[2][2]
    assert len(commands) == 3


def test_a_user_with_sudo_installs_through_sudo() -> None:
    machine = bare(1000, "apt-get", "sudo")
    commands = runner.install_commands(["tmux"], runner.privilege(machine, ["tmux"]))
    assert [c[0] for c in commands] == ["sudo", "sudo"]  # no dovecot: nothing to stop


def test_a_user_without_sudo_is_told_what_to_run_as_root() -> None:
    with pytest.raises(runner.SetupError) as caught:
        runner.privilege(bare(1000, "apt-get"), ["chromium", "tmux"])
    assert "needs root" in str(caught.value)
    assert "apt-get install -y chromium tmux" in str(caught.value)


def test_a_machine_without_apt_get_gets_the_list_to_install_by_hand() -> None:
    with pytest.raises(runner.SetupError, match=r"no apt-get.*: chromium tmux$"):
        runner.privilege(bare(0), ["chromium", "tmux"])


def test_each_kind_of_check_is_asked_of_the_machine() -> None:
    requirement = runner.Requirement
    machine = runner.Machine(
        which=lambda name: "/bin/tmux" if name == "tmux" else None,
        exists=lambda path: path == "/usr/sbin/dovecot",
        loads=lambda library: library == "libcairo.so.2",
        has_module=lambda name: name == "ensurepip",
        euid=lambda: 0,
    )
    there = [
        requirement("tmux", "command", "tmux", ""),
        requirement("dovecot-imapd", "file", "/usr/sbin/dovecot", ""),
        requirement("libcairo2", "library", "libcairo.so.2", ""),
        requirement("python3-venv", "module", "ensurepip", ""),
    ]
    absent = [
        requirement("chromium", "command", "chromium", ""),
        requirement("x", "file", "/nowhere", ""),
        requirement("y", "library", "libnothing.so.9", ""),
        requirement("z", "module", "nothing_here", ""),
    ]
    assert runner.missing(there + absent, machine) == absent


def test_a_wrong_line_in_the_list_names_the_file_and_line(tmp_path: Path) -> None:
    listing = tmp_path / "debian-packages.txt"
    listing.write_text("# comment\n\ntmux command:tmux  # ok\nchromium  # no check\n")
    with pytest.raises(runner.SetupError, match=r"debian-packages.txt, line 4: expected a pack"):
        runner.read_requirements(listing)
    listing.write_text("tmux program:tmux\n")
    with pytest.raises(runner.SetupError, match=r"line 1: the check 'program:tmux' must be"):
        runner.read_requirements(listing)


def test_npm_ci_runs_again_only_when_the_lock_changes(tmp_path: Path) -> None:
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3}')
    [command] = runner.npm_commands(tmp_path)
    assert command[:2] == ["npm", "ci"] and command[-2:] == ["--prefix", str(tmp_path)]
    (tmp_path / "node_modules").mkdir()
    stamp = tmp_path / "node_modules" / runner.NPM_STAMP
    stamp.write_text(runner.digest(tmp_path / "package-lock.json"))
    assert runner.npm_commands(tmp_path) == []
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}')
    assert len(runner.npm_commands(tmp_path)) == 1


def test_the_venv_is_made_once_and_pip_runs_again_only_for_a_new_pyproject(
    tmp_path: Path,
) -> None:
    venv, repo = tmp_path / "venv", tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text("[project]\n")
    make, install = runner.venv_commands(venv, repo)
    assert make == [sys.executable, "-m", "venv", str(venv)]
    assert install[-2:] == ["-e", f"{repo}[test]"]
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    assert runner.venv_commands(venv, repo) == [install]
    (venv / runner.PIP_STAMP).write_text(runner.install_digest(repo / "pyproject.toml"))
    assert runner.venv_commands(venv, repo) == []
    (repo / "pyproject.toml").write_text("[project]\n\n[tool.pytest.ini_options]\naddopts = []\n")
    assert runner.venv_commands(venv, repo) == []  # a tool's settings: nothing to install
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert runner.venv_commands(venv, repo) == [install]
    (venv / runner.PIP_STAMP).write_text(runner.install_digest(repo / "pyproject.toml"))
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n[tool.hatch.build]\nx = 1\n")
    assert runner.venv_commands(venv, repo) == [install]


def test_pytest_runs_on_workers_and_takes_the_arguments_given() -> None:
    python = str(runner.VENV / "bin" / "python")
    assert runner.pytest_command(["-k", "feeds"]) == [
        python, "-m", "pytest", "-n", runner.WORKERS, "--dist", "worksteal", "-k", "feeds",
    ]  # fmt: skip
    assert runner.pytest_command(["-n", "0", "tests/test_feeds.py"])[3:] == [
        "-n", "0", "tests/test_feeds.py",
    ]  # fmt: skip
    assert runner.pytest_command(["-p", "no:xdist"])[3:] == ["-p", "no:xdist"]


def dry_run(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_dry_run_with_no_commands_on_path_lists_what_it_would_install(
    tmp_path: Path,
) -> None:
    """PATH holds only a stand-in apt-get: every package found by a command is listed
    (files, libraries and modules are this machine's own, so those may be there)."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "apt-get").write_text('#!/bin/sh\n: > "$0.called"\nexit 99\n')
    (stubs / "apt-get").chmod(0o755)
    done = dry_run(str(stubs))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    by_command = [
        r.package for r in runner.read_requirements() if r.kind == "command"
    ]  # git, gettext, chromium, openssl, tmux, nodejs, npm
    named = {line.split()[1] for line in lines if line.startswith("missing ")}
    assert set(by_command) <= named
    install = next(line for line in lines if " install -y " in line)
    assert install.split()[:3] == ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    assert set(by_command) <= set(install.split())
    assert lines[-1].endswith("-m pytest -n 4 --dist worksteal -q")
    assert not (stubs / "apt-get.called").exists()  # a dry run runs nothing


def test_the_dry_run_without_apt_get_fails_with_the_list(tmp_path: Path) -> None:
    done = dry_run(str(tmp_path))
    assert done.returncode == 2
    assert "this machine has no apt-get" in done.stderr
    assert "chromium" in done.stderr and "tmux" in done.stderr


def test_the_tests_folders_go_to_memory_only_when_it_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmp_path folders under a writable /dev/shm with 2 GiB free; not under a 64 MB one
    (a container's default), a missing one, or when the caller chose a folder."""
    assert runner.temp_variables({}, tmp_path) == {"PYTEST_DEBUG_TEMPROOT": str(tmp_path)}
    assert runner.temp_variables({"PYTEST_DEBUG_TEMPROOT": "/srv/t"}, tmp_path) == {}
    assert runner.temp_variables({}, tmp_path / "missing") == {}
    real = os.statvfs

    def small(path: object) -> os.statvfs_result:
        found = real(path)  # type: ignore[arg-type]
        fields = list(found)
        fields[0] = fields[1] = 4096  # f_bsize, f_frsize
        fields[4] = 64 * 1024**2 // 4096  # f_bavail: 64 MB
        return os.statvfs_result(fields)

    monkeypatch.setattr(runner.os, "statvfs", small)
    assert runner.temp_variables({}, tmp_path) == {}
