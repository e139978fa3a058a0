"""The moments at which a show's outputs change: what `famfeeds run` wakes for.

A build is a function of its reference day (see :mod:`famfeeds.build.pipeline`), and a
newsletter issue may be sent from its release moment on (:attr:`Issue.released_at`). So the
outputs change at each release instant (the start of its day for an all-day release), and an
issue becomes sendable at its own moment (a preview issue's is the start of its day). Moments
that fall on the same instant are one moment with several reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from famfeeds.plan.issues import Plan


@dataclass(frozen=True)
class Moment:
    """One instant at which something becomes true."""

    at: datetime
    """The instant, in UTC."""
    reasons: tuple[str, ...]
    """What happens then, in words ("S4 E1 \u201cGlasnost\u201d is out", "issue 2023-11-10")."""
    issues: tuple[str, ...] = ()
    """The slugs of the newsletter issues that become sendable at this instant."""

    @property
    def key(self) -> str:
        """A stable name for the moment (its instant), used by the run state."""
        return self.at.strftime("%Y-%m-%dT%H:%M:%SZ")


def moments(plan: Plan) -> list[Moment]:
    """Every moment of the plan, oldest first: each release instant (cancelled episodes
    change nothing) and each issue's release moment, those on one instant merged."""
    reasons: dict[datetime, list[str]] = {}
    issues: dict[datetime, list[str]] = {}
    for release in plan.schedule.releases:
        if release.cancelled:
            continue
        at = release.instant.astimezone(UTC)
        reasons.setdefault(at, []).append(
            f"{release.code} \u201c{release.episode.title}\u201d is out"
        )
    if plan.show.newsletter is not None:
        for issue in plan.issues:
            at = issue.released_at.astimezone(UTC)
            reasons.setdefault(at, []).append(f"issue {issue.slug}")
            issues.setdefault(at, []).append(issue.slug)
    return [Moment(at, tuple(reasons[at]), tuple(issues.get(at, ()))) for at in sorted(reasons)]


def due(found: list[Moment], after: datetime | None, now: datetime) -> list[Moment]:
    """The moments later than ``after`` (None: any) and at or before ``now``, oldest first."""
    return [m for m in found if m.at <= now and (after is None or m.at > after)]


def upcoming(found: list[Moment], now: datetime) -> list[Moment]:
    """The moments after ``now``, soonest first."""
    return [m for m in found if m.at > now]
