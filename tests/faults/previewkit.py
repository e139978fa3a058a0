"""A real `famfeeds serve` in a subprocess, and raw HTTP against it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path


@dataclass
class Served:
    """A running `famfeeds serve` and what it has printed (stdout and stderr together)."""

    process: subprocess.Popen[str]
    root: Path
    url: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return re.match(r"http://(\[[^\]]+\]|[^:/]+)", self.url).group(1)

    @property
    def port(self) -> int:
        return int(re.search(r":(\d+)/$", self.url).group(1))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
        """Status, headers (names case-insensitive, as in HTTP) and body."""
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            exc.close()
            return exc.code, exc.headers, body

    def build(self) -> int:
        return int(self.get("/__famfeeds/build")[2])

    def connect(self) -> socket.socket:
        address = self.host.strip("[]")
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect((address, self.port))
        return sock

    def raw(self, request: bytes) -> bytes:
        """Send ``request`` as it is on a new connection; everything until the server closes."""
        with self.connect() as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("timed out; server said:\n" + self.output)


def head_of(response: bytes) -> tuple[int, list[tuple[str, str]]]:
    """The status and the header lines of a raw HTTP response (parsed strictly by hand)."""
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    status = int(status_line.split(" ")[1])
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
    return status, [(name.lower(), value) for name, value in headers]


@contextmanager
def serving(root: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Run `python -m famfeeds serve --port 0 ARGS` in ``root`` until the block ends."""
    environ = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    environ.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "famfeeds", "serve", "--port", "0", *args],
        cwd=root,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Served(process, root)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        server.wait_for(lambda: "Serving http" in server.output or process.poll() is not None)
        found = re.search(r"Serving (http://\S+/)", server.output)
        assert found, "famfeeds serve did not start:\n" + server.output
        server.url = found.group(1)
        yield server
    finally:
        process.terminate()
        process.wait(15)
        reader.join(5)
        if process.stdout:
            process.stdout.close()
