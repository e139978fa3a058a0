"""The ways the docs give to keep ``famfeeds run`` running: a systemd unit and a container.

The unit is checked by systemd's own ``systemd-analyze verify`` (with ExecStart pointed at
this checkout's famfeeds, as an installation would); the container recipe's command is run as
the image would run it, in a project folder. Building the image needs a base image from a
registry, which a test machine does not reach, so the image itself is not built here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, SEASON_TOML, SHOW_TOML, Project, episode_text

UNIT = REPO / "docs" / "run" / "famfeeds-run@.service"
CONTAINERFILE = REPO / "docs" / "run" / "Containerfile"


def famfeeds_command() -> str:
    found = Path(sys.executable).with_name("famfeeds")
    assert found.exists(), f"no famfeeds script beside {sys.executable}"
    return str(found)


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: tests/run.py installs Debian's systemd"
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/famfeeds/bin/famfeeds run\n" in text
    unit = tmp_path / UNIT.name
    unit.write_text(
        text.replace("/opt/famfeeds/bin/famfeeds", famfeeds_command()), encoding="utf-8"
    )
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "famfeeds-run@my-show.service")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    complaints = [line for line in done.stderr.splitlines() if UNIT.name in line]
    assert done.returncode == 0 and not complaints, done.stderr


def test_a_broken_unit_is_caught_by_the_same_check(tmp_path: Path) -> None:
    """The check above can fail: an ExecStart that does not exist is refused."""
    analyze = shutil.which("systemd-analyze")
    assert analyze
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8"), encoding="utf-8")  # /opt/... is absent
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "famfeeds-run@my-show.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 or UNIT.name in done.stderr


def instructions() -> dict[str, str]:
    found: dict[str, str] = {}
    logical = ""
    for line in CONTAINERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        logical += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = logical.strip().partition(" ")
            found[word] = rest
            logical = ""
    return found


def test_the_container_runs_famfeeds_run_in_the_mounted_project(tmp_path: Path) -> None:
    """The recipe's command, run where the image runs it (the project folder), with
    ``--once`` added: it builds the mounted show and exits 0."""
    import json

    steps = instructions()
    assert steps["WORKDIR"] == "/show" and steps["VOLUME"] == "/show"
    assert steps["USER"] == "famfeeds" and steps["STOPSIGNAL"] == "SIGTERM"
    command = json.loads(steps["CMD"])
    assert command == ["famfeeds", "run"]
    project = Project(tmp_path / "show")
    project.write("show.toml", SHOW_TOML.format(timezone="Europe/Paris"))
    project.write(
        "season-01/season.toml",
        SEASON_TOML.format(number=1, premiere="2024-01-05", cadence="weekly", extra=""),
    )
    project.write("season-01/01-pilot.md", episode_text(1, "Pilot"))
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["PATH"] = f"{Path(famfeeds_command()).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [*command, "--once"], cwd=project.root, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "built output/" in done.stderr
    assert (project.output / "feed.xml").exists()
    assert "pip install --no-cache-dir /wheels/*.whl" in steps["RUN"]
    assert shlex.split(steps["RUN"])[0] == "python"


@pytest.mark.parametrize("path", [UNIT, CONTAINERFILE])
def test_the_docs_page_shows_the_shipped_files(path: Path) -> None:
    page = (REPO / "docs" / "run.md").read_text(encoding="utf-8")
    assert f"run/{path.name}" in page
