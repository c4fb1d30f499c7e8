"""Data larger than memory (``data.streaming``): ``sentiment.prepare``'s work, a chunk of texts at a time.

No stage holds every text. The labelled files are read once, a chunk at a time: their texts go to a spill
file on disk, their labels stay in memory (the split needs only those). The training texts are then tokenised
twice, a chunk at a time: into Word2Vec's corpus file (which gensim reads on every core) and into word ids on
disk, from which n-grams are counted and token ids made. Every split's token ids go to one memory-mapped
file, which training reads a batch at a time. Files are unlinked as soon as they are open, so nothing is left
behind, however the run ends.

The result equals the in-memory preparation's (same splits, vocabulary, vectors and token ids; a test compares
them); only where the texts and ids live differs. The prepared-data cache is not used (the Word2Vec one is).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment.arrays import ArrayWriter, release_pages
from sentiment.data import (
    LabelledData,
    SplitRows,
    labelled_from_frame,
    read_chunks,
    split_rows,
    text_cells,
    unlabeled_column,
    unlabeled_texts,
)
from sentiment.errors import DataError
from sentiment.ngrams import kept_ngrams, merge_counts, ngram_text_counts
from sentiment.paths import scratch_dir
from sentiment.phrases import apply_phrases, learn_phrases
from sentiment.prepared import SPLITS, Prepared, learn_word_vectors, log_data, with_ngrams
from sentiment.text import TextEncoder, TokenBags, token_ids
from sentiment.tokenizer import TokenizerSettings, tokenize_many

if TYPE_CHECKING:
    from sentiment.config import Config, DataConfig
    from sentiment.progress import Reporter

CHUNK_ROWS = 8192  # texts per chunk: a few MB of reviews
MERGE_ENTRIES = 1 << 22  # n-gram counts gathered from chunks before they are merged into the running total


class TextStore:
    """Texts on disk: their UTF-8 bytes back to back in an unlinked file, and where each one ends."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix="texts-", dir=directory)
        self._file = os.fdopen(fd, "w+b")
        os.unlink(name)  # the open file stays readable; its space returns when it is closed
        self._ends: list[np.ndarray] = []
        self._size = 0
        self._offsets: np.ndarray | None = None

    def append(self, texts: list[str]) -> None:
        encoded = [t.encode("utf-8") for t in texts]
        self._file.write(b"".join(encoded))
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        self._ends.append(self._size + np.cumsum(lengths))
        self._size += int(lengths.sum())
        self._offsets = None

    @property
    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = np.concatenate([np.zeros(1, np.int64), *self._ends])
        return self._offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def chunks(self, rows: np.ndarray | None = None, size: int = CHUNK_ROWS) -> Iterator[list[str]]:
        """The texts of ``rows`` (sorted; default: all), ``size`` at a time."""
        offsets = self.offsets
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        self._file.flush()
        for i in range(0, len(rows), size):
            part = rows[i : i + size]
            first = int(offsets[part[0]])
            self._file.seek(first)
            blob = self._file.read(int(offsets[part[-1] + 1]) - first)
            starts, ends = (offsets[part] - first).tolist(), (offsets[part + 1] - first).tolist()
            yield [blob[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]

    def close(self) -> None:
        self._file.close()


@dataclass
class StreamedData:
    """The labelled rows (texts on disk, labels in memory), how they split, and the unlabelled texts."""

    texts: TextStore  # the labelled rows kept (those with a text and a label), in file order
    labels: np.ndarray
    rows: SplitRows
    test_texts: TextStore | None  # data.test_path's rows, when set
    test_labels: np.ndarray | None
    unlabeled: TextStore | None
    label_names: list[str]
    source: str
    test_source: str
    warnings: list[str]

    def split_labels(self, name: str) -> np.ndarray | None:
        rows = getattr(self.rows, name)
        if name == "test" and rows is None:
            return self.test_labels
        return self.labels[rows] if rows is not None else None

    def split_texts(self, name: str) -> Iterator[list[str]]:
        rows = getattr(self.rows, name)
        if name == "test" and rows is None:
            assert self.test_texts is not None
            return self.test_texts.chunks()
        return self.texts.chunks(rows)


def read_streamed(config: DataConfig, seed: int, path: Path, work: Path) -> StreamedData:
    """Read the labelled data (and the test and unlabelled files) once, a chunk at a time, and split it as
    ``load_splits`` does."""
    texts, data, names = _read_labelled(path, config, work)
    warnings = list(data.warnings)
    test_texts, test, test_source = None, None, str(path)
    if config.test_path:
        test_texts, test, _ = _read_labelled(Path(config.test_path).expanduser(), config, work, names)
        warnings += test.warnings
        test_source = str(Path(config.test_path).expanduser())
    rows = split_rows(data.labels, data.groups, config, seed, names, test.labels if test else None)
    unlabeled = _read_unlabeled(config, work) if config.unlabeled_path else None
    return StreamedData(
        texts,
        data.labels,
        rows,
        test_texts,
        test.labels if test else None,
        unlabeled,
        names,
        str(path),
        test_source,
        warnings,
    )


def _read_labelled(
    path: Path, config: DataConfig, work: Path, label_names: list[str] | None = None
) -> tuple[TextStore, LabelledData, list[str]]:
    """Texts of the kept rows to a ``TextStore``; labels (and groups) through ``labelled_from_frame`` on the
    label columns alone, with a stand-in for each text: the same rows dropped, labels and warnings."""
    columns = [config.text_column, config.label_column]
    is_test = label_names is not None
    if config.group_column and not is_test:
        columns.append(config.group_column)
    store, frames, seen = TextStore(work), [], 0
    limit = config.max_rows if not is_test else None
    for _, chunk in read_chunks(path, columns, CHUNK_ROWS):
        if limit is not None:
            chunk = chunk.iloc[: limit - seen]
        seen += len(chunk)
        texts = text_cells(chunk[config.text_column], str(path), config.text_column)
        has_text = texts.notna() & texts.astype(str).str.strip().ne("")
        store.append(texts[has_text & chunk[config.label_column].notna()].tolist())
        if config.group_column == config.text_column and not is_test:
            frames.append(chunk)  # the texts are the groups: labelled_from_frame needs them
            continue
        light = chunk.drop(columns=[config.text_column])
        light[config.text_column] = np.where(has_text, "x", None)
        frames.append(light)
        if limit is not None and seen >= limit:
            break
    import pandas as pd

    data, names = labelled_from_frame(pd.concat(frames, ignore_index=True), config, str(path), label_names)
    if len(store) != len(data.labels):  # the same mask on both sides; a mismatch would misalign labels
        raise RuntimeError(f"{path}: {len(store)} texts kept but {len(data.labels)} labels")
    return store, data, names


def _read_unlabeled(config: DataConfig, work: Path) -> TextStore:
    assert config.unlabeled_path
    path = Path(config.unlabeled_path).expanduser()
    store, column = TextStore(work), None
    for _, chunk in read_chunks(path, None, CHUNK_ROWS):
        column = column or unlabeled_column(config, path, list(chunk.columns))
        store.append(unlabeled_texts(chunk, column, str(path)))
    return store


def prepare_streamed(config: Config, path: Path, reporter: Reporter) -> Prepared:
    """``sentiment.prepare``'s result for ``config``'s data, computed a chunk of texts at a time."""
    with tempfile.TemporaryDirectory(prefix="streaming-", dir=scratch_dir()) as tmp:
        work = Path(tmp)
        with reporter.stage("read"):  # the "data" stage found the files
            data = read_streamed(config.data, config.seed, path, work)
        labels = {name: data.split_labels(name) for name in SPLITS}
        prepared = Prepared(
            encoder=TextEncoder(TokenizerSettings.from_config(config.text), ngrams=config.text.ngrams),
            vectors=np.zeros((0, 0), np.float32),
            counts=np.zeros(0, np.int64),
            bags={},
            labels=labels,
            label_names=data.label_names,
            source=data.source,
            test_source=data.test_source,
            rows={
                "train": len(data.rows.train),
                "validation": len(data.rows.val) if data.rows.val is not None else 0,
                "test": len(labels["test"]),
                "unlabeled": len(data.unlabeled) if data.unlabeled else 0,
            },
            warnings=data.warnings,
            word2vec_cache_hit=False,
            test_rows_writer=lambda target: _write_test_rows(target, data, labels["test"]),
        )
        log_data(reporter, prepared)
        word_ids, lengths = _learn_vocabulary(config, data, prepared, work, reporter)
        with reporter.stage("encode"):
            start = time.perf_counter()
            prepared.bags = _encode(prepared.encoder, data, word_ids, lengths, work)
        total = sum(len(b) for b in prepared.bags.values() if b is not None)
        reporter.log(f"encode: {total:,} texts into token ids on disk ({time.perf_counter() - start:.1f} s)")
    return prepared


def _write_test_rows(target: Path, data: StreamedData, labels: np.ndarray) -> None:
    from sentiment.modeldir import write_test_rows

    write_test_rows(target, chain.from_iterable(data.split_texts("test")), labels, data.label_names)


def _learn_vocabulary(
    config: Config, data: StreamedData, p: Prepared, work: Path, reporter: Reporter
) -> tuple[np.ndarray, np.ndarray]:
    """Phrases, Word2Vec and n-grams, as the in-memory preparation learns them; returns the training texts'
    word ids (on disk, -1 for words Word2Vec does not know) and their lengths."""
    text, encoder = config.text, p.encoder

    def corpus() -> Iterator[list[str]]:  # training words then unlabelled ones, as prepare's _corpus
        yield from _train_words(data, encoder)
        if data.unlabeled is not None:
            for texts in data.unlabeled.chunks():
                yield from (encoder.words(t) for t in texts)

    if text.phrases:
        with reporter.stage("phrases"):
            encoder.phrases = frozenset(
                learn_phrases(corpus(), text.phrases_min_count, text.phrases_threshold)
            )
        reporter.log(f"phrases: {len(encoder.phrases)} learnt")
    wv = learn_word_vectors(config, corpus(), p, reporter)

    with reporter.stage("tokenise"):
        start = time.perf_counter()
        index, writer, lengths = wv.index(), ArrayWriter(work / "words.bin", np.int32), []
        for words in _chunked(_train_words(data, encoder), CHUNK_ROWS):
            ids, counts = token_ids(words, index)
            writer.append(ids)
            lengths.append(counts)
        word_ids, text_lengths = writer.finish(), np.concatenate(lengths)
    reporter.log(
        f"tokenise: {len(text_lengths):,} training texts, {len(word_ids):,} words "
        f"({time.perf_counter() - start:.1f} s)"
    )
    if text.ngrams > 1:
        with reporter.stage("n-grams"):
            wv = with_ngrams(wv, _frequent_ngrams(word_ids, text_lengths, index, config))
        reporter.log(f"n-grams: vocabulary now {len(wv.words)} tokens (words + 2..{text.ngrams}-grams)")
    encoder.vocab, p.vectors, p.counts = wv.words, wv.vectors, wv.counts
    return word_ids, text_lengths


def _train_words(data: StreamedData, encoder: TextEncoder) -> Iterator[list[str]]:
    """The training texts' words, tokenised a chunk at a time (phrases joined once learnt)."""
    for texts in data.split_texts("train"):
        words = tokenize_many(texts, encoder.settings)
        yield from ([apply_phrases(w, encoder.phrases) for w in words] if encoder.phrases else words)


def _chunked(items: Iterable[list[str]], size: int) -> Iterator[list[list[str]]]:
    batch: list[list[str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _word_id_chunks(word_ids: np.ndarray, lengths: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(word ids in memory, lengths) of ``CHUNK_ROWS`` texts at a time."""
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(0, len(lengths), CHUNK_ROWS):
        part = lengths[i : i + CHUNK_ROWS]
        lo, hi = int(starts[i]), int(starts[i + len(part)])
        yield np.array(word_ids[lo:hi], dtype=np.int64), part
        release_pages(word_ids)


def _frequent_ngrams(
    word_ids: np.ndarray, lengths: np.ndarray, index: dict[str, int], config: Config
) -> list[tuple[str, int]]:
    """``ngrams.frequent_ngrams`` over word ids on disk: each chunk's text counts, added up."""
    text, base = config.text, max(len(index), 1)
    if base**text.ngrams >= 2**63:
        raise DataError(
            f"text.ngrams={text.ngrams} with {len(index):,} words is beyond out-of-core n-gram counting; "
            "lower text.ngrams or raise word2vec.min_count, or set data.streaming=false"
        )
    counted = {}
    for size in range(2, text.ngrams + 1):
        total = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        for ids, part in _word_id_chunks(word_ids, lengths):
            pending.append(ngram_text_counts(ids, part, size, base))
            # Merged once the chunks' counts outgrow the running total: memory stays a small multiple of
            # the distinct n-grams, not one count array per chunk (a chunk of reviews has about a million).
            if sum(len(k) for k, _ in pending) >= max(len(total[0]), MERGE_ENTRIES):
                total, pending = merge_counts([total, *pending]), []
        counted[size] = merge_counts([total, *pending])
    return kept_ngrams(counted, index, text.ngram_min_count, text.ngram_max)


def _encode(
    encoder: TextEncoder, data: StreamedData, word_ids: np.ndarray, lengths: np.ndarray, work: Path
) -> dict[str, TokenBags | None]:
    """Token ids of every split into one file, train then validation then test: a refit's training plus
    validation rows are then one view of it (``concat_bags``)."""
    if encoder.ngrams > 1 and encoder.n_words < len(encoder.vocab) and encoder._ngram_tables is None:
        raise DataError("too large a vocabulary for out-of-core n-grams; set data.streaming=false")
    writer = ArrayWriter(work / "ids.bin", np.int32)
    spans: dict[str, tuple[int, np.ndarray]] = {}

    def add(name: str, parts: Iterable[TokenBags]) -> None:
        start, offsets = writer.length, [np.zeros(1, np.int64)]
        for bags in parts:
            offsets.append(bags.offsets[1:] + (writer.length - start))
            writer.append(bags.ids)
        spans[name] = (start, np.concatenate(offsets))

    add("train", (encoder.encode_word_ids(ids, part) for ids, part in _word_id_chunks(word_ids, lengths)))
    for name in ("val", "test"):
        if data.split_labels(name) is not None:
            add(name, (encoder.encode(texts) for texts in data.split_texts(name)))
    ids = writer.finish()
    bags: dict[str, TokenBags | None] = {"train": None, "val": None, "test": None}
    for name, (start, offsets) in spans.items():
        bags[name] = TokenBags(ids[start : start + int(offsets[-1])], offsets)
    return bags
