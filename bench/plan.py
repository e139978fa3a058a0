"""Time the plan stage (famfeeds.plan.issues.plan: load, validate, schedule, issues) on the
daily soap, in one process; run by hand.

    python bench/plan.py [--seasons 1000] [--repeat 5] [--content DIR]

The soap (bench/build.py's: SEASONS seasons of 10 daily episodes) is generated into a
temporary folder, or DIR is copied there. Figures, each the best of --repeat runs, wall
and CPU (process) time:

- a cold plan (no parse cache), once;
- rebuild, nothing changed: the parse cache is read from disk each run, as by a new
  ``famfeeds build`` process;
- rebuild after editing one episode file (a different edit each run): its season is read
  and validated again;
- both again with ``freeze=True`` (what a one-shot process may ask: gc.freeze once planned).

Each warm plan is checked equal to the cold one (catalogue, schedule, issues, warnings).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import daily_soap
from famfeeds.build import load as planning
from famfeeds.build.record_cache import RACY_NS, save_deferred
from famfeeds.records.loader import load_catalogue


def best(
    content: Path, runs: int, before: Callable[[int], None], freeze: bool
) -> tuple[float, float, object]:
    """The best wall and CPU time of ``runs`` plans (``before(i)`` runs first, untimed),
    and the last plan."""
    walls, cpus, last = [], [], None
    for i in range(runs):
        before(i)
        gc.unfreeze()
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        last = planning.plan(content, freeze=freeze)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        save_deferred()  # as a build does once its output is written
    return min(walls), min(cpus), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seasons", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--content", type=Path, help="a content folder to copy and time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "soap"
        if args.content:
            shutil.copytree(args.content, project / "content", symlinks=True)
            content = project / "content"
        else:
            content = daily_soap(project, args.seasons)
        files = sum(1 for _ in content.rglob("*.md"))
        # As in a real project, the files are older than the racy window when first read:
        # the cache trusts their signatures at once instead of checking their bytes.
        time.sleep(RACY_NS / 1e9)
        wall, cpu = time.perf_counter(), time.process_time()
        cold = planning.plan(content)
        print(
            f"{files:,} files; cold plan {time.perf_counter() - wall:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU"
        )
        save_deferred()
        reference = planning.Plan(
            load_catalogue(content), cold.schedule, cold.issues, cold.warnings
        )
        seasons = sorted(content.glob("season-*"))
        target = sorted(seasons[len(seasons) // 2].glob("*.md"))[0]
        original = target.read_text(encoding="utf-8")

        def nothing(_: int) -> None:
            pass

        def edit(i: int) -> None:
            target.write_text(original + f"\nEdit {i}.\n", encoding="utf-8")

        for freeze in (False, True):
            for name, before in (("no change", nothing), ("one edit", edit)):
                wall, cpu, planned = best(content, args.repeat, before, freeze)
                target.write_text(original, encoding="utf-8")
                if name == "no change":
                    assert planned == reference, "a plan from the cache differs from the cold one"
                label = f"{name}{', freeze' if freeze else ''}"
                print(f"{label:18s} {wall * 1000:6.1f} ms wall, {cpu * 1000:6.1f} ms CPU")
            save_deferred()


if __name__ == "__main__":
    main()
