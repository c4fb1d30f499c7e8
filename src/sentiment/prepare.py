"""Everything before the classifier: read and split -> tokenise -> (phrases) -> Word2Vec -> (n-grams) -> token
ids of every split, with the ``TextEncoder`` that makes them.

The result depends only on the data files and the data / text / Word2Vec settings, so it is kept in the
``prepared`` cache (``sentiment.cache``): a re-run that changes only model, training or evaluation settings
loads a few arrays instead of reading, tokenising and encoding every text again. The word vectors stay in
the Word2Vec cache, referenced by key.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import cache
from sentiment.data import READING_VERSION, Splits, load_splits, resolve_data_path
from sentiment.datafiles import data_files
from sentiment.download import download_progress
from sentiment.errors import ConfigError, DataError
from sentiment.modeldir import TEST_ROWS, write_test_rows
from sentiment.ngrams import frequent_ngrams
from sentiment.parallel import PARALLEL_MIN_TEXTS, cpu_count, fork_map, split_ranges
from sentiment.phrases import apply_phrases, learn_phrases
from sentiment.prepared import SPLITS, Prepared, learn_word_vectors, log_data, with_ngrams
from sentiment.progress import Reporter
from sentiment.text import TextEncoder, TokenBags, concat_bags
from sentiment.tokenizer import TokenizerSettings, is_negation, tokenize_many
from sentiment.word2vec import load_cached_vectors, word2vec_settings

if TYPE_CHECKING:
    from sentiment.config import Config, DataConfig

log = logging.getLogger(__name__)


def prepare(config: Config, reporter: Reporter | None = None) -> Prepared:
    """The prepared splits of ``config``'s data: from the cache when every input is unchanged, else computed
    (and cached, unless ``word2vec.cache`` is false)."""
    reporter = reporter or Reporter(quiet=True)
    downloading = not config.data.path and bool(config.data.kaggle_handle)
    if downloading:
        handle = config.data.kaggle_handle
        reporter.log(f"data: Kaggle dataset {handle} (kagglehub, cached after the first download)")
    with reporter.stage("data"), download_progress(reporter) if downloading else nullcontext():
        path = resolve_data_path(config.data)  # downloads once; every later step reads this path
        streamed = streams(config.data, path)
        key = cache_key(config, path) if config.word2vec.cache and not streamed else None
        cached = _from_cache(key) if key is not None else None
        splits = load_splits(config.data, config.seed, path) if cached is None and not streamed else None
    if streamed:
        from sentiment.streaming import prepare_streamed

        reporter.log("data: out of core (data.streaming): texts and token ids stream through files on disk")
        prepared = prepare_streamed(config, path, reporter)
        _check_negation(prepared, reporter)
        return prepared
    if cached is not None:
        log_data(reporter, cached)
        reporter.log(
            f"prepared data reused from cache: {len(cached.encoder.vocab)} tokens x "
            f"{cached.vectors.shape[1]} dims (data, text and Word2Vec settings unchanged)"
        )
        _check_negation(cached, reporter)
        cached.reload = functools.partial(load_splits, config.data, config.seed, path)
        return cached
    assert splits is not None
    prepared = _compute(config, splits, reporter)
    _check_negation(prepared, reporter)
    if key is not None and prepared.word2vec_key is not None:
        # Written here, not in a forked child while training goes on: that saved 0.5 s of a 30 s run (25,000 +
        # 25,000 reviews), and a fork is unsafe once CUDA or a distributed process group is up.
        entry = _to_cache(prepared, key)
        prepared.test_rows_file = entry / TEST_ROWS if entry is not None else None
    return prepared


# Below this share of negation tokens the text has most likely had its stop words removed (raw IMDB reviews:
# 1.6 % of tokens; the tutorial's cleaned Kaggle file: none).
NEGATION_MIN_SHARE = 1e-3
NEGATION_MIN_TOKENS = 20_000  # less text says too little either way


def _check_negation(p: Prepared, reporter: Reporter) -> None:
    """Warn when the training text has (almost) no negation words: "not good" then reads as "good"."""
    words = p.encoder.vocab[: p.encoder.n_words]
    counts = p.counts[: p.encoder.n_words]
    total = int(counts.sum())
    negations = int(sum(c for w, c in zip(words, counts.tolist(), strict=True) if is_negation(w.lower())))
    if total >= NEGATION_MIN_TOKENS and negations / total < NEGATION_MIN_SHARE:
        reporter.warn(
            f"the training text has almost no negation words (not, no, never, n't: {negations / total:.2%} "
            "of tokens): were its stop words removed? A model then reads 'not good' as 'good'; train on "
            "text that keeps them"
        )


# data.streaming: auto streams data whose files take more than this on disk (compressed as they are): IMDB's
# 25,000 + 50,000 reviews (40 MB gzipped) stay in memory (peak RSS about 1.4 GB); 10 times that took 4.8 GB.
STREAMING_AUTO_BYTES = 128 << 20


def streams(data: DataConfig, data_path: Path) -> bool:
    """Whether the data goes out of core: data.streaming, or for ``auto`` the size of its files. Not with
    several ranks (torchrun): rank 0 sends the prepared data to the others in memory."""
    from sentiment import distributed

    if distributed.active():
        if data.streaming is True:
            raise ConfigError(
                "data.streaming=true does not work with several ranks (torchrun) yet: rank 0 hands the "
                "prepared data to the others in memory; set data.streaming=false"
            )
        return False
    if data.streaming != "auto":
        return bool(data.streaming)
    paths = [data_path, data.test_path, data.unlabeled_path]
    total = sum(f.stat().st_size for p in paths if p is not None for f in data_files(p))
    return total > STREAMING_AUTO_BYTES


def cache_key(config: Config, data_path: Path) -> str | None:
    """The cache key of every input of the preparation (file contents, settings); None when a file cannot
    be read, so that reading it for real reports the problem."""
    data = config.data
    paths = {"data": data_path, "test": data.test_path, "unlabeled": data.unlabeled_path}
    files: dict[str, str] = {}
    digests: dict[Path, str] = {}  # a file given twice (say, as training and test data) is read once
    for role, path in paths.items():
        if path is not None:
            try:
                shards = [f.resolve() for f in data_files(path)]  # a file, or a directory / glob of shards
                for shard in shards:
                    digests.setdefault(shard, cache.file_digest(shard))
            except (OSError, DataError):
                return None
            digest = (
                digests[shards[0]]
                if len(shards) == 1
                else cache.make_key("shards", {"shards": [[str(f), digests[f]] for f in shards]})
            )
            files[role] = digest
    inputs = {
        "reading": READING_VERSION,  # a file read differently is prepared anew, its Word2Vec entry kept
        "files": files,
        "data_path": str(data_path),
        "seed": config.seed,
        "data": data.model_dump(mode="json"),
        "text": config.text.model_dump(mode="json"),
        "word2vec": word2vec_settings(config.word2vec, config.seed),
    }
    return cache.make_key("prepared", inputs)


def _compute(config: Config, splits: Splits, reporter: Reporter) -> Prepared:
    rows = {
        "train": len(splits.train.labels),
        "validation": len(splits.val.labels) if splits.val else 0,
        "test": len(splits.test.labels),
        "unlabeled": len(splits.unlabeled),
    }
    prepared = Prepared(
        encoder=TextEncoder(TokenizerSettings.from_config(config.text), ngrams=config.text.ngrams),
        vectors=np.zeros((0, 0), np.float32),
        counts=np.zeros(0, np.int64),
        bags={},
        labels={"train": splits.train.labels, "val": splits.val.labels if splits.val else None},
        label_names=splits.label_names,
        source=splits.source,
        test_source=splits.test_source,
        rows=rows,
        warnings=splits.warnings,
        word2vec_cache_hit=False,
        test_texts=splits.test.texts,
    )
    prepared.labels["test"] = splits.test.labels
    log_data(reporter, prepared)
    train_words = _learn_vocabulary(config, splits, prepared, reporter)
    with reporter.stage("encode"):
        start = time.perf_counter()
        prepared.bags = _encode_splits(prepared.encoder, train_words, splits)
        total = sum(len(b) for b in prepared.bags.values() if b is not None)
    reporter.log(f"encode: {total:,} texts into token ids ({time.perf_counter() - start:.1f} s)")
    return prepared


def _learn_vocabulary(config: Config, splits: Splits, p: Prepared, reporter: Reporter) -> list[list[str]]:
    """Tokenise the training texts, learn phrases, Word2Vec and n-grams: fills ``p``'s encoder, vectors and
    counts; returns the training texts' words (tokenised once, reused for their ids)."""
    text, encoder = config.text, p.encoder
    with reporter.stage("tokenise"):
        train_words = _tokenize_train(splits.train.texts, encoder.settings, reporter)
    if text.phrases:
        with reporter.stage("phrases"):
            corpus = _corpus(train_words, splits.unlabeled, encoder)
            encoder.phrases = frozenset(learn_phrases(corpus, text.phrases_min_count, text.phrases_threshold))
            train_words = [apply_phrases(t, encoder.phrases) for t in train_words]
        reporter.log(f"phrases: {len(encoder.phrases)} learnt")

    # Only training (+ unlabelled) text reaches Word2Vec: validation and test text never do.
    wv = learn_word_vectors(config, _corpus(train_words, splits.unlabeled, encoder), p, reporter)
    if text.ngrams > 1:
        with reporter.stage("n-grams"):
            kept = frequent_ngrams(train_words, text.ngrams, text.ngram_min_count, text.ngram_max, wv.index())
            wv = with_ngrams(wv, kept)
        reporter.log(f"n-grams: vocabulary now {len(wv.words)} tokens (words + 2..{text.ngrams}-grams)")
    encoder.vocab, p.vectors, p.counts = wv.words, wv.vectors, wv.counts
    return train_words


def _encode_splits(
    encoder: TextEncoder, train_words: list[list[str]], splits: Splits
) -> dict[str, TokenBags | None]:
    """Token ids of every split. Validation and test texts are tokenised only now, straight into ids:
    nothing learns from them, so their tokens need neither interning nor keeping. Large splits are spread
    over forked processes (tokenising is pure Python and holds the GIL)."""
    texts = {"val": splits.val.texts if splits.val else None, "test": splits.test.texts}
    total = len(train_words) + sum(len(t) for t in texts.values() if t is not None)
    parts = cpu_count() * 2 if total >= PARALLEL_MIN_TEXTS else 1
    tasks: list[tuple[str, Callable[[], TokenBags]]] = [
        ("train", functools.partial(encoder.encode_words, train_words[lo:hi]))
        for lo, hi in split_ranges(len(train_words), parts)
    ]
    for name, split_texts in texts.items():
        if split_texts is not None:
            tasks += [
                (name, functools.partial(encoder.encode, split_texts[lo:hi]))
                for lo, hi in split_ranges(len(split_texts), parts)
            ]
    encoder.index  # noqa: B018 -- built once here, before forking, not once per worker
    encoder._ngram_tables  # noqa: B018 -- likewise (0.8 s for IMDB's 230,000 bigrams)
    done = fork_map([task for _, task in tasks]) if parts > 1 else [task() for _, task in tasks]
    bags: dict[str, TokenBags | None] = {}
    for name in SPLITS:
        pieces = [b for (owner, _), b in zip(tasks, done, strict=True) if owner == name]
        bags[name] = concat_bags(pieces) if name != "val" or splits.val else None
    return bags


def _corpus(train_words: list[list[str]], unlabeled: list[str], encoder: TextEncoder) -> Iterator[list[str]]:
    """Word2Vec's text: training words, then the unlabelled texts tokenised on the fly (never held twice)."""
    yield from train_words
    for text in unlabeled:
        yield encoder.words(text)


def _tokenize_train(texts: list[str], settings: TokenizerSettings, reporter: Reporter) -> list[list[str]]:
    """Tokens of the training texts, with a progress bar on a terminal."""
    start = time.perf_counter()
    if not reporter.live:  # one call: whatever tokenize_many does to be fast, it sees the whole split
        out = tokenize_many(texts, settings)
    else:
        chunk = max(2_000, len(texts) // 50)
        out = []
        with reporter.bar("Tokenising", len(texts)) as update:
            for i in range(0, len(texts), chunk):
                out.extend(tokenize_many(texts[i : i + chunk], settings))
                update(len(out))
    n_tokens = sum(map(len, out))
    seconds = time.perf_counter() - start
    reporter.log(f"tokenise: {len(texts):,} training texts, {n_tokens:,} tokens ({seconds:.1f} s)")
    return out


# -- the cache entry: n-gram rows and token ids as arrays; the Word2Vec rows are referenced by key --


def _to_cache(p: Prepared, key: str) -> Path | None:
    n = p.encoder.n_words
    meta: dict[str, Any] = {
        "word2vec_key": p.word2vec_key,
        "encoder": p.encoder.to_dict(),
        "extra_tokens": p.encoder.vocab[n:],
        "label_names": p.label_names,
        "source": p.source,
        "test_source": p.test_source,
        "rows": p.rows,
        "warnings": p.warnings,
    }
    arrays = {"extra_vectors": p.vectors[n:], "extra_counts": p.counts[n:]}
    for name in SPLITS:
        bags = p.bags[name]
        if bags is not None:
            arrays[f"{name}_ids"] = bags.ids.astype(np.int32)  # int32 halves the entry; vocab << 2**31
            arrays[f"{name}_offsets"] = bags.offsets
            arrays[f"{name}_labels"] = p.labels[name]
    test_rows = functools.partial(
        write_test_rows, texts=p.test_texts or [], labels=p.labels["test"], names=p.label_names
    )
    return cache.store("prepared", key, meta, arrays, {TEST_ROWS: test_rows})


def _from_cache(key: str) -> Prepared | None:
    """The cache entry ``key``, or None when it is missing, unreadable or its vectors are gone."""
    entry = cache.load("prepared", key)
    if entry is None:
        return None
    try:
        meta = entry.meta
        base = load_cached_vectors(meta["word2vec_key"])
        encoder = meta["encoder"]
        if base is None or len(base.words) != encoder["n_words"]:
            return None
        vocab = base.words + meta["extra_tokens"]
        bags: dict[str, TokenBags | None] = {}
        labels: dict[str, np.ndarray | None] = {}
        for name in SPLITS:
            if not entry.has(f"{name}_ids.npy"):
                bags[name] = labels[name] = None
                continue
            ids, offsets = entry.array(f"{name}_ids").astype(np.int64), entry.array(f"{name}_offsets")
            labels[name] = entry.array(f"{name}_labels")
            if offsets[-1] != len(ids) or len(labels[name]) != len(offsets) - 1:
                raise ValueError(f"{name} arrays disagree")
            if len(ids) and (ids.min() < 0 or ids.max() >= len(vocab)):
                raise ValueError(f"{name} ids out of range")
            bags[name] = TokenBags(ids, offsets)
        if bags["train"] is None or bags["test"] is None or not entry.has(TEST_ROWS):
            raise ValueError("incomplete entry")
        return Prepared(
            encoder=TextEncoder.from_dict(encoder, vocab),
            vectors=np.concatenate([base.vectors, entry.array("extra_vectors")]),
            counts=np.concatenate([base.counts, entry.array("extra_counts")]),
            bags=bags,
            labels=labels,
            label_names=meta["label_names"],
            source=meta["source"],
            test_source=meta["test_source"],
            rows=meta["rows"],
            warnings=meta["warnings"],
            word2vec_cache_hit=True,
            word2vec_key=meta["word2vec_key"],
            cache_hit=True,
            test_rows_file=entry.directory / TEST_ROWS,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("prepared-data cache entry %s is unreadable (%s); preparing anew", entry.directory, exc)
        cache.discard(entry.directory)
        return None
