"""The preview server over real HTTP on loopback, and the page in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import feedparser
import lxml.html
import pytest

from support import Project


@dataclass
class Served:
    """A running `famfeeds serve` and what it has printed."""

    process: subprocess.Popen[str]
    project: Project
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            exc.close()
            return exc.code, dict(exc.headers), body

    def build(self) -> int:
        return int(self.get("/__famfeeds/build")[2])

    def wait_for(self, predicate, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("timed out; server said:\n" + "".join(self.lines))


@pytest.fixture
def served(shipped: Project) -> Iterator[Served]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    process = subprocess.Popen(
        [sys.executable, "-m", "famfeeds", "serve", "--port", "0", "--as-of", "2023-11-24"],
        cwd=shipped.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Served(process, shipped)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        server.wait_for(lambda: any("Serving http" in line for line in server.lines))
        server.url = re.search(r"Serving (http://\S+/)", "".join(server.lines)).group(1)
        yield server
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout:
            process.stdout.close()


def test_feeds_and_calendars_have_the_right_content_types(served: Served) -> None:
    expected = {
        "/": "text/html; charset=utf-8",
        "/feed.xml": "application/atom+xml; charset=utf-8",
        "/rss.xml": "application/rss+xml; charset=utf-8",
        "/feed.json": "application/feed+json; charset=utf-8",
        "/calendar.ics": "text/calendar; charset=utf-8",
        "/season-04.ics": "text/calendar; charset=utf-8",
        "/newsletter/": "text/html; charset=utf-8",
    }
    for path, kind in expected.items():
        status, headers, _ = served.get(path)
        assert status == 200 and headers["Content-Type"] == kind, path
    assert served.get("/nothing-here")[0] == 404
    assert served.get("/.famfeeds-manifest")[0] == 404
    assert served.get("/%2e%2e/famfeeds.lock")[0] == 404


def test_a_reader_given_the_address_finds_the_feeds(served: Served) -> None:
    _, _, body = served.get("/")
    page = lxml.html.document_fromstring(body)
    hrefs = page.xpath("//head/link[@rel='alternate']/@href")
    assert len(hrefs) == 3
    for href in hrefs:
        assert href.startswith(served.url)
        status, _, feed = served.get(href.removeprefix(served.url))
        assert status == 200
        if not href.endswith(".json"):
            parsed = feedparser.parse(feed)
            assert parsed.bozo == 0 and len(parsed.entries) == 3


def test_conditional_requests_get_304(served: Served) -> None:
    status, headers, body = served.get("/calendar.ics")
    assert status == 200 and body
    etag, modified = headers["ETag"], headers["Last-Modified"]
    status, _, body = served.get("/calendar.ics", {"If-None-Match": etag})
    assert status == 304 and body == b""
    assert served.get("/calendar.ics", {"If-Modified-Since": modified})[0] == 304
    assert served.get("/calendar.ics", {"If-None-Match": '"other"'})[0] == 200
    assert (
        served.get("/calendar.ics", {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0]
        == 200
    )


def test_rebuilds_on_edit_and_keeps_the_last_good_build_on_error(served: Served) -> None:
    episode = served.project.content / "season-04/03-the-bear-hug.md"
    first = served.build()
    assert b"__famfeeds/build" in served.get("/")[2]  # the reload script, served only
    episode.write_text(episode.read_text().replace("The Bear Hug", "The Big Hug"))
    served.wait_for(lambda: served.build() > first)
    assert b"S4 E3 \xc2\xb7 The Big Hug" in served.get("/feed.xml")[2]
    good = served.build()
    episode.write_text(episode.read_text().replace('title = "The Big Hug"', "title = "))
    served.wait_for(lambda: any("Rebuild failed" in line for line in served.lines))
    assert served.build() == good
    status, _, body = served.get("/feed.xml")
    assert status == 200 and b"The Big Hug" in body
    assert any("03-the-bear-hug.md" in line for line in served.lines)
    assert not (served.project.root / "output").exists()  # the preview has its own folder
    built = (served.project.root / ".famfeeds-preview/index.html").read_bytes()
    assert b"<script" not in built


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed for the browser test (.ci/run installs it)"
    return found


def test_the_page_in_a_real_browser(served: Served, tmp_path: Path) -> None:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", served.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    page = lxml.html.document_fromstring(dom)
    texts = {a.text_content().strip(): a.get("href") for a in page.iter("a")}
    assert texts["Atom feed"] == served.url + "feed.xml"
    assert texts["Subscribe in your calendar app"].startswith("webcal://127.0.0.1")
    assert texts["Add to Google Calendar"].startswith("https://calendar.google.com/")
    assert texts["All issues"] == served.url + "newsletter/"
    shot = tmp_path / "page.png"
    subprocess.run(
        [chromium(), *flags, "--window-size=1000,1400", f"--screenshot={shot}", served.url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("FAMFEEDS_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
