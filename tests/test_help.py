"""Every command says what it does, and the docs' generated blocks match the code."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

import regenerate_readme
from famfeeds.cli import cli


def every_command() -> list[tuple[str, click.Command]]:
    """The group, every command, and every subcommand of a group, with their full names."""
    found: list[tuple[str, click.Command]] = [("famfeeds", cli)]

    def walk(prefix: str, group: click.Group, parent: click.Context) -> None:
        ctx = click.Context(group, parent=parent, info_name=prefix)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            found.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                walk(f"{prefix} {name}", command, ctx)

    walk("famfeeds", cli, click.Context(cli))
    return found


@pytest.mark.parametrize("name,command", every_command(), ids=lambda v: str(v))
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    """sqlite-utils' rule, over group subcommands too (famfeeds new season, ...)."""
    assert command.help and "Example:" in command.help, f"{name}: no help with an example"
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in {"help", "version"}:
            assert param.help, f"{name} {param.opts[0]} has no help text"


@pytest.mark.parametrize(
    "name,command",
    [(n, c) for n, c in every_command() if n.split()[1:2] in (["init"], ["new"], ["schedule"])],
    ids=lambda v: str(v),
)
def test_the_help_says_what_each_argument_is(name: str, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Argument):
            word = (param.metavar or param.name or "").upper()
            assert word in (command.help or ""), f"{name}: the help never says what {word} is"


def test_newsletter_help_says_it_builds_nothing() -> None:
    ctx = click.Context(cli)
    newsletter = cli.get_command(ctx, "newsletter")
    assert newsletter is not None
    options = {p.name: p for p in newsletter.params if isinstance(p, click.Option)}
    output = options["output"].help or ""
    assert "Nothing is written to it" in output and "build into" not in output.lower()
    assert "previewed" in (options["as_of"].help or "")
    assert "never writes to the output folder" in (newsletter.help or "")


@pytest.mark.parametrize(
    "block,page",
    [
        (name, page)
        for name in sorted(regenerate_readme.BLOCKS)
        for page in regenerate_readme.TARGETS[name]
    ],
    ids=lambda v: str(getattr(v, "name", v)),
)
def test_the_generated_blocks_are_what_the_code_generates(block: str, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = regenerate_readme.pattern(block).search(text)
    assert found, (
        f"{page.name} has no generated {block} block: paste it from "
        "`python tests/regenerate_readme.py --print`"
    )
    assert found.group(0) == regenerate_readme.block(block), (
        f"{page.name}'s {block} block is out of date: run python tests/regenerate_readme.py"
    )


@pytest.mark.parametrize("page", regenerate_readme.TARGETS["start"], ids=lambda p: p.name)
def test_the_start_table_is_for_the_init_line_the_page_shows(page: Path) -> None:
    """The five-minute start's table is generated from START_INIT: the page must show
    that very command, so that a reader who runs it gets the table."""
    text = page.read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(x for x in text.splitlines() if "famfeeds init" in x and "--no-input" in x)
    words = shlex.split(line.strip())
    assert words[:2] == ["famfeeds", "init"]
    assert tuple(words[2:]) == regenerate_readme.START_INIT
    assert f"as of {regenerate_readme.START_AS_OF}" in text


def test_the_synopsis_lists_every_command_and_option() -> None:
    synopsis = regenerate_readme.synopsis()
    for name, command in every_command()[1:]:
        if isinstance(command, click.Group):
            continue
        assert f"famfeeds {name.removeprefix('famfeeds ')} " in synopsis or synopsis.count(
            f"famfeeds {name.removeprefix('famfeeds ')}\n"
        ), name
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
                assert flag in synopsis, (name, flag)
    assert max(len(line) for line in synopsis.splitlines()) <= regenerate_readme.WIDTH
