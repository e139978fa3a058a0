"""Start a project and add seasons and episodes: commented files that pass ``check --strict``.

Everything here writes new files only: a file that exists is never replaced (the one
exception is a project's ``.gitignore``, to which ``init`` appends the lines it lacks). All
the files of one command are checked first and written together; if one cannot be written,
those already written are removed again, so a refused command leaves nothing behind.

Slugs come from titles: transliterated to ASCII with anyascii (every script, not only
accented Latin: "Чернобыль" gives ``chernobyl``), lower-cased, and words joined by hyphens.

Every word a new file holds (placeholder titles, the show's description, the synopsis, the
comments, the README) is a message of the show language's catalogue, the same catalogue the
build uses: a German project starts in German. The messages live here, extracted with
babel.cfg like those of render/.
"""

from __future__ import annotations

import contextlib
import os
import re
import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from famfeeds.build.project import CACHE_DIR, LOCK_NAME, PREVIEW_DIR, STATE_DIR
from famfeeds.errors import FamfeedsError, display_path

if TYPE_CHECKING:
    from famfeeds.render.i18n import Localiser

SLUG_MAX = 60
"""Slugs are cut at a word boundary to at most this many characters."""
SEASON_FOLDER = re.compile(r"^season-(\d+)$")
EPISODE_NAME = re.compile(r"^(\d+)-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
CADENCE_NAMES = ("weekly", "daily", "biweekly", "all-at-once")
DEFAULT_ZONE = "UTC"
# Symbols (emoji, arrows, currency) and private characters carry no word for a file name.
DROPPED_CATEGORIES = frozenset({"So", "Sk", "Sm", "Sc", "Co", "Cs", "Cn"})


def slugify(text: str) -> str:
    """``text`` as an ASCII slug: transliterated, lower-case letters and digits, words
    joined by single hyphens, at most SLUG_MAX characters; '' when no letter or digit is
    left (the caller picks a fallback)."""
    from anyascii import anyascii

    kept = "".join(
        c
        for c in unicodedata.normalize("NFC", text)
        if unicodedata.category(c) not in DROPPED_CATEGORIES
    )
    ascii_text = anyascii(kept).lower()
    ascii_text = re.sub(r"['`]", "", ascii_text)  # don't -> dont, not don-t
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_text))
    if len(slug) > SLUG_MAX:
        cut = slug[: SLUG_MAX + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:SLUG_MAX]
    return slug


def toml_string(value: str) -> str:
    """A TOML basic string holding exactly ``value``."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_date(value: date | datetime) -> str:
    """A TOML date or date-time literal."""
    return value.isoformat()


def title_from_folder(folder: Path) -> str:
    """A show title guessed from a folder name: ``my-show`` gives ``My Show``."""
    words = re.split(r"[-_\s]+", folder.absolute().name)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "My Show"


def local_zone() -> str:
    """This machine's IANA time zone if it is a city's (from TZ or /etc/localtime), else UTC.

    Only a default to offer: the show's zone is where its releases happen, not where
    famfeeds runs.
    """
    from famfeeds.records.zones import zone_advice

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError, IndexError):
        candidates.append(str(Path("/etc/localtime").readlink()).split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for name in candidates:
        if name and valid_zone(name) and zone_advice(name) is None:
            return name
    return DEFAULT_ZONE


def valid_zone(name: str) -> bool:
    """True when ``name`` is a time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_clock(value: str) -> time:
    """A release time written HH:MM (or HH:MM:SS); ValueError says how to write it."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 21:00")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        return time(hours, minutes, seconds)
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 21:00") from None


def parse_release(value: str) -> date | datetime:
    """An episode's release as given on the command line: YYYY-MM-DD or a date-time."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None


@dataclass(frozen=True)
class ShowAnswers:
    """What ``famfeeds init`` asks for."""

    title: str
    service: str
    timezone: str
    base_url: str
    language: str
    premiere: date
    release_time: time | None
    cadence: str = "weekly"
    episodes: int = 1
    service_url: str | None = None
    """The subscriptions service's public URL: the newsletter is on, with a sign-up form."""

    @property
    def slug(self) -> str:
        """The show's slug, from its title."""
        return slugify(self.title) or "my-show"


COMMENT_WIDTH = 88
"""Comments and the README's paragraphs are wrapped to this many columns."""
NOTE_COLUMN = 38
"""A comment after a value starts in this column (one space further after a longer line)."""
EXAMPLE_TIME = "T21:00:00"
"""The time of day the commented release example shows."""


def scaffold_words(language: str, project_locale: Path | None = None) -> Localiser:
    """The messages a new project's titles, texts and comments are written in: the
    catalogue of ``language``, the project's own ``locale/`` first (as for a build).

    Raises ContentError for a language famfeeds has no messages in.
    """
    from famfeeds.build.translations import load_messages
    from famfeeds.render.i18n import Localiser

    return Localiser(load_messages(language, project_locale))


def project_words(content: Path) -> Localiser:
    """The scaffolding messages of the project whose content folder is ``content``: in the
    language show.toml sets (English when show.toml cannot be read, the way the loader
    defaults it); ``famfeeds check`` reports an unreadable show.toml afterwards."""
    import tomllib

    from famfeeds.build.project import Project

    language = "en"
    with contextlib.suppress(OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = tomllib.loads((content / "show.toml").read_text(encoding="utf-8"))
        if isinstance(data.get("language"), str):
            language = data["language"]
    return scaffold_words(language, Project.of(content).locale)


def comment(text: str) -> str:
    """``text`` as comment lines (``# ...``), wrapped at COMMENT_WIDTH."""
    lines = textwrap.wrap(text, COMMENT_WIDTH - 2, break_long_words=False, break_on_hyphens=False)
    return "\n".join("# " + line for line in lines)


def with_note(line: str, note: str, column: int = NOTE_COLUMN) -> str:
    """``line`` with the comment ``note`` after it, from ``column`` on; a note that would
    pass COMMENT_WIDTH goes on comment lines of its own above ``line`` instead."""
    beside = f"{line.ljust(column - 2)} # {note}"
    if len(beside) <= COMMENT_WIDTH:
        return beside
    return comment(note) + "\n" + line


def paragraph(text: str, first: str = "", rest: str = "") -> str:
    """A Markdown paragraph (or list item, with its ``first`` and ``rest`` indents), wrapped
    at COMMENT_WIDTH."""
    return "\n".join(
        textwrap.wrap(
            text,
            COMMENT_WIDTH,
            initial_indent=first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def show_toml(answers: ShowAnswers, id_date: date, words: Localiser | None = None) -> str:
    """content/show.toml for a new project, its comments in the show's language.

    The description does not say where the show streams: the page says it right below.
    """
    from urllib.parse import urlsplit

    l10n = words or scaffold_words(answers.language)
    _ = l10n.gettext
    domain = urlsplit(answers.base_url).hostname or "example.org"
    description = _("Every episode of %(show)s and the day it comes out.", show=answers.title)
    lines = [
        comment(
            _(
                "The show: one file for the whole project. `famfeeds check` explains any "
                "mistake, with its line; `famfeeds schedule` shows the release dates all "
                "this gives."
            )
        ),
        f"title = {toml_string(answers.title)}",
        comment(
            _(
                "Lower-case letters, digits and hyphens. It goes into feed ids and calendar "
                "UIDs: do not change it once people subscribe."
            )
        ),
        f"slug = {toml_string(answers.slug)}",
        comment(
            _(
                "Where the output/ folder will be published (every link points there). Feed "
                "ids and calendar UIDs are made from its domain."
            )
        ),
        f"base_url = {toml_string(answers.base_url)}",
        comment(
            _(
                "A day on which you held base_url's domain; `famfeeds init` wrote the day it "
                "ran. It is part of every feed entry's permanent id: never change it after "
                "publishing."
            )
        ),
        f"id_date = {toml_date(id_date)}",
        comment(
            _(
                'The show\'s language: an ISO 639 code such as "en", "en-GB" or "de". The '
                "pages, feeds, calendar and newsletter use it for every word famfeeds writes."
            )
        ),
        f"language = {toml_string(answers.language)}",
        comment(_("Where the show streams or airs; the page names it below the description.")),
        f"service = {toml_string(answers.service)}",
        comment(
            _(
                "Release dates and times are read in this IANA time zone: the city whose "
                "clock the releases follow (daylight-saving changes included), e.g. "
                '"America/New_York".'
            )
        ),
        f"timezone = {toml_string(answers.timezone)}",
        comment(
            _(
                "A few sentences about the show, in Markdown, shown below its title. There "
                "is no need to say where it streams: the page does."
            )
        ),
        'description = """',
        _multiline_safe(description),
        '"""',
        comment(_("Optional (remove the # to use one):")),
        with_note('# homepage = "https://..."', _("the show's official page")),
        with_note('# artwork = "https://.../logo.png"', _("an image for the feeds")),
        with_note("# feed_entries = 50", _("how many entries each feed keeps")),
        "",
        "[author]",
        comment(_("Who publishes the feeds.")),
        f"name = {toml_string(answers.title)}",
        '# email = "you@example.org"',
        '# uri = "https://example.org/"',
        "",
        "# [calendar]",
        with_note("# all_day = false", _("true: timed releases become all-day events"), 20),
        with_note("# reminder = 0", _("minutes before each release for an alarm; 0 = none"), 20),
        "",
        *newsletter_lines(answers, domain, l10n),
    ]
    return "\n".join(lines) + "\n"


def newsletter_lines(answers: ShowAnswers, domain: str, l10n: Localiser) -> list[str]:
    """show.toml's [newsletter] table: each key with a comment saying what it turns on.

    With the subscriptions service's public URL the table is on (the page gets the sign-up
    form); without it, every line is commented out, ready to be switched on.
    """
    _ = l10n.gettext
    on = answers.service_url is not None
    off = "" if on else "# "
    base = answers.base_url
    if on:
        intro = _(
            "The newsletter: an issue for every release day, which `famfeeds send` mails, "
            "each with a one-click unsubscribe link. A key with a # in front is off: remove "
            "the # to use it."
        )
    else:
        intro = _(
            "The newsletter is off. For an issue every release day (`famfeeds send` mails "
            "them, each with a one-click unsubscribe link), remove the # in front of "
            "[newsletter], of the two sender keys and of service_url or unsubscribe_url."
        )
    service_url = answers.service_url or f"{base}subscriptions/"
    sender = _("%(show)s newsletter", show=answers.title)
    return [
        comment(intro),
        off + "[newsletter]",
        comment(_("Who the issues come from: the name and the address readers see.")),
        off + f"sender_name = {toml_string(sender)}",
        off + f"sender_address = {toml_string('news@' + domain)}",
        comment(
            _(
                "Where people reach the subscriptions service (`famfeeds subscriptions`): "
                "the page gets a sign-up form that posts to it, and every issue an "
                "unsubscribe link to it."
            )
        ),
        off + f"service_url = {toml_string(service_url)}",
        comment(
            _(
                "Instead of service_url: an unsubscribe page of your own; {token} stands "
                "for each subscriber's own key."
            )
        ),
        f"# unsubscribe_url = {toml_string(base + 'unsubscribe?token={token}')}",
        comment(_("A sign-up page of your own: the page links to it.")),
        f"# signup_url = {toml_string(base + 'subscribe')}",
        comment(
            _(
                "The mail server that `famfeeds send` and the service's confirmation mails "
                "go through; its password comes from FAMFEEDS_SMTP_PASSWORD."
            )
        ),
        f"# smtp_url = {toml_string('smtp://mail.' + domain + ':587')}",
    ]


def _multiline_safe(text: str) -> str:
    """Text for the inside of a TOML multi-line basic string (a one-line value)."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _season_heading(l10n: Localiser, number: int, cadence: str) -> str:
    """The first comment of a season.toml: what ``famfeeds schedule`` shows for it."""
    _ = l10n.gettext
    if cadence == "daily":
        return _(
            "Season %(number)d. `famfeeds schedule --season %(number)d` shows the day these "
            "settings give every episode: the premiere, then one day later, and so on.",
            number=number,
        )
    if cadence == "biweekly":
        return _(
            "Season %(number)d. `famfeeds schedule --season %(number)d` shows the day these "
            "settings give every episode: the premiere, then two weeks later, and so on.",
            number=number,
        )
    if cadence == "all-at-once":
        return _(
            "Season %(number)d. `famfeeds schedule --season %(number)d` shows the day these "
            "settings give every episode: all of them on the premiere.",
            number=number,
        )
    return _(
        "Season %(number)d. `famfeeds schedule --season %(number)d` shows the day these "
        "settings give every episode: the premiere, then one week later, and so on.",
        number=number,
    )


def season_title(l10n: Localiser, number: int) -> str:
    """A new season's title in the show's language: ``Season 2``, ``Staffel 2``."""
    return l10n.gettext("Season %(number)d", number=number)


def season_toml(
    number: int,
    premiere: date,
    cadence: str = "weekly",
    release_time: time | None = None,
    title: str | None = None,
    words: Localiser | None = None,
) -> str:
    """content/season-NN/season.toml, its title and comments in the show's language."""
    l10n = words or scaffold_words("en")
    _ = l10n.gettext
    if release_time is None:
        time_lines = [
            comment(
                _(
                    "Time of day of every release, in the show's time zone (without it, "
                    "releases are all-day):"
                )
            ),
            "# release_time = 21:00:00",
        ]
    else:
        time_lines = [
            comment(
                _(
                    "Time of day of every release, in the show's time zone (remove it for "
                    "all-day releases)."
                )
            ),
            f"release_time = {release_time.isoformat()}",
        ]
    lines = [
        comment(_season_heading(l10n, number, cadence)),
        with_note(
            f"number = {number}",
            _("must match the folder name %(folder)s", folder=season_folder_name(number)),
        ),
        f"title = {toml_string(title or season_title(l10n, number))}",
        comment(_("The first release day, in the show's time zone.")),
        f"premiere = {toml_date(premiere)}",
        comment(
            _('"weekly", "daily", "biweekly" or "all-at-once": the step between release days.')
        ),
        f"cadence = {toml_string(cadence)}",
        *time_lines,
        comment(_("A few sentences about the season, in Markdown (optional).")),
        'description = """',
        '"""',
    ]
    return "\n".join(lines) + "\n"


def episode_md(
    season: int,
    number: int,
    title: str,
    release: date | datetime | None,
    example: date,
    words: Localiser | None = None,
) -> str:
    """content/season-NN/EE-slug.md: front matter with comments in the show's language,
    and a synopsis to replace."""
    l10n = words or scaffold_words("en")
    _ = l10n.gettext
    if release is None:
        day = toml_date(example)
        release_line = with_note(
            f"# release = {day}",
            _(
                "a day, or a day and a time (%(example)s); without it, the season's next "
                "release slot",
                example=day + EXAMPLE_TIME,
            ),
        )
    else:
        release_line = f"release = {toml_date(release)}"
    code = f"s{season:02d}e{number:02d}"
    image_alt = _("What the image shows")
    lines = [
        "+++",
        f"number = {number}",
        f"title = {toml_string(title)}",
        release_line,
        comment(_("Optional (remove the # to use one):")),
        with_note('# status = "cancelled"', _('"scheduled" (the default) or "cancelled"'), 25),
        with_note("# runtime = 60", _("minutes"), 25),
        f'# image = "https://example.org/stills/{code}.jpg"',
        f"# image_alt = {toml_string(image_alt)}",
        with_note("# updated = 2026-01-01", _("when you last changed this record"), 25),
        "+++",
        "",
        _("The synopsis, in Markdown: what the episode is about, without spoilers."),
    ]
    return "\n".join(lines) + "\n"


def project_readme(answers: ShowAnswers, words: Localiser) -> str:
    """The new project's README.md, in the show's language."""
    _ = words.gettext
    commands = [
        ("famfeeds schedule", _("every episode's date, as a table")),
        ("famfeeds check", _("validate the content")),
        ("famfeeds build", _("write everything into output/")),
        ("famfeeds serve", _("preview it at %(url)s", url="http://127.0.0.1:8000/")),
        ("famfeeds run", _("on a server: all of it, at each release moment")),
    ]
    bullets = [
        _("`content/show.toml`: the show; `content/season-NN/`: a season and its episodes."),
        _(
            "`famfeeds new season 2 --premiere YYYY-MM-DD` and "
            '`famfeeds new episode --title "..."` add files with the next free numbers.'
        ),
        _(
            "Publish `output/` at the base_url of `content/show.toml`. Commit `%(lock)s` with "
            "the content: it keeps calendar updates in order.",
            lock=LOCK_NAME,
        ),
        _(
            "On a server, leave `famfeeds run` running (or run `famfeeds run --once` from "
            "cron every few minutes): it builds, publishes and sends each issue at the moment "
            "each episode comes out."
        ),
    ]
    intro = _(
        "The release schedule of *%(show)s* (%(service)s), kept as plain text for famfeeds: "
        "it builds Atom, RSS and JSON feeds, an iCalendar subscription, a page and a "
        "newsletter from the files in `content/`.",
        show=answers.title,
        service=answers.service,
    )
    parts = [
        f"# {answers.title}",
        "",
        paragraph(intro),
        "",
        *(f"    {command.ljust(21)} # {note}" for command, note in commands),
        "",
        *(paragraph(text, "- ", "  ") for text in bullets),
    ]
    return "\n".join(parts) + "\n"


GITIGNORE_LINES = (
    "# famfeeds: built files, caches and private delivery state",
    "/output/",
    "/.output.famfeeds-*/",
    "/.output.old-*/",
    f"/{CACHE_DIR}/",
    f"/{PREVIEW_DIR}/",
    f"/{STATE_DIR}/",
    f"/.{LOCK_NAME}.*.tmp",
)


def season_folder_name(number: int) -> str:
    """The folder of season ``number``: season-01."""
    return f"season-{number:02d}"


def episode_file_name(number: int, slug: str) -> str:
    """An episode's file name: 03-the-bear-hug.md."""
    return f"{number:02d}-{slug}.md"


def episode_slug(title: str, number: int, taken: set[str]) -> str:
    """A slug for an episode titled ``title`` that no other episode of the season uses."""
    base = slugify(title) or f"episode-{number}"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def episode_title(l10n: Localiser, number: int) -> str:
    """A new episode's placeholder title in the show's language: ``Episode 3``, ``Folge 3``."""
    return l10n.gettext("Episode %(number)d", number=number)


def init_files(
    root: Path, answers: ShowAnswers, id_date: date, words: Localiser | None = None
) -> dict[Path, str]:
    """Every file ``famfeeds init`` writes under ``root`` (not the .gitignore), in the
    show's language (``words``: its messages, by default the shipped catalogue's)."""
    l10n = words or scaffold_words(answers.language)
    content = root / "content"
    files = {content / "show.toml": show_toml(answers, id_date, l10n)}
    files.update(
        season_files(
            content,
            1,
            answers.premiere,
            answers.episodes,
            answers.cadence,
            answers.release_time,
            words=l10n,
        )
    )
    files[root / "README.md"] = project_readme(answers, l10n)
    return files


def season_files(
    content: Path,
    number: int,
    premiere: date,
    episodes: int,
    cadence: str,
    release_time: time | None,
    title: str | None = None,
    words: Localiser | None = None,
) -> dict[Path, str]:
    """A season folder: season.toml and ``episodes`` numbered episode files, titled and
    commented in the show's language (``words``; default: that of ``content``'s show)."""
    l10n = words or project_words(content)
    folder = content / season_folder_name(number)
    files = {
        folder / "season.toml": season_toml(number, premiere, cadence, release_time, title, l10n)
    }
    taken: set[str] = set()
    for n in range(1, episodes + 1):
        name = episode_title(l10n, n)
        slug = episode_slug(name, n, taken)
        taken.add(slug)
        text = episode_md(number, n, name, None, premiere, l10n)
        files[folder / episode_file_name(n, slug)] = text
    return files


def gitignore_addition(root: Path) -> str | None:
    """What to add to ``root``/.gitignore (the whole file if it is new); None if nothing."""
    path = root / ".gitignore"
    try:
        existing = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return "\n".join(GITIGNORE_LINES) + "\n"
    except (OSError, UnicodeDecodeError) as exc:
        raise FamfeedsError(f"{display_path(path)}: cannot read it ({exc})") from None
    have = {line.strip() for line in existing}
    missing = [line for line in GITIGNORE_LINES[1:] if line not in have]
    if not missing:
        return None
    return "\n".join([GITIGNORE_LINES[0], *missing]) + "\n"


def write_new(files: dict[Path, str]) -> list[Path]:
    """Create every file of ``files``, refusing if any exists; all or nothing.

    Raises FamfeedsError naming every file in the way.
    """
    in_the_way = [p for p in files if p.exists() or p.is_symlink()]
    if in_the_way:
        listed = ", ".join(display_path(p) for p in in_the_way)
        raise FamfeedsError(
            f"refusing to overwrite {listed}: famfeeds never replaces a file that exists "
            "(move it away, or use another folder)"
        )
    written: list[Path] = []
    made: list[Path] = []
    try:
        for path, text in files.items():
            for parent in reversed(path.parents):
                if not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            with path.open("x", encoding="utf-8", newline="\n") as handle:
                written.append(path)
                handle.write(text)
    except OSError as exc:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                break
        where = display_path(Path(exc.filename)) if exc.filename else "a file"
        raise FamfeedsError(f"cannot write {where}: {exc.strerror or exc}") from None
    return written


def append_gitignore(root: Path, addition: str) -> Path:
    """Add ``addition`` at the end of ``root``/.gitignore (creating it)."""
    path = root / ".gitignore"
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(separator + ("\n" if existing else "") + addition)
    return path


def season_numbers(content: Path) -> list[int]:
    """The numbers of the season folders under ``content``, in order."""
    if not content.is_dir():
        return []
    found = (SEASON_FOLDER.match(p.name) for p in content.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def season_folder(content: Path, number: int) -> Path | None:
    """The folder of season ``number`` (season-1 or season-01), if there is one."""
    if not content.is_dir():
        return None
    for path in sorted(content.iterdir()):
        match = SEASON_FOLDER.match(path.name)
        if path.is_dir() and match and int(match.group(1)) == number:
            return path
    return None


def episodes_in(folder: Path) -> dict[int, str]:
    """Episode numbers and slugs of the episode files in a season folder."""
    found: dict[int, str] = {}
    for path in sorted(folder.glob("*.md")):
        match = EPISODE_NAME.match(path.name)
        if match:
            found.setdefault(int(match.group(1)), match.group(2))
    return found


def new_episode_file(
    content: Path, season: int, title: str | None, release: date | datetime | None
) -> tuple[Path, str, int]:
    """The path, text and number of the next episode of ``season``, titled (unless
    ``title`` is given) and commented in the show's language."""
    folder = season_folder(content, season)
    if folder is None:
        known = ", ".join(str(n) for n in season_numbers(content)) or "none yet"
        raise FamfeedsError(
            f"there is no season {season} under {display_path(content)} (seasons: {known}); "
            f"add it with: famfeeds new season {season} --premiere YYYY-MM-DD"
        )
    existing = episodes_in(folder)
    number = max(existing, default=0) + 1
    l10n = project_words(content)
    name = title if title is not None else episode_title(l10n, number)
    slug = episode_slug(name, number, set(existing.values()))
    premiere = _season_premiere(folder) or date(2000, 1, 1)
    text = episode_md(season, number, name, release, premiere, l10n)
    return folder / episode_file_name(number, slug), text, number


def _season_premiere(folder: Path) -> date | None:
    """The premiere written in a season.toml, for an example date; None if unreadable."""
    import tomllib

    try:
        data = tomllib.loads((folder / "season.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = data.get("premiere")
    return value if isinstance(value, date) and not isinstance(value, datetime) else None
