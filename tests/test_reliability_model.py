"""Broken model directories and hostile prediction input through the real CLI (predict, eval).

A broken model directory: exit 2, one `error:` line, nothing changed on disk, no code from it run.
Odd texts (unknown words only, 1 MB, control characters, binary junk): a prediction each, never a crash.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from _reliability import assert_bad_input, snapshot
from sentiment.predictor import Predictor


@pytest.fixture
def model(tmp_path: Path, trained_model: Path) -> Path:
    """A copy of the trained model that a test may break."""
    return Path(shutil.copytree(trained_model, tmp_path / "model"))


def predict_unchanged(cli, model: Path, *args: str):
    before = snapshot(model)
    result = cli(["predict", "--model", model, *args])
    assert snapshot(model) == before
    return result


def test_model_dir_missing(cli, tmp_path: Path) -> None:
    result = cli(["predict", "--model", tmp_path / "nope", "a great film"])
    assert_bad_input(result, "model directory not found", "nope", "pass --model DIR")


def test_model_dir_none_trained_yet(cli) -> None:
    result = cli(["predict", "a great film"])
    assert_bad_input(result, "no model given and no trained model recorded", "run `sentiment train`")


@pytest.mark.parametrize("name", ["meta.json", "vocab.json", "model.safetensors"])
def test_model_dir_file_missing(cli, model: Path, name: str) -> None:
    (model / name).unlink()
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, f"missing {name}; it is not a complete model directory (retrain it)")


def test_model_dir_test_rows_missing_for_eval(cli, model: Path) -> None:
    (model / "test.jsonl.gz").unlink()
    before = snapshot(model)
    result = cli(["eval", "--model", model])
    assert snapshot(model) == before
    assert_bad_input(result, "missing test.jsonl.gz; pass --data FILE to evaluate on a file")


def test_model_dir_meta_corrupted(cli, model: Path) -> None:
    (model / "meta.json").write_text('{"format": "sentiment-model", "format_ver')
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "meta.json: corrupted (JSONDecodeError); retrain or re-download the model")


def test_model_dir_weights_truncated(cli, model: Path) -> None:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "model.safetensors: weights are truncated or corrupted", "re-download")


def test_model_dir_weights_corrupted(cli, model: Path) -> None:
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\xff" * 32  # garbage in the JSON header
    weights.write_bytes(bytes(data))
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "model.safetensors: weights are truncated or corrupted")


def test_model_dir_weights_do_not_match_vocab(cli, model: Path) -> None:
    vocab = json.loads((model / "vocab.json").read_text())
    (model / "vocab.json").write_text(json.dumps([*vocab, "extra"]))
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "embeddings do not match vocab.json")


@pytest.mark.parametrize("version", [1, 99], ids=["before-the-restructure", "newer"])
def test_model_dir_saved_by_incompatible_version(cli, model: Path, version: int) -> None:
    meta = json.loads((model / "meta.json").read_text())
    meta["format_version"] = version
    (model / "meta.json").write_text(json.dumps(meta))
    result = predict_unchanged(cli, model, "a great film")
    expected = f"model format version {version} is not supported by this sentiment (expects 2)"
    assert_bad_input(result, expected, "retrain it")


def test_model_config_saved_by_incompatible_version(cli, model: Path, reviews_csv: Path) -> None:
    config = yaml.safe_load((model / "config.yaml").read_text())
    config["version"] = 99
    config["training"]["schedule_from_the_future"] = True
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    before = snapshot(model)
    result = cli(["eval", "--model", model, "--data", reviews_csv])
    assert snapshot(model) == before
    assert_bad_input(result, "config.yaml", "saved by an incompatible sentiment version: retrain it")


class _RunsCode:
    """Unpickling this calls Path.touch(sentinel): proof that code ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_model_dir_weights_are_a_pickle_carrying_code(cli, model: Path, tmp_path: Path, kind: str) -> None:
    sentinel = tmp_path / "code-ran"
    weights = model / "model.safetensors"
    if kind == "pickle":
        weights.write_bytes(pickle.dumps({"embeddings": _RunsCode(sentinel)}, protocol=4))
    else:
        import torch

        torch.save({"embeddings": _RunsCode(sentinel)}, weights)
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "model.safetensors: weights are a pickle (refused: loading it could run code)")
    assert not sentinel.exists()
    assert cli(["eval", "--model", model]).exit_code == 2
    assert not sentinel.exists()


def test_model_dir_problem_traceback_with_debug(cli, tmp_path: Path) -> None:
    from sentiment.errors import ModelDirError

    result = cli(["predict", "--model", tmp_path / "nope", "a great film", "--debug"])
    assert isinstance(result.exception, ModelDirError)


# --- prediction input ---


def predict_json(cli, model: Path, *args: str, input: str | None = None) -> list[dict]:
    result = cli(["predict", "--model", model, "--json", *args], input=input)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_predict_only_unknown_words_is_flagged(cli, trained_model: Path) -> None:
    rows = predict_json(cli, trained_model, "zxqv blorptastic quuxly", "a wonderful film")
    assert rows[0]["no_known_words"] is True and rows[0]["known_words"] == 0
    assert rows[0]["label"] in ("negative", "positive") and 0.0 <= rows[0]["probability"] <= 1.0
    assert rows[1]["no_known_words"] is False
    result = cli(["predict", "--model", trained_model, "zxqv blorptastic quuxly"])
    assert result.exit_code == 0
    assert "no word of the text is in the model's vocabulary" in result.stdout + result.stderr


def test_predict_very_long_text(cli, trained_model: Path, tmp_path: Path) -> None:
    text = ("the film was wonderful and brilliant " * 30_000)[:1_000_000]  # 1 MB on one line
    path = tmp_path / "long.txt"
    path.write_text(text + "\n")
    rows = predict_json(cli, trained_model, "--file", path)
    assert len(rows) == 1 and rows[0]["label"] == "positive" and rows[0]["known_words"] > 100_000
    assert predict_json(cli, trained_model, text)[0]["label"] == "positive"  # and as an argument


def test_predict_control_characters(cli, trained_model: Path) -> None:
    texts = ["\x00\x01\x07great\x1b[31m film\x7f\u200b loved", "\x01\x02\x03\x04", "\ud800 lone surrogate"]
    rows = predict_json(cli, trained_model, *texts)
    assert len(rows) == 3
    assert rows[0]["known_words"] >= 1
    assert rows[1]["no_known_words"] is True


def test_predict_undecodable_argument_bytes_in_a_real_process(trained_model: Path) -> None:
    """Bytes that are not UTF-8 on the command line reach Python as lone surrogates: printing must work."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "sentiment", "predict", "--model", str(trained_model), "--json"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict UTF-8 stdout, as in a UTF-8 desktop locale
    done = subprocess.run([*args, b"\xff\xfejunk great"], capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    row = json.loads(done.stdout.decode("utf-8", errors="replace").splitlines()[0])
    assert row["label"] in ("negative", "positive") and row["known_words"] == 1


def test_predict_binary_junk(cli, trained_model: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(20_000) + b"\nawful film\n" + bytes(range(256)) * 4)
    rows = predict_json(cli, trained_model, "--file", junk)
    assert rows and all(r["label"] in ("negative", "positive") for r in rows)
    assert any(r["text"] == "awful film" for r in rows)
    rows = predict_json(cli, trained_model, "--file", "-", input=junk.read_bytes().decode("latin-1"))
    assert rows


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_predict_empty_text(cli, trained_model: Path, text: str) -> None:
    result = cli(["predict", "--model", trained_model, "a good film", text])
    assert_bad_input(result, "an empty text cannot be classified")


def test_predict_empty_stdin(cli, trained_model: Path) -> None:
    result = cli(["predict", "--model", trained_model, "--file", "-"], input="")
    assert_bad_input(result, "no text to classify in standard input")
    result = cli(["predict", "--model", trained_model, "--file", "-"], input="\n  \n")
    assert_bad_input(result, "no text to classify in standard input")


def test_predict_empty_file(cli, trained_model: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    result = cli(["predict", "--model", trained_model, "--file", tmp_path / "empty.txt"])
    assert_bad_input(result, "no text to classify in", "empty.txt")


def test_predictor_load_never_unpickles(model: Path, tmp_path: Path) -> None:
    """The library path too: Predictor.load refuses a pickle with ModelDirError."""
    from sentiment.errors import ModelDirError

    sentinel = tmp_path / "code-ran"
    (model / "model.safetensors").write_bytes(pickle.dumps(_RunsCode(sentinel)))
    with pytest.raises(ModelDirError, match="pickle"):
        Predictor.load(model)
    assert not sentinel.exists()


def test_model_files_follow_the_umask(trained_model: Path) -> None:
    """Every file of a model directory gets the same permissions (safetensors' own writer made 0600 files)."""
    modes = {p.name: p.stat().st_mode & 0o777 for p in trained_model.iterdir()}
    assert modes["model.safetensors"] == modes["config.yaml"], modes
