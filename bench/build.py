"""Time `famfeeds build` as a whole process on synthetic catalogues; run by hand.

    python bench/build.py [--repeat 3]

Prints the bare import time of the libraries a build uses, the shipped season's build,
catalogues of 100, 1,000 and 10,000 episodes (seasons of 10, long synopses), and
`famfeeds --help` beside `python -c "import click"`. Each figure is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOADED_MODULES = """
import contextlib, io, sys
from famfeeds.cli import main
sys.argv = ["famfeeds", "build", "--content", sys.argv[1], "--output", sys.argv[2],
            "--as-of", "2024-01-31"]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
print("\\n".join(m for m in sys.modules if not m.startswith(("famfeeds", "__main__"))))
"""
SYNOPSIS = (
    "The crew of the *{n}th* mission wakes to alarms: a [pressure leak](https://example.org/leak) "
    "in the habitat ring, a supply ship running late, and a message from Earth that nobody "
    "wants to answer first. Meanwhile the engineers argue about whether the new drill can "
    "survive another week of dust storms, and the station chief has to decide who goes outside. "
)


def best(cmd: list[str], repeat: int, fresh: tuple[Path, ...] = ()) -> float:
    """The fastest of ``repeat`` runs; the folders in ``fresh`` are deleted before each."""
    times = []
    for _ in range(repeat):
        for folder in fresh:
            shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def build_cmd(content: Path, output: Path, as_of: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "famfeeds",
        "build",
        "--content",
        str(content),
        "--output",
        str(output),
        "--as-of",
        as_of,
    ]


def libraries_import(content: Path, root: Path) -> str:
    """A script importing every module a first build of ``content`` loads, famfeeds' own
    excepted.

    Lazily loaded parts of libraries (pydantic's internals, say) count as the library's cost.
    """
    out = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, str(content), str(root / "out-probe")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return (
        "import importlib\n"
        f"for name in {out!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception:\n        pass\n"
    )


def catalogue(root: Path, episodes: int) -> Path:
    content = root / f"content-{episodes}"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    show = (REPO / "content/show.toml").read_text()
    (content / "show.toml").write_text(show)
    for s in range(1, episodes // 10 + 1):
        folder = content / f"season-{s:02d}"
        folder.mkdir()
        (folder / "season.toml").write_text(
            f'number = {s}\ntitle = "Season {s}"\n'
            f"premiere = {2000 + s // 50}-01-{s % 50 // 2 + 1:02d}\n"
        )
        for e in range(1, 11):
            text = "\n\n".join(SYNOPSIS.format(n=e) for _ in range(3))
            (folder / f"{e:02d}-episode-{e}.md").write_text(
                f'+++\nnumber = {e}\ntitle = "Episode {e} of season {s}"\n+++\n\n{text}\n'
            )
    return content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shipped_root = root / "shipped"
        shutil.copytree(REPO / "content", shipped_root / "content")
        shutil.copy(REPO / "famfeeds.lock", shipped_root / "famfeeds.lock")
        probe = libraries_import(shipped_root / "content", root)
        shutil.rmtree(shipped_root / ".famfeeds-cache", ignore_errors=True)
        base = best([py, "-c", probe], args.repeat)
        rows.append(("bare import of the libraries a build uses", base))
        cache = shipped_root / ".famfeeds-cache"
        shipped_cmd = build_cmd(shipped_root / "content", shipped_root / "out", "2024-01-31")
        shipped_cold = best(shipped_cmd, args.repeat, (cache, shipped_root / "out"))
        rows.append(("build: shipped season, first build (no output, no cache)", shipped_cold))
        shipped = best(shipped_cmd, args.repeat)
        rows.append(("build: shipped season, rebuild", shipped))
        sizes = {}
        for n in (100, 1000, 10000):
            content = catalogue(root, n)
            sizes[n] = best(build_cmd(content, root / f"out-{n}", "2030-01-01"), args.repeat)
            rows.append((f"build: {n:,} episodes, rebuild", sizes[n]))
        cold = best(
            build_cmd(root / "content-10000", root / "out-cold", "2030-01-01"),
            1,
            [root / "out-cold", root / ".famfeeds-cache"],
        )
        rows.append(("build: 10,000 episodes, first build (no output, no cache)", cold))
        click_only = best([py, "-c", "import click"], args.repeat)
        help_time = best([py, "-m", "famfeeds", "--help"], args.repeat)
        rows.append(('python -c "import click"', click_only))
        rows.append(("famfeeds --help", help_time))
    width = max(len(r[0]) for r in rows)
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds * 1000:8.0f} ms")
    print()
    print(f"shipped first build / bare import:  {shipped_cold / base:5.2f}x  (target <= 1.3x)")
    print(f"shipped rebuild / bare import:      {shipped / base:5.2f}x")
    print(f"10,000 episodes, rebuild:           {sizes[10000]:5.2f} s  (target < 5 s)")
    print(f"10,000 episodes, first build:       {cold:5.2f} s")
    ratio = sizes[10000] / sizes[1000]
    print(f"10,000 / 1,000 episodes:            {ratio:5.2f}x (linear: 10x or less)")
    print(f"--help / import click:              {help_time / click_only:5.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
