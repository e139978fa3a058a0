"""WebSub: every feed names its hubs and itself, and hubs are pinged after a publish.

The end-to-end test runs Flask-WebSub's hub on loopback (tests/websubhub.py): a subscriber
verified by the hub gets the new feed pushed once famfeeds pings it."""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import lxml.etree
import pytest
from click.testing import Result

from famfeeds.delivery.websub import changed_topics, ping, redact
from famfeeds.records.loader import load_catalogue
from famfeeds.render.websub import changed_feed_topics, feed_topics
from support import Project, build_args
from test_feeds import FULL_URI_RE, URI_RE
from websubhub import running_hub, static_site, subscriber

ATOM_NS = "http://www.w3.org/2005/Atom"
HUBS = ["https://pubsubhubbub.appspot.com/", "https://hub.example.net/websub?list=a&b=c"]


def with_hubs(project: Project, hubs: list[str]) -> None:
    """show.toml with a [feeds] table naming ``hubs``."""
    path = project.content / "show.toml"
    path.write_text(path.read_text() + f"\n[feeds]\nhubs = {json.dumps(hubs)}\n")


def links_of(parsed: feedparser.FeedParserDict, rel: str) -> list[str]:
    return [link.href for link in parsed.feed.links if link.rel == rel]


def read(project: Project, name: str) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(project.output / name)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def test_every_feed_names_each_hub_and_its_own_url(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    with_hubs(project, HUBS)
    project.season()
    assert run(*build_args(project, "--as-of", "2024-01-20")).exit_code == 0
    base = "https://shows.example.net/test/"
    for name in ("feed.xml", "rss.xml"):
        parsed = read(project, name)
        assert links_of(parsed, "hub") == HUBS, name
        assert links_of(parsed, "self") == [base + name], name
        assert parsed.entries[0].title == "S1 E3 · Episode 3"
    # The same links as elements a validator reads: Atom's own <link> in the feed, RSS's in
    # the Atom namespace directly inside <channel>, and every href a full URI.
    atom = lxml.etree.parse(project.output / "feed.xml").getroot()
    assert [x.get("href") for x in atom.findall(f"{{{ATOM_NS}}}link[@rel='hub']")] == HUBS
    rss = lxml.etree.parse(project.output / "rss.xml").getroot()
    channel_links = rss.findall(f"channel/{{{ATOM_NS}}}link")
    assert [(x.get("rel"), x.get("href")) for x in channel_links] == [
        ("self", base + "rss.xml"),
        *(("hub", hub) for hub in HUBS),
    ]
    for element in [*atom.iter(f"{{{ATOM_NS}}}link"), *channel_links]:
        href = element.get("href")
        assert FULL_URI_RE.match(href) and URI_RE.match(href), href
    raw = (project.output / "rss.xml").read_text()
    assert 'href="https://hub.example.net/websub?list=a&amp;b=c" rel="hub"' in raw
    feed = json.loads((project.output / "feed.json").read_text())
    assert feed["feed_url"] == base + "feed.json"
    assert feed["hubs"] == [{"type": "WebSub", "url": hub} for hub in HUBS]


def test_without_hubs_no_feed_names_one(project: Project, run: Callable[..., Result]) -> None:
    project.show()
    project.season()
    assert run(*build_args(project, "--as-of", "2024-01-20")).exit_code == 0
    for name in ("feed.xml", "rss.xml"):
        parsed = read(project, name)
        assert links_of(parsed, "hub") == []
        assert len(links_of(parsed, "self")) == 1
        assert 'rel="hub"' not in (project.output / name).read_text()
    assert "hubs" not in json.loads((project.output / "feed.json").read_text())


@pytest.mark.parametrize(
    ("hubs", "expected"),
    [
        ('"https://hub.example/"', "must be a list of hub URLs, such as hubs = ["),
        ('["http://hub.example/"]', "is not an https URL: a hub must be reached over https"),
        ('["/hub"]', "must be an absolute http(s) URL"),
        ('["https://a.example/", "https://A.example/"]', "'https://a.example/' is named twice"),
        ('["https://a.example/#x"]', "has a #fragment"),
        ('["https://me:s3cret@a.example/"]', "would be published in every feed"),
        (json.dumps([f"https://h{n}.example/" for n in range(11)]), "names 11 hubs; at most 10"),
    ],
)
def test_bad_hub_settings_are_reported_with_file_line_and_field(
    project: Project, run: Callable[..., Result], hubs: str, expected: str
) -> None:
    project.show()
    path = project.content / "show.toml"
    text = path.read_text() + f"\n[feeds]\nhubs = {hubs}\n"
    path.write_text(text)
    project.season()
    result = run("check", "--content", project.content)
    assert result.exit_code != 0
    line = text.splitlines().index(f"hubs = {hubs}") + 1
    assert f"show.toml:{line}: show, field 'feeds.hubs" in result.output, result.output
    assert expected in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("hub", ["http://127.0.0.1:8080/hub", "http://localhost/", "http://[::1]/"])
def test_plain_http_hubs_are_allowed_on_loopback(
    project: Project, run: Callable[..., Result], hub: str
) -> None:
    project.show()
    with_hubs(project, [hub])
    project.season()
    assert run(*build_args(project, "--as-of", "2024-01-20")).exit_code == 0
    assert links_of(read(project, "feed.xml"), "hub") == [hub]


def test_topics_are_the_feeds_self_urls_and_only_changed_ones_are_listed(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    with_hubs(project, HUBS[:1])
    project.season()
    show = load_catalogue(project.content).show
    base = "https://shows.example.net/test/"
    topics = feed_topics(show)
    assert topics == {name: base + name for name in ("feed.xml", "rss.xml", "feed.json")}
    assert run(*build_args(project, "--as-of", "2024-01-06")).exit_code == 0
    first = project.snapshot()
    # Each topic is the URL its feed declares as self: what a reader subscribes to.
    assert links_of(read(project, "feed.xml"), "self") == [topics["feed.xml"]]
    assert links_of(read(project, "rss.xml"), "self") == [topics["rss.xml"]]
    assert json.loads(first["feed.json"])["feed_url"] == topics["feed.json"]
    assert changed_feed_topics(show, {}, first) == list(topics.values())
    assert run(*build_args(project, "--as-of", "2024-01-07")).exit_code == 0
    same_day = project.snapshot()  # no new episode: the feeds are the same bytes
    assert changed_feed_topics(show, first, same_day) == []
    assert run(*build_args(project, "--as-of", "2024-01-13")).exit_code == 0
    second = project.snapshot()
    assert changed_feed_topics(show, first, second) == list(topics.values())
    del second["rss.xml"]
    assert changed_feed_topics(show, first, second) == [topics["feed.xml"], topics["feed.json"]]
    # From the disk, against what the hubs were last told (topic to digest).
    current, changed = changed_topics(show, project.output, {})
    assert changed == list(topics.values()) and set(current) == set(topics.values())
    assert changed_topics(show, project.output, current) == (current, [])
    stale = {**current, topics["rss.xml"]: "0" * 64}
    assert changed_topics(show, project.output, stale)[1] == [topics["rss.xml"]]


def test_a_subscriber_at_a_real_hub_receives_the_new_episode_after_the_ping(
    project: Project, run: Callable[..., Result], tmp_path: Path
) -> None:
    with (
        static_site(project.output) as site,
        running_hub(tmp_path / "hub") as hub,
        subscriber() as sub,
    ):
        project.show()
        with_hubs(project, [hub.url])
        project.season(premiere="2024-01-05", episodes=3)
        show = load_catalogue(project.content).show.model_copy(update={"base_url": site.url})
        topics = feed_topics(show)
        build = ("--base-url", site.url)
        assert run(*build_args(project, "--as-of", "2024-01-06", *build)).exit_code == 0
        before = project.snapshot()
        hub.subscribe(sub, topics["feed.xml"], secret="shared-secret-for-signing")
        hub.subscribe(sub, topics["rss.xml"])
        hub.subscribe(sub, topics["feed.json"])
        assert [v["hub.mode"] for v in sub.verifications] == ["subscribe"] * 3
        assert [v["hub.topic"] for v in sub.verifications] == list(topics.values())
        assert sub.deliveries == []

        # The release of episode 2: build, publish (the site serves output/), ping.
        assert run(*build_args(project, "--as-of", "2024-01-13", *build)).exit_code == 0
        changed = changed_feed_topics(show, before, project.snapshot())
        assert changed == list(topics.values())
        lines: list[str] = []
        results = ping([hub.url], changed, log=lines.append)
        assert [(r.topic, r.outcome, r.status, r.attempts) for r in results] == [
            (topic, "accepted", 202, 1) for topic in changed
        ]
        assert lines == []

        atom = sub.wait_for_delivery(topics["feed.xml"], timeout=60)
        rss = sub.wait_for_delivery(topics["rss.xml"], timeout=60)
        json_feed = sub.wait_for_delivery(topics["feed.json"], timeout=60)
    assert hub.errors == []
    pushed = feedparser.parse(atom.body)
    assert pushed.bozo == 0
    assert [e.title for e in pushed.entries] == ["S1 E2 · Episode 2", "S1 E1 · Episode 1"]
    assert pushed.entries[0].link == site.url + "s01/e02/"
    assert atom.body == (project.output / "feed.xml").read_bytes()
    assert atom.links == {"hub": [hub.url], "self": [topics["feed.xml"]]}
    assert atom.signature_ok is True  # the hub signed it with the subscription's secret
    assert atom.headers["X-Hub-Signature"].startswith("sha512=")
    pushed_rss = feedparser.parse(rss.body)
    assert pushed_rss.bozo == 0
    assert [e.title for e in pushed_rss.entries] == ["S1 E2 · Episode 2", "S1 E1 · Episode 1"]
    assert rss.links == {"hub": [hub.url], "self": [topics["rss.xml"]]}
    items = json.loads(json_feed.body)["items"]
    assert [i["title"] for i in items] == ["S1 E2 · Episode 2", "S1 E1 · Episode 1"]
    assert json_feed.signature_ok is None
    topics_pushed = sorted(d.topic or "" for d in sub.deliveries)
    assert topics_pushed == sorted(topics.values())  # one push per topic


# A scripted hub: answers each ping with the next of a list of replies ----------------------


@dataclass
class ScriptedHub:
    url: str
    replies: list[tuple[int, bytes, dict[str, str]]]
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def scripted_hub(*replies: tuple[int, bytes, dict[str, str]]) -> Iterator[ScriptedHub]:
    hub = ScriptedHub("", list(replies))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hub.lock:
                hub.requests.append(urllib.parse.parse_qs(body.decode()))
                hub.authorization.append(self.headers.get("Authorization"))
                status, text, headers = hub.replies.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://user:hunter2@127.0.0.1:{server.server_port}/publish?token=s3cret"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


TOPIC = "https://shows.example.net/test/feed.xml"
PUBLISH = {"hub.mode": ["publish"], "hub.url": [TOPIC], "hub.topic": [TOPIC]}


def assert_no_secret(lines: list[str]) -> None:
    for line in lines:
        assert "hunter2" not in line and "s3cret" not in line and "user" not in line, line


def test_a_hub_answering_500_is_tried_again_and_then_accepts() -> None:
    with scripted_hub((500, b"Internal error\n", {}), (204, b"", {})) as hub:
        lines: list[str] = []
        waits: list[float] = []
        (result,) = ping([hub.url], [TOPIC], log=lines.append, sleep=waits.append, backoff=0.5)
    assert (result.outcome, result.status, result.attempts, result.ok) == ("accepted", 204, 2, True)
    assert hub.requests == [PUBLISH, PUBLISH]
    # The URL's user name and password go as Basic authentication, never in the request line.
    basic = "Basic " + base64.b64encode(b"user:hunter2").decode()
    assert hub.authorization == [basic, basic]
    assert waits == [0.5]
    (line,) = lines
    assert "HTTP 500" in line and "Internal error" in line and "try 2 of 3" in line, line
    assert f"127.0.0.1:{urllib.parse.urlsplit(hub.url).port}/publish" in line
    assert_no_secret(lines)


def test_a_hub_answering_400_is_not_tried_again_and_the_refusal_is_logged() -> None:
    reply = (400, b"\n  Invalid topic: not a feed this hub serves  \nsecond line\n", {})
    with scripted_hub(reply) as hub:
        lines: list[str] = []
        waits: list[float] = []
        (result,) = ping([hub.url], [TOPIC], log=lines.append, sleep=waits.append)
    assert (result.outcome, result.status, result.attempts) == ("refused", 400, 1)
    assert result.detail == "Invalid topic: not a feed this hub serves"
    assert len(hub.requests) == 1 and waits == []
    (line,) = lines
    port = urllib.parse.urlsplit(hub.url).port
    assert line == (
        f"WebSub: hub http://127.0.0.1:{port}/publish refused {TOPIC} (HTTP 400): "
        "Invalid topic: not a feed this hub serves; not retried"
    )
    assert_no_secret([line, result.line()])


def test_a_redirect_is_a_refusal_not_followed() -> None:
    with scripted_hub((307, b"", {"Location": "http://127.0.0.1:9/elsewhere"})) as hub:
        lines: list[str] = []
        (result,) = ping([hub.url], [TOPIC], log=lines.append, sleep=lambda s: None)
    assert (result.outcome, result.status, len(hub.requests)) == ("refused", 307, 1)
    assert "HTTP 307" in lines[0]


def test_retry_after_is_honoured_up_to_a_minute() -> None:
    replies = [(503, b"busy", {"Retry-After": "7"}), (503, b"busy", {"Retry-After": "3600"})]
    with scripted_hub(*replies, (202, b"Request received: publish\n", {})) as hub:
        waits: list[float] = []
        (result,) = ping([hub.url], [TOPIC], log=lambda line: None, sleep=waits.append)
    assert (result.outcome, result.attempts, result.detail) == (
        "accepted",
        3,
        "Request received: publish",
    )
    assert waits == [7.0, 60.0]


def test_a_closed_port_fails_after_every_attempt_and_other_hubs_are_still_told() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hub"
    with scripted_hub((204, b"", {}), (204, b"", {})) as good:
        lines: list[str] = []
        waits: list[float] = []
        topics = [TOPIC, TOPIC.replace("feed.xml", "rss.xml")]
        results = ping([closed, good.url], topics, log=lines.append, sleep=waits.append)
    assert [(r.hub, r.topic, r.outcome, r.status, r.attempts) for r in results] == [
        (closed, topics[0], "failed", None, 3),
        (closed, topics[1], "failed", None, 3),
        (good.url, topics[0], "accepted", 204, 1),
        (good.url, topics[1], "accepted", 204, 1),
    ]
    assert [r["hub.url"] for r in good.requests] == [[t] for t in topics]
    assert waits == [1.0, 2.0, 1.0, 2.0]
    assert len(lines) == 6  # two retries and one failure per topic
    assert "refused" in results[0].detail.lower(), results[0].detail
    assert lines[2] == f"WebSub: {results[0].line()}"
    assert f"could not take {topics[0]} after 3 tries (no answer)" in lines[2]
    assert results[0].as_dict() == {
        "hub": closed,
        "topic": topics[0],
        "outcome": "failed",
        "status": None,
        "attempts": 3,
        "detail": results[0].detail,
    }
    assert good.url not in json.dumps(results[2].as_dict())  # its password is not shown


def test_redact_keeps_host_port_and_path_only() -> None:
    assert redact("https://u:p@hub.example:8443/a/b?key=1#f") == "https://hub.example:8443/a/b"
    assert redact("http://[::1]:8080/hub") == "http://[::1]:8080/hub"
