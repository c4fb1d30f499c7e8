"""The configuration schema: one typed model, loaded from YAML, overridable with ``KEY=VALUE`` pairs.

Every key has a default and a description; ``sentiment config show`` prints the resolved config and the
README's reference table is generated from this schema (``scripts/gen_config_docs.py``).
"""

from __future__ import annotations

import difflib
import re
import reprlib
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from sentiment.errors import ConfigError

# Bumped when a saved config can no longer be read by this code.
CONFIG_VERSION = 1


class _Section(BaseModel):
    # Every float setting is finite: inf or nan (YAML .inf, 1e400) is refused here, not met in the training.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    kaggle_handle: str | None = Field(
        None,
        description="Kaggle dataset handle (owner/slug or owner/slug/versions/N) downloaded with kagglehub.",
    )
    kaggle_file: str | None = Field(None, description="File inside the Kaggle dataset to read.")
    path: str | None = Field(
        None,
        description=(
            "Local data: a file (CSV, TSV, Parquet, JSON lines; .gz too), a directory of such files or a "
            "glob of them ('data/part-*.csv'), read in name order. Takes precedence over kaggle_handle."
        ),
    )
    test_path: str | None = Field(
        None,
        description=(
            "Explicit test data (same columns; a file, directory or glob); when set, no test split is carved "
            "from the data."
        ),
    )
    unlabeled_path: str | None = Field(
        None,
        description=(
            "Extra unlabelled text (a file, directory or glob) used only to train Word2Vec, never the "
            "classifier."
        ),
    )
    unlabeled_text_column: str | None = Field(
        None, description="Text column of unlabeled_path (default: text_column, or the file's only column)."
    )
    text_column: str = Field("review", min_length=1, description="Column holding the text.")
    label_column: str = Field("sentiment", min_length=1, description="Column holding the label.")
    positive_label: str = Field(
        "positive", description="Binary: label value of the positive class (e.g. positive or 1)."
    )
    task: Literal["auto", "binary", "multiclass", "multilabel"] = Field(
        "auto",
        description=(
            "binary: two labels, data.positive_label the positive one (sigmoid, BCELoss); multiclass: N "
            "mutually exclusive labels (softmax, CrossEntropyLoss); multilabel: a set of labels per row (one "
            "sigmoid each, BCELoss); auto: multilabel for label sets, binary for two labels, else multiclass."
        ),
    )
    label_separator: str | None = Field(
        None,
        min_length=1,
        description=(
            "Multilabel: the separator of the labels in one cell (e.g. '|'; on the command line --set "
            "'data.label_separator=\"|\"', as a bare | is YAML syntax); JSON-lines cells may hold a list "
            "instead. Splits are stratified by each row's rarest label."
        ),
    )
    labels: list[str] | None = Field(
        None,
        description="Multiclass: the labels in class order (default: sorted); other values are an error.",
    )
    label_map: dict[str, str] | None = Field(
        None,
        description=(
            "Raw label values to labels, applied before everything else, e.g. star ratings "
            "{1: negative, 2: negative, 9: positive, 10: positive}; values it does not name stay as they are."
        ),
    )
    group_column: str | None = Field(
        None,
        description=(
            "Column naming each row's group (movie, product, author): every group lands whole in one split, "
            "so validation and test share no group with training (then about test_size / val_size of the "
            "rows, stratified as far as whole groups allow; data.shuffle does not apply)."
        ),
    )
    test_size: float = Field(0.2, gt=0, lt=1, description="Fraction of the data held out for the test split.")
    val_size: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Fraction of the data held out for validation (0 disables early stopping).",
    )
    shuffle: bool = Field(
        True,
        description="Shuffle (stratified, seeded) before splitting; false takes the first rows for training.",
    )
    max_rows: int | None = Field(
        None, gt=0, description="Use only the first N rows of the data (quick runs)."
    )
    streaming: bool | Literal["auto"] = Field(
        "auto",
        description=(
            "Out of core: read, tokenise and encode the texts a chunk at a time through files on disk (token "
            "ids memory-mapped), so memory does not grow with the number of texts; same result as in memory. "
            "auto: when the data files take more than 128 MB on disk."
        ),
    )

    @field_validator("path", "test_path", "unlabeled_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return _no_nul(value)

    @field_validator("label_column")
    @classmethod
    def _not_the_text(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("text_column"):
            raise ValueError("is also data.text_column: the text and the label must be different columns")
        return value

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_to_str(cls, value: Any) -> Any:
        return _as_label(value)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_to_str(cls, value: Any) -> Any:
        return [_as_label(v) for v in value] if isinstance(value, list) else value

    @field_validator("label_map", mode="before")
    @classmethod
    def _map_to_str(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_as_label(k): _as_label(v) for k, v in value.items()}
        return value


def _no_nul(path: str | None) -> str | None:
    if path is not None and "\0" in path:  # no file system takes one (and os calls raise ValueError)
        raise ValueError("a path cannot hold a NUL byte")
    return path


def _as_label(value: Any) -> Any:
    """YAML reads `1` as an int and `yes` as a bool: labels are compared as strings, written as the data's
    are (``sentiment.datafiles.label_text``: 1, 1.0 and "1.0" are "1"; surrounding spaces go)."""
    if isinstance(value, bool | int | float | str):
        from sentiment.datafiles import label_text

        return label_text(value)
    return value


class TextConfig(_Section):
    lowercase: bool = Field(True, description="Lower-case the text.")
    strip_html: bool = Field(True, description="Remove HTML tags such as <br /> and unescape entities.")
    split: Literal["regex", "whitespace"] = Field(
        "regex",
        description=(
            "regex: words (apostrophes kept) plus ! and ? as tokens; whitespace: str.split (tutorial)."
        ),
    )
    negation: bool = Field(
        False, description="Prefix words after a negation (not, no, n't ...) with NOT_ until punctuation."
    )
    min_token_length: int = Field(1, ge=1, description="Drop tokens shorter than this.")
    phrases: bool = Field(False, description="Join frequent word pairs into one token (gensim Phrases).")
    phrases_min_count: int = Field(20, ge=1, description="Phrases: minimum count of a pair.")
    phrases_threshold: float = Field(
        10.0, gt=0, description="Phrases: score threshold (higher, fewer phrases)."
    )
    ngrams: int = Field(
        1,
        ge=1,
        le=3,
        description=(
            "Add word n-grams up to this length as extra tokens (2: bigrams), each starting as the mean "
            "of its words' vectors; pays with model.fine_tune_embeddings."
        ),
    )
    ngram_min_count: int = Field(5, ge=1, description="n-grams: minimum number of training texts.")
    ngram_max: int | None = Field(None, gt=0, description="n-grams: keep at most this many (most frequent).")


class Word2VecConfig(_Section):
    vector_size: int = Field(100, ge=1, le=4096, description="Dimension of the word vectors.")
    window: int = Field(5, ge=1, le=1000, description="Context window size.")
    min_count: int = Field(2, ge=1, description="Ignore words with fewer occurrences.")
    epochs: int = Field(5, ge=1, le=100_000, description="Passes over the corpus.")
    sg: Literal[0, 1] = Field(1, description="1: skip-gram, 0: CBOW.")
    negative: int = Field(
        5, ge=0, le=1000, description="Negative samples per positive (0: hierarchical softmax)."
    )
    sample: float = Field(1e-3, ge=0, description="Down-sampling threshold for frequent words.")
    alpha: float = Field(0.025, gt=0, le=1, description="Initial learning rate.")
    max_vocab_size: int | None = Field(
        None, gt=0, description="Prune the vocabulary while building it (memory cap)."
    )
    workers: int = Field(
        0, ge=0, le=1024, description="Worker threads; 0 uses every core. 1 gives bit-identical vectors."
    )
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="Word2Vec seed (default: the top-level seed)."
    )
    cache: bool = Field(
        True,
        description="Reuse the vectors and token ids computed from the same data with the same settings.",
    )


class FeaturesConfig(_Section):
    pooling: Literal["mean", "tfidf", "sif", "nb", "mean_max"] = Field(
        "mean",
        description=(
            "How word vectors become one text vector: mean; tfidf-, sif- or nb-weighted mean (nb: by how "
            "strongly each word leans to one label in the training texts; with more labels, or label sets, "
            "the strongest of its one-vs-rest ratios); mean concatenated with max."
        ),
    )
    sif_a: float = Field(1e-3, gt=0, description="SIF weight parameter a in a / (a + p(w)).")
    nb_alpha: float = Field(1.0, gt=0, description="nb pooling: smoothing added to each word's class counts.")
    nb_floor: float = Field(
        0.1, gt=0, description="nb pooling: added to every word's weight so neutral words count a little."
    )
    normalize: bool = Field(
        False, description="Standardise features with the training mean and std (frozen features only)."
    )


MAX_LAYER = 65_536


class ModelConfig(_Section):
    hidden_dims: list[int] = Field(
        default_factory=lambda: [64], min_length=1, description="Sizes of the hidden layers (one or more)."
    )
    activation: Literal["relu", "gelu", "tanh", "leaky_relu"] = Field(
        "relu", description="Hidden activation."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer.")
    fine_tune_embeddings: bool = Field(
        False,
        description=(
            "Train the word vectors end to end (EmbeddingBag initialised from Word2Vec) "
            "instead of freezing them."
        ),
    )
    embedding_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Fine-tuning only: drop this fraction of tokens from each text in training.",
    )
    wide: bool = Field(
        False,
        description=(
            "Fine-tuning only: wide and deep. Add to the MLP's logits a learnt weight per token (word or "
            "n-gram) present in the text, each starting from its NB log-count ratio (fast.ai's NB-weighted "
            "bag, after NBSVM); with more labels, one weight per token and label (one-vs-rest ratios)."
        ),
    )

    @field_validator("hidden_dims")
    @classmethod
    def _positive(cls, dims: list[int]) -> list[int]:
        if any(d < 1 for d in dims):
            raise ValueError("every hidden layer size must be >= 1")
        if any(d > MAX_LAYER for d in dims):  # a typo, and torch's allocation error otherwise
            raise ValueError(f"every hidden layer size must be <= {MAX_LAYER:,}")
        return dims


class TrainingConfig(_Section):
    epochs: int = Field(20, ge=1, le=100_000, description="Maximum training epochs.")
    batch_size: int = Field(64, ge=1, le=2**20, description="Mini-batch size.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay (L2).")
    embedding_lr: float | None = Field(
        None, gt=0, description="Fine-tuning only: learning rate of the word vectors (default: lr)."
    )
    wide_lr: float = Field(0.02, gt=0, description="model.wide only: learning rate of the wide weights.")
    lr_schedule: Literal["none", "cosine", "plateau"] = Field("none", description="Learning-rate schedule.")
    patience: int = Field(
        3, ge=0, description="Early stopping: epochs without improvement before stopping (0 disables)."
    )
    refit: bool = Field(
        False,
        description=(
            "After early stopping, train a fresh model on training + validation rows for the best epoch "
            "count and keep it (validation metrics stay the first model's)."
        ),
    )
    class_weight: Literal["none", "balanced"] | dict[str, float] = Field(
        "none",
        description=(
            "Weight of each class in the training loss: none; balanced (n / (classes x class count), so a "
            "rare class counts as much as a common one); or {label: weight}, unnamed labels 1. Label sets: "
            "the weight multiplies the loss of the label's positive cells (torch's pos_weight; balanced: "
            "texts without the label / texts with it). Validation loss stays unweighted."
        ),
    )
    monitor: Literal["val_loss", "val_accuracy", "val_f1"] = Field(
        "val_loss", description="Validation metric for early stopping and best-weights selection."
    )
    num_workers: int = Field(0, ge=0, le=256, description="DataLoader worker processes.")
    cpu_threads: int = Field(
        0,
        ge=0,
        le=1024,
        description=(
            "torch threads on CPU; 0: one for a frozen-feature MLP (its small matrices only pay thread "
            "overhead), every core when fine-tuning embeddings."
        ),
    )
    deterministic: bool = Field(False, description="Ask torch for deterministic algorithms (slower on CUDA).")

    @field_validator("class_weight", mode="before")
    @classmethod
    def _keys_to_str(cls, value: Any) -> Any:
        # labels are strings, as data.labels' are: {0: 1.0, 1: 2.0} names the labels '0' and '1'
        return {_as_label(k): w for k, w in value.items()} if isinstance(value, dict) else value

    @field_validator("class_weight")
    @classmethod
    def _positive_weights(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(not w > 0 for w in value.values()):
            raise ValueError("every class weight must be > 0")
        return value


class EvalConfig(_Section):
    threshold: float = Field(0.5, gt=0, lt=1, description="Probability at or above which a text is positive.")
    tune_threshold: bool = Field(
        False,
        description="Choose the threshold maximising threshold_metric on validation (needs val_size > 0).",
    )
    threshold_metric: Literal["accuracy", "f1"] = Field(
        "accuracy", description="What tune_threshold maximises: accuracy, or the positive class's F1."
    )


class Config(_Section):
    version: int = Field(CONFIG_VERSION, description="Config format version.")
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="Seed for Python, NumPy, torch, the split and Word2Vec."
    )
    device: str = Field("auto", description="auto (CUDA when available), cpu, cuda or cuda:N.")
    output_dir: str = Field(
        "runs", description="Where `train` writes model directories (runs/<config name>)."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    word2vec: Word2VecConfig = Field(default_factory=Word2VecConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("output_dir")
    @classmethod
    def _output_dir(cls, value: str) -> str:
        return str(_no_nul(value))

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("must be auto, cpu, cuda or cuda:N")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != CONFIG_VERSION:
            raise ValueError(
                f"config version {value} is not supported by this sentiment (expects {CONFIG_VERSION})"
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def check_compatible(config: Config) -> None:
    """Settings that are valid alone but not together."""
    if config.model.wide and not config.model.fine_tune_embeddings:
        raise ConfigError("model.wide needs model.fine_tune_embeddings=true (the wide part reads token ids)")
    if config.model.fine_tune_embeddings and config.features.pooling == "mean_max":
        raise ConfigError("features.pooling=mean_max cannot be combined with model.fine_tune_embeddings=true")
    if config.model.fine_tune_embeddings and config.features.normalize:
        raise ConfigError(
            "features.normalize applies to frozen features only; unset it or model.fine_tune_embeddings"
        )
    if config.eval.tune_threshold and config.data.val_size == 0:
        raise ConfigError("eval.tune_threshold needs a validation split: set data.val_size > 0")
    if config.training.refit and config.data.val_size == 0:
        raise ConfigError("training.refit needs a validation split: set data.val_size > 0")
    _check_data_settings(config.data)


def _check_data_settings(data: DataConfig) -> None:
    """Data settings that contradict each other: refused before any data is read (train and validate)."""
    if not data.test_path and data.test_size + data.val_size >= 1:
        raise ConfigError(
            f"data.test_size + data.val_size = {data.test_size:g} + {data.val_size:g} leaves no rows for "
            "training; make their sum less than 1"
        )
    if data.labels is None:
        return
    labels = data.labels
    twice = next((name for i, name in enumerate(labels) if name in labels[:i]), None)
    if twice is not None:
        raise ConfigError(f"data.labels lists '{twice}' more than once; each label once, in class order")
    binary = data.task == "binary" or (data.task == "auto" and len(labels) == 2)
    if data.task == "binary" and len(labels) != 2:
        raise ConfigError(
            f"data.labels has {len(labels)} labels, but data.task binary takes two; set data.task multiclass "
            "(or list two labels)"
        )
    if binary and data.positive_label.casefold() not in {name.casefold() for name in labels}:
        raise ConfigError(
            f"data.positive_label '{data.positive_label}' is not one of data.labels ({', '.join(labels)}); "
            "set data.positive_label to one of them"
        )
    if data.task in ("auto", "multiclass") and len(labels) < 2:
        raise ConfigError(f"data.labels lists {len(labels)} label(s); a classifier needs two or more")


def check_files(config: Config) -> None:
    """The local files the config names exist (a Kaggle download is checked when it runs)."""
    data = config.data
    from sentiment.datafiles import checked_format, data_files
    from sentiment.errors import DataError

    for key in ("path", "test_path", "unlabeled_path"):
        value = getattr(data, key)
        if value is not None:
            try:
                for file in data_files(value):  # a file, or a directory or glob of shards
                    checked_format(file)  # what reading checks before it parses
            except DataError as exc:
                missing = "file not found" in str(exc)
                raise ConfigError(
                    f"data.{key}: " + (f"file not found: {_SHORT.repr(value)[1:-1]}" if missing else str(exc))
                ) from None
    if data.path is None and data.kaggle_handle is None:
        raise ConfigError(
            "no data configured: set data.path=FILE or data.kaggle_handle (and data.kaggle_file)"
        )
    if data.path is None:
        from sentiment.download import parse_handle

        parse_handle(data.kaggle_handle)  # a handle that is no handle: train refuses it before downloading


def all_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, sections excluded."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(all_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def schema_rows(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default as YAML, description) for every key: the source of the README reference."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(schema_rows(annotation, f"{prefix}{name}."))
            continue
        default = field.get_default(call_default_factory=True)
        shown = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        rows.append((f"{prefix}{name}", shown, field.description or ""))
    return rows


def _suggest(key: str, section_keys: list[str]) -> str:
    close = difflib.get_close_matches(key, section_keys, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()  # keyword arguments only from Python 3.12
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother, short.maxlong = (
        2,
        4,
        4,
        60,
        60,
        40,
    )
    return short


_SHORT = _short_repr()


def short(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters: a hostile value never makes a huge message."""
    return _SHORT.repr(value)


def _is_type_mismatch(error: Any) -> bool:
    return error["type"] == "literal_error" or error["type"].endswith(("_type", "_parsing"))


def _is_member_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part == "bool")


def _setting_of(error: Any) -> tuple[object, ...]:
    """The setting an error is about: its location up to the first union member tag."""
    loc = error["loc"]
    cut = next((i for i, part in enumerate(loc) if _is_member_tag(part)), len(loc))
    return tuple(loc[:cut])


def _format_validation_error(err: ValidationError, source: str) -> str:
    errors = err.errors()
    # A union setting (class_weight: none | balanced | {label: weight}) reports one error per member; the
    # member the value's type matches says what is wrong with it, not the members it was never meant for.
    first = next((e for e in errors if not _is_type_mismatch(e)), errors[0])
    # and pydantic's member tags (literal['none','balanced'], dict[str,float]) are not keys the user wrote
    loc = ".".join(str(p) for p in first["loc"] if not _is_member_tag(p))
    if first["type"] == "extra_forbidden":
        parent = loc.rsplit(".", 1)[0] if "." in loc else ""
        candidates = [k for k in all_keys() if k.startswith(f"{parent}.")] if parent else all_keys()
        if not parent:
            candidates += list(Config.model_fields)
        suggestion = _suggest(loc, candidates)
        return f"{source}: unknown key '{loc}'{suggestion}"
    value = _SHORT.repr(first.get("input"))  # a hostile value never makes a hostile (or huge) message
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "literal_error":
        return f"{source}: '{loc}' = {value} is not allowed: {message}"
    others = len({_setting_of(e) for e in errors} - {_setting_of(first)})
    more = f" (and {others} more problem(s))" if others else ""
    return f"{source}: '{loc}' = {value}: {message}{more}"


def parse_override(pair: str) -> tuple[str, Any]:
    """``a.b=value`` -> ("a.b", value parsed as a YAML scalar)."""
    if "=" not in pair:
        raise ConfigError(f"--set '{pair}': expected KEY=VALUE, e.g. --set training.epochs=10")
    key, raw = pair.split("=", 1)
    key = key.strip()
    if not key or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
        raise ConfigError(f"--set '{pair}': '{key}' is not a dotted key such as training.epochs")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.constructor.ConstructorError as exc:  # a tag refused, a key given twice
        raise ConfigError(f"--set {key}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set '{pair}': value is not valid YAML ({exc.__class__.__name__})") from None
    except ValueError as exc:
        raise ConfigError(f"--set {key}: {_unreadable_value(exc)}") from None
    except RecursionError:  # PyYAML composes recursively
        raise ConfigError(f"--set {key}: nested too deeply to be a setting") from None
    return key, value


def _unreadable_value(exc: ValueError) -> str:
    """Why YAML could not build a scalar: an integer past Python's 4,300-digit limit, a date like
    2024-13-45 (PyYAML raises ValueError for these, not a YAMLError)."""
    if "digits" in str(exc):
        return "a number with more than 4,300 digits; no setting takes one"
    return f"a value that cannot be read: {str(exc).split(';')[0]}"


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a raw config dict; unknown keys are errors naming the key."""
    known = set(all_keys())
    sections = {k.split(".")[0] for k in known if "." in k}
    for pair in overrides:
        key, value = parse_override(pair)
        if key not in known and key not in sections:
            raise ConfigError(f"--set {key}: unknown key{_suggest(key, sorted(known))}")
        set_key(raw, key, value)
    return raw


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key (``data.path``) in a raw config dict, making sections as needed."""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Tags whose values are no config's: a set, bytes, a date or an ordered pair list (a setting takes plain
# strings, numbers, booleans, lists and mappings; pydantic would otherwise turn a set into a list in no
# stated order, bytes into a string).
_REFUSED_TAGS = ("set", "binary", "timestamp", "omap", "pairs")


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter: a key given twice in one mapping is an error (YAML keeps the last
    silently, so a section written twice loses the first one's settings), the tags above are refused, a
    date stays the string it reads as (`positive_label: 2024-01-01` is a label) and a float may be written
    as YAML 1.2 and JSON write it (`1e5`, which YAML 1.1 reads as a string)."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[Any]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then a key of base: an override
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # unhashable: the base class names it
                continue
            if first is not key_node:
                line = first.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {_SHORT.repr(key)} given twice (first at line {line}); keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep)


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed; a setting is a plain string, "
        "number, boolean, list or mapping",
        node.start_mark,
    )


for _tag in _REFUSED_TAGS:
    _ConfigLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """A YAML document read by the config loader above (safe: no tag constructs an object)."""
    return yaml.load(text, Loader=_ConfigLoader)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"config path is a directory, not a YAML file: {path}")
    with path.open("rb") as fh:  # a size cap, not read_text: the path may be /dev/zero or an endless pipe
        data = fh.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: more than {MAX_CONFIG_BYTES // 1_000_000} MB; a config is a few dozen keys"
        )
    try:
        raw = load_yaml(data.decode("utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise ConfigError(f"{path}: {kind}{where}: {exc.problem}") from None
    except UnicodeDecodeError as exc:
        line, bad = data.count(b"\n", 0, exc.start) + 1, data[exc.start : exc.start + 1]
        raise ConfigError(
            f"{path}: not UTF-8 text (line {line}, byte {exc.start}: {bad!r}); re-save the file as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {_unreadable_value(exc)}") from None
    except RecursionError:  # PyYAML composes recursively: a hostile file nests past Python's stack
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    _check_size(raw, path)
    return raw


MAX_VALUES, MAX_DEPTH = 10_000, 20
MAX_CONFIG_BYTES = 1_000_000


def _check_size(raw: Any, path: Path) -> None:
    """Refuse, fast, a config that YAML aliases blow up (a "billion laughs") or that nests absurdly deep:
    every use of an alias counts again, and the walk stops at the first limit, long before the expansion."""
    stack, seen = [(raw, 0)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES or depth > MAX_DEPTH:
            raise ConfigError(
                f"{path}: more than {MAX_VALUES:,} values or {MAX_DEPTH} levels of nesting (YAML aliases "
                "that expand?); a config is a few dozen keys"
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


SHIPPED_DIR = Path(__file__).parent / "configs"
# The default search space of `sentiment tune` lives beside the configs but is not one.
SHIPPED_SPACE = SHIPPED_DIR / "space.yaml"


def shipped_configs() -> dict[str, Path]:
    """The configs that come with the package, by name (``default``, ``imdb`` ...)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.yaml")) if p != SHIPPED_SPACE}


def config_summary(path: Path) -> str:
    """A config file's first comment line: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def resolve_config(spec: str | Path) -> Path:
    """A config file path, or the name of a shipped config (``default``, ``default.yaml``)."""
    path = Path(spec)
    if path.exists() or len(path.parts) > 1:
        return path
    shipped = shipped_configs()
    name = path.name.removesuffix(".yaml")
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"config file not found: {spec}; give a YAML file or a shipped config: {', '.join(shipped)} "
        "(sentiment config list)"
    )


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, values: dict[str, Any] | None = None
) -> Config:
    """Load a YAML config (a file, or a shipped config's name; the defaults when ``path`` is None), set the
    dotted keys of ``values`` (Python values, as the CLI's --data options give them), then apply ``--set``
    overrides (``KEY=VALUE`` strings, the value read as YAML)."""
    raw = read_yaml(resolve_config(path)) if path is not None else {}
    for key, value in (values or {}).items():
        set_key(raw, key, value)
    raw = apply_overrides(raw, overrides or [])
    return config_from_dict(raw, source=str(path) if path is not None else "config")
