"""The project and the random edits of tests/test_differential.py.

A small generated project (show, 2-3 seasons of 3-5 episodes, newsletter on) and one
function per kind of edit. Every edit reads the files as they are on disk (the files are
the model: TOML is parsed, changed and written back), draws from one random.Random, and
returns a line for the edit log. Edits never look inside famfeeds: what a user can change
(content/, templates/, locale/, the lock, output/, the caches on disk, the zone database,
the installed code) is what they change. The few that need a hook into the process (the
code digest, library versions, zone rules) get it from ``Hooks``, which the test file
provides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from random import Random
from typing import Any

# TOML ----------------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """``value`` as a TOML literal (str, bool, int, date, time, datetime)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are valid TOML
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"no TOML for {value!r}")


def dump_toml(data: dict[str, Any]) -> str:
    """A flat TOML document: the scalars first, then one table per dict value."""
    lines = [f"{key} = {toml_value(v)}" for key, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


FRONT = re.compile(r"\A\+\+\+\n(.*?)\n?\+\+\+\n(.*)\Z", re.DOTALL)


def episode_file(front: dict[str, Any], synopsis: str) -> str:
    return "+++\n" + dump_toml(front) + "+++\n\n" + synopsis.strip("\n") + "\n"


def parse_episode(text: str) -> tuple[dict[str, Any], str] | None:
    """The front matter and synopsis of an episode file, or None if it does not parse."""
    found = FRONT.match(text)
    if found is None:
        return None
    try:
        return tomllib.loads(found.group(1)), found.group(2)
    except tomllib.TOMLDecodeError:
        return None


def parse_toml(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


# Words ---------------------------------------------------------------------------------------

WORDS = [
    "harbor",
    "lights",
    "signal",
    "north",
    "tide",
    "glass",
    "ember",
    "river",
    "hollow",
    "orbit",
    "static",
    "lantern",
    "quarry",
    "meridian",
    "vessel",
    "cinder",
    "arrival",
    "echo",
]
ODD_TITLES = (
    "Crème brûlée",
    "Über alles & <b>nichts</b>",
    "東京の夜",
    "Fish 🐟 and chips",
    'A "quoted" title',
    "Less < more > less",
    "L'été à Paris",
    "Ça va ?",
)
LANGUAGES = ("en", "de", "fr", "en-GB", "de-AT", "fr-CA")
ZONES = (
    "America/New_York",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
)
DONOR_ZONES = ("America/Chicago", "Asia/Kolkata", "Pacific/Auckland", "UTC", "Europe/Moscow")
CADENCES = ("weekly", "daily", "biweekly", "all-at-once")
BASE_URLS = (
    "https://shows.example.net/diff/",
    "https://staging.example.org/preview/diff/",
    "https://例え.jp/ショー/",
    "https://xn--r8jz45g.jp/%E3%82%B7%E3%83%A7%E3%83%BC/",
)
SHIPPED_TEMPLATES = (
    "base.html.j2",
    "index.html.j2",
    "season.html.j2",
    "episode.html.j2",
    "macros.html.j2",
    "newsletter.html.j2",
    "newsletter.txt.j2",
    "newsletter-archive.html.j2",
    "feed.xsl.j2",
    "site.css",
    "newsletter.css",
)
NEWSLETTER = {
    "sender_name": "Differential weekly",
    "sender_address": "news@example.net",
    "unsubscribe_url": "https://example.net/unsubscribe?token={token}",
}


def words(rng: Random, low: int = 1, high: int = 4) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def title(rng: Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(ODD_TITLES)
    return words(rng, 1, 4).title()


def markdown(rng: Random) -> str:
    """A synopsis: paragraphs with emphasis, links (absolute and relative), lists, code, and
    now and then raw HTML that the cleaner removes."""
    parts = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.4:
            parts.append(f"{words(rng, 3, 9).capitalize()} *{words(rng)}* and **{words(rng)}**.")
        elif kind < 0.55:
            parts.append(f"See [{words(rng)}](https://example.org/{rng.choice(WORDS)}).")
        elif kind < 0.65:
            parts.append(f"Back to [the season](s0{rng.randint(1, 3)}/) or `{rng.choice(WORDS)}`.")
        elif kind < 0.75:
            parts.append("\n".join(f"- {words(rng)}" for _ in range(rng.randint(2, 3))))
        elif kind < 0.82:
            parts.append(f"<script>alert('{rng.choice(WORDS)}')</script>{words(rng)}")
        elif kind < 0.88:
            parts.append(f"Tom & Jerry < {rng.randint(1, 9)} > &amp; {rng.choice(ODD_TITLES)}")
        else:
            parts.append(words(rng, 4, 12).capitalize() + ".")
    return "\n\n".join(parts)


# The project ---------------------------------------------------------------------------------


@dataclass
class Hooks:
    """What an edit needs from the test: the process-wide changes it may make."""

    code_digest: Callable[[str | None], None]
    library_versions: Callable[[str | None], None]
    zone_rules: Callable[[str, str | None], str]
    """zone_rules(zone, donor): give ``zone`` the rules of ``donor`` (None: the real ones
    again); returns a description."""
    key_days: Callable[[], list[date]]
    """Release and issue days of the project as it is (famfeeds schedule --json)."""


@dataclass
class State:
    """What the edits keep between them."""

    root: Path
    """The project folder (holds content/, output/, templates/, locale/, famfeeds.lock)."""
    elsewhere: Path
    """A folder outside the project, for link targets (themes)."""
    rng: Random
    hooks: Hooks
    as_of: date
    in_place: bool
    broken: dict[Path, bytes | None] = field(default_factory=dict)
    """Files an invalid edit changed, and their bytes before it (None: did not exist)."""
    own: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """Files of the user's own in each output folder, by relative name: kept, never
    compared."""
    output_name: str = "output"
    """The output folder the builds write into (``--output``), beside content/."""
    base_url: str | None = None
    """``--base-url``, if given (a staging address)."""
    strict: bool = False
    """``--strict``."""
    locks: list[bytes] = field(default_factory=list)
    """famfeeds.lock as earlier builds left it, to put one back (git checkout)."""
    counter: int = 0
    code: str | None = None
    libraries: str | None = None
    zones: dict[str, str] = field(default_factory=dict)
    """Zones whose rules are replaced, and by whose."""
    damaged: set[str] = field(default_factory=set)
    """Parts of the caches damaged so far and maybe not yet noticed ("memo", "issues",
    "records", "outputs", "lock", "templates"): a build may say it repaired them."""

    @property
    def content(self) -> Path:
        return self.root / "content"

    @property
    def output(self) -> Path:
        return self.root / self.output_name

    @property
    def own_files(self) -> dict[str, bytes]:
        """The user's own files in the output folder now built into."""
        return self.own.setdefault(self.output_name, {})

    def options(self, root: Path) -> list[str]:
        """The build's options for the project at ``root`` (this one, or its copy)."""
        found = ["--output", str(root / self.output_name)]
        if self.base_url is not None:
            found += ["--base-url", self.base_url]
        return [*found, "--strict"] if self.strict else found

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    def next_mark(self) -> str:
        self.counter += 1
        return f"mark-{self.counter}"


def make_project(root: Path, rng: Random) -> date:
    """Write a show with 2-3 seasons of 3-5 episodes and a newsletter under ``root``; return
    a reference date within its schedule."""
    show: dict[str, Any] = {
        "title": "Differential Show",
        "slug": "diff-show",
        "base_url": BASE_URLS[0],
        "id_date": date(2020, 1, 1),
        "language": rng.choice(LANGUAGES[:3]),
        "service": "Example+",
        "timezone": rng.choice(ZONES),
        "description": "A show *for* tests.",
        "author": {"name": "Tester"},
        "newsletter": dict(NEWSLETTER),
    }
    content = root / "content"
    content.mkdir(parents=True)
    (content / "show.toml").write_text(dump_toml(show), encoding="utf-8")
    premiere = date(2024, 1, 1) + timedelta(days=rng.randint(0, 40))
    first = premiere
    for number in range(1, rng.randint(2, 3) + 1):
        cadence = rng.choice(CADENCES[:3])
        count = rng.randint(3, 5)
        write_season(content, number, premiere, cadence, count, rng)
        step = {"weekly": 7, "daily": 1, "biweekly": 14}[cadence]
        premiere += timedelta(days=step * count + rng.randint(3, 30))
    return first + timedelta(days=rng.randint(0, (premiere - first).days))


def write_season(
    content: Path, number: int, premiere: date, cadence: str, count: int, rng: Random
) -> None:
    meta: dict[str, Any] = {"number": number, "title": f"Season {number}", "premiere": premiere}
    meta["cadence"] = cadence
    if rng.random() < 0.6:
        meta["release_time"] = time(rng.choice((9, 18, 20, 21, 23)), rng.choice((0, 30)))
    folder = content / f"season-{number:02d}"
    folder.mkdir()
    (folder / "season.toml").write_text(dump_toml(meta), encoding="utf-8")
    for episode in range(1, count + 1):
        write_episode(folder, episode, rng)


def write_episode(folder: Path, number: int, rng: Random, slug: str | None = None) -> Path:
    front: dict[str, Any] = {"number": number, "title": title(rng)}
    if rng.random() < 0.3:
        front["runtime"] = rng.randint(20, 90)
    slug = slug or f"{rng.choice(WORDS)}-{number}"
    path = folder / f"{number:02d}-{slug}.md"
    path.write_text(episode_file(front, markdown(rng)), encoding="utf-8")
    return path


# Writing files -------------------------------------------------------------------------------


def write(state: State, path: Path, text: str | bytes, invalid: bool = False) -> str:
    """Write ``path``; now and then keep its modification time (and, when the length is the
    same, its size: the racy edit a stat index must not miss). ``invalid``: remember the
    old bytes so that a later edit can put them back."""
    data = text.encode() if isinstance(text, str) else text
    old = path.read_bytes() if path.exists() else None
    if invalid and path not in state.broken:
        state.broken[path] = old
    keep = old is not None and state.rng.random() < 0.25
    info = path.stat() if keep else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if info is not None:
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        return " (mtime kept)"
    return ""


def rel(state: State, path: Path) -> str:
    try:
        return path.relative_to(state.root).as_posix()
    except ValueError:
        return path.relative_to(state.elsewhere.parent).as_posix()


def seasons(state: State) -> list[Path]:
    return sorted(p for p in state.content.glob("season-*") if p.is_dir())


def episodes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.md") if p.is_file())


def healthy(state: State, paths: list[Path]) -> list[Path]:
    return [p for p in paths if p not in state.broken]


# Record fields -------------------------------------------------------------------------------


def edit_episode(state: State) -> str:
    rng = state.rng
    files = healthy(state, [e for s in seasons(state) for e in episodes(s)])
    parsed = [(p, parse_episode(p.read_text(encoding="utf-8"))) for p in files]
    choices = [(p, found) for p, found in parsed if found is not None]
    if not choices:
        return edit_as_of(state)
    path, (front, synopsis) = rng.choice(choices)
    season_meta = parse_toml((path.parent / "season.toml").read_text(encoding="utf-8")) or {}
    premiere = season_meta.get("premiere", state.as_of)
    if not isinstance(premiere, date):
        premiere = state.as_of
    invalid = False
    what = rng.choice(
        ["title"] * 4
        + ["synopsis"] * 4
        + ["release"] * 4
        + ["runtime", "status", "image", "updated", "date_checked", "same length"]
        + ["invalid"] * 2
    )
    if what == "title":
        front["title"] = title(rng)
        change = f"title = {front['title']!r}"
    elif what == "same length":
        old = front.get("title", "")
        new = old.swapcase() if old.swapcase() != old else old + "!"
        front["title"] = new
        change = f"title {old!r} -> {new!r} (same length)"
    elif what == "synopsis":
        synopsis = markdown(rng)
        change = f"synopsis = {synopsis[:40]!r}..."
    elif what == "release":
        day = premiere + timedelta(days=rng.randint(-3, 60))
        form = rng.random()
        if form < 0.25:
            front.pop("release", None)
            change = "release removed"
        elif form < 0.55:
            front["release"] = day
            change = f"release = {day}"
        elif form < 0.75:
            front["release"] = datetime.combine(day, time(rng.randint(0, 23), rng.choice((0, 30))))
            change = f"release = {front['release'].isoformat()}"
        else:
            zone = rng.choice(("Z", "+01:00", "-05:00", "+09:30"))
            moment = f"{day.isoformat()}T{rng.randint(0, 23):02d}:15:00{zone}"
            front["release"] = datetime.fromisoformat(moment)
            change = f"release = {moment}"
        if rng.random() < 0.3:
            front["date_checked"] = True
    elif what == "runtime":
        if "runtime" in front and rng.random() < 0.3:
            del front["runtime"]
            change = "runtime removed"
        else:
            front["runtime"] = rng.randint(1, 600)
            change = f"runtime = {front['runtime']}"
    elif what == "status":
        front["status"] = "scheduled" if front.get("status") == "cancelled" else "cancelled"
        change = f"status = {front['status']}"
    elif what == "image":
        if "image" in front:
            front.pop("image")
            front.pop("image_alt", None)
            change = "image removed"
        else:
            front["image"] = f"https://example.org/stills/{rng.choice(WORDS)}.jpg"
            if rng.random() < 0.5:
                front["image_alt"] = words(rng)
            change = f"image = {front['image']}"
    elif what == "updated":
        day = state.as_of + timedelta(days=rng.randint(-5, 5))
        front["updated"] = day
        change = f"updated = {day}"
    elif what == "date_checked":
        front["date_checked"] = not front.get("date_checked", False)
        change = f"date_checked = {front['date_checked']}"
    else:
        invalid = True
        change, text = invalid_episode(rng, front, synopsis)
        return f"{rel(state, path)}: INVALID {change}" + write(state, path, text, invalid=True)
    text = episode_file(front, synopsis)
    return f"{rel(state, path)}: {change}" + write(state, path, text, invalid=invalid)


def invalid_episode(rng: Random, front: dict[str, Any], synopsis: str) -> tuple[str, str]:
    kind = rng.randrange(9)
    front = dict(front)
    if kind == 0:
        front["runtime"] = rng.choice((0, 601))
        return f"runtime = {front['runtime']}", episode_file(front, synopsis)
    if kind == 1:
        front["status"] = "paused"
        return "status = paused", episode_file(front, synopsis)
    if kind == 2:
        front["titel"] = "typo"
        return "unknown key titel", episode_file(front, synopsis)
    if kind == 3:
        text = episode_file(front, synopsis).replace("+++\n\n", "\n", 1)
        return "no closing +++", text
    if kind == 4:
        text = episode_file(front, synopsis).replace("+++\n", "+++\nrelease = 2024-02-30\n", 1)
        return "release = 2024-02-30", text
    if kind == 5:
        front["image"] = "stills/relative.jpg"
        return "relative image URL", episode_file(front, synopsis)
    if kind == 6:
        front["title"] = "Right\u202eto left"
        return "bidi override in the title", episode_file(front, synopsis)
    if kind == 7:
        front["number"] = front.get("number", 1) + 50
        return "number does not match the file name", episode_file(front, synopsis)
    front["title"] = "x" * 201
    return "title of 201 characters", episode_file(front, synopsis)


def edit_season(state: State) -> str:
    rng = state.rng
    files = healthy(state, [s / "season.toml" for s in seasons(state)])
    parsed = [(p, parse_toml(p.read_text(encoding="utf-8"))) for p in files if p.exists()]
    choices = [(p, found) for p, found in parsed if found is not None]
    if not choices:
        return edit_episode(state)
    path, meta = rng.choice(choices)
    what = rng.choice(
        ["premiere"] * 3
        + ["cadence"] * 2
        + ["release_time"] * 3
        + ["title", "description"]
        + ["invalid"] * 2
    )
    if what == "premiere":
        old = meta.get("premiere")
        day = old if isinstance(old, date) else state.as_of
        meta["premiere"] = day + timedelta(days=rng.choice((-7, -3, -1, 1, 2, 7, 14)))
        change = f"premiere = {meta['premiere']}"
    elif what == "cadence":
        meta["cadence"] = rng.choice(CADENCES)
        change = f"cadence = {meta['cadence']}"
    elif what == "release_time":
        if "release_time" in meta and rng.random() < 0.3:
            del meta["release_time"]
            change = "release_time removed"
        elif rng.random() < 0.2:
            meta["release_time"] = f"{rng.randint(0, 23):02d}:{rng.choice((0, 45)):02d}"
            change = f"release_time = {meta['release_time']!r} (quoted)"
        else:
            meta["release_time"] = time(rng.randint(0, 23), rng.choice((0, 15, 30)))
            change = f"release_time = {meta['release_time']}"
    elif what == "title":
        meta["title"] = title(rng)
        change = f"title = {meta['title']!r}"
    elif what == "description":
        if "description" in meta and rng.random() < 0.3:
            del meta["description"]
            change = "description removed"
        else:
            meta["description"] = markdown(rng)
            change = "description = ..."
    else:
        kind = rng.randrange(4)
        if kind == 0:
            meta["cadence"] = "monthly"
            change = "cadence = monthly"
        elif kind == 1:
            meta["number"] = meta.get("number", 1) + 40
            change = "number does not match the folder"
        elif kind == 2:
            meta["release_time"] = "25:00"
            change = "release_time = '25:00'"
        else:
            meta["premiere"] = "soon"
            change = "premiere = 'soon'"
        return f"{rel(state, path)}: INVALID {change}" + write(
            state, path, dump_toml(meta), invalid=True
        )
    return f"{rel(state, path)}: {change}" + write(state, path, dump_toml(meta))


def edit_show(state: State) -> str:
    rng = state.rng
    path = state.content / "show.toml"
    show = parse_toml(path.read_text(encoding="utf-8")) if path not in state.broken else None
    if show is None:
        return edit_episode(state)
    what = rng.choice(
        ["title", "description", "timezone", "timezone", "language", "language", "base_url"]
        + ["newsletter", "newsletter", "calendar", "feed", "author", "service"]
        + ["invalid"] * 2
    )
    if what == "title":
        show["title"] = title(rng)
        change = f"title = {show['title']!r}"
    elif what == "description":
        show["description"] = markdown(rng)
        change = "description = ..."
    elif what == "timezone":
        show["timezone"] = rng.choice(ZONES)
        change = f"timezone = {show['timezone']}"
    elif what == "language":
        show["language"] = rng.choice(LANGUAGES)
        change = f"language = {show['language']}"
    elif what == "base_url":
        show["base_url"] = rng.choice(BASE_URLS)
        change = f"base_url = {show['base_url']}"
    elif what == "newsletter":
        letter = show.get("newsletter")
        if letter is None:
            show["newsletter"] = dict(NEWSLETTER)
            change = "newsletter added"
        elif rng.random() < 0.08:
            del show["newsletter"]
            change = "newsletter removed"
        else:
            key = rng.choice(
                ("sender_name", "reply_to", "unsubscribe_mailto", "signup_url", "service_url")
            )
            if key in letter and key != "sender_name" and rng.random() < 0.4:
                del letter[key]
                change = f"newsletter.{key} removed"
            else:
                letter[key] = {
                    "sender_name": f"{words(rng).title()} weekly",
                    "reply_to": f"{rng.choice(WORDS)}@example.net",
                    "unsubscribe_mailto": "unsubscribe@example.net",
                    "signup_url": f"https://example.net/{rng.choice(WORDS)}",
                    "service_url": "https://example.net/subscriptions",
                }[key]
                change = f"newsletter.{key} = {letter[key]!r}"
    elif what == "calendar":
        calendar = show.setdefault("calendar", {})
        if rng.random() < 0.5:
            calendar["all_day"] = not calendar.get("all_day", False)
            change = f"calendar.all_day = {calendar['all_day']}"
        else:
            calendar["reminder"] = rng.choice((0, 15, 60, 1440))
            change = f"calendar.reminder = {calendar['reminder']}"
    elif what == "feed":
        if rng.random() < 0.6:
            show["feed_entries"] = rng.randint(1, 6)
            change = f"feed_entries = {show['feed_entries']}"
        else:
            show["feed_stylesheet"] = not show.get("feed_stylesheet", False)
            change = f"feed_stylesheet = {show['feed_stylesheet']}"
    elif what == "author":
        author = show.setdefault("author", {"name": "Tester"})
        key = rng.choice(("name", "email", "uri"))
        author[key] = {
            "name": words(rng).title(),
            "email": "editor@example.net",
            "uri": f"https://example.net/{rng.choice(WORDS)}",
        }[key]
        change = f"author.{key} = {author[key]!r}"
    elif what == "service":
        if rng.random() < 0.5:
            show["service"] = rng.choice(("Example+", "Streamer", "Télé 5"))
            change = f"service = {show['service']!r}"
        else:
            show["homepage"] = f"https://example.tv/{rng.choice(WORDS)}"
            change = f"homepage = {show['homepage']}"
    else:
        kind = rng.randrange(6)
        if kind == 0:
            show["timezone"] = "Mars/Olympus_Mons"
            change = "timezone = Mars/Olympus_Mons"
        elif kind == 1:
            show["language"] = "es"
            change = "language = es (no catalogue)"
        elif kind == 2:
            show["base_url"] = "shows/diff/"
            change = "base_url relative"
        elif kind == 3:
            show["feed_entries"] = 0
            change = "feed_entries = 0"
        elif kind == 4:
            show.setdefault("newsletter", dict(NEWSLETTER))["sender_address"] = "not-an-address"
            change = "newsletter.sender_address = not-an-address"
        else:
            text = dump_toml(show).replace('title = "', 'title = "unterminated\n', 1)
            return "content/show.toml: INVALID TOML syntax" + write(state, path, text, True)
        return f"content/show.toml: INVALID {change}" + write(
            state, path, dump_toml(show), invalid=True
        )
    return f"content/show.toml: {change}" + write(state, path, dump_toml(show))


def edit_note(state: State) -> str:
    """An editor's note (content/season-NN/newsletter/YYYY-MM-DD.md): added on an issue
    day or a stray day, edited, or removed."""
    rng = state.rng
    notes = healthy(state, sorted(state.content.glob("season-*/newsletter/*.md")))
    if notes and rng.random() < 0.5:
        path = rng.choice(notes)
        if rng.random() < 0.4:
            path.unlink()
            return f"{rel(state, path)}: note removed"
        return f"{rel(state, path)}: note edited" + write(state, path, markdown(rng) + "\n")
    folders = seasons(state)
    if not folders:
        return edit_as_of(state)
    days = state.hooks.key_days() or [state.as_of]
    day = rng.choice(days) if rng.random() < 0.8 else state.as_of + timedelta(days=3)
    path = rng.choice(folders) / "newsletter" / f"{day.isoformat()}.md"
    return f"{rel(state, path)}: note written" + write(state, path, markdown(rng) + "\n")


# Files and folders ---------------------------------------------------------------------------


MAX_EPISODES = 24
MAX_SEASONS = 5
"""Structure edits stop adding beyond these (a long run keeps the project small)."""


def edit_structure(state: State) -> str:
    rng = state.rng
    if state.broken:
        return fix(state)
    folders = seasons(state)
    what = rng.choice(
        ["add episode"] * 3
        + ["remove episode"] * 2
        + ["rename episode"] * 2
        + ["add season", "remove season", "rename season", "duplicate number", "gap"]
    )
    count = sum(len(episodes(f)) for f in folders)
    if count > MAX_EPISODES and what.startswith("add"):
        what = "remove episode" if rng.random() < 0.7 else "remove season"
    if len(folders) >= MAX_SEASONS and what == "add season":
        what = "remove season"
    if what == "add episode" or not folders:
        if not folders:
            what = "add season"
        else:
            folder = rng.choice(folders)
            number = len(episodes(folder)) + 1
            path = write_episode(folder, number, rng)
            return f"{rel(state, path)}: episode added"
    if what == "remove episode":
        folder = rng.choice(folders)
        files = episodes(folder)
        if len(files) > 1:
            files[-1].unlink()
            return f"{rel(state, files[-1])}: last episode removed"
        what = "add season"
    if what == "gap":  # a missing episode number: an error until fixed
        folder = rng.choice(folders)
        files = episodes(folder)
        if len(files) >= 3:
            victim = files[1]
            state.broken[victim] = victim.read_bytes()
            victim.unlink()
            return f"{rel(state, victim)}: INVALID a middle episode removed (a gap)"
        what = "rename episode"
    if what == "duplicate number":
        folder = rng.choice(folders)
        files = episodes(folder)
        if files:
            source = files[0]
            copy = folder / f"{source.name[:2]}-duplicate.md"
            state.broken[copy] = None
            shutil.copy(source, copy)
            return f"{rel(state, copy)}: INVALID a second episode {source.name[:2]}"
        what = "rename episode"
    if what == "rename episode":
        folder = rng.choice(folders)
        files = episodes(folder)
        if files:
            path = rng.choice(files)
            target = path.with_name(f"{path.name[:2]}-{rng.choice(WORDS)}-{state.next_mark()}.md")
            path.rename(target)
            return f"{rel(state, path)} renamed to {target.name}"
        what = "add season"
    if what == "remove season" and len(folders) > 1:
        victim = folders[-1] if rng.random() < 0.7 else rng.choice(folders)
        if victim.is_symlink():
            victim.unlink()  # its target stays in content/shared/, unread
            return f"{rel(state, victim)}: linked season folder removed"
        shutil.rmtree(victim)
        return f"{rel(state, victim)}: season folder removed"
    if what == "rename season" and folders:
        folder = rng.choice(folders)
        numbers = {int(f.name.split("-")[1]) for f in folders}
        number = max(numbers) + rng.randint(1, 3)
        target = folder.with_name(f"season-{number:02d}")
        meta_path = folder / "season.toml"
        meta = parse_toml(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else None
        folder.rename(target)
        if meta is not None and rng.random() < 0.85:
            meta["number"] = number
            (target / "season.toml").write_text(dump_toml(meta), encoding="utf-8")
            return f"{rel(state, folder)} renamed to {target.name} (number updated)"
        state.broken[target / "season.toml"] = (
            None if meta is None else dump_toml({**meta, "number": number}).encode()
        )
        return f"{rel(state, folder)}: INVALID renamed to {target.name}, number kept"
    # add a season after the last
    taken = [int(f.name.split("-")[1]) for f in folders] or [0]
    number = max(taken) + 1
    premiere = state.as_of + timedelta(days=rng.randint(-20, 30))
    write_season(state.content, number, premiere, rng.choice(CADENCES), rng.randint(1, 4), rng)
    return f"content/season-{number:02d}: season added, premiere {premiere}"


def edit_links(state: State) -> str:
    """Symbolic links inside content/ (allowed: they stay inside): an episode file or a
    whole season folder moved to content/shared/ and linked from where it was, a link
    pointed at another file (a copy with another title), a link replaced by its target."""
    rng = state.rng
    if state.broken:
        return fix(state)
    shared = state.content / "shared"
    folders = seasons(state)
    files = [e for f in folders for e in episodes(f)]
    links = sorted(p for p in [*folders, *files] if p.is_symlink())
    what = rng.choice(("episode", "episode", "season", "retarget", "retarget", "unlink"))
    mark = state.next_mark()
    if what == "retarget":
        linked = [p for p in links if p.is_file()]
        if linked:
            link = rng.choice(linked)
            found = parse_episode(link.read_text(encoding="utf-8"))
            if found is not None:
                front, synopsis = found
                front["title"] = title(rng)
                target = shared / f"{mark}.md"
                target.write_text(episode_file(front, synopsis), encoding="utf-8")
                temporary = link.with_name(f".{link.name}.{mark}")
                temporary.symlink_to(os.path.relpath(target, link.parent))
                temporary.replace(link)
                return f"{rel(state, link)}: link pointed at shared/{target.name}"
        what = "episode"
    if what == "unlink" and links:
        link = rng.choice(links)
        target = link.resolve()
        link.unlink()
        if target.is_dir():
            shutil.copytree(target, link)
        else:
            shutil.copy(target, link)
        return f"{rel(state, link)}: link replaced by a copy of its target"
    if what == "season":
        # a folder holding relative links would leave them dangling once moved
        plain = [
            f
            for f in folders
            if not f.is_symlink() and not any(e.is_symlink() for e in episodes(f))
        ]
        if plain:
            folder = rng.choice(plain)
            target = shared / f"{folder.name}-{mark}"
            shared.mkdir(exist_ok=True)
            shutil.move(str(folder), str(target))
            folder.symlink_to(os.path.relpath(target, folder.parent), target_is_directory=True)
            return f"{rel(state, folder)}: moved to shared/{target.name} and linked"
    plain_files = [p for p in files if not p.is_symlink() and not p.parent.is_symlink()]
    if not plain_files:
        return nothing(state)
    path = rng.choice(plain_files)
    shared.mkdir(exist_ok=True)
    target = shared / f"{mark}.md"
    shutil.move(str(path), str(target))
    path.symlink_to(os.path.relpath(target, path.parent))
    return f"{rel(state, path)}: moved to shared/{target.name} and linked"


def fix(state: State) -> str:
    """Put back one file an invalid edit changed."""
    path = state.rng.choice(sorted(state.broken))
    old = state.broken.pop(path)
    if old is None:
        path.unlink(missing_ok=True)
        return f"{rel(state, path)}: FIX removed"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(old)
    return f"{rel(state, path)}: FIX put back"


# Templates -----------------------------------------------------------------------------------

ANCHORS = ("</h1>", "</caption>", "</td>", "</p>", "</a>", "</body>")


def marked(shipped: str, name: str, mark: str) -> str:
    """A shipped template with a visible change."""
    if name.endswith(".css"):
        return shipped + f"\n.headline, h1 {{ letter-spacing: {len(mark)}px; }} /* {mark} */\n"
    if name.endswith(".txt.j2"):
        return f"{mark}\n" + shipped
    for anchor in ANCHORS:
        if anchor in shipped:
            return shipped.replace(anchor, f" <small>{mark}</small>{anchor}", 1)
    return shipped + f"{{# {mark} #}}\n"


INCLUDE = '{% include "partials/extra.html" %}'


def ensure_include(folder: Path, shipped: Path) -> str:
    """Make the project's episode page include partials/extra.html (so that the partials,
    linked or not, reach the output); returns a note for the log."""
    path = folder / "episode.html.j2"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if INCLUDE in text:
        return ""
    text = (shipped / "episode.html.j2").read_text(encoding="utf-8")
    path.write_text(text.replace("</h1>", "</h1>\n" + INCLUDE, 1), encoding="utf-8")
    return "; templates/episode.html.j2 includes it"


def template_folder(state: State) -> Path:
    """The project's templates/ (created if missing; its real folder if it is a link)."""
    templates = state.templates
    if not templates.exists():
        templates.mkdir()
    return templates.resolve()


def edit_template(state: State, shipped: Path) -> str:
    rng = state.rng
    folder = template_folder(state)
    overrides = sorted(p for p in folder.iterdir() if p.is_file() and p.name in SHIPPED_TEMPLATES)
    what = rng.choice(
        [
            *("add", "add", "edit", "edit", "remove", "include", "partial", "link folder"),
            *("link subfolder", "edit target", "edit target", "unlink", "invalid", "invalid"),
        ]
    )
    if state.broken and what in ("link folder", "link subfolder", "unlink"):
        return fix(state)  # the files an invalid edit changed stay where they are
    mark = state.next_mark()
    if what == "edit" and overrides:
        path = rng.choice(overrides)
        text = marked((shipped / path.name).read_text(encoding="utf-8"), path.name, mark)
        return f"templates/{path.name}: edited ({mark})" + write(state, path, text)
    if what == "remove" and overrides:
        path = rng.choice(overrides)
        path.unlink()
        return f"templates/{path.name}: override removed"
    if what == "include":
        partial = folder / "partials" / "extra.html"
        if not partial.exists():
            partial.parent.mkdir(exist_ok=True)
            partial.write_text(f"<p>Partial {mark}</p>\n", encoding="utf-8")
        path = folder / "episode.html.j2"
        text = (shipped / "episode.html.j2").read_text(encoding="utf-8")
        text = text.replace("</h1>", f"</h1>\n<!-- {mark} -->{INCLUDE}", 1)
        return "templates/episode.html.j2: includes partials/extra.html" + write(state, path, text)
    if what in ("partial", "edit target"):
        partials = sorted(p for p in (folder / "partials").glob("*") if p.is_file())
        if partials:
            path = rng.choice(partials)
            where = "linked target" if (state.templates / "partials").is_symlink() else "partial"
            if state.templates.is_symlink():
                where = "linked templates folder"
            text = f"<p>Partial {mark}</p>\n"
            note = ensure_include(folder, shipped)
            return f"{rel(state, path)} ({where}): {mark}{note}" + write(state, path, text)
        if overrides and what == "edit target":
            path = rng.choice(overrides)
            text = marked((shipped / path.name).read_text(encoding="utf-8"), path.name, mark)
            return f"{rel(state, path)}: edited ({mark})" + write(state, path, text)
        what = "add"
    if what == "link folder" and not state.templates.is_symlink():
        target = state.elsewhere / f"theme-{mark}"
        shutil.move(str(folder), str(target))
        state.templates.symlink_to(target, target_is_directory=True)
        return f"templates/ moved to {target.name} and linked to it"
    if what == "link subfolder":
        subfolder = folder / "partials"
        if not subfolder.is_symlink():
            target = state.elsewhere / f"partials-{mark}"
            if subfolder.exists():
                shutil.move(str(subfolder), str(target))
            else:
                target.mkdir(parents=True)
                (target / "extra.html").write_text(f"<p>Linked {mark}</p>\n", encoding="utf-8")
            subfolder.symlink_to(target, target_is_directory=True)
            note = ensure_include(folder, shipped)
            return f"templates/partials linked to {target.name}{note}"
    if what == "unlink":
        for link in (state.templates / "partials", state.templates):
            if link.is_symlink():
                target = link.resolve()
                link.unlink()
                shutil.copytree(target, link)
                return f"{rel(state, link)}: link replaced by a copy of its target"
    if what == "invalid":
        name = rng.choice(("episode.html.j2", "newsletter.html.j2", "index.html.j2"))
        path = folder / name
        text = (shipped / name).read_text(encoding="utf-8") + "\n{% if %}\n"
        return f"templates/{name}: INVALID Jinja syntax" + write(state, path, text, invalid=True)
    name = rng.choice(SHIPPED_TEMPLATES)
    path = folder / name
    text = marked((shipped / name).read_text(encoding="utf-8"), name, mark)
    return f"templates/{name}: override added ({mark})" + write(state, path, text)


# Message catalogues --------------------------------------------------------------------------


def show_language(state: State) -> str:
    path = state.content / "show.toml"
    found = parse_toml(path.read_text(encoding="utf-8")) if path.exists() else None
    language = (found or {}).get("language", "en")
    return language if isinstance(language, str) else "en"


COMMON_MESSAGES = (
    "Released",
    "Upcoming",
    "Next",
    "Cancelled",
    "Add to calendar",
    "Episode %(number)d of %(total)d",
    "Hi %(name)s,",
)
"""Messages most outputs show (a random one of the 187 is often only the service's)."""


def edit_catalogue(state: State, shipped_locale: Path) -> str:
    """The project's own locale/<lang>/LC_MESSAGES/famfeeds.po: a few of the shipped
    messages with other wording (placeholders kept), an edit of one msgstr, a removal, or
    an invalid one."""
    import io

    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    rng = state.rng
    tag = show_language(state)
    language = tag.split("-")[0]
    if language not in ("en", "de", "fr"):
        language = "en"
    name = tag.replace("-", "_") if "-" in tag and rng.random() < 0.4 else language
    if rng.random() < 0.1:  # another language than the show's: changes nothing
        name = rng.choice([x for x in ("en", "de", "fr") if x != language])
    path = state.root / "locale" / name / "LC_MESSAGES" / "famfeeds.po"
    existing = sorted((state.root / "locale").glob("*/LC_MESSAGES/famfeeds.po"))
    roll = rng.random()
    if existing and roll < 0.12:
        victim = rng.choice(existing)
        victim.unlink()
        return f"{rel(state, victim)}: removed"
    mark = state.next_mark()
    if roll < 0.22:
        bad = rng.choice(
            (
                '#, python-format\nmsgid "Hi %(name)s,"\nmsgstr "Hi,"\n',
                '#, python-format\nmsgid "Hi %(name)s,"\nmsgstr "Hi%(name)s,"\n',
                'msgid "Released"\nmsgstr "unterminated\n',
                '#, python-format\nmsgid "Episode %(number)d of %(total)d"\n'
                'msgstr "Part %(nummer)d"\n',
            )
        )
        header = (
            f'msgid ""\nmsgstr ""\n"Language: {name}\\n"\n'
            '"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        )
        return f"{rel(state, path)}: INVALID (or odd) catalogue" + write(
            state, path, header + bad, invalid=True
        )
    source = shipped_locale / language / "LC_MESSAGES" / "famfeeds.po"
    shipped = read_po(io.BytesIO(source.read_bytes()), locale=language)
    messages = [m for m in shipped if m.id and m.string]
    if path.exists() and path not in state.broken and roll < 0.6:
        try:
            catalog = read_po(io.BytesIO(path.read_bytes()), locale=name)
        except Exception:
            catalog = Catalog(locale=name)
    else:
        catalog = Catalog(locale=name)
    common = [m for m in messages if m.id in COMMON_MESSAGES]
    chosen = rng.sample(messages, rng.randint(1, 6)) + rng.sample(common, rng.randint(0, 2))
    for message in chosen:
        string = message.string
        if isinstance(string, str):
            changed: str | tuple[str, ...] = f"{string} [{mark}]"
        else:
            changed = tuple(f"{s} [{mark}]" for s in string or ())
        catalog.add(message.id, changed, flags=message.flags)
    out = io.BytesIO()
    write_po(out, catalog, omit_header=False)
    return f"{rel(state, path)}: {len(catalog)} messages ({mark})" + write(
        state, path, out.getvalue()
    )


# Zone rules, code, libraries -----------------------------------------------------------------


def edit_zone_rules(state: State) -> str:
    rng = state.rng
    zone = (parse_toml((state.content / "show.toml").read_text(encoding="utf-8")) or {}).get(
        "timezone"
    )
    if not isinstance(zone, str) or zone not in ZONES:
        zone = rng.choice(ZONES)
    donor = None if zone in state.zones and rng.random() < 0.4 else rng.choice(DONOR_ZONES)
    return state.hooks.zone_rules(zone, donor)


def edit_code(state: State) -> str:
    rng = state.rng
    if rng.random() < 0.5:
        state.code = None if state.code and rng.random() < 0.3 else state.next_mark()
        state.hooks.code_digest(state.code)
        return f"famfeeds' code digest: {state.code or 'the real one again'}"
    state.libraries = None if state.libraries and rng.random() < 0.3 else state.next_mark()
    state.hooks.library_versions(state.libraries)
    return f"library versions: {state.libraries or 'the real ones again'}"


# The reference date --------------------------------------------------------------------------


def edit_as_of(state: State) -> str:
    rng = state.rng
    roll = rng.random()
    days = state.hooks.key_days() if roll < 0.6 else []
    if days:
        day = rng.choice(days) + timedelta(days=rng.choice((-1, 0, 0, 1)))
        state.as_of = day
        return f"--as-of {day} (at a release or issue day)"
    state.as_of += timedelta(days=rng.choice((-30, -9, -3, -1, 1, 1, 2, 5, 8, 21)))
    return f"--as-of {state.as_of}"


# The output ----------------------------------------------------------------------------------

MANIFEST = ".famfeeds-manifest"


def built_files(state: State) -> list[Path]:
    if not state.output.is_dir():
        return []
    return sorted(
        p
        for p in state.output.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.name != MANIFEST
        and p.relative_to(state.output).as_posix() not in state.own_files
    )


def edit_output(state: State) -> str:
    """A built file deleted, edited by hand, replaced by a rename (as editors save); a file
    of the user's own added or removed. The manifest is left alone (without it famfeeds
    cannot tell its files from the user's, and refuses to overwrite them, by design)."""
    rng = state.rng
    files = built_files(state)
    what = rng.choice(["delete", "delete", "rename", "rename", "in place", "own", "own gone"])
    if what == "own gone" and state.own_files:
        name = rng.choice(sorted(state.own_files))
        (state.output / name).unlink()
        del state.own_files[name]
        return f"{state.output_name}/{name}: own file removed"
    if what in ("own", "own gone") or not files:
        if not state.output.is_dir():
            return edit_as_of(state)
        name = rng.choice(("CNAME", "images/logo.png", f"extra/{state.next_mark()}.txt"))
        data = f"own {state.next_mark()}\n".encode()
        (state.output / name).parent.mkdir(parents=True, exist_ok=True)
        (state.output / name).write_bytes(data)
        state.own_files[name] = data
        return f"{state.output_name}/{name}: own file added"
    path = rng.choice(files)
    name = path.relative_to(state.output).as_posix()
    if what == "delete":
        path.unlink()
        return f"{state.output_name}/{name}: deleted"
    data = path.read_bytes()
    changed = data.replace(b"e", b"E", 1) if b"e" in data else data + b"\n"
    info = path.stat()
    if what == "in place" and not state.in_place:
        # Same inode, same modification time. The swap compares bytes and rewrites it;
        # the in-place writer documents that it keeps such a file until its content
        # changes, so it is not done there.
        with path.open("r+b") as handle:
            handle.write(changed)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        return f"{state.output_name}/{name}: edited in place by hand (mtime kept)"
    temporary = path.with_name(path.name + ".tmp-edit")
    temporary.write_bytes(changed)
    os.utime(temporary, ns=(info.st_atime_ns, info.st_mtime_ns))
    temporary.replace(path)
    return f"{state.output_name}/{name}: replaced by hand with a rename (mtime kept)"


# The caches ----------------------------------------------------------------------------------


def damage(state: State, path: Path, code_cache: bool) -> str:
    """Truncate, zero, flip bytes in or delete ``path``. Compiled templates (``code_cache``)
    are marshalled Python code: flipping a byte of the code itself can crash the
    interpreter rather than give an error, so their flips stay in the header (magic and
    source checksum)."""
    rng = state.rng
    data = path.read_bytes()
    how = rng.choice(("truncate", "zero", "flip", "flip", "delete", "garbage"))
    if how == "delete":
        path.unlink()
        return "deleted"
    if how == "truncate":
        new = data[: rng.randrange(len(data))] if data else b""
    elif how == "zero":
        new = bytes(len(data))
    elif how == "garbage":
        new = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        buffer = bytearray(data)
        limit = min(len(buffer), 40) if code_cache else len(buffer)
        for _ in range(rng.randint(1, 3)):
            if limit:
                position = rng.randrange(limit)
                buffer[position] ^= 1 << rng.randrange(8)
        new = bytes(buffer)
    info = path.stat()
    path.write_bytes(new)
    if rng.random() < 0.3:
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return how


def edit_cache(state: State, user_cache: Path) -> str:
    rng = state.rng
    project = sorted(p for p in (state.root / ".famfeeds-cache").rglob("*") if p.is_file())
    user = sorted(p for p in user_cache.rglob("*") if p.is_file()) if user_cache.exists() else []
    done = []
    for _ in range(rng.randint(1, 3)):
        pool = user if (user and rng.random() < 0.25) or not project else project
        if not pool:
            break
        path = rng.choice(pool)
        pool.remove(path)
        in_user = pool is user
        how = damage(state, path, code_cache=in_user)
        if in_user:
            where = "user cache " + path.relative_to(user_cache).as_posix()
            state.damaged.add("templates")
        else:
            where = rel(state, path)
            part = path.relative_to(state.root / ".famfeeds-cache").parts[0]
            state.damaged.add(part.split("-")[0].split(".")[0])
        done.append(f"{where}: {how}")
    return "cache damaged: " + ("; ".join(done) or "nothing to damage")


# The lock ------------------------------------------------------------------------------------


def edit_lock(state: State) -> str:
    """famfeeds.lock deleted, put back as an earlier build left it (git checkout), or a
    SEQUENCE raised by hand."""
    rng = state.rng
    lock = state.root / "famfeeds.lock"
    roll = rng.random()
    if roll < 0.3 and lock.exists():
        lock.unlink()
        return "famfeeds.lock deleted"
    if roll < 0.7 and state.locks:
        back = rng.randrange(len(state.locks))
        return f"famfeeds.lock put back as it was {len(state.locks) - back} builds ago" + write(
            state, lock, state.locks[back]
        )
    if lock.exists():
        text = lock.read_text(encoding="utf-8")
        found = re.findall(r"sequence = (\d+)", text)
        if found:
            changed = re.sub(
                r"sequence = (\d+)", lambda m: f"sequence = {int(m.group(1)) + 3}", text, count=1
            )
            return "famfeeds.lock: a SEQUENCE raised by hand" + write(state, lock, changed)
    return edit_as_of(state)


def edit_options(state: State) -> str:
    """The build's options: another output folder (``--output public``: each output folder
    has its own index and manifest; the other one is left as it was), a staging address
    (``--base-url``: each address has its own render memo), ``--strict``."""
    rng = state.rng
    what = rng.choice(("output", "output", "linked output", "base url", "base url", "strict"))
    link = state.root / "site"
    if what == "linked output" and link.is_symlink() and state.output_name == "site":
        # The link pointed at a copy of its target (same names, bytes and times; other
        # inodes), as a deploy script might leave it.
        old = link.resolve()
        new = state.elsewhere / f"site-{state.next_mark()}"
        shutil.copytree(old, new, symlinks=True)
        temporary = state.root / ".site-link"
        temporary.symlink_to(new, target_is_directory=True)
        temporary.replace(link)
        return f"--output site: the link now points at a copy, {new.name}"
    if what == "linked output":
        if not link.is_symlink():
            target = state.elsewhere / "site-first"
            target.mkdir()
            link.symlink_to(target, target_is_directory=True)
        state.output_name = "site"
        return "--output site (a link to a folder elsewhere)"
    if what == "output":
        state.output_name = rng.choice([n for n in ("output", "public") if n != state.output_name])
        return f"--output {state.output_name}"
    if what == "base url":
        choices = (None, None, "https://staging.example.org/preview/", "http://127.0.0.1:8000/")
        state.base_url = rng.choice([c for c in choices if c != state.base_url])
        return f"--base-url {state.base_url}" if state.base_url else "no --base-url"
    state.strict = not state.strict
    return "--strict" if state.strict else "no --strict"


def nothing(state: State) -> str:
    """No change at all, or only a file touched (its times move, its bytes stay)."""
    rng = state.rng
    if rng.random() < 0.5:
        return "nothing changed"
    files = sorted(p for p in state.content.rglob("*") if p.is_file())
    if not files:
        return "nothing changed"
    path = rng.choice(files)
    path.touch()
    return f"{rel(state, path)}: touched"
