"""Batch prediction over many files (shards): one output shard per input shard, in the input's row order.

``engine="local"`` scores the shards one after another in this process; ``engine="dask"`` spreads them over
a Dask cluster (dask.distributed): the one at ``scheduler``, or a LocalCluster of ``workers`` processes. Each
Dask worker loads the model once (a worker plugin) and scores whole shards, so a shard's output is exactly
what ``sentiment predict --file SHARD --output FILE`` writes for it.

The model directory and the shards are passed by path: on a cluster of several machines every worker must see
them at the same paths (a shared filesystem), and the output directory too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment.datafiles import data_files
from sentiment.errors import DataError, SentimentError

if TYPE_CHECKING:
    from sentiment.predictor import Predictor

ENGINES = ("local", "dask")
PLUGIN = "sentiment-model"


@dataclass
class ShardsResult:
    shards: int
    texts: int
    seconds: float
    outputs: list[Path]

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


def is_shard_pattern(file: str | Path) -> bool:
    """A directory or a glob names shards; a plain file path does not."""
    text = str(file)
    return any(c in text for c in "*?[") or Path(text).is_dir()


def output_paths(shards: list[Path], output_dir: Path) -> list[Path]:
    """``<output_dir>/<shard name without its suffixes>.csv`` for each shard; two shards may not share one."""
    outputs = [output_dir / f"{shard.name.split('.')[0]}.csv" for shard in shards]
    seen: dict[Path, Path] = {}
    for shard, out in zip(shards, outputs, strict=True):
        if out in seen:
            raise DataError(f"{seen[out]} and {shard} would both write {out}: rename one of them")
        seen[out] = shard
    return outputs


def score_shard(predictor: Predictor, shard: Path, output: Path, text_column: str | None) -> int:
    """Predict every row of one shard and write its CSV (as ``predict --file --output`` does)."""
    from sentiment.report import read_text_table, write_predictions_csv

    table, texts = read_text_table(shard, text_column or predictor.text_column)
    write_predictions_csv(output, predictor.predict(texts), table)
    return len(texts)


def _model_plugin(model_dir: str) -> object:
    from distributed import WorkerPlugin

    class ModelPlugin(WorkerPlugin):
        """Loads the model once per worker process, when the worker joins."""

        name = PLUGIN

        def __init__(self, model_dir: str) -> None:
            self.model_dir = model_dir
            self.predictor = None

        def setup(self, worker: object) -> None:
            from sentiment.predictor import Predictor

            self.predictor = Predictor.load(self.model_dir)

    return ModelPlugin(model_dir)


def _score_on_worker(shard: str, output: str, text_column: str | None) -> int:
    from distributed import get_worker

    predictor = get_worker().plugins[PLUGIN].predictor
    return score_shard(predictor, Path(shard), Path(output), text_column)


def predict_shards(
    model_dir: Path,
    pattern: str | Path,
    output_dir: Path,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    text_column: str | None = None,
) -> ShardsResult:
    """Score every shard ``pattern`` names into ``output_dir`` (created); returns counts and wall time."""
    from sentiment.predictor import Predictor

    if engine not in ENGINES:
        raise SentimentError(f"--engine {engine}: use one of {', '.join(ENGINES)}")
    shards = data_files(pattern)
    if output_dir.exists() and not output_dir.is_dir():
        raise SentimentError(f"--output {output_dir} is a file; with many input files it must be a directory")
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = output_paths(shards, output_dir)
    predictor = Predictor.load(model_dir)  # checks the model here, before any worker starts
    start = time.perf_counter()
    if engine == "local":
        texts = sum(score_shard(predictor, s, o, text_column) for s, o in zip(shards, outputs, strict=True))
    else:
        texts = _on_dask(model_dir, shards, outputs, scheduler, workers, text_column)
    return ShardsResult(len(shards), texts, time.perf_counter() - start, outputs)


def _on_dask(
    model_dir: Path,
    shards: list[Path],
    outputs: list[Path],
    scheduler: str | None,
    workers: int | None,
    text_column: str | None,
) -> int:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SentimentError("--engine dask needs dask.distributed: pip install 'sentiment[dask]'") from None
    from contextlib import ExitStack

    from sentiment.parallel import cpu_count

    with ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers or cpu_count(),
                    threads_per_worker=1,  # scoring holds the GIL (tokenising): processes, not threads
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                # dask's own connect timeout (distributed.comm.timeouts.connect, 30 s unless configured)
                client = stack.enter_context(Client(scheduler))
            except OSError as exc:
                raise SentimentError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        client.register_plugin(_model_plugin(str(Path(model_dir).resolve())))
        futures = client.map(
            _score_on_worker,
            [str(s.resolve()) for s in shards],
            [str(o.resolve()) for o in outputs],
            [text_column] * len(shards),
            pure=False,
        )
        return sum(client.gather(futures))
