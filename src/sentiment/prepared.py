"""The prepared data: what preparation produces, in memory (``sentiment.prepare``) or out of core
(``sentiment.streaming``) alike, and the steps both take the same way (the Word2Vec stage, the n-gram rows,
the data log line). Features, datasets and the pipeline read a ``Prepared``, whichever way it was made.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import logging
import shutil
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment import cache
from sentiment.modeldir import write_test_rows
from sentiment.ngrams import ngram_vectors
from sentiment.progress import Reporter
from sentiment.text import TextEncoder, TokenBags
from sentiment.word2vec import WordVectors, train_word2vec

if TYPE_CHECKING:
    from sentiment.config import Config
    from sentiment.data import Splits

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class Prepared:
    """Token-id bags and labels of each split, the encoder that made them and its tokens' starting vectors."""

    encoder: TextEncoder
    vectors: np.ndarray  # (vocab, dim): Word2Vec's, then each n-gram's mean of its words'
    counts: np.ndarray  # (vocab,): corpus counts (n-grams: number of training texts)
    bags: dict[str, TokenBags | None]  # train / val / test
    labels: dict[str, np.ndarray | None]
    label_names: list[str]  # by class index
    source: str
    test_source: str
    rows: dict[str, int]  # train, validation, test, unlabeled
    warnings: list[str]  # the data's (dropped rows ...), repeated on a cache hit
    word2vec_cache_hit: bool
    word2vec_key: str | None = None  # the Word2Vec cache entry holding vectors[:encoder.n_words]
    cache_hit: bool = False
    test_texts: list[str] | None = None  # None when loaded from the cache: the rows are in test_rows_file
    test_rows_file: Path | None = None
    reload: Callable[[], Splits] | None = None  # reads the data again: the cache may be deleted mid-run
    test_rows_writer: Callable[[Path], None] | None = None  # out-of-core data: streams the test rows

    def write_test_rows(self, path: Path) -> None:
        """The test split as JSON lines (text, label), for ``sentiment eval`` of the saved model."""
        if self.test_rows_writer is not None:
            self.test_rows_writer(path)
            return
        if self.test_rows_file is not None and _copy_test_rows(
            self.test_rows_file, path, len(self.labels["test"])
        ):
            return
        if (
            self.test_texts is None and self.reload is not None
        ):  # the cache entry went away or was damaged: read the data again
            self.test_texts = self.reload().test.texts
        if self.test_texts is None:
            raise FileNotFoundError(f"the cached test rows are gone: {self.test_rows_file}")
        write_test_rows(path, self.test_texts, self.labels["test"], self.label_names)


def _copy_test_rows(cached: Path, path: Path, rows: int) -> bool:
    """Copy the cached test rows to ``path`` if they are whole: a gzip stream that decompresses (its checksum
    checked) to ``rows`` lines. False when the entry was deleted or damaged since it was read (truncated,
    overwritten, made a directory): copied blindly, that would save a model ``sentiment eval`` cannot read."""
    try:
        shutil.copyfile(cached, path)
        with gzip.open(path, "rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(functools.partial(fh.read, 1 << 20), b""))
        reason = "" if lines == rows else f"{lines:,} rows, not {rows:,}"
    except FileNotFoundError:  # the cache was deleted: nothing to report
        reason = "gone"
    except (OSError, EOFError, zlib.error) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    if not reason:
        return True
    path.unlink(missing_ok=True)
    if reason != "gone":
        cache.discard(cached.parent)
        log.warning(
            "prepared-data cache entry %s has damaged test rows (%s); reading them from the data",
            cached.parent,
            reason,
        )
    return False


def log_data(reporter: Reporter, p: Prepared) -> None:
    for message in p.warnings:
        log.warning("%s", message)
    rows = p.rows
    reporter.log(
        f"data: {rows['train']} train / {rows['validation']} validation / {rows['test']} test rows from "
        f"{p.source}" + (f"; {rows['unlabeled']} unlabelled texts" if rows["unlabeled"] else "")
    )


def with_ngrams(wv: WordVectors, kept: list[tuple[str, int]]) -> WordVectors:
    """Word vectors plus the kept n-grams (``frequent_ngrams``), each starting as the mean of its words'."""
    grams = [g for g, _ in kept]
    return WordVectors(
        wv.words + grams,
        np.concatenate([wv.vectors, ngram_vectors(grams, wv.index(), wv.vectors)]),
        np.concatenate([wv.counts, np.array([c for _, c in kept], dtype=wv.counts.dtype)]),
        cache_key=wv.cache_key,
    )


def learn_word_vectors(
    config: Config, corpus: Iterable[list[str]], p: Prepared, reporter: Reporter
) -> WordVectors:
    """The Word2Vec stage on ``corpus`` (training words, then unlabelled ones), with a bar and a log line;
    sets ``p``'s Word2Vec fields and its encoder's number of words."""
    w2v = config.word2vec
    with reporter.stage("word2vec"), on_word2vec_epoch(reporter, w2v.epochs) as on_epoch:
        wv, p.word2vec_cache_hit = train_word2vec(corpus, w2v, config.seed, on_epoch=on_epoch)
    kind = (
        "reused from cache"
        if p.word2vec_cache_hit
        else f"{'skip-gram' if w2v.sg else 'CBOW'}, {w2v.epochs} epochs"
    )
    reporter.log(f"word2vec: {len(wv.words)} words x {wv.vectors.shape[1]} dims ({kind})")
    p.word2vec_key, p.encoder.n_words = wv.cache_key, len(wv.words)
    return wv


@contextlib.contextmanager
def on_word2vec_epoch(reporter: Reporter, epochs: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over Word2Vec's epochs and a log line per epoch with its time."""
    with reporter.bar("Word2Vec epochs", epochs) as update:
        last = [time.perf_counter()]

        def on_epoch(done: int, total: int) -> None:
            update(done)
            now = time.perf_counter()
            reporter.step(f"word2vec epoch {done:>3}/{total}  ({now - last[0]:.1f} s)")  # this epoch's time
            last[0] = now

        yield on_epoch
