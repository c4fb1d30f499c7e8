"""Word2Vec (gensim) on the training (+ unlabelled) text, with a content-addressed cache of the vectors.

The corpus is written once to a plain text file (one tokenised text per line) and gensim trains from it with
``corpus_file``: every worker thread reads its own part of the file outside the GIL, and the token lists are
not held in memory a second time. The file's SHA-256 plus every Word2Vec setting keys the cache, so a hit is
impossible when the text or any setting differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment.paths import home_dir

if TYPE_CHECKING:
    from sentiment.config import Word2VecConfig

log = logging.getLogger(__name__)


@dataclass
class WordVectors:
    words: list[str]
    vectors: np.ndarray  # (vocab, dim) float32
    counts: np.ndarray  # (vocab,) corpus frequency of each word

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


def _settings_key(config: Word2VecConfig, seed: int) -> dict:
    settings = config.model_dump(exclude={"cache", "seed"})
    settings["seed"] = config.seed if config.seed is not None else seed
    settings["workers"] = resolve_workers(config)
    settings["gensim"] = _gensim_version()
    return settings


def write_corpus(token_lists: Iterable[list[str]], path: Path) -> tuple[str, int]:
    """Write one text per line; returns (sha256 of the file, number of lines with a token)."""
    digest = hashlib.sha256()
    lines = 0
    with path.open("w", encoding="utf-8") as fh:
        for tokens in token_lists:
            if not tokens:
                continue
            line = " ".join(tokens) + "\n"
            fh.write(line)
            digest.update(line.encode("utf-8"))
            lines += 1
    return digest.hexdigest(), lines


def cache_dir() -> Path:
    return home_dir() / "word2vec"


def save_vectors(wv: WordVectors, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(wv.words, ensure_ascii=False), encoding="utf-8")
    np.save(directory / "vectors.npy", wv.vectors, allow_pickle=False)
    np.save(directory / "counts.npy", wv.counts, allow_pickle=False)


def load_vectors(directory: Path) -> WordVectors:
    words = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
    vectors = np.load(directory / "vectors.npy", allow_pickle=False)
    counts = np.load(directory / "counts.npy", allow_pickle=False)
    if vectors.shape[0] != len(words) or counts.shape[0] != len(words):
        raise ValueError("vocabulary and vectors disagree")
    return WordVectors(words, vectors, counts)


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
    settings = _settings_key(config, seed)
    with tempfile.TemporaryDirectory(prefix="sentiment-w2v-") as tmp:
        corpus = Path(tmp) / "corpus.txt"
        digest, lines = write_corpus(token_lists, corpus)
        if lines == 0:
            from sentiment.errors import DataError

            raise DataError("no tokens to train Word2Vec on: every training text is empty after tokenisation")
        keyed = json.dumps({"corpus": digest, **settings}, sort_keys=True).encode()
        key = hashlib.sha256(keyed).hexdigest()[:32]
        target = cache_dir() / key
        if use_cache and (target / "vectors.npy").exists():
            try:
                wv = load_vectors(target)
                log.info("Word2Vec: reusing cached vectors %s", target)
                return wv, True
            except (OSError, ValueError) as exc:
                log.warning("Word2Vec cache entry %s is unreadable (%s); retraining", target, exc)
        wv = _train(corpus, settings, on_epoch)
    if use_cache:
        _store(wv, target)
    return wv, False


def _train(corpus: Path, settings: dict, on_epoch: Callable[[int, int], None] | None) -> WordVectors:
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
        corpus_file=str(corpus),
        vector_size=settings["vector_size"],
        window=settings["window"],
        min_count=settings["min_count"],
        epochs=settings["epochs"],
        sg=settings["sg"],
        negative=settings["negative"],
        hs=0 if settings["negative"] > 0 else 1,
        sample=settings["sample"],
        alpha=settings["alpha"],
        max_vocab_size=settings["max_vocab_size"],
        workers=settings["workers"],
        seed=settings["seed"],
        callbacks=[_Progress()],
    )
    words = list(model.wv.index_to_key)
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words], dtype=np.int64)
    return WordVectors(words, model.wv.vectors.astype(np.float32, copy=False), counts)


def _store(wv: WordVectors, target: Path) -> None:
    # Write under a temporary name and rename: a concurrent or interrupted run never sees half an entry.
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save_vectors(wv, tmp)
        os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("could not write the Word2Vec cache at %s: %s", target, exc)
