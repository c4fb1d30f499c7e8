"""scripts/stand_in_replicas.py: the stand-in's cleaning, and replicas that leave the stand-in's rows out."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd

from conftest import load_script


def load_replicas_script() -> ModuleType:
    return load_script("stand_in_replicas")


def test_clean_lowercases_and_drops_markup_punctuation_and_stop_words() -> None:
    clean = load_replicas_script().clean
    assert clean("This is <br /><br />GREAT, isn't it? 10/10") == "great isn t 10 10"


def test_replicas_leave_out_the_stand_in_rows(tmp_path: Path) -> None:
    script = load_replicas_script()
    reviews = [f"Review number {i} of a <i>fine</i> film!" for i in range(12_000)]
    labels = ["positive" if i % 2 else "negative" for i in range(12_000)]
    train = tmp_path / "train.csv"
    pd.DataFrame({"review": reviews, "sentiment": labels}).to_csv(train, index=False)
    stand_in = tmp_path / "stand_in.csv"
    kept = [script.clean(r) for r in reviews[:1_000]]
    pd.DataFrame({"cleaned_review": kept, "sentiment": labels[:1_000]}).to_csv(stand_in, index=False)

    args = ["--out", str(tmp_path / "out"), "--train", str(train), "--stand-in", str(stand_in)]
    assert script.main(args) == 0
    parts = [pd.read_csv(tmp_path / "out" / f"replica-{i}.csv") for i in range(2)]
    # 11,000 rows left: two files of 5,000; the last 1,000 are too few for a third
    assert not (tmp_path / "out" / "replica-2.csv").exists()
    texts = [set(p["cleaned_review"]) for p in parts]
    assert [len(p) for p in parts] == [5_000, 5_000] and not texts[0] & texts[1]
    assert not (texts[0] | texts[1]) & set(kept)
