"""Load content/: read every file, validate every record, report every problem at once."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from famfeeds.errors import ContentError, Problem, display_path
from famfeeds.models import Episode, EpisodeMeta, Season, SeasonMeta, Show

SEASON_DIR = re.compile(r"^season-(\d+)$")
EPISODE_FILE = re.compile(r"^(\d+)-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
# Characters XML 1.0 cannot carry, and that no title or synopsis needs.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
TOML_ERROR_POSITION = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")
FRONT_MATTER_FENCE = "+++"
NOTES_DIR = "newsletter"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Catalogue:
    """Everything under content/: the show and its seasons, in season order."""

    root: Path
    show: Show
    seasons: tuple[Season, ...]

    def episode_count(self) -> int:
        """How many episodes all seasons hold."""
        return sum(len(s.episodes) for s in self.seasons)


@dataclass
class Loader:
    """Collects problems while reading; raises them together at the end."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    shown_root: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.shown_root = display_path(self.root)

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

    def read_text(self, path: Path, record: str) -> str | None:
        """Read a UTF-8 file, reporting unreadable files and forbidden control characters."""
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            self.problem(
                path, record, "the file is not valid UTF-8", line=line, hint="save it as UTF-8"
            )
            return None
        except OSError as exc:
            self.problem(path, record, f"cannot read the file: {exc.strerror}")
            return None
        text = text.replace("\r\n", "\n")
        for match in CONTROL_CHARS.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            self.problem(
                path,
                record,
                f"control character U+{ord(match.group()):04X} in the text",
                line=line,
                hint="delete it; feeds and calendars cannot carry it",
            )
        return text

    def parse_toml(
        self, path: Path, text: str, record: str, first_line: int = 1
    ) -> dict[str, Any] | None:
        """Parse TOML, reporting a syntax error with its line in the file."""
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
            if match:
                row = int(match.group(2))
                message, line = match.group(1), row + first_line - 1
                source_line = text.split("\n")[row - 1] if row <= text.count("\n") + 1 else ""
                if re.search(r"=\s*\d{1,2}:\d{2}\s*(#.*)?$", source_line):
                    self.problem(
                        path,
                        record,
                        "a time needs seconds in TOML",
                        line=line,
                        hint='write 21:00:00, or quote it: "21:00"',
                    )
                    return None
                bad_date = _invalid_date(source_line)
                if bad_date:
                    message = f"{bad_date} is not a valid date"
                    self.problem(
                        path,
                        record,
                        message,
                        line=line,
                        hint="write dates as YYYY-MM-DD, and check the day exists",
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
                        "content",
                        None,
                        "the content folder does not exist",
                        "pass --content DIR or run famfeeds in your project folder",
                    )
                ]
            )
        show = self.load_show(root / "show.toml")
        seasons = [s for s in map(self.load_season, self.season_dirs()) if s is not None]
        seen: dict[int, Season] = {}
        for season in seasons:
            if season.number in seen:
                self.problem(
                    Path(season.source),
                    f"season {season.number}",
                    f"season {season.number} is also defined in {seen[season.number].source}",
                    field="number",
                )
            seen[season.number] = season
        if not seasons and not self.problems:
            self.problem(
                root,
                "content",
                "no season folders found",
                hint="add content/season-01/season.toml and episode files",
            )
        if self.problems or show is None:
            raise ContentError(self.problems)
        return Catalogue(root, show, tuple(sorted(seasons, key=lambda s: s.number)))

    def season_dirs(self) -> Iterator[Path]:
        """Season folders (season-NN) in name order."""
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and SEASON_DIR.match(path.name):
                yield path

    def load_show(self, path: Path) -> Show | None:
        """Read content/show.toml."""
        if not path.is_file():
            self.problem(path, "show", "missing file", hint="every project needs content/show.toml")
            return None
        text = self.read_text(path, "show")
        data = None if text is None else self.parse_toml(path, text, "show")
        return (
            None if data is None or text is None else self.validate(Show, data, path, text, "show")
        )

    def load_season(self, folder: Path) -> Season | None:
        """Read a season folder: season.toml and its episode files."""
        number = int(SEASON_DIR.match(folder.name).group(1))  # type: ignore[union-attr]
        record = f"season {number}"
        path = folder / "season.toml"
        meta = None
        if not path.is_file():
            self.problem(
                path, record, "missing file", hint="each season folder needs a season.toml"
            )
        else:
            text = self.read_text(path, record)
            data = None if text is None else self.parse_toml(path, text, record)
            if data is not None and text is not None:
                meta = self.validate(SeasonMeta, data, path, text, record)
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
            **dict(meta), episodes=episodes, source=self.shown(path), notes=notes
        )

    def load_notes(self, folder: Path, record: str) -> dict[date, str] | None:
        """Editor's notes for newsletter issues: newsletter/YYYY-MM-DD.md, Markdown."""
        if not folder.is_dir():
            return {}
        before = len(self.problems)
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
            text = self.read_text(path, f"{record}, note {day}")
            if text is not None:
                notes[day] = text.strip()
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
                self.problem(
                    Path(ep.source),
                    record,
                    f"episode number {ep.number} is also used by {by_number[ep.number].source}",
                    field="number",
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
        data = self.parse_toml(path, front, record, first_line=2)
        if data is None:
            return None
        meta = self.validate(EpisodeMeta, data, path, front, record, first_line=2)
        if meta is None:
            return None
        if meta.number != file_number:
            self.problem(
                path,
                record,
                f"number is {meta.number} but the file name says {file_number}",
                field="number",
                line=_key_line(front, ("number",)),
                hint="make them agree",
            )
            return None
        synopsis = "\n".join(lines[end + 1 :]).strip()
        return Episode.model_construct(
            **dict(meta), slug=slug, synopsis=synopsis, source=self.shown(path)
        )


def load_catalogue(root: Path) -> Catalogue:
    """Load and validate everything under ``root``; raise ContentError on any problem."""
    return Loader(root).load()


def _invalid_date(line: str) -> str | None:
    """A date-like token on ``line`` that is not a real date, such as 2023-02-30."""
    token: str
    for token in re.findall(r"\d{4}-\d{2}-\d{2}", line):
        try:
            date.fromisoformat(token)
        except ValueError:
            return token
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
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    if value is not None and not isinstance(value, dict | list) and repr(value) not in message:
        return f"{message} (got {value!r})"
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
