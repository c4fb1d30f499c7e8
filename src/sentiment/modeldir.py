"""The model directory: plain data only (JSON, YAML, CSV, safetensors), written atomically.

Layout::

    config.yaml         the resolved config of the run (reproduce it with `sentiment train --config`)
    meta.json           format version, labels, threshold, tokeniser and phrases, features, data sources
    vocab.json          the vocabulary, in row order of the embedding matrix
    model.safetensors   word vectors, optional word weights / feature scaling, MLP weights
    metrics.json        test metrics;  history.csv: per-epoch losses and validation metrics
    test.jsonl.gz       the test rows (text, label) so `sentiment eval` can re-evaluate
    *.png               plots of the run

No pickle anywhere: loading a model directory runs no code from it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.errors import ModelDirError

FORMAT = "sentiment-model"
FORMAT_VERSION = 1
REQUIRED_FILES = ("meta.json", "vocab.json", "model.safetensors")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(target: Path) -> None:
    """Remove what a killed run left next to ``target`` (its staging or .old directory): never in place."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)


def new_staging_dir(target: Path) -> Path:
    """An empty sibling directory to write a model into before it is moved into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    return staging


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def commit_dir(staging: Path, target: Path) -> None:
    """Move a fully written staging directory to ``target``, replacing any previous model atomically."""
    for path in staging.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
    if not target.exists():
        os.rename(staging, target)
    elif target.is_dir() and _rename_exchange(staging, target):
        shutil.rmtree(staging)  # now holds the previous model
    else:
        # Fallback: two renames; the previous model stays on disk (as .old) until the new one is in place.
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    from safetensors.numpy import save

    # Bytes written by us, not safetensors.save_file, whose file is private (0600) whatever the umask says:
    # a model directory should be as readable as the other files beside it.
    path.write_bytes(save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.__class__.__name__
        raise ModelDirError(f"{path}: corrupted ({reason}); retrain or re-download the model") from None


def check_model_dir(model_dir: Path) -> dict[str, Any]:
    """Validate the directory's presence, files and format; returns meta.json."""
    if not model_dir.exists():
        raise ModelDirError(
            f"model directory not found: {model_dir}; pass --model DIR of a trained model "
            "or run `sentiment train`"
        )
    if not model_dir.is_dir():
        raise ModelDirError(f"not a model directory: {model_dir}; pass --model DIR of a trained model")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelDirError(
            f"{model_dir}: missing {', '.join(missing)}; it is not a complete model directory (retrain it)"
        )
    meta = _read_json(model_dir / "meta.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelDirError(f"{model_dir}/meta.json: not a sentiment model (format field missing)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(
            f"{model_dir}: model format version {version} is not supported by this sentiment "
            f"(expects {FORMAT_VERSION}); retrain it with this version"
        )
    return meta


def load_vocab(model_dir: Path) -> list[str]:
    vocab = _read_json(model_dir / "vocab.json")
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise ModelDirError(f"{model_dir}/vocab.json: expected a JSON list of words")
    return vocab


def load_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """Read model.safetensors; a pickle, a truncated or a corrupted file is refused, running nothing."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = model_dir / "model.safetensors"
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        with path.open("rb") as fh:
            head = fh.read(4)
        # A pickle (protocol 2+ starts with 0x80) or torch.save's zip of pickles: never unpickled here.
        is_pickle = head[:1] == b"\x80" or head == b"PK\x03\x04"
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        if is_pickle:
            what = f"{path}: weights are a pickle (refused: loading it could run code)"
        else:
            what = f"{path}: weights are truncated or corrupted ({reason})"
        raise ModelDirError(f"{what}; retrain or re-download the model") from None
