"""Out-of-core scaling: `sentiment train` on 1x, 4x, 10x and 40x the IMDB files, wall time and peak RSS.

The labelled and unlabelled IMDB files (../shared/data/imdb) are repeated N times into gzipped CSVs; the test
file stays the 25,000 labelled reviews. Each scale runs the real CLI in a fresh process with an empty
SENTIMENT_HOME (Word2Vec trained cold), `--verbose`, whose stage lines give each stage's time and the peak RSS
reached by its end. Targets (issue "Beyond one machine"): peak RSS <= 2 GB at 10x and <= 2.5 GB at 40x; wall
time growing at most linearly.

    .venv/bin/python scripts/benchmark_scale.py                      # 1, 4, 10, 40 (about 25 minutes here)
    .venv/bin/python scripts/benchmark_scale.py --scales 1,4 --set data.streaming=false   # in memory
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the same measured-subprocess helpers as the speed benchmark
from benchmark_speed import (
    DATA,
    ROOT,
    check,
    data_sets,
    env_with,
    repeat_file,
    run_measured,
    train_cmd,
)

STAGE = re.compile(r"^stage (\S[\w -]*?): ([\d.]+) s(?: \(peak RSS so far ([\d,]+) MB\))?", re.MULTILINE)
TARGETS_MB = {10: 2048, 40: 2560}


def stage_lines(stderr: str) -> dict[str, tuple[float, float | None]]:
    """{stage: (seconds summed over its runs, peak RSS in MB by its last end)} from --verbose stage lines."""
    out: dict[str, tuple[float, float | None]] = {}
    for name, seconds, peak in STAGE.findall(stderr):
        before = out.get(name, (0.0, None))[0]
        out[name] = (before + float(seconds), float(peak.replace(",", "")) if peak else None)
    return out


def run_scale(args: argparse.Namespace, scale: int, work: Path) -> dict[str, Any]:
    folder = work / f"x{scale}"
    folder.mkdir(parents=True, exist_ok=True)
    if scale == 1:
        train, unlabeled = args.train, args.unlabeled
        rows = "25,000 labelled + 50,000 unlabelled"
    else:
        train, unlabeled = folder / "train.csv.gz", folder / "unlabeled.csv.gz"
        n_train = repeat_file(args.train, train, scale)
        n_unlabeled = repeat_file(args.unlabeled, unlabeled, scale)
        rows = f"{n_train:,} labelled + {n_unlabeled:,} unlabelled"
    model = folder / "model"
    cmd = [*train_cmd(args.config, model, data_sets(train, args.test, unlabeled, args.set)), "--verbose"]
    run = run_measured(cmd, env_with(folder / "home"))
    check(run, f"sentiment train at {scale}x")
    accuracy = json.loads((model / "metrics.json").read_text())["test"]["accuracy"]
    shutil.rmtree(folder, ignore_errors=True)
    return {**run, "scale": scale, "rows": rows, "accuracy": accuracy, "stages": stage_lines(run["stderr"])}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="1,4,10,40", help="data multipliers, comma-separated")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "tutorial.yaml")
    parser.add_argument("--train", type=Path, default=DATA / "train.csv.gz")
    parser.add_argument("--unlabeled", type=Path, default=DATA / "unlabeled.csv.gz")
    parser.add_argument("--test", type=Path, default=DATA / "train.csv.gz", help="test file (not repeated)")
    parser.add_argument(
        "--set",
        action="append",
        default=None,
        help="config override (repeatable); default: word2vec.epochs=1 and data.streaming=true",
    )
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    args.set = args.set if args.set is not None else ["word2vec.epochs=1", "data.streaming=true"]
    if not args.train.exists():
        raise SystemExit(f"no IMDB data at {args.train} (../shared/data/imdb); nothing to measure")
    scales = [int(s) for s in args.scales.split(",")]
    print(
        f"config {args.config.name}, overrides {' '.join(args.set) or '(none)'}; test file {args.test.name}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="scale-", dir=args.work) as tmp:
        for scale in scales:
            result = run_scale(args, scale, Path(tmp))
            results.append(result)
            stages = ", ".join(
                f"{name} {sec:.1f} s" + (f" / {peak:,.0f} MB" if peak else "")
                for name, (sec, peak) in result["stages"].items()
            )
            print(
                f"{scale:>3}x  {result['rows']}: wall {result['wall']:.1f} s, cpu {result['cpu']:.1f} s, "
                f"peak RSS {result['rss_mb']:,.0f} MB, accuracy {result['accuracy']:.4f}",
                flush=True,
            )
            print(f"      stages: {stages}", flush=True)
    base = next((r for r in results if r["scale"] == 1), None)
    failed = False
    for r in results:
        verdicts = []
        if r["scale"] in TARGETS_MB:
            ok = r["rss_mb"] <= TARGETS_MB[r["scale"]]
            failed |= not ok
            verdicts.append(
                f"peak RSS {r['rss_mb']:,.0f} <= {TARGETS_MB[r['scale']]:,} MB: {'yes' if ok else 'NO'}"
            )
        if base is not None and r is not base:
            ratio = r["wall"] / base["wall"]
            ok = ratio <= r["scale"]
            failed |= not ok
            verdicts.append(f"wall {ratio:.1f}x the 1x run (<= {r['scale']}x: {'yes' if ok else 'NO'})")
        if verdicts:
            print(f"{r['scale']:>3}x  " + "; ".join(verdicts))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
