"""Where sentiment keeps its state: the Word2Vec cache and the pointer to the last trained model.

``$SENTIMENT_HOME`` when set, else ``$XDG_CACHE_HOME/sentiment``, else ``~/.cache/sentiment``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sentiment.errors import ModelDirError


def home_dir() -> Path:
    if os.environ.get("SENTIMENT_HOME"):
        return Path(os.environ["SENTIMENT_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sentiment"


def scratch_dir() -> Path:
    """Where out-of-core data keeps its working files (on disk with the caches: /tmp may be memory). Its files
    are unlinked as soon as they are open, so nothing accumulates there."""
    path = home_dir() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def last_model_file() -> Path:
    return home_dir() / "last_model"


def remember_last_model(model_dir: Path) -> None:
    """Record ``model_dir`` as the model `eval` and `predict` use by default. Best effort: the model is saved
    by now, and a state directory that vanished or became a file meanwhile must not fail the run."""
    import logging

    from sentiment.atomic import write_atomic

    try:
        write_atomic(last_model_file(), str(model_dir.resolve()) + "\n")
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "could not record %s as the last model in %s (%s); pass --model to use it",
            model_dir,
            last_model_file(),
            exc.strerror or exc,
        )


def resolve_model_dir(model: str | Path | None) -> Path:
    """``--model`` when given, else the directory the last ``train`` wrote."""
    if model is not None:
        return Path(model).expanduser()
    pointer = last_model_file()
    if not pointer.exists():
        raise ModelDirError(
            f"no model given and no trained model recorded in {pointer}; "
            "run `sentiment train` or pass --model DIR"
        )
    try:
        recorded = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ModelDirError(
            f"{pointer}: the record of the last model cannot be read ({reason}); pass --model DIR or run "
            "`sentiment train`"
        ) from None
    if not recorded or "\n" in recorded or "\0" in recorded:
        raise ModelDirError(f"{pointer}: not a model path; pass --model DIR or run `sentiment train`")
    return Path(recorded)
