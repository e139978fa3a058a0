"""Load content/: read every file, validate every record, report every problem at once.

Rules beyond the records' own types (see famfeeds.records.models):

- Every file is UTF-8, at most ``[limits] file_bytes`` long, and lies inside content/: a
  symbolic link that leads outside it is refused with its path.
- No file holds a control character, a C1 control or a noncharacter; no Markdown text holds a
  numeric character reference to one (``&#0;``, ``&#xD800;``): they would reach readers as
  U+FFFD or break XML.
- Markdown texts (synopses, descriptions, notes) hold no bidi embedding or override
  (U+202A-U+202E), tag character (U+E0000-U+E007F), interlinear annotation (U+FFF9-U+FFFB)
  or deprecated format character (U+206A-U+206F):
  these show text in an order other than it is stored, or hide it. The isolates and marks
  that mixed-direction prose needs (U+2066-U+2069, U+200E, U+200F, U+061C), joiners and soft
  hyphens stay. Titles and other one-line fields refuse every invisible format character but
  the joiners (see models.Line).
- Titles are at most ``[limits] title_characters`` long, Markdown texts at most
  ``[limits] synopsis_characters``.
- A synopsis that is empty once unsafe HTML is removed is a warning naming what went.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from famfeeds.errors import ContentError, Problem, display_path
from famfeeds.records.models import (
    Catalogue,
    Episode,
    EpisodeMeta,
    Limits,
    Season,
    SeasonMeta,
    Show,
    season_digest,
)
from famfeeds.records.richtext import NOT_CHARACTERS, bad_references
from famfeeds.records.tomlerrors import VALUE_MESSAGES, Explained, table_at
from famfeeds.records.tomlerrors import explain as explain_toml

if TYPE_CHECKING:
    from collections.abc import Callable

SEASON_DIR = re.compile(r"^season-(\d+)$")
EPISODE_FILE = re.compile(r"^(\d+)-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
# Characters XML 1.0 cannot carry, controls and noncharacters: no title or synopsis needs one.
CONTROL_CHARS = NOT_CHARACTERS
# Format characters that reorder or hide text, refused in Markdown texts (see the docstring).
HIDING_CHARS = re.compile("[\u202a-\u202e\U000e0000-\U000e007f\ufff9-\ufffb\u206a-\u206f]")
# The byte limit of show.toml itself, read before its [limits] are known.
SHOW_FILE_BYTES = 1_000_000
TOML_ERROR_POSITION = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")
FRONT_MATTER_FENCE = "+++"
SHOWN_CONTROLS = 3
"""How many control characters of one file are listed one by one."""
SHOWN_VALUE = 80
"""How many characters of a refused value a message quotes."""
NOTES_DIR = "newsletter"

M = TypeVar("M", bound=BaseModel)


class SeasonReader(Protocol):
    """Reads season folders for a loader, through a cache of earlier loads."""

    digests: dict[int, str]
    """The digest of each season read, by number (famfeeds.records.models.season_digest)."""

    def read(self, name: str, load: Callable[[Path], Season | None]) -> Season | None:
        """Season folder ``name``: ``load(root / name)``, or what it gave before."""
        ...


@dataclass
class Loader:
    """Collects problems while reading; raises them together at the end."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    base_url: str = ""
    shown_root: str = field(init=False, default="")
    real_root: Path = field(init=False, default=Path())
    reader: Callable[[Loader], SeasonReader] | None = None
    """What reads season folders through a parse cache (the build's), given this loader;
    None: every folder is read."""

    def __post_init__(self) -> None:
        self.shown_root = display_path(self.root)
        self.real_root = self.root.resolve()

    def shown(self, path: Path) -> str:
        """``path`` as the user would type it; resolving the root once keeps this cheap."""
        try:
            inner = path.relative_to(self.root).as_posix()
        except ValueError:
            return display_path(path)
        return self.shown_root if inner == "." else f"{self.shown_root}/{inner}"

    def problem(
        self,
        path: Path,
        record: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str = "",
    ) -> None:
        """Record one problem."""
        self.problems.append(Problem(self.shown(path), line, record, field, message, hint))

    def named_controls(self, path: Path) -> bool:
        """Whether a control character of ``path`` is among the problems already."""
        shown = self.shown(path)
        return any(p.file == shown and p.message.startswith(KINDS) for p in self.problems)

    def inside(self, path: Path, record: str) -> bool:
        """True when ``path`` resolves inside the content folder; else a problem naming where
        its link leads (nothing from outside content/ is ever published)."""
        target = path.resolve()
        if target == self.real_root or target.is_relative_to(self.real_root):
            return True
        self.problem(
            path,
            record,
            f"this is a link to {target}, outside the content folder",
            hint="famfeeds publishes only what is inside content/; copy the files in "
            "instead of linking to them",
        )
        return False

    def read_text(self, path: Path, record: str, limit: int | None = None) -> str | None:
        """Read a UTF-8 file inside content/ of at most ``limit`` bytes (default: the
        [limits] file_bytes), reporting unreadable files and forbidden characters."""
        if not self.inside(path, record):
            return None
        limit = self.limits.file_bytes if limit is None else limit
        try:
            size = path.stat().st_size
            if size > limit:
                self.problem(
                    path,
                    record,
                    f"the file is {size:,} bytes; the limit is {limit:,}",
                    hint="shorten it, or raise file_bytes in the [limits] table of show.toml",
                )
                return None
            data = path.read_bytes()
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            self.problem(
                path, record, "the file is not valid UTF-8", line=line, hint="save it as UTF-8"
            )
            return None
        except OSError as exc:
            self.problem(path, record, f"cannot read the file: {exc.strerror}")
            return None
        text = text.replace("\r\n", "\n")
        found = list(CONTROL_CHARS.finditer(text))
        for match in found[:SHOWN_CONTROLS]:
            line, column = _position(text, match.start())
            self.problem(
                path,
                record,
                f"{_kind(match.group())} U+{ord(match.group()):04X} at column {column}",
                line=line,
                hint="delete it; feeds, calendars and email cannot carry it",
            )
        if len(found) > SHOWN_CONTROLS:
            self.problem(
                path,
                record,
                f"{len(found) - SHOWN_CONTROLS:,} more control characters in the file",
                hint="is it saved as UTF-16 or as a binary file? save it as UTF-8 text",
            )
        return text

    def check_markdown(
        self, path: Path, record: str, field: str, value: str, text: str, start: int = 0
    ) -> None:
        """Check a Markdown text ``value`` that ``text`` (the file) holds from offset
        ``start``: its length, bad character references and characters that reorder or hide
        text."""
        if len(value) > self.limits.synopsis_characters:
            self.problem(
                path,
                record,
                f"{field} is {len(value):,} characters long; the limit is "
                f"{self.limits.synopsis_characters:,}",
                field=field,
                line=_position(text, start)[0],
                hint="shorten it, or raise synopsis_characters in the [limits] table of show.toml",
            )
        offset = max(text.find(value[:40], start), start) if value else start
        for at, reference in bad_references(value):
            line, column = _position(text, offset + at)
            self.problem(
                path,
                record,
                f"{reference} at column {column} is not a character feeds, calendars and email "
                "can carry (readers would see U+FFFD or nothing)",
                field=field,
                line=line,
                hint=f"delete it, or write &amp;{reference[1:]} to show it as written",
            )
        for match in HIDING_CHARS.finditer(value):
            line, column = _position(text, offset + match.start())
            char = match.group()
            self.problem(
                path,
                record,
                f"U+{ord(char):04X} {_char_name(char)} at column {column}: an invisible "
                "character that makes text display in another order than it is written, or "
                "hides it",
                field=field,
                line=line,
                hint="delete it; for a phrase in another direction use the isolates "
                "U+2066-U+2069 or the marks U+200E/U+200F",
            )

    def check_title(self, path: Path, record: str, title: str, line: int | None) -> None:
        """A title within ``[limits] title_characters``."""
        if len(title) > self.limits.title_characters:
            self.problem(
                path,
                record,
                f"the title is {len(title):,} characters long; the limit is "
                f"{self.limits.title_characters:,}",
                field="title",
                line=line,
                hint="shorten it, or raise title_characters in the [limits] table of show.toml",
            )

    def check_sanitised(
        self, path: Path, record: str, field: str, markdown: str, line: int | None
    ) -> None:
        """Warn when a Markdown text has text but none is left once unsafe HTML is removed,
        naming what was removed."""
        if not self.base_url or ("<" not in markdown and "](" not in markdown):
            return  # only raw HTML, or a link or image the sanitiser drops, can empty it
        from famfeeds.records.richtext import html_to_text, markdown_to_html, removed_markup

        html = markdown_to_html(markdown, self.base_url)
        if html_to_text(html) or "<img src=" in html:
            return
        removed = removed_markup(markdown, self.base_url)
        if not removed:  # nothing was taken out: the text is merely empty (">" or "---")
            return
        what = ", ".join(removed)
        where = "its feed entry, event and email" if field == "synopsis" else "the feeds"
        self.warnings.append(
            Problem(
                self.shown(path),
                line,
                record,
                field,
                f"the {field} is empty once unsafe HTML is removed (removed: {what}); "
                f"{where} will have no text from it",
                f"write the {field} as Markdown text; scripts, styles, frames and event "
                "handlers are always removed",
            )
        )

    def parse_toml(
        self,
        path: Path,
        text: str,
        record: str,
        first_line: int = 1,
        model: type[BaseModel] | None = None,
    ) -> dict[str, Any] | None:
        """Parse TOML, reporting a syntax error with its line in the file, and in words
        (see famfeeds.records.tomlerrors) the key and the mistake: a string, array or table
        left open, a bare word or nothing where ``model`` wants a value, a key or table set
        twice; for a value TOML cannot read (an impossible date, a time without seconds)
        its field and why."""
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message, line = str(exc), None
            if message.endswith(" (at end of document)"):
                lines = text.rstrip("\n").count("\n") + 1
                message = (
                    f"{message.removesuffix(' (at end of document)')} (at line {lines}, column 1)"
                )
            match = TOML_ERROR_POSITION.match(message)
            if (
                match
                and match.group(1).startswith("Illegal character")
                and self.named_controls(path)
            ):
                return None  # read_text named the character, its line and column, and what to do
            if match:
                row = int(match.group(2))
                message, line = match.group(1), row + first_line - 1
                rows = text.split("\n")
                known = explain_toml(text, message, row, model, first_line)
                if known is not None and message not in VALUE_MESSAGES:
                    self.problem_at(path, record, known, first_line)
                    return None
                explained = _explain_value(rows[row - 1]) if row <= len(rows) else None
                if explained is None and known is not None:
                    self.problem_at(path, record, known, first_line)
                    return None
                if explained is not None:
                    key, why, hint = explained
                    table = table_at(rows, row)
                    self.problem(
                        path,
                        record,
                        why,
                        line=line,
                        field=f"{table}.{key}" if table else key,
                        hint=hint,
                    )
                    return None
            self.problem(
                path,
                record,
                f"TOML syntax error: {message}",
                line=line,
                hint="see https://toml.io for the syntax",
            )
            return None

    def problem_at(self, path: Path, record: str, known: Explained, first_line: int) -> None:
        """Record a TOML mistake explained in words, on its line of the file."""
        self.problem(
            path,
            record,
            known.why,
            line=known.row + first_line - 1,
            field=known.key,
            hint=known.hint,
        )

    def validate(
        self,
        model: type[M],
        data: dict[str, Any],
        path: Path,
        text: str,
        record: str,
        first_line: int = 1,
    ) -> M | None:
        """Validate ``data`` against ``model``, one problem per invalid field."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            # A misspelt key already says which field it meant: skip that field's "missing".
            meant = {
                (*error["loc"][:-1], _closest_field(tuple(map(str, error["loc"])), model))
                for error in errors
                if error["type"] == "extra_forbidden"
            }
            for error in errors:
                if error["type"] == "missing" and tuple(error["loc"]) in meant:
                    continue
                loc = tuple(str(part) for part in error["loc"])
                line = _key_line(text, loc)
                self.problem(
                    path,
                    record,
                    _describe(error, model),
                    field=".".join(loc) or None,
                    line=None if line is None else line + first_line - 1,
                    hint=_hint(error, loc, model),
                )
            return None

    def load(self) -> Catalogue:
        """Read show.toml and every season; raise ContentError listing all problems."""
        root = self.root
        if not root.is_dir():
            raise ContentError(
                [
                    Problem(
                        display_path(root),
                        None,
                        "",
                        None,
                        "the content folder does not exist",
                        "pass --content DIR or run famfeeds in your project folder",
                    )
                ]
            )
        show = self.load_show(root / "show.toml")
        if show is not None:
            self.limits, self.base_url = show.limits, show.base_url
        seasons, digests = self.load_seasons(list(self.season_dirs()))
        seen: dict[int, Season] = {}
        for season in seasons:
            if season.number in seen:
                first = seen[season.number]
                self.problem(
                    Path(season.source),
                    f"season {season.number}",
                    f"season {season.number} is also defined in "
                    f"{_at(first.source, first.line_of('number'))}",
                    field="number",
                    line=season.line_of("number"),
                    hint="give each season folder its own number",
                )
            seen.setdefault(season.number, season)
        if not seasons and not self.problems:
            self.problem(
                root,
                "content",
                "no season folders found",
                hint="add content/season-01/season.toml and episode files",
            )
        if self.problems or show is None:
            raise ContentError(self.problems)
        ordered = tuple(sorted(seasons, key=lambda s: s.number))
        return Catalogue(root, show, ordered, tuple(self.warnings), digests)

    def load_seasons(self, names: list[str]) -> tuple[list[Season], dict[int, str]]:
        """The season folders ``names`` (through the parse cache when there is one), and
        the digest of each season (:func:`season_digest`) by number."""
        if self.reader is None:
            found = [self.load_season(self.root / name) for name in names]
            seasons = [s for s in found if s is not None]
            return seasons, {s.number: season_digest(s) for s in seasons}
        reader = self.reader(self)
        found = [reader.read(name, self.load_season) for name in names]
        return [s for s in found if s is not None], reader.digests

    def season_dirs(self) -> Iterator[str]:
        """The names of the season folders (season-NN) in name order; a link leading
        outside content/ is reported and skipped."""
        with os.scandir(self.root) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            match = SEASON_DIR.match(entry.name)
            if not match or not _is_dir(entry):
                continue
            # Only a link can lead elsewhere: a folder in the content folder is inside it.
            if _is_link(entry) and not self.inside(
                self.root / entry.name, f"season {int(match.group(1))}"
            ):
                continue
            yield entry.name

    def load_show(self, path: Path) -> Show | None:
        """Read content/show.toml."""
        if not path.is_file():
            self.problem(path, "show", "missing file", hint="every project needs content/show.toml")
            return None
        text = self.read_text(path, "show", limit=SHOW_FILE_BYTES)
        data = None if text is None else self.parse_toml(path, text, "show", model=Show)
        if data is None or text is None:
            return None
        show = self.validate(Show, data, path, text, "show")
        if show is not None:
            self.limits = show.limits
            self.check_title(path, "show", show.title, _key_line(text, ("title",)))
            start = _key_offset(text, "description")
            errors = len(self.problems)
            self.check_markdown(path, "show", "description", show.description, text, start)
            if len(self.problems) == errors:
                self.base_url = show.base_url
                line = _key_line(text, ("description",))
                self.check_sanitised(path, "show", "description", show.description, line)
        return show

    def load_season(self, folder: Path) -> Season | None:
        """Read a season folder: season.toml and its episode files."""
        number = int(SEASON_DIR.match(folder.name).group(1))  # type: ignore[union-attr]
        record = f"season {number}"
        path = folder / "season.toml"
        meta = None
        lines: tuple[tuple[str, int], ...] = ()
        if not path.is_file():
            self.problem(
                path, record, "missing file", hint="each season folder needs a season.toml"
            )
        else:
            text = self.read_text(path, record)
            data = None if text is None else self.parse_toml(path, text, record, model=SeasonMeta)
            if data is not None and text is not None:
                meta = self.validate(SeasonMeta, data, path, text, record)
                lines = _key_lines(text, data)
                if meta is not None:
                    self.check_title(path, record, meta.title, _key_line(text, ("title",)))
                    self.check_markdown(
                        path,
                        record,
                        "description",
                        meta.description,
                        text,
                        _key_offset(text, "description"),
                    )
                if meta is not None and meta.number != number:
                    self.problem(
                        path,
                        record,
                        f"number is {meta.number} but the folder is {folder.name}",
                        field="number",
                        line=_key_line(text, ("number",)),
                        hint=f"rename the folder to season-{meta.number:02d} or fix the number",
                    )
        episodes = self.load_episodes(folder, number)
        notes = self.load_notes(folder / NOTES_DIR, record)
        if meta is None or episodes is None or notes is None:
            return None
        return Season.model_construct(
            **dict(meta), episodes=episodes, source=self.shown(path), notes=notes, lines=lines
        )

    def load_notes(self, folder: Path, record: str) -> dict[date, str] | None:
        """Editor's notes for newsletter issues: newsletter/YYYY-MM-DD.md, Markdown."""
        if not folder.is_dir():
            return {}
        before = len(self.problems)
        if not self.inside(folder, record):
            return None
        notes: dict[date, str] = {}
        for path in sorted(folder.iterdir()):
            try:
                day = date.fromisoformat(path.name.removesuffix(".md"))
                valid = path.suffix == ".md" and path.is_file()
            except ValueError:
                valid = False
            if not valid:
                self.problem(
                    path,
                    record,
                    "editor's note file name not understood",
                    hint="name it after the issue's date, e.g. newsletter/2023-11-24.md",
                )
                continue
            note = f"{record}, note {day}"
            text = self.read_text(path, note)
            if text is not None:
                notes[day] = text.strip()
                self.check_markdown(path, note, "note", notes[day], text)
        return notes if len(self.problems) == before else None

    def load_episodes(self, folder: Path, season: int) -> tuple[Episode, ...] | None:
        """Read every episode file of a season and check numbering and slugs."""
        before = len(self.problems)
        episodes: list[Episode] = []
        for path in sorted(folder.glob("*.md")):
            match = EPISODE_FILE.match(path.name)
            if not match:
                self.problem(
                    path,
                    f"season {season}",
                    "episode file name not understood",
                    hint="name episode files EE-slug.md, e.g. 03-the-bear-hug.md "
                    "(lower-case letters, digits and hyphens)",
                )
                continue
            episode = self.load_episode(path, season, int(match.group(1)), match.group(2))
            if episode is not None:
                episodes.append(episode)
        if not episodes and len(self.problems) == before:
            self.problem(
                folder,
                f"season {season}",
                "the season has no episode files",
                hint="add files such as 01-pilot.md",
            )
        self.check_numbering(episodes, season, complete=len(self.problems) == before)
        if len(self.problems) > before:
            return None
        return tuple(sorted(episodes, key=lambda e: e.number))

    def check_numbering(self, episodes: list[Episode], season: int, complete: bool) -> None:
        """Episode numbers are unique, and run 1..N without gaps when every file loaded."""
        by_number: dict[int, Episode] = {}
        by_slug: dict[str, Episode] = {}
        for ep in episodes:
            record = f"S{season} E{ep.number}"
            if ep.number in by_number:
                first = by_number[ep.number]
                self.problem(
                    Path(ep.source),
                    record,
                    f"episode number {ep.number} is also used by "
                    f"{_at(first.source, first.line_of('number'))}",
                    field="number",
                    line=ep.line_of("number"),
                    hint="give each episode its own number, and name its file after it",
                )
            if ep.slug in by_slug:
                self.problem(
                    Path(ep.source),
                    record,
                    f"slug {ep.slug!r} is also used by {by_slug[ep.slug].source}",
                    hint="rename one of the files",
                )
            by_number.setdefault(ep.number, ep)
            by_slug.setdefault(ep.slug, ep)
        if by_number and complete:
            missing = sorted(set(range(1, max(by_number) + 1)) - set(by_number))
            if missing:
                listed = ", ".join(str(n) for n in missing)
                self.problem(
                    Path(self.root / f"season-{season:02d}"),
                    f"season {season}",
                    f"episode number(s) {listed} missing",
                    hint="number episodes 1, 2, 3, ... without gaps",
                )

    def load_episode(self, path: Path, season: int, file_number: int, slug: str) -> Episode | None:
        """Read one episode file: TOML front matter between +++ lines, then the synopsis."""
        record = f"S{season} E{file_number}"
        text = self.read_text(path, record)
        if text is None:
            return None
        lines = text.split("\n")
        if not lines or lines[0].strip() != FRONT_MATTER_FENCE:
            self.problem(
                path,
                record,
                "the file does not start with a +++ line",
                line=1,
                hint="put the episode's TOML front matter between two +++ lines",
            )
            return None
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER_FENCE)
        except StopIteration:
            self.problem(path, record, "the front matter has no closing +++ line", line=1)
            return None
        front = "\n".join(lines[1:end])
        data = self.parse_toml(path, front, record, first_line=2, model=EpisodeMeta)
        if data is None:
            return None
        meta = self.validate(EpisodeMeta, data, path, front, record, first_line=2)
        if meta is None:
            return None
        key_lines = tuple((key, line + 1) for key, line in _key_lines(front, data))
        if meta.number != file_number:
            self.problem(
                path,
                record,
                f"number is {meta.number} but the file name says {file_number}",
                field="number",
                line=dict(key_lines).get("number"),
                hint="make them agree",
            )
            return None
        self.check_title(path, record, meta.title, dict(key_lines).get("title"))
        body_start = sum(len(line) + 1 for line in lines[: end + 1])
        synopsis = "\n".join(lines[end + 1 :]).strip()
        errors = len(self.problems)
        self.check_markdown(path, record, "synopsis", synopsis, text, body_start)
        if len(self.problems) == errors:
            self.check_sanitised(path, record, "synopsis", synopsis, end + 2)
        values = dict(meta)
        values.update(slug=slug, synopsis=synopsis, source=self.shown(path))
        values["lines"] = _shared(key_lines)
        return Episode.model_construct(_fields_set=_field_set(values.keys()), **values)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def load_catalogue(root: Path) -> Catalogue:
    """Load and validate everything under ``root``; raise ContentError on any problem."""
    return Loader(root).load()


KINDS = ("control character", "noncharacter")


def _kind(char: str) -> str:
    """What Unicode calls a character CONTROL_CHARS finds: a noncharacter (U+FDD0-U+FDEF,
    U+FFFE, U+FFFF and their like in every plane) or a control character."""
    code = ord(char)
    return KINDS[1] if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE else KINDS[0]


def _position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset`` in ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _at(source: str, line: int | None) -> str:
    """``file:line``, or the file alone when the line is unknown."""
    return source if line is None else f"{source}:{line}"


def _char_name(char: str) -> str:
    import unicodedata

    return unicodedata.name(char, "FORMAT CHARACTER")


def _key_lines(text: str, data: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The line that sets each top-level key of ``data`` in ``text``."""
    found = ((key, _key_line(text, (key,))) for key in data)
    return tuple((key, line) for key, line in found if line is not None)


_SHARED: dict[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = {}
SHARED_LIMIT = 4096


def _shared(lines: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """One object for equal key-line tables: most episode files set the same keys on the
    same lines, and a season then stores (in the parse cache too) and loads one table."""
    if len(_SHARED) >= SHARED_LIMIT:
        _SHARED.clear()
    return _SHARED.setdefault(lines, lines)


_FIELD_SETS: dict[frozenset[str], set[str]] = {}


def _field_set(names: Iterable[str]) -> set[str]:
    """One set object for every record given the same fields (what ``model_construct``
    would make of them: the names given). Records are frozen, and pydantic copies the set
    before it changes one (``model_copy``): sharing it spares a set per episode, in memory,
    in the parse cache and when loading from it."""
    key = frozenset(names)
    found = _FIELD_SETS.get(key)
    if found is None:
        if len(_FIELD_SETS) >= SHARED_LIMIT:
            _FIELD_SETS.clear()
        found = _FIELD_SETS[key] = set(key)
    return found


def _key_offset(text: str, key: str) -> int:
    """The offset in ``text`` of the line that sets the top-level ``key`` (0 if none)."""
    line = _key_line(text, (key,))
    if line is None:
        return 0
    return sum(len(row) + 1 for row in text.split("\n")[: line - 1])


VALUE_LINE = re.compile(r"""^\s*("?)([A-Za-z0-9_-]+)\1\s*=\s*([^"'\[{#][^#]*?)\s*(?:#.*)?$""")
DATE_LIKE = re.compile(r"^(\d+)-(\d+)-(\d+)(?:[Tt ](.*))?$")
TIME_LIKE = re.compile(r"^(\d+):(\d+)(?::(\d+)(?:\.\d+)?)?(.*)$")
DATE_HINT = "write dates as YYYY-MM-DD, and check the day exists"
TIME_HINT = 'write times as HH:MM:SS, e.g. 21:00:00, or quote them: "21:00"'


def _explain_value(line: str) -> tuple[str, str, str] | None:
    """For a TOML line whose unquoted value tomllib refused: its key, what is wrong with
    the value as a date, time or date-time, and how to write it; None if it is none of
    those."""
    match = VALUE_LINE.match(line)
    if not match:
        return None
    key, value = match.group(2), match.group(3)
    found = DATE_LIKE.match(value)
    if found:
        return key, *_explain_date(value, *found.groups())
    found = TIME_LIKE.match(value)
    if found:
        hours, minutes, seconds, rest = found.groups()
        if seconds is None and not rest:
            return key, "a time needs seconds in TOML", TIME_HINT
        problem = _explain_time(value, hours, minutes, seconds or "0", rest)
        return key, *(problem or (f"{value} is not a valid time", TIME_HINT))
    if re.match(r"^\d{1,4}[/.]\d{1,2}[/.]\d{1,4}$", value):
        return key, f"{value} is not a TOML date", DATE_HINT
    return None


def explain_day(value: str) -> str:
    """Why ``value`` (from a command line) is not a date, as ``check`` says it of a record:
    ``2026-02-29 is not a valid date: February 2026 has 28 days``."""
    found = DATE_LIKE.match(value.strip())
    if found is None or found.group(4) is not None:
        return f"{value!r} is not a date; write YYYY-MM-DD"
    year, month, day, _ = found.groups()
    why, _ = _explain_date(value.strip(), year, month, day, None)
    return why


def _explain_date(
    value: str, year: str, month: str, day: str, clock: str | None
) -> tuple[str, str]:
    """Why a date-like value is not a TOML date or date-time."""
    import calendar

    written = f"{year}-{month}-{day}"
    if len(year) != 4 or len(month) != 2 or len(day) != 2:
        return (
            f"{written} is not a date in the form YYYY-MM-DD",
            "write the year with four digits and the month and day with two, e.g. 2023-11-10",
        )
    y, m, d = int(year), int(month), int(day)
    if not 1 <= m <= 12:
        return f"{written} is not a valid date: there is no month {m}", DATE_HINT
    length = calendar.monthrange(y, m)[1] if y >= 1 else 31
    if not 1 <= d <= length:
        month_name = date(2000, m, 1).strftime("%B") if y >= 1 else f"month {m}"
        return (
            f"{written} is not a valid date: {month_name} {y} has {length} days",
            DATE_HINT,
        )
    if clock is None:
        return f"{value} is not a valid date", DATE_HINT
    found = TIME_LIKE.match(clock)
    if not found:
        return (
            f"{value} is not a valid date-time",
            "write YYYY-MM-DDTHH:MM:SS, with Z or an offset such as +01:00 if you need one",
        )
    hours, minutes, seconds, rest = found.groups()
    if seconds is None:
        return (
            f"{value}: a time needs seconds in TOML",
            f'write {written}T{hours}:{minutes}:00, or quote it: "{value}"',
        )
    problem = _explain_time(clock, hours, minutes, seconds, rest)
    return problem or (f"{value} is not a valid date-time", DATE_HINT)


def _explain_time(
    value: str, hours: str, minutes: str, seconds: str, rest: str
) -> tuple[str, str] | None:
    """Why a time-like value (``rest``: what follows the seconds) is not a TOML time."""
    if len(hours) != 2 or len(minutes) != 2 or len(seconds) != 2:
        return f"{value} is not a time in the form HH:MM:SS", TIME_HINT
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
        return f"{value} is not a valid time of day", "hours run 00-23, minutes and seconds 00-59"
    rest = rest.strip()
    if not rest or rest.upper() == "Z":
        return None
    offset = re.fullmatch(r"[+-](\d{2}):(\d{2})", rest)
    if offset and (int(offset.group(1)) > 23 or int(offset.group(2)) > 59):
        return f"{rest} is not a valid UTC offset", "offsets run from -23:59 to +23:59"
    if not offset:
        return (
            f"{value}: a time ends with Z or an offset such as +01:00, not {rest!r}",
            "leave it out to mean the show's time zone",
        )
    return None


def _key_line(text: str, loc: tuple[str, ...]) -> int | None:
    """The 1-based line that sets ``loc`` in TOML ``text``, found by scanning; None if absent."""
    if not loc:
        return None
    *tables, key = loc
    wanted = ".".join(tables)
    current = ""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1)
            if not key.isdigit() and current == ".".join(loc):
                return number
            continue
        if current == wanted and re.match(rf"^\"?{re.escape(key)}\"?\s*=", line):
            return number
    return _key_line(text, tuple(tables)) if tables else None


def _describe(error: Any, model: type[BaseModel]) -> str:
    """A readable sentence for one pydantic error."""
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    if kind == "literal_error":
        return f"{error['input']!r} is not allowed; {error['msg'][0].lower()}{error['msg'][1:]}"
    value = error.get("input")
    if kind == "string_too_short" and isinstance(value, str) and not value.strip():
        return f"{loc[-1]} is empty" + (" (only spaces)" if value else "")
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if value is not None and not isinstance(value, dict | list) and repr(value) not in message:
        shown = repr(value)
        if len(shown) > SHOWN_VALUE:  # a huge value would bury the message
            shown = f"{shown[: SHOWN_VALUE - 1]}…"
        return f"{message} (got {shown})"
    return message


def _closest_field(loc: tuple[str, ...], model: type[BaseModel]) -> str | None:
    """The known field nearest in spelling to the unknown key at ``loc``."""
    import difflib

    close = difflib.get_close_matches(loc[-1], list(_owner(loc, model).model_fields), n=1)
    return close[0] if close else None


def _owner(loc: tuple[str, ...], model: type[BaseModel]) -> type[BaseModel]:
    """The model (or nested model) that holds the field at ``loc``."""
    owner = model
    for part in loc[:-1]:
        info = owner.model_fields.get(part)
        if info is None:
            break
        owner = _model_of(info.annotation) or owner
    return owner


def _hint(error: Any, loc: tuple[str, ...], model: type[BaseModel]) -> str:
    """Suggest a fix: for an unknown key, the nearest known field name."""
    if error["type"] == "extra_forbidden":
        close = _closest_field(loc, model)
        known = ", ".join(_owner(loc, model).model_fields)
        return f"did you mean {close!r}?" if close else f"known fields: {known}"
    if error["type"] == "missing":
        owner = _owner(loc, model)
        info = owner.model_fields.get(loc[-1])
        table = _model_of(info.annotation) if info is not None else None
        if table is not None:  # a TOML table, such as [author]
            required = [
                f'{name} = "..."'
                for name, field in table.model_fields.items()
                if field.is_required()
            ]
            header = ".".join(loc)
            return f"add an [{header}] table" + (f" with {', '.join(required)}" if required else "")
        if len(loc) > 1:
            return f"add {loc[-1]} = ... under [{'.'.join(loc[:-1])}]"
        return f"add {loc[-1]} = ... to the file"
    return ""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation like ``Person | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
