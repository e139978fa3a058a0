"""Telling WebSub hubs that a feed changed: one publish ping per hub and topic.

The ping is the form the public hubs accept (pubsubhubbub.appspot.com,
websub.superfeedr.com): a form-encoded POST of ``hub.mode=publish`` and ``hub.url=<topic>``;
``hub.topic`` carries the same URL for hubs that use the WebSub recommendation's name for it.
The hub then fetches the topic and pushes it to its subscribers, so ping only after the new
files are live.

Rules: any 2xx is accepted. A 5xx answer, a time-out or a connection error is tried again,
up to ``attempts`` in all, waiting ``backoff``, then twice that, and so on (or the hub's
Retry-After, up to a minute). A 4xx or a redirect is a refusal: never tried again, since
the same request would be refused the same way. Each refusal and each failed try is one
log line naming the hub (without any user name, password or query), the status and the
first line of the hub's answer.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Literal

from famfeeds.records.models import Show
from famfeeds.render.websub import feed_topics

LOGGER = logging.getLogger("famfeeds.websub")
MAX_RETRY_AFTER = 60.0
"""The longest wait a hub's Retry-After may ask for between two tries, in seconds."""
BODY_PEEK = 2048
"""How much of a hub's answer is read for its first line."""

Outcome = Literal["accepted", "refused", "failed"]


@dataclass(frozen=True)
class PingResult:
    """What one hub said about one topic."""

    hub: str
    """The hub's URL as configured (it may hold a secret: show :func:`redact` of it)."""
    topic: str
    """The feed URL the hub was told about."""
    outcome: Outcome
    """``accepted`` (a 2xx), ``refused`` (a 4xx or a redirect: not retried) or ``failed``
    (5xx, time-out or connection error on every try)."""
    status: int | None
    """The last HTTP status, or None when the hub never answered."""
    attempts: int
    """How many requests were made."""
    detail: str
    """The first line of the hub's last answer, or the connection error; empty if none."""

    @property
    def ok(self) -> bool:
        """True when the hub accepted the ping."""
        return self.outcome == "accepted"

    def line(self) -> str:
        """One line for a log or a report, without secrets."""
        hub = redact(self.hub)
        if self.ok:
            return f"hub {hub} accepted {self.topic} (HTTP {self.status})"
        answer = f"HTTP {self.status}" if self.status is not None else "no answer"
        tries = f" after {self.attempts} tries" if self.attempts > 1 else ""
        said = f": {self.detail}" if self.detail else ""
        verb = "refused" if self.outcome == "refused" else "could not take"
        return f"hub {hub} {verb} {self.topic}{tries} ({answer}){said}"

    def as_dict(self) -> dict[str, object]:
        """The result for a JSON report, the hub's URL redacted."""
        return {
            "hub": redact(self.hub),
            "topic": self.topic,
            "outcome": self.outcome,
            "status": self.status,
            "attempts": self.attempts,
            "detail": self.detail,
        }


def redact(url: str) -> str:
    """A URL as it may be shown: scheme, host, port and path, without a user name, password,
    query or fragment (where a hub's access token would be)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not something to follow: urllib would turn the POST into a
    GET, which no hub takes as a ping."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _first_line(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return "".join(c if c.isprintable() else " " for c in line)[:200]


def _retry_after(value: str | None, default: float) -> float:
    """Seconds to wait: the hub's Retry-After (delta-seconds), capped; else ``default``."""
    if value and value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER)
    return default


def _post(url: str, form: bytes, timeout: float) -> tuple[int, bytes, str | None]:
    """POST ``form`` to ``url`` (a user name and password in it as Basic authentication):
    the status, the start of the body and Retry-After.

    Raises OSError (URLError, time-outs) or HTTPException when no answer came."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "famfeeds (WebSub publisher)",
    }
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None:
        import base64

        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        netloc = parts.netloc.rpartition("@")[2]
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    request = urllib.request.Request(url, data=form, method="POST", headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(BODY_PEEK), response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:  # a 3xx, 4xx or 5xx answer
        try:
            body = error.read(BODY_PEEK)
        finally:
            error.close()
        return error.code, body, error.headers.get("Retry-After")


def ping_one(
    hub: str,
    topic: str,
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 1.0,
    log: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PingResult:
    """Tell ``hub`` that ``topic`` changed, trying again on a 5xx or no answer (see the
    module's rules)."""
    say = log or LOGGER.warning
    form = urllib.parse.urlencode(
        {"hub.mode": "publish", "hub.url": topic, "hub.topic": topic}
    ).encode("ascii")
    status: int | None = None
    detail = ""
    wait = backoff
    for attempt in range(1, max(attempts, 1) + 1):
        retry_after: str | None = None
        try:
            status, body, retry_after = _post(hub, form, timeout)
            detail = _first_line(body)
        except (OSError, HTTPException) as error:
            status, detail = None, _describe(error)
        if status is not None and 200 <= status < 300:
            return PingResult(hub, topic, "accepted", status, attempt, detail)
        if status is not None and status < 500:
            result = PingResult(hub, topic, "refused", status, attempt, detail)
            say(f"WebSub: {result.line()}; not retried")
            return result
        if attempt < attempts:
            pause = _retry_after(retry_after, wait)
            answer = f"HTTP {status}" if status is not None else "no answer"
            said = f": {detail}" if detail else ""
            say(
                f"WebSub: hub {redact(hub)} gave {answer} for {topic}{said}; "
                f"trying again in {pause:g} s (try {attempt + 1} of {attempts})"
            )
            sleep(pause)
            wait *= 2
    result = PingResult(hub, topic, "failed", status, max(attempts, 1), detail)
    say(f"WebSub: {result.line()}")
    return result


def _describe(error: BaseException) -> str:
    """A connection error in a few words (URLError wraps the socket's error)."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    if isinstance(error, TimeoutError):
        return "timed out"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return _first_line(str(text).encode())


def ping(
    hubs: Sequence[str],
    topics: Sequence[str],
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 1.0,
    log: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PingResult]:
    """Tell every hub about every topic (hub by hub, topic by topic), one result each.

    ``log`` takes each line about a retry, refusal or failure (default: the
    ``famfeeds.websub`` logger's warning); ``sleep`` waits between tries."""
    return [
        ping_one(
            hub, topic, timeout=timeout, attempts=attempts, backoff=backoff, log=log, sleep=sleep
        )
        for hub in hubs
        for topic in topics
    ]


ping_hubs = ping
"""The name ``famfeeds run`` calls :func:`ping` by."""


def feed_digests(show: Show, output: Path) -> dict[str, str]:
    """Each topic URL of ``show`` whose feed is in ``output`` now, with the SHA-256 (hex) of
    the file's bytes; a feed missing from ``output`` is left out."""
    import hashlib

    found = {}
    for file, url in feed_topics(show).items():
        path = output / file
        if path.is_file():
            found[url] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def changed_topics(
    show: Show, output: Path, told: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """What the hubs should hear about: every topic's digest as ``output`` holds it now
    (:func:`feed_digests`), and the topics whose digest differs from the one in ``told``
    (topic URL to digest, as last told to the hubs), in the order a page lists the feeds."""
    current = feed_digests(show, output)
    return current, [url for url, digest in current.items() if told.get(url) != digest]
