"""A real WebSub hub on loopback, a subscriber's callback server and a static site, for tests.

The hub is Flask-WebSub's (PyPI ``flask-websub``, ``flask_websub.hub``, ISC): its endpoint,
intent verification, storage (SQLite) and content distribution, served by werkzeug on a free
loopback port in a thread. Flask-WebSub hands its work to Celery tasks; the tests run them
without Celery or Redis through :class:`ThreadTasks`, a stand-in with the two calls
``Hub.init_celery`` uses (``task(**options)`` and ``.delay(...)``, plus ``self.retry`` for
bound tasks), each task in a thread of its own, retries after their countdown.

API (all context managers; everything binds 127.0.0.1 on a port the system picks)::

    with static_site(project.output) as site, running_hub(tmp_path) as hub, \\
            subscriber() as sub:
        site.url                      # "http://127.0.0.1:PORT/": build with --base-url site.url
        hub.url                       # "http://127.0.0.1:PORT/hub": put in [feeds] hubs
        hub.subscribe(sub, topic)     # the hub verifies intent at sub's callback; returns
                                      # once the hub stores the subscription
        ...                           # publish, then famfeeds.delivery.websub.ping(...)
        delivery = sub.wait_for_delivery(topic, timeout=30)
        delivery.body                 # the feed's bytes as the hub pushed them
        delivery.links                # {"self": [...], "hub": [...]}: the Link header
        sub.deliveries                # every delivery so far, oldest first
        hub.errors                    # what the hub's tasks raised (e.g. no Link header)

Flask-WebSub distributes a topic only when fetching it gives Link headers naming a hub and
the topic itself (``rel="hub"``, ``rel="self"``). A static host has to be set up to send
them; :func:`static_site` sends, for each feed file, the links that the feed declares in its
own body (Atom and RSS ``link``/``atom:link``, JSON Feed ``hubs`` and ``feed_url``), so a
feed that names no hub is refused by the hub, as it should be.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FEED_FILES = {
    "feed.xml": "application/atom+xml",
    "rss.xml": "application/rss+xml",
    "feed.json": "application/feed+json",
}


# The hub ------------------------------------------------------------------------------


class RetryTask(Exception):
    """Raised by a bound task's ``self.retry(countdown=...)``."""

    def __init__(self, countdown: float) -> None:
        super().__init__(countdown)
        self.countdown = countdown


class ThreadTasks:
    """What ``flask_websub.hub.Hub.init_celery`` needs of Celery: tasks run in threads."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.timers: list[threading.Timer] = []
        self.lock = threading.Lock()
        self.closed = False

    def task(self, bind: bool = False, max_retries: int = 3, **_: Any) -> Callable[..., Any]:
        def register(function: Callable[..., Any]) -> SimpleNamespace:
            def run(args: tuple[Any, ...], retries: int) -> None:
                try:
                    if bind:
                        bound = SimpleNamespace(
                            request=SimpleNamespace(retries=retries), retry=self._retry
                        )
                        function(bound, *args)
                    else:
                        function(*args)
                except RetryTask as again:
                    if retries < max_retries:
                        self._later(again.countdown, run, args, retries + 1)
                    else:
                        self._fail(RuntimeError(f"{function.__name__}: gave up after retries"))
                except BaseException as error:  # reported through Hub.errors
                    self._fail(error)

            return SimpleNamespace(delay=lambda *args: self._start(run, args, 0))

        return register

    @staticmethod
    def _retry(countdown: float = 0.0, **_: Any) -> None:
        raise RetryTask(countdown)

    def _fail(self, error: BaseException) -> None:
        with self.lock:
            self.errors.append(error)

    def _start(self, run: Callable[..., None], *args: Any) -> None:
        with self.lock:
            if self.closed:
                return
            thread = threading.Thread(target=run, args=args, daemon=True)
            self.threads.append(thread)
        thread.start()

    def _later(self, delay: float, run: Callable[..., None], *args: Any) -> None:
        with self.lock:
            if self.closed:
                return
            timer = threading.Timer(delay, self._start, args=(run, *args))
            timer.daemon = True
            self.timers.append(timer)
        timer.start()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            timers, threads = list(self.timers), list(self.threads)
        for timer in timers:
            timer.cancel()
        for thread in threads:
            thread.join(timeout=10)


@dataclass
class RunningHub:
    """A Flask-WebSub hub serving on loopback."""

    url: str
    storage_path: Path
    tasks: ThreadTasks

    @property
    def errors(self) -> list[BaseException]:
        """What the hub's tasks raised so far (a refused topic, a failed fetch)."""
        with self.tasks.lock:
            return list(self.tasks.errors)

    def callbacks(self, topic: str) -> list[str]:
        """The callback URLs the hub holds a live subscription of for ``topic``."""
        with sqlite3.connect(self.storage_path) as db:
            rows = db.execute(
                "select callback_url from hub where topic_url = ? "
                "and expiration_time > strftime('%s', 'now')",
                (topic,),
            ).fetchall()
        return [row[0] for row in rows]

    def subscribe(
        self,
        subscriber: Subscriber,
        topic: str,
        *,
        secret: str | None = None,
        lease_seconds: int = 3600,
        timeout: float = 30.0,
    ) -> None:
        """Subscribe ``subscriber`` to ``topic`` as a WebSub subscriber does (a form POST,
        answered 202), and return once the hub has verified the intent at the callback and
        stored the subscription. Raises AssertionError if it does not within ``timeout``."""
        subscriber.expect(topic, secret)
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": subscriber.callback_url,
            "hub.lease_seconds": str(lease_seconds),
        }
        if secret:
            form["hub.secret"] = secret
        request = urllib.request.Request(
            self.url, data=urllib.parse.urlencode(form).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            assert response.status == 202, response.status
        deadline = time.monotonic() + timeout
        while subscriber.callback_url not in self.callbacks(topic):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the hub did not store the subscription to {topic}: "
                    f"verifications {subscriber.verifications}, hub errors {self.errors}"
                )
            time.sleep(0.02)


@contextmanager
def running_hub(folder: Path, *, backoff_base: float = 0.2) -> Iterator[RunningHub]:
    """Flask-WebSub's hub at ``http://127.0.0.1:PORT/hub``, its SQLite storage in
    ``folder``, publish pings allowed; a failed delivery is retried after about
    ``backoff_base`` seconds, doubling."""
    from flask import Flask
    from flask_websub.hub import Hub, SQLite3HubStorage
    from werkzeug.serving import make_server

    folder.mkdir(parents=True, exist_ok=True)
    storage_path = folder / "websub-hub.sqlite"
    config = {
        "PUBLISH_SUPPORTED": True,
        "BACKOFF_BASE": backoff_base,
        "MAX_ATTEMPTS": 5,
        "REQUEST_TIMEOUT": 10,
    }
    app = Flask("famfeeds-test-hub")
    app.config.update(config)
    tasks = ThreadTasks()
    hub = Hub(SQLite3HubStorage(str(storage_path)), celery=tasks, **config)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield RunningHub(f"http://127.0.0.1:{server.server_port}/hub", storage_path, tasks)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        tasks.close()


# The subscriber -----------------------------------------------------------------------


def parse_link_header(value: str) -> dict[str, list[str]]:
    """``<url>; rel="hub", <url>; rel="self"`` as {rel: [url, ...]}."""
    links: dict[str, list[str]] = {}
    for part in value.split(","):
        if "<" not in part or ">" not in part:
            continue
        url = part[part.index("<") + 1 : part.index(">")]
        for param in part[part.index(">") + 1 :].split(";"):
            name, _, rel = param.strip().partition("=")
            if name.strip().lower() == "rel":
                for each in rel.strip().strip('"').split():
                    links.setdefault(each, []).append(url)
    return links


@dataclass(frozen=True)
class Delivery:
    """One content distribution request the hub made to the callback."""

    headers: dict[str, str]
    body: bytes
    links: dict[str, list[str]]
    signature_ok: bool | None
    """With a secret: whether X-Hub-Signature matched the body; None without one."""

    @property
    def topic(self) -> str | None:
        """The topic, as the Link header's rel=self names it."""
        selves = self.links.get("self", [])
        return selves[0] if selves else None


@dataclass
class Subscriber:
    """A WebSub subscriber's callback server."""

    callback_url: str
    deliveries: list[Delivery] = field(default_factory=list)
    verifications: list[dict[str, str]] = field(default_factory=list)
    secrets: dict[str, str | None] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def expect(self, topic: str, secret: str | None = None) -> None:
        """Accept the hub's verification of a subscription to ``topic`` (others are
        refused with 404, as the spec asks of a subscriber that did not ask)."""
        with self.changed:
            self.secrets[topic] = secret

    def wait_for_delivery(
        self, topic: str | None = None, *, after: int = 0, timeout: float = 30.0
    ) -> Delivery:
        """The first delivery (of ``topic``, if given) among those after the first
        ``after``; waits up to ``timeout`` seconds, then raises AssertionError."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for delivery in self.deliveries[after:]:
                    if topic is None or delivery.topic == topic:
                        return delivery
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no delivery of {topic or 'any topic'} within {timeout} s; "
                        f"got {[d.topic for d in self.deliveries]}"
                    )
                self.changed.wait(left)


class _CallbackHandler(BaseHTTPRequestHandler):
    subscriber: Subscriber

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        sub = self.subscriber
        with sub.changed:
            sub.verifications.append(query)
            wanted = query.get("hub.topic") in sub.secrets
            sub.changed.notify_all()
        mode = query.get("hub.mode")
        if mode in ("subscribe", "unsubscribe") and wanted and "hub.challenge" in query:
            body = query["hub.challenge"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200 if mode == "denied" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        links = parse_link_header(self.headers.get("Link", ""))
        sub = self.subscriber
        topic = (links.get("self") or [None])[0]
        with sub.changed:
            secret = sub.secrets.get(topic) if topic else None
        signature_ok = None
        if secret:
            algorithm, _, digest = self.headers.get("X-Hub-Signature", "").partition("=")
            expected = hmac.new(secret.encode(), body, algorithm or "sha1").hexdigest()
            signature_ok = hmac.compare_digest(expected, digest)
        with sub.changed:
            sub.deliveries.append(Delivery(headers, body, links, signature_ok))
            sub.changed.notify_all()
        self.send_response(204)
        self.end_headers()


@contextmanager
def subscriber() -> Iterator[Subscriber]:
    """A callback server at ``http://127.0.0.1:PORT/callback`` that answers the hub's
    verification for the topics it expects and records every content delivery."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CallbackHandler)
    sub = Subscriber(f"http://127.0.0.1:{server.server_port}/callback")
    server.RequestHandlerClass = type("Handler", (_CallbackHandler,), {"subscriber": sub})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield sub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# The site -----------------------------------------------------------------------------


def declared_links(path: Path) -> dict[str, list[str]]:
    """The hub and self links a feed file declares in its body, read with feedparser (Atom,
    RSS) or json (JSON Feed)."""
    if path.suffix == ".json":
        feed = json.loads(path.read_bytes())
        links = {"hub": [h["url"] for h in feed.get("hubs", []) if h.get("type") == "WebSub"]}
        links["self"] = [feed["feed_url"]] if feed.get("feed_url") else []
        return {rel: urls for rel, urls in links.items() if urls}
    import feedparser

    found: dict[str, list[str]] = {}
    for link in feedparser.parse(path.read_bytes()).feed.get("links", []):
        if link.get("rel") in ("hub", "self"):
            found.setdefault(link["rel"], []).append(link["href"])
    return found


class _SiteHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.name in FEED_FILES and path.is_file():
            links = declared_links(path)
            value = ", ".join(f'<{u}>; rel="{rel}"' for rel, urls in links.items() for u in urls)
            if value:
                self.send_header("Link", value)
        super().end_headers()

    def guess_type(self, path: str | Any) -> str:
        return FEED_FILES.get(Path(str(path)).name) or super().guess_type(path)


@dataclass(frozen=True)
class Site:
    """A folder served over loopback HTTP."""

    url: str
    """``http://127.0.0.1:PORT/``, the folder's root."""
    folder: Path


@contextmanager
def static_site(folder: Path) -> Iterator[Site]:
    """Serve ``folder`` (it may not exist yet, and may be swapped for a new one by a build)
    at ``http://127.0.0.1:PORT/``, each feed with the Link headers it declares."""
    handler = partial(_SiteHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}/", folder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
