"""Send an issue to every subscriber exactly once: K connections, a rate limit, retries.

What happens to each subscriber is decided from the ledger (see ledger.py) and, when a
subscriber store is used, from the store:

- ``sent``: skipped.
- suppressed in the store (unsubscribed, bounced, complained, forgotten): skipped and
  counted, whatever the ledger says, ``--retry-failed`` included. The store is asked
  again immediately before MAIL FROM (after the rate wait, the rendering and the claim),
  so an unsubscribe that committed before that moment is never mailed.
- ``committing`` (a run died, or a session was cut off, between the final "." of DATA and
  the server's reply): *uncertain*, not sent again. A newsletter operator would rather a
  rare subscriber miss one issue, which is in the archive, than get it twice and mark it as
  spam. ``--resend-uncertain`` sends them again.
- ``failed`` (a 5xx reply): skipped unless ``--retry-failed``.
- anything else (new, ``sending``, ``deferred``): sent. A run that died in ``sending``
  never reached the final ".", so the server has nothing to deliver.

Each recipient is claimed in the ledger (a conditional write) before MAIL FROM, so no two
workers or runs send to one recipient. A session that cannot be opened (refused, ``421`` at
the greeting) hands its recipient back and that connection retires while another works;
the last one retries with backoff and, failing that, stops the run: whoever was not tried
is reported, untouched. A permanent refusal whose enhanced status blames the address
(5.1.x, 5.2.1, 5.7.1, see :func:`blames_address`) marks it bounced for every later issue.

Two breakers stop a run whose relay, not its list, is at fault:

- **Refusals before any success are held back.** Until the server has accepted someone in
  this run, a permanent refusal is recorded ``deferred`` and not suppressed; the first
  success turns the held ones into real failures (``failed``, bounced where the address is
  blamed). :data:`REFUSAL_STREAK` of them stop the run, and a run that ends with no success
  suppresses nobody and leaves them for the next run: after the relay is fixed, everyone
  gets the issue.
- **Uncertain results in a row stop the run.** :data:`UNCERTAIN_STREAK` recipients in a
  row (a success on any connection resets the count) cut off or answered oddly after the
  final "." stop it: each may be a duplicate or a miss and may cost the whole data timeout.
  They stay uncertain; whoever was not tried is untouched in the ledger.

A third stops a run whose list is at fault: hard bounces over ``bounce_rate_stop`` of the
addresses answered (see :class:`famfeeds.delivery.guards.BounceGuard`); each hard bounce is
also noted against the issue in the ledger (``famfeeds report`` counts them).
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from famfeeds.delivery.csvlist import Subscriber, shown
from famfeeds.delivery.dkim import Signer
from famfeeds.delivery.guards import BounceGuard
from famfeeds.delivery.ledger import Ledger
from famfeeds.delivery.smtp import (
    COMMAND_TIMEOUT,
    DATA_TIMEOUT,
    Connection,
    ConnectTrouble,
    DeliveryError,
    SmtpTarget,
    Uncertain,
)
from famfeeds.errors import FamfeedsError
from famfeeds.render.message import HeaderTooLong, MessageTemplate

Clock = Callable[[], datetime]
REFUSAL_STREAK = 10
"""Permanent refusals in a row, before any success, that stop a run: the server or the
sender is at fault, not the addresses (none of them is suppressed)."""
UNCERTAIN_STREAK = 3
"""Uncertain results in a row (no success in between, on any connection) that stop a run.
Consecutive rather than "before any success": a relay that starts dropping or stalling
halfway through (a full disk, a hung filter) is as harmful as one that does from the
start. Small, since each one may be a duplicate and may wait the whole data timeout;
three in a row from a healthy relay is rare."""
_NOT_THE_ADDRESS = re.compile(
    r"relay|auth|not permitted|sender|spf|dkim|dmarc|spam|block|listed|reputation|policy "
    r"violation|content",
    re.IGNORECASE,
)


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def blames_address(error: DeliveryError) -> bool:
    """True when a permanent refusal says the address itself is dead or refuses mail:
    a 5xx reply to RCPT or to the final "." (a refusal of MAIL FROM or DATA is about the
    sender or the message) with enhanced status 5.1.x (bad mailbox or domain), 5.2.1
    (mailbox disabled) or 5.7.1 (delivery refused), whose text does not point at the sender
    or the relay instead ("Relay access denied", authentication, SPF/DKIM/DMARC, spam or
    block lists)."""
    status = error.enhanced
    if not error.permanent or not 500 <= error.code < 600 or status is None:
        return False
    if error.step not in ("RCPT", "DOT"):
        return False
    if not (status.startswith("5.1.") or status in ("5.2.1", "5.7.1")):
        return False
    return not _NOT_THE_ADDRESS.search(error.reply)


@dataclass(frozen=True, kw_only=True)
class SendOptions:
    """How to send."""

    connections: int = 2
    rate: float = 0.0
    """Messages per second across all connections; 0 for no limit."""
    attempts: int = 3
    """Tries per recipient in one run for transient failures (and tries to open a session
    when no connection works)."""
    retry_wait: float = 30.0
    """Seconds before the first retry; doubled for each further one."""
    retry_failed: bool = False
    resend_uncertain: bool = False
    timeout: float = COMMAND_TIMEOUT
    """Seconds to wait for the greeting and each command's reply."""
    data_timeout: float = DATA_TIMEOUT
    """Seconds to wait for the reply to the final "." of a message."""
    bounce_rate_stop: float = 0.05
    """Hard bounces over this share of the addresses answered stop the run (see
    :class:`famfeeds.delivery.guards.BounceGuard`)."""

    @property
    def claimable(self) -> frozenset[str]:
        """Ledger states a run may claim a recipient from."""
        states = {"sending", "deferred"}
        if self.retry_failed:
            states.add("failed")
        if self.resend_uncertain:
            states.add("committing")
        return frozenset(states)


@dataclass
class SendPlan:
    """Who gets the issue in this run, and who is skipped and why."""

    todo: list[Subscriber]
    already_sent: int
    uncertain: list[str]
    failed_before: list[str]
    suppressed: dict[str, list[str]] = field(default_factory=dict)
    """Addresses the store says not to mail, by reason (unsubscribed, bounced, ...)."""
    versions: dict[str, int] = field(default_factory=dict)
    """Each todo recipient's attempt count as planned (0: no row yet), for the claim."""
    unlisted: dict[str, int] = field(default_factory=dict)
    """A send to the store's subscribers: the store's other addresses, counted by why
    they are not on the list (``pending``: not confirmed; a suppression; ``forgotten``)."""

    @property
    def suppressed_count(self) -> int:
        return sum(len(v) for v in self.suppressed.values())


def plan_sends(
    subscribers: list[Subscriber],
    states: dict[str, tuple[str, int]],
    options: SendOptions,
    suppressed: Callable[[Subscriber], str | None] | None = None,
) -> SendPlan:
    """Decide, from the ledger's states and the store's suppressions, whom to send to."""
    plan = SendPlan([], 0, [], [])
    for sub in subscribers:
        state, attempts = states.get(sub.key, ("", 0))
        if state == "sent":
            plan.already_sent += 1
            continue
        reason = suppressed(sub) if suppressed is not None else None
        if reason is not None:
            plan.suppressed.setdefault(reason, []).append(sub.email)
        elif state == "committing" and not options.resend_uncertain:
            plan.uncertain.append(sub.email)
        elif state == "failed" and not options.retry_failed:
            plan.failed_before.append(sub.email)
        else:
            plan.todo.append(sub)
            plan.versions[sub.key] = attempts
    return plan


@dataclass
class Outcome:
    """What this run did, address by address."""

    sent: list[str] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: list[tuple[str, str]] = field(default_factory=list)
    """Cut off after the final "." (left *committing*): the server may have the message."""
    bounced: list[tuple[str, str]] = field(default_factory=list)
    """Failed addresses marked bounced for later issues (a subset of ``failed``)."""
    held: list[tuple[str, str]] = field(default_factory=list)
    """Refused for good while the server accepted nobody in this run: neither failed nor
    suppressed (``deferred`` in the ledger), tried again by the next run."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Not sent after all: suppressed while the run went on, or claimed by another run."""
    untried: list[str] = field(default_factory=list)
    """Never tried because the run stopped (see ``stopped``); untouched in the ledger."""
    stopped: str = ""
    """Why the run stopped before everyone was tried, or ''."""


class Gate(Protocol):
    """The subscriber store's say in a running send (one per worker thread)."""

    def admit(self, sub: Subscriber) -> Subscriber | str:
        """Before the message is made: the subscriber to send to (with their token), or why
        not (e.g. ``unsubscribed``)."""
        ...

    def suppressed(self, sub: Subscriber) -> str | None:
        """Immediately before MAIL FROM: why the subscriber may no longer be mailed, or
        None."""
        ...

    def bounced(self, sub: Subscriber, error: DeliveryError) -> None:
        """The server refused the address for good: suppress it for later issues."""
        ...

    def close(self) -> None: ...


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


Job = tuple[Subscriber, int, int]
"""A recipient, its attempt number in this run, and its ledger version (attempt count)."""


class WorkQueue:
    """Recipients to try, each with the time it may be tried; ends when all are done."""

    def __init__(self, items: list[Subscriber], versions: dict[str, int]) -> None:
        self.heap: list[tuple[float, int, Job]] = [
            (0.0, i, (s, 1, versions.get(s.key, 0))) for i, s in enumerate(items)
        ]
        self.counter = len(items)
        self.busy = 0
        self.cond = threading.Condition()
        self.stopped = False

    def get(self) -> Job | None:
        """The next job, waiting for a retry's time; None when everything is done."""
        with self.cond:
            while True:
                if self.stopped:
                    return None
                if self.heap:
                    ready, _, job = self.heap[0]
                    delay = ready - time.monotonic()
                    if delay <= 0:
                        heapq.heappop(self.heap)
                        self.busy += 1
                        return job
                    self.cond.wait(delay)
                elif self.busy:
                    self.cond.wait()
                else:
                    return None

    def done(self, again: Job | None = None, delay: float = 0.0) -> None:
        """Finish a job, optionally queueing ``again`` after ``delay`` seconds."""
        with self.cond:
            self.busy -= 1
            if again is not None:
                self.counter += 1
                heapq.heappush(self.heap, (time.monotonic() + delay, self.counter, again))
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the queue is stopped meanwhile."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while not self.stopped and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)

    def remaining(self) -> list[Subscriber]:
        """The recipients still queued (after a stop)."""
        with self.cond:
            return [job[0] for _, _, job in sorted(self.heap)]


def envelope_sender(template: MessageTemplate, sub: Subscriber | None) -> str:
    """MAIL FROM: ``bounce_address`` (default: ``sender_address``), tagged per recipient
    as ``local+DIGEST@domain`` when ``verp`` is on (DIGEST: the recipient's digest keyed
    with the project's secret, :meth:`MessageTemplate.tag`, which ``famfeeds bounces``
    checks: a tag made without the key matches no one)."""
    newsletter = template.item.issue.show.newsletter
    assert newsletter is not None
    address = newsletter.bounce_address or newsletter.sender_address
    if not newsletter.verp or sub is None:
        return address
    local, _, domain = address.rpartition("@")
    return f"{local}+{template.tag(sub.key)}@{domain}"


class _Pool:
    """Connections that have worked at least once; the last one never retires."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.healthy = 0
        self.refusals = 0
        self.successes = 0
        self.uncertain = 0
        """Uncertain results since the last success."""

    def may_retire(self, was_healthy: bool) -> bool:
        """True (and counted) when another connection carries on without this one."""
        with self.lock:
            others = self.healthy - (1 if was_healthy else 0)
            if others > 0:
                self.healthy -= 1 if was_healthy else 0
                return True
            return False


def send_issue(
    template: MessageTemplate,
    plan: SendPlan,
    *,
    target: SmtpTarget,
    password: str | None,
    ledger_path: Path,
    options: SendOptions,
    gate: Callable[[], Gate] | None = None,
    clock: Clock = utc_now,
    progress: Callable[[int], None] = lambda n: None,
    signer: Signer | None = None,
) -> Outcome:
    """Deliver ``template`` to ``plan.todo``, recording every step in the ledger; with a
    ``signer``, each personalised message is DKIM-signed just before it is handed over.

    Raises FamfeedsError when the run cannot go on (a ledger or store error, a TLS or login
    problem); the ledger is accurate up to that point, and the message says how many were
    sent before it.
    """
    issue = template.item.issue.slug
    show = template.item.issue.show.slug
    newsletter = template.item.issue.show.newsletter
    assert newsletter is not None
    queue = WorkQueue(plan.todo, plan.versions)
    limit = RateLimit(options.rate)
    outcome = Outcome()
    lock = threading.Lock()
    errors: list[BaseException] = []
    pool = _Pool()
    claimable = options.claimable
    held: list[tuple[Subscriber, DeliveryError]] = []
    """Refusals while the server has accepted nobody in this run (see the module rules)."""
    bounces = BounceGuard(options.bounce_rate_stop)

    def answered(verdict: str | None) -> None:
        """The hard-bounce guard's say after an address was answered or bounced."""
        if verdict is not None:
            stop(verdict)

    def record(kind: list[tuple[str, str]], sub: Subscriber, why: str) -> None:
        with lock:
            kind.append((sub.email, shown(why, 300)))
        progress(1)

    def stop(why: str) -> None:
        """Stop the run (the first reason given is kept)."""
        with lock:
            outcome.stopped = outcome.stopped or why
        queue.stop()

    def refused(sub: Subscriber, exc: DeliveryError, ledger: Ledger, checks: Gate | None) -> None:
        """A permanent refusal that counts: failed, and bounced if it blames the address."""
        ledger.mark(show, issue, sub.key, "failed", str(exc))
        record(outcome.failed, sub, str(exc))
        if checks is not None and blames_address(exc):
            checks.bounced(sub, exc)
            with lock:
                outcome.bounced.append((sub.email, shown(str(exc), 300)))
        if blames_address(exc):
            ledger.note_reports(show, [(sub.key, issue, "hard")])
            answered(bounces.hard())

    def work() -> None:
        connection = Connection(target, password, options.timeout, options.data_timeout)
        ledger: Ledger | None = None
        checks: Gate | None = None
        healthy = False
        failures = 0
        pause = 0.0
        try:
            ledger = Ledger(ledger_path)
            checks = gate() if gate is not None else None
            while True:
                if pause:
                    queue.pause(pause)
                    pause = 0.0
                job = queue.get()
                if job is None:
                    break
                sub, attempt, version = job
                again: Job | None = None
                delay = 0.0
                try:
                    if connection.smtp is None:
                        try:
                            connection.open()
                        except ConnectTrouble as exc:
                            again = job
                            if pool.may_retire(healthy):
                                return
                            failures += 1
                            if failures >= options.attempts:
                                with lock:
                                    outcome.stopped = (
                                        f"no session could be opened after {failures} tries: {exc}"
                                    )
                                queue.stop()
                                return
                            pause = options.retry_wait * 2 ** (failures - 1)
                            continue
                        failures = 0
                        if not healthy:
                            healthy = True
                            with pool.lock:
                                pool.healthy += 1
                    if checks is not None:
                        admitted = checks.admit(sub)
                        if isinstance(admitted, str):
                            record(outcome.skipped, sub, admitted)
                            continue
                        sub = admitted
                    limit.wait()
                    if queue.stopped:  # a breaker tripped during the wait: leave it untried
                        again = job
                        break
                    try:
                        message = template.render(sub.email, sub.name, sub.token, date=clock())
                    except HeaderTooLong as exc:
                        if ledger.claim(show, issue, sub.key, version, claimable):
                            ledger.mark(show, issue, sub.key, "failed", str(exc))
                            record(outcome.failed, sub, f"not sent: {exc}")
                        else:
                            record(outcome.skipped, sub, "claimed by another famfeeds run")
                        continue
                    if signer is not None:  # last: nothing may change a signed byte
                        message = signer.sign(message)
                    if not ledger.claim(show, issue, sub.key, version, claimable):
                        record(outcome.skipped, sub, "claimed by another famfeeds run")
                        continue
                    version += 1
                    # The last word of the store, immediately before MAIL FROM: nothing
                    # slow (the rate wait, rendering, the claim) comes after it.
                    gone = checks.suppressed(sub) if checks is not None else None
                    if gone is not None:
                        ledger.mark(show, issue, sub.key, "deferred", f"not sent: {gone}")
                        record(outcome.skipped, sub, gone)
                        continue

                    def committing(key: str = sub.key) -> None:
                        ledger.mark(show, issue, key, "committing")

                    try:
                        reply = connection.deliver(
                            envelope_sender(template, sub), sub.email, message, committing
                        )
                    except ConnectTrouble as exc:  # the session closed under us: not tried
                        raise DeliveryError(0, str(exc), permanent=False) from None
                    ledger.mark(show, issue, sub.key, "sent", reply)
                    with lock:
                        outcome.sent.append(sub.email)
                        pool.successes += 1
                        pool.refusals = 0
                        pool.uncertain = 0
                        now_real, held[:] = list(held), []
                    progress(1)
                    answered(bounces.answered())
                    for earlier, error in now_real:  # the server accepts others: they count
                        refused(earlier, error, ledger, checks)
                except Uncertain as exc:
                    record(outcome.uncertain, sub, str(exc))
                    answered(bounces.answered())
                    with lock:
                        pool.uncertain += 1
                        streak = pool.uncertain
                    if streak >= UNCERTAIN_STREAK:
                        stop(
                            f"{streak} subscribers in a row were left uncertain after the "
                            f"message was handed over (the last: {shown(str(exc), 200)}). "
                            "Check the relay before running again: is it up, is its queue or "
                            "disk full, does a filter hang after the message? Its log tells "
                            "whether those were delivered; they are not sent again unless "
                            "--resend-uncertain"
                        )
                except DeliveryError as exc:
                    if exc.permanent and not exc.code:  # decided here, not by the server
                        refused(sub, exc, ledger, checks)
                    elif exc.permanent:
                        # Held until the server accepts someone in this run (then it counts):
                        # a server that refuses everyone must not suppress the whole list.
                        ledger.mark(show, issue, sub.key, "deferred", str(exc))
                        answered(bounces.answered())
                        with lock:
                            counts = bool(pool.successes)
                            if not counts:
                                held.append((sub, exc))
                                pool.refusals += 1
                            streak = pool.refusals if not counts else 0
                        if counts:
                            refused(sub, exc, ledger, checks)
                        if streak >= REFUSAL_STREAK:
                            stop(
                                f"the server refused the first {streak} subscribers for "
                                f"good (the last: {shown(str(exc), 200)}) and accepted "
                                "nobody: that looks like a problem with the server or the "
                                "sender, not with the addresses, so nobody was marked "
                                "bounced or failed. Check the relay (its log, the sender "
                                "address, the login); the next run tries them again"
                            )
                    else:
                        ledger.mark(show, issue, sub.key, "deferred", str(exc))
                        if attempt < options.attempts:
                            again = (sub, attempt + 1, version)
                            delay = options.retry_wait * 2 ** (attempt - 1)
                        else:
                            record(outcome.deferred, sub, str(exc))
                            answered(bounces.answered())
                finally:
                    queue.done(again, delay)
        except BaseException as exc:  # the run cannot go on: stop every worker, report once
            errors.append(exc)
            queue.stop()
        finally:
            connection.close()
            if ledger is not None:
                ledger.close()
            if checks is not None:
                checks.close()

    threads = [
        threading.Thread(target=work, daemon=True)
        for _ in range(max(1, min(options.connections, len(plan.todo))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        first = errors[0]
        if isinstance(first, FamfeedsError):
            raise FamfeedsError(
                f"{first.message}\nThis run sent {len(outcome.sent)} message(s) before it "
                "stopped; the ledger is accurate up to there, so running the same command "
                "again sends only to the others."
            ) from None
        raise first
    outcome.untried = [s.email for s in queue.remaining()]
    outcome.held = [(s.email, shown(str(e), 300)) for s, e in held]
    progress(len(held))
    return outcome


def send_one(
    template: MessageTemplate,
    address: str,
    target: SmtpTarget,
    password: str | None,
    *,
    clock: Clock = utc_now,
    data_timeout: float = DATA_TIMEOUT,
    signer: Signer | None = None,
) -> str:
    """Send a single test copy (DKIM-signed with ``signer``), outside the ledger;
    FamfeedsError says why it failed."""
    newsletter = template.item.issue.show.newsletter
    assert newsletter is not None
    connection = Connection(target, password, data_timeout=data_timeout)
    sub = Subscriber(address, None, "test")
    try:
        message = template.render(address, None, "test", date=clock())
        if signer is not None:
            message = signer.sign(message)
        return connection.deliver(envelope_sender(template, sub), address, message, lambda: None)
    except (DeliveryError, ConnectTrouble, HeaderTooLong) as exc:
        raise FamfeedsError(f"the test copy to {shown(address)} was not sent: {exc}") from None
    except Uncertain as exc:
        raise FamfeedsError(
            f"the test copy to {shown(address)} may or may not have been delivered: {exc}"
        ) from None
    finally:
        connection.close()
