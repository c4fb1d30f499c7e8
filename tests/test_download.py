"""data.kaggle_handle goes through the real kagglehub.dataset_download, with no network: its cache."""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path

import pytest

from conftest import TINY_CONFIG, write_reviews
from sentiment.download import download_dataset, download_progress
from sentiment.errors import DataError
from sentiment.progress import Reporter

HANDLE = "someone/small-reviews"
FILE = "reviews.csv"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Point kagglehub's API at a closed local port: every network call fails at once, as offline.
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")


def cache_version(version: int, *, complete: bool = True, n: int = 200, whole: bool = False) -> Path:
    """Lay out a dataset version the way kagglehub's cache stores it: the file and the completion marker of a
    single-file download (``dataset_download(handle, path=FILE)``), or with ``whole`` the marker of a
    whole-dataset download (``dataset_download(handle)``, the tutorial's)."""
    root = Path(os.environ["KAGGLEHUB_CACHE"]) / "datasets" / "someone" / "small-reviews"
    target = root / "versions" / str(version) / FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    write_reviews(target, n=n, seed=version)
    if complete:
        marker = (
            root / f"{version}.complete" if whole else root / ".complete" / str(version) / f"{FILE}.complete"
        )
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


@pytest.mark.parametrize("versioned", [False, True], ids=["latest", "versioned-handle"])
def test_offline_after_a_whole_dataset_download(caplog: pytest.LogCaptureFixture, versioned: bool) -> None:
    """The tutorial downloads the whole dataset: kagglehub then marks the version, not the file, complete."""
    expected = cache_version(5, whole=True)
    cache_version(6, whole=True, complete=False)  # cut short: never used
    handle = f"{HANDLE}/versions/5" if versioned else HANDLE
    with caplog.at_level(logging.WARNING):
        assert download_dataset(handle, FILE) == expected
    assert ("using cached version 5" in caplog.text) is not versioned
    with pytest.raises(DataError, match="not in the kagglehub cache"):
        download_dataset(f"{HANDLE}/versions/6", FILE)


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
    assert result.stderr.count("Kaggle is unreachable") == 1  # the dataset is looked up once per run
    assert "cached version 4" in result.stderr
    assert "small-reviews/versions/4" in (tmp_path / "model" / "meta.json").read_text()


def test_download_progress_takes_over_kagglehub_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kagglehub's tqdm bar and its stdout log lines must not reach our stdout / plain stderr."""
    import logging

    clients = pytest.importorskip("kagglehub.clients")

    class Response:  # what kagglehub's _download_file reads from a requests response
        def iter_content(self, size: int):
            yield b"x" * 1_500_000
            yield b"y" * 500_000

    stream = io.StringIO()
    original = clients.tqdm
    with download_progress(Reporter(stream=stream)):
        logging.getLogger("kagglehub").info("Downloading from https://www.kaggle.com/...")
        clients._download_file(Response(), str(tmp_path / "data.csv"), 0, 2_000_000, None)
    assert clients.tqdm is original  # restored afterwards
    assert (tmp_path / "data.csv").stat().st_size == 2_000_000
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert re.fullmatch(r"download: 2\.0 MB in \d+\.\d s\n", stream.getvalue())
