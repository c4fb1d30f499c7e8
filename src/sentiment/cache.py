"""Content-addressed caches under ``$SENTIMENT_HOME``: ``word2vec/`` (trained vectors) and ``prepared/`` (each
split's token ids and labels). Apart from the stages: they hand in a key's inputs, arrays and a meta record.

An entry is a directory of ``.npy`` arrays (no pickle), a ``meta.json`` and extra files, written atomically.
Its key is the SHA-256 of its inputs and ``CACHE_VERSION``: bump the version whenever the code changes what
an entry holds for the same inputs (tokenising, encoding, Word2Vec set-up), so old entries are never read.
A cache is an optimisation: an entry that cannot be read or written is a warning, never a failed run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.atomic import atomic_dir, remove_stale
from sentiment.paths import home_dir

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: keys carry this number instead of the source of the modules that compute an entry


def cache_dir(kind: str) -> Path:
    return home_dir() / kind


def file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def make_key(kind: str, inputs: dict[str, Any]) -> str:
    """The entry name for ``inputs`` (JSON-able): equal only for equal inputs and cache version."""
    keyed = json.dumps({"kind": kind, "cache_version": CACHE_VERSION, **inputs}, sort_keys=True)
    return hashlib.sha256(keyed.encode()).hexdigest()[:32]


@dataclass
class Entry:
    directory: Path
    meta: dict[str, Any]

    def array(self, name: str) -> np.ndarray:
        """The array ``name``; an unreadable file is an OSError or ValueError (the callers' cache miss)."""
        try:
            return np.load(self.directory / f"{name}.npy", allow_pickle=False)
        except EOFError:  # a 0-byte file (numpy's error for it)
            raise ValueError(f"{name}.npy is empty") from None

    def has(self, name: str) -> bool:
        return (self.directory / name).exists()


def load(kind: str, key: str) -> Entry | None:
    """The entry, or None when it is missing or not of this cache version."""
    directory = cache_dir(kind) / key
    _sweep(directory)  # a run that only reads the cache cleans up too
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s cache entry %s is unreadable (%s)", kind, directory, exc)
        discard(directory)
        return None
    if not isinstance(meta, dict) or meta.get("cache_version") != CACHE_VERSION:
        return None
    return Entry(directory, meta)


def _sweep(entry: Path) -> None:
    """Remove what runs killed while storing any entry of ``entry``'s cache left (staging directories)."""
    with contextlib.suppress(OSError):
        remove_stale(entry, every_name=True)


def discard(directory: Path) -> None:
    """Remove an entry found unreadable, so that the run computing it again can store it anew (``store`` keeps
    an entry that exists: a damaged one stayed for good). Moved aside first: no reader sees it half gone."""
    aside = directory.parent / f".{directory.name}.old-{os.getpid()}"
    try:
        os.rename(directory, aside)
    except OSError:  # gone already, or another run moved it
        return
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


def store(
    kind: str,
    key: str,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    files: dict[str, Callable[[Path], None]] | None = None,
) -> Path | None:
    """Write an entry (arrays, meta.json, and each ``files`` writer given its path); its directory, or None
    when it could not be written. An entry another run wrote meanwhile is kept: it holds the same content."""
    target = cache_dir(kind) / key
    try:
        _sweep(target)
        with atomic_dir(target, keep_existing=True) as tmp:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            for name, write in (files or {}).items():
                write(tmp / name)
            meta = {**meta, "cache_version": CACHE_VERSION}
            (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    except Exception as exc:
        log.warning("could not write the %s cache at %s: %s", kind, target, exc)
        return None
    return target
