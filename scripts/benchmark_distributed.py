#!/usr/bin/env python
"""Epoch time of one process against N ranks (torchrun, DDP, gloo on CPU) on the same data and global batch.

    python scripts/benchmark_distributed.py                        # the 5,000-row stand-in, default config
    python scripts/benchmark_distributed.py --config imdb_plain --nproc 2 --epochs 5

Each run is ``sentiment train --data FILE --config C --nproc N`` with a fixed number of epochs (no early stop,
no refit) in one state directory: the first run prepares the data (Word2Vec), the others reuse it, so the
figures are of training alone. Prints the median epoch time (history.csv ``seconds``, first epoch left out:
it pays for start-up) and the largest difference between the models' weights.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = ROOT.parent / "shared" / "data" / "kaggle-cleaned" / "IMDB_cleaned.csv"


def train(data: Path, config: str, nproc: int, epochs: int, out: Path, home: Path) -> list[float]:
    sets = [f"training.epochs={epochs}", "training.patience=0", "training.refit=false"]
    command = [sys.executable, "-m", "sentiment", "train", "--data", str(data), "--config", config]
    command += ["--output", str(out), "--nproc", str(nproc), "--quiet"]
    command += [a for s in sets for a in ("--set", s)]
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "SENTIMENT_HOME": str(home)}
    )
    with (out / "history.csv").open(encoding="utf-8") as fh:
        return [float(row["seconds"]) for row in csv.DictReader(fh) if row.get("phase", "fit") == "fit"]


def max_difference(a: Path, b: Path) -> float:
    import numpy as np
    from safetensors.numpy import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=STAND_IN)
    parser.add_argument("--config", default="default")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train(args.data, args.config, 1, 1, root / "warm-up", root / "home")  # prepares and caches the data
        print(f"{args.config} on {args.data.name}, {args.epochs} epochs, {os.cpu_count()} CPUs")
        runs = {}
        for nproc in (1, args.nproc):
            seconds = train(args.data, args.config, nproc, args.epochs, root / f"n{nproc}", root / "home")
            runs[nproc] = root / f"n{nproc}"
            later = seconds[1:] or seconds
            print(
                f"  {nproc} rank{'s' if nproc > 1 else ' '}: median epoch {statistics.median(later):.2f} s "
                f"(epochs: {', '.join(f'{s:.2f}' for s in seconds)})"
            )
        difference = max_difference(runs[1], runs[args.nproc])
        print(f"  largest weight difference, 1 vs {args.nproc} ranks: {difference:.2e}")


if __name__ == "__main__":
    main()
