"""Dataset download through kagglehub, with an offline fallback to kagglehub's own cache.

kagglehub needs the network to resolve an unversioned handle (``owner/slug``) even when the files are cached.
When Kaggle cannot be reached we look for the newest *complete* cached version and ask kagglehub for that
versioned handle (``owner/slug/versions/N``), which it serves from the cache without the network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentiment.errors import DataError

if TYPE_CHECKING:
    from sentiment.progress import Reporter, Updater

log = logging.getLogger(__name__)

_HANDLE = re.compile(r"^(?P<owner>[\w.-]+)/(?P<slug>[\w.-]+)(?:/versions/(?P<version>\d+))?$")


def kagglehub_cache_root() -> Path:
    # Same rule as kagglehub.config.get_cache_folder, without importing kagglehub.
    return Path(os.environ.get("KAGGLEHUB_CACHE", Path.home() / ".cache" / "kagglehub"))


def parse_handle(handle: str) -> tuple[str, str, int | None]:
    match = _HANDLE.match(handle.strip())
    if not match:
        raise DataError(
            f"data.kaggle_handle '{handle}' is not a Kaggle dataset handle (expected owner/slug or "
            "owner/slug/versions/N)"
        )
    version = match["version"]
    return match["owner"], match["slug"], int(version) if version else None


def cached_versions(handle: str, file: str | None) -> list[tuple[int, bool]]:
    """Versions of a dataset that kagglehub's cache holds completely, newest first, each with whether only
    the whole-dataset download holds it (else ``file`` was downloaded by itself).

    kagglehub writes a completion marker only once a download has finished:
    ``.complete/<version>/<file>.complete`` after a single-file download (``dataset_download(handle,
    path=file)``), ``<version>.complete`` beside ``versions/<version>/`` after a whole-dataset one
    (``dataset_download(handle)``, as the tutorial does).
    """
    owner, slug, _ = parse_handle(handle)
    base = kagglehub_cache_root() / "datasets" / owner / slug
    versions = []
    for entry in (base / "versions").glob("*") if (base / "versions").is_dir() else []:
        if not entry.name.isdigit() or not (entry / file if file else entry).exists():
            continue
        single = bool(file) and (base / ".complete" / entry.name / f"{file}.complete").exists()
        whole = (base / f"{entry.name}.complete").exists()
        if single or whole:
            versions.append((int(entry.name), not single))
    return sorted(versions, reverse=True)


def _not_found_message(handle: str, file: str | None, reason: str) -> str:
    return (
        f"cannot download Kaggle dataset '{handle}' ({reason}) and it is not in the kagglehub cache "
        f"({kagglehub_cache_root()}); download it where Kaggle is reachable, or point at a local file with "
        "--set data.path=FILE"
    )


def download_dataset(handle: str, file: str | None = None) -> Path:
    """Path of ``file`` (or of the dataset folder) of a Kaggle dataset, downloading it when needed."""
    import kagglehub  # heavy-ish; only the download path needs it

    parse_handle(handle)
    try:
        path = Path(kagglehub.dataset_download(handle, path=file))
    except Exception as exc:  # kagglehub raises requests, HTTP and its own errors alike
        reason = _short_reason(exc)
        if _is_not_found(exc):
            raise DataError(
                f"Kaggle dataset '{handle}' (file {file!r}) does not exist ({reason}); check "
                "data.kaggle_handle (owner/slug, as in the dataset's URL) and data.kaggle_file"
            ) from None
        path = _from_cache(handle, file, reason)
    if not path.exists():
        raise DataError(f"kagglehub returned {path}, which does not exist")
    return path


def _from_cache(handle: str, file: str | None, reason: str) -> Path:
    """Kaggle cannot be reached: the newest complete cached version (the handle's own, when versioned),
    asked of kagglehub by its versioned handle, which it serves from the cache without the network."""
    import kagglehub

    owner, slug, version = parse_handle(handle)
    versions = [(n, whole) for n, whole in cached_versions(handle, file) if version in (None, n)]
    if not versions:
        raise DataError(_not_found_message(handle, file, reason))
    number, whole = versions[0]
    if version is None:
        log.warning("Kaggle is unreachable (%s); using cached version %d of %s", reason, number, handle)
    versioned = f"{owner}/{slug}/versions/{number}"
    try:
        if whole and file:  # the whole dataset is cached: kagglehub knows no marker for the file alone
            return Path(kagglehub.dataset_download(versioned)) / file
        return Path(kagglehub.dataset_download(versioned, path=file))
    except Exception as exc:
        raise DataError(_not_found_message(handle, file, _short_reason(exc))) from None


def _is_not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status == 404 or (type(exc).__name__ == "KaggleApiHTTPError" and "404" in str(exc))


def _short_reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "NameResolutionError" in text or "Failed to resolve" in text or "Max retries exceeded" in text:
        return "no network connection"
    if "IncompleteRead" in text or "Connection broken" in text or "ChunkedEncoding" in type(exc).__name__:
        return "the download was cut short"  # kagglehub left no completion marker: the part is never used
    if _is_not_found(exc):
        return "404 Not Found"
    return f"{type(exc).__name__}: {text[:160]}"


@contextlib.contextmanager
def download_progress(reporter: Reporter) -> Iterator[None]:
    """Route kagglehub's download progress and log lines through ``reporter`` while a download runs.

    kagglehub draws tqdm bars and logs to *stdout*, which would mix control codes into our results: its
    bars become a rich bar here (nothing without a terminal) and its log lines go to stderr.
    """
    try:
        import kagglehub.clients as clients
    except ImportError:
        yield
        return
    kaggle_log = logging.getLogger("kagglehub")
    saved_handlers, saved_level = kaggle_log.handlers[:], kaggle_log.level
    kaggle_log.handlers[:] = [reporter.logging_handler()]
    kaggle_log.setLevel(logging.INFO if reporter.verbose else logging.WARNING)
    original = getattr(clients, "tqdm", None)

    class _Bytes:
        """The part of tqdm's interface kagglehub uses for a file download."""

        def __init__(self, total: int | None = None, initial: int = 0, **_: Any) -> None:
            self.total, self.done, self.start = total, initial, time.perf_counter()
            self._stack = contextlib.ExitStack()
            self._update: Updater = lambda *args, **kwargs: None

        def __enter__(self) -> _Bytes:
            self._update = self._stack.enter_context(reporter.bar("Downloading", self.total, kind="bytes"))
            self._update(self.done)
            return self

        def update(self, n: int = 1) -> None:
            self.done += n
            self._update(self.done)

        def __exit__(self, *exc: object) -> None:
            self._stack.close()
            seconds = time.perf_counter() - self.start
            reporter.log(f"download: {self.done / 1e6:.1f} MB in {seconds:.1f} s")

    if original is not None:
        clients.tqdm = _Bytes
    try:
        yield
    finally:
        if original is not None:
            clients.tqdm = original
        kaggle_log.handlers[:] = saved_handlers
        kaggle_log.setLevel(saved_level)
