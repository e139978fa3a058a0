"""Time the writer's part of a rebuild of a large output (famfeeds.build.inplace); run by hand.

    python bench/write.py [--seasons 1000] [--runs 5] [--folder /tmp]

Writes a synthetic output shaped like the daily soap's (per season: 11 pages and calendar
files in one folder and 10 episode folders of 4 files; 52,010 files in 11,003 folders for
1,000 seasons) with the whole-tree writer, records the index, then times
``update_in_place`` (best of --runs, wall and CPU) when nothing changed and when one page
changed, with the digests known to the build (a ``digests`` mapping, as memoised files
have), known file by file (``digest(name)``, as stored newsletter files have), and
unknown (every file hashed). No renderer runs: this is the writer alone. Prints the figures
and the cost of hashing every file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from famfeeds.build.evaluate import digest_of
from famfeeds.build.inplace import index_path, record_index, update_in_place
from famfeeds.build.writer import hold, write_output
from famfeeds.render.files import FileSet


class Bulk(Mapping[str, bytes]):
    """Files whose digests are known as one mapping."""

    def __init__(self, files: dict[str, bytes], digests: dict[str, bytes]) -> None:
        self.files, self.digests = files, digests

    def __getitem__(self, name: str) -> bytes:
        return self.files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


class EachKnown(Bulk):
    """Files whose digests are known one by one (no ``digests`` mapping)."""

    def __init__(self, files: dict[str, bytes], digests: dict[str, bytes]) -> None:
        self.files, self.known = files, digests

    def digest(self, name: str) -> bytes:
        return self.known[name]


def catalogue(seasons: int) -> dict[str, bytes]:
    """Names and bytes shaped like the daily soap's output."""
    files = {}
    for name in ("calendar.ics", "feed.xml", "feed.json", "rss.xml", "index.html"):
        files[name] = os.urandom(2000)
    for s in range(1, seasons + 1):
        files[f"s{s:04d}/index.html"] = os.urandom(3000)
        files[f"season-{s:04d}.ics"] = os.urandom(2000)
        for e in range(1, 11):
            files[f"s{s:04d}/e{e:02d}.ics"] = os.urandom(800)
            for part in ("index.html", "issue.html", "issue.txt", "issue.eml"):
                files[f"s{s:04d}/e{e:02d}/{part}"] = os.urandom(1500)
    return files


def best(runs: int, step: Callable[[], object]) -> tuple[float, float]:
    """The best wall and CPU seconds of ``runs`` calls."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seasons", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=None, help="where to write (a temp folder)")
    args = parser.parse_args()
    files = catalogue(args.seasons)
    start = time.perf_counter()
    digests = {n: digest_of(b) for n, b in files.items()}
    hashing = time.perf_counter() - start
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        target = (Path(tmp) / "output").resolve()
        index = index_path(Path(tmp) / "cache", target)
        with hold(target.parent):
            write_output(files, target)
            record_index(files, target, index)
        folders = sum(1 for _ in os.walk(target))
        print(f"{len(files)} files in {folders} folders; hashing them all: {hashing * 1000:.0f} ms")
        time.sleep(0.05)  # let the filesystem's clock pass the build, as it has by the next

        def update(made: Mapping[str, bytes]) -> None:
            with hold(target.parent):
                if update_in_place(made, target, target, index) is None:
                    raise SystemExit("the output was swapped, not updated in place")

        update(FileSet(Bulk(files, digests)))  # the first rebuild trusts every folder
        page = "s0001/e01/index.html"
        edits = iter(range(10**6))

        def one_page(kind: type[Bulk]) -> None:
            changed = dict(files)
            changed[page] = f"edit {next(edits)}".encode()
            known = dict(digests)
            known[page] = digest_of(changed[page])
            update(FileSet(kind(changed, known)))

        cases: list[tuple[str, Callable[[], object]]] = [
            (
                "nothing changed, digests as a mapping",
                lambda: update(FileSet(Bulk(files, digests))),
            ),
            (
                "nothing changed, digest(name) each",
                lambda: update(FileSet(EachKnown(files, digests))),
            ),
            ("nothing changed, every file hashed", lambda: update(FileSet(files))),
            ("one page changed, digests as a mapping", lambda: one_page(Bulk)),
            ("one page changed, digest(name) each", lambda: one_page(EachKnown)),
        ]
        for label, step in cases:
            wall, cpu = best(args.runs, step)
            print(f"{label}: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
