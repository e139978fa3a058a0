"""The build's evaluator: a step's key comes from what it is given, so a change to any
argument is a miss and a value that cannot show what it holds is refused; a rebuild takes
unchanged VEVENTs from the memo, and the bytes are the same either way; built files as one
lazy mapping."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

import famfeeds.render.calendar as calendar
from famfeeds.build.evaluate import (
    Evaluator,
    Fingerprints,
    LazyFiles,
    StaleMemo,
    Unkeyable,
    digest_of,
    file_digest,
)
from famfeeds.render.context import direct
from famfeeds.render.files import FileSet
from support import Project, build_args, episode_text
from test_incremental import NEWSLETTER


class DictMemo(dict[bytes, object]):
    """A memo in a dict (famfeeds.build.evaluate.Memo)."""

    def put(self, key: bytes, value: object) -> None:
        self[key] = value


@dataclass(frozen=True)
class Point:
    x: int
    label: str
    when: date | None = None


@dataclass
class Loose:
    x: int


def twice(text: str) -> bytes:
    CALLS.append(text)
    return (text * 2).encode()


def pair(call: Callable[..., bytes], a: str, b: str) -> bytes:
    CALLS.append(f"pair {a} {b}")
    return call(twice, a) + call(twice, b)


CALLS: list[str] = []


def test_a_key_changes_with_every_argument_and_only_with_them() -> None:
    prints = Fingerprints()
    evaluate = Evaluator(DictMemo(), prints)
    point = Point(1, "a", date(2024, 1, 1))
    key = evaluate.key(twice, (point,))
    assert key == Evaluator(DictMemo()).key(twice, (Point(1, "a", date(2024, 1, 1)),))
    for other in (replace(point, x=2), replace(point, label="b"), replace(point, when=None)):
        assert evaluate.key(twice, (other,)) != key
    assert evaluate.key(pair, (point,)) != key  # the step is part of it
    assert evaluate.key(twice, (point, None)) != key
    assert evaluate.key(twice, ((1, 2),)) != evaluate.key(twice, ((1, 2, 3),))
    assert evaluate.key(twice, ("a" * 300,)) != evaluate.key(twice, ("a" * 299 + "b",))
    assert evaluate.key(twice, (b"x" * 300,)) != evaluate.key(twice, (b"x" * 299 + b"y",))
    assert evaluate.key(twice, ({"a": 1},)) != evaluate.key(twice, ({"a": 2},))
    assert evaluate.key(twice, (timedelta(1),)) != evaluate.key(twice, (timedelta(2),))
    assert evaluate.key(twice, (direct,)) == evaluate.key(twice, (evaluate,))  # not inputs


def test_moments_key_by_their_instant_and_their_zone_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import famfeeds.records.zones as zones

    prints = Fingerprints()
    zone = ZoneInfo("America/New_York")
    local = datetime(2024, 3, 10, 12, 0, tzinfo=zone)
    assert prints.of(local) != prints.of(local.astimezone(UTC))  # the same instant, shown apart
    assert prints.of(local) != prints.of(datetime(2024, 3, 10, 12, 0, tzinfo=ZoneInfo("UTC")))
    before = prints.of(local)
    monkeypatch.setattr(zones, "zone_rules_digest", lambda name: "other rules")
    assert Fingerprints().of(datetime(2024, 3, 10, 12, 0, tzinfo=zone)) != before


def test_a_value_that_cannot_show_what_it_holds_is_refused() -> None:
    evaluate = Evaluator(DictMemo())

    class Opaque:
        pass

    for value in (Opaque(), Loose(1), object(), Path("x"), {1, 2}, lambda: 1):
        with pytest.raises(Unkeyable):
            evaluate(twice, value)

    def local(text: str) -> bytes:
        return text.encode()

    with pytest.raises(Unkeyable, match="only a module's own functions"):
        evaluate(local, "a")
    prints = Fingerprints()
    loose = Loose(1)
    prints.register(loose, "loose:1")  # what the build says it was made from
    assert Evaluator(DictMemo(), prints).key(twice, (loose,))


def test_a_hit_gives_what_the_step_gave_and_keeps_the_parts() -> None:
    memo = DictMemo()
    CALLS.clear()
    first = Evaluator(memo)
    assert first(pair, first, "a", "b") == b"aabb"
    assert CALLS == ["pair a b", "a", "b"] and len(memo) == 3
    kept: list[bytes] = []

    class Watching(DictMemo):
        def get(self, key: bytes) -> object | None:  # type: ignore[override]
            kept.append(key)
            return super().get(key)

    watched = Watching(memo)
    again = Evaluator(watched)
    assert again(pair, again, "a", "b") == b"aabb"
    assert CALLS == ["pair a b", "a", "b"]  # nothing made
    assert sorted(kept) == sorted(memo)  # the parts were asked for too: a memo keeps them
    for damage in (b"damaged", ("b", None, ()), ("f", {"a": "not a digest"}, ()), ("b", b"", [1])):
        memo.update({k: damage for k in memo})  # a damaged entry is a miss, never wrong bytes
        CALLS.clear()
        assert Evaluator(memo)(twice, "a") == b"aa" and CALLS == ["a"]


def test_unchanged_seasons_come_from_the_memo(
    project: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events are remembered a season at a time: an edit serialises its season again."""
    project.show()
    project.season(1, episodes=4)
    project.season(2, premiere="2024-02-01", episodes=3)
    args = build_args(project, "--as-of", "2024-03-01")
    assert run(*args).exit_code == 0
    first = project.snapshot()
    serialised: list[str] = []
    real = calendar.serialise_event

    def counting(uid: str, data: object, state: object) -> bytes:
        serialised.append(uid)
        return real(uid, data, state)  # type: ignore[arg-type]

    monkeypatch.setattr(calendar, "serialise_event", counting)
    assert run(*args).exit_code == 0
    assert serialised == []  # every VEVENT remembered
    assert project.snapshot() == first
    project.write("season-01/03-episode-3.md", episode_text(3, "Episode 3", "A new synopsis."))
    assert run(*args).exit_code == 0
    assert sorted(serialised) == [f"test-show-s01e0{n}@shows.example.net" for n in (1, 2, 3, 4)]
    # The same bytes as a build without any memo.
    monkeypatch.undo()
    for memo in (project.root / ".famfeeds-cache").glob("memo-*.pickle"):
        memo.unlink()
    edited = project.snapshot()
    assert run(*args).exit_code == 0
    assert project.snapshot() == edited


def test_a_file_set_reads_nothing_it_is_not_asked_for(tmp_path: Path) -> None:
    read: list[str] = []

    class Stored(dict[str, bytes]):
        def __getitem__(self, name: str) -> bytes:
            read.append(name)
            return super().__getitem__(name)

        def digest(self, name: str) -> bytes:
            return digest_of(super().__getitem__(name))

    files = FileSet({"a": b"1", "b": b"2"}, Stored({"c": b"3"}))
    files.add({"b": b"two"})
    assert sorted(files) == ["a", "b", "c"] and len(files) == 3
    assert file_digest(files, "c") == digest_of(b"3") and read == []
    assert files["b"] == b"two" and files["c"] == b"3" and read == ["c"]
    assert dict(files) == {"a": b"1", "b": b"two", "c": b"3"}


def pages(season: int) -> dict[str, bytes]:
    MADE.append(season)
    return {"a/index.html": b"<p>a</p>", "b.ics": b"BEGIN:VCALENDAR"}


MADE: list[int] = []


def test_remembered_files_are_made_only_when_their_bytes_are_asked_for() -> None:
    store = DictMemo()
    MADE.clear()
    first = Evaluator(store)(pages, 1)
    assert MADE == [1] and dict(first) == pages(1) and len(MADE) == 2
    again = Evaluator(store)(pages, 1)
    assert isinstance(again, LazyFiles) and len(MADE) == 2  # names and digests only
    assert sorted(again) == ["a/index.html", "b.ics"]
    assert file_digest(FileSet(again), "b.ics") == digest_of(b"BEGIN:VCALENDAR")
    assert len(MADE) == 2
    assert again["a/index.html"] == b"<p>a</p>" and len(MADE) == 3  # made once, when asked
    assert again["b.ics"] == b"BEGIN:VCALENDAR" and len(MADE) == 3
    with pytest.raises(KeyError):
        again["c"]
    other = Evaluator(store)(pages, 2)  # other arguments: made
    assert not isinstance(other, LazyFiles) and len(MADE) == 4


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="abN", max_size=30),
    st.text(alphabet="abN", min_size=1, max_size=3),
    st.text(alphabet="abN", min_size=1, max_size=3),
)
def test_split_at_cuts_as_the_regular_expression_would(text: str, first: str, second: str) -> None:
    import re

    from famfeeds.render.message import split_at

    expected = re.split(f"({re.escape(first)}|{re.escape(second)})", text)
    assert split_at(text, first, second) == expected


def test_a_preview_does_not_push_the_published_builds_memo_out(
    project: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Builds at another address (serve, --base-url) keep a memo of their own."""
    import famfeeds.build.inplace
    import famfeeds.render.pages as pages

    monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)  # written in place
    project.show()
    project.season(1, episodes=3)
    args = build_args(project, "--as-of", "2024-03-01")
    preview = [
        "build",
        "--content",
        project.content,
        "--output",
        project.root / "preview",
        "--as-of",
        "2024-03-01",
        "--base-url",
        "http://127.0.0.1:8000/",
    ]
    assert run(*args).exit_code == 0
    assert run(*preview).exit_code == 0
    made: list[int] = []
    real = pages.season_pages

    @functools.wraps(real)  # a step keeps its module's name (local functions are refused)
    def counting(*a: object) -> dict[str, bytes]:
        made.append(1)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(pages, "season_pages", counting)
    (project.output / "s01/e02/index.html").unlink()  # its bytes are needed: made again
    assert run(*args).exit_code == 0
    assert run(*preview).exit_code == 0
    assert made == [1]
    assert len(list((project.root / ".famfeeds-cache").glob("memo-*.pickle"))) == 2


def page(text: str) -> dict[str, bytes]:
    return {"a.html": PAGE["text"].encode()}


PAGE = {"text": "old"}


def test_remembered_files_made_otherwise_are_an_error_not_wrong_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step that read something it was not given (here a global) comes out other than
    remembered: an error, never the wrong bytes."""
    store = DictMemo()
    Evaluator(store)(page, "same")
    monkeypatch.setitem(PAGE, "text", "new")
    lazy = Evaluator(store)(page, "same")
    with pytest.raises(StaleMemo, match=r"a\.html came out other"):
        lazy["a.html"]


def test_a_memo_whose_key_missed_an_input_is_forgotten_and_the_build_made_again(
    project: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a key ever miss an input, the writer finds the remade bytes other than
    remembered: the build deletes the render memo, renders everything afresh, says so,
    and the output is the build from nothing's. (Here the whole build's key is made to
    miss everything.)"""
    project.show()
    project.season(1, episodes=3)
    args = build_args(project, "--as-of", "2024-03-01")
    assert run(*args).exit_code == 0
    real = Evaluator.key

    def blind(self: Evaluator, step: Callable[..., object], args: tuple[object, ...]) -> bytes:
        return b"always the same" if step.__name__ == "render_files" else real(self, step, args)

    monkeypatch.setattr(Evaluator, "key", blind)
    assert run(*args).exit_code == 0  # remembers the whole build under that key
    project.write("season-01/02-episode-2.md", episode_text(2, "Episode 2", "Changed."))
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "rendered everything again without the render memo" in result.output
    assert "Changed." in (project.output / "s01" / "e02" / "index.html").read_text("utf-8")
    edited = project.snapshot()
    monkeypatch.undo()
    shutil.rmtree(project.root / ".famfeeds-cache")
    shutil.rmtree(project.output)
    assert run(*args).exit_code == 0
    assert project.snapshot() == edited


def test_a_build_like_the_last_renders_nothing_and_keeps_the_memo(
    project: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs the same as the last build's (records, templates, day, calendar states): no
    renderer runs, the output stays as it was, and the memo keeps every part for the next
    build, which then renders only what an edit touched. A file deleted by hand is made
    again, the same bytes. (Written in place, as a large output is: the swap writer reads
    every file's bytes, so it always renders.)"""
    import famfeeds.build.inplace
    import famfeeds.build.pipeline

    monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(1, episodes=4)
    project.season(2, premiere="2024-02-01", episodes=3)
    args = build_args(project, "--as-of", "2024-03-01")
    assert run(*args).exit_code == 0
    first = project.snapshot()
    rounds: list[int] = []
    real = famfeeds.build.pipeline.renderers

    def counting() -> tuple[object, ...]:
        rounds.append(1)
        return real()

    monkeypatch.setattr(famfeeds.build.pipeline, "renderers", counting)
    serialised: list[str] = []
    serialise = calendar.serialise_event

    def counting_events(uid: str, data: object, state: object) -> bytes:
        serialised.append(uid)
        return serialise(uid, data, state)  # type: ignore[arg-type]

    monkeypatch.setattr(calendar, "serialise_event", counting_events)
    for _ in range(2):
        assert run(*args).exit_code == 0
        assert rounds == []
        assert project.snapshot() == first
    (project.output / "s02" / "e02" / "index.html").unlink()
    assert run(*args).exit_code == 0
    assert rounds == [1]  # made again to give back the deleted page
    assert project.snapshot() == first
    assert serialised == []  # its parts all came from the memo
    project.write("season-02/02-episode-2.md", episode_text(2, "Episode 2", "Changed."))
    assert run(*args).exit_code == 0
    assert rounds == [1, 1]
    assert sorted(serialised) == [f"test-show-s02e0{n}@shows.example.net" for n in (1, 2, 3)]


def test_the_letters_of_a_build_like_the_last_are_those_of_a_fresh_one(
    project: Project, run: Callable[..., Result]
) -> None:
    from famfeeds.build.pipeline import BuildRequest, build

    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(1, episodes=4)
    args = build_args(project, "--as-of", "2024-03-01")
    assert run(*args).exit_code == 0
    result, _ = build(BuildRequest(project.content, project.output, as_of=date(2024, 3, 1)))
    remembered = [(x.item.issue.slug, x.item.subject, dict(x.files)) for x in result.letters]
    shutil.rmtree(project.root / ".famfeeds-cache")
    fresh, _ = build(BuildRequest(project.content, project.output, as_of=date(2024, 3, 1)))
    assert len(remembered) == 5  # a week before the premiere, and each release day
    assert remembered == [(x.item.issue.slug, x.item.subject, dict(x.files)) for x in fresh.letters]
