"""The preview server against hostile and broken requests: raw HTTP on loopback against a
real `famfeeds serve` process. The load run is bench/serve_load.py."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest

from faults.previewkit import Served, head_of, serving
from support import REPO, SHIPPED_CONTENT

TOKEN = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped season, with files of the user's own (non-ASCII names) in the preview."""
    root = tmp_path_factory.mktemp("preview")
    shutil.copytree(SHIPPED_CONTENT, root / "content")
    shutil.copy(REPO / "famfeeds.lock", root / "famfeeds.lock")
    notes = root / ".famfeeds-preview/notes"
    (notes / "été").mkdir(parents=True)
    (notes / "café €.txt").write_text("crème brûlée\n", encoding="utf-8")
    (notes / "été/index.html").write_text("<html><body>summer</body></html>\n")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Served]:
    with serving(root, "--as-of", "2023-11-24") as served:
        yield served


def request(server: Served, target: bytes, host: bytes | None = b"127.0.0.1") -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + host)
    lines.append(b"Connection: close")
    return server.raw(b"\r\n".join(lines) + b"\r\n\r\n")


def quiet(server: Served) -> None:
    """Nothing the requests did made the server print a traceback or an error."""
    for word in ("Traceback", "Exception", "Error", "error"):
        assert word not in server.output, server.output


def test_a_folder_redirect_cannot_inject_a_header(server: Served) -> None:
    response = request(server, b"/x%0d%0aSet-Cookie:%20pwn=1/..%2fnewsletter")
    status, headers = head_of(response)
    assert status == 301
    assert dict(headers)["location"] == "/newsletter/"
    assert "set-cookie" not in dict(headers)
    assert all(set(name) <= TOKEN for name, _ in headers)
    quiet(server)


@pytest.mark.parametrize(
    "target",
    [b"/%2fevil.example.com/..%2fnewsletter", b"/%2F%2Fevil.example.com/..%2fnewsletter"],
)
def test_a_folder_redirect_stays_on_this_origin(server: Served, target: bytes) -> None:
    status, headers = head_of(request(server, target))
    assert status == 301
    location = dict(headers)["location"]
    assert location == "/newsletter/" and not location.startswith("//")
    status, headers = head_of(request(server, location.encode()))
    assert status == 200
    quiet(server)


def test_a_browser_following_the_redirect_stays_on_the_preview(
    server: Served, tmp_path: Path
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed for the browser test (.ci/run installs it)"
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            server.url + "%2fevil.example.com/..%2fnewsletter",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    page = lxml.html.document_fromstring(dom)
    assert page.findtext(".//title") == "For All Mankind: newsletter archive"


def test_only_requests_naming_this_machine_are_answered(server: Served) -> None:
    port = str(server.port).encode()
    for host in [b"127.0.0.1:" + port, b"localhost:" + port, b"LOCALHOST", b"[::1]:" + port]:
        assert head_of(request(server, b"/", host))[0] == 200, host
    refused = [
        b"evil.example.com",
        b"evil.example.com:" + port,
        b"localhost.evil.example.com",
        b"127.0.0.1.nip.io",
        b"localhost:80@evil.example.com",
        b"[::1",
        b"",
    ]
    for host in refused:
        response = request(server, b"/", host)
        assert head_of(response)[0] == 400, host
        assert b"famfeeds serve printed" in response
    old = server.raw(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0 without Host
    assert head_of(old)[0] == 400
    quiet(server)


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/%00", 404),
        (b"/feed.xml%00.html", 404),
        (b"/feed.xml%0d%0aX-Injected:%201", 404),
        (b"//evil.example.com/", 404),
        (b"/%2e%2e/famfeeds.lock", 404),
        (b"/../famfeeds.lock", 404),
        (b"/.famfeeds-manifest", 404),
        (b"/%ff%fe", 404),
        (b"/" + b"a" * 4000, 404),
        ("/caf\u00e9".encode(), 400),  # raw UTF-8 in a request line is not HTTP
        ("/\u20ac".encode(), 400),
    ],
)
def test_odd_urls_get_an_answer_and_no_traceback(
    server: Served, target: bytes, status: int
) -> None:
    response = request(server, target)
    assert head_of(response)[0] == status
    assert "x-injected" not in dict(head_of(response)[1])
    quiet(server)


def test_non_latin_1_names_are_served_and_redirected_encoded(server: Served) -> None:
    status, _, body = server.get("/notes/caf%C3%A9%20%E2%82%AC.txt")
    assert status == 200 and body.decode() == "crème brûlée\n"
    status, headers = head_of(request(server, b"/notes/%C3%A9t%C3%A9"))
    assert status == 301 and dict(headers)["location"] == "/notes/%C3%A9t%C3%A9/"
    status, _, body = server.get("/notes/%C3%A9t%C3%A9/")
    assert status == 200 and b"summer" in body
    quiet(server)


def test_idle_and_half_sent_requests_are_closed_by_the_server(server: Served) -> None:
    """A connection that says nothing, never finishes its request head, or drips it a byte
    at a time, is closed by the server after its idle timeout (the client's 30 s limit
    would fail the test); other clients are served meanwhile."""
    silent, half, drip = server.connect(), server.connect(), server.connect()
    half.sendall(b"GET /feed.xml HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    drip.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
    closed: dict[str, bytes] = {}

    def wait(name: str, sock: socket.socket) -> None:
        with sock:
            closed[name] = sock.recv(100)

    def dripping(sock: socket.socket) -> None:
        with sock:
            sock.settimeout(0.5)
            for _ in range(60):
                try:
                    sock.sendall(b"a")
                    closed["drip"] = sock.recv(100)
                    return
                except TimeoutError:
                    continue
                except OSError:  # reset by the server
                    closed["drip"] = b""
                    return

    threads = [
        threading.Thread(target=wait, args=("silent", silent)),
        threading.Thread(target=wait, args=("half", half)),
        threading.Thread(target=dripping, args=(drip,)),
    ]
    for thread in threads:
        thread.start()
    assert server.get("/calendar.ics")[0] == 200  # not held up by the idle ones
    for thread in threads:
        thread.join(60)
    assert closed == {"silent": b"", "half": b"", "drip": b""}
    quiet(server)


def test_clients_that_hang_up_early_leave_no_trace(server: Served) -> None:
    for number in range(40):
        sock = server.connect()
        sock.sendall(b"GET /calendar.ics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        if number % 2:  # reset instead of a clean close
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert server.get("/calendar.ics")[0] == 200
    quiet(server)


def test_the_preview_listens_on_ipv6(root: Path) -> None:
    with serving(root, "--host", "::1", "--output", ".famfeeds-preview-v6") as server:
        assert server.url.startswith("http://[::1]:")
        status, headers, body = server.get("/")
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        page = lxml.html.document_fromstring(body)
        assert page.xpath("//head/link[@rel='alternate']/@href")[0] == server.url + "feed.xml"
        assert head_of(request(server, b"/", b"evil.example.com"))[0] == 400
        quiet(server)
