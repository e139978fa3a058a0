"""Load the preview server on loopback with many concurrent clients; run by hand.

    python bench/serve_load.py [--clients 200] [--seconds 5] [--mode close|keepalive|both]

Starts a real `famfeeds serve --port 0` on a copy of the shipped season, then runs
--clients concurrent clients (asyncio, raw HTTP/1.1) for --seconds: each asks in turn for
the page, the Atom feed, the calendar and the archive, on a new connection per request
(`close`: what exercises the listen backlog and accept loop) or on one kept-alive connection
per client (`keepalive`). Everything stops by itself. Prints requests/s, errors (refused,
reset, timed out, or any status but 200) and latency (median, 99th percentile, worst).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = (b"/", b"/feed.xml", b"/calendar.ics", b"/newsletter/")
TIMEOUT = 30.0


@dataclass
class Tally:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if length:
        await reader.readexactly(int(length.group(1)))
    return status


async def client(port: int, host: bytes, deadline: float, keepalive: bool, tally: Tally) -> None:
    number = 0
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.monotonic() < deadline:
        path = PATHS[number % len(PATHS)]
        number += 1
        start = time.monotonic()
        try:
            if connection is None:
                connection = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), TIMEOUT
                )
            reader, writer = connection
            close = b"" if keepalive else b"Connection: close\r\n"
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + close + b"\r\n")
            status = await asyncio.wait_for(read_response(reader), TIMEOUT)
        except TimeoutError:
            tally.error("timed out")
            await _drop(connection)
            connection = None
            continue
        except (OSError, asyncio.IncompleteReadError) as exc:
            tally.error(type(exc).__name__)
            await _drop(connection)
            connection = None
            continue
        tally.latencies.append(time.monotonic() - start)
        if status == 200:
            tally.ok += 1
        else:
            tally.error(f"HTTP {status}")
        if not keepalive:
            await _drop(connection)
            connection = None
    await _drop(connection)


async def _drop(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
) -> None:
    if connection is not None:
        connection[1].close()
        with contextlib.suppress(OSError):
            await connection[1].wait_closed()


async def load(port: int, clients: int, seconds: float, keepalive: bool) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    deadline = start + seconds
    host = f"127.0.0.1:{port}".encode()
    await asyncio.gather(*(client(port, host, deadline, keepalive, tally) for _ in range(clients)))
    return tally, time.monotonic() - start


def report(mode: str, clients: int, tally: Tally, elapsed: float) -> None:
    done = sorted(tally.latencies)
    total = tally.ok + sum(tally.errors.values())

    def at(q: float) -> float:
        return done[min(len(done) - 1, int(q * len(done)))] * 1000 if done else 0.0

    errors = ", ".join(f"{k}: {v}" for k, v in sorted(tally.errors.items())) or "0"
    print(
        f"{mode:>9}, {clients} clients, {elapsed:.1f} s: {total} requests, "
        f"{tally.ok / elapsed:,.0f} ok/s; errors {errors}; latency median {at(0.5):.1f} ms, "
        f"p99 {at(0.99):.1f} ms, worst {done[-1] * 1000 if done else 0:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--mode", choices=("close", "keepalive", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "content", root / "content")
        shutil.copy(REPO / "famfeeds.lock", root / "famfeeds.lock")
        env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
        server = subprocess.Popen(
            [sys.executable, "-m", "famfeeds", "serve", "--port", "0", "--as-of", "2024-01-31"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert server.stdout is not None
            seen = []
            for line in server.stdout:
                seen.append(line)
                found = re.search(r"Serving http://127\.0\.0\.1:(\d+)/", line)
                if found:
                    break
            else:
                raise SystemExit("famfeeds serve did not start: " + "".join(seen))
            port = int(found.group(1))
            modes = ("close", "keepalive") if args.mode == "both" else (args.mode,)
            for mode in modes:
                tally, elapsed = asyncio.run(
                    load(port, args.clients, args.seconds, mode == "keepalive")
                )
                report(mode, args.clients, tally, elapsed)
        finally:
            server.terminate()
            rest = server.communicate(timeout=30)[0]
        printed = [x for x in rest.splitlines() if x.strip() and x.strip() != "Stopped."]
        print("server printed:", "nothing else" if not printed else "\n" + "\n".join(printed))


if __name__ == "__main__":
    main()
