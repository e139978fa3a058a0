"""The command line: help for everything, summaries, dates, and reproducible output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import Result

from famfeeds import __version__
from famfeeds.cli import LAZY_COMMANDS, cli
from support import Project, build_args


def all_commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    return [("famfeeds", cli)] + [
        (f"famfeeds {n}", cli.get_command(ctx, n))  # type: ignore[misc]
        for n in cli.list_commands(ctx)
    ]


@pytest.mark.parametrize("name,command", all_commands(), ids=lambda v: str(v))
def test_every_command_and_option_has_help_and_an_example(
    name: str, command: click.Command
) -> None:
    assert command.help and "Example:" in command.help, f"{name} has no help with an example"
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in {"help", "version"}:
            assert param.help, f"{name} {param.opts[0]} has no help text"


def test_help_and_version(run: Callable[..., Result]) -> None:
    assert run("--version").output.strip() == f"famfeeds, version {__version__}"
    for args in (["--help"], ["build", "--help"], ["check", "--help"]):
        result = run(*args)
        assert result.exit_code == 0
        assert "Usage:" in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from famfeeds.cli import cli\n"
        "cli.main(['--help'], prog_name='famfeeds', standalone_mode=False)\n"
        "heavy = {'feedgen', 'jinja2', 'icalendar', 'premailer', 'pydantic', 'lxml',\n"
        "         'cmarkgfm', 'nh3', 'segno', 'watchfiles', 'email_validator', 'sqlite3'}\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_loads_no_command_module_and_lists_every_command() -> None:
    """`famfeeds --help` imports no famfeeds module beyond the group's own (nor pathlib),
    and prints what it prints with every command loaded."""

    def help_text(load_all: bool) -> list[str]:
        code = (
            "import sys, click; from famfeeds.cli import LAZY_COMMANDS, cli\n"
            f"if {load_all}:\n"
            "    for name in LAZY_COMMANDS:\n"
            "        cli.get_command(click.Context(cli), name)\n"
            "cli.main(['--help'], prog_name='famfeeds', standalone_mode=False)\n"
            "print(sorted(m for m in sys.modules if m.startswith('famfeeds') or m == 'pathlib'))"
        )
        env = {**os.environ, "COLUMNS": "100"}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        return done.stdout.splitlines()

    *listing, loaded = help_text(load_all=False)
    assert loaded == "['famfeeds', 'famfeeds.cli', 'famfeeds.cli.options']"
    *full, everything = help_text(load_all=True)
    assert "famfeeds.cli.subscribers" in everything and "pathlib" in everything
    assert listing == full
    assert any(line.startswith("  subscriptions  Run the subscriptions service") for line in full)


def test_each_lazy_command_is_listed_with_its_own_first_sentence() -> None:
    ctx = click.Context(cli)
    for name, (module, sentence) in LAZY_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.callback is not None
        assert (command.name, command.callback.__module__) == (name, module)
        assert sentence == command.get_short_help_str(10**6)


def test_python_dash_m_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "famfeeds", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_the_console_script_flushes_its_output_and_keeps_exit_codes(shipped: Project) -> None:
    """The entry point ends the process without tearing the interpreter down: what the
    command printed still arrives whole, and the exit status is the command's."""
    args = [str(a) for a in build_args(shipped, "--as-of", "2023-11-24")]
    done = subprocess.run(
        [sys.executable, "-m", "famfeeds", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "3 of 10 episodes released" in done.stdout
    assert done.stdout.endswith("\n") and len(done.stdout.splitlines()) > 5
    (shipped.content / "show.toml").write_text("title = \n", "utf-8")
    failed = subprocess.run(
        [sys.executable, "-m", "famfeeds", *args], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert "show.toml" in failed.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "famfeeds", "build", "--no-such-option"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2
    assert "No such option" in usage.stderr


def test_build_prints_a_summary(shipped: Project, run: Callable[..., Result]) -> None:
    result = run(*build_args(shipped, "--as-of", "2023-11-24"))
    assert result.exit_code == 0
    assert "as of 2023-11-24: 3 of 10 episodes released" in result.output
    for name in ("feed.xml", "rss.xml", "feed.json", "index.html"):
        assert name in result.output
        assert (shipped.output / name).is_file()


def test_check_reports_ok_and_writes_nothing(shipped: Project, run: Callable[..., Result]) -> None:
    result = run("check", "--content", shipped.content)
    assert result.exit_code == 0
    assert "For All Mankind, 1 season(s), 10 episodes" in result.output
    assert not shipped.output.exists()


def test_build_with_defaults_in_the_project_folder(
    shipped: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shipped.root)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700870400")  # 2023-11-25 00:00 UTC
    result = run("build")
    assert result.exit_code == 0, result.output
    # 2023-11-25 00:00 UTC is still 2023-11-24 in Los Angeles.
    assert "as of 2023-11-24" in result.output
    assert (shipped.root / "output/feed.xml").is_file()


def test_bad_source_date_epoch_is_a_clear_error(
    shipped: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = run(*build_args(shipped))
    assert result.exit_code == 1
    assert "SOURCE_DATE_EPOCH" in result.output


def test_bad_as_of_is_a_usage_error(shipped: Project, run: Callable[..., Result]) -> None:
    result = run(*build_args(shipped, "--as-of", "2023-11-31"))
    assert result.exit_code == 2
    assert "2023-11-31 is not a valid date: November 2023 has 30 days" in result.output
    result = run(*build_args(shipped, "--as-of", "next friday"))
    assert result.exit_code == 2
    assert "'next friday' is not a date; write YYYY-MM-DD" in result.output


def test_base_url_option_moves_every_link(shipped: Project, run: Callable[..., Result]) -> None:
    result = run(
        *build_args(
            shipped, "--as-of", "2023-11-24", "--base-url", "https://staging.example.com/fam"
        )
    )
    assert result.exit_code == 0
    atom = (shipped.output / "feed.xml").read_text()
    assert 'href="https://staging.example.com/fam/feed.xml" rel="self"' in atom
    assert "famfeeds.example.org/for-all-mankind" not in atom
    bad = run(*build_args(shipped, "--base-url", "staging/"))
    assert bad.exit_code == 1
    assert "--base-url staging/" in bad.output


def test_missing_templates_folder_is_an_error(shipped: Project, run: Callable[..., Result]) -> None:
    result = run(*build_args(shipped, "--templates", shipped.root / "nope"))
    assert result.exit_code == 1
    assert "no such folder" in result.output


@pytest.mark.parametrize("language", ["en", "fr"])  # the show's language, not the machine's
def test_output_is_identical_in_any_time_zone_and_locale(
    shipped: Project, tmp_path: Path, language: str
) -> None:
    show = shipped.content / "show.toml"
    show.write_text(show.read_text().replace('language = "en"', f'language = "{language}"'))
    outputs = []
    for tz, lang in (
        ("UTC", "C.UTF-8"),
        ("Pacific/Kiritimati", "de_DE.UTF-8"),
        ("America/Adak", "fr_FR.UTF-8"),
    ):
        out = tmp_path / f"out-{len(outputs)}"
        env = {**os.environ, "TZ": tz, "LC_ALL": lang, "LANG": lang}
        env.pop("SOURCE_DATE_EPOCH", None)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "famfeeds",
                "build",
                "--content",
                str(shipped.content),
                "--output",
                str(out),
                "--as-of",
                "2023-12-01",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1] == outputs[2]
