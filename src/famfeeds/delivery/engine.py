"""Send an issue to every subscriber exactly once: K connections, a rate limit, retries.

What happens to each subscriber is decided from the ledger (see ledger.py):

- ``sent``: skipped.
- ``committing`` (a run died between sending the final "." of DATA and hearing the
  server's 250): counted as *uncertain* and, by default, not sent again. A newsletter
  operator would rather a rare subscriber miss one issue, which is in the archive,
  than get it twice and mark it as spam. ``--resend-uncertain`` sends them again.
- ``failed`` (a 5xx reply): skipped unless ``--retry-failed``.
- anything else (new, ``sending``, ``deferred``): sent. A run that died in
  ``sending`` never reached the final ".", so the server has nothing to deliver.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from famfeeds.delivery.ledger import Ledger
from famfeeds.delivery.smtp import Connection, DeliveryError, SmtpTarget
from famfeeds.delivery.subscribers import Subscriber
from famfeeds.render.message import MessageTemplate


@dataclass(frozen=True, kw_only=True)
class SendOptions:
    """How to send."""

    connections: int = 2
    rate: float = 0.0
    """Messages per second across all connections; 0 for no limit."""
    attempts: int = 3
    """Tries per recipient in one run for transient failures."""
    retry_wait: float = 30.0
    """Seconds before the first retry; doubled for each further one."""
    retry_failed: bool = False
    resend_uncertain: bool = False


@dataclass(frozen=True)
class SendPlan:
    """Who gets the issue in this run, and who is skipped and why."""

    todo: list[Subscriber]
    already_sent: int
    uncertain: list[str]
    failed_before: list[str]


def plan_sends(
    subscribers: list[Subscriber], states: dict[str, str], options: SendOptions
) -> SendPlan:
    """Decide, from the ledger's states, whom to send to."""
    todo, uncertain, failed = [], [], []
    sent = 0
    for sub in subscribers:
        state = states.get(sub.key)
        if state == "sent":
            sent += 1
        elif state == "committing" and not options.resend_uncertain:
            uncertain.append(sub.email)
        elif state == "failed" and not options.retry_failed:
            failed.append(sub.email)
        else:
            todo.append(sub)
    return SendPlan(todo, sent, uncertain, failed)


@dataclass
class Outcome:
    """What this run did."""

    sent: int = 0
    deferred: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class RateLimit:
    """At most ``rate`` messages a second, spread evenly, shared by every connection."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class WorkQueue:
    """Recipients to try, each with the time it may be tried; ends when all are done."""

    def __init__(self, items: list[Subscriber]) -> None:
        self.heap: list[tuple[float, int, Subscriber, int]] = [
            (0.0, i, s, 1) for i, s in enumerate(items)
        ]
        self.counter = len(items)
        self.busy = 0
        self.cond = threading.Condition()
        self.stopped = False

    def get(self) -> tuple[Subscriber, int] | None:
        """The next recipient and its attempt number, waiting for a retry's time."""
        with self.cond:
            while True:
                if self.stopped:
                    return None
                if self.heap:
                    ready, _, sub, attempt = self.heap[0]
                    delay = ready - time.monotonic()
                    if delay <= 0:
                        heapq.heappop(self.heap)
                        self.busy += 1
                        return sub, attempt
                    self.cond.wait(delay)
                elif self.busy:
                    self.cond.wait()
                else:
                    return None

    def done(self, retry: tuple[Subscriber, int, float] | None = None) -> None:
        """Finish an item, optionally scheduling a retry after ``delay`` seconds."""
        with self.cond:
            self.busy -= 1
            if retry is not None:
                sub, attempt, delay = retry
                self.counter += 1
                heapq.heappush(self.heap, (time.monotonic() + delay, self.counter, sub, attempt))
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def send_issue(
    template: MessageTemplate,
    subscribers: list[Subscriber],
    *,
    target: SmtpTarget,
    password: str | None,
    ledger_path: Path,
    options: SendOptions,
    progress: Callable[[int], None] = lambda n: None,
) -> Outcome:
    """Deliver ``template`` to ``subscribers`` (already planned), recording every step."""
    issue = template.item.issue.slug
    show = template.item.issue.show.slug
    newsletter = template.item.issue.show.newsletter
    assert newsletter is not None
    sender = newsletter.sender_address
    queue = WorkQueue(subscribers)
    limit = RateLimit(options.rate)
    outcome = Outcome()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        ledger = Ledger(ledger_path)
        connection = Connection(target, password)
        try:
            while (job := queue.get()) is not None:
                sub, attempt = job
                retry = None
                try:
                    limit.wait()
                    message = template.render(sub.email, sub.name, sub.token)
                    ledger.begin(show, issue, sub.key)
                    key = sub.key

                    def committing(key: str = key) -> None:
                        ledger.mark(show, issue, key, "committing")

                    reply = connection.deliver(sender, sub.email, message, committing)
                    ledger.mark(show, issue, sub.key, "sent", reply)
                    with lock:
                        outcome.sent += 1
                    progress(1)
                except DeliveryError as exc:
                    if exc.permanent:
                        ledger.mark(show, issue, sub.key, "failed", str(exc))
                        with lock:
                            outcome.failed.append((sub.email, str(exc)))
                        progress(1)
                    else:
                        ledger.mark(show, issue, sub.key, "deferred", str(exc))
                        if attempt < options.attempts:
                            retry = (sub, attempt + 1, options.retry_wait * 2 ** (attempt - 1))
                        else:
                            with lock:
                                outcome.deferred.append((sub.email, str(exc)))
                            progress(1)
                finally:
                    queue.done(retry)
        except BaseException as exc:  # a setup error: stop every worker, report it once
            errors.append(exc)
            queue.stop()
        finally:
            connection.close()
            ledger.close()

    threads = [
        threading.Thread(target=work, daemon=True)
        for _ in range(max(1, min(options.connections, len(subscribers))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return outcome


def send_one(
    template: MessageTemplate, address: str, target: SmtpTarget, password: str | None
) -> str:
    """Send a single test copy, outside the ledger."""
    newsletter = template.item.issue.show.newsletter
    assert newsletter is not None
    connection = Connection(target, password)
    try:
        return connection.deliver(
            newsletter.sender_address, address, template.render(address, None, "test"), lambda: None
        )
    finally:
        connection.close()
