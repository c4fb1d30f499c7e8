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
