"""What famfeeds can honestly say about each issue, from its own records only.

famfeeds puts no tracking pixel and no redirecting link in any message, so it does not know
who opened or clicked anything, and does not pretend to. Every figure here comes from the
delivery ledger and the subscriber store, both opened read-only (``mode=ro``: reading a
report never changes either file):

- **sent, deferred, failed, uncertain**: the ledger's rows of the issue by state
  (``committing`` is *uncertain*; a row still ``sending``, left by a run that died before
  the message went out, counts as deferred: it will be sent).
- **hard bounces, complaints**: noted against the issue by ``famfeeds send`` (a refusal that
  blames the address) and ``famfeeds bounces`` (a returned DSN or an ARF report, matched to
  the issue by the keyed Message-ID of the message it returns, else the newest issue handed
  over to the address); **soft bounces**: the ledger's soft bounces of the issue.
  Complaints also count any ``complained`` status the store recorded by another way than an
  ARF report or an import, against an issue as unsubscribes are (below).
- **unsubscribes**: recipients who left the list within :data:`WINDOW` after the issue went
  out (its first delivery), each counted once, against the newest issue they had been sent
  by then, by how: ``one-click`` (RFC 8058, from the mail client),
  ``page`` (the unsubscribe page's button), ``complaint`` (a spam report), ``other`` (the
  CLI, an import). A bounce is not an unsubscribe.
- **list size**: confirmed subscribers over time, replayed from the store's history of
  status changes; an issue's **net growth** is the joins minus the leaves from when it went
  out until the next issue did (or now, for the newest); a leave by someone the issue was
  tried for counts from that issue on (see :func:`_period` for changes within the second an
  issue went out). Forgotten addresses leave no history, so they drop out of past sizes too.
- **rates**: complaints over messages delivered (sent), hard bounces over addresses tried
  (every row but ``sending``), against the show's ``complaint_rate_stop`` and
  ``bounce_rate_stop``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from famfeeds.errors import FamfeedsError, display_path

WINDOW = timedelta(days=7)
"""How long after an issue went out an unsubscribe is counted against it."""
UNSUBSCRIBE_SOURCES = ("one-click", "page", "complaint", "other")
TRACKING_NOTE = (
    "famfeeds puts no tracking pixel and no redirecting link in any message: these figures "
    "come only from the delivery ledger and the subscriber store (who was sent what, what "
    "bounced, who complained or unsubscribed), never from opens or clicks."
)
_SUPPRESSING = frozenset({"unsubscribed", "bounced", "complained"})
_STATUSES = ("pending", "confirmed", "unsubscribed", "bounced", "complained")
_NOT_A_SERVICE_COMPLAINT = frozenset({"complaint", "import"})
"""Sources of a ``complained`` status already counted (ARF) or not about an issue."""


@dataclass
class IssueFigures:
    """One issue's figures (see the module's rules)."""

    issue: str
    sent_at: str | None
    """The first delivery, UTC ``YYYY-MM-DDTHH:MM:SSZ`` (None when nothing went out)."""
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    uncertain: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    unsubscribes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(UNSUBSCRIBE_SOURCES, 0)
    )
    list_at_send: int = 0
    list_after: int = 0

    @property
    def tried(self) -> int:
        return self.sent + self.deferred + self.failed + self.uncertain

    @property
    def net_growth(self) -> int:
        return self.list_after - self.list_at_send

    @property
    def complaint_rate(self) -> float:
        """Complaints per message delivered (0 when nothing was)."""
        return self.complaints / self.sent if self.sent else 0.0

    @property
    def hard_bounce_rate(self) -> float:
        """Hard bounces per address tried (0 when nobody was)."""
        tried = self.sent + self.failed + self.uncertain
        return self.hard_bounces / tried if tried else 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unsubscribes_total"] = sum(self.unsubscribes.values())
        data["net_growth"] = self.net_growth
        data["complaint_rate"] = round(self.complaint_rate, 6)
        data["hard_bounce_rate"] = round(self.hard_bounce_rate, 6)
        return data


@dataclass
class Season:
    """Every issue of one show that the ledger knows, and the list's size over time."""

    show: str
    generated_at: str
    issues: list[IssueFigures]
    sizes: list[tuple[str, int]]
    """(UTC stamp, confirmed subscribers) after each change, oldest first."""
    list_now: int

    def issue(self, slug: str) -> IssueFigures | None:
        return next((i for i in self.issues if i.issue == slug), None)


def percent(rate: float) -> str:
    """A rate as people read it: 0.42%, 5%, 12.5%."""
    text = f"{rate * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def _read_only(path: Path, what: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to ``path`` (None when the file does not exist)."""
    if not path.exists():
        yield None
        return
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise FamfeedsError(f"cannot read {what} {display_path(path)}: {exc}") from None
    with closing(db):
        try:
            yield db
        except sqlite3.Error as exc:
            raise FamfeedsError(
                f"cannot read {what} {display_path(path)} (SQLite: {exc}): is it a famfeeds "
                "file, and readable?"
            ) from None


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


def read_season(ledger: Path, store: Path, show: str, *, now: datetime) -> Season:
    """Every issue of ``show`` in the ledger, with its figures, as of ``now``."""
    issues: dict[str, IssueFigures] = {}
    recipients: dict[str, set[str]] = {}
    touched: dict[str, set[str]] = {}
    """Per issue, everyone with a row but ``sending``: sent, uncertain, failed, deferred."""
    with _read_only(ledger, "the ledger") as db:
        if db is not None and _has_table(db, "deliveries"):
            for issue, state, count in db.execute(
                "SELECT issue, state, count(*) FROM deliveries WHERE show = ? "
                "GROUP BY issue, state",
                (show,),
            ):
                figures = issues.setdefault(issue, IssueFigures(issue, None))
                if state == "sent":
                    figures.sent += count
                elif state == "committing":
                    figures.uncertain += count
                elif state == "failed":
                    figures.failed += count
                else:  # deferred, or sending (a run died before the message went out)
                    figures.deferred += count
            for issue, first in db.execute(
                "SELECT issue, min(updated) FROM deliveries WHERE show = ? "
                "AND state IN ('sent', 'committing') GROUP BY issue",
                (show,),
            ):
                issues[issue].sent_at = _stamp(datetime.fromtimestamp(first, UTC))
            for issue, recipient in db.execute(
                "SELECT issue, recipient FROM deliveries WHERE show = ? "
                "AND state IN ('sent', 'committing')",
                (show,),
            ):
                recipients.setdefault(issue, set()).add(recipient)
            for issue, recipient in db.execute(
                "SELECT issue, recipient FROM deliveries WHERE show = ? AND state != 'sending'",
                (show,),
            ):
                touched.setdefault(issue, set()).add(recipient)
            if _has_table(db, "soft_bounces"):
                for issue, count in db.execute(
                    "SELECT issue, count(DISTINCT recipient) FROM soft_bounces WHERE show = ? "
                    "GROUP BY issue",
                    (show,),
                ):
                    if issue in issues:
                        issues[issue].soft_bounces = count
            if _has_table(db, "issue_reports"):
                for issue, kind, count in db.execute(
                    "SELECT issue, kind, count(*) FROM issue_reports WHERE show = ? "
                    "GROUP BY issue, kind",
                    (show,),
                ):
                    if issue not in issues:
                        continue
                    if kind == "hard":
                        issues[issue].hard_bounces = count
                    elif kind == "complaint":
                        issues[issue].complaints = count
    events: list[tuple[str, str, str, str, int]] = []
    with _read_only(store, "the subscriber store") as db:
        if db is not None and _has_table(db, "events"):
            marks = ",".join("?" * len(_STATUSES))
            events = db.execute(
                "SELECT e.at, e.event, e.source, lower(s.email), e.subscriber FROM events e "
                "JOIN subscribers s ON s.rowid = e.subscriber "
                f"WHERE e.show = ? AND e.event IN ({marks}) ORDER BY e.at, e.id",
                (show, *_STATUSES),
            ).fetchall()

    ordered = sorted(issues.values(), key=lambda f: f.issue)
    sizes: list[tuple[str, int]] = []
    status: dict[int, str] = {}
    confirmed = 0
    newest_first = sorted(
        (f for f in ordered if f.sent_at), key=lambda f: f.sent_at or "", reverse=True
    )
    received: dict[str, list[IssueFigures]] = {}
    """Each recipient's issues, newest first."""
    tried: dict[str, list[IssueFigures]] = {}
    """Each address's issues it was tried for, newest first."""
    for figures in newest_first:
        for recipient in recipients.get(figures.issue, ()):
            received.setdefault(recipient, []).append(figures)
        for recipient in touched.get(figures.issue, ()):
            tried.setdefault(recipient, []).append(figures)
    growth: dict[str, int] = {}
    """The net change of the list attributed to each issue ('' before the first)."""
    for at, event, source, address, who in events:
        before = status.get(who, "")
        status[who] = event if before not in _SUPPRESSING or event not in _SUPPRESSING else before
        after = status[who]
        change = (after == "confirmed") - (before == "confirmed")
        confirmed += change
        if change:
            period = _period(newest_first, tried.get(address, []), at, leaving=change < 0)
            growth[period] = growth.get(period, 0) + change
        if sizes and sizes[-1][0] == at:
            sizes[-1] = (at, confirmed)
        elif before != after or not sizes:
            sizes.append((at, confirmed))
        about = _answering(received.get(address, []), at)
        if about is None:
            continue
        if event == "complained" and source not in _NOT_A_SERVICE_COMPLAINT:
            about.complaints += 1
        if before in _SUPPRESSING or event not in ("unsubscribed", "complained"):
            continue
        how = "complaint" if event == "complained" else source
        about.unsubscribes[how if how in UNSUBSCRIBE_SOURCES else "other"] += 1
    size = growth.get("", 0)
    for figures in reversed(newest_first):
        figures.list_at_send = size
        size += growth.get(figures.issue, 0)
        figures.list_after = size
    return Season(show, _stamp(now), ordered, sizes, confirmed)


def _parse(stamp: str | None) -> datetime:
    assert stamp is not None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _answering(issues: list[IssueFigures], at: str) -> IssueFigures | None:
    """The issue a recipient's step at ``at`` answers: the newest one delivered to them by
    then, if ``at`` is within :data:`WINDOW` of its first delivery."""
    for figures in issues:  # newest first
        if figures.sent_at is not None and figures.sent_at <= at:
            return figures if at < _stamp(_parse(figures.sent_at) + WINDOW) else None
    return None


def _period(
    newest_first: list[IssueFigures], tried: list[IssueFigures], at: str, *, leaving: bool
) -> str:
    """The issue whose period a change of the list at ``at`` falls in ('' before the first
    issue). Times are whole seconds, so within the second an issue went out: someone who
    joins then joined before it; someone the issue was tried for who leaves then left after
    it (a bounce during the send, an unsubscribe from the message)."""
    by_time = next((f for f in newest_first if (f.sent_at or "") < at), None)
    if leaving:
        mine = next((f for f in tried if (f.sent_at or "") <= at), None)
        if mine is not None and (by_time is None or (mine.sent_at or "") > (by_time.sent_at or "")):
            return mine.issue
    return "" if by_time is None else by_time.issue


def previous_issue(season: Season, sending: str) -> IssueFigures | None:
    """The issue that went out last (by its first delivery) other than ``sending``."""
    out = [f for f in season.issues if f.sent_at and f.issue != sending and f.sent]
    return max(out, key=lambda f: (f.sent_at or "", f.issue), default=None)


# -- the HTML page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """The show's guard settings the rates are drawn against."""

    complaint_stop: float
    complaint_warn: float
    bounce_stop: float


BARS = (
    ("sent", "Sent"),
    ("deferred", "Deferred"),
    ("failed", "Failed"),
    ("uncertain", "Uncertain"),
    ("hard_bounces", "Hard bounces"),
    ("soft_bounces", "Soft bounces"),
    ("complaints", "Complaints"),
    ("unsubscribes_total", "Unsubscribes, 7 days"),
    ("net_growth", "Net list growth"),
)
"""The bars of each issue's chart: (figure, label)."""
LABELS = {
    "title": "Newsletter report",
    "generated": "Generated",
    "tracking": TRACKING_NOTE,
    "issues": "Issues",
    "issue": "Issue",
    "went_out": "first delivery",
    "no_issue": "The ledger holds no issue of this show yet: nothing was sent.",
    "list": "List size over time",
    "list_caption": "Confirmed subscribers after each change, from the subscriber store.",
    "list_now": "Confirmed subscribers now",
    "rates": "Rates against the thresholds",
    "rates_caption": (
        "Complaints per message delivered, against complaint_rate_stop (the next send stops "
        "above it) and complaint_rate_warn; hard bounces per address tried, against "
        "bounce_rate_stop (a send stops above it)."
    ),
    "rate": "Issue and rate",
    "figure": "Rate",
    "against": "Against the thresholds",
    "complaint_rate": "Complaint rate",
    "bounce_rate": "Hard-bounce rate",
    "stop": "stop at",
    "warn": "warn at",
    "unsubscribes": "Unsubscribes within 7 days, by how",
    "one-click": "one-click",
    "page": "page",
    "complaint": "complaint",
    "other": "other",
    "when": "When (UTC)",
    "size": "Subscribers",
}
"""The page's words: English, for the editor (readers never see this page)."""
BAR_WIDTH = 340
BAR_LABEL = 170
BAR_HEIGHT = 22


def _bars(figures: IssueFigures) -> dict[str, Any]:
    """One issue's bar chart: each figure's bar (scaled to the largest), in SVG units."""
    data = figures.as_json()
    values = [(key, label, int(data[key])) for key, label in BARS]
    top = max((abs(v) for _, _, v in values), default=0) or 1
    room = BAR_WIDTH - BAR_LABEL - 50
    bars = []
    for row, (key, label, value) in enumerate(values):
        width = round(abs(value) / top * room, 1)
        bars.append(
            {
                "key": key.replace("_", "-"),
                "label": label,
                "value": value,
                "text": f"{value:+d}" if key == "net_growth" and value else str(value),
                "y": row * BAR_HEIGHT,
                "width": max(width, 1.5) if value else 0,
            }
        )
    return {"bars": bars, "height": len(bars) * BAR_HEIGHT, "label_width": BAR_LABEL}


def _size_chart(season: Season, now: str) -> dict[str, Any]:
    """The list's size over time as an SVG step line (0..1000 by 0..300 units)."""
    points = list(season.sizes)
    if not points:
        return {"path": "", "area": "", "points": [], "top": 0, "start": "", "end": ""}
    if points[-1][0] < now:
        points.append((now, points[-1][1]))
    first, last = _parse(points[0][0]), _parse(points[-1][0])
    span = (last - first).total_seconds() or 1.0
    top = max(count for _, count in points) or 1
    coords: list[tuple[float, float]] = []
    for at, count in points:
        x = round((_parse(at) - first).total_seconds() / span * 1000, 2)
        y = round(300 - count / top * 280, 2)
        if coords:
            coords.append((x, coords[-1][1]))
        coords.append((x, y))
    line = "M" + " L".join(f"{x},{y}" for x, y in coords)
    area = f"{line} L{coords[-1][0]},300 L{coords[0][0]},300 Z"
    return {
        "path": line,
        "area": area,
        "points": points,
        "top": top,
        "start": _when(points[0][0], points[-1][0]),
        "end": _when(points[-1][0], points[0][0]),
    }


def _when(stamp: str, other: str) -> str:
    """An axis label: the day, or the day and time (UTC) when both ends share a day."""
    return stamp[:10] if stamp[:10] != other[:10] else f"{stamp[:10]} {stamp[11:16]} UTC"


def _rate(rate: float, stop: float, warn: float | None) -> dict[str, Any]:
    """A rate's bar against its thresholds, on a scale up to twice the stop (or the rate)."""
    scale = max(stop * 2, rate, 1e-9)
    level = "stop" if rate > stop else "warn" if warn is not None and rate > warn else "ok"
    return {
        "width": round(min(rate / scale, 1.0) * 1000, 1),
        "stop": round(stop / scale * 1000, 1),
        "warn": None if warn is None else round(warn / scale * 1000, 1),
        "text": percent(rate),
        "stop_text": percent(stop),
        "warn_text": None if warn is None else percent(warn),
        "level": level,
    }


def render_html(season: Season, thresholds: Thresholds, title: str) -> str:
    """The report as one static HTML page: inline CSS and SVG, no script, nothing external
    (``templates/report.html.j2``)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from famfeeds.build.project import shipped_templates

    env = Environment(
        loader=FileSystemLoader(shipped_templates()),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    issues = [
        {
            "figures": f,
            "data": f.as_json(),
            "chart": _bars(f),
            "complaint": _rate(
                f.complaint_rate, thresholds.complaint_stop, thresholds.complaint_warn
            ),
            "bounce": _rate(f.hard_bounce_rate, thresholds.bounce_stop, None),
        }
        for f in season.issues
    ]
    return env.get_template("report.html.j2").render(
        labels=LABELS,
        title=title,
        season=season,
        issues=issues,
        sizes=_size_chart(season, season.generated_at),
        thresholds=thresholds,
        sources=UNSUBSCRIBE_SOURCES,
        bar_width=BAR_WIDTH,
    )
