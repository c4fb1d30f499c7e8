"""data.kaggle_handle goes through the real kagglehub.dataset_download, with no network: its cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from conftest import TINY_CONFIG, write_reviews
from sentiment.download import download_dataset
from sentiment.errors import DataError

HANDLE = "someone/small-reviews"
FILE = "reviews.csv"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Point kagglehub's API at a closed local port: every network call fails at once, as offline.
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")


def cache_version(version: int, *, complete: bool = True, n: int = 200) -> Path:
    """Lay out a dataset version the way kagglehub's cache stores it (file + completion marker)."""
    root = Path(os.environ["KAGGLEHUB_CACHE"]) / "datasets" / "someone" / "small-reviews"
    target = root / "versions" / str(version) / FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    write_reviews(target, n=n, seed=version)
    if complete:
        marker = root / ".complete" / str(version) / f"{FILE}.complete"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return target


def test_offline_uses_newest_complete_cached_version(caplog: pytest.LogCaptureFixture) -> None:
    cache_version(1)
    expected = cache_version(2)
    cache_version(3, complete=False)  # a download cut short: never used
    with caplog.at_level(logging.WARNING):
        path = download_dataset(HANDLE, FILE)
    assert path == expected
    assert "using cached version 2" in caplog.text


def test_versioned_handle_is_served_from_cache() -> None:
    expected = cache_version(1)
    assert download_dataset(f"{HANDLE}/versions/1", FILE) == expected


def test_not_cached_says_how_to_use_a_local_file() -> None:
    with pytest.raises(DataError, match=r"not in the kagglehub cache.*--set data\.path=FILE"):
        download_dataset(HANDLE, FILE)


def test_malformed_handle() -> None:
    with pytest.raises(DataError, match="not a Kaggle dataset handle"):
        download_dataset("just-a-name", FILE)


def test_train_from_kaggle_handle_through_the_cli(cli, tmp_path: Path) -> None:
    cache_version(4)
    config = tmp_path / "kaggle.yaml"
    text = TINY_CONFIG.format(output_dir=tmp_path / "runs", data="null")
    config.write_text(text.replace("  path: null\n", f"  kaggle_handle: {HANDLE}\n  kaggle_file: {FILE}\n"))
    result = cli(["train", "--config", config, "--output", tmp_path / "model"])
    assert result.exit_code == 0, result.stderr
    assert "cached version 4" in result.stderr
    assert "small-reviews/versions/4" in (tmp_path / "model" / "meta.json").read_text()
