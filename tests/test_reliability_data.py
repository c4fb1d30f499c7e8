"""Bad data through the real CLI: exit 2 with one `error:` line, the previously saved model untouched.

The Kaggle cases point kagglehub at a fake Kaggle API on 127.0.0.1 (404 for an unknown dataset, a download
cut off half way) so they run offline.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from _reliability import assert_bad_input, edit_config, install_previous_model, snapshot
from conftest import write_reviews
from sentiment.paths import last_model_file


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
