"""Every word and date in the show's language: gettext messages and Babel's CLDR formats.

The build loads the show's compiled catalogue (:mod:`famfeeds.build.translations`) and installs it
in the template environment (:func:`install`); renderers and templates then reach the same
:class:`Localiser` through the environment (:func:`localiser`). Rules:

- Babel is always given the show's locale explicitly, never the process locale, so the bytes
  do not depend on the machine.
- Messages are whole sentences with ``%(name)s`` placeholders (the style Jinja's newstyle
  gettext uses, so Python and templates share one convention: a literal percent is ``%%``).
- The records' own text (titles, synopses, service names) is the editor's: never translated.
- A timed release reads as the locale's full date, its short time and the zone's abbreviation
  where the locale's readers know one ("Wednesday, November 4, 2026 at 9:00 PM EST",
  "Mittwoch, 4. November 2026 um 21:00 MEZ"); elsewhere the offset in the locale's own GMT
  format ("UTC+1"), which is never ambiguous.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from famfeeds.plan.schedule import Release
from famfeeds.records.models import Season

if TYPE_CHECKING:
    from babel import Locale
    from jinja2 import Environment

DOMAIN = "famfeeds"
"""The gettext domain: locale/<lang>/LC_MESSAGES/famfeeds.po."""
NO_INHERITANCE = "\u2205\u2205\u2205"
"""CLDR's marker for a name a locale deliberately leaves out."""
GLOBAL_NAME = "l10n"
"""The name under which templates see the :class:`Localiser`."""


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues where it is defined; it is translated where it
    is shown (``_(label)`` in a template)."""
    return message


def parse_language(tag: str) -> Locale:
    """Babel's locale for a language tag such as ``en``, ``en-US`` or ``de-AT``.

    Raises ValueError saying what a tag looks like when CLDR does not know it.
    """
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(tag.replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"{tag!r} is not a language famfeeds can format dates for; use a tag such as "
            "'en', 'en-US', 'en-GB', 'de' or 'fr'"
        ) from None


@dataclass(frozen=True)
class Messages:
    """A show language's compiled catalogue, as the build loaded it."""

    tag: str
    """The language tag of show.toml, e.g. ``en-US``."""
    translations: gettext.NullTranslations
    digest: str
    """A digest of the catalogue files it came from (part of cache keys)."""


class Localiser:
    """Formats dates, times, durations and messages in one language."""

    def __init__(self, messages: Messages) -> None:
        self.messages = messages
        self.locale = parse_language(messages.tag)
        self.tag = messages.tag
        self._translations = messages.translations

    # Messages -------------------------------------------------------------------------

    def gettext(self, message: str, **values: object) -> str:
        """The translation of ``message`` with ``values`` filled in (``%(name)s``)."""
        return self._translations.gettext(message) % values

    def ngettext(self, singular: str, plural: str, num: int, **values: object) -> str:
        """The plural form for ``num`` (available as ``%(num)d``), with ``values`` filled in."""
        return self._translations.ngettext(singular, plural, num) % {"num": num, **values}

    # Dates and times ------------------------------------------------------------------

    def full_date(self, day: date) -> str:
        """The locale's full date: ``Friday, November 10, 2023``, ``Freitag, 10. November
        2023``."""
        from babel.dates import format_date

        return format_date(day, "full", locale=self.locale)

    def short_date(self, day: date) -> str:
        """A compact date with the weekday: ``Fri, Nov 10, 2023``, ``Fr., 10. Nov. 2023``."""
        from babel.dates import format_skeleton

        return format_skeleton("yMMMEd", day, locale=self.locale)

    def time(self, moment: datetime) -> str:
        """The locale's short time of day in ``moment``'s own zone: ``9:00 PM``, ``21:00``."""
        from babel.dates import format_time

        return format_time(moment, "short", tzinfo=moment.tzinfo, locale=self.locale)

    def weekday(self, day: date) -> str:
        """The weekday's name as it stands in a sentence: ``Friday``, ``Freitag``, ``vendredi``."""
        from babel.dates import get_day_names

        return str(get_day_names("wide", context="format", locale=self.locale)[day.weekday()])

    def zone_abbreviation(self, moment: datetime) -> str:
        """The short name of ``moment``'s zone at that moment where the locale has one (EST,
        EDT, MEZ, GMT), else the UTC offset in the locale's GMT format (``UTC+1``)."""
        from babel.core import get_global
        from babel.dates import get_timezone_name

        zone = get_timezone_name(moment, return_zone=True)
        variant = "daylight" if moment.dst() else "standard"
        name = self.locale.time_zones.get(zone, {}).get("short", {}).get(variant)
        if not name:
            metazone = get_global("meta_zones").get(zone)
            meta = self.locale.meta_zones.get(metazone, {}) if metazone else {}
            name = meta.get("short", {}).get(variant)
        if name and name != NO_INHERITANCE:
            return str(name)
        return self.utc_offset(moment)

    def utc_offset(self, moment: datetime) -> str:
        """The offset in the locale's GMT format: ``GMT-5``, ``UTC+5:30``, ``GMT``."""
        offset = moment.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        text = ""
        if minutes:
            hours, rest = divmod(abs(minutes), 60)
            text = ("+" if minutes > 0 else "-") + str(hours) + (f":{rest:02d}" if rest else "")
        return str(self.locale.zone_formats["gmt"] % text)

    def zone_name(self, zone: ZoneInfo) -> str:
        """The zone's generic name: ``Pacific Time``, ``Mitteleuropäische Zeit``."""
        from babel.dates import get_timezone_name

        return str(get_timezone_name(zone, "long", locale=self.locale))

    def when(self, release: Release) -> str:
        """A release's day, and its time with the zone when it is timed."""
        if release.all_day:
            return self.full_date(release.day)
        start = release.start
        return self.gettext(
            "%(date)s at %(time)s %(zone)s",
            date=self.full_date(release.day),
            time=self.time(start),
            zone=self.zone_abbreviation(start),
        )

    def when_short(self, release: Release) -> str:
        """The compact form for tables, joined with the locale's own date-time pattern."""
        if release.all_day:
            return self.short_date(release.day)
        start = release.start
        clock = f"{self.time(start)} {self.zone_abbreviation(start)}"
        pattern = str(self.locale.datetime_formats["medium"])
        return pattern.replace("{1}", self.short_date(release.day)).replace("{0}", clock)

    def runtime(self, minutes: int) -> str:
        """A runtime in words: ``58 minutes``, ``58 Minuten``, ``1 minute``."""
        from babel.units import format_unit

        return str(format_unit(minutes, "duration-minute", length="long", locale=self.locale))

    # Episode and season labels --------------------------------------------------------

    def code(self, release: Release) -> str:
        """The short season/episode label: ``S4 E3`` (``S4 F3`` in German)."""
        return self.gettext(
            "S%(season)d E%(episode)d",
            season=release.season.number,
            episode=release.episode.number,
        )

    def code_range(self, first: Release, last: Release) -> str:
        """Several episodes of one day: ``S1 E1`` to ``E2``, joined by an en dash."""
        return self.gettext(
            "S%(season)d E%(first)d\u2013E%(last)d",
            season=first.season.number,
            first=first.episode.number,
            last=last.episode.number,
        )

    def episode_title(self, release: Release) -> str:
        """The title a reader shows: ``S4 E3 · The Bear Hug``."""
        return self.gettext(
            "%(code)s \u00b7 %(title)s", code=self.code(release), title=release.episode.title
        )

    def summary(self, release: Release) -> str:
        """The one-line headline of a release: ``For All Mankind S4 E3: The Bear Hug``."""
        return self.gettext(
            "%(show)s %(code)s: %(title)s",
            show=release.show.title,
            code=self.code(release),
            title=release.episode.title,
        )

    def position(self, release: Release) -> str:
        """``Episode 3 of 10`` (``, the season finale`` for the last, when nothing of the
        season comes out after it: Release.closes_season)."""
        values = {"number": release.episode.number, "total": len(release.season.episodes)}
        if release.closes_season:
            return self.gettext("Episode %(number)d of %(total)d, the season finale", **values)
        return self.gettext("Episode %(number)d of %(total)d", **values)

    def streaming_on(self, release: Release) -> str:
        """Where the episode streams, as a sentence."""
        return self.gettext("Streaming on %(service)s.", service=release.show.service)

    def cadence(self, season: Season) -> str:
        """How often the season releases, e.g. ``new episodes every Friday``."""
        weekday = self.weekday(season.premiere)
        phrases: dict[str, Callable[[], str]] = {
            "daily": lambda: self.gettext("a new episode every day"),
            "weekly": lambda: self.gettext("new episodes every %(weekday)s", weekday=weekday),
            "biweekly": lambda: self.gettext(
                "new episodes every other %(weekday)s", weekday=weekday
            ),
            "all-at-once": lambda: self.gettext("every episode at once"),
        }
        return phrases[season.cadence]()

    def episode_count(self, count: int) -> str:
        """``10 episodes``, ``1 episode``."""
        return self.ngettext("%(num)d episode", "%(num)d episodes", count)

    # Locale facts ---------------------------------------------------------------------

    @cached_property
    def og_locale(self) -> str:
        """The Open Graph locale, language_TERRITORY (``en_US``, ``de_DE``): the tag's
        territory, else CLDR's likely one."""
        from babel.core import get_global

        if self.locale.territory:
            return f"{self.locale.language}_{self.locale.territory}"
        likely = str(get_global("likely_subtags").get(self.locale.language, ""))
        territory = likely.rsplit("_", 1)[-1] if likely.count("_") >= 1 else ""
        return f"{self.locale.language}_{territory}" if territory else self.locale.language


def install(env: Environment, messages: Messages) -> Localiser:
    """Install ``messages`` in ``env``: Jinja's ``_``/``gettext``/``ngettext`` (newstyle), the
    ``l10n`` global and the formatting filters (``longdate``, ``shortdate``, ``when``,
    ``when_short``, ``runtime``, ``code``)."""
    l10n = Localiser(messages)
    env.install_gettext_translations(messages.translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals[GLOBAL_NAME] = l10n
    filters: dict[str, Callable[..., Any]] = {
        "longdate": l10n.full_date,
        "shortdate": l10n.short_date,
        "when": l10n.when,
        "when_short": l10n.when_short,
        "runtime": l10n.runtime,
        "code": l10n.code,
    }
    env.filters.update(filters)
    return l10n


def localiser(env: Environment) -> Localiser:
    """The :class:`Localiser` installed in ``env`` by :func:`install`."""
    found = env.globals.get(GLOBAL_NAME)
    if not isinstance(found, Localiser):
        raise TypeError("no messages installed: make the environment with template_environment")
    return found
