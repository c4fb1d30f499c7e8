"""In-process prediction cost per review with the compiled kernels (sentiment/kernels.py) and without them
(SENTIMENT_KERNELS=0, the NumPy path), alternated in one process on the same texts, and whether the two give
the same probabilities.

    python scripts/benchmark_kernels.py --model runs/imdb_fast [--texts 5000] [--batch 500] [--rounds 2]

Texts: the first --texts reviews of ../shared's IMDB training file (a server's batch requests are --batch
texts each). Each line: the path, the time per review of one pass over all texts (after a warm-up pass), and
the time the predictor took to get ready (Predictor.expect: look-up tables, numba's import and cache).
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from pathlib import Path

import numpy as np

SHARED_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb" / "train.csv.gz"


def read_reviews(limit: int) -> list[str]:
    import csv

    if not SHARED_TRAIN.is_file():
        raise SystemExit(f"{SHARED_TRAIN} is not here: this benchmark reads the IMDB reviews in ../shared")
    with gzip.open(SHARED_TRAIN, "rt", encoding="utf-8", newline="") as fh:
        return [row["review"] for _, row in zip(range(limit), csv.DictReader(fh), strict=False)]


def one_pass(model: str, texts: list[str], batch: int, kernels: bool) -> tuple[float, float, np.ndarray]:
    from sentiment.predictor import Predictor

    os.environ["SENTIMENT_KERNELS"] = "1" if kernels else "0"
    predictor = Predictor.load(model)
    start = time.perf_counter()
    predictor.expect(len(texts))
    ready = time.perf_counter() - start
    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    for chunk in chunks[:2]:  # warm-up
        predictor.predict_proba(chunk)
    start = time.perf_counter()
    probs = np.concatenate([predictor.predict_proba(chunk)[0] for chunk in chunks])
    return (time.perf_counter() - start) / len(texts), ready, probs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a model directory")
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="alternated passes of each path")
    args = parser.parse_args()
    texts = read_reviews(args.texts)
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts):,} IMDB reviews of {words:.0f} words on average, {args.batch} per call")
    results: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for _ in range(args.rounds):
        for kernels in (True, False):
            seconds, ready, probs = one_pass(args.model, texts, args.batch, kernels)
            results[kernels].append(probs)
            name = "kernels (numba)" if kernels else "NumPy (SENTIMENT_KERNELS=0)"
            print(f"{name:<28} {seconds * 1e6:7.1f} us per review   ready in {ready:.2f} s")
    same = all(np.array_equal(a, b) for a in results[True] for b in results[False])
    print(f"same probabilities, bit for bit: {same}")


if __name__ == "__main__":
    main()
