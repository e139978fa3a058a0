"""``famfeeds run`` (act at every release moment) and ``famfeeds status`` (what it did).

Thin: options in, :mod:`famfeeds.delivery.release` does the work, log lines out.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from famfeeds.cli.options import PathParam, checked_templates, content_option, output_option
from famfeeds.cli.send import Duration, connections_option, rate_option

if TYPE_CHECKING:
    from famfeeds.delivery.release import Clock


def _clock(clock_file: Path | None) -> Clock:
    from famfeeds.delivery.release import FileClock, SystemClock

    return FileClock(clock_file) if clock_file is not None else SystemClock()


clock_option = click.option(
    "--clock-file",
    type=PathParam(dir_okay=False),
    default=None,
    help="Read the time from this file (one ISO 8601 date and time with an offset, read "
    "again every tenth of a second) instead of the system clock: for rehearsing a season "
    "against a test mail server. Mail is really sent.",
)


@click.command()
@content_option
@output_option
@click.option(
    "--templates",
    type=PathParam(file_okay=False),
    default=None,
    help="Folder of your own templates [default: ./templates if it exists].",
)
@click.option(
    "--once",
    is_flag=True,
    help="Do what is due now, then exit (for cron: the daemon and cron share one code path).",
)
@click.option(
    "--max-age",
    type=Duration(),
    default="7d",
    show_default=True,
    help="Send an issue only this long after it came out (a moment missed while famfeeds "
    "run was stopped is caught up within it).",
)
@click.option(
    "--smtp",
    "smtp_url",
    metavar="URL",
    help="The relay, as for famfeeds send [default: show.toml's smtp_url].",
)
@rate_option
@connections_option
@clock_option
def run(
    content: Path,
    output: Path,
    templates: Path | None,
    once: bool,
    max_age: timedelta,
    smtp_url: str | None,
    rate: float,
    connections: int,
    clock_file: Path | None,
) -> None:
    """Act at each release moment: build, publish, tell the WebSub hubs, send the issue.

    At every release moment (and at start, and when content/ or the templates change) it
    builds as of that day, runs show.toml's [publish] command when output/ changed, pings
    the hubs of [feeds] for each changed feed, and sends every issue that is out (and not
    older than --max-age) to the subscribers due by then, in that order, each step only
    after the one before it succeeded. Stop it at any point (Ctrl-C, SIGTERM, SIGKILL, a
    reboot) and start it again: nothing is sent twice and nothing due is skipped; what it
    did is in .famfeeds-state/run.sqlite3 (see famfeeds status).

    Exit status with --once: 0 when every step succeeded, 1 otherwise.

    \b
    Example:
        famfeeds run
        famfeeds run --once --max-age 2d     # from cron, every few minutes
    """
    from famfeeds.build.pipeline import check
    from famfeeds.delivery.engine import SendOptions
    from famfeeds.delivery.release import Runner, RunOptions, run_forever, run_lock, state_trouble
    from famfeeds.errors import FamfeedsError

    clock = _clock(clock_file)

    def log(line: str) -> None:
        try:
            stamp = clock.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        except Exception:  # a clock file being rewritten: the line still goes out
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"{stamp}  {line}", err=True)

    options = RunOptions(
        content=content,
        output=output,
        templates=checked_templates(templates),
        send=SendOptions(connections=connections, rate=rate),
        clock=clock,
        log=log,
        max_age=max_age,
        smtp_url=smtp_url,
    )
    runner = Runner(options)
    slug = check(content).show.slug
    stop, wake = threading.Event(), threading.Event()

    def stopping(signum: int, frame: Any) -> None:
        if stop.is_set():  # asked twice: go now (every step is safe to cut off)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        log("stopping after the current step (send the signal again to stop at once)")
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    try:
        runner.project.private_state()
    except OSError as exc:
        raise FamfeedsError(state_trouble(runner.project.state, exc)) from None
    with run_lock(runner.project, slug):
        if not once:
            log(f"famfeeds run started for {slug} (pid in .famfeeds-state/run-{slug}.lock)")
        code = run_forever(runner, stop, wake, once=once)
    if not once:
        log("famfeeds run stopped")
    sys.exit(code)


@click.command()
@content_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON, for scripts.")
@click.option(
    "--count", type=click.IntRange(1, 100), default=5, show_default=True, help="Moments to list."
)
@clock_option
def status(content: Path, as_json: bool, count: int, clock_file: Path | None) -> None:
    """Show the next moments famfeeds run acts at, and what it did at the last ones.

    \b
    Example:
        famfeeds status
        famfeeds status --json | jq '.next[0]'
    """
    from famfeeds.delivery.release import status as read_status

    found = read_status(content, _clock(clock_file), count)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    click.echo(f"{found['show']}: now {found['now']}")
    if found["next"]:
        click.echo("Next moments:")
        for moment in found["next"]:
            click.echo(f"  {moment['local']}  {'; '.join(moment['reasons'])}")
    else:
        click.echo("No moment is scheduled after now.")
    for waiting in found["deliveries"]:
        click.echo(f"Issue {waiting['issue']}: next subscribers due {waiting['local']}")
    if not found["steps"]:
        click.echo("famfeeds run has not run yet for this show.")
        return
    click.echo("Done lately (newest first):")
    for step in found["steps"][: count * 4]:
        mark = "ok" if step["ok"] else "FAILED"
        detail = step["detail"].splitlines()[0] if step["detail"] else ""
        click.echo(f"  {step['at']}  {mark:<6}  {step['moment']}: {step['step']}: {detail}")
