"""``famfeeds init``, ``new`` and ``schedule``: start a project, add to it, read its dates.

Registered on the ``famfeeds`` group at the end of :mod:`famfeeds.cli`. Heavy imports
(pydantic through the loader, rich) happen inside the commands.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

import click

from famfeeds.build.scaffold import CADENCE_NAMES
from famfeeds.cli.options import content_option, parse_date

if TYPE_CHECKING:
    from famfeeds.plan.issues import Plan
    from famfeeds.plan.timetable import Timetable

T = TypeVar("T")


PREMIERE_IN_DAYS = 7
"""init's default premiere: a week after today."""


def _checked(convert: Callable[[str], T]) -> Callable[[str], T]:
    """``convert`` with its ValueError turned into click's error, so a prompt asks again
    and an option is a usage error."""

    def run(value: str) -> T:
        try:
            return convert(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return run


def _one_line(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(f"the {what} cannot be empty")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"the {what} must be one line, without control characters")
        return value

    return check


def _zone(value: str) -> str:
    from famfeeds.build.scaffold import valid_zone
    from famfeeds.records.zones import zone_advice

    value = value.strip()
    if not valid_zone(value):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'America/New_York'"
        )
    advice = zone_advice(value)
    if advice is not None:
        raise ValueError(f"{advice[0]}; {advice[1]}")
    return value


def _base_url(value: str) -> str:
    from famfeeds.records.models import normalise_base_url

    return normalise_base_url(value.strip())


def _service_url(value: str) -> str | None:
    """The subscriptions service's public URL, or None for an empty answer (no newsletter)."""
    from urllib.parse import urlsplit

    from famfeeds.records.models import ascii_url

    value = value.strip()
    if not value:
        return None
    url = ascii_url(value)
    if urlsplit(url).query or urlsplit(url).fragment:
        raise ValueError("the service URL must not have a ?query or #fragment")
    return url


def _language(value: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    from famfeeds.records.models import LanguageTag

    try:
        return str(TypeAdapter(LanguageTag).validate_python(value.strip()))
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        from famfeeds.records.loader import explain_day

        raise ValueError(explain_day(value)) from None


def _clock(value: str) -> time | None:
    from famfeeds.build.scaffold import parse_clock

    return None if not value.strip() else parse_clock(value)


def _answer(
    given: str | None,
    question: str,
    convert: Callable[[str], T],
    default: str | None,
    *,
    no_input: bool,
    option: str,
) -> T:
    """An option's value, or the answer to a prompt, or (with --no-input) the default."""
    checked = _checked(convert)
    if given is not None:
        try:
            return checked(given)
        except click.BadParameter as exc:
            raise click.BadParameter(exc.message, param_hint=f"'{option}'") from None
    if no_input:
        if default is None:
            raise click.UsageError(f"--no-input needs {option}: {question.lower()}")
        return checked(default)
    value: T = click.prompt(
        question, default=default, value_proc=checked, show_default=bool(default)
    )
    return value


@click.command()
@click.argument(
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    required=False,
)
@click.option(
    "--title", metavar="TITLE", help="The show's title [default: made from the folder's name]."
)
@click.option("--service", metavar="NAME", help='Where the show streams or airs, e.g. "Apple TV+".')
@click.option(
    "--timezone",
    "zone",
    metavar="ZONE",
    help="IANA time zone whose clock the releases follow, e.g. America/New_York "
    "[default: this machine's, else UTC].",
)
@click.option(
    "--premiere",
    metavar="YYYY-MM-DD",
    help="Season 1's first release day [default: a week from today].",
)
@click.option(
    "--time",
    "clock",
    metavar="HH:MM",
    help="Time of day of every release in that zone [default: none: all-day releases].",
)
@click.option(
    "--episodes",
    metavar="K",
    help="How many episode files season 1 starts with [default: 1].",
)
@click.option(
    "--cadence",
    type=click.Choice(CADENCE_NAMES),
    default="weekly",
    show_default=True,
    help="How often season 1's episodes come out.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="Where output/ will be published; feed ids use its domain "
    "[default: https://example.org/SLUG/, a placeholder to change before publishing].",
)
@click.option(
    "--service-url",
    metavar="URL",
    help="Public URL of the subscriptions service (famfeeds subscriptions): the newsletter "
    "is switched on and the page gets its sign-up form [default: none: the [newsletter] "
    "table is written commented out].",
)
@click.option(
    "--language",
    metavar="CODE",
    default="en",
    show_default=True,
    help="The show's language, an ISO 639 code such as en, en-GB or de (not asked): the "
    "new files' titles, texts and comments are written in it too.",
)
@click.option(
    "--no-input",
    is_flag=True,
    help="Ask nothing: use the options given and the defaults (for scripts and CI); "
    "--service is then required.",
)
def init(
    folder: Path,
    title: str | None,
    service: str | None,
    zone: str | None,
    premiere: str | None,
    clock: str | None,
    episodes: str | None,
    cadence: str,
    base_url: str | None,
    service_url: str | None,
    language: str,
    no_input: bool,
) -> None:
    """Start a project in FOLDER: a commented content/ folder, a .gitignore and a README.

    Asks for the few things a show needs (each question has an option, for scripts) and
    writes content/show.toml, content/season-01/ with its episode files, a .gitignore for
    output/ and famfeeds' cache, preview and private state folders, and a short README.md,
    all in the show's language. Given the subscriptions service's public URL, the newsletter
    is on and the page has a sign-up form from the first build.
    It never overwrites a file: it refuses if content/ files exist, keeps an existing
    README.md and adds its lines to an existing .gitignore. The result passes
    `famfeeds check --strict` and builds at once.

    \b
    Example:
        famfeeds init my-show
        famfeeds init my-show --no-input --title "My Show" --service "Apple TV+" \\
            --timezone America/New_York --premiere 2026-11-04 --time 21:00 --episodes 8
        famfeeds init serie --language de --service-url https://lists.example.org/serie/
    """
    from famfeeds.build.pipeline import reference_date
    from famfeeds.build.project import Project
    from famfeeds.build.scaffold import (
        ShowAnswers,
        append_gitignore,
        gitignore_addition,
        init_files,
        local_zone,
        scaffold_words,
        slugify,
        title_from_folder,
        write_new,
    )
    from famfeeds.errors import ContentError, display_path

    def ask(
        given: str | None,
        question: str,
        convert: Callable[[str], T],
        default: str | None,
        option: str,
    ) -> T:
        return _answer(given, question, convert, default, no_input=no_input, option=option)

    language = _answer(language, "", _language, None, no_input=True, option="--language")
    try:
        words = scaffold_words(language, Project.of(folder / "content").locale)
    except ContentError as exc:
        message = "; ".join(
            f"{p.message} ({p.hint})" if p.hint else p.message for p in exc.problems
        )
        raise click.BadParameter(message, param_hint="'--language'") from None
    show_title = ask(title, "Show title", _one_line("title"), title_from_folder(folder), "--title")
    show_service = ask(
        service,
        "Where it streams or airs (e.g. Apple TV+)",
        _one_line("service"),
        None,
        "--service",
    )
    show_zone = ask(
        zone,
        "Time zone of the releases (IANA name, e.g. America/New_York)",
        _zone,
        local_zone(),
        "--timezone",
    )
    today = reference_date(ZoneInfo(show_zone))
    first_day = ask(
        premiere,
        "Premiere of season 1 (YYYY-MM-DD)",
        _day,
        (today + timedelta(days=PREMIERE_IN_DAYS)).isoformat(),
        "--premiere",
    )
    release_time = ask(
        clock, "Release time, HH:MM in that zone (empty: all-day releases)", _clock, "", "--time"
    )
    count = ask(episodes, "How many episodes does season 1 have", _count, "1", "--episodes")
    slug = slugify(show_title) or "my-show"
    url = ask(
        base_url,
        "Public URL where output/ will be published",
        _base_url,
        f"https://example.org/{slug}/",
        "--base-url",
    )
    signup = ask(
        service_url,
        "Public URL of the subscriptions service, for the page's sign-up form "
        "(empty: no newsletter yet)",
        _service_url,
        "",
        "--service-url",
    )
    answers = ShowAnswers(
        show_title,
        show_service,
        show_zone,
        url,
        language,
        first_day,
        release_time,
        cadence,
        count,
        signup,
    )
    root = folder
    files = init_files(root, answers, today, words)
    readme = root / "README.md"
    kept_readme = readme.exists()
    if kept_readme:
        del files[readme]
    addition = gitignore_addition(root)
    ignore = root / ".gitignore"
    appended = ignore.exists() and addition is not None
    if not ignore.exists() and addition is not None:
        files[ignore] = addition
    _verify(root, files)
    written = write_new(files)
    if appended and addition is not None:
        append_gitignore(root, addition)
    click.echo(f"Created a famfeeds project in {display_path(root.absolute())}/:")
    for path in written:
        click.echo(f"  {display_path(path)}")
    if appended:
        click.echo(f"  {display_path(ignore)} (added famfeeds' lines)")
    if kept_readme:
        click.echo(f"  kept your {display_path(readme)}")
    content = root / "content"
    planned = _plan_quietly(content)
    if planned is not None:
        click.echo(_season_summary(planned, 1))
    if url.startswith("https://example.org/"):
        click.echo(
            f"base_url is a placeholder: set it in {display_path(content / 'show.toml')} "
            "before you publish."
        )
    if signup is not None:
        click.echo(
            f"The newsletter is on: the page's sign-up form posts to {signup.rstrip('/')}"
            "/subscribe. Set smtp_url in "
            f"{display_path(content / 'show.toml')} for the confirmation mails, and run "
            "famfeeds subscriptions behind that URL."
        )
    inside = "" if root.absolute() == Path.cwd() else f"cd {_shell_word(str(folder))}\n  "
    click.echo(
        "Next:\n"
        f"  {inside}famfeeds schedule      # every episode's date, in a table\n"
        "  famfeeds build         # feeds, calendar, page (and newsletter) in output/\n"
        "  famfeeds serve         # preview at http://127.0.0.1:8000/"
    )


def _count(value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a number of episodes") from None
    if not 1 <= number <= 999:
        raise ValueError("give between 1 and 999 episodes")
    return number


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _verify(root: Path, files: dict[Path, str]) -> None:
    """Check the new project in a scratch folder first, strictly, so that init never leaves
    one that ``famfeeds check --strict`` rejects (e.g. a language without messages)."""
    import tempfile

    from famfeeds.build.pipeline import check
    from famfeeds.errors import FamfeedsError

    with tempfile.TemporaryDirectory(prefix="famfeeds-init-") as scratch:
        for path, text in files.items():
            copy = Path(scratch) / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(text, encoding="utf-8")
        try:
            check(Path(scratch) / "content", strict=True)
        except FamfeedsError as exc:
            detail = exc.format_message().replace(scratch + "/", "")
            raise FamfeedsError(f"these answers do not make a valid project:\n{detail}") from None


def _plan_quietly(content: Path) -> Plan | None:
    """The plan of ``content`` (its warnings printed), or None (with the reason on stderr) if
    it has problems."""
    from famfeeds.build.load import plan
    from famfeeds.errors import FamfeedsError

    try:
        planned = plan(content)
    except FamfeedsError as exc:
        click.echo(f"famfeeds check will report: {exc.format_message()}", err=True)
        return None
    for warning in planned.warnings:
        click.echo(f"warning: {warning}", err=True)
    return planned


def _season_summary(planned: Plan, number: int) -> str:
    """``Season 1: 8 episodes, Wed 2026-11-04 to Wed 2026-12-23.``"""
    from famfeeds.plan.timetable import short_day

    releases = [r for r in planned.schedule.releases if r.season.number == number]
    if not releases:
        return f"Season {number} has no episodes yet."
    first, last = releases[0], releases[-1]
    count = len(releases)
    noun = "episode" if count == 1 else "episodes"
    if first.day == last.day:
        return f"Season {number}: {count} {noun}, {short_day(first.day)}."
    return f"Season {number}: {count} {noun}, {short_day(first.day)} to {short_day(last.day)}."


@click.group()
def new() -> None:
    """Add a season or an episode: new files with the next free numbers, never overwriting.

    \b
    Example:
        famfeeds new season --premiere 2027-09-01 --episodes 8 --time 21:00
        famfeeds new episode --title "The Finale" --release 2027-10-27
    """


@new.command("season")
@click.argument("number", type=click.IntRange(0, 9999), required=False)
@content_option
@click.option(
    "--premiere",
    required=True,
    metavar="YYYY-MM-DD",
    callback=parse_date,
    help="The season's first release day, in the show's time zone.",
)
@click.option(
    "--episodes",
    metavar="K",
    type=click.IntRange(1, 999),
    default=1,
    show_default=True,
    help="How many episode files to write (titled Episode 1, 2, ... in the show's language; "
    "rename them later).",
)
@click.option(
    "--cadence",
    type=click.Choice(CADENCE_NAMES),
    default="weekly",
    show_default=True,
    help="How often the season's episodes come out.",
)
@click.option(
    "--time",
    "clock",
    metavar="HH:MM",
    help="Time of day of every release in the show's zone [default: the previous "
    "season's; none means all-day].",
)
@click.option("--title", help="The season's title [default: \"Season N\" in the show's language].")
def new_season(
    number: int | None,
    content: Path,
    premiere: date,
    episodes: int,
    cadence: str,
    clock: str | None,
    title: str | None,
) -> None:
    """Add season NUMBER (default: the next free number) with its episode files.

    Writes content/season-NN/season.toml and EPISODES episode files; refuses if the
    season's folder exists. Prints the dates the new episodes get.

    \b
    Example:
        famfeeds new season 2 --premiere 2027-09-01 --episodes 10 --time 21:00
        famfeeds new season --premiere 2027-06-04 --episodes 8 --cadence all-at-once
    """
    from famfeeds.build.scaffold import season_files, season_folder, season_numbers, write_new
    from famfeeds.errors import FamfeedsError, display_path

    _require_project(content)
    numbers = season_numbers(content)
    number = number if number is not None else max(numbers, default=0) + 1
    existing = season_folder(content, number)
    if existing is not None:
        raise FamfeedsError(
            f"season {number} already exists: {display_path(existing)} "
            f"(add episodes with: famfeeds new episode {number})"
        )
    if clock is not None:
        release_time = _checked(_clock)(clock)
    else:
        release_time = _previous_release_time(content, [n for n in numbers if n < number])
    if title is not None:
        title = _checked(_one_line("title"))(title)
    files = season_files(content, number, premiere, episodes, cadence, release_time, title)
    written = write_new(files)
    for path in written:
        click.echo(f"Wrote {display_path(path)}")
    planned = _plan_quietly(content)
    if planned is not None:
        click.echo(_season_summary(planned, number))
        click.echo(f"See every date: famfeeds schedule --season {number}")


def _previous_release_time(content: Path, earlier: list[int]) -> time | None:
    """The release_time of the latest season before a new one, if it sets one."""
    import tomllib

    from famfeeds.build.scaffold import season_folder

    if not earlier:
        return None
    folder = season_folder(content, max(earlier))
    if folder is None:
        return None
    try:
        data = tomllib.loads((folder / "season.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = data.get("release_time")
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return _clock(value)
        except ValueError:
            return None
    return None


def _require_project(content: Path) -> None:
    from famfeeds.errors import FamfeedsError, display_path

    if not (content / "show.toml").is_file():
        raise FamfeedsError(
            f"{display_path(content)}/show.toml not found: run famfeeds in your project "
            "folder, pass --content DIR, or start a project with famfeeds init"
        )


@new.command("episode")
@click.argument("season", type=click.IntRange(0, 9999), required=False)
@content_option
@click.option(
    "--title",
    help="The episode's title [default: \"Episode N\" in the show's language]; its slug "
    "comes from it.",
)
@click.option(
    "--release",
    metavar="DATE",
    help="Its release day (YYYY-MM-DD) or day and time (YYYY-MM-DDTHH:MM) "
    "[default: none: the season's next release slot].",
)
def new_episode(season: int | None, content: Path, title: str | None, release: str | None) -> None:
    """Add the next episode to SEASON (default: the latest season).

    Writes content/season-NN/EE-slug.md with the next free number and a slug made from the
    title (in ASCII, whatever the title's script), and prints the date it gets.

    \b
    Example:
        famfeeds new episode --title "The Bear Hug"
        famfeeds new episode 2 --title "Finale, Part Two" --release 2027-10-27
    """
    from famfeeds.build.scaffold import new_episode_file, parse_release, season_numbers, write_new
    from famfeeds.errors import FamfeedsError, display_path

    _require_project(content)
    if season is None:
        numbers = season_numbers(content)
        if not numbers:
            raise FamfeedsError(
                "there is no season yet: add one with famfeeds new season --premiere YYYY-MM-DD"
            )
        season = numbers[-1]
    if title is not None:
        title = _checked(_one_line("title"))(title)
    when = None if release is None else _checked(parse_release)(release)
    path, text, number = new_episode_file(content, season, title, when)
    write_new({path: text})
    click.echo(f"Wrote {display_path(path)}")
    planned = _plan_quietly(content)
    if planned is None:
        return
    from famfeeds.plan.timetable import timetable

    table = timetable(planned, date.min, season)
    for entry in table.seasons[0].entries:
        if entry.release.episode.number == number:
            click.echo(f"{entry.code} comes out {entry.local_text} ({entry.reason}).")


@click.command()
@content_option
@click.option(
    "--season",
    type=click.IntRange(0, 9999),
    metavar="N",
    help="Show only season N.",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    callback=parse_date,
    help="The day the statuses are for: out on or before it is released, the first after "
    "it is next [default: SOURCE_DATE_EPOCH if set, else today in the show's time zone].",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the schedule as JSON, for scripts, instead of a table.",
)
def schedule(content: Path, season: int | None, as_of: date | None, as_json: bool) -> None:
    """Show when every episode comes out, and why: a table of the computed schedule.

    For each episode: the release day and time in the show's zone and in UTC, its status
    (released, next, upcoming or cancelled), the newsletter issue that carries it, double
    bills, and the reason for its date ("next weekly slot after E3", "from release =
    2026-12-02"); weeks without an episode are listed as gaps. A table on a terminal, plain
    text otherwise.

    \b
    Example:
        famfeeds schedule
        famfeeds schedule --season 2 --as-of 2026-12-01
        famfeeds schedule --json | jq '.seasons[0].episodes[] | .date'
    """
    import json

    from famfeeds.build.pipeline import check, reference_date
    from famfeeds.errors import FamfeedsError
    from famfeeds.plan.timetable import plain_text, timetable

    planned = check(content)
    for warning in planned.warnings:
        click.echo(f"warning: {warning}", err=True)
    numbers = [s.number for s in planned.catalogue.seasons]
    if season is not None and season not in numbers:
        listed = ", ".join(str(n) for n in numbers)
        raise FamfeedsError(f"there is no season {season}; seasons: {listed}")
    day = reference_date(planned.show.zone, as_of)
    table = timetable(planned, day, season)
    if as_json:
        click.echo(json.dumps(table.as_json(), indent=2, ensure_ascii=False))
    elif sys.stdout.isatty():
        print_rich(table)
    else:
        click.echo(plain_text(table), nl=False)


RICH_HEADERS = ("Ep", "Title", "Release\n({zone})", "UTC", "Status", "Issue", "Why")
"""Column headings, in timetable.COLUMNS order."""
NARROW_WIDTH = 100
"""Terminals narrower than this get the table without its UTC and issue columns."""
WHY_MIN_WIDTH = 26
"""Room for "next weekly slot after E10" on one line; a long title wraps first."""
RELEASE_HEADER_MAX = 24
"""As wide as a release (Wed 2026-11-04 21:00 EST): a longer zone name is left to the
first line, so the column stays narrow."""
STATUS_STYLES = {
    "released": "green",
    "next": "bold yellow",
    "upcoming": "",
    "cancelled": "red strike",
}


def print_rich(table: Timetable, console: object | None = None) -> None:
    """The timetable as rich tables, one per season, on ``console`` (default: stdout).

    Narrower than the plain text, to fit 120 columns: UTC without the year, and a gap as a
    row of its own ("no episode" on its first day). Below NARROW_WIDTH columns the UTC and
    issue columns are left out (the plain text, ``famfeeds schedule | less -S``, has them).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from famfeeds.plan.timetable import NO_NEWSLETTER, Gap, cells, short_day

    out = console if isinstance(console, Console) else Console(highlight=False)
    show = table.show
    narrow = out.width < NARROW_WIDTH
    out.print(
        Text.assemble(
            (show.title, "bold"),
            f" · times in {show.timezone}{'' if narrow else ' and UTC'}"
            f" · as of {table.as_of.isoformat()}",
        )
    )
    shown = [0, 1, 2, 4, 6] if narrow else [0, 1, 2, 3, 4, 5, 6]
    if not table.newsletter and 5 in shown:
        shown.remove(5)
    release_header = RICH_HEADERS[2].format(zone=show.timezone)
    if len(show.timezone) + 2 > RELEASE_HEADER_MAX:
        release_header = RICH_HEADERS[2].format(zone="show's zone")
    for season in table.seasons:
        grid = Table(
            title=Text(season.heading(show)),
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            show_edge=False,
            collapse_padding=True,
        )
        for index in shown:
            grid.add_column(
                release_header if index == 2 else RICH_HEADERS[index],
                no_wrap=index in (0, 2, 3, 4, 5),
                overflow="fold",
                min_width=WHY_MIN_WIDTH if index == 6 and not narrow else None,
            )
        for row in season.rows():
            if isinstance(row, Gap):
                label = "no episode" if row.slots == 1 else "no episodes"
                more = (
                    ""
                    if row.slots == 1
                    else f"{row.slots} {row.cadence} slots, to {short_day(row.last)}"
                )
                gap = {1: label, 2: short_day(row.first), 6: more}
                grid.add_row(*(Text(gap.get(i, ""), style="italic") for i in shown), style="dim")
                continue
            values = cells(row, table.newsletter)
            if row.utc is not None:
                values[3] = f"{row.utc:%m-%d %H:%M}"
            texts = [Text(v) for v in values]
            texts[4] = Text(row.status, style=STATUS_STYLES[row.status])
            grid.add_row(
                *(texts[i] for i in shown), style="dim" if row.status == "cancelled" else None
            )
        out.print()
        out.print(grid)
    if not table.newsletter:
        out.print(Text(NO_NEWSLETTER, style="dim"))
