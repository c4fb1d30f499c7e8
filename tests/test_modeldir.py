"""The model directory both ways: what training saved loads back into the objects prediction uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from sentiment import modeldir
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
