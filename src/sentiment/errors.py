"""Errors a user can fix. The CLI turns them into a one-line message and exit status 2."""

from __future__ import annotations

from collections.abc import Collection
from reprlib import repr as _short
from typing import Any


class SentimentError(Exception):
    """Bad input: a config, data file, model directory or command-line value the user can correct."""


class ConfigError(SentimentError):
    """The configuration is invalid."""


class DataError(SentimentError):
    """A data file or dataset cannot be used."""


class ModelDirError(SentimentError):
    """A model directory is missing, incomplete, corrupted or unsafe."""


class CheckpointError(SentimentError):
    """A training checkpoint is missing, unreadable or belongs to a different run."""


class RankFailure(Exception):
    """Distributed training: another rank failed, was killed or stopped answering. Not bad input (exit 1)."""


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT / SIGTERM; the state to resume from is in ``checkpoint``. Not bad input."""

    def __init__(self, message: str, checkpoint: object, signum: int) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint  # pathlib.Path of the checkpoint directory
        self.signum = signum


def check_record_keys(
    raw: object, what: str, allowed: Collection[str], required: Collection[str] = ()
) -> None:
    """A settings record a saved model (or cache entry) holds: a dict with the ``required`` keys and no key
    outside ``allowed`` (a setting this version would ignore, behaving unlike the run that saved it). A
    ValueError that starts with the key otherwise (``stem: unknown setting ...``)."""
    if not isinstance(raw, dict):
        raise TypeError(f"{what} must be a dict, not {type(raw).__name__}")
    missing = [key for key in required if key not in raw]
    if missing:
        raise ValueError(f"{missing[0]}: missing")
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        raise ValueError(f"{unknown[0][:80]}: unknown setting (a newer sentiment's model?)")


class DuplicateKeyError(ValueError):
    """A JSON object names a key twice: which value was meant is a guess (json.loads keeps the last)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for json.loads of a file we wrote: an object with a key given twice is damage."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise DuplicateKeyError(f"key {_short(twice)} given twice")
    return out
