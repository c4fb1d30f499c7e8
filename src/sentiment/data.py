"""Data: read a local file or a Kaggle download, map labels to class indices, split into train / validation /
test. Warnings (dropped rows) are returned with the data, so a cached run can repeat them."""

from __future__ import annotations

import glob
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from reprlib import repr as _short
from typing import TYPE_CHECKING

import numpy as np

from sentiment.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from sentiment.config import DataConfig

SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = SUPPORTED_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        allowed = ", ".join(sorted({*SUPPORTED_SUFFIXES, *(f"{s}.gz" for s in SUPPORTED_SUFFIXES)}))
        raise DataError(f"{path}: unsupported file type; use one of {allowed}")
    return fmt


DATA_FILE_KINDS = "csv, tsv, parquet, jsonl, .gz"
GLOB_CHARS = "*?["


def data_files(path: str | Path) -> list[Path]:
    """The files a data path names: a file; a directory's data files (not recursive; hidden files and
    unsupported suffixes skipped); or a glob's matching files. Sorted by name; a DataError when none."""
    text = str(path)
    plain = Path(text).expanduser()
    try:
        exists = plain.exists()
    except OSError as exc:  # a name longer than the file system takes (ENAMETOOLONG), ...
        raise DataError(f"{_short(text)}: {exc.strerror or exc}; give a shorter path") from None
    if exists and not plain.is_dir():
        return [plain]
    if plain.is_dir():
        found = [
            p
            for p in sorted(plain.iterdir(), key=lambda p: p.name)
            if not p.name.startswith(".") and p.is_file() and _supported(p)
        ]
        if not found:
            raise DataError(f"no data files ({DATA_FILE_KINDS}) in {plain}")
        return found
    if any(c in text for c in GLOB_CHARS):
        found = sorted(
            Path(p) for p in glob.glob(os.path.expanduser(text)) if Path(p).is_file() and _supported(Path(p))
        )
        if not found:
            raise DataError(f"no CSV / TSV / Parquet / JSON-lines file matches {text}")
        return found
    raise DataError(f"data file not found: {plain}")


def _supported(path: Path) -> bool:
    try:
        file_format(path)
    except DataError:
        return False
    return True


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV / TSV / Parquet / JSON-lines file (optionally gzipped), keeping only ``columns``; a
    directory or a glob (``data_files``) reads every shard and concatenates them in order."""
    files = data_files(path)
    if len(files) == 1:
        return _read_file(files[0], columns)
    import pandas as pd

    return pd.concat([_read_file(file, columns) for file in files], ignore_index=True)


def _read_file(path: Path, columns: list[str] | None) -> pd.DataFrame:
    import pandas as pd

    fmt = _checked_format(path)
    with _reading(path, fmt):
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, **_csv_options(fmt))
        elif fmt == "parquet":
            frame = pd.read_parquet(_parquet_source(path))
        else:
            parts = list(_jsonl_chunks(path, rows=1 << 62))  # one chunk: the whole file
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty:
        raise DataError(f"{path}: the file has no rows")
    return _selected(frame, columns, path)


def read_chunks(
    path: str | Path, columns: list[str] | None = None, rows: int = 20_000
) -> Iterator[tuple[Path, pd.DataFrame]]:
    """(shard, frame of at most ``rows`` rows) over every shard of ``data_files(path)`` in order, each shard
    read incrementally (one chunk in memory). The chunks concatenated equal ``read_table(path, columns)``;
    the errors are read_table's."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}")
    for shard in data_files(path):
        yield from _shard_chunks(shard, columns, rows)


def _shard_chunks(path: Path, columns: list[str] | None, rows: int) -> Iterator[tuple[Path, pd.DataFrame]]:
    import pandas as pd

    fmt = _checked_format(path)
    with ExitStack() as stack:
        with _reading(path, fmt):
            if fmt in ("csv", "tsv"):
                chunks = stack.enter_context(pd.read_csv(path, chunksize=rows, **_csv_options(fmt)))
            elif fmt == "parquet":
                chunks = _parquet_chunks(stack, path, columns, rows)
            else:
                chunks = _jsonl_chunks(path, rows)
            chunks = iter(chunks)
        any_rows = False
        while True:
            with _reading(path, fmt):
                chunk = next(chunks, None)
            if chunk is None:
                break
            if chunk.empty:
                continue
            any_rows = True
            yield path, _selected(chunk, columns, path)
        if not any_rows:
            raise DataError(f"{path}: the file has no rows")


def _parquet_chunks(
    stack: ExitStack, path: Path, columns: list[str] | None, rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    file = stack.enter_context(pq.ParquetFile(_parquet_source(path)))
    # Only columns the file has are asked for: a missing one is reported by _selected, as read_table does.
    wanted = columns if columns and set(columns) <= set(file.schema_arrow.names) else None
    return (batch.to_pandas() for batch in file.iter_batches(batch_size=rows, columns=wanted))


# utf-8-sig: a byte-order mark (some editors write one) is dropped, as pandas already does for CSV.
JSONL_ENCODING = "utf-8-sig"


def _jsonl_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Frames of at most ``rows`` rows of a JSON-lines file, read by pandas; from the first integer past 64
    bits on (an id, say), which pandas' parser refuses, by Python's json module, to the same frames."""
    import pandas as pd

    done = 0
    try:
        with pd.read_json(path, lines=True, dtype=False, encoding=JSONL_ENCODING, chunksize=rows) as reader:
            for chunk in reader:
                done += len(chunk)
                yield chunk
        return
    except ValueError as exc:
        if "too big" not in str(exc):
            raise
    yield from _jsonl_chunks_python(path, rows, skip=done)


def _jsonl_chunks_python(path: Path, rows: int, skip: int) -> Iterator[pd.DataFrame]:
    import json

    import pandas as pd

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    records: list[dict] = []
    with opener(path, "rt", encoding=JSONL_ENCODING) as fh:
        for line in fh:
            if not line.strip():
                continue  # pandas skips blank lines too
            if skip:
                skip -= 1
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError("a JSON-lines row is not an object")
            records.append(record)
            if len(records) == rows:
                yield pd.DataFrame.from_records(records)
                records = []
    if records:
        yield pd.DataFrame.from_records(records)


def _parquet_source(path: Path) -> Path | io.BytesIO:
    """A gzipped Parquet file (.parquet.gz) is decompressed into memory: Parquet needs to seek, and its
    columns are compressed already, so such files are small next to what they hold."""
    if path.suffix.lower() != ".gz":
        return path
    return io.BytesIO(gzip.decompress(path.read_bytes()))


def _checked_format(path: Path) -> str:
    """The file's format, after the checks read_table makes before reading (supported suffix, not empty)."""
    fmt = file_format(path)
    if path.exists() and not path.is_file():
        # A FIFO or a device has no size (it was "the file is empty"), and training reads its data file more
        # than once (the cache key hashes it first): a pipe would be empty, or block, the second time.
        raise DataError(f"{path} is not a regular file (a pipe?); save the table to a file and pass that")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    return fmt


def _csv_options(fmt: str) -> dict[str, object]:
    # Only an empty cell is missing: a review that reads "NA", "null" or "None" is text.
    return {
        "sep": "\t" if fmt == "tsv" else ",",
        "encoding": "utf-8",
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        # A first row with more fields than the header would otherwise make pandas read the first column as
        # the index and shift every column by one (silently wrong texts); with False it warns, and the
        # warning is an error (_reading), like a later row's extra fields.
        "index_col": False,
    }


@contextmanager
def _reading(path: Path, fmt: str) -> Iterator[None]:
    """Map what reading ``path`` as ``fmt`` raises to a one-line DataError naming the file."""
    import warnings

    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.ParserWarning:
        raise DataError(
            f"{path}: cannot parse as {fmt}: a row has more fields than the header; quote texts that hold "
            "the separator"
        ) from None
    except UnicodeDecodeError:
        where = _first_bad_utf8(path)
        raise DataError(f"{path}: not UTF-8 text ({where}); re-save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except TypeError:  # pandas' JSON-lines reader meets a line that is a list or a number
        if fmt != "jsonl":
            raise
        raise DataError(
            f'{path}: cannot parse as jsonl: every line must be a JSON object {{"column": value}}'
        ) from None
    except (pd.errors.ParserError, ValueError, OSError, EOFError, zlib.error) as exc:  # zlib: damaged .gz
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot parse as {fmt}: {first[:200]}") from None


def _selected(frame: pd.DataFrame, columns: list[str] | None, path: Path) -> pd.DataFrame:
    if file_format(path) == "tsv":
        _warn_if_quotes_joined_rows(frame, path)
    if not columns:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns))
        raise DataError(f"{path}: column(s) {', '.join(missing)} not found; the file has: {have}")
    return frame[columns]


def _warn_if_quotes_joined_rows(frame: pd.DataFrame, path: Path) -> None:
    """TSV is read with quoting, as pandas and spreadsheets write it; a text that merely starts with a quote
    then runs to the next quote, joining the rows between into one cell. A cell holding a line break or a
    tab is the sign (a quoted TSV may hold one on purpose: a warning, not an error)."""
    import logging

    import pandas as pd

    joined = sum(
        int(frame[column].astype(str).str.contains("[\t\n]", regex=True).sum())
        for column in frame.columns
        if pd.api.types.is_string_dtype(frame[column])
    )
    if joined:
        logging.getLogger(__name__).warning(
            "%s: %d cell(s) hold a line break or a tab: in TSV a cell starting with a quote runs to the next "
            'quote and joins the rows between; double the quotes ("") if rows went missing',
            path,
            joined,
        )


def _first_bad_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 is (the decoder's own offset is relative to a chunk)."""
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    offset = 0
    with opener(path, "rb") as fh:
        if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode Text", Notepad's "Unicode"
            return "UTF-16, by its byte-order mark"
        fh.seek(0)
        for number, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"line {number}, byte {offset + exc.start}: {line[exc.start : exc.start + 1]!r}"
            offset += len(line)
    return "invalid byte"


@dataclass
class LabelledData:
    texts: list[str]
    labels: np.ndarray  # int64 class index: 0 negative, 1 positive
    warnings: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None  # each row's group (data.group_column), kept whole by the splits


MAX_LABELS = 1000


def labelled_from_frame(
    frame: pd.DataFrame, config: DataConfig, source: str, label_names: list[str] | None = None
) -> tuple[LabelledData, list[str]]:
    """Texts and class indices, and the label names by index; rows with an empty text or label are dropped
    and counted. ``label_names`` (a trained model's, or the training file's for a test file) fixes the labels:
    any other value is an error naming it. Otherwise the task (``data.task``) decides: two labels with
    ``data.positive_label`` second, or N labels in ``data.labels`` order (else sorted)."""
    texts = frame[config.text_column]
    labels = frame[config.label_column]
    keep = texts.notna() & labels.notna()
    keep &= texts.astype(str).str.strip().ne("")
    dropped = int((~keep).sum())
    warnings = [f"{source}: dropped {dropped} row(s) with an empty text or label"] if dropped else []
    texts, labels = texts[keep], labels[keep]
    if texts.empty:
        raise DataError(f"{source}: no rows left after dropping empty texts and labels")
    groups = None
    if config.group_column is not None and config.group_column in frame.columns:
        column = frame[config.group_column][keep]
        # a row without a group is a group of its own
        groups = np.array([str(g) if g == g and g is not None else f"\0row{i}" for i, g in enumerate(column)])
    if is_multilabel(config, labels):
        y, names = _multilabel(labels, config, source, label_names)
        return LabelledData(texts.astype(str).tolist(), y, warnings, groups), names
    label_str = labels.map(_label_str)
    if config.label_map:
        label_str = label_str.map(lambda value: config.label_map.get(value, value))
    classes = sorted(label_str.unique())
    if label_names is not None:  # a trained model's data: its labels are fixed
        unknown = [c for c in classes if c not in label_names]
        if unknown:
            raise DataError(
                f"{source}: column '{config.label_column}' holds label(s) the model does not know: "
                f"{_shown(unknown)} (it knows {_and(label_names)})"
            )
        names = list(label_names)
    elif resolve_task(config, classes) == "binary":
        names = _binary_names(classes, config, source)
    else:
        names = _multiclass_names(classes, config, source)
    index = {name: i for i, name in enumerate(names)}
    y = np.array(label_str.map(index), dtype=np.int64)  # a copy: pandas may hand out a read-only view
    return LabelledData(texts.astype(str).tolist(), y, warnings, groups), names


def is_multilabel(config: DataConfig, labels: pd.Series) -> bool:
    """``data.task: multilabel``, or ``auto`` with a label separator set or cells that hold lists (JSON)."""
    if config.task != "auto":
        return config.task == "multilabel"
    return config.label_separator is not None or bool(labels.map(lambda v: isinstance(v, list)).any())


def _multilabel(
    labels: pd.Series, config: DataConfig, source: str, label_names: list[str] | None
) -> tuple[np.ndarray, list[str]]:
    """A 0/1 matrix (rows x labels) from cells holding a set of labels: split at ``data.label_separator``, or
    a JSON list; each label mapped by ``data.label_map``."""
    separator = config.label_separator
    sets: list[list[str]] = []
    for number, cell in enumerate(labels, 1):
        items = cell if isinstance(cell, list) else str(cell).split(separator) if separator else [cell]
        names = [_label_str(item) for item in items]
        names = [config.label_map.get(n, n) if config.label_map else n for n in names if n != ""]
        if not names:
            raise DataError(
                f"{source}: row {number} has an empty label set in column '{config.label_column}'"
            )
        sets.append(names)
    seen = sorted({name for row in sets for name in row})
    known = label_names or (list(config.labels) if config.labels else seen)
    unknown = [name for name in seen if name not in known]
    if unknown:
        where = "the model does not know" if label_names else "are not in data.labels"
        raise DataError(f"{source}: label(s) {_shown(unknown)} in column '{config.label_column}': {where}")
    if len(known) > MAX_LABELS:
        raise DataError(f"{source}: {len(known):,} distinct labels (at most {MAX_LABELS:,})")
    index = {name: i for i, name in enumerate(known)}
    y = np.zeros((len(sets), len(known)), dtype=np.int64)
    for row, names in enumerate(sets):
        y[row, [index[n] for n in names]] = 1
    return y, list(known)


def resolve_task(config: DataConfig, classes: list[str], multilabel: bool = False) -> str:
    """``data.task``, with ``auto`` decided from the data: label sets are multilabel, two labels binary, more
    multiclass."""
    if config.task != "auto":
        return config.task
    if multilabel or config.label_separator is not None:
        return "multilabel"
    return "multiclass" if len(config.labels or classes) > 2 else "binary"


def _shown(values: list[str]) -> str:
    return ", ".join(values[:10]) + (" ..." if len(values) > 10 else "")


def _and(values: list[str]) -> str:
    return ", ".join(values[:-1]) + f" and {values[-1]}" if len(values) > 1 else values[0]


def _binary_names(classes: list[str], config: DataConfig, source: str) -> list[str]:
    positive = config.positive_label
    if positive not in classes:
        raise DataError(
            f"{source}: positive label '{positive}' not found in column '{config.label_column}' "
            f"(values: {_shown(classes)}); pass --positive-label VALUE (or --set data.positive_label=VALUE)"
        )
    if len(classes) != 2:
        raise DataError(
            f"{source}: column '{config.label_column}' must hold exactly two classes, "
            f"found {len(classes)}: {_shown(classes)}; pass the right --label-column (or --set "
            "data.label_column=NAME)"
        )
    return [next(c for c in classes if c != positive), positive]


def _multiclass_names(classes: list[str], config: DataConfig, source: str) -> list[str]:
    if len(classes) > MAX_LABELS:
        raise DataError(
            f"{source}: column '{config.label_column}' holds {len(classes):,} distinct labels (at most "
            f"{MAX_LABELS:,}): is it the label column? (--label-column, or data.label_map to group them)"
        )
    names = list(config.labels) if config.labels else classes
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise DataError(
            f"{source}: label(s) {_shown(unknown)} in column '{config.label_column}' are not in data.labels "
            f"({_shown(names)}); add them, or map them with data.label_map"
        )
    if len(names) < 2:
        raise DataError(f"{source}: column '{config.label_column}' holds one label only: {_shown(names)}")
    return names


# Column names that say "the text" / "the label", in order of preference (compared case-insensitively).
TEXT_NAMES = (
    "text",
    "review",
    "cleaned_review",
    "sentence",
    "content",
    "body",
    "comment",
    "tweet",
    "document",
)
LABEL_NAMES = ("label", "sentiment", "labels", "class", "target", "polarity", "y")
# Two-valued label sets whose positive class is plain, compared case-insensitively: (negative, positive).
POSITIVE_OF = {
    frozenset({"0", "1"}): "1",
    frozenset({"-1", "1"}): "1",
    frozenset({"no", "yes"}): "yes",
    frozenset({"n", "y"}): "y",
    frozenset({"false", "true"}): "true",
    frozenset({"negative", "positive"}): "positive",
    frozenset({"neg", "pos"}): "pos",
    frozenset({"bad", "good"}): "good",
}


@dataclass
class DataGuess:
    """Column and label settings read off a file (``guess_data_settings``), and how they were found."""

    text_column: str
    label_column: str
    positive_label: str | None  # None: more than two labels, no positive one
    note: str  # one line for the log


def guess_data_settings(
    path: str | Path,
    text_column: str | None = None,
    label_column: str | None = None,
    positive_label: str | None = None,
    sets: bool = False,
) -> DataGuess:
    """The text column, label column and positive label of a labelled file: those given, the rest guessed
    when unambiguous (else a DataError naming the option that settles it). ``sets``: the labels are sets
    (multilabel), so there is no positive label to guess."""
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    missing = [c for c in (text_column, label_column) if c is not None and c not in columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} not found; the file has: {', '.join(columns)}"
        )
    guessed = []
    if text_column is None:
        text_column = _guess_column(frame, columns, TEXT_NAMES, exclude=label_column, what="text")
        guessed.append(f"text column '{text_column}'")
    if label_column is None:
        label_column = _guess_column(frame, columns, LABEL_NAMES, exclude=text_column, what="label")
        guessed.append(f"label column '{label_column}'")
    cells = frame[label_column].dropna()
    sets = sets or bool(cells.map(lambda v: isinstance(v, list)).any())  # label sets: no positive label
    values = sorted(cells.map(_label_str).unique()) if not sets else []
    if positive_label is None and not sets and len(values) <= 2:
        positive_label = _guess_positive(values, label_column, path)
        guessed.append(f"positive label '{positive_label}'")
    elif positive_label is None and not sets:
        guessed.append(f"{len(values)} labels")
    note = ""
    if guessed:
        note = (
            f"data: {', '.join(guessed)}, guessed from {Path(path).name} (--text-column, --label-column and "
            "--positive-label choose)"
        )
    return DataGuess(text_column, label_column, positive_label, note)


def _guess_column(
    frame: pd.DataFrame, columns: list[str], names: tuple[str, ...], exclude: str | None, what: str
) -> str:
    others = [c for c in columns if c != exclude]
    lowered = {c.lower(): c for c in others}
    for name in names:
        if name in lowered:
            return lowered[name]
    if len(others) == 1:
        return others[0]
    if len(columns) == 2 and exclude is None:
        # two columns, neither named plainly: the text is the one with the longer cells, the label the other
        lengths = {c: frame[c].astype(str).str.len().mean() for c in columns}
        text = max(columns, key=lambda c: lengths[c])
        return text if what == "text" else next(c for c in columns if c != text)
    raise DataError(
        f"cannot tell which column holds the {what} among {', '.join(columns)}; pass --{what}-column NAME"
    )


def _guess_positive(values: list[str], label_column: str, path: str | Path) -> str:
    if len(values) < 2:
        shown = ", ".join(values[:10]) + (" ..." if len(values) > 10 else "")
        raise DataError(
            f"{path}: column '{label_column}' must hold exactly two classes, found {len(values)}: {shown}; "
            "pass the right --label-column"
        )
    plain = POSITIVE_OF.get(frozenset(v.lower() for v in values))
    if plain is None:
        raise DataError(
            f"{path}: cannot tell which of '{values[0]}' and '{values[1]}' is the positive label in column "
            f"'{label_column}'; pass --positive-label {values[1]} (or {values[0]})"
        )
    return next(v for v in values if v.lower() == plain)


def _label_str(value: object) -> str:
    # 1, 1.0 and "1" are the same label; strings are compared stripped.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value).strip()


@dataclass
class Splits:
    train: LabelledData
    val: LabelledData | None
    test: LabelledData
    label_names: list[str]  # by class index
    unlabeled: list[str] = field(default_factory=list)
    source: str = ""
    test_source: str = ""
    warnings: list[str] = field(default_factory=list)


def resolve_data_path(config: DataConfig) -> Path:
    """The labelled file: ``data.path`` when set, else the Kaggle download."""
    if config.path:
        return Path(config.path).expanduser()
    if config.kaggle_handle:
        from sentiment.download import download_dataset

        path = download_dataset(config.kaggle_handle, config.kaggle_file)
        if path.is_dir():
            files = ", ".join(p.name for p in sorted(path.iterdir())[:10])
            raise DataError(
                f"Kaggle dataset '{config.kaggle_handle}' downloaded to a folder; set data.kaggle_file to"
                f" the file to read (files: {files})"
            )
        return path
    raise DataError("no data configured: set data.path=FILE or data.kaggle_handle (and data.kaggle_file)")


def _split_indices(
    labels: np.ndarray,
    fraction: float,
    *,
    shuffle: bool,
    seed: int,
    what: str,
    groups: np.ndarray | None = None,
    names: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held_out) indices; stratified and shuffled, or the last rows held out when not shuffling;
    with ``groups``, whole groups held out (stratified as far as the groups allow)."""
    n = len(labels)
    n_out = round(n * fraction)
    if n_out < 1 or n_out >= n:
        raise DataError(f"the {what} split of {fraction:g} leaves {n_out} of {n} rows; change the split size")
    if labels.ndim == 2:  # multilabel: stratified by each row's rarest label (an approximation)
        labels, names = stratification_key(labels), None
    if groups is not None:
        return _group_split(labels, groups, fraction, seed=seed, what=what)
    if not shuffle:
        return np.arange(n - n_out), np.arange(n - n_out, n)
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels, minlength=max(2, len(names or ())))
    if counts.min() < 2:
        rare = int(np.argmin(counts))
        if len(counts) == 2:
            name = "positive" if rare == 1 else "negative"
        else:
            name = repr(names[rare]) if names and rare < len(names) else f"stratum {rare}"
        raise DataError(
            f"cannot make a stratified {what} split: only {counts.min()} {name} row(s) among {n}; each class "
            "needs at least 2 (use more data)"
        )
    try:
        keep, out = train_test_split(
            np.arange(n), test_size=n_out, stratify=labels, random_state=seed, shuffle=True
        )
    except ValueError as exc:
        raise DataError(f"cannot make a stratified {what} split: {exc}") from None
    return np.sort(keep), np.sort(out)


def stratification_key(y: np.ndarray) -> np.ndarray:
    """For label sets (rows x labels): each row's rarest label, the approximation of iterative
    stratification this splits by; a key that only one row has shares a bucket with the other such rows."""
    frequency = y.sum(axis=0)
    rarity = np.where(y == 1, frequency[None, :], np.iinfo(np.int64).max)
    key = rarity.argmin(axis=1)
    counts = np.bincount(key, minlength=y.shape[1])
    key = np.where(counts[key] < 2, y.shape[1], key)
    if (key == y.shape[1]).sum() == 1:  # a lone row in the shared bucket joins the largest stratum
        key[key == y.shape[1]] = np.bincount(key).argmax()
    return key


def _group_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, *, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """One fold of scikit-learn's StratifiedGroupKFold with round(1 / fraction) folds: every group on one
    side, the classes balanced as far as whole groups allow, about ``fraction`` of the rows held out."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = max(2, round(1 / fraction))
    n_groups = len(np.unique(groups))
    if n_groups < folds:
        raise DataError(
            f"cannot make a {what} split of {fraction:g} by data.group_column: {n_groups} group(s), it needs "
            f"at least {folds}"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    keep, out = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(keep), np.sort(out)


def _subset(data: LabelledData, idx: np.ndarray) -> LabelledData:
    groups = data.groups[idx] if data.groups is not None else None
    return LabelledData([data.texts[i] for i in idx], data.labels[idx], groups=groups)


def _check_classes(data: LabelledData, what: str, *, shuffled: bool, names: list[str]) -> None:
    if data.labels.ndim == 2:  # label sets: training must see every label once at least
        absent = [name for name, count in zip(names, data.labels.sum(axis=0), strict=True) if count == 0]
        if absent and what == "training":
            raise DataError(f"the training split has no example of label(s) {_shown(absent)}; use more data")
        return
    present = set(np.unique(data.labels).tolist())
    if present != set(range(len(names))):
        absent = [name for i, name in enumerate(names) if i not in present]
        missing = ("positive" if 1 not in present else "negative") if len(names) == 2 else _shown(absent)
        # Unshuffled splits take rows in file order, so a file sorted by label loses a class.
        fix = (
            "use more data or a larger split"
            if shuffled
            else "the rows are split in file order (data.shuffle: false); --set data.shuffle=true splits "
            "them stratified"
        )
        raise DataError(f"the {what} split has no {missing} example ({len(data.labels)} rows); {fix}")


def read_unlabeled(config: DataConfig) -> list[str]:
    if not config.unlabeled_path:
        return []
    path = Path(config.unlabeled_path).expanduser()
    frame = read_table(path)
    return unlabeled_texts(frame, unlabeled_column(config, path, list(frame.columns)))


def unlabeled_column(config: DataConfig, path: Path, columns: list) -> str:
    """The text column of ``data.unlabeled_path``: data.unlabeled_text_column, else data.text_column when the
    file has it, else the file's only column."""
    column = config.unlabeled_text_column
    if column is None:
        if config.text_column in columns:
            column = config.text_column
        elif len(columns) == 1:
            column = columns[0]
        else:
            raise DataError(
                f"{path}: set data.unlabeled_text_column; the file has columns {', '.join(map(str, columns))}"
            )
    if column not in columns:
        raise DataError(f"{path}: column '{column}' not found; the file has: {', '.join(map(str, columns))}")
    return column


def unlabeled_texts(frame: pd.DataFrame, column: str) -> list[str]:
    """The non-empty texts of ``column``."""
    texts = frame[column].dropna().astype(str)
    return texts[texts.str.strip().ne("")].tolist()


@dataclass
class SplitRows:
    """Which rows of the labelled data each split takes (sorted indices)."""

    train: np.ndarray
    val: np.ndarray | None  # None: no validation split (data.val_size 0)
    test: np.ndarray | None  # None: the test rows come from data.test_path


def split_rows(
    labels: np.ndarray,
    groups: np.ndarray | None,
    config: DataConfig,
    seed: int,
    names: list[str],
    test_labels: np.ndarray | None = None,
) -> SplitRows:
    """The seeded, stratified (or group-disjoint) train / validation / test split of rows with these labels,
    each split checked to hold every class; ``test_labels``: those of a separate test file (no test split is
    carved). Needs only the labels: out-of-core data (``sentiment.streaming``) splits the same way."""
    if test_labels is None:
        rest, test = _split_indices(
            labels,
            config.test_size,
            shuffle=config.shuffle,
            seed=seed,
            what="test",
            groups=groups,
            names=names,
        )
    else:
        rest, test = np.arange(len(labels)), None
    train, val = rest, None
    if config.val_size > 0:
        fraction = config.val_size if config.test_path else config.val_size / (1 - config.test_size)
        keep, out = _split_indices(
            labels[rest],
            fraction,
            shuffle=config.shuffle,
            seed=seed + 1,
            what="validation",
            groups=groups[rest] if groups is not None else None,
        )
        train, val = rest[keep], rest[out]
        _check_classes(LabelledData([], labels[val]), "validation", shuffled=config.shuffle, names=names)
    _check_classes(LabelledData([], labels[train]), "training", shuffled=config.shuffle, names=names)
    test_y = labels[test] if test is not None else test_labels
    _check_classes(
        LabelledData([], test_y), "test", shuffled=config.shuffle or bool(config.test_path), names=names
    )
    return SplitRows(train, val, test)


def load_splits(config: DataConfig, seed: int, path: Path | None = None) -> Splits:
    """Read the configured data (``path``: where ``resolve_data_path`` found it) and split it (seeded,
    stratified) into train / validation / test."""
    path = path or resolve_data_path(config)
    columns = [config.text_column, config.label_column]
    frame = read_table(path, [*columns, config.group_column] if config.group_column else columns)
    if config.max_rows:
        frame = frame.iloc[: config.max_rows]
    data, names = labelled_from_frame(frame, config, str(path))
    warnings = list(data.warnings)
    test_source, test = str(path), None
    if config.test_path:
        test_frame = read_table(config.test_path, columns)
        test, _ = labelled_from_frame(test_frame, config, config.test_path, label_names=names)
        warnings += test.warnings
        test_source = str(Path(config.test_path).expanduser())
    rows = split_rows(data.labels, data.groups, config, seed, names, test.labels if test else None)
    train = _subset(data, rows.train)
    val = _subset(data, rows.val) if rows.val is not None else None
    test = test if rows.test is None else _subset(data, rows.test)
    return Splits(
        train=train,
        val=val,
        test=test,
        label_names=names,
        unlabeled=read_unlabeled(config),
        source=str(path),
        test_source=test_source,
        warnings=warnings,
    )
