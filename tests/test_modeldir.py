"""The model directory both ways: what training saved loads back into the objects prediction uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sentiment import modeldir
from sentiment.errors import ModelDirError
from sentiment.features import Features
from sentiment.mlp import MLPWeights, layer_names
from sentiment.text import TextEncoder


def test_saved_model_loads_as_typed_objects(trained_model: Path) -> None:
    saved = modeldir.load(trained_model)
    meta = json.loads((trained_model / "meta.json").read_text())
    assert saved.meta == modeldir.ModelMeta.from_dict(meta)
    assert saved.meta.labels == ["negative", "positive"] and saved.meta.text_column == "review"
    assert isinstance(saved.encoder, TextEncoder) and saved.encoder.n_words == len(saved.encoder.vocab)
    assert isinstance(saved.features, Features) and saved.features.mean_ is not None  # normalize: true
    assert isinstance(saved.mlp, MLPWeights) and len(saved.mlp.layers) == saved.meta.n_layers == 2
    tensors = modeldir.load_tensors(trained_model)
    assert set(tensors) == {"embeddings", "feature_mean", "feature_std", *layer_names(0), *layer_names(1)}
    assert modeldir.load_config(trained_model).data.text_column == "review"
    texts, labels = modeldir.read_test_rows(trained_model)
    assert len(texts) == len(labels) == meta["data"]["rows"]["test"] and set(labels) <= set(meta["labels"])


def test_test_rows_round_trip_any_text(tmp_path: Path) -> None:
    texts = ['quotes " and \\ and\nnewlines', "ünïcödé ✓", ""]
    modeldir.write_test_rows(tmp_path / modeldir.TEST_ROWS, texts, np.array([1, 0, 1]), ["neg", "pos"])
    assert modeldir.read_test_rows(tmp_path) == (texts, ["pos", "neg", "pos"])


def test_import_sentiment_offers_the_entry_points_without_torch() -> None:
    probe = (
        "import sys, sentiment\n"
        "heavy = [m for m in ('torch', 'gensim', 'sklearn', 'pandas') if m in sys.modules]\n"
        "from sentiment.pipeline import train\n"
        "from sentiment.predictor import Predictor\n"
        "assert sentiment.train is train and sentiment.load_predictor == Predictor.load, 'wrong names'\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _copy(trained_model: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(trained_model, tmp_path / "model"))


@pytest.mark.parametrize("threshold", [1.5, -0.1, "0.5", None])
def test_a_threshold_outside_0_1_is_damage(trained_model: Path, tmp_path: Path, threshold: object) -> None:
    model = _copy(trained_model, tmp_path)
    meta = json.loads((model / "meta.json").read_text())
    meta["threshold"] = threshold
    (model / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelDirError, match=r"threshold .* is not in \[0, 1\]"):
        modeldir.load(model)


def test_non_finite_weights_are_refused(trained_model: Path, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    model = _copy(trained_model, tmp_path)
    tensors = modeldir.load_tensors(model)
    tensors["mlp.0.bias"] = tensors["mlp.0.bias"].copy()
    tensors["mlp.0.bias"][0] = np.nan
    save_file(tensors, str(model / "model.safetensors"))
    with pytest.raises(ModelDirError, match=r"non-finite values \(NaN or infinity\) in mlp.0.bias"):
        modeldir.load(model)


def test_a_model_swapped_in_while_loading_is_not_mixed_in(trained_model: Path, tmp_path: Path) -> None:
    """predict while train replaces the same model directory: the files read are all the old model's."""
    from sentiment.atomic import atomic_dir

    model = _copy(trained_model, tmp_path)
    old_vocab = json.loads((model / "vocab.json").read_text())
    snapshot = modeldir._Snapshot(model)
    try:
        meta = snapshot.read("meta.json")
        with atomic_dir(model) as staging:  # a training run commits a different model now
            (staging / "meta.json").write_text("{}")
            (staging / "vocab.json").write_text('["other"]')
        assert json.loads(snapshot.read("vocab.json")) == old_vocab  # still the directory we opened
        assert json.loads(meta)["format"] == modeldir.FORMAT
    finally:
        snapshot.close()
    assert json.loads((model / "vocab.json").read_text()) == ["other"]


def test_eval_while_a_new_model_is_swapped_in_scores_one_model_on_its_own_rows(
    trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eval` while `train` replaces the model directory between reading the model and its test rows:
    the old model was scored on the new model's test rows; now both are read again, of one model."""
    import gzip
    import shutil

    from sentiment.atomic import atomic_dir
    from sentiment.evaluate import evaluate_model

    model = _copy(trained_model, tmp_path)
    new = tmp_path / "new"  # another run's model: another threshold, other (fewer) test rows
    shutil.copytree(model, new)
    meta = json.loads((new / "meta.json").read_text())
    (new / "meta.json").write_text(json.dumps({**meta, "threshold": 0.25}))
    rows = gzip.decompress((new / "test.jsonl.gz").read_bytes()).splitlines(keepends=True)
    (new / "test.jsonl.gz").write_bytes(gzip.compress(b"".join(rows[:10])))
    read_rows = modeldir.read_test_rows
    swaps = []

    def swapped_first(model_dir: Path):
        if not swaps:
            swaps.append(model_dir)
            with atomic_dir(model) as staging:
                shutil.copytree(new, staging, dirs_exist_ok=True)
        return read_rows(model_dir)

    monkeypatch.setattr(modeldir, "read_test_rows", swapped_first)
    metrics = evaluate_model(model)
    assert swaps
    assert (metrics["n"], metrics["threshold"]) == (10, 0.25)  # the new model on its rows (was 10, 0.5)


def test_meta_nested_past_the_stack(trained_model: Path, tmp_path: Path) -> None:
    model = _copy(trained_model, tmp_path)
    (model / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelDirError, match=r"meta.json: corrupted \(RecursionError\)"):
        modeldir.load(model)
