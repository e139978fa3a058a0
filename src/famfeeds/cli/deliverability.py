"""The ``dkim`` command group: make the key famfeeds signs every message with.

Registered lazily on the ``famfeeds`` group (:data:`famfeeds.cli.LAZY_COMMANDS`). Thin:
options in, one call into :mod:`famfeeds.delivery.dkim`, the record to publish out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from famfeeds.cli.options import PathParam, content_option

if TYPE_CHECKING:
    from pathlib import Path


@click.group()
def dkim() -> None:
    """Make the DKIM key that signs every message famfeeds sends.

    Receivers such as Gmail, Yahoo and Outlook expect bulk mail to carry a DKIM signature of
    the From domain, covering the one-click unsubscribe headers. `famfeeds dkim new` writes
    a key and prints the DNS record to publish and the show.toml line that turns signing on.

    \b
    Example:
        famfeeds dkim new --selector ff2026 --domain example.org
    """


@dkim.command()
@click.option(
    "--selector",
    required=True,
    metavar="NAME",
    help="The key's name in DNS, e.g. ff2026 (a new one for each new key; the record is "
    "SELECTOR._domainkey.DOMAIN).",
)
@click.option(
    "--domain",
    required=True,
    metavar="DOMAIN",
    help="The signing domain (d=): your From address's domain, or a parent of it.",
)
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["rsa", "ed25519"]),
    default="rsa",
    show_default=True,
    help="RSA (2048 bits), which every receiver verifies, or Ed25519 (RFC 8463), which "
    "many cannot verify yet (to them the mail is unsigned).",
)
@click.option(
    "--out",
    type=PathParam(dir_okay=False),
    default=None,
    help="Where to write the private key (mode 0600; never over an existing file) "
    "[default: .famfeeds-state/dkim/SELECTOR.DOMAIN.pem beside the content folder, "
    "the private, git-ignored state folder].",
)
@content_option
def new(selector: str, domain: str, key_type: str, out: Path | None, content: Path) -> None:
    """Write a new DKIM private key and print the DNS TXT record to publish.

    The key file is created with mode 0600 and is never printed. The record goes into the
    DNS zone of DOMAIN at SELECTOR._domainkey.DOMAIN, split into strings of at most 255
    characters as zone files need. Once it is published, add the printed dkim line to
    show.toml's [newsletter] table: from then on famfeeds signs every message it sends.

    \b
    Example:
        famfeeds dkim new --selector ff2026 --domain example.org
        famfeeds dkim new --selector ff2026e --domain example.org --type ed25519
    """
    from pathlib import Path

    from pydantic import ValidationError

    from famfeeds.build.project import Project
    from famfeeds.delivery.dkim import load_signer, txt_strings, write_new_key, zone_line
    from famfeeds.errors import FamfeedsError, display_path
    from famfeeds.records.models import Dkim

    try:
        setting = Dkim(selector=selector, domain=domain, key="key.pem")
    except ValidationError as exc:
        error = exc.errors()[0]
        option = f"--{error['loc'][0]}" if error["loc"] else "--selector/--domain"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise click.BadParameter(message, param_hint=option) from None
    project = Project.of(content)
    if out is None:
        if not project.content.is_dir():
            raise FamfeedsError(
                f"no content folder {display_path(content)}: run this in the project folder, "
                "or give --content (or --out for the key file)"
            )
        folder = project.private_state() / "dkim"
        out = folder / f"{setting.selector}.{setting.domain}.pem"
    out = Path(out).absolute()
    write_new_key(out, "rsa" if key_type == "rsa" else "ed25519")
    try:
        relative = out.resolve().relative_to(project.root).as_posix()
    except ValueError:
        relative = str(out)
    setting = setting.model_copy(update={"key": relative})
    signer = load_signer(setting, project.root)
    kind = f"RSA {signer.bits}-bit" if signer.key_type == "rsa" else "Ed25519"
    strings = txt_strings(signer.record)
    click.echo(
        f"Wrote a new {kind} DKIM private key to {display_path(out)} (mode 0600). Keep it "
        "secret and back it up; it stays on this machine."
    )
    click.echo(f"\n1. Publish this TXT record in the DNS zone of {signer.domain}:\n")
    click.echo(f"   {zone_line(signer)}")
    click.echo(f"\n   name:  {signer.record_name}")
    if len(strings) > 1:
        click.echo(
            f"   value (one record of {len(strings)} strings of at most 255 characters; a "
            "DNS provider's web form usually takes the whole value and splits it itself):"
        )
    else:
        click.echo("   value:")
    click.echo(f"   {signer.record}")
    line = (
        f'dkim = {{ selector = "{signer.selector}", domain = "{signer.domain}", '
        f"key = {json.dumps(setting.key, ensure_ascii=False)} }}"
    )
    click.echo(f"\n2. Then add this line to show.toml's [newsletter] table:\n\n   {line}\n")
    click.echo(
        "Publish the record first and add the line once the record answers (famfeeds "
        "doctor checks it): mail signed with a key receivers cannot find fails DKIM."
    )
    if signer.key_type == "ed25519":
        click.echo(
            "\nKeep an RSA key beside this Ed25519 one: most receivers do not verify Ed25519 "
            "signatures yet (RFC 8463), so to them mail signed with it alone is unsigned. "
            "Make one with famfeeds dkim new (RSA by default) under another selector and list "
            "both tables: dkim = [{ ... }, { ... }]; famfeeds then signs with each, RSA first."
        )
