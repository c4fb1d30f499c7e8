"""Errors a user can fix. The CLI turns them into a one-line message and exit status 2."""

from __future__ import annotations


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
