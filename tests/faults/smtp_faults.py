"""A scriptable SMTP server on loopback (aiosmtpd) that fails on purpose, and counts.

    faults = Faults()
    faults.reply_at("RCPT", "550 5.1.1 no such user", address="fan3@example.com")
    faults.after_dot = "drop"                      # store the message, then hang up
    with serve(faults) as url:
        ...famfeeds send ... --smtp url
    assert faults.stored == Counter({...})        # judged at the server, never the client

Steps a reply can be scripted at: "MAIL", "RCPT", "DATA" (instead of 354) and "DOT" (the
answer to the final "."). After the "." the server may also "drop" (store, then close
without a word), answer "late" (``late_seconds``), or answer "garbage" (no reply code).
``max_sessions`` refuses sessions beyond that many open at once with a 421 at the greeting;
``refuse_first`` refuses the first N sessions. Every AUTH is recorded with whether the
session was encrypted; every stored message is counted per recipient the moment the server
has it (before it answers), which is what "delivered" means.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

GREETING_REFUSAL = "421 4.7.0 too many connections, try later"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Faults:
    """The script and the record of one fault server (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        self.after_dot = "answer"
        """"answer", "drop", "late" or "garbage"."""
        self.after_dot_for: set[str] | None = None
        """Only these recipients get ``after_dot`` (None: everyone)."""
        self.late_seconds = 1.0
        self.max_sessions: int | None = None
        self.refuse_first = 0
        self.slow_seconds = 0.0
        """A pause before answering each "." (keeps a send busy, for overlap and kill tests)."""
        self.sessions = 0
        self.open_sessions = 0
        self.refused_sessions = 0
        self.stored: Counter[str] = Counter()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.mail_options: list[list[str]] = []
        self.auth: list[bool] = []
        """One entry per AUTH command: True when the session was encrypted."""
        self.in_data = threading.Event()
        """Set once a message is complete at the server, before it answers."""
        self.hold = threading.Event()
        """While set, each "." waits to be answered: a send kept busy until the test lets go."""

    def reply_at(self, step: str, reply: str, address: str | None = None, times: int = 1) -> None:
        """Answer ``reply`` at ``step`` (for ``address`` only, if given), ``times`` times."""
        with self.lock:
            self.script[(step, address.lower() if address else None)] += [reply] * times

    def take(self, step: str, address: str | None = None) -> str | None:
        with self.lock:
            for key in ((step, address.lower() if address else None), (step, None)):
                if self.script.get(key):
                    return self.script[key].pop(0)
        return None

    def parsed(self, address: str) -> EmailMessage:
        (content,) = [c for _, r, c in self.messages if address in r]
        message = email.message_from_bytes(content, policy=policy.default)
        assert not message.defects, message.defects
        return message  # type: ignore[return-value]


class ScriptedSMTP(SMTP):
    """aiosmtpd's SMTP with a greeting that can refuse, and a scriptable DATA."""

    def __init__(self, handler: Any, faults: Faults, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.faults = faults

    async def _handle_client(self) -> None:
        f = self.faults
        with f.lock:
            f.sessions += 1
            refuse = f.sessions <= f.refuse_first or (
                f.max_sessions is not None and f.open_sessions >= f.max_sessions
            )
            if refuse:
                f.refused_sessions += 1
            else:
                f.open_sessions += 1
        if refuse:
            await self.push(GREETING_REFUSAL)
            assert self.transport is not None
            self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            with f.lock:
                f.open_sessions -= 1

    async def smtp_AUTH(self, arg: str) -> None:
        with self.faults.lock:
            self.faults.auth.append(self._tls_protocol is not None)
        await super().smtp_AUTH(arg)

    async def smtp_DATA(self, arg: str) -> None:
        recipients = self.envelope.rcpt_tos if self.envelope is not None else []
        reply = self.faults.take("DATA", recipients[0]) if recipients else None
        if reply is not None:
            await self.push(reply)
            return
        await super().smtp_DATA(arg)


class Handler:
    """The hooks: scripted replies, and the count of stored messages."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.faults.take("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        with self.faults.lock:
            self.faults.mail_options.append(list(mail_options))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.faults.take("RCPT", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        f = self.faults
        recipients = [r.lower() for r in envelope.rcpt_tos]
        reply = f.take("DOT", recipients[0] if recipients else None)
        if reply is None or reply.startswith("250"):
            with f.lock:  # the server has the message: from here on it is delivered
                f.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                f.stored.update(recipients)
        f.in_data.set()
        while f.hold.is_set():
            await asyncio.sleep(0.01)
        if f.slow_seconds:
            await asyncio.sleep(f.slow_seconds)
        chosen = f.after_dot_for is None or bool(set(recipients) & f.after_dot_for)
        if chosen and f.after_dot == "drop":
            server.transport.close()
            await asyncio.Event().wait()  # cancelled when the connection goes
        if chosen and f.after_dot == "late":
            await asyncio.sleep(f.late_seconds)
        if chosen and f.after_dot == "garbage":
            return "this is not an SMTP reply"
        return reply or "250 2.0.0 queued"


class FaultController(Controller):
    def __init__(self, faults: Faults, **kwargs: Any) -> None:
        self.faults = faults
        super().__init__(Handler(faults), hostname="127.0.0.1", port=free_port(), **kwargs)

    def factory(self) -> SMTP:
        return ScriptedSMTP(self.handler, self.faults, **self.SMTP_kwargs)


@contextlib.contextmanager
def serve(faults: Faults, **kwargs: Any) -> Iterator[str]:
    """Run a fault server; yields its smtp:// URL."""
    controller = FaultController(faults, **kwargs)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


# -- running famfeeds send against it ---------------------------------------------------------

ISSUE = "2023-11-24"
NOW = "2023-11-24T09:00"
"""The shipped season's issue of 2023-11-24 is out (all-day releases) by this moment in the
show's zone, and young enough for the default --max-age."""


def people(n: int, domain: str = "example.com") -> list[str]:
    return [f"fan{i}@{domain},Fan {i},tok{i}" for i in range(n)]


def addresses(n: int, domain: str = "example.com") -> list[str]:
    return [f"fan{i}@{domain}" for i in range(n)]


def write_csv(root: Path, rows: list[str], header: str = "email,name,token") -> Path:
    path = root / "subscribers.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def send_args(content: Path, csv: Path | None, url: str, *extra: str) -> list[str]:
    """The arguments of ``famfeeds send`` for the issue of 2023-11-24 at NOW."""
    args = ["send", ISSUE, "--content", str(content), "--smtp", url, "--now", NOW]
    args += ["--retry-wait", "0.05"]
    if csv is not None:
        args += ["--subscribers", str(csv)]
    return [*args, *extra]


def famfeeds(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real command in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "famfeeds", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        check=False,
    )


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}


def ledger_states(root: Path) -> dict[str, str]:
    path = root / ".famfeeds-state" / "ledger.sqlite3"
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT recipient, state FROM deliveries WHERE issue = ?", (ISSUE,)
        ).fetchall()
    return dict(rows)
