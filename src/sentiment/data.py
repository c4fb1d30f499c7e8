"""Data: read a local file or a Kaggle download, map labels to class indices, split into train / validation /
test. Warnings (dropped rows) are returned with the data, so a cached run can repeat them."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment.datafiles import checked_format, data_files, file_format, label_text
from sentiment.datafiles import short_repr as _short
from sentiment.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from sentiment.config import DataConfig

# Part of the prepared-data cache key: bump it when reading gives other rows, texts or labels for the same
# file. 2: labels written as whole floats ("1.0") read as "1"; UTF-16 files; cells that are no text refused.
READING_VERSION = 2


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

    fmt = checked_format(path)
    with _reading(path, fmt):
        encoding = _text_encoding(path, fmt)
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, **_csv_options(fmt, encoding))
        elif fmt == "parquet":
            frame = pd.read_parquet(_parquet_source(path), **PARQUET_OPTIONS)
        else:
            parts = list(_jsonl_chunks(path, rows=1 << 62, encoding=encoding))  # one chunk: the whole file
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

    fmt = checked_format(path)
    with ExitStack() as stack:
        with _reading(path, fmt):
            encoding = _text_encoding(path, fmt)
            if fmt in ("csv", "tsv"):
                options = _csv_options(fmt, encoding)
                chunks = stack.enter_context(pd.read_csv(path, chunksize=rows, **options))
            elif fmt == "parquet":
                chunks = _parquet_chunks(stack, path, columns, rows)
            else:
                chunks = _jsonl_chunks(path, rows, encoding)
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


# Parquet has no checksum of its own over the data; where the writer added page checksums (pyarrow's
# write_page_checksum, Spark's parquet.page.write-checksum.enabled), a damaged page is an error, not a
# silently changed text.
PARQUET_OPTIONS = {"page_checksum_verification": True}


def _parquet_chunks(
    stack: ExitStack, path: Path, columns: list[str] | None, rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    file = stack.enter_context(pq.ParquetFile(_parquet_source(path), **PARQUET_OPTIONS))
    # Only columns the file has are asked for: a missing one is reported by _selected, as read_table does.
    wanted = columns if columns and set(columns) <= set(file.schema_arrow.names) else None
    return (batch.to_pandas() for batch in file.iter_batches(batch_size=rows, columns=wanted))


# utf-8-sig: a byte-order mark (some editors write one) is dropped, as pandas already does for CSV.
JSONL_ENCODING = "utf-8-sig"
# A text file that starts with a UTF-16 or UTF-32 byte-order mark (Excel's "Unicode text", Windows tools)
# is read in that encoding; without a mark a file is UTF-8. UTF-32 first: its little-endian mark begins with
# UTF-16's.
BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
SNIFF_BYTES = 4096


def _head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the file's content (decompressed, for .gz)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.read(size)


def _text_encoding(path: Path, fmt: str) -> str:
    """The encoding to read a CSV / TSV / JSON-lines file with: UTF-16 or UTF-32 when its byte-order mark
    says so, else UTF-8. A file whose start is largely NUL bytes is not UTF-8 text: a DataError."""
    if fmt == "parquet":
        return ""
    head = _head(path)
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return encoding
    if head.count(0) > len(head) // 10:
        raise DataError(
            f"{path}: holds NUL bytes, so it is not UTF-8 text (UTF-16 without a byte-order mark, or a "
            "binary file); re-save it as UTF-8"
        )
    return JSONL_ENCODING if fmt == "jsonl" else "utf-8"


def _jsonl_chunks(path: Path, rows: int, encoding: str = JSONL_ENCODING) -> Iterator[pd.DataFrame]:
    """Frames of at most ``rows`` rows of a JSON-lines file, read by pandas; from the first integer past 64
    bits on (an id, say), which pandas' parser refuses, by Python's json module, to the same frames. A file
    that is one JSON array of objects (``[{...}, {...}]``, what ``json.dump`` of a list writes) is read
    whole, then cut into the same frames."""
    import pandas as pd

    if _head(path, 256).decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n").startswith("["):
        yield from _json_array_chunks(path, rows, encoding)
        return
    done = 0
    try:
        with pd.read_json(path, lines=True, dtype=False, encoding=encoding, chunksize=rows) as reader:
            for chunk in reader:
                done += len(chunk)
                yield chunk
        return
    except ValueError as exc:
        if "too big" not in str(exc):
            raise
    yield from _jsonl_chunks_python(path, rows, skip=done, encoding=encoding)


def _json_array_chunks(path: Path, rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    import json

    import pandas as pd

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding=encoding) as fh:
        records = json.load(fh)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(
            f'{path}: cannot parse as jsonl: a JSON array must hold objects {{"column": value}}, one per row'
        )
    for i in range(0, len(records), rows):
        yield pd.DataFrame.from_records(records[i : i + rows])


def _jsonl_chunks_python(
    path: Path, rows: int, skip: int, encoding: str = JSONL_ENCODING
) -> Iterator[pd.DataFrame]:
    import json

    import pandas as pd

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    records: list[dict] = []
    with opener(path, "rt", encoding=encoding) as fh:
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


def _csv_options(fmt: str, encoding: str = "utf-8") -> dict[str, object]:
    # Only an empty cell is missing: a review that reads "NA", "null" or "None" is text.
    return {
        "sep": "\t" if fmt == "tsv" else ",",
        "encoding": encoding,
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
    except UnicodeError as exc:
        raise DataError(_not_text(path, exc)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except TypeError:  # pandas' JSON-lines reader meets a line that is a list or a number
        if fmt != "jsonl":
            raise
        raise DataError(
            f'{path}: cannot parse as jsonl: every line must be a JSON object {{"column": value}}'
        ) from None
    except (PermissionError, IsADirectoryError) as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    except (pd.errors.ParserError, ValueError, OSError, EOFError, zlib.error) as exc:  # zlib: damaged .gz
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot parse as {fmt}: {first[:200]}") from None


def _not_text(path: Path, exc: UnicodeError) -> str:
    """The message for a file that does not decode: where the first byte that is not UTF-8 is, or, for a file
    whose byte-order mark says UTF-16 or UTF-32, that it is not that."""
    try:
        head = _head(path, 4)
    except (OSError, EOFError, zlib.error):
        head = b""
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            reason = getattr(exc, "reason", None) or str(exc)
            return (
                f"{path}: not {encoding.upper()} text, as its byte-order mark says ({reason}); re-save the "
                "file as UTF-8"
            )
    return f"{path}: not UTF-8 text ({_first_bad_utf8(path)}); re-save the file as UTF-8"


def _selected(frame: pd.DataFrame, columns: list[str] | None, path: Path) -> pd.DataFrame:
    if file_format(path) == "tsv":
        _warn_if_quotes_joined_rows(frame, path)
    if not columns:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} not found; the file has: {_columns(frame.columns)}"
        )
    return frame[list(dict.fromkeys(columns))]  # a column named twice (group = text) is taken once


def _columns(columns: Iterable[object]) -> str:
    """Column names for a message: the first 10 and how many more (a file may have thousands)."""
    names = [str(c) for c in columns]
    shown = ", ".join(names[:10])
    return shown + (f" ... ({len(names)} columns)" if len(names) > 10 else "")


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
        for number, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"line {number}, byte {offset + exc.start}: {line[exc.start : exc.start + 1]!r}"
            offset += len(line)
    return "invalid byte"


# Cells that are no text: a Parquet struct, list or map, a JSON object or list (Parquet lists arrive as
# NumPy arrays). Read as str() they would be the string "{'a': 1}", trained on as if it were a review.
NOT_TEXT = (dict, list, tuple, set, np.ndarray)


def text_cells(cells: pd.Series, source: str, column: str) -> pd.Series:
    """The cells of a text column as Python strings (numbers and booleans written out, bytes decoded as
    UTF-8), missing cells as None; a cell that holds a structure (a JSON object or list, a Parquet struct,
    list or map) or bytes that are not UTF-8 is a DataError naming the column."""
    import pandas as pd

    if not pd.api.types.is_object_dtype(cells.dtype):
        kept = cells.astype(object).where(cells.notna(), None)
        if pd.api.types.is_string_dtype(cells.dtype):
            return kept
        return kept.map(lambda v: v if v is None else str(v))
    kinds = set(map(type, cells))
    odd = [kind for kind in kinds if issubclass(kind, NOT_TEXT)]
    if odd:
        example = next(v for v in cells if isinstance(v, NOT_TEXT))
        raise DataError(
            f"{source}: column '{column}' holds {_kind_name(example)}, not text (e.g. {_short(example)}); "
            + _structure_hint(example, source, "text")
        )

    def as_text(value: object) -> str | None:
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, bytes | bytearray):
            return _utf8(value, source, column, "texts")
        return value if isinstance(value, str) else str(value)

    return cells.map(as_text)


def _utf8(value: bytes | bytearray, source: str, column: str, what: str) -> str:
    """A Parquet binary cell as text; bytes that are not UTF-8 are a DataError."""
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(
            f"{source}: column '{column}' holds bytes that are not UTF-8 text (e.g. {_short(bytes(value))}); "
            f"store the {what} as UTF-8 strings"
        ) from None


def _structure_hint(example: object, source: str, what: str) -> str:
    hint = f"name the {what} column with --{what}-column (or data.{what}_column)"
    if isinstance(example, dict) and ".json" in source.lower():  # pandas' to_json() writes columns
        return (
            "a .json file holds one object per row (JSON lines, or an array of them: pandas' "
            "to_json(orient='records', lines=True)), or " + hint
        )
    return hint


def _kind_name(value: object) -> str:
    return "objects" if isinstance(value, dict) else "lists"


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
    texts = text_cells(frame[config.text_column], source, config.text_column)
    labels = label_cells(frame[config.label_column], source, config.label_column)
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
        groups = np.array([f"\0row{i}" if _no_group(g) else str(g) for i, g in enumerate(column)])
    if is_multilabel(config, labels):
        y, names = _multilabel(labels, config, source, label_names, warnings)
        return LabelledData(texts.tolist(), y, warnings, groups), names
    label_str = labels.map(label_text)
    if config.label_map:
        label_str = label_str.map(lambda value: config.label_map.get(value, value))
    classes = sorted(label_str.unique())
    if label_names is not None:  # a trained model's data: its labels are fixed
        spelling = _known_spelling(classes, label_names, source, warnings)
        if spelling:
            label_str = label_str.map(lambda value: spelling.get(value, value))
            classes = sorted(label_str.unique())
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
    return LabelledData(texts.tolist(), y, warnings, groups), names


def _no_group(value: object) -> bool:
    """A group cell that names no group: missing (None, NaN, pandas' NA) or blank."""
    if value is None or value is getattr(np, "NaN", None):
        return True
    if isinstance(value, str):
        return not value.strip()
    import pandas as pd

    return value is pd.NA or value is pd.NaT or (isinstance(value, float | np.floating) and value != value)


def label_cells(cells: pd.Series, source: str, column: str) -> pd.Series:
    """The cells of a label column: a label (a string, number or boolean; bytes decoded as UTF-8) or, for
    label sets, a list (a Parquet list arrives as a NumPy array: made a list). A JSON object or a Parquet
    struct or map is a DataError naming the column."""
    import pandas as pd

    if not pd.api.types.is_object_dtype(cells.dtype):
        return cells
    kinds = set(map(type, cells))
    if not any(issubclass(kind, (*NOT_TEXT, bytes, bytearray)) for kind in kinds):
        return cells
    bad = next((v for v in cells if isinstance(v, dict | tuple | set)), None)
    if bad is None:  # a Parquet map arrives as a list of (key, value) pairs
        bad = next((v for v in cells if isinstance(v, list | np.ndarray) and _holds_pairs(v)), None)
    if bad is not None:
        raise DataError(
            f"{source}: column '{column}' holds {_kind_name(bad)}, not labels (e.g. {_short(bad)}); "
            + _structure_hint(bad, source, "label")
        )

    def as_label(value: object) -> object:
        if isinstance(value, np.ndarray):
            return [as_label(item) for item in value.tolist()]
        if isinstance(value, bytes | bytearray):
            return _utf8(value, source, column, "labels")
        return value

    return cells.map(as_label)


def _holds_pairs(value: object) -> bool:
    items = value.tolist() if isinstance(value, np.ndarray) else value
    return any(isinstance(item, tuple | dict | list) for item in items)


def _known_spelling(classes: list[str], known: list[str], source: str, warnings: list[str]) -> dict[str, str]:
    """For data read against fixed labels (a model's, or the training file's for data.test_path): each value
    that is none of them but equals exactly one of them once letter case is set aside (``POSITIVE`` for
    ``positive``; a CSV's ``True`` for a JSON file's ``true``) -> that label, with a warning naming them."""
    by_key: dict[str, list[str]] = {}
    for name in known:
        by_key.setdefault(name.casefold(), []).append(name)
    spelling = {}
    for value in classes:
        if value in known:
            continue
        match = by_key.get(value.casefold(), [])
        if len(match) == 1:
            spelling[value] = match[0]
    if spelling:
        pairs = ", ".join(f"{a!r} as {b!r}" for a, b in list(spelling.items())[:10])
        warnings.append(f"{source}: read label(s) {pairs} (they differ from the known labels only in case)")
    return spelling


def is_multilabel(config: DataConfig, labels: pd.Series) -> bool:
    """``data.task: multilabel``, or ``auto`` with a label separator set or cells that hold lists (JSON)."""
    if config.task != "auto":
        return config.task == "multilabel"
    return config.label_separator is not None or bool(labels.map(lambda v: isinstance(v, list)).any())


def _multilabel(
    labels: pd.Series,
    config: DataConfig,
    source: str,
    label_names: list[str] | None,
    warnings: list[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """A 0/1 matrix (rows x labels) from cells holding a set of labels: split at ``data.label_separator``, or
    a JSON list; each label mapped by ``data.label_map``."""
    separator = config.label_separator
    sets: list[list[str]] = []
    for number, cell in enumerate(labels, 1):
        items = cell if isinstance(cell, list) else str(cell).split(separator) if separator else [cell]
        nested = next((item for item in items if isinstance(item, NOT_TEXT)), None)
        if nested is not None:
            raise DataError(
                f"{source}: row {number} of column '{config.label_column}' holds {_short(nested)} in its "
                "label set; a label set is a list of label names"
            )
        names = [label_text(item) for item in items]
        names = [config.label_map.get(n, n) if config.label_map else n for n in names if n != ""]
        if not names:
            raise DataError(
                f"{source}: row {number} has an empty label set in column '{config.label_column}'"
            )
        sets.append(names)
    seen = sorted({name for row in sets for name in row})
    if label_names is not None:
        spelling = _known_spelling(seen, label_names, source, warnings if warnings is not None else [])
        if spelling:
            sets = [[spelling.get(name, name) for name in row] for row in sets]
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
    """Values for a message: the first 10, each cut to 60 characters (a label column may hold long texts)."""
    cut = [v if len(v) <= 60 else v[:57] + "..." for v in map(str, values[:10])]
    return ", ".join(cut) + (" ..." if len(values) > 10 else "")


def _and(values: list[str]) -> str:
    return ", ".join(values[:-1]) + f" and {values[-1]}" if len(values) > 1 else values[0]


def _binary_names(classes: list[str], config: DataConfig, source: str) -> list[str]:
    positive = config.positive_label
    alike = [c for c in classes if c.casefold() == positive.casefold()]
    if positive not in classes and len(alike) == 1:  # --positive-label positive for a file of Positive
        positive = alike[0]
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
    frame, differ = _guessing_frame(path, [c for c in (text_column, label_column) if c is not None])
    columns = [str(c) for c in frame.columns]
    missing = [c for c in (text_column, label_column) if c is not None and c not in columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} not found; the file has: {_columns(columns)}"
        )
    guessed = []
    try:
        if text_column is None:
            text_column = _guess_column(frame, columns, TEXT_NAMES, label_column, "text", path)
            guessed.append(f"text column '{text_column}'")
        if label_column is None:
            label_column = _guess_column(frame, columns, LABEL_NAMES, text_column, "label", path)
            guessed.append(f"label column '{label_column}'")
    except DataError as exc:
        raise DataError(f"{exc}{differ}") from None
    cells = label_cells(frame[label_column], str(path), label_column).dropna()
    sets = sets or bool(cells.map(lambda v: isinstance(v, list)).any())  # label sets: no positive label
    values = sorted(cells.map(label_text).unique()) if not sets else []
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


def _guessing_frame(path: str | Path, given: list[str]) -> tuple[pd.DataFrame, str]:
    """The data to guess settings from: every shard's rows, in the columns every shard has (a column
    ``given`` that a shard lacks is a DataError naming that shard); and, when the shards' columns differ, a
    note saying how, for a failed guess's message ('' when they agree)."""
    import pandas as pd

    files = data_files(path)
    frames = [_read_file(file, None) for file in files]
    for file, frame in zip(files, frames, strict=True):
        missing = [c for c in given if c not in frame.columns]
        if missing and len(files) > 1:
            raise DataError(
                f"{file}: column(s) {', '.join(missing)} not found; the file has: {_columns(frame.columns)}"
            )
    first = frames[0]
    common = [c for c in first.columns if all(c in frame.columns for frame in frames[1:])]
    odd = next((i for i, f in enumerate(frames) if set(f.columns) != set(first.columns)), None)
    differ = ""
    if odd is not None:
        differ = (
            f" (the files' columns differ: {files[0].name} has {_columns(first.columns)}; "
            f"{files[odd].name} has {_columns(frames[odd].columns)})"
        )
    if len(frames) == 1:
        return first, differ
    if differ and len(common) < 2:
        raise DataError(f"{path}: {differ.strip(' ()')}; give every file the same text and label columns")
    return pd.concat([frame[common] for frame in frames], ignore_index=True), differ


def _guess_column(
    frame: pd.DataFrame,
    columns: list[str],
    names: tuple[str, ...],
    exclude: str | None,
    what: str,
    path: str | Path,
) -> str:
    others = [c for c in columns if c != exclude]
    if not others:
        raise DataError(
            f"{path}: the file has a single column ({_columns(columns)}); labelled data needs a text column "
            "and a label column"
        )
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
        f"cannot tell which column holds the {what} among {_columns(columns)}; pass --{what}-column NAME"
    )


def _guess_positive(values: list[str], label_column: str, path: str | Path) -> str:
    if not values:
        raise DataError(
            f"{path}: column '{label_column}' holds no labels (every cell is empty); pass the right "
            "--label-column"
        )
    if len(values) < 2:
        raise DataError(
            f"{path}: column '{label_column}' must hold exactly two classes, found {len(values)}: "
            f"{_shown(values)}; pass the right --label-column"
        )
    plain = POSITIVE_OF.get(frozenset(v.lower() for v in values))
    if plain is None:
        first, second = _shown(values[:1]), _shown(values[1:2])
        raise DataError(
            f"{path}: cannot tell which of '{first}' and '{second}' is the positive label in column "
            f"'{label_column}'; pass --positive-label {second} (or {first})"
        )
    return next(v for v in values if v.lower() == plain)


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
    n_classes = len(np.unique(labels))
    if min(n_out, n - n_out) < n_classes:
        # stratified, each side needs a row of every class (scikit-learn's own message names test_size)
        side = "held out" if n_out < n - n_out else "left"
        raise DataError(
            f"cannot make a stratified {what} split of {fraction:g}: {min(n_out, n - n_out)} of {n} rows "
            f"{side}, fewer than the {n_classes} classes; use more data or a larger split"
        )
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
    return unlabeled_texts(frame, unlabeled_column(config, path, list(frame.columns)), str(path))


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
                f"{path}: set data.unlabeled_text_column; the file has columns {_columns(columns)}"
            )
    if column not in columns:
        raise DataError(f"{path}: column '{column}' not found; the file has: {_columns(columns)}")
    return column


def unlabeled_texts(frame: pd.DataFrame, column: str, source: str = "") -> list[str]:
    """The non-empty texts of ``column`` (``text_cells``: a column of objects or lists is a DataError)."""
    texts = text_cells(frame[column], source, column).dropna()
    return [t for t in texts.tolist() if t.strip()]


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
