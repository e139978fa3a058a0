"""A rebuild in place killed at a random moment: every file is the old one or the new one,
never part of one, and the next build repairs the output completely.

Real processes, SIGKILL: `famfeeds build` of a catalogue large enough (over
famfeeds.build.inplace.PER_FILE_FROM files) to be rebuilt in place. Each trial changes the content
(an edited synopsis; an episode added or removed; the other reference date), kills a rebuild
at a random moment (every other trial: a random moment while it replaces files, once its
staging folder appears), checks that every file holds its old bytes or its new ones,
rebuilds to completion, and compares with a build of the same content from scratch.

The default suite runs three trials on a catalogue of 8 seasons (some 450 files) whose build
processes rebuild in place from one file on (PER_FILE_FROM lowered in the child, the same
code path at a quarter of the cost); ``-m slow`` runs 20 on the 45 seasons that pass the real
threshold.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from famfeeds.build.inplace import PER_FILE_FROM
from support import SHOW_TOML, episode_text

SEASONS = 45
"""Enough seasons to pass the real PER_FILE_FROM (the slow test)."""
SMALL = 8
"""The default test's seasons, rebuilt in place because its builds lower PER_FILE_FROM."""
LOWERED = (
    "import famfeeds.build.inplace as inplace; inplace.PER_FILE_FROM = 1; "
    "from famfeeds.cli import main; main()"
)
"""``python -c`` of a famfeeds that rebuilds every output in place (as ``python -m famfeeds``
but for the threshold)."""
AS_OF = ("2030-01-01", "2030-01-02")
"""Trials alternate between two reference dates: most pages and calendar files change, so a
good part of each rebuild is spent replacing files, where the kills matter."""


def write_catalogue(content: Path, seasons: int) -> None:
    """``seasons`` seasons of 10 daily episodes: some 53 files built per season."""
    (content).mkdir(parents=True)
    (content / "show.toml").write_text(
        SHOW_TOML.format(timezone="Europe/Paris")
        + '\n[newsletter]\nsender_name = "Daily"\nsender_address = "news@example.net"\n'
        'unsubscribe_url = "https://example.net/u?t={token}"\n',
        encoding="utf-8",
    )
    for s in range(1, seasons + 1):
        folder = content / f"season-{s:02d}"
        folder.mkdir()
        premiere = date(2020, 1, 6) + timedelta(days=10 * (s - 1))
        (folder / "season.toml").write_text(
            f'number = {s}\ntitle = "Season {s}"\npremiere = {premiere}\ncadence = "daily"\n'
        )
        for e in range(1, 11):
            (folder / f"{e:02d}-episode-{e}.md").write_text(
                episode_text(e, f"Episode {e} of {s}", f"Day {e} of season {s}.")
            )


def famfeeds_build(
    content: Path, output: Path, as_of: str, lowered: bool, errors: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """``famfeeds build`` in its own process (``lowered``: with PER_FILE_FROM = 1)."""
    command = [sys.executable, *(["-c", LOWERED] if lowered else ["-m", "famfeeds"])]
    command += ["build", "--content", str(content), "--output", str(output), "--as-of", as_of]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)


def build_to_end(content: Path, output: Path, as_of: str, lowered: bool) -> None:
    process = famfeeds_build(content, output, as_of, lowered)
    _, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors.decode()


def staging(output: Path) -> bool:
    """Whether a build is writing: its staging folder stands beside the output."""
    return any(p.name.startswith(f".{output.name}.famfeeds-new-") for p in output.parent.iterdir())


def timings(content: Path, output: Path, as_of: str, lowered: bool) -> tuple[float, float]:
    """How long an uninterrupted rebuild takes, and how long of it is spent writing (its
    staging folder exists)."""
    start = time.monotonic()
    process = famfeeds_build(content, output, as_of, lowered, subprocess.DEVNULL)
    seen = gone = None
    while process.poll() is None:
        now, busy = time.monotonic(), staging(output)
        if busy and seen is None:
            seen = now
        if seen is not None and not busy and gone is None:
            gone = now
        time.sleep(0.001)
    assert process.returncode == 0 and seen is not None
    end = time.monotonic()
    return end - start, (gone or end) - seen


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def change(content: Path, trial: int) -> None:
    """Edit one synopsis, and add or remove an 11th episode of season 1."""
    s = trial % len(list(content.glob("season-*"))) + 1
    (content / f"season-{s:02d}/05-episode-5.md").write_text(
        episode_text(5, f"Episode 5 of {s}", f"Rewritten in trial {trial}.")
    )
    extra = content / "season-01/11-episode-11.md"
    if extra.exists():
        extra.unlink()
    else:
        extra.write_text(episode_text(11, "A bonus day"))


def kill_trials(tmp_path: Path, trials: int, seed: int, seasons: int) -> None:
    """``trials`` kills of rebuilds in place of a catalogue of ``seasons`` seasons (below
    the real PER_FILE_FROM, the builds lower it)."""
    rng = random.Random(seed)
    content, output = tmp_path / "content", tmp_path / "output"
    write_catalogue(content, seasons)
    lowered = seasons < SEASONS
    build_to_end(content, output, AS_OF[0], lowered)
    files = len(tree(output))
    assert lowered or files >= PER_FILE_FROM  # large enough to be rebuilt in place
    folder = output.stat().st_ino
    change(content, -1)
    duration, writing = timings(content, output, AS_OF[1], lowered)
    assert output.stat().st_ino == folder, "rebuilt by a swap, not in place"
    moments = {"before": 0, "midway": 0, "after": 0}
    for trial in range(trials):
        as_of = AS_OF[trial % 2]
        old = tree(output)
        change(content, trial)
        process = famfeeds_build(content, output, as_of, lowered, subprocess.DEVNULL)
        if trial % 2:  # at any moment of the build
            time.sleep(rng.uniform(0, duration))
        else:  # while it replaces files
            while process.poll() is None and not staging(output):
                time.sleep(0.001)
            time.sleep(rng.uniform(0, writing))
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = tree(output)
        build_to_end(content, output, as_of, lowered)
        new = tree(output)
        where = f"trial {trial} (seed {seed})"
        for name, data in killed.items():
            assert data in (old.get(name), new.get(name)), f"{where}: {name} is neither"
        moments["before" if killed == old else "after" if killed == new else "midway"] += 1
        fresh = tmp_path / f"fresh-{trial}"
        build_to_end(content, fresh, as_of, lowered)
        assert new == tree(fresh), f"{where}: the repaired output differs from a fresh build"
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".output.")]
        assert not leftovers, f"{where}: {leftovers}"
    print(f"seed {seed}, {files} files: killed {moments}")  # where the kills fell (pytest -s)


def test_a_killed_rebuild_in_place_is_repaired(tmp_path: Path) -> None:
    seed = int(os.environ.get("FAMFEEDS_TEST_SEED", random.randrange(10**6)))
    kill_trials(tmp_path, 3, seed, SMALL)


@pytest.mark.slow
def test_twenty_killed_rebuilds_in_place_are_repaired(tmp_path: Path) -> None:
    seed = int(os.environ.get("FAMFEEDS_TEST_SEED", random.randrange(10**6)))
    kill_trials(tmp_path, 20, seed, SEASONS)
