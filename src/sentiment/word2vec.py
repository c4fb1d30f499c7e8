"""Word2Vec (gensim) on the training (+ unlabelled) text, its vectors kept in ``sentiment.cache``.

The corpus is written once to a plain text file (one tokenised text per line) and gensim trains from it with
``corpus_file``: every worker thread reads its own part of the file outside the GIL, and the token lists are
not held in memory a second time. The file's SHA-256 plus every Word2Vec setting keys the cache entry, so a
hit is impossible when the text or any setting differs.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import cache
from sentiment.parallel import cpu_count

if TYPE_CHECKING:
    from sentiment.config import Word2VecConfig

log = logging.getLogger(__name__)


@dataclass
class WordVectors:
    words: list[str]
    vectors: np.ndarray  # (vocab, dim) float32
    counts: np.ndarray  # (vocab,) corpus frequency of each word
    cache_key: str | None = None  # the Word2Vec cache entry holding these vectors, if any

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def resolve_workers(config: Word2VecConfig) -> int:
    return config.workers or cpu_count()


def _gensim_version() -> str:
    # The installed distribution's version, without importing gensim (2.4 s here): a cache hit never needs it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gensim")
    except PackageNotFoundError:
        import gensim

        return gensim.__version__


def word2vec_settings(config: Word2VecConfig, seed: int) -> dict:
    """Every input of the training besides the corpus (resolved seed and workers, gensim's version)."""
    settings = config.model_dump(exclude={"cache", "seed"})
    settings["seed"] = config.seed if config.seed is not None else seed
    settings["workers"] = resolve_workers(config)
    settings["gensim"] = _gensim_version()
    return settings


@dataclass
class Corpus:
    """The corpus file written for gensim, its SHA-256, and what gensim's vocabulary scan would count."""

    path: Path
    sha256: str
    lines: int
    counts: Counter[str]  # token -> occurrences, in first-seen order (as gensim's own scan)

    @property
    def total_words(self) -> int:
        return sum(self.counts.values())


def write_corpus(token_lists: Iterable[list[str]], path: Path) -> Corpus:
    """Write one text per line (skipping empty ones), counting the tokens on the way."""
    digest = hashlib.sha256()
    counts: Counter[str] = Counter()
    lines = 0
    with path.open("w", encoding="utf-8") as fh:
        for tokens in token_lists:
            if not tokens:
                continue
            line = " ".join(tokens) + "\n"
            fh.write(line)
            digest.update(line.encode("utf-8"))
            counts.update(tokens)
            lines += 1
    return Corpus(path, digest.hexdigest(), lines, counts)


def load_cached_vectors(key: str) -> WordVectors | None:
    """The cache entry ``key``, or None when it is missing or unreadable."""
    entry = cache.load("word2vec", key)
    if entry is None:
        return None
    try:
        words = entry.meta["words"]
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise ValueError("'words' is not a list of words")
        vectors, counts = entry.array("vectors"), entry.array("counts")
        if vectors.ndim != 2 or counts.shape != (len(words),) or vectors.shape[0] != len(words):
            raise ValueError("vocabulary and vectors disagree")
    except (OSError, ValueError, KeyError) as exc:
        log.warning("Word2Vec cache entry %s is unreadable (%s)", entry.directory, exc)
        cache.discard(entry.directory)
        return None
    return WordVectors(words, vectors, counts, cache_key=key)


def train_word2vec(
    token_lists: Iterable[list[str]],
    config: Word2VecConfig,
    seed: int,
    *,
    on_epoch: Callable[[int, int], None] | None = None,
    use_cache: bool | None = None,
) -> tuple[WordVectors, bool]:
    """Train (or fetch from the cache) word vectors; returns (vectors, cache_hit)."""
    use_cache = config.cache if use_cache is None else use_cache
    settings = word2vec_settings(config, seed)
    with tempfile.TemporaryDirectory(prefix="sentiment-w2v-") as tmp:
        corpus = write_corpus(token_lists, Path(tmp) / "corpus.txt")
        if corpus.lines == 0:
            from sentiment.errors import DataError

            raise DataError(
                "no tokens to train Word2Vec on: every training text is empty after tokenisation (text.split "
                "regex keeps letters, digits, ! and ? only: for texts of emoji or other symbols --set "
                "text.split=whitespace)"
            )
        key = cache.make_key("word2vec", {"corpus": corpus.sha256, **settings})
        cached = load_cached_vectors(key) if use_cache else None
        if cached is not None:
            log.info("Word2Vec: reusing cached vectors %s", cache.cache_dir("word2vec") / key)
            return cached, True
        wv = _train(corpus, settings, on_epoch)
    arrays = {"vectors": wv.vectors, "counts": wv.counts}
    if use_cache and cache.store("word2vec", key, {"words": wv.words}, arrays) is not None:
        wv.cache_key = key
    return wv, False


# A down-sampling threshold (an absolute count, as sample >= 1 means to gensim) no word reaches: nothing is
# dropped, exactly as with sample=0.
NEVER_DOWNSAMPLE = 1e12


def gensim_sample(sample: float, negative: int) -> float:
    """The ``sample`` to hand gensim. gensim 4.4 seeds its random stream (which draws the shrunk context
    windows) only when ``sample`` or ``negative`` is set: with both 0 (hierarchical softmax, no down-sampling)
    it reads an uninitialised seed and the vectors change from run to run and with what ran before in the
    process. A threshold that drops nothing keeps the seed set and the result the same."""
    return NEVER_DOWNSAMPLE if not sample and not negative else sample


def _train(corpus: Corpus, settings: dict, on_epoch: Callable[[int, int], None] | None) -> WordVectors:
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class _Progress(CallbackAny2Vec):
        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model: Word2Vec) -> None:
            self.epoch += 1
            if on_epoch is not None:
                on_epoch(self.epoch, settings["epochs"])

    model = Word2Vec(
        vector_size=settings["vector_size"],
        window=settings["window"],
        min_count=settings["min_count"],
        epochs=settings["epochs"],
        sg=settings["sg"],
        negative=settings["negative"],
        hs=0 if settings["negative"] > 0 else 1,
        sample=gensim_sample(settings["sample"], settings["negative"]),
        alpha=settings["alpha"],
        max_vocab_size=settings["max_vocab_size"],
        workers=settings["workers"],
        seed=settings["seed"],
    )
    if settings["max_vocab_size"] is None:
        build_vocab(model, corpus)
    else:  # gensim prunes its vocabulary while scanning: let it scan
        model.build_vocab(corpus_file=str(corpus.path))
    if len(model.wv) == 0:
        from sentiment.errors import DataError

        most = max(corpus.counts.values(), default=0)
        raise DataError(
            f"word2vec.min_count={settings['min_count']} leaves no word to train on (the most frequent word "
            f"occurs {most} times); lower it with --set word2vec.min_count=N"
        )
    model.train(
        corpus_file=str(corpus.path),
        total_examples=model.corpus_count,
        total_words=model.corpus_total_words,
        epochs=model.epochs,
        start_alpha=model.alpha,
        end_alpha=model.min_alpha,
        callbacks=[_Progress()],
    )
    words = list(model.wv.index_to_key)
    counts = np.asarray(model.wv.expandos["count"], dtype=np.int64)
    return WordVectors(words, model.wv.vectors.astype(np.float32, copy=False), counts)


def build_vocab(model: Any, corpus: Corpus) -> None:
    """What gensim's ``build_vocab(corpus_file=...)`` does for a fresh model, from the counts made while
    writing the file and with NumPy instead of Python loops per word: the same words in the same order, the
    same counts, down-sampling thresholds and negative-sampling table, hence the same vectors (a test compares
    them). gensim's loops took 6 s of a 55 s run on IMDB with min_count 1 (280,000 words).
    Settings it does not replicate (max_final_vocab, null_word) go through gensim's own code.
    """
    if model.max_final_vocab is not None or model.null_word:
        model.build_vocab_from_freq(corpus.counts, corpus_count=corpus.lines)
        model.corpus_total_words = corpus.total_words
        return
    wv = model.wv
    model.corpus_count = corpus.lines
    model.corpus_total_words = corpus.total_words
    model.effective_min_count = model.min_count
    retained = [(w, c) for w, c in corpus.counts.items() if c >= model.min_count]  # first-seen order
    wv.index_to_key = [w for w, _ in retained]
    wv.key_to_index = {w: i for i, w in enumerate(wv.index_to_key)}
    counts = np.array([c for _, c in retained], dtype=np.int64)
    retain_total = int(counts.sum())
    sample = model.sample
    if not sample:
        threshold = float(retain_total)
    elif sample < 1.0:
        threshold = sample * retain_total
    else:
        threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
    keep = (np.sqrt(counts / threshold) + 1) * (threshold / counts)  # counts >= min_count >= 1
    keep = np.where(keep < 1.0, keep, 1.0)
    wv.expandos = {"count": counts, "sample_int": (keep * (2**32 - 1)).astype(np.uint32)}
    if model.sorted_vocab:
        wv.sort_by_descending_frequency()
    if model.hs:
        model.create_binary_tree()
    if model.negative:
        _make_cum_table(model)
    model.prepare_weights(update=False)


def _make_cum_table(model: Any, domain: int = 2**31 - 1) -> None:
    # gensim's make_cum_table: powers and running sums in Python floats, added in the same order (so the same
    # rounding), then one vectorised division and rounding (round half to even, as Python's round).
    exponent = float(model.ns_exponent)
    cumulative = np.fromiter(
        accumulate(c**exponent for c in model.wv.expandos["count"].tolist()), dtype=np.float64
    )
    if len(cumulative) == 0:
        model.cum_table = np.zeros(0, dtype=np.uint32)
        return
    model.cum_table = np.rint(cumulative / cumulative[-1] * domain).astype(np.uint32)
