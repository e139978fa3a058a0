"""The ``report`` command: what each issue did, from the ledger and the subscriber store.

Registered lazily on the ``famfeeds`` group (see :data:`famfeeds.cli.LAZY_COMMANDS`). Thin:
the figures come from :mod:`famfeeds.delivery.report` (read-only), printed as a rich table,
as JSON, or written as one static HTML page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from famfeeds.cli.options import PathParam, content_option

if TYPE_CHECKING:
    from famfeeds.delivery.report import Season, Thresholds


@click.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--html",
    "html",
    type=PathParam(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the report as one static HTML page (charts in SVG, no script, nothing "
    "loaded from elsewhere).",
)
@content_option
def report(issue: str | None, as_json: bool, html: Path | None, content: Path) -> None:
    """Report what each issue did, from the ledger and the subscriber store (no tracking).

    Per issue: sent, deferred, failed and uncertain deliveries, hard and soft bounces,
    complaints, unsubscribes within 7 days by how (one-click, the page, a complaint, other) and the
    net growth of the list; and the complaint and hard-bounce rates against show.toml's
    complaint_rate_stop and bounce_rate_stop. ISSUE is an issue's date, or latest (the
    newest issue sent); without it, every issue. famfeeds puts no tracking pixel and no
    redirecting link in any message, so there are no opens or clicks to report. Nothing
    is changed: both files are opened read-only.

    \b
    Example:
        famfeeds report
        famfeeds report latest --json
        famfeeds report --html report.html
    """
    from famfeeds.build.pipeline import check
    from famfeeds.build.project import Project
    from famfeeds.build.writer import atomic_write
    from famfeeds.delivery.engine import utc_now
    from famfeeds.delivery.report import TRACKING_NOTE, Thresholds, read_season, render_html
    from famfeeds.errors import FamfeedsError, display_path

    planned = check(content)
    newsletter = planned.show.newsletter
    if newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: there is nothing to report")
    project = Project.of(content)
    show = planned.show.slug
    season = read_season(project.ledger, project.store, show, now=utc_now())
    if issue is not None:
        season.issues = [_pick(season, issue, show)]
    thresholds = Thresholds(
        newsletter.complaint_rate_stop, newsletter.complaint_rate_warn, newsletter.bounce_rate_stop
    )
    if html is not None:
        page = render_html(season, thresholds, planned.show.title)
        try:
            atomic_write(html, page.encode("utf-8"))
        except OSError as exc:
            raise FamfeedsError(f"cannot write {display_path(html)}: {exc.strerror}") from None
    if as_json:
        click.echo(json.dumps(_json(season, thresholds), ensure_ascii=False, indent=2))
        return
    _print(season, thresholds, planned.show.title)
    click.echo(TRACKING_NOTE)
    if html is not None:
        click.echo(f"Wrote {display_path(html)}.")


def _pick(season: Season, wanted: str, show: str) -> Any:
    """The issue asked for: its date, or ``latest`` (the newest with a delivery)."""
    from famfeeds.errors import FamfeedsError

    if wanted == "latest":
        out = [f for f in season.issues if f.sent_at]
        if out:
            return out[-1]
        raise FamfeedsError(f"no issue of {show} was sent yet: nothing to report")
    found = season.issue(wanted.strip())
    if found is None:
        known = ", ".join(f.issue for f in season.issues) or "none yet"
        raise FamfeedsError(
            f"the ledger has no issue {wanted!r} of {show} (issues it knows: {known}); "
            "give an issue's date, YYYY-MM-DD, or latest"
        )
    return found


def _json(season: Season, thresholds: Thresholds) -> dict[str, Any]:
    from famfeeds.delivery.report import TRACKING_NOTE

    return {
        "show": season.show,
        "generated_at": season.generated_at,
        "tracking": TRACKING_NOTE,
        "thresholds": {
            "complaint_rate_stop": thresholds.complaint_stop,
            "complaint_rate_warn": thresholds.complaint_warn,
            "bounce_rate_stop": thresholds.bounce_stop,
        },
        "list_now": season.list_now,
        "list_sizes": [{"at": at, "confirmed": n} for at, n in season.sizes],
        "issues": [f.as_json() for f in season.issues],
    }


def _print(season: Season, thresholds: Thresholds, title: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from famfeeds.delivery.report import UNSUBSCRIBE_SOURCES, percent

    out = Console(highlight=False)
    out.print(
        Text.assemble(
            (title, "bold"), f" · {len(season.issues)} issue(s) · as of {season.generated_at}"
        )
    )
    if not season.issues:
        out.print("The ledger holds no issue of this show yet: nothing was sent.")
        return

    def rate(value: float, stop: float, warn: float | None) -> Text:
        style = "bold red" if value > stop else "yellow" if warn and value > warn else ""
        return Text(percent(value), style=style)

    def table(headers: tuple[str, ...], rows: list[list[str | Text]]) -> Table:
        """A table whose figures are never cut: each column is at least as wide as its
        widest value (a narrow terminal wraps the headers instead)."""
        grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
        for number, header in enumerate(headers):
            widest = max(len(str(row[number])) for row in rows)
            grid.add_column(
                header,
                justify="left" if number == 0 else "right",
                min_width=widest,
                overflow="fold",
            )
        for row in rows:
            grid.add_row(*row)
        return grid

    deliveries: list[list[str | Text]] = [
        [
            f.issue,
            *(str(n) for n in (f.sent, f.deferred, f.failed, f.uncertain, f.hard_bounces)),
            str(f.soft_bounces),
            rate(f.hard_bounce_rate, thresholds.bounce_stop, None),
        ]
        for f in season.issues
    ]
    headers: tuple[str, ...] = ("Issue", "Sent", "Deferred", "Failed", "Uncertain",
                                "Hard bounces", "Soft bounces", "Bounce rate")  # fmt: skip
    out.print(table(headers, deliveries))
    readers: list[list[str | Text]] = [
        [
            f.issue,
            str(f.complaints),
            rate(f.complaint_rate, thresholds.complaint_stop, thresholds.complaint_warn),
            f"{sum(f.unsubscribes.values())} ("
            + "/".join(str(f.unsubscribes[k]) for k in UNSUBSCRIBE_SOURCES)
            + ")",
            f"{f.net_growth:+d}",
        ]
        for f in season.issues
    ]
    headers = ("Issue", "Complaints", "Complaint rate",
               "Unsubscribes within 7 days (one-click/page/complaint/other)",
               "Net growth")  # fmt: skip
    out.print(table(headers, readers))
    out.print(
        f"Confirmed subscribers now: {season.list_now}. Thresholds: complaints stop the next "
        f"send over {percent(thresholds.complaint_stop)} (warn over "
        f"{percent(thresholds.complaint_warn)}); hard bounces stop a send over "
        f"{percent(thresholds.bounce_stop)}."
    )
