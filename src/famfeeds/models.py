"""The records: a show, its seasons and their episodes, as validated from content/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


@dataclass(frozen=True)
class CadenceRule:
    """How often a season releases: the step between release slots, and how a newsletter
    describes it (``{weekday}`` is the premiere's weekday)."""

    name: str
    step: int
    """Days between slots; 0 puts every undated episode on the premiere."""
    phrase: str

    def day_of_slot(self, premiere: date, slot: int) -> date:
        """The day of release slot ``slot`` (0 is the premiere)."""
        return premiere + timedelta(days=self.step * slot)

    def slot_of_day(self, premiere: date, day: date) -> int:
        """The slot nearest to ``day`` (round half up); always 0 for all-at-once."""
        if self.step == 0:
            return 0
        return (2 * (day - premiere).days + self.step) // (2 * self.step)


CADENCES: dict[str, CadenceRule] = {
    rule.name: rule
    for rule in (
        CadenceRule("daily", 1, "a new episode every day"),
        CadenceRule("weekly", 7, "new episodes on {weekday}s"),
        CadenceRule("biweekly", 14, "new episodes every other {weekday}"),
        CadenceRule("all-at-once", 0, "every episode at once"),
    )
}


def _cadence(value: str) -> str:
    if value not in CADENCES:
        names = ", ".join(repr(n) for n in CADENCES)
        raise ValueError(f"unknown cadence {value!r}; use one of {names}")
    return value


Cadence = Annotated[str, AfterValidator(_cadence)]
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
    service_url: AbsoluteUrl | None = None
    """Where the subscriptions service (famfeeds subscriptions) is reachable publicly."""
    unsubscribe_url: UnsubscribeUrl | None = Field(
        default=None,
        description="URL template; {token} is replaced per subscriber "
        "[default: {service_url}/unsubscribe?token={token}]",
    )
    unsubscribe_mailto: EmailAddress | None = None
    signup_url: AbsoluteUrl | None = None
    smtp_url: str | None = None

    @model_validator(mode="after")
    def _unsubscribe_target(self) -> Newsletter:
        if self.unsubscribe_url is None:
            if self.service_url is None:
                raise ValueError(
                    "set unsubscribe_url (with {token}) or service_url (where famfeeds "
                    "subscriptions runs), so every message can carry a one-click unsubscribe"
                )
            object.__setattr__(
                self, "unsubscribe_url", self.service_endpoint("unsubscribe") + "?token={token}"
            )
        return self

    def service_endpoint(self, name: str) -> str:
        """The public URL of one of the subscriptions service's endpoints."""
        assert self.service_url is not None
        return self.service_url.rstrip("/") + "/" + name

    @property
    def unsubscribe_template(self) -> str:
        """The unsubscribe URL template, with {token}."""
        assert self.unsubscribe_url is not None
        return self.unsubscribe_url


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

    def midnight(self, day: date) -> datetime:
        """The start of ``day`` in the show's time zone."""
        return datetime.combine(day, time(0), tzinfo=self.zone)


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

    @property
    def alt_text(self) -> str:
        """The image's text alternative: given, or the title."""
        return self.image_alt or self.title


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

    @property
    def rule(self) -> CadenceRule:
        """The season's cadence."""
        return CADENCES[self.cadence]

    @property
    def finale_number(self) -> int:
        """The number of the season's finale: its last episode that is not cancelled."""
        return max((e.number for e in self.episodes if e.status != "cancelled"), default=0)
