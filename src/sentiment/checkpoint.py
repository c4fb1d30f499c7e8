"""Training checkpoints: the state of an interrupted fit as plain data, and the signals that ask for one.

``<model dir>.checkpoint/`` sits next to the model directory and is written the same way (under a temporary
name, then moved into place in one step), so a kill at any moment leaves either the old or the new one::

    state.json           format, the run's config, a fingerprint of its training data, epoch and batch,
                         history, early-stopping counters, optimizer settings, scheduler state, RNG scalars
    tensors.safetensors  model and best weights, optimizer moments, RNG state tensors

No pickle anywhere: loading a checkpoint runs no code from it. ``sentiment train --resume`` reads it back.

Also here: ``RunCheckpoint``, which ties a run's checkpoint to its config and data, and the signal handling
that asks for a stop (``sentiment.resume`` keeps the loop itself resumable).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from reprlib import repr as _short
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment.errors import CheckpointError, DuplicateKeyError, unique_keys
from sentiment.fit_state import FitState, FitStopped

if TYPE_CHECKING:
    import torch

    from sentiment.progress import Reporter

FORMAT = "sentiment-checkpoint"
FORMAT_VERSION = 1
STATE_FILE = "state.json"
TENSORS_FILE = "tensors.safetensors"
_RESTART = "run `sentiment train` without --resume to start over"


def checkpoint_dir(target: Path) -> Path:
    """Where the checkpoint of a run that writes ``target`` lives."""
    return target.parent / f"{target.name}.checkpoint"


def fingerprint(*arrays: np.ndarray | None) -> str:
    """SHA-256 of arrays (dtype, shape, bytes): equal only for the same training data and features."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass
class Checkpoint:
    config: dict[str, Any]
    fingerprint: str
    fit: FitState


# --- writing ---


def _rng_split(rng: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Tensors of an RNG state go to ``tensors``; the JSON-able rest is returned."""
    import torch

    version, internal, gauss = rng["python"]
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    tensors[f"{prefix}/torch"] = rng["torch"]
    tensors[f"{prefix}/numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    for i, state in enumerate(rng["cuda"]):
        tensors[f"{prefix}/cuda/{i}"] = state
    if rng["loader"] is not None:
        tensors[f"{prefix}/loader"] = rng["loader"]
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, int(pos), int(has_gauss), float(cached)],
        "cuda": len(rng["cuda"]),
        "loader": rng["loader"] is not None,
    }


def save_checkpoint(path: Path, config: dict[str, Any], data_fingerprint: str, state: FitState) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the previous checkpoint, or none)."""
    from safetensors.torch import save_file

    from sentiment.atomic import atomic_dir

    loop = state.loop
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.model.items():
        tensors[f"model/{key}"] = value
    for key, value in (loop.best or {}).items():
        tensors[f"best/{key}"] = value
    optimizer_scalars: dict[str, dict[str, Any]] = {}
    for index, values in state.optimizer["state"].items():
        for name, value in values.items():
            if hasattr(value, "detach"):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                optimizer_scalars.setdefault(str(index), {})[name] = value
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "fingerprint": data_fingerprint,
        "epoch": loop.epoch,
        "batch": loop.batch,
        "total": loop.total,
        "seen": loop.seen,
        "history": [asdict(r) for r in loop.history],
        "best_score": loop.best_score,
        "best_epoch": loop.best_epoch,
        "stale": loop.stale,
        "stopped_early": loop.stopped_early,
        "finished": loop.finished,
        "has_best": loop.best is not None,
        "optimizer": {
            "param_groups": state.optimizer["param_groups"],
            "state_keys": {str(i): sorted(v) for i, v in state.optimizer["state"].items()},
            "scalars": optimizer_scalars,
        },
        "scheduler": state.scheduler,
        "rng": _rng_split(state.rng, "rng", tensors),
        "epoch_rng": _rng_split(state.epoch_rng, "epoch_rng", tensors),
    }
    # Own copies on the CPU: safetensors refuses shared storage, and the fit goes on changing live tensors.
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    with atomic_dir(path) as staging:
        (staging / STATE_FILE).write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        save_file(tensors, str(staging / TENSORS_FILE), metadata={"format": FORMAT})


def remove_checkpoint(path: Path) -> None:
    """The checkpoint, and what a run killed while writing one left beside it (its staging directory)."""
    from sentiment.atomic import remove_stale

    if path.is_symlink() or path.is_file():  # a damaged checkpoint: a file where its directory belongs
        path.unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    remove_stale(path)


# --- reading ---


def _rng_join(meta: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    version, internal, gauss = meta["python"]
    kind, pos, has_gauss, cached = meta["numpy"]
    keys = tensors[f"{prefix}/numpy_keys"].numpy().astype(np.uint32)
    return {
        "python": (int(version), tuple(int(x) for x in internal), gauss),
        "numpy": (str(kind), keys, int(pos), int(has_gauss), float(cached)),
        "torch": tensors[f"{prefix}/torch"],
        "cuda": [tensors[f"{prefix}/cuda/{i}"] for i in range(int(meta["cuda"]))],
        "loader": tensors[f"{prefix}/loader"] if meta["loader"] else None,
    }


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


MAX_STATE_BYTES = 100_000_000  # state.json: a config, a history and scalars (kilobytes)
_WEIGHTS = ("model/", "best/", "optimizer/")  # float tensors; the RNG states are bytes


def _bad_tensor(tensors: dict[str, torch.Tensor]) -> str | None:
    """What is wrong with the weights and optimizer moments of a checkpoint: not floats, or not finite."""
    import torch

    for name, tensor in tensors.items():
        if not name.startswith(_WEIGHTS):
            continue
        if not tensor.is_floating_point():
            return f"{_short(name)} holds {str(tensor.dtype).removeprefix('torch.')} values, not floats"
        if not torch.isfinite(tensor).all():
            return f"non-finite values (NaN or infinity) in {_short(name)}"
    return None


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint; anything missing, corrupted or not ours is a CheckpointError (no code is run)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from sentiment.fit_state import EpochRecord, LoopState

    if not path.is_dir():
        raise CheckpointError(f"no checkpoint to resume from at {path}; {_RESTART}")
    state = path / STATE_FILE
    if not state.is_file():  # a FIFO or a device (/dev/zero) would hang or fill the memory
        raise CheckpointError(f"{state}: missing or not a regular file; {_RESTART}")
    try:
        with state.open("rb") as fh:
            data = fh.read(MAX_STATE_BYTES + 1)
        if len(data) > MAX_STATE_BYTES:
            raise CheckpointError(f"{state}: more than {MAX_STATE_BYTES:,} bytes; {_RESTART}")
        payload = json.loads(data.decode("utf-8"), object_pairs_hook=unique_keys)
    except DuplicateKeyError as exc:
        raise CheckpointError(f"{state}: corrupted ({exc}); {_RESTART}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, or an integer of more than 4,300 digits
        raise CheckpointError(f"{state}: unreadable ({type(exc).__name__}); {_RESTART}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a sentiment training checkpoint; {_RESTART}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload.get('format_version')} is not supported by this "
            f"sentiment (expects {FORMAT_VERSION}); {_RESTART}"
        )
    try:
        tensors = load_file(str(path / TENSORS_FILE))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        where = path / TENSORS_FILE
        raise CheckpointError(f"{where}: truncated or corrupted ({reason}); {_RESTART}") from None
    bad = _bad_tensor(tensors)
    if bad:
        raise CheckpointError(f"{path / TENSORS_FILE}: {bad}; {_RESTART}")
    try:
        for name, low in (("epoch", 1), ("batch", 0), ("seen", 0), ("best_epoch", 0), ("stale", 0)):
            value = payload[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} = {_short(value)}: must be an integer >= {low}")
        opt = payload["optimizer"]
        optimizer_state: dict[int, dict[str, Any]] = {}
        for index, names in opt["state_keys"].items():
            values = {n: tensors[key] for n in names if (key := f"optimizer/{index}/{n}") in tensors}
            values.update(opt["scalars"].get(index, {}))
            optimizer_state[int(index)] = values
        groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in opt["param_groups"]]
        loop = LoopState(
            epoch=int(payload["epoch"]),
            batch=int(payload["batch"]),
            total=float(payload["total"]),
            seen=int(payload["seen"]),
            history=[EpochRecord(**r) for r in payload["history"]],
            best_score=float(payload["best_score"]),
            best_epoch=int(payload["best_epoch"]),
            stale=int(payload["stale"]),
            stopped_early=bool(payload["stopped_early"]),
            finished=bool(payload["finished"]),
            best=_section(tensors, "best/") if payload["has_best"] else None,
        )
        fit = FitState(
            loop=loop,
            model=_section(tensors, "model/"),
            optimizer={"state": optimizer_state, "param_groups": groups},
            scheduler=payload["scheduler"],
            rng=_rng_join(payload["rng"], "rng", tensors),
            epoch_rng=_rng_join(payload["epoch_rng"], "epoch_rng", tensors),
        )
        return Checkpoint(dict(payload["config"]), str(payload["fingerprint"]), fit)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{path}: incomplete checkpoint ({reason}); {_RESTART}") from None


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = sorted(set(saved) | set(current))
    out: list[str] = []
    for key in keys:
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# --- a training run's checkpoint ---


class RunCheckpoint:
    """The checkpoint of the run that writes ``target``: what ``train --resume`` continues from.

    ``open`` checks that a checkpoint to resume was made with the same config; ``check_data`` that it was
    made from the same training data and word vectors; ``save`` writes a fit state; ``remove`` clears it once
    the model directory is saved.
    """

    def __init__(self, target: Path, config: dict[str, Any], resume: bool, reporter: Reporter) -> None:
        self.target, self.path, self.config = target, checkpoint_dir(target), config
        self.saved: Checkpoint | None = None
        self._data: Callable[[], str] = str  # "" (a plain function: the object may go to other ranks)
        if resume:
            self.saved = load_checkpoint(self.path)
            changed = config_differences(self.saved.config, config)
            if changed:
                raise CheckpointError(
                    f"{self.path} was made with a different config ({'; '.join(changed[:3])}); resume with "
                    "the same config and --set options, or run without --resume to start over"
                )
            loop = self.saved.fit.loop
            where = (
                "the first fit is complete; the refit starts over"
                if loop.finished
                else f"epoch {loop.epoch}, batch {loop.batch}"
            )
            reporter.log(f"resuming from {self.path}: {where}")
        elif self.path.exists():
            reporter.warn(
                f"{self.path} holds an interrupted run; this one starts over (--resume continues it)"
            )

    @property
    def resume_state(self) -> FitState | None:
        return self.saved.fit if self.saved is not None else None

    def check_data(self, *arrays: np.ndarray | None) -> None:
        """Tie the checkpoint to the data a fit trains on (hashed only when a checkpoint needs it: hashing
        about 100 MB of arrays costs a noticeable part of a short run)."""
        self._data = functools.cache(lambda: fingerprint(*arrays))
        if self.saved is not None and self.saved.fingerprint != self._data():
            raise CheckpointError(
                f"{self.path}: the training data or word vectors differ from the interrupted run (a changed "
                "data file, or Word2Vec retrained with word2vec.workers != 1); run without --resume to start "
                "over"
            )

    def save(self, state: FitState) -> None:
        save_checkpoint(self.path, self.config, self._data(), state)

    def remove(self) -> None:
        remove_checkpoint(self.path)

    def unusable(self, reason: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {reason}; {_RESTART}")

    def interrupted(self, exc: FitStopped, signum: int | None, epochs: int) -> str:
        """The one-line message of a stop during the first fit."""
        name, kept = self._stop_context(signum)
        loop = exc.state.loop
        where = (
            f"after epoch {loop.epoch - 1}/{epochs}"
            if loop.batch == 0
            else f"in epoch {loop.epoch}/{epochs} after batch {loop.batch}/{exc.n_batches}"
        )
        best = f"best epoch so far: {loop.best_epoch}; " if loop.best_epoch else ""
        return f"training interrupted by {name} {where}; {best}state saved in {self.path}; {kept}"

    def refit_interrupted(self, signum: int | None) -> str:
        name, kept = self._stop_context(signum)
        return (
            f"training interrupted by {name} during the refit on training + validation; the finished first "
            f"fit is saved in {self.path} (a resumed run redoes only the refit); {kept}"
        )

    def _stop_context(self, signum: int | None) -> tuple[str, str]:
        """The signal's name, and what became of the model directory (an interrupted run never writes it)."""
        name = signal.Signals(signum).name if signum else "a signal"
        target = self.target
        kept = f"{target} is unchanged" if target.exists() else f"nothing was written to {target}"
        return name, kept


# --- signals ---


class StopRequest:
    """While installed, SIGINT / SIGTERM only record the signal; the training loop stops after its batch.

    A second signal raises KeyboardInterrupt at once (stop now, without a new checkpoint).
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def _handler(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        # Signal handlers can only be set from the main thread; elsewhere this is a no-op.
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, like Ctrl-C, so half-written files are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
