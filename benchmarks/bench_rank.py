"""Speed of `basepick rank` and `basepick plan`, against the floor of importing their dependencies.

Run: .venv/bin/python benchmarks/bench_rank.py [--repeat 5]
Prints medians (seconds, wall) of fresh processes, so imports are counted as a user sees them:
  floor     python -c "import numpy, lightgbm, click, rich"
  rank      basepick rank examples/candidates.csv --format json   (17 candidates)
  pool      basepick rank --pool leaderboard --format json         (4,497 models)
  rank40    basepick rank C40.csv --format json                    (40 candidates: the study's first 40 bases)
  plan40    basepick plan C40.csv --budget 3 --format json         (the same 40)
Targets (issue 16; issue 2 had 0.4 s and 2 s): rank - floor <= 0.1 s; pool < 1 s.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RANK = "import sys, cli; sys.argv = ['basepick'] + sys.argv[1:]; cli.main()"
C40 = Path(tempfile.mkdtemp()) / "candidates40.csv"
CASES = {
    "floor": [sys.executable, "-c", "import numpy, lightgbm, click, rich"],
    "rank": [sys.executable, "-c", RANK, "rank", str(REPO / "examples" / "candidates.csv"), "--format", "json"],
    "pool": [sys.executable, "-c", RANK, "rank", "--pool", "leaderboard", "--format", "json"],
    "rank40": [sys.executable, "-c", RANK, "rank", str(C40), "--format", "json"],
    "plan40": [sys.executable, "-c", RANK, "plan", str(C40), "--budget", "3", "--format", "json"],
}


def write_candidates40() -> None:
    ids = [line.split(",")[0] for line in (REPO / "data" / "benchmarks" / "seed_paper_models.csv").read_text().splitlines()[1:41]]
    C40.write_text("model_id\n" + "\n".join(ids) + "\n", encoding="utf-8")


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    write_candidates40()
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
    print(f"rank - floor = {medians['rank'] - medians['floor']:.3f} s (target <= 0.1)")
    print(f"pool          {medians['pool']:.3f} s (target < 1)")
    print(f"rank40 - floor = {medians['rank40'] - medians['floor']:.3f} s; plan40 - floor = "
          f"{medians['plan40'] - medians['floor']:.3f} s")


if __name__ == "__main__":
    main()
