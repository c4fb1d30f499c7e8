"""The accuracy benchmark runs end to end on tiny synthetic data, so it cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_script, write_reviews

FAST = [
    "word2vec.vector_size=16",
    "word2vec.epochs=2",
    "word2vec.workers=1",
    "training.epochs=2",
    "device=cpu",
]


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_accuracy")


def _sets() -> list[str]:
    return [arg for item in FAST for arg in ("--set", item)]


@pytest.mark.slow
def test_every_system_on_a_train_test_pair(bench, tmp_path: Path) -> None:
    train = write_reviews(tmp_path / "train.csv", n=300, seed=1)
    test = write_reviews(tmp_path / "test.csv", n=100, seed=2)
    out = tmp_path / "rows.json"
    lines: list[str] = []
    args = ["--train", str(train), "--test", str(test), "--no-unlabeled", "--json", str(out), *_sets()]
    rows = bench.main(args, log=lines.append)
    assert [r.system for r in rows] == ["tutorial", "plain", "best", "tfidf_lr"]
    for row in rows:
        assert 0.0 <= row.accuracy <= 1.0 and 0.0 <= row.f1 <= 1.0 and row.seconds > 0
    assert rows[-1].accuracy > 0.8  # the synthetic sentiment words are easy for the peer
    saved = json.loads(out.read_text())
    assert [r["system"] for r in saved] == [r.system for r in rows]
    table = lines[-1]
    assert "accuracy" in table and "tfidf_lr" in table and "best" in table


def test_holdout_split_with_unlabelled_text(bench, tmp_path: Path) -> None:
    train = write_reviews(tmp_path / "train.csv", n=300, seed=3)
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("review\n" + "\n".join(f"a great film number {i}" for i in range(20)) + "\n")
    rows = bench.main(
        ["--train", str(train), "--unlabeled", str(unlabeled), "--systems", "plain", "tfidf_lr", *_sets()],
        log=lambda _: None,
    )
    assert [r.system for r in rows] == ["plain", "tfidf_lr"]
    assert all(0.0 <= r.accuracy <= 1.0 for r in rows)


def test_tail_holds_out_the_last_rows_in_file_order(bench, tmp_path: Path) -> None:
    import pandas as pd

    train = write_reviews(tmp_path / "train.csv", n=40, seed=4)
    workdir = tmp_path / "work"
    workdir.mkdir()
    files = bench.prepare_files(
        bench.parse_args(["--train", str(train), "--tail", "--holdout", "0.25"]), workdir
    )
    frame, kept, held = pd.read_csv(train), pd.read_csv(files.train), pd.read_csv(files.test)
    pd.testing.assert_frame_equal(kept, frame.iloc[:30].reset_index(drop=True))
    pd.testing.assert_frame_equal(held, frame.iloc[30:].reset_index(drop=True))


def test_default_config_runs_only_when_named(bench, tmp_path: Path) -> None:
    assert "default" not in bench.parse_args([]).systems
    train = write_reviews(tmp_path / "train.csv", n=300, seed=5)
    rows = bench.main(
        ["--train", str(train), "--tail", "--no-unlabeled", "--systems", "default", *_sets()],
        log=lambda _: None,
    )
    assert [r.system for r in rows] == ["default"] and 0.0 <= rows[0].accuracy <= 1.0


@pytest.mark.slow
def test_ratings_task_on_a_movie_disjoint_hold_out(bench, tmp_path: Path) -> None:
    """--task ratings: the multiclass config against TF-IDF + LR, on made reviews with ratings and movies."""
    import csv
    import random

    from conftest import make_review

    rng = random.Random(3)
    data = tmp_path / "ratings.csv"
    with data.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment", "rating", "movie"])
        for i in range(600):
            rating = [1, 3, 8, 10][i % 4]
            writer.writerow([make_review(rng, rating > 5), "x", rating, f"tt{i % 60:03d}"])
    lines: list[str] = []
    rows = bench.main(["--task", "ratings", "--train", str(data)], log=lines.append)
    assert [r.system for r in rows] == ["imdb_ratings", "tfidf_lr"]
    assert all(0.0 <= r.accuracy <= 1.0 and 0.0 <= r.f1 <= 1.0 and r.seconds > 0 for r in rows)
    assert "macro-F1" in lines[-1]
