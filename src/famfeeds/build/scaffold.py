"""Start a project and add seasons and episodes: commented files that pass ``check --strict``.

Everything here writes new files only: a file that exists is never replaced (the one
exception is a project's ``.gitignore``, to which ``init`` appends the lines it lacks). All
the files of one command are checked first and written together; if one cannot be written,
those already written are removed again, so a refused command leaves nothing behind.

Slugs come from titles: transliterated to ASCII with anyascii (every script, not only
accented Latin: "Чернобыль" gives ``chernobyl``), lower-cased, and words joined by hyphens.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from famfeeds.build.project import CACHE_DIR, LOCK_NAME, PREVIEW_DIR, STATE_DIR
from famfeeds.errors import FamfeedsError, display_path

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

    @property
    def slug(self) -> str:
        """The show's slug, from its title."""
        return slugify(self.title) or "my-show"


SHOW_TEMPLATE = """\
# The show: one file for the whole project. `famfeeds check` explains any mistake,
# with its line; `famfeeds schedule` shows the release dates all this gives.
title = {title}
# Lower-case letters, digits and hyphens. It goes into feed ids and calendar UIDs:
# do not change it once people subscribe.
slug = {slug}
# Where the output/ folder will be published (every link points there). Feed ids and
# calendar UIDs are made from its domain.
base_url = {base_url}
# A day on which you held base_url's domain; `famfeeds init` wrote the day it ran.
# It is part of every feed entry's permanent id: never change it after publishing.
id_date = {id_date}
# The show's language: an ISO 639 code such as "en", "en-GB" or "de".
language = {language}
# Where the show streams or airs.
service = {service}
# Release dates and times are read in this IANA time zone: the city whose clock the
# releases follow (daylight-saving changes included), e.g. "America/New_York".
timezone = {timezone}
# A few sentences about the show, in Markdown.
description = \"\"\"
{title_text} streams on {service_text}.
\"\"\"
# Optional:
# homepage = "https://..."            # the show's official page
# artwork = "https://.../logo.png"    # an image for the feeds
# feed_entries = 50                   # how many entries each feed keeps

[author]
# Who publishes the feeds.
name = {author}
# email = "you@example.org"
# uri = "https://example.org/"

# [calendar]
# all_day = false       # true: timed releases become all-day events
# reminder = 0          # minutes before each release for an alarm; 0 = none

# Remove the # signs below to make a newsletter issue for every release day
# (`famfeeds send` mails them). Every message carries a one-click unsubscribe link.
# [newsletter]
# sender_name = "{title_text} weekly"
# sender_address = "news@{domain}"
# unsubscribe_url = "{base_url_text}unsubscribe?token={{token}}"   # {{token}}: per subscriber
# signup_url = "{base_url_text}subscribe"
# smtp_url = "smtp://mail.{domain}:587"
"""

SEASON_TEMPLATE = """\
# Season {number}. `famfeeds schedule --season {number}` shows the date these settings give
# every episode: the premiere, then one {step_word} later, and so on.
number = {number}                   # must match the folder name {folder}
title = {title}
# The first release day, in the show's time zone.
premiere = {premiere}
# weekly, daily, biweekly or all-at-once: the step between release days.
cadence = {cadence}
{time_line}
description = \"\"\"
\"\"\"
"""

EPISODE_TEMPLATE = """\
+++
number = {number}
title = {title}
{release_line}
# Optional (remove the # to use one):
# status = "cancelled"        # scheduled (the default) or cancelled
# runtime = 60                # minutes
# image = "https://example.org/stills/{code}.jpg"
# image_alt = "What the image shows"
# updated = 2026-01-01        # when you last changed this record
+++

The synopsis, in Markdown: what the episode is about, without spoilers.
"""

RELEASE_COMMENT = (
    "# release = {example}   # a day, or a day and time ({example}T21:00:00); "
    "without it, the next slot"
)

PROJECT_README = """\
# {title}

The release schedule of *{title}* ({service}), kept as plain text for famfeeds: it
builds an Atom/RSS/JSON feed, an iCalendar subscription, a page and a newsletter from the
files in `content/`.

    famfeeds schedule     # every episode's date, as a table
    famfeeds check        # validate the content
    famfeeds build        # write everything into output/
    famfeeds serve        # preview it at http://127.0.0.1:8000/

- `content/show.toml`: the show; `content/season-NN/`: a season and its episodes.
- `famfeeds new season 2 --premiere YYYY-MM-DD` and `famfeeds new episode --title "..."`
  add files with the next free numbers.
- Publish `output/` at the base_url of `content/show.toml`. Commit `{lock}` with the
  content: it keeps calendar updates in order.
"""

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


def show_toml(answers: ShowAnswers, id_date: date) -> str:
    """content/show.toml for a new project."""
    from urllib.parse import urlsplit

    domain = urlsplit(answers.base_url).hostname or "example.org"
    return SHOW_TEMPLATE.format(
        title=toml_string(answers.title),
        title_text=_multiline_safe(answers.title),
        slug=toml_string(answers.slug),
        base_url=toml_string(answers.base_url),
        base_url_text=answers.base_url,
        id_date=toml_date(id_date),
        language=toml_string(answers.language),
        service=toml_string(answers.service),
        service_text=_multiline_safe(answers.service),
        timezone=toml_string(answers.timezone),
        author=toml_string(answers.title),
        domain=domain,
    )


def _multiline_safe(text: str) -> str:
    """Text for the inside of a TOML multi-line basic string (a one-line value)."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def season_toml(
    number: int,
    premiere: date,
    cadence: str = "weekly",
    release_time: time | None = None,
    title: str | None = None,
) -> str:
    """content/season-NN/season.toml."""
    step_word = {"weekly": "week", "daily": "day", "biweekly": "two weeks"}.get(cadence)
    if release_time is None:
        time_line = (
            "# Time of day of every release, in the show's time zone (without it, all-day):\n"
            "# release_time = 21:00:00"
        )
    else:
        time_line = (
            "# Time of day of every release, in the show's time zone (remove for all-day).\n"
            f"release_time = {release_time.isoformat()}"
        )
    text = SEASON_TEMPLATE.format(
        number=number,
        folder=season_folder_name(number),
        title=toml_string(title or f"Season {number}"),
        premiere=toml_date(premiere),
        cadence=toml_string(cadence),
        step_word=step_word or "step",
        time_line=time_line,
    )
    if step_word is None:  # all at once: there is no "later"
        text = text.replace(
            "the premiere, then one step later, and so on.", "every episode on the premiere."
        )
    return text


def episode_md(
    season: int, number: int, title: str, release: date | datetime | None, example: date
) -> str:
    """content/season-NN/EE-slug.md."""
    if release is None:
        release_line = RELEASE_COMMENT.format(example=toml_date(example))
    else:
        release_line = f"release = {toml_date(release)}"
    return EPISODE_TEMPLATE.format(
        number=number,
        title=toml_string(title),
        release_line=release_line,
        code=f"s{season:02d}e{number:02d}",
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


def episode_titles(count: int) -> list[str]:
    """Placeholder titles for ``count`` new episodes."""
    return [f"Episode {n}" for n in range(1, count + 1)]


def init_files(root: Path, answers: ShowAnswers, id_date: date) -> dict[Path, str]:
    """Every file ``famfeeds init`` writes under ``root`` (not the .gitignore)."""
    content = root / "content"
    files = {content / "show.toml": show_toml(answers, id_date)}
    files.update(
        season_files(
            content, 1, answers.premiere, answers.episodes, answers.cadence, answers.release_time
        )
    )
    files[root / "README.md"] = PROJECT_README.format(
        title=answers.title, service=answers.service, lock=LOCK_NAME
    )
    return files


def season_files(
    content: Path,
    number: int,
    premiere: date,
    episodes: int,
    cadence: str,
    release_time: time | None,
    title: str | None = None,
) -> dict[Path, str]:
    """A season folder: season.toml and ``episodes`` numbered episode files."""
    folder = content / season_folder_name(number)
    files = {folder / "season.toml": season_toml(number, premiere, cadence, release_time, title)}
    taken: set[str] = set()
    for n, name in enumerate(episode_titles(episodes), start=1):
        slug = episode_slug(name, n, taken)
        taken.add(slug)
        files[folder / episode_file_name(n, slug)] = episode_md(number, n, name, None, premiere)
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
    """The path, text and number of the next episode of ``season``."""
    folder = season_folder(content, season)
    if folder is None:
        known = ", ".join(str(n) for n in season_numbers(content)) or "none yet"
        raise FamfeedsError(
            f"there is no season {season} under {display_path(content)} (seasons: {known}); "
            f"add it with: famfeeds new season {season} --premiere YYYY-MM-DD"
        )
    existing = episodes_in(folder)
    number = max(existing, default=0) + 1
    name = title if title is not None else f"Episode {number}"
    slug = episode_slug(name, number, set(existing.values()))
    premiere = _season_premiere(folder) or date(2000, 1, 1)
    text = episode_md(season, number, name, release, premiere)
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
