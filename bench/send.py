"""Delivery and personalisation speed, on loopback; run by hand (needs the test extra).

    python bench/send.py [--subscribers 10000]

A sink SMTP server (aiosmtpd, accepting and discarding) runs in a separate process.
Measured: famfeeds' sender with 1 and 4 connections, beside a bare smtplib loop that
sends the same bytes over one connection; and personalising 100,000 messages.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import smtplib
import socket
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def serve(port: int, ready: multiprocessing.synchronize.Event) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--personalise", type=int, default=100_000)
    args = parser.parse_args()

    from famfeeds.build.pipeline import render
    from famfeeds.delivery.csvlist import Subscriber
    from famfeeds.delivery.engine import SendOptions, plan_sends, send_issue
    from famfeeds.delivery.smtp import SmtpTarget
    from famfeeds.render.message import MessageTemplate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "content", root / "content")
        build = render(root / "content", templates=REPO / "templates", as_of=date(2024, 1, 31))
        template = MessageTemplate.of(build.letters[3].item)
        subs = [
            Subscriber(f"fan{i}@example.com", f"Fan {i}", f"token-{i:06d}")
            for i in range(args.subscribers)
        ]

        moment = datetime.now(UTC)
        start = time.perf_counter()
        for i in range(args.personalise):
            sub = subs[i % len(subs)]
            template.render(sub.email, sub.name, sub.token, date=moment)
        personalise = args.personalise / (time.perf_counter() - start)

        port = free_port()
        ready = multiprocessing.Event()
        sink = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
        sink.start()
        ready.wait(30)
        target = SmtpTarget("smtp", "127.0.0.1", port)
        rates = {}
        try:
            messages = [template.render(s.email, s.name, s.token) for s in subs]
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for sub, message in zip(subs, messages, strict=True):
                    smtp.sendmail("news@famfeeds.example.org", [sub.email], message)
            rates["bare smtplib loop, 1 connection (pre-rendered)"] = len(subs) / (
                time.perf_counter() - start
            )
            for k in (1, 4):
                ledger = root / f"ledger-{k}.sqlite3"
                start = time.perf_counter()
                options = SendOptions(connections=k)
                outcome = send_issue(
                    template,
                    plan_sends(subs, {}, options),
                    target=target,
                    password=None,
                    ledger_path=ledger,
                    options=options,
                )
                assert len(outcome.sent) == len(subs), outcome
                rates[f"famfeeds send, {k} connection(s)"] = len(subs) / (
                    time.perf_counter() - start
                )
        finally:
            sink.terminate()

    width = max(map(len, rates)) + 2
    print(
        f"{'personalise (no sending)':<{width}} {personalise:10,.0f} messages/s (target >= 20,000)"
    )
    for label, rate in rates.items():
        print(f"{label:<{width}} {rate:10,.0f} messages/s")
    bare = rates["bare smtplib loop, 1 connection (pre-rendered)"]
    one = rates["famfeeds send, 1 connection(s)"]
    four = rates["famfeeds send, 4 connection(s)"]
    print(
        f"\n1 connection / bare: {one / bare:.2f} (target >= 0.70); "
        f"4 connections / bare: {four / bare:.2f} (target > 1)"
    )


if __name__ == "__main__":
    sys.exit(main())
