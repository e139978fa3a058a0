"""The one renderer signature (a :class:`RenderContext` in, files out), the calendar state
the build hands to renderers, and :data:`Call`, how a renderer calls its pure steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from famfeeds.render.personal import Letter

if TYPE_CHECKING:
    from jinja2 import Environment

    from famfeeds.plan.issues import Plan

R = TypeVar("R")


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


class Call(Protocol):
    """How a renderer calls a pure step worth remembering: ``call(step, *args)`` gives
    exactly ``step(*args)``. The build's evaluator (famfeeds.build.evaluate) remembers
    results by the step and its arguments; a renderer never says what a step depends on,
    so a step must take every input as an argument."""

    def __call__(self, step: Callable[..., R], /, *args: Any) -> R:
        """``step(*args)``."""
        ...


def direct(step: Callable[..., R], /, *args: Any) -> R:
    """The plain :data:`Call`: ``step(*args)`` (renderers called outside a build, tests)."""
    return step(*args)


@dataclass(frozen=True)
class RenderContext:
    """Everything a renderer may read. The build computes it; nothing else is input."""

    plan: Plan
    as_of: date
    """The build's reference date, in the show's time zone."""
    env: Environment
    events: EventStates
    """The calendar's events as this build publishes them (SEQUENCE, DTSTAMP)."""
    letters: Sequence[Letter]
    """The newsletter issues out by ``as_of``, rendered."""
    call: Call = direct
    """How renderers call their steps (:class:`Call`)."""
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Values derived from the fields above, worked out once for every renderer (scratch:
    not part of any key)."""


Renderer = Callable[[RenderContext], Mapping[str, bytes]]
"""A renderer: context in, files by their name under output/ out. Pure."""
