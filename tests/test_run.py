"""``famfeeds run``: one process that builds, publishes and mails at each release moment.

Real processes only: ``famfeeds run`` as a subprocess driven by a clock file (the same code
path as the system clock: only where the time is read differs), aiosmtpd as the relay, a
real shell publish command. What happened is judged where the user sees it: the output
folder and its published copy (read back with feedparser), the messages the relay holds
(stamped with the clock's time on arrival), and ``famfeeds status --json``.
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import pytest
from aiosmtpd.controller import Controller

from famfeeds.delivery.store import SubscriberStore
from support import SEASON_TOML, SHOW_TOML, Project, episode_text

ZONE = "America/New_York"
FIRST = datetime(2024, 1, 5, 5, 0, tzinfo=UTC)
"""Episode 1's release moment: 2024-01-05 00:00 in New York (all-day releases)."""
SECOND = FIRST + timedelta(days=7)
PEOPLE = [f"fan{i}@example.com" for i in range(3)]
NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?token={{token}}"
smtp_url = "{smtp}"

[publish]
command = "{publish}"
timeout = 60
"""
PUBLISH = 'mkdir -p site && cp -R \\"$FAMFEEDS_OUTPUT\\"/. site/ && date -u +%s >> published.log'
"""Copy output/ to site/ (a stand-in for rsync to a web server) and count each publish."""


class Clock:
    """The test's clock: a file ``famfeeds run --clock-file`` reads."""

    def __init__(self, path: Path, moment: datetime) -> None:
        self.path = path
        self.set(moment)

    def set(self, moment: datetime) -> None:
        staged = self.path.with_suffix(".new")
        staged.write_text(moment.isoformat(), encoding="utf-8")
        staged.replace(self.path)  # never half a timestamp

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text(encoding="utf-8"))


class Relay:
    """An SMTP handler that keeps each message with the clock's time when it arrived."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.messages: list[tuple[str, datetime, email.message.EmailMessage]] = []
        self.lock = threading.Lock()
        self.delay = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt.lower(), self.clock.now(), message))  # type: ignore[arg-type]
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        return "250 2.0.0 queued"

    def issues(self) -> Counter[tuple[str, str]]:
        """(recipient, issue day) -> copies received."""
        with self.lock:
            return Counter((r, _issue_of(m)) for r, _, m in self.messages)

    def arrivals(self, issue: str) -> dict[str, datetime]:
        with self.lock:
            return {r: at for r, at, m in self.messages if _issue_of(m) == issue}


def _issue_of(message: email.message.EmailMessage) -> str:
    """The issue a message carries, from its Message-ID (``<ISSUE.…@domain>``)."""
    return str(message["Message-ID"]).strip("<>").split(".", 1)[0]


@contextlib.contextmanager
def relay(clock: Clock) -> Iterator[tuple[Relay, str]]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Relay(clock)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def make_show(
    project: Project,
    smtp: str,
    publish: str = PUBLISH,
    *,
    premiere: str = "2024-01-05",
    more: str = "",
    base_url: str | None = None,
) -> None:
    show = SHOW_TOML.format(timezone=ZONE) + NEWSLETTER.format(smtp=smtp, publish=publish)
    if base_url is not None:
        show = show.replace(
            'base_url = "https://shows.example.net/test/"', f'base_url = "{base_url}"'
        )
    project.write("show.toml", show + more)
    project.write(
        "season-01/season.toml",
        SEASON_TOML.format(number=1, premiere=premiere, cadence="weekly", extra=""),
    )
    for n in (1, 2, 3):
        project.write(f"season-01/{n:02d}-episode-{n}.md", episode_text(n, f"Episode {n}"))
    state = project.root / ".famfeeds-state"
    state.mkdir(mode=0o700, exist_ok=True)
    store = SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")
    try:
        for address in PEOPLE:
            store.add("test-show", address, confirmed=True)
    finally:
        store.close()


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}


def famfeeds(
    project: Project, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "famfeeds", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        check=False,
    )


class Daemon:
    """``famfeeds run`` in the background, its log in a file."""

    def __init__(self, project: Project, clock: Clock, *extra: str) -> None:
        self.log_path = project.root / f"run-{time.monotonic_ns()}.log"
        self.log_file = self.log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "famfeeds", "run", "--clock-file", str(clock.path), *extra],
            cwd=project.root,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=env(),
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Wait until the log holds ``text`` ``count`` times."""
        wait_until(lambda: text in self.log(), timeout, lambda: f"{text!r} not in:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        code = self.process.wait(60)
        self.log_file.close()
        return code


def wait_until(check: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(why())
        time.sleep(0.05)


def entries(folder: Path) -> list[str]:
    feed = feedparser.parse((folder / "feed.xml").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    return sorted(e.title.split(" · ", 1)[-1] for e in feed.entries)


def published(project: Project) -> list[str]:
    path = project.root / "published.log"
    return path.read_text().split() if path.exists() else []


def test_run_acts_at_each_release_moment_and_nothing_twice(project: Project) -> None:
    """The daemon across two release moments: at each one the output and its published copy
    gain the episode, and every subscriber gets that day's issue once, within the minute."""
    clock = Clock(project.root / "clock", FIRST - timedelta(hours=6))
    with relay(clock) as (server, url):
        make_show(project, url)
        daemon = Daemon(project, clock)
        try:
            daemon.wait_for(f"next: {FIRST:%Y-%m-%dT%H:%M:%SZ}")
            assert entries(project.output) == []
            assert entries(project.root / "site") == []
            before = len(published(project))
            assert before == 1  # the first build at start was published once
            # The preview issue (a week before the premiere) is out and young: sent at start.
            assert server.issues() == Counter({(p, "2023-12-29"): 1 for p in PEOPLE})

            for moment, titles in ((FIRST, ["Episode 1"]), (SECOND, ["Episode 1", "Episode 2"])):
                issue = moment.astimezone(ZoneInfo(ZONE)).date().isoformat()
                clock.set(moment - timedelta(seconds=1))
                time.sleep(0.5)
                assert not server.arrivals(issue), "mail before the release moment"
                count = len(published(project))
                clock.set(moment)
                wait_until(
                    lambda issue=issue: len(server.arrivals(issue)) == len(PEOPLE),
                    60,
                    daemon.log,
                )
                for at in server.arrivals(issue).values():
                    assert moment <= at < moment + timedelta(seconds=60)
                assert entries(project.output) == titles
                assert entries(project.root / "site") == titles
                assert len(published(project)) > count
                # Next: the start of the next day (the page says which day it is as of).
                daemon.wait_for(f"next: {(moment + timedelta(days=1)):%Y-%m-%dT%H:%M:%SZ}")
        finally:
            code = daemon.stop()
        assert code == 0, daemon.log()
        assert "famfeeds run stopped" in daemon.log()
        assert "Traceback" not in daemon.log()
        expected = {
            (p, day): 1 for p in PEOPLE for day in ("2023-12-29", "2024-01-05", "2024-01-12")
        }
        assert server.issues() == Counter(expected)


MORNINGS = {
    "kiwi@example.com": "Pacific/Auckland",
    "berlin@example.com": "Europe/Berlin",
    "angeleno@example.com": "America/Los_Angeles",
    "paulista@example.com": "America/Sao_Paulo",
}


def local_morning(release: datetime, zone: str) -> datetime:
    """The first 08:00 in ``zone`` at or after ``release`` (08:00 exists on every day of
    these zones)."""
    local = release.astimezone(ZoneInfo(zone))
    day = local.date() if local.time() <= dtime(8) else local.date() + timedelta(days=1)
    return datetime.combine(day, dtime(8), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def test_run_end_to_end_hub_and_each_subscribers_morning(project: Project, tmp_path: Path) -> None:
    """Two release moments either side of Europe's change to summer time, driven by the
    clock: at each the output and the published site change, the real WebSub hub pushes the
    new feed to its subscriber, and each subscriber gets the issue once, at 08:00 their time."""
    from websubhub import running_hub, static_site, subscriber

    first = datetime(2024, 3, 29, 4, 0, tzinfo=UTC)  # 00:00 in New York (summer time)
    second = first + timedelta(days=7)  # Berlin has moved to summer time in between
    clock = Clock(project.root / "clock", first - timedelta(hours=1))
    (project.root / "site").mkdir()
    with (
        relay(clock) as (server, url),
        static_site(project.root / "site") as site,
        running_hub(tmp_path / "hub") as hub,
        subscriber() as reader,
    ):
        more = f'\n[feeds]\nhubs = ["{hub.url}"]\n'
        make_show(project, url, premiere="2024-03-29", more=more, base_url=site.url)
        text = (project.content / "show.toml").read_text()
        (project.content / "show.toml").write_text(
            text.replace("[publish]", 'deliver = "08:00"\n\n[publish]')
        )
        state = project.root / ".famfeeds-state"
        store = SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")
        for address, zone in MORNINGS.items():
            store.add("test-show", address, confirmed=True)
            store.set_zone("test-show", address, zone)
        store.close()
        everyone = [*PEOPLE, *MORNINGS]
        zones = {**{p: ZONE for p in PEOPLE}, **MORNINGS}
        daemon = Daemon(project, clock)
        try:
            daemon.wait_for("next: ")
            topic = site.url + "feed.xml"
            hub.subscribe(reader, topic)
            published_before = len(published(project))
            for n, moment in enumerate((first, second), start=1):
                issue = moment.astimezone(ZoneInfo(ZONE)).date().isoformat()
                seen = len(reader.deliveries)
                clock.set(moment)
                delivery = reader.wait_for_delivery(topic, after=seen, timeout=60)
                pushed = feedparser.parse(delivery.body)
                assert f"Episode {n}" in pushed.entries[0].title
                assert entries(project.root / "site")[-1] == f"Episode {n}"
                assert len(published(project)) == published_before + n
                groups: dict[datetime, list[str]] = {}
                for address in everyone:
                    groups.setdefault(local_morning(moment, zones[address]), []).append(address)
                daemon.wait_for(f"next: {min(groups):%Y-%m-%dT%H:%M:%SZ}")
                status = famfeeds(project, "status", "--json", "--clock-file", str(clock.path))
                shown = json.loads(status.stdout)["deliveries"]
                assert {"issue": issue, "at": f"{min(groups):%Y-%m-%dT%H:%M:%SZ}"}.items() <= (
                    shown[-1].items()
                ), shown
                for due, group in sorted(groups.items()):
                    # Every tick before this one has finished (its "next:" line is out), so
                    # anything it sent has arrived: none of this group may have.
                    daemon.wait_for(f"next: {due:%Y-%m-%dT%H:%M:%SZ}")
                    clock.set(due - timedelta(seconds=1))
                    early = set(group) & set(server.arrivals(issue))
                    assert not early, f"{early} got the issue before {due}"
                    clock.set(due)
                    wait_until(
                        lambda g=group, i=issue: set(g) <= set(server.arrivals(i)), 60, daemon.log
                    )
                    for address in group:
                        arrived = server.arrivals(issue)[address]
                        assert abs(arrived - due) <= timedelta(minutes=1), (address, arrived)
                        assert arrived >= moment
        finally:
            assert daemon.stop() == 0, daemon.log()
        assert hub.errors == []
    got = server.issues()
    for address in everyone:
        for day in ("2024-03-29", "2024-04-05"):
            assert got[(address, day)] == 1, (address, day, got)
    assert max(got.values()) == 1


def test_run_once_is_idempotent_and_a_failed_publish_holds_the_mail(project: Project) -> None:
    """``--once`` twice sends nothing twice and publishes an unchanged output once; a publish
    that fails stops the hubs and the mail until it succeeds, and status says so."""
    clock = Clock(project.root / "clock", FIRST + timedelta(minutes=1))
    with relay(clock) as (server, url):
        make_show(project, url, publish="echo rsync: connection refused >&2; exit 12")
        failed = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert failed.returncode == 1, failed.stderr
        assert "publish failed (exit status 12)" in failed.stderr
        assert "rsync: connection refused" in failed.stderr
        assert not server.issues()
        assert entries(project.output) == ["Episode 1"]  # built, not published
        status = famfeeds(project, "status", "--json", "--clock-file", str(clock.path))
        steps = json.loads(status.stdout)["steps"]
        assert any(s["step"] == "publish" and not s["ok"] for s in steps)

        make_show(project, url)
        done = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert done.returncode == 0, done.stderr
        assert published(project) and len(published(project)) == 1
        again = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert again.returncode == 0, again.stderr
        assert len(published(project)) == 1, "an unchanged output was published again"
        # The preview issue came out 7 days and a minute ago: past --max-age, never sent.
        assert server.issues() == Counter({(p, "2024-01-05"): 1 for p in PEOPLE})


def test_a_moment_missed_while_stopped_is_caught_up_within_max_age(project: Project) -> None:
    clock = Clock(project.root / "clock", FIRST + timedelta(minutes=1))
    with relay(clock) as (server, url):
        make_show(project, url)
        assert famfeeds(project, "run", "--once", "--clock-file", str(clock.path)).returncode == 0
        # Down for two weeks: the moments of episodes 2 and 3 pass.
        clock.set(SECOND + timedelta(days=7, hours=1))
        late = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert late.returncode == 0, late.stderr
        assert "catching up 2 moment(s) that passed since the last run" in late.stderr
        assert "the issue 2024-01-12 came out" in late.stderr  # older than 7 days: not sent
        assert entries(project.output) == ["Episode 1", "Episode 2", "Episode 3"]
        got = server.issues()
        assert all(got[(p, "2024-01-19")] == 1 for p in PEOPLE)
        assert not any(day == "2024-01-12" for _, day in got)


def test_one_run_per_show_and_bad_content_builds_nothing(project: Project) -> None:
    clock = Clock(project.root / "clock", FIRST + timedelta(minutes=1))
    with relay(clock) as (_, url):
        make_show(project, url)
        daemon = Daemon(project, clock)
        try:
            daemon.wait_for("next: ")
            second = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
            assert second.returncode != 0
            assert "another famfeeds run is running for test-show" in second.stderr
            assert "Traceback" not in second.stderr
            # An edit wakes the daemon: the new title is built and published.
            before = len(published(project))
            for attempt in range(30):  # the watch may not be set up yet: edit until it sees one
                project.write(
                    "season-01/01-episode-1.md", episode_text(1, "Renamed", f"Take {attempt}.")
                )
                with contextlib.suppress(pytest.fail.Exception):
                    wait_until(lambda: len(published(project)) > before, 2, daemon.log)
                    break
            wait_until(lambda: len(published(project)) > before, 60, daemon.log)
            assert entries(project.root / "site") == ["Renamed"]
        finally:
            assert daemon.stop() == 0
        project.write("season-01/02-episode-2.md", "+++\nnumber = 2\ntitle = 7\n+++\n")
        snapshot = project.snapshot()
        broken = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert broken.returncode == 1
        assert "02-episode-2.md" in broken.stderr and "title" in broken.stderr
        assert "Traceback" not in broken.stderr
        assert project.snapshot() == snapshot


def kill_loop(project: Project, kills: int) -> None:
    """Start ``famfeeds run`` and SIGKILL it at random moments across a release, ``kills``
    times, then let one run finish: nobody gets an issue twice, nobody due is left out,
    output/ is always a whole tree, and every step of the moment is recorded done."""
    rng = random.Random(kills)
    clock = Clock(project.root / "clock", FIRST - timedelta(seconds=2))
    with relay(clock) as (server, url):
        make_show(project, url)
        state = project.root / ".famfeeds-state"
        store = SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")
        crowd = [f"crowd{i}@example.com" for i in range(max(40, 8 * kills))]
        for address in crowd:
            store.add("test-show", address, confirmed=True)
        store.close()
        server.delay = 0.02

        def total() -> int:
            return sum(server.issues().values())

        cut_sends = 0
        for n in range(kills):
            if n == kills // 3:
                clock.set(FIRST)  # the release happens between two kills
            before = total()
            daemon = Daemon(project, clock)
            if n % 2 or n == kills // 3:  # mid-send: once the relay holds a few more
                target = before + rng.randint(1, 5)
                wait_until(
                    lambda t=target, d=daemon: total() >= t or "next: " in d.log(), 60, daemon.log
                )
            else:  # anywhere: starting, building, publishing, sending
                time.sleep(rng.uniform(0.2, 2.0))
            daemon.stop(signal.SIGKILL)
            if total() > before and "next: " not in daemon.log():
                cut_sends += 1
            if (project.output / "feed.xml").exists():
                entries(project.output)  # a whole tree, old or new, never half of one
                assert (project.output / "index.html").stat().st_size > 0
        assert cut_sends >= 1, "no kill landed in the middle of a send"
        clock.set(FIRST + timedelta(seconds=30))
        final = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert "Traceback" not in final.stderr
        got = server.issues()
        everyone = [*PEOPLE, *crowd]
        duplicates = {k: v for k, v in got.items() if v > 1}
        assert not duplicates
        missing = {p for p in everyone if got[(p, "2024-01-05")] != 1}
        # Only a message cut off after it was handed over may be missing: the ledger holds it
        # as uncertain ("committing"), never resent.
        with contextlib.closing(sqlite3.connect(state / "ledger.sqlite3")) as db:
            states = dict(
                db.execute(
                    "SELECT recipient, state FROM deliveries WHERE issue = '2024-01-05'"
                ).fetchall()
            )
        assert {p for p in missing if states.get(p) != "committing"} == set(), (missing, states)
        # A kill between the relay's 250 and the ledger's commit leaves "committing" for
        # someone who did get it once; any other state for a recipient is wrong.
        assert {p: states.get(p) for p in everyone if p not in missing} == {
            p: ("committing" if states.get(p) == "committing" else "sent")
            for p in everyone
            if p not in missing
        }
        uncertain = [p for p in everyone if states.get(p) == "committing"]
        assert len(uncertain) <= 2 * kills, uncertain  # a message in flight per connection
        assert entries(project.output) == ["Episode 1"]
        assert entries(project.root / "site") == ["Episode 1"]
        status = famfeeds(project, "status", "--json", "--clock-file", str(clock.path))
        found = json.loads(status.stdout)
        assert found["last_moment"] == f"{FIRST:%Y-%m-%dT%H:%M:%SZ}"
        done = {(s["moment"], s["step"]) for s in found["steps"] if s["ok"]}
        assert (f"{FIRST:%Y-%m-%dT%H:%M:%SZ}", "build") in done
        assert any(step == "publish" for _, step in done)
        # The published copy is the output as built: the last publish was not lost to a kill.
        site = {
            p.relative_to(project.root / "site").as_posix(): p.read_bytes()
            for p in (project.root / "site").rglob("*")
            if p.is_file()
        }
        assert all(site.get(name) == data for name, data in project.snapshot().items())


def test_run_survives_sigkill_at_random_moments(project: Project) -> None:
    kill_loop(project, 4)


@pytest.mark.slow
def test_run_survives_twenty_four_sigkills(project: Project) -> None:
    kill_loop(project, 24)


def test_a_late_run_waits_for_the_end_of_quiet_hours(project: Project) -> None:
    """A subscriber already due (the issue came out hours ago) is still not mailed inside
    their quiet hours: a catch-up at 23:00 in Los Angeles mails the New Yorkers, who are
    past theirs, and the Angeleno at 07:00 their time."""
    late = FIRST + timedelta(hours=23)  # 2024-01-05 23:00 in New York, 20:00 in LA
    clock = Clock(project.root / "clock", late)
    with relay(clock) as (server, url):
        make_show(project, url)
        text = (project.content / "show.toml").read_text()
        text = text.replace("[publish]", 'quiet_hours = "19:00-07:00"\n\n[publish]')
        (project.content / "show.toml").write_text(text)
        state = project.root / ".famfeeds-state"
        store = SubscriberStore.open(state / "subscribers.sqlite3", secret=state / "secret.key")
        store.add("test-show", "angeleno@example.com", confirmed=True)
        store.set_zone("test-show", "angeleno@example.com", "America/Los_Angeles")
        store.set_zone("test-show", "fan0@example.com", "Europe/Berlin")  # 05:00 there: quiet
        store.close()
        done = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert done.returncode == 0, done.stderr
        # 23:00 in New York, 05:00 in Berlin, 20:00 in Los Angeles: all inside 19:00-07:00.
        assert set(server.arrivals("2024-01-05")) == set(), done.stderr
        assert "Not yet due: 4" in done.stderr
        berlin_seven = datetime(2024, 1, 6, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
        clock.set(berlin_seven)
        assert famfeeds(project, "run", "--once", "--clock-file", str(clock.path)).returncode == 0
        assert set(server.arrivals("2024-01-05")) == {"fan0@example.com"}
        clock.set(datetime(2024, 1, 6, 15, 0, tzinfo=UTC))  # 07:00 in LA, 10:00 in New York
        assert famfeeds(project, "run", "--once", "--clock-file", str(clock.path)).returncode == 0
        assert set(server.arrivals("2024-01-05")) == {*PEOPLE, "angeleno@example.com"}
        for address, at in server.arrivals("2024-01-05").items():
            zone = ZoneInfo("Europe/Berlin" if address == "fan0@example.com" else ZONE)
            if address == "angeleno@example.com":
                zone = ZoneInfo("America/Los_Angeles")
            assert dtime(7) <= at.astimezone(zone).time() < dtime(19), (address, at)


def test_an_episode_with_a_time_of_day_appears_at_its_minute(project: Project) -> None:
    """Built before 21:00 on its day, the feed does not list the 21:00 episode yet; at 21:00
    it does, is published, and its issue goes out."""
    clock = Clock(project.root / "clock", datetime(2024, 1, 5, 12, 0, tzinfo=UTC))  # 07:00 NY
    with relay(clock) as (server, url):
        make_show(project, url)
        season = (project.content / "season-01/season.toml").read_text()
        (project.content / "season-01/season.toml").write_text(season + 'release_time = "21:00"\n')
        early = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert early.returncode == 0, early.stderr
        assert entries(project.root / "site") == []
        assert not server.arrivals("2024-01-05")
        clock.set(datetime(2024, 1, 6, 2, 0, tzinfo=UTC))  # 21:00 in New York
        on_time = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert on_time.returncode == 0, on_time.stderr
        assert entries(project.root / "site") == ["Episode 1"]
        assert set(server.arrivals("2024-01-05")) == set(PEOPLE)


def test_a_new_publish_command_publishes_the_unchanged_site(project: Project) -> None:
    clock = Clock(project.root / "clock", FIRST + timedelta(minutes=1))
    with relay(clock) as (_, url):
        make_show(project, url, publish="true")
        assert famfeeds(project, "run", "--once", "--clock-file", str(clock.path)).returncode == 0
        assert published(project) == []
        make_show(project, url)  # the same content, a new destination
        again = famfeeds(project, "run", "--once", "--clock-file", str(clock.path))
        assert again.returncode == 0, again.stderr
        assert len(published(project)) == 1
        assert entries(project.root / "site") == ["Episode 1"]


def test_a_publish_past_its_timeout_leaves_nothing_running(tmp_path: Path) -> None:
    from famfeeds.delivery.release import run_publish

    marker = tmp_path / "still-running"
    command = f"(sleep 3; touch {marker}) & sleep 30"
    done = run_publish(command, tmp_path, timeout=0.5)
    assert not done.ok and "stopped after 0.5 s" in done.summary
    time.sleep(3.5)
    assert not marker.exists(), "a child of the publish command outlived its timeout"
    noisy = run_publish("head -c 100000 /dev/urandom", tmp_path, timeout=10)
    assert noisy.ok and noisy.output == "(100,000 bytes of output that is not text)"


def test_a_half_written_clock_file_does_not_stop_the_daemon(project: Project) -> None:
    clock = Clock(project.root / "clock", FIRST - timedelta(hours=1))
    with relay(clock) as (server, url):
        make_show(project, url)
        daemon = Daemon(project, clock)
        try:
            daemon.wait_for(f"next: {FIRST:%Y-%m-%dT%H:%M:%SZ}")
            for _ in range(20):  # what `echo ... > clock` looks like to a reader, mid-write
                clock.path.write_text("", encoding="utf-8")
                time.sleep(0.05)
                clock.path.write_text("2024-01-05T0", encoding="utf-8")
                time.sleep(0.05)
            assert daemon.process.poll() is None, daemon.log()
            clock.set(FIRST)
            wait_until(lambda: len(server.arrivals("2024-01-05")) == len(PEOPLE), 60, daemon.log)
        finally:
            assert daemon.stop() == 0, daemon.log()
