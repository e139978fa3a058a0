"""Shared test helpers: a throwaway project folder and the CLI arguments to build it.

Tests import these from here (not from conftest, which only holds fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONTENT = REPO / "content"

SHOW_TOML = """\
title = "Test Show"
slug = "test-show"
base_url = "https://shows.example.net/test/"
id_date = 2020-01-01
language = "en"
service = "Example+"
timezone = "{timezone}"
description = "A show for tests."

[author]
name = "Tester"
"""

SEASON_TOML = """\
number = {number}
title = "Season {number}"
premiere = {premiere}
cadence = "{cadence}"
{extra}
"""


def toml_string(value: str) -> str:
    """A TOML basic string holding exactly ``value`` (JSON's escapes are valid TOML; TOML
    has no surrogate escapes, so text with lone surrogates cannot be written)."""
    return json.dumps(value, ensure_ascii=False)


def episode_text(number: int, title: str, synopsis: str = "A synopsis.", **front: str) -> str:
    """An episode file; ``front`` values are TOML literals."""
    lines = [f"number = {number}", f"title = {toml_string(title)}"]
    lines += [f"{key} = {value}" for key, value in front.items()]
    return "+++\n" + "\n".join(lines) + "\n+++\n\n" + synopsis + "\n"


class Project:
    """A throwaway project folder with content/ and output/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.content = root / "content"
        self.output = root / "output"

    def write(self, relative: str, text: str) -> Path:
        path = self.content / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def show(self, timezone: str = "America/New_York", **replace: str) -> None:
        text = SHOW_TOML.format(timezone=timezone)
        for old, new in replace.items():
            text = text.replace(old, new)
        self.write("show.toml", text)

    def season(
        self,
        number: int = 1,
        premiere: str = "2024-01-05",
        cadence: str = "weekly",
        extra: str = "",
        episodes: int | dict[int, dict[str, str]] = 3,
    ) -> None:
        self.write(
            f"season-{number:02d}/season.toml",
            SEASON_TOML.format(number=number, premiere=premiere, cadence=cadence, extra=extra),
        )
        specs = {n: {} for n in range(1, episodes + 1)} if isinstance(episodes, int) else episodes
        for n, front in specs.items():
            front = dict(front)
            title = front.pop("title", f"Episode {n}")
            synopsis = front.pop("synopsis", f"Synopsis of episode {n}.")
            self.write(
                f"season-{number:02d}/{n:02d}-episode-{n}.md",
                episode_text(n, title, synopsis, **front),
            )

    def snapshot(self) -> dict[str, bytes]:
        """Every file under output/, by relative path."""
        if not self.output.exists():
            return {}
        return {
            p.relative_to(self.output).as_posix(): p.read_bytes()
            for p in sorted(self.output.rglob("*"))
            if p.is_file()
        }


def build_args(project: Project, *extra: str) -> list[str | Path]:
    return ["build", "--content", project.content, "--output", project.output, *extra]


def chromium(profile: Path) -> list[str]:
    """The start of a headless Chromium command line with a throwaway ``profile`` folder,
    quiet on the network (Debian's chromium; .ci/run installs it)."""
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed for the browser tests (.ci/run installs it)"
    return [
        found,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
