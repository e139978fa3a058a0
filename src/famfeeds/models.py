"""The records: a show, its seasons and their episodes, as validated from content/."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
CADENCE_DAYS = {"daily": 1, "weekly": 7, "biweekly": 14, "all-at-once": 0}
Cadence = Literal["daily", "weekly", "biweekly", "all-at-once"]
Status = Literal["scheduled", "cancelled"]


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL, such as https://example.org/path/")
    if any(c.isspace() for c in value):
        raise ValueError("a URL must not contain spaces; encode them as %20")
    return value


def normalise_base_url(value: str) -> str:
    """Check an absolute site URL and give it a trailing slash."""
    value = _absolute_url(value)
    if urlsplit(value).query or urlsplit(value).fragment:
        raise ValueError("the base URL must not have a ?query or #fragment")
    return value if value.endswith("/") else value + "/"


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'America/New_York'"
        ) from None
    return value


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*", value):
        raise ValueError(
            f"{value!r} is not a language tag; use an ISO 639 code such as 'en' or 'en-US'"
        )
    return value


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", value):
        raise ValueError(f"{value!r} is not an email address such as 'news@example.org'")
    return value


def _date_or_datetime(value: object) -> object:
    """Accept TOML dates and date-times, or the same written as a quoted string."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a valid date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM"
            ) from None
    return value


def _one_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be one line of text, without line breaks or control characters")
    return value


def _token_template(value: str) -> str:
    if "{token}" not in value:
        raise ValueError(
            "must contain {token}, where each subscriber's unsubscribe token goes, "
            "e.g. https://example.org/unsubscribe?token={token}"
        )
    return value


def _plain_date(value: object) -> object:
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD) without a time of day")
    return value


AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]
BaseUrl = Annotated[str, AfterValidator(normalise_base_url)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
LanguageTag = Annotated[str, AfterValidator(_language)]
EmailAddress = Annotated[str, AfterValidator(_email)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
Day = Annotated[date, BeforeValidator(_plain_date), BeforeValidator(_date_or_datetime)]
DayOrInstant = Annotated[datetime | date, BeforeValidator(_date_or_datetime)]
Text = Annotated[str, Field(min_length=1)]
Line = Annotated[str, Field(min_length=1), AfterValidator(_one_line)]
UnsubscribeUrl = Annotated[str, AfterValidator(_absolute_url), AfterValidator(_token_template)]


class Record(BaseModel):
    """Base for every record: unknown keys are typos, and records never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Person(Record):
    """Who publishes the feeds."""

    name: Line
    email: EmailAddress | None = None
    uri: AbsoluteUrl | None = None


class Newsletter(Record):
    """Sender settings for the newsletter and the send command."""

    sender_name: Line
    sender_address: EmailAddress
    reply_to: EmailAddress | None = None
    unsubscribe_url: UnsubscribeUrl = Field(
        description="URL template; {token} is replaced per subscriber"
    )
    unsubscribe_mailto: EmailAddress | None = None
    signup_url: AbsoluteUrl | None = None
    smtp_url: str | None = None


class CalendarSettings(Record):
    """The [calendar] table of show.toml."""

    all_day: bool = False
    """Show timed releases as all-day events."""
    reminder: Annotated[int, Field(ge=0, le=40320, description="minutes before")] = 0
    """A reminder (VALARM) this many minutes before each release; 0 for none."""


class Show(Record):
    """content/show.toml."""

    title: Line
    slug: Slug
    base_url: BaseUrl
    id_date: Day
    language: LanguageTag = "en"
    service: Line
    timezone: TimeZoneName
    description: Text
    homepage: AbsoluteUrl | None = None
    artwork: AbsoluteUrl | None = None
    feed_entries: Annotated[int, Field(ge=1, le=10_000)] = 50
    author: Person
    newsletter: Newsletter | None = None
    calendar: CalendarSettings = CalendarSettings()

    @property
    def zone(self) -> ZoneInfo:
        """The release time zone."""
        return ZoneInfo(self.timezone)

    @property
    def domain(self) -> str:
        """The host name of the published site."""
        return urlsplit(self.base_url).hostname or ""

    def url(self, path: str = "") -> str:
        """The public URL of ``path`` under the site."""
        return self.base_url + path.lstrip("/")


class SeasonMeta(Record):
    """content/season-NN/season.toml."""

    number: Annotated[int, Field(ge=0, le=9999)]
    title: Line
    description: str = ""
    premiere: Day
    cadence: Cadence = "weekly"
    release_time: time | None = None


class EpisodeMeta(Record):
    """The TOML front matter of content/season-NN/EE-slug.md."""

    number: Annotated[int, Field(ge=1, le=9999)]
    title: Line
    release: DayOrInstant | None = None
    status: Status = "scheduled"
    image: AbsoluteUrl | None = None
    image_alt: Line | None = None
    runtime: Annotated[int, Field(ge=1, le=600, description="minutes")] | None = None
    updated: DayOrInstant | None = None


class Episode(EpisodeMeta):
    """An episode with what the loader adds: its slug, synopsis and source file.

    Built with ``model_construct`` from a validated EpisodeMeta: no second validation.
    """

    model_config = ConfigDict(defer_build=True)

    slug: Slug
    synopsis: str
    source: str


class Season(SeasonMeta):
    """A season with its episodes, in episode order (built like Episode)."""

    model_config = ConfigDict(defer_build=True)

    episodes: tuple[Episode, ...]
    source: str
    notes: dict[date, str] = Field(default_factory=dict)
    """Editor's notes for newsletter issues, by issue date (Markdown)."""

    @property
    def code(self) -> str:
        """Zero-padded folder-style code, e.g. ``season-04``."""
        return f"season-{self.number:02d}"
