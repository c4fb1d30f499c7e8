"""Batch prediction over shards: this process (engine local) against a Dask LocalCluster of 1 and 2 workers.

    python scripts/benchmark_shards.py --model runs/imdb [--scale 1 10] [--shard-rows 5000]

Writes the IMDB training reviews from ../shared (repeated --scale times) as Parquet shards in a scratch
directory, runs `sentiment predict --file 'shards/*.parquet' --output out/` with each engine as a whole
command, and prints texts per second (wall, cluster start-up included). Checks the outputs are equal.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb" / "train.csv.gz"


def write_shards(folder: Path, scale: int, rows: int) -> int:
    reviews = pd.read_csv(TRAIN, usecols=["review"])
    frame = pd.concat([reviews] * scale, ignore_index=True)
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, len(frame), rows)):
        frame.iloc[start : start + rows].to_parquet(folder / f"part-{i:04d}.parquet")
    return len(frame)


def run(model: Path, shards: Path, out: Path, engine: list[str]) -> float:
    command = [sys.executable, "-m", "sentiment", "predict", "--model", str(model)]
    command += ["--file", f"{shards}/*.parquet", "--output", str(out), *engine]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--shard-rows", type=int, default=5000)
    args = parser.parse_args()
    engines = {
        "local (1 process)": ["--engine", "local"],
        "dask, 1 worker": ["--engine", "dask", "--workers", "1"],
        "dask, 2 workers": ["--engine", "dask", "--workers", "2"],
    }
    print(f"{'texts':>9}  {'engine':<18} {'wall s':>7} {'texts/s':>8}")
    for scale in args.scale:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            n = write_shards(root / "shards", scale, args.shard_rows)
            outputs = []
            for name, engine in engines.items():
                out = root / name.split()[0] / name.split()[-1]
                seconds = run(args.model, root / "shards", out, engine)
                outputs.append(out)
                print(f"{n:>9}  {name:<18} {seconds:7.1f} {n / seconds:8.0f}", flush=True)
            files = sorted(p.name for p in outputs[0].iterdir())
            for other in outputs[1:]:
                _, mismatch, errors = filecmp.cmpfiles(outputs[0], other, files, shallow=False)
                assert not mismatch and not errors, f"outputs differ: {mismatch or errors}"


if __name__ == "__main__":
    main()
