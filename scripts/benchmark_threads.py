#!/usr/bin/env python
"""Fine-tuning on a busy machine: `sentiment train -c default` (caches warm, so the figures are the training
and the refit) with OpenMP's threads spinning (ACTIVE, libgomp's own default) or sleeping (PASSIVE, what the
`sentiment` command sets unless OMP_WAIT_POLICY is already set), on an idle machine and with one other process
keeping a core busy. Prints the median wall, training and refit seconds of each case.

    .venv/bin/python scripts/benchmark_threads.py [--data IMDB_cleaned.csv] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = Path(sys.executable).with_name("sentiment")
STAND_IN = ROOT.parent / "shared" / "data" / "kaggle-cleaned" / "IMDB_cleaned.csv"


def train(data: Path, work: Path, policy: str) -> dict[str, float]:
    env = {**os.environ, "SENTIMENT_HOME": str(work / "home"), "OMP_WAIT_POLICY": policy}
    command = [str(SENTIMENT), "train", "-c", "default", "--set", f"data.path={data}", "-o", str(work / "m")]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    figures = {"wall": time.perf_counter() - start}
    for line in done.stderr.splitlines():  # the "time per stage" block
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("training", "refit") and parts[2] == "s":
            figures[parts[0]] = float(parts[1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=STAND_IN)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentiment-threads-") as tmp:
        work = Path(tmp)
        train(args.data, work, "PASSIVE")  # fills the Word2Vec and prepared-data caches
        print(f"{'machine':<8} {'OMP_WAIT_POLICY':<16} {'wall s':>7} {'training s':>11} {'refit s':>8}")
        for load in ("idle", "busy"):
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
            try:
                runs: dict[str, list[dict[str, float]]] = {"ACTIVE": [], "PASSIVE": []}
                for _ in range(args.repeat):
                    for policy, figures in runs.items():  # alternating: drift hits both alike
                        figures.append(train(args.data, work, policy))
            finally:
                if busy is not None:
                    busy.kill()
            for policy, figures in runs.items():
                median = {k: statistics.median(f[k] for f in figures) for k in ("wall", "training", "refit")}
                print(
                    f"{load:<8} {policy:<16} {median['wall']:>7.1f} {median['training']:>11.1f} "
                    f"{median['refit']:>8.1f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
