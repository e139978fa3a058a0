"""Kill `famfeeds send` at random moments, many times, and count what a real server got.

    python bench/faults_send.py [--trials 40] [--subscribers 200] [--seed 1]

Each trial: a fresh copy of the shipped project, a scriptable aiosmtpd server on loopback
(tests/faults/smtp_faults.py) answering each "." after a short pause, `famfeeds send` in its
own process with 1 to 4 connections, SIGKILL after a random time drawn from the length of an
unkilled run, then one more run to completion (``--json``). Half the trials also make the
server hang up after some messages' final "." (the ambiguous case). Checked per trial:

- nobody was stored twice by the server (exactly once);
- everyone was stored once, or is reported *uncertain* (nobody lost silently);
- the second run's exit code is 3 exactly when someone is uncertain, else 0.

Prints the counts; any violation is printed with its trial's seed and makes the exit 1.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from faults.smtp_faults import Faults, addresses, clean_env, people, send_args, serve, write_csv  # noqa: E402


def run_trial(root: Path, n: int, rng: random.Random, duration: float) -> dict[str, object]:
    shutil.copytree(REPO / "content", root / "content")
    csv = write_csv(root, people(n))
    faults = Faults()
    faults.slow_seconds = 0.003
    hangups = rng.random() < 0.5
    if hangups:
        faults.after_dot = "drop"
        faults.after_dot_for = set(rng.sample(addresses(n), k=max(1, n // 20)))
    connections = rng.choice([1, 2, 4])
    with serve(faults) as url:
        args = send_args(root / "content", csv, url, "--yes", "--connections", str(connections))
        process = subprocess.Popen(
            [sys.executable, "-m", "famfeeds", *args],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, duration))
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        killed_at = sum(faults.stored.values())
        faults.after_dot = "answer"
        rerun = subprocess.run(
            [sys.executable, "-m", "famfeeds", *args, "--json"],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    try:
        report = json.loads(rerun.stdout)
    except json.JSONDecodeError:
        return {"error": f"exit {rerun.returncode}: {rerun.stdout[-2000:]}{rerun.stderr[-3000:]}"}
    uncertain = {u["address"] for u in report["uncertain"]}
    twice = [a for a, c in faults.stored.items() if c > 1]
    lost = [a for a in addresses(n) if faults.stored[a] == 0 and a not in uncertain]
    wrong_exit = rerun.returncode != (3 if uncertain else 0)
    return {
        "connections": connections,
        "hangups": hangups,
        "stored_before_kill": killed_at,
        "uncertain": len(uncertain),
        "uncertain_not_stored": sum(1 for a in uncertain if faults.stored[a] == 0),
        "twice": twice,
        "lost": lost,
        "wrong_exit": wrong_exit,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:  # one unkilled run: how long a send takes
        root = Path(tmp)
        shutil.copytree(REPO / "content", root / "content")
        csv = write_csv(root, people(args.subscribers))
        faults = Faults()
        faults.slow_seconds = 0.003
        with serve(faults) as url:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "famfeeds",
                 *send_args(root / "content", csv, url, "--yes", "--connections", "1")],
                env=clean_env(), capture_output=True, check=True,
            )  # fmt: skip
            duration = time.perf_counter() - start
    print(f"one unkilled run of {args.subscribers} messages: {duration:.2f} s")

    totals: Counter[str] = Counter()
    failures = []
    started = time.perf_counter()
    for trial in range(args.trials):
        seed = args.seed * 1000 + trial
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory() as tmp:
            result = run_trial(Path(tmp), args.subscribers, rng, duration)
        totals["trials"] += 1
        if result.get("error"):
            failures.append((seed, result))
            continue
        totals["hangup trials"] += bool(result["hangups"])
        totals["messages stored before the kill"] += int(result["stored_before_kill"])  # type: ignore[arg-type]
        totals["uncertain"] += int(result["uncertain"])  # type: ignore[arg-type]
        totals["uncertain, server had nothing"] += int(result["uncertain_not_stored"])  # type: ignore[arg-type]
        if result.get("error") or result["twice"] or result["lost"] or result["wrong_exit"]:
            failures.append((seed, result))
    elapsed = time.perf_counter() - started
    for label, value in totals.items():
        print(f"{label:<36} {value:8,}")
    print(f"{'subscribers per trial':<36} {args.subscribers:8,}")
    print(f"{'time':<36} {elapsed:8.1f} s")
    print(f"{'failed trials (2 copies, loss, exit)':<36} {len(failures):8,}")
    for seed, result in failures:
        print(f"  seed {seed}: {result}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
