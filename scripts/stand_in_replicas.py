#!/usr/bin/env python3
"""Write fresh 5,000-row files like the Kaggle stand-in: tune `configs/default.yaml` without its test split.

The stand-in (`../shared/data/kaggle-cleaned/IMDB_cleaned.csv`) is 5,000 reviews of the IMDB training split,
lower-cased, with markup, punctuation and English stop words removed. This script cleans the other ~20,000
reviews of that split the same way (the cleaning reproduces all 5,000 stand-in rows exactly) and writes them
as disjoint files of 5,000 rows with the stand-in's columns (the split repeats about 70 reviews word for word;
they are kept, as they are in the stand-in). Settings compared by their mean test accuracy over these files,
each split by the config's own seed exactly as the stand-in is, are chosen on data that shares no review with
the stand-in's test split.

    python scripts/stand_in_replicas.py --out /tmp/replicas
    for f in /tmp/replicas/replica-*.csv; do
        sentiment train -c configs/default.yaml --set data.path=$f --set output_dir=/tmp/replica-runs --quiet
    done
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ROWS = 5_000


def clean(review: str) -> str:
    """The stand-in's cleaning: lower case, no markup, letters and digits only, no English stop words."""
    text = re.sub(r"[^a-z0-9]+", " ", re.sub(r"<[^>]+>", " ", review.lower()))
    return " ".join(w for w in text.split() if w not in ENGLISH_STOP_WORDS)


def replicas(train: Path, stand_in: Path, seed: int = 0) -> list[pd.DataFrame]:
    used = set(pd.read_csv(stand_in)["cleaned_review"])
    frame = pd.read_csv(train)
    frame["cleaned_review"] = frame["review"].map(clean)
    matched = frame["cleaned_review"].isin(used)
    if matched.sum() < len(used):
        raise SystemExit(f"only {matched.sum()} of the {len(used)} stand-in rows found in {train}")
    rest = frame.loc[~matched, ["cleaned_review", "sentiment"]].sample(frac=1, random_state=seed)
    rest = rest.reset_index(drop=True)
    return [rest.iloc[i : i + ROWS] for i in range(0, len(rest) - ROWS // 2, ROWS)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for replica-N.csv")
    parser.add_argument("--train", type=Path, default=SHARED / "imdb" / "train.csv.gz")
    parser.add_argument("--stand-in", type=Path, default=SHARED / "kaggle-cleaned" / "IMDB_cleaned.csv")
    args = parser.parse_args(argv)
    for path in (args.train, args.stand_in):
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(replicas(args.train, args.stand_in)):
        target = args.out / f"replica-{i}.csv"
        part.to_csv(target, index=False)
        counts = part["sentiment"].value_counts().to_dict()
        print(f"{target}: {len(part):,} rows ({counts.get('positive', 0)} positive)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
