"""Time zone names that are valid but wrong for a show: fixed offsets and legacy aliases.

A release follows a city's clock, daylight-saving changes included. ``EST`` and
``Etc/GMT+5`` are fixed UTC-05:00 all year, so every summer release would be an hour off;
``US/Eastern`` and ``Asia/Calcutta`` are old aliases kept only for compatibility. The rule:
a name is fine when it is a place in the tz database's ``zone.tab`` or ``zone1970.tab``, or
``UTC``; any other name gets advice naming the city zone to use instead. The tables come
from the ``tzdata`` package (a dependency), so the advice is the same on every machine.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from famfeeds.errors import Problem, display_path
from famfeeds.records.models import Catalogue

UTC_NAMES = frozenset({"UTC", "Etc/UTC"})

# What people mean by the North American and European abbreviations and POSIX-style names.
ABBREVIATIONS: dict[str, str] = {
    "EST": "'America/New_York'",
    "EST5EDT": "'America/New_York'",
    "CST6CDT": "'America/Chicago'",
    "MST": "'America/Denver' (or 'America/Phoenix' for Arizona, which keeps standard time)",
    "MST7MDT": "'America/Denver'",
    "PST8PDT": "'America/Los_Angeles'",
    "HST": "'Pacific/Honolulu'",
    "CET": "'Europe/Paris' or 'Europe/Berlin'",
    "MET": "'Europe/Paris' or 'Europe/Berlin'",
    "EET": "'Europe/Athens' or 'Europe/Helsinki'",
    "WET": "'Europe/Lisbon'",
}
FIXED_ABBREVIATIONS = {"EST": -5, "MST": -7}
"""Abbreviations that are fixed offsets, without daylight-saving time."""

# A well-known city zone for each whole-hour standard offset, for Etc/GMT±N.
CITY_BY_OFFSET: dict[int, str] = {
    -11: "Pacific/Pago_Pago",
    -10: "Pacific/Honolulu",
    -9: "America/Anchorage",
    -8: "America/Los_Angeles",
    -7: "America/Denver",
    -6: "America/Chicago",
    -5: "America/New_York",
    -4: "America/Halifax",
    -3: "America/Sao_Paulo",
    -1: "Atlantic/Azores",
    0: "Europe/London",
    1: "Europe/Paris",
    2: "Europe/Athens",
    3: "Europe/Istanbul",
    4: "Asia/Dubai",
    5: "Asia/Karachi",
    6: "Asia/Dhaka",
    7: "Asia/Bangkok",
    8: "Asia/Singapore",
    9: "Asia/Tokyo",
    10: "Australia/Sydney",
    11: "Pacific/Noumea",
    12: "Pacific/Auckland",
    13: "Pacific/Tongatapu",
    14: "Pacific/Kiritimati",
}
ETC_GMT = re.compile(r"^(?:Etc/)?GMT([+-]\d{1,2})$")
ZERO_OFFSET = frozenset(
    {"GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0"}
    | {"Etc/GMT-0", "Etc/Greenwich"}
)
SHOW_TOML = "show.toml"


@cache
def _tzdata_text(name: str) -> str:
    """A text file of the tzdata package's zoneinfo folder, or '' if it is not there."""
    try:
        return resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        return ""


@cache
def places() -> frozenset[str]:
    """Every zone name that is a place: the third column of zone.tab and zone1970.tab."""
    names: set[str] = set()
    for table in ("zone.tab", "zone1970.tab"):
        for line in _tzdata_text(table).splitlines():
            fields = line.split("\t")
            if not line.startswith("#") and len(fields) >= 3:
                names.add(fields[2])
    return frozenset(names)


@cache
def links() -> dict[str, str]:
    """Aliases and the zone each points at, from tzdata.zi's ``L target alias`` lines."""
    found: dict[str, str] = {}
    for line in _tzdata_text("tzdata.zi").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            found[parts[2]] = parts[1]
    return found


def _offset(hours: int) -> str:
    sign = "+" if hours >= 0 else "-"
    return f"UTC{sign}{abs(hours):02d}:00"


def zone_advice(name: str) -> tuple[str, str] | None:
    """What is wrong with the valid zone name ``name`` and what to write instead, as
    (message, hint); None when it is a place or UTC, or when the tables are unavailable."""
    if name in UTC_NAMES or name in places() or not places():
        return None
    quoted = f"{name!r}"
    if name in FIXED_ABBREVIATIONS:
        return (
            f"{quoted} is a fixed {_offset(FIXED_ABBREVIATIONS[name])} zone without "
            "daylight-saving time, so releases in summer would be an hour off",
            "use the zone of the city whose clock the releases follow, such as "
            + ABBREVIATIONS[name],
        )
    if name in ABBREVIATIONS:
        return (
            f"{quoted} is a legacy zone name, kept for old systems",
            "use the zone of the city whose clock the releases follow, such as "
            + ABBREVIATIONS[name],
        )
    if name in ZERO_OFFSET:
        return (
            f"{quoted} is a fixed UTC+00:00 zone: British releases would be an hour off "
            "in summer (BST)",
            "use 'Europe/London' for UK release times, or 'UTC' for a fixed UTC time",
        )
    match = ETC_GMT.match(name)
    if match:
        hours = -int(match.group(1))  # POSIX signs: Etc/GMT+5 is five hours behind UTC
        city = CITY_BY_OFFSET.get(hours)
        example = f", such as {city!r}" if city else ""
        return (
            f"{quoted} is a fixed {_offset(hours)} zone (its sign is inverted, POSIX style) "
            "without daylight-saving time",
            f"use the zone of the city whose clock the releases follow{example}",
        )
    target = links().get(name)
    if target in UTC_NAMES:
        return f"{quoted} is an old name of UTC", 'write timezone = "UTC"'
    if target is not None:
        return (
            f"{quoted} is an old alias of {target!r}, kept for compatibility",
            f'write timezone = "{target}"',
        )
    return (
        f"{quoted} is not a place's time zone",
        "use the zone of the city whose clock the releases follow, such as 'America/New_York'",
    )


def _key_line(text: str, key: str) -> int | None:
    """The line of show.toml that sets a top-level ``key``."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            return None
        if re.match(rf"^\"?{re.escape(key)}\"?\s*=", stripped):
            return number
    return None


def zone_problems(catalogue: Catalogue) -> tuple[Problem, ...]:
    """A warning for show.toml's ``timezone`` when :func:`zone_advice` has advice."""
    advice = zone_advice(catalogue.show.timezone)
    if advice is None:
        return ()
    path = catalogue.root / SHOW_TOML
    try:
        line = _key_line(path.read_text(encoding="utf-8-sig"), "timezone")
    except (OSError, UnicodeDecodeError):
        line = None
    message, hint = advice
    shown = f"{display_path(catalogue.root)}/{SHOW_TOML}"
    return (Problem(shown, line, "show", "timezone", message, hint),)


def zone_rules_digest(name: str) -> str:
    """A digest of the rules Python reads for the zone ``name``: the first file of that
    name on zoneinfo's search path (the system's zone database), else the ``tzdata``
    package's, as zoneinfo looks for them; "" if there is none. Part of every cache key
    that depends on the show's clock, so an update of the zone database is a change.
    Read once per process and search path (zoneinfo keeps the rules it loaded too)."""
    import zoneinfo

    return _zone_file_digest(name, tuple(zoneinfo.TZPATH))


@cache
def _zone_file_digest(name: str, search: tuple[str, ...]) -> str:
    import hashlib
    from pathlib import Path

    data = None
    for base in search:
        path = Path(base, name)
        if path.is_file():
            data = path.read_bytes()
            break
    if data is None:
        try:
            data = resources.files("tzdata.zoneinfo").joinpath(name).read_bytes()
        except (ImportError, OSError, ValueError):
            return ""
    return hashlib.blake2b(data, digest_size=16).hexdigest()
