"""Bad data through the real CLI: exit 2 with one `error:` line, the previously saved model untouched.

The Kaggle cases point kagglehub at a fake Kaggle API on 127.0.0.1 (404 for an unknown dataset, a download
cut off half way) so they run offline.

Round four (issue 18, the data group), at the end: unusual but valid files must train with every text
and label read as written (not shifted, merged or stringified), checked on both readers, the whole-file one
and the chunked one of ``data.streaming``; broken ones end in exit 2 with one line; `config validate` refuses
what `train` refuses before it reads any data.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reliability import assert_bad_input, edit_config, install_previous_model, snapshot
from conftest import make_review, write_reviews
from sentiment.config import DataConfig
from sentiment.data import guess_data_settings, labelled_from_frame, read_chunks, read_table
from sentiment.errors import DataError
from sentiment.paths import last_model_file
from sentiment.streaming import _read_labelled


@pytest.fixture
def previous(tmp_path: Path, trained_model: Path, tiny_config: Path) -> Path:
    return install_previous_model(trained_model, tmp_path / "runs" / "tiny")


def train_unchanged(cli, previous: Path, config: Path, *args: str):
    before = snapshot(previous, last_model_file())
    result = cli(["train", "--config", config, "--quiet", *args])
    assert snapshot(previous, last_model_file()) == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["tiny"]
    return result


def use_data(config: Path, data: Path, **data_keys) -> Path:
    return edit_config(config, data={"path": str(data), **data_keys})


def test_data_missing_file(cli, previous, tiny_config, tmp_path) -> None:
    use_data(tiny_config, tmp_path / "missing.csv")
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, "data file not found", "missing.csv")


def test_data_unsupported_extension(cli, previous, tiny_config, tmp_path, reviews_csv) -> None:
    data = tmp_path / "reviews.txt"
    data.write_bytes(reviews_csv.read_bytes())
    use_data(tiny_config, data)
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, "reviews.txt: unsupported file type; use one of", ".csv", ".parquet")


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", "the file is empty"), ("review,sentiment\n", "the file has no rows")],
    ids=["zero-bytes", "header-only"],
)
def test_data_empty_file(cli, previous, tiny_config, tmp_path, content, expected) -> None:
    data = tmp_path / "empty.csv"
    data.write_text(content)
    use_data(tiny_config, data)
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, f"empty.csv: {expected}")


@pytest.mark.parametrize("key", ["text_column", "label_column"])
def test_data_column_absent_names_existing_columns(cli, previous, tiny_config, reviews_csv, key) -> None:
    use_data(tiny_config, reviews_csv, **{key: "body"})
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, "column(s) body not found; the file has: review, sentiment")


def test_data_empty_and_nan_texts_dropped_with_count(cli, tiny_config, tmp_path) -> None:
    data = write_reviews(tmp_path / "gappy.csv")
    lines = data.read_text().splitlines()
    # three unusable rows: an empty text, a blank one and a missing label
    lines += [",positive", '"   ",negative', "a fine film,"]
    data.write_text("\n".join(lines) + "\n")
    use_data(tiny_config, data)
    result = cli(["train", "--config", tiny_config, "--quiet", "--output", tmp_path / "model"])
    assert result.exit_code == 0, result.stderr
    assert "dropped 3 row(s) with an empty text or label" in result.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["positive", "negative", "neutral"], "column 'sentiment' must hold exactly two classes, found 3"),
        (["positive"], "must hold exactly two classes, found 1"),
        (
            ["good", "bad"],
            "positive label 'positive' not found in column 'sentiment' (values: bad, good); "
            "pass --positive-label VALUE (or --set data.positive_label=VALUE)",
        ),
    ],
    ids=["three-classes", "one-class", "no-positive-label"],
)
def test_data_labels_not_two_classes(cli, previous, tiny_config, tmp_path, labels, expected) -> None:
    data = tmp_path / "labels.csv"
    rows = ["review,sentiment"] + [f"text number {i} was fine,{labels[i % len(labels)]}" for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    use_data(tiny_config, data, task="binary")  # data.task: auto would make three labels a multiclass task
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, expected)


@pytest.mark.parametrize(
    ("n_positive", "expected"),
    [
        (50, "the test split has no positive example (20 rows); the rows are split in file order"),
        (80, "the training split has no negative example (80 rows); the rows are split in file order"),
    ],
    ids=["test", "training"],
)
def test_data_split_leaves_class_absent(cli, previous, tiny_config, tmp_path, n_positive, expected) -> None:
    data = tmp_path / "sorted.csv"
    rows = ["review,sentiment"] + [f"a great film {i},positive" for i in range(n_positive)]
    rows += [f"an awful film {i},negative" for i in range(100 - n_positive)]
    data.write_text("\n".join(rows) + "\n")
    use_data(tiny_config, data, shuffle=False, val_size=0)  # unshuffled: the last 20 rows are the test split
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, expected)


def test_data_stratified_split_impossible(cli, previous, tiny_config, tmp_path) -> None:
    data = tmp_path / "rare.csv"
    rows = ["review,sentiment", *(f"a great film {i},positive" for i in range(60)), "an awful film,negative"]
    data.write_text("\n".join(rows) + "\n")
    use_data(tiny_config, data)  # a single negative row cannot be in both training and test
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(result, "stratified test split: only 1 negative row(s) among 61", "use more data")


def test_data_not_utf8(cli, previous, tiny_config, tmp_path) -> None:
    data = tmp_path / "latin1.csv"
    data.write_bytes("review,sentiment\na great film,positive\nun caf\xe9 awful,negative\n".encode("latin-1"))
    use_data(tiny_config, data)
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(
        result, "latin1.csv: not UTF-8 text (line 3, byte 45: b'\\xe9')", "re-save the file as UTF-8"
    )


# --- Kaggle ---


class FakeKaggle:
    """Just enough of the Kaggle API for kagglehub.dataset_download: GetDataset and DownloadDataset."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.mode = "ok"  # ok | missing | cut
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                fake.requests.append(self.path)

            def _send(self, status: int, body: bytes, content_type: str, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fake.mode == "missing":
                    self._send(404, b'{"code": 404, "message": "Not found"}', "application/json")
                elif self.path.endswith("/GetDataset"):
                    self._send(200, json.dumps({"currentVersionNumber": 3}).encode(), "application/json")
                elif fake.mode == "cut":  # promise the whole file, send half of it, hang up
                    self._send(200, fake.body[: len(fake.body) // 2], "text/csv", length=len(fake.body))
                    self.close_connection = True
                else:
                    self._send(200, fake.body, "text/csv")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_kaggle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reviews_csv: Path) -> Iterator[FakeKaggle]:
    from kagglesdk import kaggle_env

    fake = FakeKaggle(reviews_csv.read_bytes())
    # kagglesdk's LOCALHOST environment, redirected to the fake server; no real credentials are read
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, fake.url)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-credentials"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLEHUB_VERBOSITY", "error")
    yield fake
    fake.close()


def use_kaggle(config: Path) -> Path:
    data = {"path": None, "kaggle_handle": "someone/movies", "kaggle_file": "reviews.csv"}
    return edit_config(config, data=data)


def test_kaggle_handle_that_does_not_exist(cli, previous, tiny_config, fake_kaggle) -> None:
    fake_kaggle.mode = "missing"
    use_kaggle(tiny_config)
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(
        result,
        "Kaggle dataset 'someone/movies' (file 'reviews.csv') does not exist",
        "check data.kaggle_handle",
        one_line=False,
    )
    assert any(r.endswith("/GetDataset") for r in fake_kaggle.requests)


def test_kaggle_download_cut_short_is_never_used(cli, previous, tiny_config, fake_kaggle, tmp_path) -> None:
    import os

    use_kaggle(tiny_config)
    cache = Path(os.environ["KAGGLEHUB_CACHE"]) / "datasets" / "someone" / "movies"
    fake_kaggle.mode = "cut"
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(
        result,
        "cannot download Kaggle dataset 'someone/movies' (the download was cut short)",
        "--set data.path=FILE",
        one_line=False,
    )
    partial = cache / "versions" / "3" / "reviews.csv"
    assert not (cache / ".complete").exists()  # kagglehub marks only finished downloads
    assert not partial.exists() or partial.stat().st_size < len(fake_kaggle.body)

    # Kaggle unreachable now: the offline fallback must not pick up the partial file either
    fake_kaggle.close()
    result = train_unchanged(cli, previous, tiny_config)
    assert_bad_input(
        result,
        "cannot download Kaggle dataset 'someone/movies'",
        "not in the kagglehub cache",
        one_line=False,
    )


def test_kaggle_download_after_a_cut_gets_the_whole_file(cli, tiny_config, fake_kaggle, tmp_path) -> None:
    import os

    use_kaggle(tiny_config)
    fake_kaggle.mode = "cut"
    assert cli(["train", "--config", tiny_config, "--quiet"]).exit_code == 2
    fake_kaggle.mode = "ok"
    result = cli(["train", "--config", tiny_config, "--quiet", "--output", tmp_path / "model"])
    assert result.exit_code == 0, result.stderr
    cache = Path(os.environ["KAGGLEHUB_CACHE"]) / "datasets" / "someone" / "movies"
    assert (cache / "versions" / "3" / "reviews.csv").read_bytes() == fake_kaggle.body
    assert (cache / ".complete" / "3" / "reviews.csv.complete").exists()
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["data"]["source"].endswith("versions/3/reviews.csv")


# --- round four: unusual and broken data files (issue 18, the data group) ----------------------------

COLUMNS = ["review", "sentiment"]


def reviews(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic reviews, positive and negative alternating (as ``write_reviews`` writes them)."""
    rng = random.Random(seed)
    labels = ["positive" if i % 2 == 0 else "negative" for i in range(n)]
    return pd.DataFrame({"review": [make_review(rng, s == "positive") for s in labels], "sentiment": labels})


def read_both(path: Path | str, tmp_path: Path, **settings) -> list[tuple[list[str], list[str]]]:
    """(texts, label names) of the kept rows, as training reads them in memory and out of core."""
    config = DataConfig(path=str(path), **settings)
    columns = [config.text_column, config.label_column]
    data, names = labelled_from_frame(read_table(path, columns), config, str(path))
    in_memory = (data.texts, [names[i] for i in data.labels])
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    store, streamed, streamed_names = _read_labelled(Path(path), config, work)
    texts = [text for chunk in store.chunks() for text in chunk]
    store.close()
    return [in_memory, (texts, [streamed_names[i] for i in streamed.labels])]


def train_ok(cli, config: Path, tmp_path: Path, *args: str):
    result = cli(["train", "--config", config, "--quiet", "--output", tmp_path / "model", *args])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result


# --- valid data: read as written ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".csv.gz"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(tmp_path: Path, encoding: str, suffix: str) -> None:
    """Excel's "Unicode text" is UTF-16 with a byte-order mark; it was refused as 'not UTF-8'."""
    frame = reviews()
    frame.loc[0, "review"] = 'Très "bien", 好看 😀\nsecond line'
    if suffix == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in frame.to_dict("records"))
    else:
        text = frame.to_csv(sep="\t" if suffix == ".tsv" else ",", index=False)
    raw = text.encode("utf-16") if encoding == "utf-16" else text.encode(encoding)
    if encoding == "utf-16-be":
        raw = b"\xfe\xff" + raw
    elif encoding == "utf-32":
        assert raw.startswith(b"\xff\xfe\x00\x00")
    path = tmp_path / f"data{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    for texts, labels in read_both(path, tmp_path):
        assert texts == frame["review"].tolist()
        assert labels == frame["sentiment"].tolist()


def test_a_utf16_file_trains(cli, tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "excel.tsv"
    data.write_bytes(reviews(400).to_csv(sep="\t", index=False).encode("utf-16"))
    edit_config(tiny_config, data={"path": str(data)})
    train_ok(cli, tiny_config, tmp_path)


def test_a_json_file_that_is_one_array_of_objects(tmp_path: Path) -> None:
    """`json.dump(list_of_dicts)` writes one array, not JSON lines: it was read as one row of 40 columns."""
    frame = reviews()
    for suffix in (".json", ".json.gz"):
        path = tmp_path / f"array{suffix}"
        text = json.dumps(frame.to_dict("records"), indent=2)
        path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
        assert guess_data_settings(path).text_column == "review"
        for texts, labels in read_both(path, tmp_path):
            assert texts == frame["review"].tolist() and labels == frame["sentiment"].tolist()
        assert len(pd.concat(c for _, c in read_chunks(path, COLUMNS, rows=7))) == len(frame)
    bad = tmp_path / "numbers.json"
    bad.write_text("[1, 2, 3]")
    with pytest.raises(DataError, match="a JSON array must hold objects"):
        read_table(bad)


def test_labels_written_as_whole_floats_are_the_integers(tmp_path: Path) -> None:
    """pandas writes a float label column as 1.0 / 0.0: the same labels as 1 / 0 in JSON or Parquet (the
    guess could not tell the positive one, and a Parquet test file's 1.0 was 'unknown')."""
    frame = reviews()
    frame["sentiment"] = (frame["sentiment"] == "positive").astype(float)
    path = tmp_path / "floats.csv"
    frame.to_csv(path, index=False)
    assert "1.0" in path.read_text()
    guess = guess_data_settings(path)
    assert guess.positive_label == "1"
    want = ["1" if v else "0" for v in frame["sentiment"]]
    for _, labels in read_both(path, tmp_path, positive_label=guess.positive_label):
        assert labels == want
    assert DataConfig(positive_label="1.0").positive_label == "1"
    assert DataConfig(positive_label=" yes ").positive_label == "yes"


def test_test_file_labels_that_differ_only_in_case_take_the_known_spelling(
    cli, tiny_config: Path, tmp_path: Path
) -> None:
    """A test file (data.test_path, eval --data) whose labels are the training labels in other letter case,
    or booleans written True in a CSV and true in JSON: read as the known labels, with a warning."""
    test = tmp_path / "upper.csv"
    frame = reviews(100)
    frame.assign(sentiment=frame["sentiment"].str.upper()).to_csv(test, index=False)
    edit_config(tiny_config, data={"test_path": str(test)})
    result = train_ok(cli, tiny_config, tmp_path)
    assert "read label(s) 'NEGATIVE' as 'negative', 'POSITIVE' as 'positive'" in result.stderr
    evaluated = cli(["eval", "--model", tmp_path / "model", "--data", test, "--json"])
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["n"] == 100

    booleans = tmp_path / "bool.csv"
    train = reviews(400)
    train.assign(sentiment=train["sentiment"] == "positive").to_csv(booleans, index=False)
    assert "True" in booleans.read_text()
    as_json = tmp_path / "bool.jsonl"
    as_json.write_text(
        "".join(json.dumps({"review": t, "sentiment": s == "positive"}) + "\n" for t, s in frame.values)
    )
    result = cli(["train", "--data", booleans, "-o", tmp_path / "bool-model", "--quiet", *SMALL])
    assert result.exit_code == 0, result.stderr
    evaluated = cli(["eval", "--model", tmp_path / "bool-model", "--data", as_json, "--json"])
    assert evaluated.exit_code == 0, evaluated.stderr


SMALL = ["--set", "word2vec.vector_size=8", "--set", "word2vec.epochs=2", "--set", "training.epochs=2"]
SMALL += ["--set", "training.refit=false", "--set", "text.ngrams=1"]


def test_a_positive_label_in_other_letter_case_names_the_files_label(tmp_path: Path) -> None:
    """--positive-label positive for a file of Positive / Negative: the file's Positive (no case is merged:
    'Positive' and 'positive' in one file stay two labels, with the training warning)."""
    path = tmp_path / "capitals.csv"
    frame = reviews()
    frame.assign(sentiment=frame["sentiment"].str.capitalize()).to_csv(path, index=False)
    for _, labels in read_both(path, tmp_path, positive_label="positive"):
        assert labels == frame["sentiment"].str.capitalize().tolist()
    config = DataConfig(path=str(path), positive_label="positive")
    _, names = labelled_from_frame(read_table(path, COLUMNS), config, str(path))
    assert names == ["Negative", "Positive"]


def test_parquet_binary_and_list_columns(tmp_path: Path) -> None:
    """A Parquet text column of UTF-8 bytes is text; a list<string> label column is a set of labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = reviews()
    texts = frame["review"].tolist()
    path = tmp_path / "binary.parquet"
    pq.write_table(
        pa.table({"review": pa.array([t.encode() for t in texts]), "sentiment": frame["sentiment"]}), path
    )
    for read, _ in read_both(path, tmp_path):
        assert read == texts
    sets = tmp_path / "sets.parquet"
    labels = [["acting", "music"] if i % 2 else ["plot"] for i in range(len(texts))]
    pq.write_table(pa.table({"review": texts, "sentiment": pa.array(labels)}), sets)
    config = DataConfig(path=str(sets))
    data, names = labelled_from_frame(read_table(sets, COLUMNS), config, str(sets))
    assert names == ["acting", "music", "plot"]
    assert data.labels[:2].tolist() == [[0, 0, 1], [1, 1, 0]]


@pytest.mark.parametrize("streaming", [False, True])
def test_group_column_that_is_the_text_column(
    cli, tiny_config: Path, tmp_path: Path, streaming: bool
) -> None:
    """data.group_column = data.text_column keeps repeated texts on one side: it was `unexpected ValueError:
    cannot reindex on an axis with duplicate labels` (exit 1)."""
    edit_config(tiny_config, data={"group_column": "review", "streaming": streaming})
    train_ok(cli, tiny_config, tmp_path)


def test_blank_group_cells_are_rows_without_a_group(tmp_path: Path) -> None:
    """A blank group (JSON "" or "  ") is no group, like a missing one: each such row is a group of its own
    (all blank rows were one group)."""
    frame = reviews(40)
    path = tmp_path / "groups.jsonl"
    rows = [
        {"review": t, "sentiment": s, "movie": "" if i % 2 else f"m{i % 6}"}
        for i, (t, s) in enumerate(frame.values)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = DataConfig(path=str(path), group_column="movie")
    data, _ = labelled_from_frame(read_table(path, [*COLUMNS, "movie"]), config, str(path))
    assert len(set(data.groups.tolist())) == 3 + 20


def test_emoji_only_texts_say_which_setting_keeps_them(cli, tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "emoji.csv"
    frame = reviews(400)
    frame["review"] = np.where(frame["sentiment"] == "positive", "😀 👍 🎉", "😡 👎 💩")
    frame.to_csv(data, index=False)
    edit_config(tiny_config, data={"path": str(data)})
    result = cli(["train", "--config", tiny_config, "--quiet"])
    assert_bad_input(result, "every training text is empty after tokenisation", "--set text.split=whitespace")
    train_ok(cli, tiny_config, tmp_path, "--set", "text.split=whitespace")


# --- broken data: exit 2, one line --------------------------------------------------------------------


def _struct_cells(tmp_path: Path, kind: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = reviews(400)
    texts, labels = frame["review"].tolist(), frame["sentiment"].tolist()
    if kind == "jsonl-object":
        path = tmp_path / "data.jsonl"
        path.write_text(
            "".join(
                json.dumps({"review": {"t": t}, "sentiment": s}) + "\n"
                for t, s in zip(texts, labels, strict=True)
            )
        )
        return path
    if kind == "jsonl-list":
        path = tmp_path / "data.jsonl"
        path.write_text(
            "".join(
                json.dumps({"review": [t], "sentiment": s}) + "\n" for t, s in zip(texts, labels, strict=True)
            )
        )
        return path
    column = {
        "parquet-struct": pa.array([{"a": t, "b": 1} for t in texts]),
        "parquet-list": pa.array([[t, t] for t in texts]),
        "parquet-map": pa.array([[("k", t)] for t in texts], pa.map_(pa.string(), pa.string())),
    }[kind]
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"review": column, "sentiment": labels}), path)
    return path


@pytest.mark.parametrize(
    "kind", ["jsonl-object", "jsonl-list", "parquet-struct", "parquet-list", "parquet-map"]
)
def test_a_text_column_of_objects_or_lists_is_refused(
    cli, tiny_config: Path, tmp_path: Path, kind: str
) -> None:
    """Such cells were trained on as the strings "{'a': ..., 'b': 1}" (exit 0); in memory and out of core,
    and eval --data and predict --file, refuse them."""
    path = _struct_cells(tmp_path, kind)
    what = "objects" if kind.endswith(("object", "struct")) else "lists"
    edit_config(tiny_config, data={"path": str(path)})
    for streaming in ("false", "true"):
        result = cli(["train", "--config", tiny_config, "--quiet", "--set", f"data.streaming={streaming}"])
        assert_bad_input(result, path.name, f"column 'review' holds {what}, not text", "--text-column")
    result = cli(["train", "--data", path, "--quiet", "-o", tmp_path / "m"])
    assert_bad_input(result, f"column 'review' holds {what}, not text")


def test_eval_and_predict_refuse_a_text_column_of_objects(cli, trained_model: Path, tmp_path: Path) -> None:
    path = _struct_cells(tmp_path, "parquet-struct")
    assert_bad_input(cli(["eval", "--model", trained_model, "--data", path]), "holds objects, not text")
    assert_bad_input(cli(["predict", "--model", trained_model, "--file", path]), "holds objects, not text")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"review": "a fine film", "sentiment": {"v": "positive"}}) + "\n" for _ in range(9)
        )
    )
    assert_bad_input(cli(["eval", "--model", trained_model, "--data", labels]), "holds objects, not labels")


def test_pandas_default_to_json_is_named(cli, tmp_path: Path) -> None:
    """DataFrame.to_json() writes one object of columns: read as JSON lines it is one row of dicts, which
    the guess showed as a label of 20,000 characters."""
    path = tmp_path / "frame.json"
    reviews(400).to_json(path)
    result = cli(["train", "--data", path, "--quiet", "-o", tmp_path / "m"])
    message = assert_bad_input(result, "holds objects, not labels", "to_json(orient='records', lines=True)")
    assert len(message) < 400


def test_parquet_bytes_that_are_not_utf8(cli, tiny_config: Path, tmp_path: Path) -> None:
    """Was `unexpected UnicodeDecodeError` (exit 1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = reviews(400)
    path = tmp_path / "latin1.parquet"
    texts = [("café " + t).encode("latin-1") for t in frame["review"]]
    pq.write_table(pa.table({"review": pa.array(texts, pa.binary()), "sentiment": frame["sentiment"]}), path)
    edit_config(tiny_config, data={"path": str(path)})
    for streaming in ("false", "true"):
        result = cli(["train", "--config", tiny_config, "--quiet", "--set", f"data.streaming={streaming}"])
        assert_bad_input(result, "latin1.parquet: column 'review' holds bytes that are not UTF-8 text")


def test_a_damaged_parquet_page_with_a_checksum_is_an_error(tmp_path: Path) -> None:
    """Parquet has no checksum of its own; where the writer added page checksums, a flipped byte is an error
    (without them it is a silently changed text: docs/reliability.md)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = reviews()
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame), buffer, write_page_checksum=True, compression="none")
    raw = bytearray(buffer.getvalue())
    raw[raw.find(frame["review"][3].encode()) + 2] ^= 0x20
    path = tmp_path / "flipped.parquet"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"flipped\.parquet: cannot parse as parquet: .*checksum"):
        read_table(path, COLUMNS)
    with pytest.raises(DataError, match="checksum"):
        list(read_chunks(path, COLUMNS, rows=7))


def test_utf16_without_a_byte_order_mark_is_named(cli, tmp_path: Path) -> None:
    """It decodes as UTF-8 with a NUL between letters: the guess said "cannot tell which of ' n e g ...'"."""
    path = tmp_path / "no-bom.csv"
    path.write_bytes(reviews(400).to_csv(index=False).encode("utf-16-le"))
    result = cli(["train", "--data", path, "--quiet", "-o", tmp_path / "m"])
    assert_bad_input(
        result, "no-bom.csv: holds NUL bytes, so it is not UTF-8 text (UTF-16 without a byte-order mark"
    )


def test_messages_about_columns_stay_short(cli, tmp_path: Path, trained_model: Path) -> None:
    """A file of 3,000 columns: the message listed them all (20,000 characters)."""
    path = tmp_path / "wide.csv"
    pd.DataFrame({f"c{i}": ["1", "2"] for i in range(3000)}).to_csv(path, index=False)
    for command in (
        ["train", "--data", path, "--quiet", "-o", tmp_path / "m"],
        ["eval", "--model", trained_model, "--data", path],
        ["predict", "--model", trained_model, "--file", path],
    ):
        message = assert_bad_input(cli(command), "c0, c1")
        assert "(3000 columns)" in message and len(message) < 300


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "review\n" + "a fine film\n" * 20,
            "the file has a single column (review); labelled data needs a text column and a label column",
        ),
        (
            "review,sentiment\n" + "a fine film,\n" * 20,
            "column 'sentiment' holds no labels (every cell is empty)",
        ),
    ],
    ids=["one-column", "empty-label-column"],
)
def test_guessing_columns_of_a_file_that_lacks_one(cli, tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert_bad_input(cli(["train", "--data", path, "--quiet", "-o", tmp_path / "m"]), expected)


def test_shards_whose_columns_differ(cli, tmp_path: Path) -> None:
    """--data DIR whose files name the text column differently: the guess picked one file's column and the
    error blamed the other file; now the files' columns are named."""
    folder = tmp_path / "shards"
    folder.mkdir()
    frame = reviews(400)
    frame.iloc[:200].to_csv(folder / "a.csv", index=False)
    frame.iloc[200:].rename(columns={"review": "text"}).to_csv(folder / "b.csv", index=False)
    result = cli(["train", "--data", folder, "--quiet", "-o", tmp_path / "m"])
    assert_bad_input(
        result,
        "shards: the files' columns differ: a.csv has review, sentiment; b.csv has text, sentiment; "
        "give every file the same text and label columns",
    )
    result = cli(["train", "--data", folder, "--quiet", "-o", tmp_path / "m", "--text-column", "review"])
    assert_bad_input(result, "b.csv: column(s) review not found; the file has: text, sentiment")


@pytest.mark.parametrize("rows", [4, 5, 8])
def test_a_split_too_small_for_every_class(cli, tmp_path: Path, rows: int) -> None:
    """scikit-learn's "The test_size = 1 should be greater or equal to the number of classes = 2" is said in
    the run's own words."""
    path = tmp_path / "tiny.csv"
    reviews(rows).to_csv(path, index=False)
    result = cli(["train", "--data", path, "--quiet", "-o", tmp_path / "m"])
    message = assert_bad_input(result, "cannot make a stratified", "fewer than the 2 classes; use more data")
    assert "test_size" not in message


# --- unreadable files: permissions (as root, without the capability that overrides them) ---------------


def _unprivileged() -> list[str] | None:
    """A command prefix that runs without permission overrides: none needed unless root; capsh as root."""
    if os.geteuid() != 0:
        return []
    capsh = shutil.which("capsh")
    if capsh is None:
        return None
    return [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", '"$0" "$@"']


def test_unreadable_files_and_folders(tmp_path: Path) -> None:
    """A file or a folder of shards that cannot be read: exit 2 naming it, from train and from config
    validate (validate said 'valid'; a folder was `unexpected PermissionError`, exit 1)."""
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without capsh: permissions cannot be taken away")
    data = write_reviews(tmp_path / "reviews.csv")
    locked_file = tmp_path / "locked.csv"
    shutil.copy(data, locked_file)
    locked_dir = tmp_path / "locked"
    locked_dir.mkdir()
    shutil.copy(data, locked_dir / "a.csv")
    env = {
        **os.environ,
        "SENTIMENT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
    locked_file.chmod(0)
    locked_dir.chmod(0)
    try:
        for command, target in (
            (["config", "validate", "default"], locked_file),
            (["config", "validate", "default"], locked_dir / "a.csv"),
            (["train", "--config", "default", "--quiet", "-o", str(tmp_path / "m")], locked_dir),
        ):
            run = subprocess.run(
                [*prefix, sys.executable, "-m", "sentiment", *command, "--set", f"data.path={target}"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            lines = run.stderr.strip().splitlines()
            assert run.returncode == 2, (command, run.stderr)
            assert len(lines) == 1 and f"{target}: cannot read it (Permission denied)" in lines[0], run.stderr
    finally:
        locked_file.chmod(0o644)
        locked_dir.chmod(0o755)


# --- config validate refuses what train refuses before reading data ----------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            ["data.test_size=0.6", "data.val_size=0.4"],
            "data.test_size + data.val_size = 0.6 + 0.4 leaves no rows for training",
        ),
        (["data.labels=[negative, negative, positive]"], "data.labels lists 'negative' more than once"),
        (
            ["data.task=binary", "data.labels=[a, b, c]"],
            "data.labels has 3 labels, but data.task binary takes two",
        ),
        (
            ["data.labels=[negative, good]"],
            "data.positive_label 'positive' is not one of data.labels (negative, good)",
        ),
        (
            ["data.task=multiclass", "data.labels=[positive]"],
            "data.labels lists 1 label(s); a classifier needs two or more",
        ),
        (
            ["data.path=null", "data.kaggle_handle=not-a-handle"],
            "data.kaggle_handle 'not-a-handle' is not a Kaggle dataset handle",
        ),
        (["data.text_column=''"], "'data.text_column' = '': String should have at least 1 character"),
    ],
    ids=[
        "split-sum",
        "labels-twice",
        "binary-three-labels",
        "positive-not-a-label",
        "one-label",
        "kaggle-handle",
        "empty-column-name",
    ],
)
def test_validate_refuses_what_train_refuses_before_reading(
    cli, tiny_config: Path, tmp_path: Path, monkeypatch, settings: list[str], expected: str
) -> None:
    """Each was refused only after the data was read (a split error, or a silently ignored data.labels),
    or, for the Kaggle handle, by train and not by validate."""
    import sentiment.data

    def no_reading(*args, **kwargs):
        raise AssertionError("train read the data before refusing the config")

    monkeypatch.setattr(sentiment.data, "_read_file", no_reading)
    monkeypatch.setattr(sentiment.data, "_shard_chunks", no_reading)
    sets = [a for s in settings for a in ("--set", s)]
    trained = cli(["train", "--config", tiny_config, "--quiet", *sets])
    validated = cli(["config", "validate", tiny_config, *sets])
    assert assert_bad_input(trained, expected) == assert_bad_input(validated, expected)
