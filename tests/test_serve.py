"""The preview server over real HTTP on loopback, and the page in a real browser."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import feedparser
import lxml.html
import pytest

from faults.previewkit import Served, serving
from support import Project


@pytest.fixture
def served(shipped: Project) -> Iterator[Served]:
    with serving(shipped.root, "--as-of", "2023-11-24") as server:
        yield server


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
    episode = served.root / "content/season-04/03-the-bear-hug.md"
    first = served.build()
    assert b"__famfeeds/build" in served.get("/")[2]  # the reload script, served only
    episode.write_text(episode.read_text().replace("The Bear Hug", "The Big Hug"))
    served.wait_for(lambda: served.build() > first)
    assert b"S4 E3 \xc2\xb7 The Big Hug" in served.get("/feed.xml")[2]
    good = served.build()
    episode.write_text(episode.read_text().replace('title = "The Big Hug"', "title = "))
    served.wait_for(lambda: "Rebuild failed" in served.output)
    assert served.build() == good
    status, _, body = served.get("/feed.xml")
    assert status == 200 and b"The Big Hug" in body
    assert "03-the-bear-hug.md" in served.output
    assert not (served.root / "output").exists()  # the preview has its own folder
    built = (served.root / ".famfeeds-preview/index.html").read_bytes()
    assert b"__famfeeds/build" not in built and b"<script>" not in built  # JSON-LD data only


def test_head_and_other_methods(served: Served) -> None:
    _, headers, body = served.get("/feed.xml")
    with served.connect() as sock:
        sock.sendall(b"HEAD /feed.xml HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head = sock.makefile("rb").read()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert head.endswith(b"\r\n\r\n")  # no body
    assert f"content-length: {len(body)}".encode() in head.lower()
    assert headers["ETag"].encode() in head
    response = served.raw(
        b"POST /feed.xml HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert response.startswith(b"HTTP/1.1 405 ") and b"allow: get, head" in response.lower()


def test_serving_never_waits_for_a_rebuild(served: Served) -> None:
    """A rebuild stuck behind another build (here: the test holds the build lock of the
    folder holding the preview) does not stop a single response."""
    _, _, before = served.get("/feed.xml")
    first = served.build()
    fd = os.open(served.root, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        episode = served.root / "content/season-04/03-the-bear-hug.md"
        episode.write_text(episode.read_text().replace("The Bear Hug", "The Long Wait"))
        served.wait_for(lambda: "Waiting for another famfeeds build" in served.output)
        for _ in range(20):
            status, _, body = served.get("/feed.xml")
            assert status == 200 and body == before
        assert served.build() == first
    finally:
        os.close(fd)
    served.wait_for(lambda: served.build() > first)
    assert b"The Long Wait" in served.get("/feed.xml")[2]


def test_the_preview_never_writes_the_lock_even_with_public_urls(shipped: Project) -> None:
    lock = shipped.root / "famfeeds.lock"
    episode = shipped.content / "season-04/03-the-bear-hug.md"
    episode.write_text(episode.read_text().replace("The Bear Hug", "Renamed"))  # a new SEQUENCE
    before = lock.read_bytes(), lock.stat().st_mtime_ns
    with serving(shipped.root, "--public-urls", "--as-of", "2023-11-24") as server:
        status, _, body = server.get("/feed.xml")
        assert status == 200 and b"https://famfeeds.example.org/" in body
        assert b"Renamed" in body
        first = server.build()
        episode.write_text(episode.read_text().replace("Renamed", "Renamed again"))
        server.wait_for(lambda: server.build() > first)
    assert (lock.read_bytes(), lock.stat().st_mtime_ns) == before


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


def page_links(body: bytes) -> list[str]:
    page = lxml.html.document_fromstring(body)
    return [str(h) for h in page.xpath("//a/@href | //link/@href")]


def test_all_interfaces_print_and_link_an_address_a_browser_opens(
    shipped: Project, tmp_path: Path
) -> None:
    with serving(shipped.root, "--as-of", "2023-11-24", "--host", "0.0.0.0") as server:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert "0.0.0.0" not in server.output and "all interfaces" in server.output
        _, _, body = server.get("/")
        assert b"0.0.0.0" not in body
        links = page_links(body)
        own = [h for h in links if h.startswith("http://") and f":{server.port}/" in h]
        assert len(own) > 10 and all(h.startswith(server.url) for h in own), own
        assert any(h.startswith(f"webcal://127.0.0.1:{server.port}/") for h in links)
        for href in {h.split("#")[0] for h in own}:
            assert server.get(href.removeprefix(server.url))[0] == 200, href

        # Another address of this machine, as another device on the network would use one
        # (all of 127/8 is loopback): the page's links follow the address it was asked by.
        other = Served(server.process, server.root, f"http://127.0.0.2:{server.port}/")
        _, _, body = other.get("/")
        links = page_links(body)
        own = [h for h in links if h.startswith("http://") and f":{server.port}/" in h]
        assert len(own) > 10 and all(h.startswith(other.url) for h in own), own
        assert any(h.startswith(f"webcal://127.0.0.2:{server.port}/") for h in links)
        for href in {h.split("#")[0] for h in own}:
            assert other.get(href.removeprefix(other.url))[0] == 200, href
        # the feeds keep the built address
        assert f"http://127.0.0.1:{server.port}/".encode() in other.get("/feed.xml")[2]

        dom = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", server.url],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        texts = {
            a.text_content().strip(): a.get("href")
            for a in lxml.html.document_fromstring(dom).iter("a")
        }
        assert texts["Atom feed"] == server.url + "feed.xml"


def test_ipv6_all_interfaces_print_the_ipv6_loopback(shipped: Project) -> None:
    with serving(shipped.root, "--as-of", "2023-11-24", "--host", "::") as server:
        assert server.url == f"http://[::1]:{server.port}/"
        assert "all interfaces" in server.output
        _, _, body = server.get("/")
        own = [h for h in page_links(body) if h.startswith("http://") and f":{server.port}/" in h]
        assert len(own) > 10 and all(h.startswith(server.url) for h in own), own
        # :: takes IPv4 too (dual stack); the page then links to the IPv4 address it was asked by
        ipv4 = Served(server.process, server.root, f"http://127.0.0.1:{server.port}/")
        _, _, body = ipv4.get("/")
        own = [h for h in page_links(body) if h.startswith("http://") and f":{server.port}/" in h]
        assert len(own) > 10 and all(h.startswith(ipv4.url) for h in own), own
