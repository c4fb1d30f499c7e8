"""The accuracy benchmark runs end to end on tiny synthetic data, so it cannot rot."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_script, make_review, write_reviews

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


def write_movie_reviews(path: Path, n: int = 400, movies: int = 40, seed: int = 0) -> Path:
    """Synthetic reviews with a ``movie`` column: ``n / movies`` reviews a movie, a few rows without one."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment", "movie"])
        for i in range(n):
            positive = i % 2 == 0
            movie = "" if i % 97 == 0 else f"tt{(i // 2) % movies:07d}"  # both labels per movie
            writer.writerow([make_review(rng, positive), "positive" if positive else "negative", movie])
    return path


@pytest.mark.slow
def test_every_system_on_a_train_test_pair(bench, tmp_path: Path) -> None:
    train = write_reviews(tmp_path / "train.csv", n=300, seed=1)
    test = write_reviews(tmp_path / "test.csv", n=100, seed=2)
    out = tmp_path / "rows.json"
    lines: list[str] = []
    args = ["--train", str(train), "--test", str(test), "--no-unlabeled", "--json", str(out), *_sets()]
    rows = bench.main(args, log=lines.append)
    expected = ["tutorial", "plain", "fast", "best", "tfidf_lr", "nbsvm2", "nbsvm3"]
    expected += ["fasttext"] if bench.fasttext_available() else []
    assert [r.system for r in rows] == expected
    for row in rows:
        assert 0.0 <= row.accuracy <= 1.0 and 0.0 <= row.f1 <= 1.0 and row.seconds > 0
    peers = {r.system: r for r in rows if r.system in bench.PEERS}
    assert all(r.accuracy > 0.8 for r in peers.values())  # the synthetic sentiment words are easy for peers
    assert all("cold CLI" in r.detail for r in rows if r.system not in bench.PEERS)
    saved = json.loads(out.read_text())
    assert [r["system"] for r in saved] == [r.system for r in rows]
    assert all(isinstance(r["dominated_by"], list) for r in saved)
    assert lines[0].startswith("split: none, --test given")
    table, frontier = lines[-2], lines[-1]
    assert "accuracy" in table and "tfidf_lr" in table and "best" in table and "nbsvm3" in table
    assert frontier.count("\n") == len(rows) and "best" in frontier


def test_holdout_split_with_unlabelled_text(bench, tmp_path: Path) -> None:
    train = write_reviews(tmp_path / "train.csv", n=300, seed=3)
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("review\n" + "\n".join(f"a great film number {i}" for i in range(20)) + "\n")
    lines: list[str] = []
    rows = bench.main(
        ["--train", str(train), "--unlabeled", str(unlabeled), "--systems", "plain", "tfidf_lr", *_sets()],
        log=lines.append,
    )
    assert [r.system for r in rows] == ["plain", "tfidf_lr"]
    assert all(0.0 <= r.accuracy <= 1.0 for r in rows)
    assert lines[0].startswith("split: random (240 training rows / 60 held out")  # no movie column
    assert "val acc" in rows[0].detail and "cold CLI" in rows[0].detail


def test_tail_holds_out_the_last_rows_in_file_order(bench, tmp_path: Path) -> None:
    import pandas as pd

    train = write_reviews(tmp_path / "train.csv", n=40, seed=4)
    frame = pd.read_csv(train)
    for i, flags in enumerate((["--tail"], ["--split", "tail"])):
        workdir = tmp_path / str(i)
        workdir.mkdir()
        files = bench.prepare_files(
            bench.parse_args(["--train", str(train), *flags, "--holdout", "0.25"]), workdir
        )
        kept, held = pd.read_csv(files.train), pd.read_csv(files.test)
        pd.testing.assert_frame_equal(kept, frame.iloc[:30].reset_index(drop=True))
        pd.testing.assert_frame_equal(held, frame.iloc[30:].reset_index(drop=True))
        assert files.split == "tail" and files.group_column is None
    with pytest.raises(SystemExit, match="contradicts"):
        bench.prepare_files(
            bench.parse_args(["--train", str(train), "--tail", "--split", "random"]), tmp_path
        )


def test_default_config_runs_only_when_named(bench, tmp_path: Path) -> None:
    assert "default" not in bench.parse_args([]).systems
    train = write_reviews(tmp_path / "train.csv", n=300, seed=5)
    rows = bench.main(
        ["--train", str(train), "--tail", "--no-unlabeled", "--systems", "default", *_sets()],
        log=lambda _: None,
    )
    assert [r.system for r in rows] == ["default"] and 0.0 <= rows[0].accuracy <= 1.0


def test_movie_split_puts_no_movie_on_both_sides(bench, tmp_path: Path) -> None:
    import pandas as pd

    train = write_movie_reviews(tmp_path / "reviews.csv", n=400, movies=40)

    def split(*flags: str):
        workdir = tmp_path / f"work{len(list(tmp_path.glob('work*')))}"
        workdir.mkdir()
        files = bench.prepare_files(bench.parse_args(["--train", str(train), *flags]), workdir)
        return files, pd.read_csv(files.train), pd.read_csv(files.test)

    files, kept, held = split()  # movie: the default with a movie column
    assert files.split == "movie" and files.group_column == "movie"
    assert files.description.startswith("movie (")
    assert sorted([*kept["review"], *held["review"]]) == sorted(pd.read_csv(train)["review"])
    kept_movies, held_movies = set(kept["movie"].dropna()), set(held["movie"].dropna())
    assert kept_movies and held_movies and not kept_movies & held_movies
    assert kept["movie"].isna().any() or held["movie"].isna().any()  # rows without a movie are kept too
    assert 0.1 < len(held) / 400 < 0.3  # a fifth of the movies: about a fifth of the rows
    assert set(held["sentiment"]) == {"positive", "negative"}
    # the configs' own validation split groups by movie too
    assert "data.group_column=movie" in bench._overrides(files, [])
    # the same seed, the same split; another seed, another one
    assert set(split("--split", "movie")[2]["review"]) == set(held["review"])
    assert set(split("--seed", "7")[2]["review"]) != set(held["review"])


def test_random_split_without_a_movie_column(bench, tmp_path: Path) -> None:
    plain = write_reviews(tmp_path / "plain.csv", n=100, seed=6)
    files = bench.prepare_files(bench.parse_args(["--train", str(plain)]), tmp_path)
    assert files.split == "random" and files.group_column is None
    assert not any(o.startswith("data.group_column") for o in bench._overrides(files, []))
    with pytest.raises(SystemExit, match="no 'movie' column"):
        bench.prepare_files(bench.parse_args(["--train", str(plain), "--split", "movie"]), tmp_path)
    movies = write_movie_reviews(tmp_path / "movies.csv", n=100, movies=20)
    files = bench.prepare_files(bench.parse_args(["--train", str(movies), "--split", "random"]), tmp_path)
    assert files.split == "random" and files.group_column is None


def test_nb_log_count_ratio_by_hand(bench) -> None:
    import numpy as np
    import scipy.sparse as sp

    # features: "good" in both positive rows, "bad" in the negative row, "film" everywhere
    x = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1]]))
    y = np.array([True, True, False])
    p, q = np.array([3.0, 1.0, 3.0]), np.array([1.0, 2.0, 2.0])
    expected = np.log((p / 7) / (q / 5))
    np.testing.assert_allclose(bench.nb_log_count_ratio(x, y), expected)


def test_nbsvm_peers_beat_chance(bench, tmp_path: Path) -> None:
    train = write_movie_reviews(tmp_path / "train.csv", n=400, movies=40, seed=8)
    lines: list[str] = []
    rows = bench.main(["--train", str(train), "--systems", "nbsvm2", "nbsvm3"], log=lines.append)
    assert [r.system for r in rows] == ["nbsvm2", "nbsvm3"]
    assert lines[0].startswith("split: movie")
    for row in rows:
        assert row.accuracy > 0.8 and row.f1 > 0.8 and row.seconds > 0
    assert "1-2-grams" in rows[0].detail and "1-3-grams" in rows[1].detail and "C=0.1" in rows[0].detail
    assert int(rows[1].detail.split()[1]) > int(rows[0].detail.split()[1])  # trigrams: more features


def test_fasttext_peer(bench, tmp_path: Path) -> None:
    pytest.importorskip("fasttext", reason="fastText not installed (pip install fasttext-numpy2)")
    train = write_reviews(tmp_path / "train.csv", n=300, seed=9)
    test = write_reviews(tmp_path / "test.csv", n=100, seed=10)
    rows = bench.main(
        ["--train", str(train), "--test", str(test), "--systems", "fasttext"], log=lambda _: None
    )
    assert [r.system for r in rows] == ["fasttext"]
    assert rows[0].accuracy > 0.8 and rows[0].seconds > 0


def test_fasttext_text_and_skip(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bench.fasttext_text('Great "film"!<br /><br />It\'s: GOOD.') == "great film ! it ' s good ."
    monkeypatch.setattr(bench, "fasttext_available", lambda: False)
    train = write_reviews(tmp_path / "train.csv", n=100, seed=11)
    lines: list[str] = []
    rows = bench.main(["--train", str(train), "--systems", "fasttext", "tfidf_lr"], log=lines.append)
    assert [r.system for r in rows] == ["tfidf_lr"]  # skipped, not an error
    assert any(line.startswith("note: fasttext skipped") for line in lines)


def test_frontier_on_hand_made_rows(bench) -> None:
    row = bench.Row
    rows = [
        row("slow_good", 0.92, 0.92, 100.0),
        row("fast_ok", 0.90, 0.90, 10.0),
        row("slow_ok", 0.89, 0.89, 50.0),  # beaten by fast_ok and tie (slow_good is more accurate, slower)
        row("fastest", 0.80, 0.80, 1.0),
        row("tie", 0.90, 0.90, 20.0),  # fast_ok is faster but not more accurate: no win on a tie
        row("worst", 0.70, 0.70, 200.0),
    ]
    assert bench.dominated_by(rows) == {
        "slow_good": [],
        "fast_ok": [],
        "slow_ok": ["fast_ok", "tie"],
        "fastest": [],
        "tie": [],
        "worst": ["slow_good", "fast_ok", "slow_ok", "fastest", "tie"],
    }
    text = bench.format_frontier(rows)
    assert "slow_ok    dominated by: fast_ok, tie" in text
    assert "fastest    on the frontier" in text


def test_a_failing_config_raises_with_the_cli_stderr(bench, tmp_path: Path) -> None:
    train = write_reviews(tmp_path / "train.csv", n=100, seed=12)
    broken = tmp_path / "broken.yaml"
    broken.write_text("training:\n  epochs: -3\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"broken: `sentiment train` exited with status [1-9][\s\S]*epochs"):
        bench.main(
            [
                "--train",
                str(train),
                "--no-unlabeled",
                "--systems",
                "tfidf_lr",
                "--config",
                f"broken={broken}",
            ],
            log=lambda _: None,
        )


@pytest.mark.slow
def test_configs_run_cold_through_the_cli(
    bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_state: Path
) -> None:
    """Each config system: `python -m sentiment train ... -q` in its own process with a fresh, empty
    SENTIMENT_HOME. The same config twice on the same data: two cache misses (a shared home would hit)."""
    calls: list[tuple[list[str], Path, list[str]]] = []
    real_run = subprocess.run

    def spy(command, *args, **kwargs):
        home = Path(kwargs["env"]["SENTIMENT_HOME"])
        calls.append((list(command), home, sorted(p.name for p in home.iterdir())))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(bench.subprocess, "run", spy)
    train = write_movie_reviews(tmp_path / "train.csv", n=400, movies=40, seed=13)
    keep = tmp_path / "models"
    plain = str(bench.CONFIGS["plain"])
    args = ["--train", str(train), "--no-unlabeled", "--systems", "plain", "--config", f"again={plain}"]
    rows = bench.main([*args, "--keep", str(keep), *_sets()], log=lambda _: None)
    assert [r.system for r in rows] == ["plain", "again"]
    assert len(calls) == 2
    (first, home1, listed1), (_, home2, listed2) = calls
    assert first[:4] == [sys.executable, "-m", "sentiment", "train"] and first[-1] == "-q"
    assert "data.group_column=movie" in first  # the movie hold-out: the config's validation split too
    assert home1 != home2 and listed1 == [] and listed2 == []  # fresh and empty before each run
    assert not home1.exists() and not home2.exists()  # and removed afterwards
    assert not any(isolated_state.iterdir())  # the caller's own state directory is left alone
    for name in ("plain", "again"):
        meta = json.loads((keep / name / "meta.json").read_text())
        assert meta["word2vec_cache_hit"] is False and meta["prepared_cache_hit"] is False
        metrics = json.loads((keep / name / "metrics.json").read_text())
        row = next(r for r in rows if r.system == name)
        assert row.accuracy == metrics["test"]["accuracy"] and row.f1 == metrics["test"]["f1"]
        assert f"val acc {metrics['validation']['accuracy']:.4f}" in row.detail
        assert "cold CLI" in row.detail
    assert rows[0].accuracy == rows[1].accuracy  # the same config, seed and data, cold both times


@pytest.mark.slow
def test_ratings_task_on_a_movie_disjoint_hold_out(bench, tmp_path: Path) -> None:
    """--task ratings: the multiclass config against TF-IDF + LR, on made reviews with ratings and movies."""
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
