"""Remembered render results: a rebuild takes unchanged VEVENTs from the memo, and the bytes
are the same either way; built files as one lazy mapping."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

import famfeeds.render.calendar as calendar
from famfeeds.render.files import FileSet, digest_of
from famfeeds.render.memo import NO_MEMO, key, memoized
from support import Project, build_args, episode_text
from test_incremental import NEWSLETTER


class Opaque:
    """An object whose repr is its address."""


class DictMemo(dict[bytes, bytes]):
    """A memo in a dict (famfeeds.render.memo.Memo)."""

    def put(self, key: bytes, value: bytes) -> None:
        self[key] = value


def test_a_key_needs_inputs_that_show_themselves() -> None:
    assert key("a", 1, (2, 3)) == key("a", 1, (2, 3))
    assert key("a", 1) != key("a", 2)
    assert key("a", Opaque()) is None
    calls: list[int] = []

    def make() -> bytes:
        calls.append(1)
        return b"made"

    assert memoized(NO_MEMO, make, "x") == b"made"
    store = DictMemo()

    assert memoized(store, make, "x") == b"made"
    assert memoized(store, make, "x") == b"made"
    assert memoized(store, make, "x", Opaque()) == b"made"
    assert len(calls) == 3  # once without a memo, once for "x", once without a key


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
    assert files.digest("c") == digest_of(b"3") and read == []
    assert files["b"] == b"two" and files["c"] == b"3" and read == ["c"]
    assert dict(files) == {"a": b"1", "b": b"two", "c": b"3"}


def test_remembered_files_are_made_only_when_their_bytes_are_asked_for() -> None:
    from famfeeds.render.memo import LazyFiles, memoized_files

    store = DictMemo()

    made: list[int] = []

    def make() -> dict[str, bytes]:
        made.append(1)
        return {"a/index.html": b"<p>a</p>", "b.ics": b"BEGIN:VCALENDAR"}

    first = memoized_files(store, make, "pages", "season-1")
    assert made == [1] and dict(first) == make() and len(made) == 2
    again = memoized_files(store, make, "pages", "season-1")
    assert isinstance(again, LazyFiles) and len(made) == 2  # names and digests only
    assert sorted(again) == ["a/index.html", "b.ics"]
    assert FileSet(again).digest("b.ics") == digest_of(b"BEGIN:VCALENDAR")
    assert len(made) == 2
    assert again["a/index.html"] == b"<p>a</p>" and len(made) == 3  # made once, when asked
    assert again["b.ics"] == b"BEGIN:VCALENDAR" and len(made) == 3
    with pytest.raises(KeyError):
        again["c"]
    other = memoized_files(store, make, "pages", "season-2")  # other inputs: made
    assert not isinstance(other, LazyFiles) and len(made) == 4
    for k in store:  # a damaged entry is a miss, never wrong bytes
        store[k] = b"not\tdigests"
    assert not isinstance(memoized_files(store, make, "pages", "season-1"), LazyFiles)


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

    def counting(*a: object) -> dict[str, bytes]:
        made.append(1)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(pages, "season_pages", counting)
    (project.output / "s01/e02/index.html").unlink()  # its bytes are needed: made again
    assert run(*args).exit_code == 0
    assert run(*preview).exit_code == 0
    assert made == [1]
    assert len(list((project.root / ".famfeeds-cache").glob("memo-*.pickle"))) == 2


def test_remembered_files_made_otherwise_are_an_error_not_wrong_bytes() -> None:
    from famfeeds.render.memo import StaleMemo, memoized_files

    store = DictMemo()

    memoized_files(store, lambda: {"a.html": b"old"}, "pages", "same inputs")
    lazy = memoized_files(store, lambda: {"a.html": b"new"}, "pages", "same inputs")
    with pytest.raises(StaleMemo, match=r"a\.html came out other"):
        lazy["a.html"]


def test_a_memo_whose_key_missed_an_input_is_forgotten_and_the_build_made_again(
    project: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a key ever miss an input, the writer finds the remade bytes other than
    remembered: the build deletes the render memo, renders everything afresh, says so,
    and the output is the build from nothing's. (Here the whole build's key is made to
    miss everything.)"""
    import famfeeds.build.pipeline

    project.show()
    project.season(1, episodes=3)
    args = build_args(project, "--as-of", "2024-03-01")
    assert run(*args).exit_code == 0
    monkeypatch.setattr(
        famfeeds.build.pipeline, "_build_inputs", lambda context: ("always the same",)
    )
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
