"""The model directory, both ways: what ``train`` saves and what ``eval``, ``predict`` and a server load.

Layout (plain data only: loading a model directory runs no code from it)::

    config.yaml         the resolved config of the run (reproduce it with `sentiment train --config`)
    meta.json           ModelMeta: format version, labels, threshold, text encoder, features, MLP, run facts
    vocab.json          the vocabulary, in row order of the embedding matrix
    model.safetensors   token vectors, optional token weights / feature scaling (sentiment.features), MLP
                        layers (sentiment.mlp)
    metrics.json        test and validation metrics;  history.csv: one row per epoch
    test.jsonl.gz       the test rows (text, label) so `sentiment eval` can re-evaluate
    *.png               plots of the run
    report.html         one self-contained page: metrics, plots, history, config, confident mistakes

It is written atomically (``sentiment.atomic``). Reading it needs NumPy and safetensors only.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import __version__
from sentiment.errors import ModelDirError
from sentiment.features import Features
from sentiment.mlp import MLPWeights
from sentiment.text import TextEncoder

if TYPE_CHECKING:
    from sentiment.config import Config

FORMAT = "sentiment-model"
FORMAT_VERSION = 2  # 2: typed meta record, explicit n-gram boundary, tensors named by sentiment.mlp
REQUIRED_FILES = ("meta.json", "vocab.json", "model.safetensors")
TEST_ROWS = "test.jsonl.gz"
_RETRAIN = "retrain it with this version of sentiment"


@dataclass
class ModelMeta:
    """meta.json: how to rebuild the predictor, and facts about the run that made the model."""

    labels: list[str]  # class names by class index; binary: [negative, positive]
    threshold: float  # binary: positive at or above it
    text: dict[str, Any]  # TextEncoder.to_dict()
    features: dict[str, Any]  # Features.to_dict()
    activation: str
    input_dim: int
    hidden_dims: list[int]
    fine_tuned_embeddings: bool
    text_column: str
    data: dict[str, Any] = field(default_factory=dict)  # source, test_source, rows per split
    device: str = "cpu"
    best_epoch: int = 0
    stopped_early: bool = False
    refit: dict[str, int] | None = None  # epochs and rows of the refit on training + validation
    word2vec_cache_hit: bool = False
    prepared_cache_hit: bool = False
    task: str | None = None  # binary, multiclass or multilabel (None: from the number of outputs)
    thresholds: list[float] | None = None  # multilabel: one per label
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    sentiment_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def n_layers(self) -> int:
        return len(self.hidden_dims) + 1

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMeta:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass
class SavedModel:
    """Everything prediction needs, as plain arrays and settings."""

    meta: ModelMeta
    encoder: TextEncoder
    features: Features
    mlp: MLPWeights


@dataclass
class RunReport:
    """What a training run leaves beside the model: metrics, history, test rows and plots."""

    metrics: dict[str, Any]  # {"test": ..., "validation": ..., "threshold": ...}
    history: list[dict[str, Any]]
    test_labels: np.ndarray  # class index of each test row
    test_probs: np.ndarray
    write_test_rows: Any  # callable(path): writes TEST_ROWS (from the data or the prepared-data cache)


# -- writing --


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def save(target: Path, config: Config, model: SavedModel, report: RunReport) -> Path:
    """Write the model directory under a temporary name, then move it into place in one step."""
    from safetensors.numpy import save as safetensors_bytes

    from sentiment import html_report
    from sentiment.atomic import atomic_dir
    from sentiment.paths import remember_last_model
    from sentiment.plots import write_plots
    from sentiment.predictor import Predictor

    tensors = {**model.features.to_tensors(), **model.mlp.to_tensors()}
    with atomic_dir(target) as staging:
        (staging / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        (staging / "meta.json").write_text(_json(asdict(model.meta)), encoding="utf-8")
        (staging / "vocab.json").write_text(_json(model.encoder.vocab), encoding="utf-8")
        # Bytes written by us, not safetensors.save_file, whose file is private (0600) whatever the umask.
        arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        (staging / "model.safetensors").write_bytes(safetensors_bytes(arrays, metadata={"format": FORMAT}))
        (staging / "metrics.json").write_text(_json(report.metrics), encoding="utf-8")
        (staging / "history.csv").write_text(_history_csv(report.history), encoding="utf-8")
        report.write_test_rows(staging / TEST_ROWS)
        write_plots(
            staging,
            report.history,
            report.test_labels,
            report.test_probs,
            report.metrics["test"],
            best_epoch=model.meta.best_epoch,
            labels=tuple(model.meta.labels),
        )
        # last: it reads the files above back, as `sentiment report` does for any model directory
        html_report.write(staging, Predictor(model, staging), shown_as=target, test_probs=report.test_probs)
    remember_last_model(target)
    return target


def _history_csv(history: list[dict[str, Any]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(history[0]) if history else ["epoch"])
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def write_test_rows(path: Path, texts: list[str], labels: np.ndarray, names: list[str]) -> None:
    """The test split as JSON lines (text, label name): any text (newlines, quotes, megabytes) round-trips."""
    encoder = json.JSONEncoder(ensure_ascii=False).encode
    if labels.ndim == 2:  # label sets: a JSON list of names per row
        label_json = [encoder([names[i] for i in np.flatnonzero(row)]) for row in labels]
    else:
        by_index = [encoder(name) for name in names]
        label_json = [by_index[int(y)] for y in labels]
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        fh.writelines(
            f'{{"text": {encoder(text)}, "label": {label}}}\n'
            for text, label in zip(texts, label_json, strict=True)
        )


# -- reading --


class _Snapshot:
    """The files of one model directory as they were when opened: all opened at once through a descriptor of
    the directory, so a ``train`` that swaps a new model into place (and deletes the old one) meanwhile can
    neither mix its files into ours nor take ours away."""

    def __init__(self, model_dir: Path) -> None:
        self.files: dict[str, int] = {}
        folder = os.open(model_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            for name in REQUIRED_FILES:
                self.files[name] = os.open(name, os.O_RDONLY, dir_fd=folder)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(folder)

    def read(self, name: str) -> bytes:
        with os.fdopen(os.dup(self.files[name]), "rb") as fh:
            return fh.read()

    def close(self) -> None:
        for fd in self.files.values():
            os.close(fd)
        self.files = {}


def _read_json(data: bytes, path: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # recursion: absurd nesting
        reason = exc.__class__.__name__
        raise ModelDirError(f"{path}: corrupted ({reason}); retrain or re-download the model") from None


def _check_present(model_dir: Path) -> None:
    if not model_dir.exists():
        raise ModelDirError(
            f"model directory not found: {model_dir}; pass --model DIR of a trained model "
            "or run `sentiment train`"
        )
    if not model_dir.is_dir():
        raise ModelDirError(f"not a model directory: {model_dir}; pass --model DIR of a trained model")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelDirError(
            f"{model_dir}: missing {', '.join(missing)}; it is not a complete model directory (retrain it)"
        )


def _meta(data: bytes, model_dir: Path) -> ModelMeta:
    raw = _read_json(data, model_dir / "meta.json")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelDirError(f"{model_dir}/meta.json: not a sentiment model (format field missing)")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(
            f"{model_dir}: model format version {version} is not supported by this sentiment "
            f"(expects {FORMAT_VERSION}); {_RETRAIN}"
        )
    try:
        meta = ModelMeta.from_dict(raw)
    except TypeError as exc:
        raise ModelDirError(f"{model_dir}/meta.json: incomplete ({exc}); {_RETRAIN}") from None
    for threshold in [meta.threshold, *(meta.thresholds or [])]:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ModelDirError(
                f"{model_dir}/meta.json: threshold {threshold!r} is not in [0, 1]; {_RETRAIN}"
            )
    if meta.thresholds is not None and len(meta.thresholds) != len(meta.labels):
        raise ModelDirError(
            f"{model_dir}/meta.json: {len(meta.thresholds)} thresholds for {len(meta.labels)} labels"
        )
    return meta


def _vocab(data: bytes, model_dir: Path) -> list[str]:
    vocab = _read_json(data, model_dir / "vocab.json")
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise ModelDirError(f"{model_dir}/vocab.json: expected a JSON list of words")
    return vocab


def _tensors(data: bytes, model_dir: Path) -> dict[str, np.ndarray]:
    """model.safetensors' arrays; a pickle, a truncated or corrupted file or non-finite weights are refused,
    running nothing."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes

    path = model_dir / "model.safetensors"
    try:
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        # A pickle (protocol 2+ starts with 0x80) or torch.save's zip of pickles: never unpickled here.
        is_pickle = data[:1] == b"\x80" or data[:4] == b"PK\x03\x04"
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        if is_pickle:
            what = f"{path}: weights are a pickle (refused: loading it could run code)"
        else:
            what = f"{path}: weights are truncated or corrupted ({reason})"
        raise ModelDirError(f"{what}; retrain or re-download the model") from None
    bad = [name for name, a in tensors.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
    if bad:
        raise ModelDirError(
            f"{path}: non-finite values (NaN or infinity) in {', '.join(sorted(bad))}; {_RETRAIN}"
        )
    return tensors


def load_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """Read model.safetensors (checked as ``load`` checks it)."""
    return _tensors((model_dir / "model.safetensors").read_bytes(), model_dir)


def load(model_dir: str | Path) -> SavedModel:
    """The model in ``model_dir``, checked for consistency; any problem is a one-line ModelDirError."""
    model_dir = Path(model_dir)
    _check_present(model_dir)
    try:
        snapshot = _Snapshot(model_dir)
    except FileNotFoundError:  # a new model was swapped in as we opened the files: open the new one
        snapshot = _Snapshot(model_dir)
    try:
        meta = _meta(snapshot.read("meta.json"), model_dir)
        vocab = _vocab(snapshot.read("vocab.json"), model_dir)
        tensors = _tensors(snapshot.read("model.safetensors"), model_dir)
    finally:
        snapshot.close()
    try:
        model = SavedModel(
            meta,
            TextEncoder.from_dict(meta.text, vocab),
            Features.from_saved(meta.features, tensors),
            MLPWeights.from_tensors(
                tensors, meta.activation, meta.n_layers, "softmax" if meta.task == "multiclass" else "sigmoid"
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(f"{model_dir}: inconsistent model files ({exc}); {_RETRAIN}") from None
    _check(model_dir, model)
    return model


def _check(model_dir: Path, model: SavedModel) -> None:
    where = model_dir / "model.safetensors"
    vectors = model.features.vectors_
    if vectors.ndim != 2 or vectors.shape[0] != len(model.encoder.vocab):
        raise ModelDirError(f"{where}: embeddings do not match vocab.json ({len(model.encoder.vocab)} words)")
    if model.mlp.input_dim != model.features.dim:
        raise ModelDirError(
            f"{where}: MLP input size {model.mlp.input_dim} does not match features of size "
            f"{model.features.dim}"
        )
    wide = model.mlp.wide
    if wide is not None and (wide.ndim != 2 or wide.shape != (len(model.encoder.vocab), model.mlp.outputs)):
        raise ModelDirError(f"{where}: wide weights {wide.shape} do not match vocab.json and the outputs")
    binary = model.meta.task == "binary" or (model.meta.task is None and model.mlp.outputs == 1)
    if model.mlp.outputs != (1 if binary else len(model.meta.labels)):
        raise ModelDirError(f"{where}: {model.mlp.outputs} outputs for labels {model.meta.labels}")


def load_config(model_dir: Path) -> Config:
    """The resolved config the model was trained with."""
    from sentiment.config import config_from_dict, read_yaml
    from sentiment.errors import ConfigError

    path = model_dir / "config.yaml"
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: missing config.yaml; it is not a complete model directory")
    try:
        return config_from_dict(read_yaml(path), source=str(path))
    except ConfigError as exc:
        raise ModelDirError(
            f"{exc}; the model was saved by an incompatible sentiment version: retrain it"
        ) from None


def read_test_rows(model_dir: Path) -> tuple[list[str], list[Any]]:
    """The saved test split: texts and label names (label sets: a list of names each)."""
    path = model_dir / TEST_ROWS
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: missing {TEST_ROWS}; pass --data FILE to evaluate on a file")
    texts, labels = [], []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(row["label"])
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: unreadable ({type(exc).__name__}); pass --data FILE instead") from None
    return texts, labels
