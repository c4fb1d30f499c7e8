"""data.path / data.unlabeled_path / data.test_path as a directory or a glob of shards; read_chunks."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_review
from sentiment.config import load_config
from sentiment.data import load_splits, read_chunks, read_table, read_unlabeled
from sentiment.datafiles import data_files
from sentiment.errors import DataError


def _reviews(n: int, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    labels = ["positive" if i % 2 else "negative" for i in range(n)]
    texts = [make_review(rng, label == "positive") for label in labels]
    return pd.DataFrame({"review": texts, "sentiment": labels, "extra": [f"x{i}" for i in range(n)]})


def _write(frame: pd.DataFrame, path: Path) -> Path:
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def test_data_files_of_a_file_a_directory_and_a_glob(tmp_path: Path) -> None:
    one = _write(_reviews(3), tmp_path / "one.csv")
    assert data_files(one) == [one]
    assert data_files(str(one)) == [one]
    shards = tmp_path / "shards"
    shards.mkdir()
    for name in ("b.parquet", "a.csv", "c.jsonl", "d.csv.gz"):
        _write(_reviews(3), shards / name)
    (shards / "notes.txt").write_text("not data")
    (shards / ".hidden.csv").write_text("review,sentiment\nx,positive\n")
    (shards / "sub").mkdir()
    (shards / "sub" / "e.csv").write_text("review,sentiment\nx,positive\n")
    expected = [shards / n for n in ("a.csv", "b.parquet", "c.jsonl", "d.csv.gz")]
    assert data_files(shards) == expected
    assert data_files(f"{shards}/*.csv*") == [shards / "a.csv", shards / "d.csv.gz"]
    assert data_files(shards / "[bc].*") == [shards / "b.parquet", shards / "c.jsonl"]


def test_data_files_when_nothing_is_found(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing")
    with pytest.raises(DataError, match=r"no data files \(csv, tsv, parquet, jsonl, \.gz\) in .*empty$"):
        data_files(empty)
    with pytest.raises(DataError, match=r"no data files .* in .*empty$"):
        read_table(empty)  # a directory is no longer refused as such, but it must hold data
    pattern = str(tmp_path / "none-*.csv")
    with pytest.raises(DataError, match="no CSV / TSV / Parquet / JSON-lines file matches") as info:
        data_files(pattern)
    assert str(info.value) == f"no CSV / TSV / Parquet / JSON-lines file matches {pattern}"
    with pytest.raises(DataError, match=r"data file not found: .*missing\.csv"):
        data_files(tmp_path / "missing.csv")
    with pytest.raises(DataError, match=r"data file not found: .*missing\.csv"):
        read_table(tmp_path / "missing.csv")


def test_read_table_of_mixed_shards_is_their_concatenation(tmp_path: Path) -> None:
    frames = [_reviews(4, seed=1), _reviews(5, seed=2), _reviews(3, seed=3)]
    _write(frames[0], tmp_path / "part-0.csv")
    _write(frames[1], tmp_path / "part-1.parquet")
    _write(frames[2], tmp_path / "part-2.jsonl")
    got = read_table(tmp_path, ["review", "sentiment"])
    expected = pd.concat([f[["review", "sentiment"]] for f in frames], ignore_index=True)
    assert got["review"].tolist() == expected["review"].tolist()
    assert got["sentiment"].tolist() == expected["sentiment"].tolist()
    assert list(got.index) == list(range(12))
    # a glob that names one shard is that file
    single = read_table(str(tmp_path / "part-1.*"), ["review"])
    pd.testing.assert_frame_equal(single, read_table(tmp_path / "part-1.parquet", ["review"]))


def test_a_shard_without_a_column_is_named(tmp_path: Path) -> None:
    _write(_reviews(4), tmp_path / "a.csv")
    _write(_reviews(4).drop(columns="sentiment"), tmp_path / "b.csv")
    message = r"b\.csv: column\(s\) sentiment not found; the file has: review, extra"
    with pytest.raises(DataError, match=message):
        read_table(tmp_path, ["review", "sentiment"])
    with pytest.raises(DataError, match=message):
        list(read_chunks(tmp_path, ["review", "sentiment"], rows=3))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("rows", [1, 4, 7, 1000])
def test_read_chunks_concatenated_equal_read_table(tmp_path: Path, suffix: str, rows: int) -> None:
    frame = _reviews(10)
    frame.loc[3, "review"] = "NA"  # text, not a missing value
    _write(frame.iloc[:6], tmp_path / f"s0{suffix}")
    _write(frame.iloc[6:], tmp_path / f"s1{suffix}")
    for columns in (None, ["sentiment", "review"]):
        chunks = list(read_chunks(tmp_path, columns, rows=rows))
        assert all(len(chunk) <= rows for _, chunk in chunks)
        assert [p.name for p, _ in chunks] == sorted(p.name for p, _ in chunks)
        assert {p.name for p, _ in chunks} == {f"s0{suffix}", f"s1{suffix}"}
        joined = pd.concat([chunk for _, chunk in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(joined, read_table(tmp_path, columns))
        one = pd.concat(
            [c for _, c in read_chunks(tmp_path / f"s0{suffix}", columns, rows)], ignore_index=True
        )
        pd.testing.assert_frame_equal(
            one, read_table(tmp_path / f"s0{suffix}", columns).reset_index(drop=True)
        )
    if suffix.startswith((".csv", ".tsv")):
        assert joined.loc[3, "review"] == "NA"
        assert all(pd.api.types.is_string_dtype(d) for d in joined.dtypes)


def test_read_chunks_on_a_damaged_gz_shard(tmp_path: Path) -> None:
    _write(_reviews(5), tmp_path / "a.csv")
    good = _write(_reviews(400), tmp_path / "b.csv.gz")
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"b\.csv\.gz: cannot parse as csv"):
        list(read_chunks(tmp_path, ["review"], rows=50))
    with pytest.raises(DataError, match=r"b\.csv\.gz: cannot parse as csv"):
        read_table(tmp_path, ["review"])


def test_read_chunks_errors_match_read_table(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"review,sentiment\ngood,positive\nbad \xff byte,negative\n")
    with pytest.raises(DataError, match=r"not UTF-8 text \(line 3, byte \d+: b'\\xff'\)"):
        list(read_chunks(bad))
    header = tmp_path / "header.csv"
    header.write_text("review,sentiment\n")
    with pytest.raises(DataError, match=r"header\.csv: the file has no rows"):
        read_table(header)
    with pytest.raises(DataError, match=r"header\.csv: the file has no rows"):
        list(read_chunks(header))
    empty = tmp_path / "empty.parquet"
    _reviews(3).iloc[:0].to_parquet(empty)
    with pytest.raises(DataError, match=r"empty\.parquet: the file has no rows"):
        list(read_chunks(empty, ["review"]))
    with gzip.open(tmp_path / "zero.jsonl.gz", "wb"):
        pass
    with pytest.raises(DataError, match=r"zero\.jsonl\.gz: the file has no rows"):
        list(read_chunks(tmp_path / "zero.jsonl.gz"))
    with pytest.raises(ValueError, match="rows must be at least 1"):
        next(read_chunks(bad, rows=0))


def test_load_splits_on_a_directory_of_shards_equals_the_one_file(tmp_path: Path) -> None:
    frame = _reviews(120, seed=5)
    whole = _write(frame, tmp_path / "all.csv")
    shards = tmp_path / "shards"
    shards.mkdir()
    _write(frame.iloc[:70], shards / "part-0.csv")
    _write(frame.iloc[70:], shards / "part-1.csv")
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    _write(frame.iloc[:30], unlabeled / "u-0.csv")
    _write(frame.iloc[30:50], unlabeled / "u-1.jsonl")
    values = {
        "data.text_column": "review",
        "data.label_column": "sentiment",
        "data.positive_label": "positive",
    }

    def splits(path: Path | str):
        config = load_config(
            values={**values, "data.path": str(path), "data.unlabeled_path": f"{unlabeled}/u-*"}
        )
        return load_splits(config.data, seed=3)

    one, many = splits(whole), splits(shards)
    for part in ("train", "val", "test"):
        assert getattr(one, part).texts == getattr(many, part).texts
        assert getattr(one, part).labels.tolist() == getattr(many, part).labels.tolist()
    assert many.label_names == one.label_names == ["negative", "positive"]
    assert many.unlabeled == frame["review"].iloc[:50].tolist()
    assert many.source == str(shards)


def test_unlabeled_path_as_a_glob(tmp_path: Path) -> None:
    _write(_reviews(4, seed=1)[["review"]], tmp_path / "u-1.csv")
    _write(_reviews(3, seed=2)[["review"]], tmp_path / "u-2.csv")
    _write(_reviews(2, seed=3)[["review"]], tmp_path / "other.csv")
    config = load_config(
        values={"data.path": str(tmp_path / "other.csv"), "data.unlabeled_path": f"{tmp_path}/u-?.csv"}
    )
    texts = read_unlabeled(config.data)
    assert texts == _reviews(4, seed=1)["review"].tolist() + _reviews(3, seed=2)["review"].tolist()
