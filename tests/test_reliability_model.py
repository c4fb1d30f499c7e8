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


# --- damaged or hostile model files: every field, array and row checked before use ---


def edit_meta(model: Path, dotted: str, value: object) -> None:
    """Set meta.json's field ``dotted`` (``text.tokenizer.split``) to ``value``."""
    meta = json.loads((model / "meta.json").read_text())
    *parents, last = dotted.split(".")
    target = meta
    for key in parents:
        target = target[key]
    target[last] = value
    (model / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("labels", [], "labels = []: must be a list of two or more distinct label names"),
        ("labels", ["only"], "labels = ['only']: must be a list of two or more"),
        ("labels", [0, 1], "labels = [0, 1]: must be a list"),
        ("labels", ["pos", "pos"], "labels = ['pos', 'pos']: must be a list of two or more distinct"),
        ("labels", None, "labels = None: must be"),
        ("thresholds", 5, "thresholds = 5: must be null or a list, one per label"),
        ("input_dim", -16, "input_dim = -16: must be an integer >= 1"),
        ("hidden_dims", [-8], "hidden_dims = [-8]: must be a list of layer sizes from 1 to 65,536"),
        ("text_column", 5, "text_column = 5: must be a string"),
        ("best_epoch", "ten", "best_epoch = 'ten': must be an integer >= 0"),
        ("from_the_future", 1, "unknown field 'from_the_future' (saved by a newer sentiment?)"),
        ("text.ngrams", 6, "text.ngrams = 6: must be an integer from 1 to 5"),
        ("text.ngrams", -3, "text.ngrams = -3: must be an integer from 1 to 5"),
        ("text.n_words", -1, "text.n_words = -1: must be an integer from 0 to 47 (the vocabulary)"),
        ("text.n_words", 48, "text.n_words = 48: must be an integer from 0 to 47"),
        ("text.phrases", {"a": 1}, "text.phrases = {'a': 1}: must be a list of strings"),
        ("text.tokenizer.split", "evil", "text.tokenizer.split = 'evil': must be 'regex' or 'whitespace'"),
        ("text.tokenizer.min_token_length", "x", "text.tokenizer.min_token_length = 'x': must be an integer"),
        ("text.tokenizer.lowercase", "yes", "text.tokenizer.lowercase = 'yes': must be true or false"),
        ("text.tokenizer.stem", True, "text.tokenizer.stem: unknown setting"),
        (
            "features.pooling",
            "evil",
            "features.pooling = 'evil': must be one of mean, tfidf, sif, nb, mean_max",
        ),
        ("features.sif_a", "x", "features.sif_a = 'x': must be a finite number > 0"),
    ],
    ids=[
        "labels-empty",
        "labels-one",
        "labels-numbers",
        "labels-twice",
        "labels-null",
        "thresholds-number",
        "input-dim-negative",
        "hidden-dims-negative",
        "text-column-number",
        "best-epoch-string",
        "unknown-field",
        "ngrams-6",
        "ngrams-negative",
        "n-words-negative",
        "n-words-past-vocab",
        "phrases-object",
        "split-unknown",
        "min-token-length-string",
        "lowercase-string",
        "tokenizer-unknown-setting",
        "pooling-unknown",
        "sif-a-string",
    ],
)
def test_meta_field_of_the_wrong_type_or_range(
    cli, model: Path, field: str, value: object, expected: str
) -> None:
    """Each of these was accepted, then predicted (exit 0: unknown settings ignored, a negative n_words making
    every word unknown, two identical labels) or crashed (exit 1: an IndexError on one label, a TypeError)."""
    edit_meta(model, field, value)
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "meta.json: " + expected, "; retrain or re-download the model")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "features.normalize",
            False,
            "feature_mean: saved, but unused with pooling = mean, normalize = false",
        ),
        ("features.pooling", "tfidf", "word_weights: missing (pooling = tfidf, normalize = true needs it)"),
    ],
    ids=["scaling-not-used", "token-weights-missing"],
)
def test_meta_and_weights_disagree(cli, model: Path, field: str, value: object, expected: str) -> None:
    """Was a prediction without the scaling the model was trained with, or a plain mean for tf-idf
    (exit 0)."""
    edit_meta(model, field, value)
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "model.safetensors: " + expected, "; retrain or re-download the model")


def test_every_meta_field_is_checked(model: Path) -> None:
    """A value of the wrong type in any field of meta.json is refused, not only in those prediction reads."""
    from sentiment.errors import ModelDirError
    from sentiment.modeldir import ModelMeta, load

    original = (model / "meta.json").read_text()
    for name in ModelMeta.__dataclass_fields__:
        (model / "meta.json").write_text(original)
        dict_typed = name in ("text", "features", "data", "refit")
        edit_meta(model, name, "x" if dict_typed else {"x": 1})
        with pytest.raises(ModelDirError, match=r"meta.json|format version"):
            load(model)


@pytest.mark.parametrize("ngrams", [10**18, 1e300])
def test_a_huge_ngram_size_is_refused_at_once(cli, model: Path, ngrams: float) -> None:
    """It was used unchecked: a prediction joined n-grams up to that size (a hang, killed after 60 s)."""
    edit_meta(model, "text.ngrams", ngrams)
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "text.ngrams =", "must be an integer from 1 to 5")


def test_a_word_listed_twice_in_the_vocabulary(cli, model: Path) -> None:
    vocab = json.loads((model / "vocab.json").read_text())
    (model / "vocab.json").write_text(json.dumps([vocab[0]] * len(vocab)))
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, f"vocab.json: '{vocab[0]}' is listed more than once; retrain or re-download")


def edit_tensors(model: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(model / "model.safetensors")
    change(tensors)
    save_file(tensors, model / "model.safetensors")


def edit_header(model: Path, change) -> None:
    """Rewrite model.safetensors' JSON header (the data stays as it is)."""
    data = (model / "model.safetensors").read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    change(header)
    raw = json.dumps(header).encode()
    (model / "model.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + length :])


def _bf16(model: Path) -> None:
    edit_tensors(model, lambda t: t.update(embeddings=t["embeddings"].astype("float16")))
    edit_header(model, lambda h: h["embeddings"].update(dtype="BF16"))  # same size: bfloat16's bytes


def _set(name: str, make):
    return lambda model: edit_tensors(model, lambda t: t.update({name: make(t)}))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_bf16, "'embeddings' holds 'BF16' values, not float16, float32 or float64"),
        (_set("embeddings", lambda t: t["embeddings"].astype("int32")), "'embeddings' holds 'I32' values"),
        (_set("mlp.0.weight", lambda t: t["mlp.0.weight"] > 0), "'mlp.0.weight' holds 'BOOL' values"),
        (_set("embeddings", lambda t: t["embeddings"][:, :0]), "embeddings has shape [47, 0], but meta.json"),
        (
            _set("mlp.0.bias", lambda t: t["mlp.0.bias"][:3]),
            "mlp.0.bias has shape [3], but meta.json and vocab",
        ),
        (_set("mlp.0.bias", lambda t: t["mlp.0.bias"][:, None]), "mlp.0.bias has shape [8, 1], but"),
        (_set("mlp.1.weight", lambda t: t["mlp.1.weight"][:, :7]), "mlp.1.weight has shape [1, 7], but"),
        (_set("mlp.1.weight", lambda t: t["mlp.1.weight"][..., None]), "mlp.1.weight has shape [1, 8, 1]"),
        (_set("feature_mean", lambda t: t["feature_mean"][:3]), "feature_mean has shape [3], but"),
        (_set("feature_std", lambda t: 0 * t["feature_std"]), "feature_std: zero or negative values"),
        (_set("word_weights", lambda t: t["feature_std"][:1].repeat(47)), "word_weights: saved, but unused"),
        (_set("mlp.7.weight", lambda t: t["mlp.0.weight"]), "unexpected tensor 'mlp.7.weight'"),
    ],
    ids=[
        "bfloat16",
        "int32",
        "bool",
        "no-vector-columns",
        "bias-too-short",
        "bias-2d",
        "layer-input-mismatch",
        "weight-3d",
        "scaling-wrong-length",
        "std-zero",
        "weights-unused-by-the-pooling",
        "extra-layer",
    ],
)
def test_weights_of_the_wrong_type_or_shape(cli, model: Path, damage, expected: str) -> None:
    """Each was accepted (exit 0, a prediction from NaNs or from weights meta.json does not describe) or
    failed inside NumPy (exit 1: a broadcasting error, KeyError 'BF16')."""
    damage(model)
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "model.safetensors: " + expected, "; retrain or re-download the model")


def test_weights_padded_to_a_huge_file_are_refused_unread(cli, model: Path) -> None:
    """A file far longer than its tensors (sparse: no disk used) is refused from its size, before it is read
    (it was read whole: a MemoryError for 20 GB under a memory limit)."""
    with open(model / "model.safetensors", "r+b") as fh:
        fh.truncate(256 * 2**20)
    result = predict_unchanged(cli, model, "a great film")
    assert_bad_input(result, "weights are truncated or corrupted (the tensors take", "the file holds 268,")


def edit_test_rows(model: Path, lines: list[str]) -> None:
    import gzip

    with gzip.open(model / "test.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "unreadable (RecursionError)"),
        (
            '{"text": "fine", "label": {"a": 1}}',
            "line 3: the label {'a': 1} is neither a label name nor a list",
        ),
        ('{"text": "fine", "label": []}', "line 3: the label [] is neither a label name nor a list of them"),
        (
            '{"text": "fine", "label": ["positive"]}',
            "line 3: the label ['positive']: single labels and label",
        ),
        ('{"text": {"x": "y"}, "label": "positive"}', "line 3: the text is {'x': 'y'}, not a string"),
        ('{"text": null, "label": "positive"}', "line 3: the text is None, not a string"),
    ],
    ids=[
        "nested-past-the-stack",
        "label-object",
        "label-empty-list",
        "mixed-label-kinds",
        "text-object",
        "null",
    ],
)
def test_damaged_test_rows(cli, model: Path, line: str, expected: str) -> None:
    """eval on the saved test rows: was a RecursionError, TypeError or IndexError (exit 1), or a text scored
    as the string "None"."""
    good = [json.dumps({"text": "a fine film", "label": "positive"})] * 2
    edit_test_rows(model, [*good, line, *good])
    before = snapshot(model)
    result = cli(["eval", "--model", model])
    assert snapshot(model) == before
    assert_bad_input(result, "test.jsonl.gz: " + expected, "pass --data FILE instead")


@pytest.mark.parametrize("empty", ["no-rows", "zero-bytes"])
def test_no_test_rows(cli, model: Path, empty: str) -> None:
    """Was scikit-learn's 'Found empty input array' (exit 1)."""
    if empty == "no-rows":
        edit_test_rows(model, [])
    else:
        (model / "test.jsonl.gz").write_bytes(b"")
    result = cli(["eval", "--model", model])
    assert_bad_input(result, "test.jsonl.gz: holds no test rows; pass --data FILE instead")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("metrics.json", b"[" * 100_000 + b"]" * 100_000, "metrics.json: corrupted (RecursionError)"),
        ("metrics.json", bytes(range(128, 256)), "metrics.json: corrupted (UnicodeDecodeError)"),
        (
            "metrics.json",
            b'{"test": 5, "threshold": 0.5}',
            "metrics.json: test = 5: must be an object of metrics",
        ),
        (
            "metrics.json",
            b'{"threshold": "abc"}',
            "metrics.json: threshold = 'abc': must be a number or a list",
        ),
        (
            "metrics.json",
            b'{"test": {"accuracy": 0.5, "confusion_matrix": [[1, 2], [3]]}}',
            "metrics.json: test.confusion_matrix = [[1, 2], [3]]: must be 2 rows of 2 counts",
        ),
        ("history.csv", b"epoch,loss\n1,\xff\xfe\n", "history.csv: unreadable (UnicodeDecodeError)"),
    ],
    ids=[
        "metrics-nested-past-the-stack",
        "metrics-not-utf8",
        "metrics-wrong-type",
        "threshold",
        "matrix",
        "history",
    ],
)
def test_report_on_damaged_metrics_or_history(
    cli, model: Path, name: str, content: bytes, expected: str
) -> None:
    """`sentiment report` reads metrics.json and history.csv: was RecursionError, UnicodeDecodeError or
    TypeError (exit 1)."""
    (model / name).write_bytes(content)
    result = cli(["report", "--model", model])
    assert_bad_input(result, expected, "; retrain or re-download the model")


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


@pytest.mark.parametrize(
    "name, edit, expected",
    [
        (
            "meta.json",
            lambda t: t.replace('"threshold": ', '"threshold": 0.9, "threshold": ', 1),
            "key 'threshold' given twice",
        ),
        (
            "meta.json",
            lambda t: (
                t.replace('"task": "binary"', '"task": "binary", "labels": ["a", "b", "c"]')
                .replace('"labels": [', '"_x": [', 1)
                .replace('"_x"', '"labels"')
            ),
            "key 'labels' given twice",
        ),
    ],
    ids=["threshold-twice", "labels-twice"],
)
def test_json_with_a_key_given_twice_is_damage(
    cli, trained_model: Path, tmp_path: Path, name, edit, expected
) -> None:
    """(json.loads kept the last value silently: a prediction with a threshold no one chose)"""
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    (model / name).write_text(edit((model / name).read_text()))
    assert_bad_input(cli(["predict", "--model", model, "a film"]), f"{model / name}: corrupted ({expected}")


def test_a_binary_model_with_three_labels_is_damage(cli, trained_model: Path, tmp_path: Path) -> None:
    """(was a prediction, exit 0: the one output read as the second of three labels)"""
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    meta = json.loads((model / "meta.json").read_text())
    meta["labels"] = ["a", "b", "c"]
    (model / "meta.json").write_text(json.dumps(meta))
    assert_bad_input(cli(["predict", "--model", model, "a film"]), "a binary model has exactly two")


def test_serve_refuses_a_damaged_metrics_json(trained_model: Path, tmp_path: Path) -> None:
    """(was `unexpected JSONDecodeError / AttributeError` at the start, exit 1)"""
    from sentiment.errors import ModelDirError
    from sentiment.serve import model_info

    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    for text in ("[1, 2", "[1, 2]"):
        (model / "metrics.json").write_text(text)
        with pytest.raises(ModelDirError, match=r"metrics\.json"):
            model_info(Predictor.load(model))


def test_a_model_file_that_is_a_fifo_is_damage_not_a_hang(cli, tmp_path: Path, trained_model: Path) -> None:
    """A FIFO in a model file's place: `report` read metrics.json and waited for a writer forever."""
    for name, command, expected in [
        ("metrics.json", ["report"], "metrics.json: not a regular file"),
        ("meta.json", ["serve", "--port", "0"], "missing meta.json"),
        ("vocab.json", ["predict", "a good film"], "missing vocab.json"),
    ]:
        model = tmp_path / name
        shutil.copytree(trained_model, model)
        (model / name).unlink()
        os.mkfifo(model / name)
        assert_bad_input(cli([*command[:1], "--model", model, *command[1:]]), expected)
