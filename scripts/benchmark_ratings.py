#!/usr/bin/env python
"""The four-bucket star-rating task (1-2, 3-4, 7-8, 9-10) on the IMDB training file: configs/imdb_ratings.yaml
against TF-IDF uni+bigrams + logistic regression, on the same movie-disjoint hold-out (a fifth of the movies,
as the official test split shares no movie with training). Prints accuracy, macro-F1 and wall time of each.

    .venv/bin/python scripts/benchmark_ratings.py [--train ../shared/data/imdb/train.csv.gz] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "imdb" / "train.csv.gz"
SENTIMENT = Path(sys.executable).with_name("sentiment")
BUCKETS = {1: 0, 2: 0, 3: 1, 4: 1, 7: 2, 8: 2, 9: 3, 10: 3}


def split_by_movie(train: Path, seed: int, work: Path) -> tuple[Path, Path]:
    import pandas as pd
    from sklearn.model_selection import StratifiedGroupKFold

    frame = pd.read_csv(train)
    buckets = frame["rating"].map(BUCKETS)
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    keep, out = next(folds.split(frame, buckets, frame["movie"]))
    paths = work / "train.csv", work / "test.csv"
    frame.iloc[keep].to_csv(paths[0], index=False)
    frame.iloc[out].to_csv(paths[1], index=False)
    return paths


def ours(train: Path, test: Path, work: Path) -> dict[str, float]:
    env = {**os.environ, "SENTIMENT_HOME": str(work / "home")}  # cold caches: Word2Vec included in the time
    model = work / "model"
    command = [str(SENTIMENT), "train", "-c", "imdb_ratings", "-o", str(model), "--quiet"]
    command += ["--set", f"data.path={train}", "--set", f"data.test_path={test}"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    test_metrics = json.loads((model / "metrics.json").read_text())["test"]
    return {"accuracy": test_metrics["accuracy"], "macro_f1": test_metrics["f1"], "seconds": seconds}


def tfidf_lr(train: Path, test: Path) -> dict[str, float]:
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    start = time.perf_counter()
    a, b = pd.read_csv(train), pd.read_csv(test)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train, x_test = vectorizer.fit_transform(a["review"]), None
    classifier = LogisticRegression(C=4.0, max_iter=2000).fit(x_train, a["rating"].map(BUCKETS))
    x_test = vectorizer.transform(b["review"])
    predicted, truth = classifier.predict(x_test), b["rating"].map(BUCKETS)
    seconds = time.perf_counter() - start
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro")),
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, default=TRAIN)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not args.train.is_file():
        print(f"no data at {args.train}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sentiment-ratings-") as tmp:
        work = Path(tmp)
        train, test = split_by_movie(args.train, args.seed, work)
        rows = {
            "configs/imdb_ratings.yaml": ours(train, test, work),
            "TF-IDF 1-2 + LR": tfidf_lr(train, test),
        }
    print(f"{'system':<28} {'accuracy':>9} {'macro-F1':>9} {'wall s':>8}")
    for name, row in rows.items():
        print(f"{name:<28} {row['accuracy']:>9.4f} {row['macro_f1']:>9.4f} {row['seconds']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
