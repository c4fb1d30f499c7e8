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

import gzip
import json
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from reprlib import repr as _short
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import __version__
from sentiment.errors import DuplicateKeyError, ModelDirError, unique_keys
from sentiment.features import EMBEDDINGS, FEATURE_MEAN, FEATURE_STD, WORD_WEIGHTS, Features
from sentiment.mlp import ACTIVATIONS, MLPWeights, layer_names
from sentiment.text import TextEncoder
from sentiment.wide import WIDE

if TYPE_CHECKING:
    from sentiment.config import Config

FORMAT = "sentiment-model"
FORMAT_VERSION = 2  # 2: typed meta record, explicit n-gram boundary, tensors named by sentiment.mlp
REQUIRED_FILES = ("meta.json", "vocab.json", "model.safetensors")
TEST_ROWS = "test.jsonl.gz"
_RETRAIN = "retrain it with this version of sentiment"
_DAMAGED = "retrain or re-download the model"
TASKS = ("binary", "multiclass", "multilabel")
MAX_LAYER = 65_536  # widest hidden layer (config.MAX_LAYER: not imported, prediction needs no pydantic)
MAX_HEADER = 100_000_000  # bytes of a safetensors JSON header, safetensors' own limit
FLOAT_DTYPES = {"F16": 2, "F32": 4, "F64": 8}  # the safetensors dtypes a model may hold, and their sizes


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


# -- writing --


def json_text(data: Any) -> str:
    """The JSON files of a model directory: indented, UTF-8 as is, a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def save(
    target: Path, config: Config, model: SavedModel, beside: Callable[[Path], None] | None = None
) -> Path:
    """Write the model directory under a temporary name, then move it into place in one step. ``beside``
    writes the run's other files (``sentiment.run_report``) into the directory before it moves, so a reader
    never sees a model without them."""
    from safetensors.numpy import save as safetensors_bytes

    from sentiment.atomic import atomic_dir
    from sentiment.paths import remember_last_model

    tensors = {**model.features.to_tensors(), **model.mlp.to_tensors()}
    with atomic_dir(target) as staging:
        (staging / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        (staging / "meta.json").write_text(json_text(asdict(model.meta)), encoding="utf-8")
        (staging / "vocab.json").write_text(json_text(model.encoder.vocab), encoding="utf-8")
        # Bytes written by us, not safetensors.save_file, whose file is private (0600) whatever the umask.
        arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        (staging / "model.safetensors").write_bytes(safetensors_bytes(arrays, metadata={"format": FORMAT}))
        if beside is not None:
            beside(staging)
    remember_last_model(target)
    return target


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
                # O_NONBLOCK: opening a FIFO in a file's place would wait for a writer (no effect on files)
                self.files[name] = os.open(name, os.O_RDONLY | os.O_NONBLOCK, dir_fd=folder)
                if not stat.S_ISREG(os.fstat(self.files[name]).st_mode):
                    raise _damaged(model_dir / name, "not a regular file")
        except BaseException:
            self.close()
            raise
        finally:
            os.close(folder)

    def read(self, name: str) -> bytes:
        with os.fdopen(os.dup(self.files[name]), "rb") as fh:
            return fh.read()

    def read_at(self, name: str, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer at the end of the file)."""
        return os.pread(self.files[name], size, offset)

    def size(self, name: str) -> int:
        return os.fstat(self.files[name]).st_size

    def close(self) -> None:
        for fd in self.files.values():
            os.close(fd)
        self.files = {}


def _damaged(path: Path, problem: str) -> ModelDirError:
    return ModelDirError(f"{path}: {problem}; {_DAMAGED}")


def _read_json(data: bytes, path: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=unique_keys)
    except DuplicateKeyError as exc:
        raise _damaged(path, f"corrupted ({exc})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # recursion: absurd nesting
        # ValueError: JSONDecodeError, or an integer of more than 4,300 digits
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


def _is_int(value: Any, low: int = 0, high: float = float("inf")) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_labels(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(name, str) and name for name in value)
        and len(set(value)) == len(value)
    )


# meta.json's fields (but the format, its version and the thresholds, checked apart): what each must be
_META_FIELDS: dict[str, tuple[Any, str]] = {
    "labels": (_is_labels, "a list of two or more distinct label names"),
    "text": (lambda v: isinstance(v, dict), "an object (the text encoder's settings)"),
    "features": (lambda v: isinstance(v, dict), "an object (the feature settings)"),
    "activation": (lambda v: isinstance(v, str) and v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
    "input_dim": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "hidden_dims": (
        lambda v: isinstance(v, list) and all(_is_int(d, 1, MAX_LAYER) for d in v),
        f"a list of layer sizes from 1 to {MAX_LAYER:,}",
    ),
    "fine_tuned_embeddings": (lambda v: isinstance(v, bool), "true or false"),
    "text_column": (lambda v: isinstance(v, str), "a string"),
    "data": (lambda v: isinstance(v, dict), "an object"),
    "device": (lambda v: isinstance(v, str), "a string"),
    "best_epoch": (_is_int, "an integer >= 0"),
    "stopped_early": (lambda v: isinstance(v, bool), "true or false"),
    "refit": (lambda v: v is None or isinstance(v, dict), "null or an object"),
    "word2vec_cache_hit": (lambda v: isinstance(v, bool), "true or false"),
    "prepared_cache_hit": (lambda v: isinstance(v, bool), "true or false"),
    "task": (lambda v: v is None or v in TASKS, f"null or one of {', '.join(TASKS)}"),
    "sentiment_version": (lambda v: isinstance(v, str), "a string"),
    "created": (lambda v: isinstance(v, str), "a string"),
}


def _meta(data: bytes, model_dir: Path) -> ModelMeta:
    """meta.json, every field checked for type and range (a field this version does not know is refused:
    it could change what a prediction means)."""
    path = model_dir / "meta.json"
    raw = _read_json(data, path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelDirError(f"{model_dir}/meta.json: not a sentiment model (format field missing)")
    version = raw.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise ModelDirError(
            f"{model_dir}: model format version {_short(version)} is not supported by this sentiment "
            f"(expects {FORMAT_VERSION}); {_RETRAIN}"
        )
    fields = ModelMeta.__dataclass_fields__
    unknown = sorted(str(key) for key in raw if key not in fields)
    if unknown:
        raise _damaged(path, f"unknown field {unknown[0][:80]!r} (saved by a newer sentiment?)")
    required = [k for k, f in fields.items() if f.default is MISSING and f.default_factory is MISSING]
    missing = [key for key in required if key not in raw]
    if missing:
        raise ModelDirError(f"{path}: incomplete (no {', '.join(missing)}); {_RETRAIN}")
    for name, (ok, what) in _META_FIELDS.items():
        if name in raw and not ok(raw[name]):
            raise _damaged(path, f"{name} = {_short(raw[name])}: must be {what}")
    if raw.get("task") == "binary" and len(raw["labels"]) != 2:  # one output: two labels, no more
        raise _damaged(path, f"labels = {_short(raw['labels'])}: a binary model has exactly two")
    thresholds = raw.get("thresholds")
    if thresholds is not None and not isinstance(thresholds, list):
        raise _damaged(path, f"thresholds = {_short(thresholds)}: must be null or a list, one per label")
    for threshold in [raw["threshold"], *(thresholds or [])]:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ModelDirError(f"{path}: threshold {_short(threshold)} is not in [0, 1]; {_RETRAIN}")
    if thresholds is not None and len(thresholds) != len(raw["labels"]):
        raise ModelDirError(f"{path}: {len(thresholds)} thresholds for {len(raw['labels'])} labels")
    return ModelMeta.from_dict(raw)


def _vocab(data: bytes, model_dir: Path) -> list[str]:
    vocab = _read_json(data, model_dir / "vocab.json")
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise ModelDirError(f"{model_dir}/vocab.json: expected a JSON list of words")
    return vocab


def _encoder(meta: ModelMeta, vocab: list[str], model_dir: Path) -> TextEncoder:
    """meta.json's text settings over vocab.json, checked (``TextEncoder.from_dict``); a word listed twice is
    refused (which row of the embeddings it means would be a guess)."""
    try:
        encoder = TextEncoder.from_dict(meta.text, vocab)
    except (TypeError, ValueError) as exc:
        raise _damaged(model_dir / "meta.json", f"text.{exc}") from None
    if len(encoder.index) != len(vocab):  # the index is what prediction looks words up in: built once here
        seen: set[str] = set()
        twice = next(word for word in vocab if word in seen or seen.add(word))
        raise _damaged(model_dir / "vocab.json", f"{_short(twice)} is listed more than once")
    return encoder


def _header(read_at: Any, size: int, path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """model.safetensors' header, read and checked before its data is: {name: (dtype, shape)}. Every tensor
    must be float16, float32 or float64, its byte range inside the file and as long as its shape says, and the
    tensors together exactly as long as the file (a header declaring terabytes, or a file padded to many
    gigabytes, is refused before anything is read or allocated). ``read_at(size, offset)`` reads the file."""
    first = read_at(8, 0)
    length = int.from_bytes(first, "little") if len(first) == 8 else -1
    header, reason = None, f"{size} bytes" if length < 0 else f"a header of {length:,} bytes in {size:,}"
    if 2 <= length <= min(size - 8, MAX_HEADER):
        try:
            header = json.loads(read_at(length, 8).decode("utf-8"), object_pairs_hook=unique_keys)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = f"header: {exc if isinstance(exc, DuplicateKeyError) else type(exc).__name__}"
        else:
            reason = "the header is not a JSON object"
    if not isinstance(header, dict):
        # A pickle (protocol 2+ starts with 0x80) or torch.save's zip of pickles: never unpickled here.
        if first[:1] == b"\x80" or first[:4] == b"PK\x03\x04":
            raise _damaged(path, "weights are a pickle (refused: loading it could run code)")
        raise _damaged(path, f"weights are truncated or corrupted ({reason})")
    data_size = size - 8 - length
    out, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise _damaged(path, f"weights are truncated or corrupted (header entry {_short(name)})")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in FLOAT_DTYPES:
            raise _damaged(
                path, f"{_short(name)} holds {_short(dtype)} values, not float16, float32 or float64"
            )
        if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(n) for n in shape):
            raise _damaged(path, f"{_short(name)} has shape {_short(shape)}: not a list of up to 8 sizes")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(n) for n in offsets):
            raise _damaged(path, f"weights are truncated or corrupted (offsets of {_short(name)})")
        begin, end = offsets
        nbytes = FLOAT_DTYPES[dtype] * int(np.prod(shape, dtype=object))  # Python ints: no overflow
        if begin > end or end - begin != nbytes:
            reason = (
                f"{_short(name)} of shape {shape} is {nbytes:,} bytes, the header gives it {end - begin:,}"
            )
            raise _damaged(path, f"weights are truncated or corrupted ({reason})")
        if end > data_size:
            reason = f"{_short(name)} ends at byte {end:,} of {data_size:,}"
            raise _damaged(path, f"weights are truncated or corrupted ({reason})")
        out[name] = (dtype, tuple(shape))
        spans.append((begin, end))
    covered = sum(end - begin for begin, end in spans)
    if covered != data_size:
        raise _damaged(
            path,
            f"weights are truncated or corrupted (the tensors take {covered:,} bytes, the file holds "
            f"{data_size:,})",
        )
    return out


def _expected_shapes(meta: ModelMeta, n_words: int, path: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor a model with this meta.json and vocabulary can hold (the optional ones, token
    weights, feature scaling and the wide part, included)."""
    outputs = len(meta.labels)
    if meta.task == "binary" or (meta.task is None and outputs == 2):
        outputs = 1
    vector_size = meta.input_dim
    if meta.features.get("pooling") == "mean_max":  # the mean and the maximum side by side
        if meta.input_dim % 2:
            raise _damaged(
                path.with_name("meta.json"), f"input_dim = {meta.input_dim}: odd, with mean_max pooling"
            )
        vector_size //= 2
    shapes = {
        EMBEDDINGS: (n_words, vector_size),
        WORD_WEIGHTS: (n_words,),
        FEATURE_MEAN: (meta.input_dim,),
        FEATURE_STD: (meta.input_dim,),
        WIDE: (n_words, outputs),
    }
    for i, (inputs, units) in enumerate(pairwise([meta.input_dim, *meta.hidden_dims, outputs])):
        weight, bias = layer_names(i)
        shapes[weight], shapes[bias] = (units, inputs), (units,)
    return shapes


def _check_header(
    header: dict[str, tuple[str, tuple[int, ...]]], meta: ModelMeta, n_words: int, path: Path
) -> None:
    """Every tensor the header declares has the shape meta.json and vocab.json call for, and the required ones
    (embeddings, every layer) are there: checked before the data is read."""
    expected = _expected_shapes(meta, n_words, path)
    for name, (_, shape) in header.items():
        if name not in expected:
            raise _damaged(path, f"unexpected tensor {_short(name)} (not part of a model of this meta.json)")
        if name == EMBEDDINGS and (len(shape) != 2 or shape[0] != n_words):
            raise _damaged(path, f"embeddings do not match vocab.json ({n_words} words)")
        if shape != expected[name]:
            raise _damaged(
                path,
                f"{name} has shape {list(shape)}, but meta.json and vocab.json call for "
                f"{list(expected[name])}",
            )
    required = [EMBEDDINGS, *(name for i in range(meta.n_layers) for name in layer_names(i))]
    missing = [name for name in required if name not in header]
    if missing:
        raise _damaged(path, f"{', '.join(missing)} missing")


def _arrays(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file whose header ``_header`` passed; NaN or infinity is refused."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes

    try:
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise _damaged(path, f"weights are truncated or corrupted ({reason})") from None
    bad = [name for name, a in tensors.items() if not np.isfinite(a).all()]
    if bad:
        raise ModelDirError(
            f"{path}: non-finite values (NaN or infinity) in {', '.join(sorted(bad))}; {_RETRAIN}"
        )
    return tensors


def load_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """Read model.safetensors, checked as ``load`` checks it but against no meta.json: a pickle, a truncated
    or corrupted file, weights that are not floats or not finite are refused, running nothing."""
    path = model_dir / "model.safetensors"
    data = path.read_bytes()
    _header(lambda size, offset: data[offset : offset + size], len(data), path)
    return _arrays(data, path)


def load(model_dir: str | Path) -> SavedModel:
    """The model in ``model_dir``, checked for consistency; any problem is a one-line ModelDirError."""
    model_dir = Path(model_dir)
    _check_present(model_dir)
    try:
        snapshot = _Snapshot(model_dir)
    except FileNotFoundError:  # a new model was swapped in as we opened the files: open the new one
        snapshot = _Snapshot(model_dir)
    weights = model_dir / "model.safetensors"
    try:
        meta = _meta(snapshot.read("meta.json"), model_dir)
        vocab = _vocab(snapshot.read("vocab.json"), model_dir)
        encoder = _encoder(meta, vocab, model_dir)
        size = snapshot.size(weights.name)
        header = _header(lambda n, offset: snapshot.read_at(weights.name, n, offset), size, weights)
        _check_header(header, meta, len(vocab), weights)
        tensors = _arrays(snapshot.read(weights.name), weights)
    finally:
        snapshot.close()
    try:
        features = Features.from_saved(meta.features, tensors)
    except (TypeError, ValueError) as exc:
        tensor = str(exc).split(":")[0] in (EMBEDDINGS, WORD_WEIGHTS, FEATURE_MEAN, FEATURE_STD)
        where = weights if tensor else model_dir / "meta.json"
        raise _damaged(where, f"{exc}" if tensor else f"features.{exc}") from None
    head = "softmax" if meta.task == "multiclass" else "sigmoid"
    try:
        mlp = MLPWeights.from_tensors(tensors, meta.activation, meta.n_layers, head)
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(weights, f"inconsistent layers ({exc})") from None
    model = SavedModel(meta, encoder, features, mlp)
    _check(model_dir, model)
    return model


def _check(model_dir: Path, model: SavedModel) -> None:
    """What the header check already made sure of, checked on the loaded objects (cheap; a guard against the
    two drifting apart)."""
    where = model_dir / "model.safetensors"
    if model.mlp.input_dim != model.features.dim or model.features.dim != model.meta.input_dim:
        raise _damaged(
            where,
            f"MLP input size {model.mlp.input_dim} does not match features of size {model.features.dim}",
        )
    binary = model.meta.task == "binary" or (model.meta.task is None and model.mlp.outputs == 1)
    if model.mlp.outputs != (1 if binary else len(model.meta.labels)):
        raise _damaged(where, f"{model.mlp.outputs} outputs for labels {_short(model.meta.labels)}")


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
    """The saved test split: texts and label names (label sets: a list of names each). A row that is not
    {"text": string, "label": a name or a list of names}, single labels mixed with label sets, or a file with
    no row is a ModelDirError naming the line."""
    path = model_dir / TEST_ROWS
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: missing {TEST_ROWS}; pass --data FILE to evaluate on a file")
    texts: list[str] = []
    labels: list[Any] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                row = json.loads(line)
                problem = _test_row_problem(row, labels[0] if labels else None)
                if problem:
                    raise ModelDirError(f"{path}: line {number}: {problem}; pass --data FILE instead")
                texts.append(row["text"])
                labels.append(row["label"])
    except (
        OSError,
        EOFError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
        zlib.error,
        MemoryError,
    ) as exc:
        # ValueError: JSONDecodeError; RecursionError: a line nested past the stack; zlib: damaged data;
        # MemoryError: a line that decompresses to gigabytes (a gzip bomb) under a memory limit
        raise ModelDirError(f"{path}: unreadable ({type(exc).__name__}); pass --data FILE instead") from None
    if not texts:
        raise ModelDirError(f"{path}: holds no test rows; pass --data FILE instead")
    return texts, labels


def _test_row_problem(row: Any, first_label: Any) -> str | None:
    if not isinstance(row, dict) or row.keys() != {"text", "label"}:
        return 'not a {"text": ..., "label": ...} object'
    text, label = row["text"], row["label"]
    if not isinstance(text, str):
        return f"the text is {_short(text)}, not a string"
    one = isinstance(label, str) and label != ""
    many = isinstance(label, list) and label and all(isinstance(name, str) and name for name in label)
    if not (one or many):
        return f"the label {_short(label)} is neither a label name nor a list of them"
    if first_label is not None and isinstance(first_label, list) != bool(many):
        return f"the label {_short(label)}: single labels and label sets mixed"
    return None


def read_metrics(model_dir: Path, labels: list[str]) -> dict[str, Any]:
    """metrics.json as ``sentiment report`` shows it: the test and validation figures of a model with these
    labels, checked for the types and sizes the report reads (a number per metric, a confusion matrix of
    counts, one row per label)."""
    path = model_dir / "metrics.json"
    try:
        if path.exists() and not path.is_file():  # a FIFO would wait for a writer, a device never end
            raise _damaged(path, "not a regular file")
        data = path.read_bytes()
    except OSError as exc:
        what = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({type(exc).__name__})"
        raise ModelDirError(f"{path}: {what}; {_DAMAGED}") from None
    metrics = _read_json(data, path)
    problem = _metrics_problem(metrics, len(labels))
    if problem:
        raise _damaged(path, problem)
    return metrics


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _metrics_problem(metrics: Any, n_labels: int) -> str | None:
    if not isinstance(metrics, dict):
        return f"{_short(metrics)} is not an object of metrics"
    threshold = metrics.get("threshold")
    if not (
        threshold is None
        or _is_number(threshold)
        or (isinstance(threshold, list) and all(_is_number(t) for t in threshold))
    ):
        return f"threshold = {_short(threshold)}: must be a number or a list of numbers"
    for split in ("test", "validation"):
        figures = metrics.get(split)
        if figures is None:
            continue
        if not isinstance(figures, dict):
            return f"{split} = {_short(figures)}: must be an object of metrics"
        problem = _split_metrics_problem(figures, n_labels)
        if problem:
            return f"{split}.{problem}"
    return None


def _split_metrics_problem(figures: dict[str, Any], n_labels: int) -> str | None:
    from sentiment.metrics import METRIC_KEYS

    for key in (*METRIC_KEYS, "threshold"):
        if figures.get(key) is not None and not _is_number(figures[key]):
            if key == "threshold" and isinstance(figures[key], list):
                continue
            return f"{key} = {_short(figures[key])}: must be a number"
    if "n" in figures and not _is_int(figures["n"]):
        return f"n = {_short(figures['n'])}: must be a count"
    per_class = figures.get("per_class")
    if per_class is not None:
        rows_ok = (
            isinstance(per_class, dict)
            and len(per_class) == n_labels
            and all(
                isinstance(row, dict)
                and all(_is_number(row.get(k)) for k in ("precision", "recall", "f1"))
                and _is_int(row.get("support"))
                for row in per_class.values()
            )
        )
        if not rows_ok:
            return f"per_class = {_short(per_class)}: must hold precision, recall, f1 and support per label"
    cm = figures.get("confusion_matrix")
    if cm is None:
        return None
    if isinstance(cm, dict):
        if n_labels != 2 or cm.keys() != {"tn", "fp", "fn", "tp"} or not all(map(_is_int, cm.values())):
            return f"confusion_matrix = {_short(cm)}: must be the counts tn, fp, fn, tp of two labels"
    elif not (
        isinstance(cm, list)
        and len(cm) == n_labels
        and all(isinstance(row, list) and len(row) == n_labels and all(map(_is_int, row)) for row in cm)
    ):
        return f"confusion_matrix = {_short(cm)}: must be {n_labels} rows of {n_labels} counts"
    return None
