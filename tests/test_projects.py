"""Per-project state: two shows in one repository, and the issue cache's key."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import icalendar
import pytest
from click.testing import Result

from famfeeds.build.lockfile import load_lock
from famfeeds.build.pipeline import render
from famfeeds.delivery.ledger import Ledger
from support import SEASON_TOML, SHOW_TOML, episode_text

NEWSLETTER = """
[newsletter]
sender_name = "News"
sender_address = "news@{domain}"
unsubscribe_url = "https://{domain}/unsubscribe?token={{token}}"
"""


def write_show(root: Path, folder: str, slug: str, domain: str, episodes: int) -> Path:
    content = root / folder
    show = SHOW_TOML.format(timezone="Europe/London").replace("test-show", slug)
    show = show.replace("shows.example.net", domain)
    show = show.replace("[author]", NEWSLETTER.format(domain=domain) + "\n[author]")
    (content / "season-01").mkdir(parents=True)
    (content / "show.toml").write_text(show, encoding="utf-8")
    season = SEASON_TOML.format(number=1, premiere="2024-01-05", cadence="weekly", extra="")
    (content / "season-01/season.toml").write_text(season, encoding="utf-8")
    for n in range(1, episodes + 1):
        text = episode_text(n, f"{slug} {n}")
        (content / f"season-01/{n:02d}-ep-{n}.md").write_text(text, encoding="utf-8")
    return content


def events(path: Path) -> dict[str, int]:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    return {str(e["UID"]): int(e["SEQUENCE"]) for e in calendar.walk("VEVENT")}


def test_two_shows_in_one_repository_keep_their_calendars_apart(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    a = write_show(tmp_path, "show-a", "show-a", "a.example.org", 3)
    b = write_show(tmp_path, "show-b", "show-b", "b.example.org", 4)
    for content, out in ((a, "out-a"), (b, "out-b"), (a, "out-a"), (b, "out-b")):
        result = run(
            "build", "--content", content, "--output", tmp_path / out, "--as-of", "2024-02-01"
        )
        assert result.exit_code == 0, result.output
    seen_a, seen_b = (
        events(tmp_path / "out-a/calendar.ics"),
        events(tmp_path / "out-b/calendar.ics"),
    )
    assert sorted(seen_a) == [f"show-a-s01e0{n}@a.example.org" for n in (1, 2, 3)]
    assert sorted(seen_b) == [f"show-b-s01e0{n}@b.example.org" for n in (1, 2, 3, 4)]
    assert set(seen_a.values()) == set(seen_b.values()) == {0}
    lock = load_lock(tmp_path / "famfeeds.lock")
    assert len(lock.events) == 7
    # Moving one of A's episodes raises its SEQUENCE and leaves B's history alone.
    (a / "season-01/02-ep-2.md").write_text(episode_text(2, "show-a 2", release="2024-01-13"))
    assert run("build", "--content", a, "--output", tmp_path / "out-a").exit_code == 0
    assert events(tmp_path / "out-a/calendar.ics")["show-a-s01e02@a.example.org"] == 1
    after = load_lock(tmp_path / "famfeeds.lock")
    assert after.of_show("show-b") == lock.of_show("show-b")


def test_a_slug_that_prefixes_another_does_not_claim_its_events(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    a = write_show(tmp_path, "a", "fam", "a.example.org", 2)
    b = write_show(tmp_path, "b", "fam-extra", "b.example.org", 2)
    assert run("build", "--content", b, "--output", tmp_path / "out-b").exit_code == 0
    assert run("build", "--content", a, "--output", tmp_path / "out-a").exit_code == 0
    cancelled = icalendar.Calendar.from_ical((tmp_path / "out-a/calendar.ics").read_bytes())
    assert all(str(e["STATUS"]) == "CONFIRMED" for e in cancelled.walk("VEVENT"))
    assert len(list(cancelled.walk("VEVENT"))) == 2


def test_the_ledger_keeps_shows_apart_and_migrates_the_old_format(tmp_path: Path) -> None:
    path = tmp_path / ".famfeeds-state/ledger.sqlite3"
    path.parent.mkdir()
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE deliveries (issue TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT "
        "NULL, attempts INTEGER NOT NULL DEFAULT 0, last_reply TEXT NOT NULL DEFAULT '', "
        "updated REAL NOT NULL, PRIMARY KEY (issue, recipient))"
    )
    old.execute("INSERT INTO deliveries VALUES ('2024-01-05', 'ann@example.org', 'sent', 1, '', 0)")
    old.commit()
    old.close()
    ledger = Ledger(path, legacy_show="show-a")
    try:
        assert ledger.states("show-a", "2024-01-05") == {"ann@example.org": "sent"}
        assert ledger.states("show-b", "2024-01-05") == {}
        ledger.begin("show-b", "2024-01-05", "ann@example.org")
        ledger.mark("show-b", "2024-01-05", "ann@example.org", "sent")
        assert ledger.states("show-a", "2024-01-05") == {"ann@example.org": "sent"}
    finally:
        ledger.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def newsletter_project(root: Path) -> Path:
    return write_show(root, "content", "cached", "c.example.org", 3)


def misses(content: Path, **kwargs: object) -> int:
    """How many issues a render had to render anew (not from the cache)."""
    result = render(content, as_of=date(2024, 2, 1), **kwargs)  # type: ignore[arg-type]
    result.cache.save()
    return len(result.letters) - len(result.cache.used)


def test_the_issue_cache_misses_on_every_input_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = newsletter_project(tmp_path)
    assert misses(content) == 4  # a preview and three release days
    assert misses(content) == 0
    # Another working folder: the same records, the same keys.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert misses(content) == 0
    # A template edit (a project's own template overrides the shipped one).
    templates = tmp_path / "templates"
    templates.mkdir()
    shipped = Path(__file__).resolve().parents[1] / "templates/newsletter.txt.j2"
    (templates / "newsletter.txt.j2").write_text(shipped.read_text() + "\nP.S. Hello.\n")
    assert misses(content, templates=templates) == 4
    letter = render(content, templates=templates, as_of=date(2024, 2, 1)).letters[-1]
    assert "P.S. Hello." in letter.item.text
    # A change in famfeeds' own code or a library: the code digest is part of the key.
    import famfeeds.build.keys as keys

    monkeypatch.setattr(keys, "code_digest", lambda: "another version")
    assert misses(content, templates=templates) == 4


def test_a_corrupt_cache_entry_is_a_miss_and_a_warning(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    content = newsletter_project(tmp_path)
    args = ["build", "--content", content, "--output", tmp_path / "out", "--as-of", "2024-02-01"]
    assert run(*args).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out/newsletter").iterdir()}
    for entry in (tmp_path / ".famfeeds-cache/issues").glob("*.json"):
        damaged = entry.with_name("damaged")  # replaced, as a tool or a person would
        damaged.write_bytes(entry.read_bytes()[:40])
        damaged.replace(entry)
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count("unreadable issue cache entry") == 1
    after = {p.name: p.read_bytes() for p in (tmp_path / "out/newsletter").iterdir()}
    assert after == before


def test_a_cache_that_cannot_be_written_only_slows_the_build(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    content = newsletter_project(tmp_path)
    (tmp_path / ".famfeeds-cache").write_text("not a folder")  # even root cannot mkdir here
    args = ["build", "--content", content, "--output", tmp_path / "out", "--as-of", "2024-02-01"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/newsletter/2024-01-05.eml").is_file()


def test_the_lock_file_is_an_ordinary_committed_file(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    content = write_show(tmp_path, "content", "plain", "p.example.org", 2)
    old = os.umask(0o022)
    try:
        assert run("build", "--content", content, "--output", tmp_path / "out").exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "famfeeds.lock").stat().st_mode & 0o777 == 0o644


def test_unused_cache_entries_are_forgotten_at_most_daily(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that adds issues forgets entries no build used for 14 days; looking for them
    lists every entry, so it happens once a day at most."""
    import time

    import famfeeds.build.issue_cache as issue_cache

    content = newsletter_project(tmp_path)
    args = ["build", "--content", content, "--output", tmp_path / "out", "--as-of", "2024-02-01"]
    assert run(*args).exit_code == 0
    store = tmp_path / ".famfeeds-cache/issues"
    old = time.time() - 15 * 86400
    stale = [store / ("f" * 64 + ".json"), store / ("f" * 64 + ".bin")]
    for path in stale:
        path.write_bytes(b"{}")
        os.utime(path, (old, old))

    def edit(text: str) -> None:
        episode = next((content / "season-01").glob("01-*.md"))
        episode.write_text(episode.read_text().replace("\n\n", f"\n\n{text} ", 1))

    edit("Changed.")
    assert run(*args).exit_code == 0
    assert all(path.exists() for path in stale)  # looked less than a day ago
    monkeypatch.setattr(issue_cache, "PRUNE_EVERY_SECONDS", 0)
    edit("Changed again.")
    assert run(*args).exit_code == 0
    assert not any(path.exists() for path in stale)
    assert len(list(store.glob("*.json"))) >= 4  # the entries in use are kept
