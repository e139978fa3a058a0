"""Subscriber store and subscriptions service at scale, on loopback; run by hand.

    python bench/subscriptions.py [--rows 1000000] [--unsubscribes 5000] [--clients 32]

In a temporary copy of content/ (with ``service_url`` set), measured:

1. ``famfeeds subscribers import FILE.csv --confirmed`` of a generated CSV of --rows rows,
   as a whole process: wall time and the child's peak RSS (goal <= 60 s, <= 500 MB);
2. ``famfeeds send latest --dry-run --force --now <after the last issue>`` over those
   stored subscribers: wall time (goal <= 10 s);
3. one-click unsubscribes (RFC 8058 POSTs) against ``famfeeds subscriptions`` running as a
   real process on 127.0.0.1, from --clients concurrent clients, --unsubscribes distinct
   tokens read from the store: requests/s, errors, p50/p99 latency (goal >= 1,000/s,
   p99 < 50 ms), and the service's CPU time per request.

The load client sends the POSTs on keep-alive connections with asyncio streams, as a mail
provider's sender would, and reads each answer's status line, headers and body
(Content-Length). An HTTP library as the client (httpx was used at first) spends more CPU
per request than the service does, and on a 2-core machine then measures itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SERVICE_URL = "https://famfeeds.example.org/subscriptions"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0


@dataclass
class Row:
    """One line of the result table."""

    figure: str
    value: str
    goal: str
    met: bool | None


def famfeeds(*args: str | Path) -> list[str]:
    """The command line that runs famfeeds with this interpreter."""
    return [sys.executable, "-m", "famfeeds", *map(str, args)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_project(root: Path) -> Path:
    """Copy content/ under root and give its [newsletter] a service_url."""
    content = root / "content"
    shutil.copytree(REPO / "content", content)
    show = content / "show.toml"
    text = show.read_text(encoding="utf-8")
    if "service_url" not in text:
        text = text.replace("[newsletter]\n", f'[newsletter]\nservice_url = "{SERVICE_URL}"\n', 1)
        show.write_text(text, encoding="utf-8")
    return content


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name\n")
        chunk = 100_000
        for start in range(0, rows, chunk):
            out.write(
                "".join(
                    f"fan{i:07d}@example.com,Fan {i}\n"
                    for i in range(start, min(start + chunk, rows))
                )
            )


def run_timed(command: list[str], cwd: Path, log: Path) -> float:
    """Run command to its end (output to log); its wall time. Fails loudly on an error."""
    start = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{tail}")
    return elapsed


def last_issue_moment(content: Path) -> str:
    """Noon (the show's zone) of the day after the last issue, as send's --now takes it."""
    from famfeeds.build.load import plan

    day = plan(content).issues[-1].day + timedelta(days=1)
    return f"{day.isoformat()}T12:00"


def tokens(store: Path, slug: str, count: int) -> list[str]:
    """Up to count tokens of distinct confirmed subscribers, read-only from the store file."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        found = db.execute(
            "SELECT token FROM subscribers WHERE show = ? AND status = 'confirmed' "
            "ORDER BY random() LIMIT ?",
            (slug, count),
        ).fetchall()
    return [token for (token,) in found]


def wait_healthy(base: str, service: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service exited {service.returncode} before answering")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service did not answer /healthz within {START_TIMEOUT:.0f} s")


ONE_CLICK = b"List-Unsubscribe=One-Click"


async def one_click(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str
) -> int:
    """POST one RFC 8058 unsubscribe on an open connection; the answer's status code (its
    body read to the end, so the connection can carry the next request)."""
    writer.write(
        f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(ONE_CLICK)}\r\n\r\n".encode()
        + ONE_CLICK
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    length = next(
        (
            int(v)
            for n, _, v in (line.partition(":") for line in lines)
            if n.lower() == "content-length"
        ),
        None,
    )
    if length is None:
        raise ValueError("an answer without Content-Length")
    await reader.readexactly(length)
    return int(status_line.split(" ")[1])


async def unsubscribe_all(
    base: str, tokens: list[str], clients: int
) -> tuple[float, list[float], dict[str, int]]:
    """POST one one-click unsubscribe per token from `clients` keep-alive connections;
    wall time, latencies, errors."""
    host = base.removeprefix("http://")
    address, _, port = host.rpartition(":")
    queue = list(reversed(tokens))
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def worker() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while queue:
            token = queue.pop()
            start = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.open_connection(address, int(port))
                status = await asyncio.wait_for(
                    one_click(*connection, host, token), REQUEST_TIMEOUT
                )
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
            except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                if connection is not None:
                    connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - start, latencies, errors


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows to import")
    parser.add_argument("--unsubscribes", type=int, default=5_000, help="one-click POSTs")
    parser.add_argument("--clients", type=int, default=32, help="concurrent requests")
    args = parser.parse_args()
    if args.rows < 1 or args.unsubscribes < 1 or args.clients < 1:
        parser.error("--rows, --unsubscribes and --clients must be at least 1")

    from famfeeds.build.project import Project
    from famfeeds.records.loader import load_catalogue

    table: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="famfeeds-bench-") as tmp:
        root = Path(tmp)
        content = make_project(root)
        slug = load_catalogue(content).show.slug
        store = Project.of(content).store
        csv_file = root / "subscribers.csv"
        print(f"Generating {args.rows:,} rows ...", flush=True)
        write_csv(csv_file, args.rows)

        # 1. The import, first child process: RUSAGE_CHILDREN's peak is its own.
        print("Importing ...", flush=True)
        seconds = run_timed(
            famfeeds("subscribers", "import", csv_file, "--confirmed", "--content", content),
            root,
            root / "import.log",
        )
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        table.append(
            Row(f"import {args.rows:,} rows", f"{seconds:.1f} s", "<= 60 s", seconds <= 60)
        )
        table.append(Row("import peak RSS", f"{rss_mb:.0f} MB", "<= 500 MB", rss_mb <= 500))

        # 2. Planning a send over every stored subscriber, without sending.
        print("send --dry-run ...", flush=True)
        now = last_issue_moment(content)
        seconds = run_timed(
            famfeeds("send", "latest", "--dry-run", "--force", "--now", now, "--content", content),
            root,
            root / "send.log",
        )
        table.append(
            Row(f"send --dry-run, {args.rows:,} subs", f"{seconds:.1f} s", "<= 10 s", seconds <= 10)
        )
        summary = (root / "send.log").read_text(encoding="utf-8", errors="replace").strip()
        print("  " + "\n  ".join(summary.splitlines()[-6:]), flush=True)

        # 3. One-click unsubscribes against the running service.
        picked = tokens(store, slug, args.unsubscribes)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        print(f"One-click unsubscribes: {len(picked):,} tokens, {args.clients} clients ...")
        with (root / "service.log").open("wb") as log:
            service = subprocess.Popen(
                famfeeds(
                    "subscriptions", "--content", content, "--host", "127.0.0.1", "--port", port
                ),
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                wait_healthy(base, service)
                cpu = time.process_time()
                served = cpu_seconds(service.pid)
                wall, latencies, errors = asyncio.run(unsubscribe_all(base, picked, args.clients))
                served = cpu_seconds(service.pid) - served
            finally:
                service.terminate()
                try:
                    service.wait(10)
                except subprocess.TimeoutExpired:
                    service.kill()
                    service.wait()
        client_cpu = (time.process_time() - cpu) / wall
        rate = len(picked) / wall
        failed = sum(errors.values())
        p50 = percentile(latencies, 0.50) * 1000 if latencies else float("nan")
        p99 = percentile(latencies, 0.99) * 1000 if latencies else float("nan")
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            (gone,) = db.execute(
                "SELECT count(*) FROM subscribers WHERE show = ? AND status = 'unsubscribed'",
                (slug,),
            ).fetchone()
        table.append(Row("one-click unsubscribes", f"{rate:,.0f} /s", ">= 1,000 /s", rate >= 1000))
        table.append(Row("  errors", f"{failed} {errors or ''}".strip(), "0", failed == 0))
        table.append(Row("  client CPU (this process)", f"{client_cpu:.0%}", "", None))
        per_request = served / max(1, len(latencies)) * 1000
        table.append(Row("  service CPU per request", f"{per_request:.2f} ms", "", None))
        table.append(Row("  p50 latency", f"{p50:.1f} ms", "", None))
        table.append(Row("  p99 latency", f"{p99:.1f} ms", "< 50 ms", p99 < 50))
        table.append(
            Row("  rows now unsubscribed", f"{gone:,}", f"{len(picked):,}", gone == len(picked))
        )

    widths = [max(len(r.figure) for r in table), max(len(r.value) for r in table), 12]
    print()
    print(f"{'figure':<{widths[0]}}  {'value':>{widths[1]}}  {'goal':<{widths[2]}}  met")
    for r in table:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.figure:<{widths[0]}}  {r.value:>{widths[1]}}  {r.goal:<{widths[2]}}  {met}")


if __name__ == "__main__":
    main()
