#!/usr/bin/env python
"""Same figures, same predictions: trains configs/default.yaml and configs/tutorial.yaml on the 5,000-row
stand-in through the real CLI (``word2vec.workers=1``, empty caches) and compares metrics.json and the
probability of every row with a recorded reference.

    python scripts/check_parity.py record scripts/parity_reference.json   # on the code to compare against
    python scripts/check_parity.py check scripts/parity_reference.json    # exit 1 when anything changed

Set PYTHONPATH=<other checkout>/src to record with another version of the code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = ROOT.parent / "shared" / "data" / "kaggle-cleaned" / "IMDB_cleaned.csv"
CONFIGS = ("default", "tutorial")


def run(config: str, data: Path, workdir: Path) -> dict[str, Any]:
    """metrics.json of a fresh training run and the model's probability of every row of ``data``."""
    env = {**os.environ, "SENTIMENT_HOME": str(workdir / "home")}
    model = workdir / config
    sentiment = [sys.executable, "-m", "sentiment"]
    subprocess.run(
        [
            *sentiment,
            "train",
            "--config",
            str(ROOT / "configs" / f"{config}.yaml"),
            "--set",
            f"data.path={data}",
            "--set",
            "word2vec.workers=1",
            "--output",
            str(model),
            "--quiet",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    predicted = subprocess.run(
        [*sentiment, "predict", "--model", str(model), "--file", str(data), "--json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    probabilities = [json.loads(line)["probability"] for line in predicted.splitlines()]
    return {"metrics": metrics, "probabilities": probabilities}


def differences(reference: dict[str, Any], now: dict[str, Any]) -> list[str]:
    out = []
    for config in CONFIGS:
        ref, got = reference[config], now[config]
        for split in ("test", "validation"):
            if ref["metrics"][split] != got["metrics"][split]:
                out.append(
                    f"{config}: {split} metrics differ: {ref['metrics'][split]} -> {got['metrics'][split]}"
                )
        changed = sum(a != b for a, b in zip(ref["probabilities"], got["probabilities"], strict=True))
        if changed:
            out.append(f"{config}: {changed} of {len(ref['probabilities'])} probabilities differ")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("record", "check"))
    parser.add_argument("reference", type=Path)
    parser.add_argument("--data", type=Path, default=STAND_IN)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sentiment-parity-") as tmp:
        now = {config: run(config, args.data, Path(tmp)) for config in CONFIGS}
    for config in CONFIGS:
        test = now[config]["metrics"]["test"]
        print(f"{config:<9} test accuracy {test['accuracy']:.4f}  f1 {test['f1']:.4f}  n {test['n']}")
    if args.mode == "record":
        args.reference.write_text(json.dumps(now, indent=1) + "\n", encoding="utf-8")
        print(f"reference written to {args.reference}")
        return 0
    found = differences(json.loads(args.reference.read_text(encoding="utf-8")), now)
    for line in found:
        print(line)
    print("parity: " + ("DIFFERENT" if found else "identical metrics.json figures and predictions"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
