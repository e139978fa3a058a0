"""The one renderer signature (a :class:`RenderContext` in, files out), and the calendar
state the build hands to renderers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from famfeeds.render.memo import NO_MEMO, Memo
from famfeeds.render.personal import Letter

if TYPE_CHECKING:
    from jinja2 import Environment

    from famfeeds.plan.issues import Plan
    from famfeeds.records.models import Season, Show


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

    @cached_property
    def token(self) -> str:
        """Every field the calendar's bytes take from this state, as one string (a memo
        input): the fingerprints stand for the event's data, besides a removed event's."""
        text = (
            f"{self.sequence}/{self.dtstamp.isoformat()}/{self.major}/{self.minor}"
            f"/{self.cancelled:d}{self.removed:d}/{self.season}"
        )
        if self.removed:
            text += f"/{self.summary}/{self.start.isoformat()}"
        return text


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
    letters: Sequence[Letter]
    """The newsletter issues out by ``as_of``, rendered."""
    memo: Memo = NO_MEMO
    """Bytes rendered before from the same inputs (famfeeds.render.memo); kept by the build."""
    templates_key: str = ""
    """A digest of the templates and message catalogue ``env`` renders with (the build
    reads them); memo keys of templated output include it. Empty: nothing templated is
    remembered."""
    show_key: str = ""
    """A digest of the show's record (:func:`show_key`); worked out when asked for if empty."""
    season_keys: Mapping[int, str] = field(default_factory=dict)
    """A digest of each season's records (:func:`season_key`) by number, where the build
    already knows it; the rest are worked out when asked for."""
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Values derived from the fields above, worked out once for every renderer."""

    def season_key(self, season: Season) -> str:
        """What stands for one season in memo keys (see :func:`season_keys`)."""
        found = self.season_keys.get(season.number)
        if found is None:
            computed: dict[int, str] = self.shared.get("season_keys") or {}
            if not computed:
                computed = self.shared["season_keys"] = season_keys(self.plan)
            found = computed[season.number]
        return found

    def season_inputs_shared(self) -> tuple[str, str]:
        """Memo inputs standing for what everything made from the records shares: the
        show, the templates and the message catalogue."""
        return (self.templates_key, self.show_key or self.shared_show_key())

    def season_inputs(self, season: Season) -> tuple[str, str, str]:
        """Memo inputs standing for one season's records and what else is shared by all
        it is made into (:meth:`season_inputs_shared`)."""
        return (*self.season_inputs_shared(), self.season_key(season))

    def shared_show_key(self) -> str:
        """The show's digest, worked out once."""
        found: str | None = self.shared.get("show_key")
        if found is None:
            found = self.shared["show_key"] = show_key(self.plan.show)
        return found


def show_key(show: Show) -> str:
    """A digest of the show's record."""
    return _digest(show.model_dump_json())


def season_key(season: Season) -> str:
    """A digest of a season's records, its episodes' too, their source paths left out
    (famfeeds.records.models.season_digest, which the loader keeps in Catalogue.digests)."""
    from famfeeds.records.models import season_digest

    return season_digest(season)


def season_keys(plan: Plan, digests: Mapping[int, str] | None = None) -> dict[int, str]:
    """What stands for each season in memo keys, by number: the digest of its records
    (``digests``, else worked out), and the one thing its releases take from other
    seasons: the rank of a release that shares its day with an earlier season's (each
    release of a show has its own instant, a second apart)."""
    ranks: dict[int, list[str]] = {}
    for release in plan.schedule.releases:
        if release.rank:
            ranks.setdefault(release.season.number, []).append(
                f"{release.episode.number}:{release.rank}"
            )
    out = {}
    for season in plan.catalogue.seasons:
        digest = digests.get(season.number) if digests is not None else None
        digest = digest or season_key(season)
        extra = ranks.get(season.number)
        out[season.number] = f"{digest};{','.join(extra)}" if extra else digest
    return out


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


Renderer = Callable[[RenderContext], Mapping[str, bytes]]
"""A renderer: context in, files by their name under output/ out. Pure."""
