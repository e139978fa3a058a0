"""Kill `famfeeds build` at random moments, many times, and count what was left; run by hand.

    python bench/faults_build.py [--trials 50] [--seed 1] [--seasons 30] [--late]

A generated show of --seasons x 10 episodes. Each trial changes an episode's title, starts
a real `famfeeds build`, SIGKILLs it after a random time drawn from a whole build's duration
(--late: from its second half, where the write happens), checks that output/ is exactly
the old tree or exactly the new one and that famfeeds.lock is never behind the output,
reverts the title and builds to completion, checking that SEQUENCE never went down for any
UID and that no staging folder survived. The short version of this loop runs in CI
(tests/faults/test_build_faults.py). Prints one line per trial, then the counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faults.buildkit import kill_trials, make_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seasons", type=int, default=30)
    parser.add_argument("--late", action="store_true", help="kill in the second half only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "project", seasons=args.seasons)
        tally = kill_trials(
            project,
            Path(tmp) / "reference",
            args.trials,
            args.seed,
            log=print,
            spread=(0.5, 1.1) if args.late else (0.0, 1.0),
        )
    print()
    print(f"episodes: {args.seasons * 10}; a whole build: {tally.duration:.2f} s; seed {args.seed}")
    print(f"trials: {tally.trials}")
    print(f"  output left as the old tree: {tally.output_old}")
    print(f"  output left as the new tree: {tally.output_new}")
    print(f"  killed between saving the lock and the swap: {tally.lock_ahead}")
    print(f"violations: {len(tally.violations)}")
    for violation in tally.violations:
        print(f"  {violation}")
    raise SystemExit(1 if tally.violations else 0)


if __name__ == "__main__":
    main()
