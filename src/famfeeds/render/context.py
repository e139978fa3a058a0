"""The one renderer signature (a :class:`RenderContext` in, files out), and the calendar
state the build hands to renderers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from famfeeds.render.memo import NO_MEMO, Memo
from famfeeds.render.personal import Letter

if TYPE_CHECKING:
    from jinja2 import Environment

    from famfeeds.planning import Plan


@dataclass(frozen=True)
class Published:
    """One event as last published (what famfeeds.lock records)."""

    sequence: int
    dtstamp: datetime
    """When this version of the event was first published (UTC)."""
    major: str
    """Fingerprint of the fields whose change raises SEQUENCE (date, time, title, status)."""
    minor: str
    """Fingerprint of every other field (description, link, ...)."""
    summary: str
    start: date | datetime
    cancelled: bool = False
    removed: bool = False
    """The episode left the content: the calendar keeps it as cancelled."""
    season: int = 0


EventStates = dict[str, Published]
"""Published events by key (the UID without the domain)."""


@dataclass(frozen=True)
class RenderContext:
    """Everything a renderer may read. The build computes it; nothing else is input."""

    plan: Plan
    as_of: date
    """The build's reference date, in the show's time zone."""
    env: Environment
    events: EventStates
    """The calendar's events as this build publishes them (SEQUENCE, DTSTAMP)."""
    letters: tuple[Letter, ...]
    """The newsletter issues out by ``as_of``, rendered."""
    memo: Memo = NO_MEMO
    """Bytes rendered before from the same inputs (famfeeds.render.memo); kept by the build."""


Renderer = Callable[[RenderContext], Mapping[str, bytes]]
"""A renderer: context in, files by their name under output/ out. Pure."""
