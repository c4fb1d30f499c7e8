"""Training on several processes with PyTorch's DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m sentiment train ...`` starts N processes ("ranks") with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` in their environment. ``pipeline.train``
then runs inside ``process_group``; everything else here is a no-op in a plain one-process run, which stays
bit for bit what it was:

* rank 0 alone prepares the data (Word2Vec included) and checks the output path and the checkpoint; the
  other ranks get its results (``share``), so the preparation runs once whether or not the nodes share a
  filesystem;
* every global batch of the one-process run is split between the ranks in its order (``ShardedBatches``),
  and the loss is scaled so that DDP's average of the ranks' gradients is the global batch's mean gradient
  (``global_batch_loss``): the trained model equals a one-process run with the same ``training.batch_size``;
* validation, training-accuracy and test rows are split in contiguous ranges (``RowShard``) and the
  predictions gathered back in row order (``gather_rows``): every rank computes the same metrics from all
  rows;
* a stop (SIGINT / SIGTERM) on any rank stops every rank after the same batch (``agreed``); only rank 0
  writes checkpoints, the model directory and progress (``is_main``).

No state is kept here beyond what ``torch.distributed`` holds itself.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from sentiment.errors import ConfigError, RankFailure

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch.utils.data import BatchSampler

    from sentiment.progress import Reporter

T = TypeVar("T")

TIMEOUT_ENV = "SENTIMENT_DIST_TIMEOUT"  # seconds a collective may wait for the other ranks
DEFAULT_TIMEOUT = 1800  # torch's own default for gloo; rank 0 prepares the data while the others wait


# --- where this process stands ---


def launched() -> bool:
    """True in a process torchrun started as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0, or a plain one-process run (also before the process group is up: torchrun's ``RANK``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def active() -> bool:
    return world_size() > 1


# --- the process group ---


def timeout_seconds() -> int:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: give the seconds a rank waits for the others (>= 1)")
    return value


@contextlib.contextmanager
def process_group(device_spec: str) -> Iterator[None]:
    """Inside torchrun with several ranks: the default process group (NCCL for CUDA, else gloo) for the
    block, torn down after it; a failure of another rank becomes ``RankFailure``. Elsewhere: nothing."""
    if not launched():
        yield
        return
    import torch
    import torch.distributed as dist

    from sentiment.runtime import resolve_device

    device = resolve_device(device_spec)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(seconds=timeout_seconds())
    dist.init_process_group(backend, timeout=timeout)
    try:
        yield
    except (dist.DistError, RuntimeError) as exc:
        if not _is_peer_failure(exc):
            raise
        raise RankFailure(
            f"distributed training stopped on rank {dist.get_rank()} of {dist.get_world_size()}: another "
            f"rank failed, was killed or did not answer within {timeout_seconds()} s ({_reason(exc)})"
        ) from None
    finally:
        dist.destroy_process_group()


def _reason(exc: BaseException) -> str:
    """The first sentence of a gloo / NCCL error, without the source file it names."""
    import re

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", text)
    return text.split(". ")[0][:160]


def _is_peer_failure(exc: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("gloo", "connection closed", "connection reset", "timed out", "nccl"))


def describe() -> str:
    """``; rank R of N (backend)`` in a distributed run, else nothing (for the device line)."""
    if not active():
        return ""
    import torch.distributed as dist

    return f"; {world_size()} ranks, this is rank {rank()} ({dist.get_backend()})"


def rank_device(device: torch.device) -> torch.device:
    """A rank's own GPU (``LOCAL_RANK``) when training on CUDA with several ranks."""
    import torch

    if active() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model DDP-wrapped (its parameters broadcast from rank 0, gradients all-reduced in backward)."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


# --- launching ---

NPROC_ENV = "SENTIMENT_NPROC"  # set by ``train --nproc N`` for its ranks: the command to resume names it


def launch(nproc: int, argv: list[str]) -> int:
    """``sentiment <argv>`` on ``nproc`` ranks of this machine through torchrun (``torch.distributed.run``,
    ``--standalone``); the exit status of rank 0 (or of the first rank that failed). The ranks print their own
    messages; torchrun's failure report is left out (``--debug`` keeps it)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    os.environ[NPROC_ENV] = str(nproc)
    # torchrun's default is 1 thread per rank; share the machine's cores instead (fine-tuning uses them)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // nproc)))
    if "--debug" not in argv:
        logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc_per_node={nproc}", "--module", "sentiment", *argv]
    )
    try:
        run(args)
    except ChildFailedError as exc:
        failures = exc.failures
        first = failures.get(0) or failures[min(failures)]
        return first.exitcode if first.exitcode >= 0 else 128 - first.exitcode
    except SignalException as exc:  # Ctrl-C or SIGTERM to the launcher: the ranks got it too and stopped
        return 128 + int(exc.sigval)
    return 0


def command_line(argv: list[str]) -> list[str]:
    """The command that runs ``sentiment <argv>`` the way this process was started (for a resume line)."""
    if not launched():
        return ["sentiment", *argv]
    if os.environ.get(NPROC_ENV):
        return ["sentiment", *argv[:1], "--nproc", os.environ[NPROC_ENV], *argv[1:]]
    world, local = (
        int(os.environ["WORLD_SIZE"]),
        int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])),
    )
    if world == local:
        return ["torchrun", "--standalone", f"--nproc_per_node={local}", "-m", "sentiment", *argv]
    nodes = [f"--nnodes={world // local}", f"--nproc_per_node={local}", "--rdzv-endpoint=HOST:PORT"]
    return ["torchrun", *nodes, "-m", "sentiment", *argv]


# --- doing a thing once ---


def share(make: Callable[[], T]) -> T:
    """``make()`` on rank 0, its result sent to every rank (pickled through the process group: only rank 0
    reads files, downloads or trains Word2Vec). A ``SentimentError`` there is raised on rank 0 and ends the
    other ranks quietly with exit status 2 (rank 0 prints the one line)."""
    if not active():
        return make()
    import torch.distributed as dist

    from sentiment.errors import SentimentError

    payload: list[Any] = [None, None]
    if is_main():
        try:
            payload[0] = make()
        except SentimentError as exc:
            payload[1] = str(exc)
            dist.broadcast_object_list(payload, src=0)
            raise
    dist.broadcast_object_list(payload, src=0)
    if payload[1] is not None:
        raise SystemExit(2)
    return payload[0]


def main_only(action: Callable[..., Any]) -> Callable[..., Any]:
    """``action`` on rank 0; a no-op on the others (checkpoints and files are written once)."""
    if is_main():
        return action
    return lambda *args, **kwargs: None


def rank_reporter(reporter: Reporter) -> Reporter:
    """The reporter on rank 0; a silent one on the other ranks (progress and warnings are printed once)."""
    if is_main():
        return reporter
    from sentiment.progress import Reporter

    return Reporter(quiet=True, stream=io.StringIO(), live=False)


# --- agreeing ---


def agreed(flag: Callable[[], bool]) -> Callable[[], bool]:
    """``flag`` for all ranks at once: true on every rank when it is true on any (a stop request that
    reached one rank stops them all after the same batch). Every rank must poll it at the same points."""
    if not active():
        return flag

    def any_rank() -> bool:
        import torch
        import torch.distributed as dist

        value = torch.tensor([1.0 if flag() else 0.0])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    return any_rank


def global_batch_loss(loss: torch.Tensor, weight: float, rows: int) -> tuple[torch.Tensor, float, int]:
    """This rank's loss scaled for DDP, and the global batch's loss and rows (what the progress shows).

    ``loss`` is the mean over this rank's part of a global batch with denominator ``weight`` (its rows, or
    the sum of its rows' class weights for weighted cross-entropy). DDP averages gradients over the ranks,
    so ``loss * weight / global_weight * world_size`` gives the gradient of the global batch's mean, also
    when the batch splits unevenly (or leaves a rank nothing: weight 0).
    """
    import torch
    import torch.distributed as dist

    value = float(loss.detach()) * weight if weight else 0.0
    sums = torch.tensor([weight, value, float(rows)], dtype=torch.float64)
    dist.all_reduce(sums)
    total_weight, total_loss, total_rows = sums.tolist()
    scaled = loss * (weight * world_size() / total_weight)
    return scaled, total_loss / total_weight, int(total_rows)


# --- splitting the rows ---


def split_sizes(n: int, parts: int) -> list[int]:
    """``n`` rows in ``parts`` contiguous pieces, the first ``n % parts`` one row longer (as numpy's
    array_split)."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def piece(rows: list[int], index: int, parts: int) -> list[int]:
    sizes = split_sizes(len(rows), parts)
    start = sum(sizes[:index])
    return rows[start : start + sizes[index]]


class ShardedBatches:
    """Rank ``rank``'s part of every batch of a one-process batch sampler: the same batches in the same
    order (drawn from the same seeded generator on every rank), each cut into ``world`` contiguous pieces.
    Every row of an epoch goes to exactly one rank, and no rank is padded with repeated rows (unlike
    ``DistributedSampler``); a rank whose piece of a small last batch is empty gets an empty batch, so that
    all ranks step together."""

    def __init__(self, batches: BatchSampler, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world
        self.sampler = batches.sampler  # where resume.loader_generator finds the generator of the order

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield piece(list(batch), self.rank, self.world)

    def __len__(self) -> int:
        return len(self.batches)


class RowShard:
    """Batches of rank ``rank``'s contiguous range of ``n`` rows, in order (for predictions that
    ``gather_rows`` joins back). A rank with no rows gets one empty batch: its predictions have the right
    shape, zero rows."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int) -> None:
        self.rows = piece(list(range(n)), rank, world)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        if not self.rows:
            yield []
        for start in range(0, len(self.rows), self.batch_size):
            yield self.rows[start : start + self.batch_size]

    def __len__(self) -> int:
        return max(1, -(-len(self.rows) // self.batch_size))


def shard_batches(batches: BatchSampler, n: int, shuffle: bool) -> Any:
    """The sampler a rank's loader uses: ``batches`` itself in a one-process run."""
    if not active():
        return batches
    if shuffle:
        return ShardedBatches(batches, rank(), world_size())
    return RowShard(n, batches.batch_size, rank(), world_size())


def gather_rows(array: np.ndarray, loader: Any) -> np.ndarray:
    """Every rank's rows of a ``RowShard`` loader's predictions, joined in row order (on every rank)."""
    if not isinstance(getattr(loader, "sampler", None), RowShard):
        return array
    import numpy as np
    import torch.distributed as dist

    pieces: list[Any] = [None] * world_size()
    dist.all_gather_object(pieces, array)
    return np.concatenate(pieces)


def spread_dropout(base_seed: int, epoch: int) -> None:
    """Ranks other than 0 draw their random numbers (dropout masks) from a stream of their own each epoch:
    from one seed, every rank would mask its rows the same way. Rank 0 keeps the one-process stream."""
    if not active() or rank() == 0:
        return
    import torch

    torch.manual_seed(base_seed * 1_000_003 + rank() * 10_007 + epoch)
