"""Speed of `basepick rank`, against the floor of importing its dependencies.

Run: .venv/bin/python benchmarks/bench_rank.py [--repeat 5]
Prints medians (seconds, wall) of fresh processes, so imports are counted as a user sees them:
  floor     python -c "import numpy, lightgbm, click, rich"
  rank      basepick rank examples/candidates.csv --format json   (17 candidates)
  pool      basepick rank --pool leaderboard --format json         (4,497 models)
Targets (issue 2): rank - floor <= 0.4 s; pool < 2 s.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RANK = "import sys, cli; sys.argv = ['basepick'] + sys.argv[1:]; cli.main()"
CASES = {
    "floor": [sys.executable, "-c", "import numpy, lightgbm, click, rich"],
    "rank": [sys.executable, "-c", RANK, "rank", str(REPO / "examples" / "candidates.csv"), "--format", "json"],
    "pool": [sys.executable, "-c", RANK, "rank", "--pool", "leaderboard", "--format", "json"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for cmd in CASES.values():  # warm the page cache and .pyc files once
        wall(cmd)
    medians = {}
    for _ in range(args.repeat):  # interleave cases so drift in machine load hits all alike
        for name, cmd in CASES.items():
            medians.setdefault(name, []).append(wall(cmd))
    medians = {name: statistics.median(times) for name, times in medians.items()}
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores; median of {args.repeat}")
    for name, value in medians.items():
        print(f"{name:6s} {value:.3f} s")
    print(f"rank - floor = {medians['rank'] - medians['floor']:.3f} s (target <= 0.4)")
    print(f"pool          {medians['pool']:.3f} s (target < 2)")


if __name__ == "__main__":
    main()
