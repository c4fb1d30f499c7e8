"""Data files before any parsing: which files a data path names (a file, or a directory or glob of shards),
their format by suffix, and the checks reading makes first; and how a label cell reads as a label name.

Config validation (``sentiment.config``) uses these as reading does (``sentiment.data``), so a bad path or an
unsupported file fails at ``config validate`` with the same message as at ``train``.
"""

from __future__ import annotations

import errno
import glob
import os
import re
from pathlib import Path

import numpy as np

from sentiment.errors import DataError

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
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise DataError(f"{short_repr(text)}: {exc.strerror}; give a shorter path") from None
        # a directory on the way that cannot be read or searched (permissions)
        raise DataError(f"{plain}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if any(c in text for c in GLOB_CHARS):
        # glob.glob skips what it cannot read; a file it finds but cannot stat is reported when it is read
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


def checked_format(path: Path) -> str:
    """The file's format, after the checks made before parsing (train, and config validate alike): a
    supported suffix, a regular file that can be opened, not empty."""
    fmt = file_format(path)
    try:
        regular = not path.exists() or path.is_file()
        if regular:
            with open(path, "rb") as fh:  # opened, not stat'ed: permissions (and ACLs) decide
                empty = not fh.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if not regular:
        # A FIFO or a device has no size (it was "the file is empty"), and training reads its data file more
        # than once (the cache key hashes it first): a pipe would be empty, or block, the second time.
        raise DataError(f"{path} is not a regular file (a pipe?); save the table to a file and pass that")
    if empty:
        raise DataError(f"{path}: the file is empty")
    return fmt


# A whole number written as a float ("1.0", "-2.00"): what pandas writes for a label column of floats
_INTEGRAL_FLOAT = re.compile(r"[+-]?[0-9]+\.0+")


def label_text(value: object) -> str:
    """A label cell as the label's name. 1, 1.0, "1" and "1.0" are the same label (a number column written
    to CSV by pandas reads "1.0"); strings are compared stripped of surrounding white space; booleans are
    "true" and "false". Letter case is kept: "Positive" and "positive" are two labels as written (training
    warns of them; data read against known labels maps a unique case-insensitive match, _known_spelling)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    if _INTEGRAL_FLOAT.fullmatch(text):
        return str(int(text.split(".")[0]))
    return text


def short_repr(value: object) -> str:
    """A value cut short for a one-line message (40 characters, 3 items, 2 levels)."""
    from reprlib import Repr

    short = Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = 40, 40, 3, 3, 2
    return short.repr(value.tolist() if isinstance(value, np.ndarray) else value)
