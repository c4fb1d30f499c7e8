from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED, make_review, write_reviews
from sentiment.config import DataConfig
from sentiment.data import load_splits, read_chunks, read_table
from sentiment.errors import DataError


@pytest.mark.parametrize(
    "suffix",
    [".csv", ".tsv", ".parquet", ".jsonl", ".csv.gz", ".jsonl.gz", ".parquet.gz", "bom.jsonl", "bom.csv"],
)
def test_every_supported_format_reads_the_same(tmp_path: Path, suffix: str) -> None:
    """Every suffix the docs list, gzipped too, and a byte-order mark (utf-8-sig) on text formats; both
    the whole-file reader and the chunked one (data.streaming)."""
    frame = pd.read_csv(write_reviews(tmp_path / "src.csv", n=20))
    path = tmp_path / f"data{suffix}"
    encoding = "utf-8-sig" if suffix.startswith("bom") else "utf-8"
    if ".csv" in suffix:
        frame.to_csv(path, index=False, encoding=encoding, compression="infer")
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix.startswith(".parquet"):
        raw = frame.to_parquet()
        path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    else:
        opener = gzip.open if suffix.endswith(".gz") else open
        with opener(path, "wt", encoding=encoding) as fh:
            for row in frame.to_dict("records"):
                fh.write(json.dumps(row) + "\n")
    read = read_table(path, ["review", "sentiment"])
    assert read["review"].tolist() == frame["review"].tolist()
    assert read["sentiment"].tolist() == frame["sentiment"].tolist()
    chunks = [chunk for _, chunk in read_chunks(path, ["review", "sentiment"], rows=7)]
    assert pd.concat(chunks)["review"].tolist() == frame["review"].tolist()


@pytest.mark.parametrize("line", ["[1, 2, 3]", "42"])
def test_a_json_lines_row_that_is_not_an_object(tmp_path: Path, line: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"review": "fine", "sentiment": "positive"}) + "\n" + line + "\n")
    with pytest.raises(DataError, match="every line must be a JSON object"):
        read_table(path, ["review", "sentiment"])


def test_split_is_seeded_stratified_and_disjoint(tmp_path: Path) -> None:
    cfg = DataConfig(path=str(write_reviews(tmp_path / "r.csv", n=200)), test_size=0.2, val_size=0.1)
    a, b = load_splits(cfg, seed=3), load_splits(cfg, seed=3)
    assert a.test.texts == b.test.texts and a.val.texts == b.val.texts
    assert (len(a.train.texts), len(a.val.texts), len(a.test.texts)) == (140, 20, 40)
    assert a.test.labels.mean() == 0.5 and a.val.labels.mean() == 0.5  # stratified
    assert not set(a.test.texts) & set(a.train.texts)
    assert load_splits(cfg, seed=4).test.texts != a.test.texts


def test_unshuffled_split_takes_the_last_rows_for_test(tmp_path: Path) -> None:
    path = write_reviews(tmp_path / "r.csv", n=50)
    cfg = DataConfig(path=str(path), test_size=0.2, val_size=0.0, shuffle=False)
    splits = load_splits(cfg, seed=0)
    assert splits.test.texts == pd.read_csv(path)["review"].tolist()[-10:]
    assert splits.val is None


def test_zero_one_labels_and_explicit_test_file(tmp_path: Path) -> None:
    train = write_reviews(
        tmp_path / "train.csv", n=40, labels=("0", "1"), label_column="label", text_column="text"
    )
    test = write_reviews(
        tmp_path / "test.csv", n=10, seed=5, labels=("0", "1"), label_column="label", text_column="text"
    )
    cfg = DataConfig(
        path=str(train),
        test_path=str(test),
        text_column="text",
        label_column="label",
        positive_label="1",
        val_size=0.25,
    )
    splits = load_splits(cfg, seed=0)
    assert splits.label_names == ["0", "1"]
    assert len(splits.test.texts) == 10 and len(splits.train.texts) == 30
    expected = (pd.read_csv(test)["label"] == 1).to_numpy(dtype=np.int64)
    assert np.array_equal(splits.test.labels, expected)


def test_empty_texts_are_dropped_and_counted(tmp_path: Path) -> None:
    path = write_reviews(tmp_path / "r.csv", n=40)
    frame = pd.read_csv(path)
    frame.loc[[0, 1], "review"] = ["", None]
    frame.to_csv(path, index=False)
    splits = load_splits(DataConfig(path=str(path), val_size=0.0), seed=0)
    assert len(splits.train.texts) + len(splits.test.texts) == 38
    assert any("dropped 2 row(s)" in w for w in splits.warnings)  # prepare logs them, fresh or cached


def test_missing_column_names_the_existing_ones(tmp_path: Path) -> None:
    path = write_reviews(tmp_path / "r.csv", n=10)
    with pytest.raises(DataError, match=r"column.*text.*review, sentiment"):
        load_splits(DataConfig(path=str(path), text_column="text"), seed=0)


def test_unlabelled_text_is_read(tmp_path: Path) -> None:
    path = write_reviews(tmp_path / "r.csv", n=20)
    unlabeled = tmp_path / "u.csv"
    pd.DataFrame({"review": ["one more text", "another", None]}).to_csv(unlabeled, index=False)
    splits = load_splits(DataConfig(path=str(path), unlabeled_path=str(unlabeled), val_size=0.0), seed=0)
    assert splits.unlabeled == ["one more text", "another"]


def test_three_classes_are_multiclass_unless_the_task_is_binary(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    labels = ["positive", "negative", "neutral"] * 10
    pd.DataFrame({"review": [f"text {i}" for i in range(30)], "sentiment": labels}).to_csv(path, index=False)
    with pytest.raises(DataError, match="exactly two classes"):
        load_splits(DataConfig(path=str(path), task="binary"), seed=0)
    splits = load_splits(DataConfig(path=str(path), val_size=0.0, test_size=0.3), seed=0)
    assert splits.label_names == ["negative", "neutral", "positive"]  # sorted, or data.labels' order
    assert sorted(np.bincount(splits.test.labels).tolist()) == [3, 3, 3]  # stratified over three classes
    ordered = load_splits(DataConfig(path=str(path), labels=["positive", "neutral", "negative"]), seed=0)
    assert ordered.label_names == ["positive", "neutral", "negative"]
    with pytest.raises(DataError, match=r"label\(s\) negative in column 'sentiment' are not in data.labels"):
        load_splits(DataConfig(path=str(path), labels=["positive", "neutral", "mixed"]), seed=0)


def _grouped_reviews(path: Path, groups: int = 60, per_group: int = 8) -> Path:
    import random

    rng = random.Random(0)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment", "movie"])
        for g in range(groups):
            for i in range(per_group):
                positive = (g + i) % 2 == 0
                writer.writerow(
                    [make_review(rng, positive), "positive" if positive else "negative", f"tt{g:04d}"]
                )
    return path


def test_group_column_keeps_every_group_in_one_split(tmp_path: Path) -> None:
    data = _grouped_reviews(tmp_path / "grouped.csv")
    splits = load_splits(DataConfig(path=str(data), group_column="movie"), seed=3)
    sides = [set(split.groups.tolist()) for split in (splits.train, splits.val, splits.test)]
    assert all(not (a & b) for i, a in enumerate(sides) for b in sides[i + 1 :])  # group-disjoint
    n = sum(len(s.labels) for s in (splits.train, splits.val, splits.test))
    # 20 % of the 60 movies for test, 1/8 of the other 48 for validation (0.1 of the whole / 0.8)
    assert n == 480 and len(splits.test.labels) == 12 * 8 and len(splits.val.labels) == 6 * 8
    assert all(set(s.labels.tolist()) == {0, 1} for s in (splits.train, splits.val, splits.test))
    again = load_splits(DataConfig(path=str(data), group_column="movie"), seed=3)
    assert again.test.texts == splits.test.texts  # seeded


def test_group_column_with_too_few_groups(tmp_path: Path) -> None:
    data = _grouped_reviews(tmp_path / "grouped.csv", groups=3, per_group=40)
    with pytest.raises(DataError, match=r"cannot make a test split of 0\.2 by data\.group_column: 3 group"):
        load_splits(DataConfig(path=str(data), group_column="movie"), seed=0)


@pytest.mark.skipif(not (SHARED / "data" / "imdb" / "train.csv.gz").exists(), reason="needs ../shared")
def test_imdb_split_by_movie_is_movie_disjoint() -> None:
    """The official IMDB test split shares no movie with training: a split that mimics it must not either."""
    path = SHARED / "data" / "imdb" / "train.csv.gz"
    splits = load_splits(
        DataConfig(path=str(path), group_column="movie", test_size=0.2, val_size=0.1), seed=42
    )
    train, val, test = (set(s.groups.tolist()) for s in (splits.train, splits.val, splits.test))
    assert not (train & val) and not (train & test) and not (val & test)
    assert 0.18 < len(splits.test.labels) / 25_000 < 0.22 and 0.08 < len(splits.val.labels) / 25_000 < 0.12
    assert abs(splits.test.labels.mean() - 0.5) < 0.02  # stratified as far as whole movies allow


def test_a_tsv_whose_quote_joined_rows_is_warned_about(tmp_path: Path, caplog) -> None:
    """A TSV cell that starts with a quote runs to the next quote (as pandas and spreadsheets read TSV):
    rows go missing silently unless something says so."""
    path = tmp_path / "q.tsv"
    path.write_text(
        'review\tsentiment\n"a great film\tpositive\nawful\tnegative\nfine" film\tpositive\nok\tnegative\n'
    )
    frame = read_table(path, ["review", "sentiment"])
    assert len(frame) == 2  # the quote joined three rows into one
    assert "1 cell(s) hold a line break or a tab" in caplog.text
    caplog.clear()
    (tmp_path / "plain.tsv").write_text("review\tsentiment\na great film\tpositive\nawful\tnegative\n")
    read_table(tmp_path / "plain.tsv", ["review", "sentiment"])
    assert "line break" not in caplog.text


def test_labels_that_differ_only_in_case_or_spaces_are_named() -> None:
    from sentiment.pipeline import _labels_alike

    assert _labels_alike(["negative", "positive"]) == ""
    assert _labels_alike(["NEGATIVE", "Positive", "negative", "positive"]) == (
        "'NEGATIVE' / 'negative'; 'Positive' / 'positive'"
    )
