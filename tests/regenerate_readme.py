"""Regenerate the generated blocks of the docs and the README: the command synopsis, the
worked examples and the five-minute start's schedule table.

    python tests/regenerate_readme.py            # rewrite the blocks inside their pages
    python tests/regenerate_readme.py --print    # print them instead

Each block sits between two markers in its page (TARGETS says which page holds which)::

    <!-- begin generated: synopsis (python tests/regenerate_readme.py) -->
    ...
    <!-- end generated: synopsis -->

The synopsis is made from the click commands themselves (the same definitions ``--help``
prints), the examples from tests/examples.py, built and scheduled for real, and the
five-minute start's table from the project its ``famfeeds init`` line scaffolds;
tests/test_help.py fails when a page differs from what this script would write.
"""

from __future__ import annotations

import re
import sys
import tempfile
import textwrap
from datetime import date
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from examples import EXAMPLES, Example  # noqa: E402
from famfeeds.cli import cli  # noqa: E402
from support import REPO  # noqa: E402

DOCS = REPO / "docs"
WIDTH = 96
ORDER = ("init", "new", "check", "schedule", "build", "serve", "newsletter", "send")
BEGIN = "<!-- begin generated: {name} (python tests/regenerate_readme.py) -->"
END = "<!-- end generated: {name} -->"


def commands() -> list[tuple[str, click.Command]]:
    """Every command with its full name, group subcommands expanded, in the synopsis' order."""
    ctx = click.Context(cli)
    names = sorted(
        cli.list_commands(ctx),
        key=lambda n: (ORDER.index(n), "") if n in ORDER else (len(ORDER), n),
    )
    found: list[tuple[str, click.Command]] = []
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=ctx)
            for sub in command.list_commands(sub_ctx):
                child = command.get_command(sub_ctx, sub)
                assert child is not None
                found.append((f"{name} {sub}", child))
        else:
            found.append((name, command))
    return found


def metavar(option: click.Option) -> str:
    """What follows an option that takes a value."""
    if option.metavar:
        return option.metavar
    kind = option.type
    if isinstance(kind, click.Choice):
        return "|".join(str(c) for c in kind.choices)
    if isinstance(kind, click.Path):
        return "DIR" if not kind.file_okay else "FILE"
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "N"
    if kind.name not in ("text", "string"):  # a custom type names its values
        return kind.name.upper().replace(" ", "-")
    return (option.name or "value").upper()


def tokens(command: click.Command) -> list[str]:
    """The synopsis words of a command: arguments, then options (flags sharing a
    destination written as one choice)."""
    words: list[str] = []
    seen: set[str] = set()
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]
    for param in command.params:
        if isinstance(param, click.Argument):
            name = (param.metavar or param.name or "").upper()
            words.append(name if param.required else f"[{name}]")
    for option in options:
        if option.name in seen:
            continue
        seen.add(option.name or "")
        siblings = [o for o in options if o.name == option.name]
        if len(siblings) > 1:
            words.append("[" + " | ".join(o.opts[0] for o in siblings) + "]")
            continue
        flag = next((o for o in option.opts if o.startswith("--")), option.opts[0])
        word = flag if option.is_flag else f"{flag} {metavar(option)}"
        words.append(word if option.required else f"[{word}]")
    return words


def wrap(head: str, words: list[str]) -> list[str]:
    """``head`` and its words, wrapped at WIDTH, continuation lines aligned after ``head``."""
    lines = [head]
    indent = " " * (len(head) + 1)
    for word in words:
        if len(lines[-1]) + 1 + len(word) > WIDTH and lines[-1].strip() != head.strip():
            lines.append(indent + word)
        else:
            lines[-1] += " " + word
    return lines


def synopsis() -> str:
    """The command synopsis of docs/reference/commands.md, as a fenced block."""
    lines: list[str] = []
    for name, command in commands():
        lines += wrap(f"famfeeds {name}", tokens(command))
    lines.append("famfeeds --version")
    return "```\n" + "\n".join(lines) + "\n```\n"


def schedule_text(example: Example) -> str:
    """What ``famfeeds schedule --as-of ...`` prints for an example (not a terminal)."""
    from famfeeds.build.pipeline import check
    from famfeeds.plan.timetable import plain_text, timetable

    with tempfile.TemporaryDirectory() as folder:
        content = example.write(Path(folder) / "content")
        planned = check(content, strict=True)
        return plain_text(timetable(planned, date.fromisoformat(example.as_of)))


def example_section(example: Example) -> str:
    """One worked example: the story, the files, and the schedule they give."""
    story = textwrap.fill(example.story, WIDTH, break_on_hyphens=False, break_long_words=False)
    parts = [f"### {example.heading}\n", story + "\n"]
    files = [f"# content/season-01/season.toml\n{example.season}"]
    for number, extra in sorted(example.front.items()):
        files.append(f"# content/{example.episode_file(number)}, in its front matter\n{extra}\n")
    parts.append("```toml\n" + "\n".join(files) + "```\n")
    parts.append(f"`famfeeds schedule --as-of {example.as_of}` prints:\n")
    parts.append("```\n" + schedule_text(example) + "```\n")
    return "\n".join(parts)


def examples() -> str:
    """Every worked example, in table order."""
    return "\n".join(example_section(e) for e in EXAMPLES)


# The five-minute start: the project it scaffolds, and the day its table is shown for.
START_INIT = (
    *("harbor-lights", "--no-input", "--title", "Harbor Lights", "--service", "Apple TV+"),
    *("--timezone", "America/New_York", "--premiere", "2026-11-04", "--time", "21:00"),
    *("--episodes", "8"),
)
START_AS_OF = "2026-11-20"
START_ROWS = 4  # episodes shown before the "..."


def start_schedule() -> str:
    """The five-minute start's table: ``famfeeds schedule`` of the project that its
    ``famfeeds init ... --no-input`` line writes, cut after the first few episodes."""
    from click.testing import CliRunner

    from famfeeds.build.pipeline import check
    from famfeeds.plan.timetable import plain_text, timetable

    with tempfile.TemporaryDirectory() as folder:
        made = CliRunner().invoke(cli, ["init", str(Path(folder) / START_INIT[0]), *START_INIT[1:]])
        assert made.exit_code == 0, made.output
        planned = check(Path(folder) / START_INIT[0] / "content", strict=True)
        table = plain_text(timetable(planned, date.fromisoformat(START_AS_OF)))
    lines = table.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  S1 E1 "))
    return "```\n" + "\n".join([*lines[: first + START_ROWS], "  ..."]) + "\n```\n"


BLOCKS = {"synopsis": synopsis, "examples": examples, "start": start_schedule}
TARGETS: dict[str, tuple[Path, ...]] = {
    "synopsis": (DOCS / "reference" / "commands.md",),
    "examples": (DOCS / "content" / "release-dates.md",),
    "start": (REPO / "README.md", DOCS / "start.md"),
}


def block(name: str) -> str:
    """A generated block with its markers."""
    return f"{BEGIN.format(name=name)}\n{BLOCKS[name]()}{END.format(name=name)}\n"


def pattern(name: str) -> re.Pattern[str]:
    """Finds a block, markers included, in its page."""
    return re.compile(
        re.escape(BEGIN.format(name=name)) + r".*?" + re.escape(END.format(name=name)) + r"\n",
        re.DOTALL,
    )


def main(argv: list[str]) -> int:
    """Rewrite every generated block in its page, or print them all with --print."""
    if "--print" in argv:
        for name in BLOCKS:
            sys.stdout.write(block(name) + "\n")
        return 0
    pages = [(name, page) for name in BLOCKS for page in TARGETS[name]]
    missing = [
        f"{name} in {page.relative_to(REPO)}"
        for name, page in pages
        if not pattern(name).search(page.read_text(encoding="utf-8"))
    ]
    if missing:
        print(
            f"no marked block for {', '.join(missing)}: paste the output of --print where it "
            "belongs, then run this again",
            file=sys.stderr,
        )
        return 1
    for name, page in pages:
        text = page.read_text(encoding="utf-8")
        found = pattern(name).search(text)
        assert found is not None  # every page was checked above
        page.write_text(text[: found.start()] + block(name) + text[found.end() :], encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
