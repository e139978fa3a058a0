"""The ``doctor`` command: check the sending domain (SPF, DKIM, DMARC, MX), the one-click
unsubscribe and the relay's TLS before the first send.

Registered lazily on the ``famfeeds`` group (see :data:`famfeeds.cli.LAZY_COMMANDS`). Thin:
options in, one call into :mod:`famfeeds.delivery.doctor`, a table (or JSON) and an exit
code out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from famfeeds.cli.options import content_option

if TYPE_CHECKING:
    from famfeeds.delivery.doctor import Checkup

STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red"}
LABELS = {
    "spf": "SPF record",
    "spf_lookups": "SPF look-ups",
    "spf_relay": "SPF authorises relay",
    "dkim": "DKIM key",
    "dkim_rsa": "DKIM RSA key",
    "dmarc": "DMARC record",
    "dmarc_alignment": "DMARC alignment",
    "mx": "MX (bounces)",
    "unsubscribe_https": "Unsubscribe https",
    "one_click": "One-click POST",
    "tls": "Relay TLS",
}


@click.command()
@content_option
@click.option(
    "--smtp",
    "smtp_url",
    metavar="URL",
    help="The relay to check, smtp://host:port or smtps://host:465 [default: show.toml's "
    "smtp_url]. No password is needed: doctor never logs in.",
)
@click.option(
    "--nameserver",
    metavar="HOST[:PORT]",
    envvar="FAMFEEDS_NAMESERVER",
    show_envvar=True,
    help="The DNS server to ask [default: the system's].",
)
@click.option("--json", "as_json", is_flag=True, help="Print every line as JSON, for scripts.")
def doctor(content: Path, smtp_url: str | None, nameserver: str | None, as_json: bool) -> None:
    """Check the sending domain before the first send: SPF, DKIM, DMARC, MX, unsubscribe, TLS.

    Looks, as a receiving mail server would, at the From domain (sender_address) and the
    bounce domain (bounce_address): one valid SPF record needing at most 10 DNS look-ups
    that authorises the relay (relay_spf, or smtp_url's host); the DKIM record of each key
    (dkim, relay_dkim); a DMARC record aligned with SPF or DKIM; MX for bounces. Then it
    posts a one-click unsubscribe with a token nobody holds (nothing changes) and asks the
    relay for TLS. Each line passes, warns or fails, and says what to publish or change.

    Exit status: 0 when no line failed (warnings included), 1 when one did.

    \b
    Example:
        famfeeds doctor
        famfeeds doctor --nameserver 127.0.0.1:5353 --json
    """
    from famfeeds.build.pipeline import check
    from famfeeds.build.project import Project
    from famfeeds.delivery.doctor import examine
    from famfeeds.errors import FamfeedsError

    planned = check(content)
    newsletter = planned.show.newsletter
    if newsletter is None:
        raise FamfeedsError("show.toml has no [newsletter] table: there is no mail to check")
    checkup = examine(
        newsletter,
        nameserver=nameserver,
        smtp_url=smtp_url,
        base=Project.of(content).root,
    )
    if as_json:
        click.echo(json.dumps(checkup.as_json(), ensure_ascii=False, indent=2))
    else:
        print_checkup(checkup)
    raise SystemExit(checkup.exit_code)


def print_checkup(checkup: Checkup, console: object | None = None) -> None:
    """The lines as a rich table (markup in found text is never interpreted), then a
    one-line summary."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = console if isinstance(console, Console) else Console(highlight=False)
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    grid.add_column("Check", no_wrap=True)
    grid.add_column("For", overflow="fold")
    grid.add_column("Result", no_wrap=True)
    grid.add_column("Found, and what to do", overflow="fold", ratio=1)
    for line in checkup.lines:
        said = Text(line.found)
        if line.fix:
            said.append("\n→ " + line.fix, style="bold")
        grid.add_row(
            Text(LABELS.get(line.check, line.check)),
            Text(line.subject),
            Text(line.status, style=STYLES[line.status]),
            said,
        )
    out.print(grid)
    failed, warned = len(checkup.failed), len(checkup.warnings)
    passed = len(checkup.lines) - failed - warned
    summary = f"{passed} passed, {warned} warned, {failed} failed."
    if failed:
        summary += " Fix the failed lines before a bulk send: providers reject such mail."
    out.print(Text(summary, style="bold red" if failed else "bold"))
