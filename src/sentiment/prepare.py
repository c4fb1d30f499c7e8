"""Everything before the classifier, cached: read and split -> tokenise -> (phrases) -> Word2Vec -> (n-grams)
-> token-id bags.

The result depends only on the data files and the data / text / Word2Vec settings, so it is stored in
``$SENTIMENT_HOME/prepared/<key>``, the key being the SHA-256 of the files' bytes, those settings and the
source of the modules that compute it. A re-run that changes only model, training or evaluation settings
then loads a few arrays instead of reading, tokenising and encoding every text again. Entries are plain
``.npy`` and JSON files (no pickle); the word vectors stay in the Word2Vec cache, referenced by key.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment.dataset import load_splits, resolve_data_path
from sentiment.ngrams import add_ngrams, frequent_ngrams, ngram_vectors
from sentiment.parallel import PARALLEL_MIN_TEXTS, can_fork, cpu_count, fork_map, split_ranges
from sentiment.paths import home_dir
from sentiment.phrases import apply_phrases, learn_phrases
from sentiment.pooling import TokenBags, concat_bags, encode, encode_texts
from sentiment.progress import Reporter
from sentiment.tokenizer import TokenizerSettings, tokenize, tokenize_many
from sentiment.word2vec import WordVectors, load_cached_vectors, train_word2vec, word2vec_settings

if TYPE_CHECKING:
    from sentiment.config import Config

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
TEST_ROWS = "test.jsonl.gz"
_SPLITS = ("train", "val", "test")


@dataclass
class Prepared:
    """Token-id bags and labels of each split, with the vocabulary (word vectors) they index."""

    wv: WordVectors
    bags: dict[str, TokenBags | None]  # train / val / test
    labels: dict[str, np.ndarray | None]
    tokenizer: TokenizerSettings
    phrases: list[str]
    negative_label: str
    positive_label: str
    source: str
    test_source: str
    rows: dict[str, int]  # train, validation, test, unlabeled
    word2vec_cache_hit: bool
    word2vec_words: int = 0  # wv.words[:word2vec_words] are Word2Vec's; the rest are n-grams
    cache_hit: bool = False
    test_texts: list[str] | None = None  # None when loaded from the cache: the rows are in test_rows_file
    test_rows_file: Path | None = None
    warnings: list[str] = field(default_factory=list)  # the data loader's, repeated on a cache hit

    _storing: _Background | None = field(default=None, repr=False)

    def wait_stored(self) -> None:
        """Wait for a cache entry being written in the background (``prepare(..., background=True)``)."""
        if self._storing is not None:
            self.test_rows_file = self._storing.wait()
            self._storing = None

    def write_test_rows(self, path: Path) -> None:
        """The test split as JSON lines (text, label), for ``sentiment eval`` of the saved model."""
        self.wait_stored()
        if self.test_rows_file is not None and self.test_rows_file.exists():
            shutil.copyfile(self.test_rows_file, path)
            return
        if self.test_texts is None:
            raise FileNotFoundError(f"the cached test rows are gone: {self.test_rows_file}")
        names = (self.negative_label, self.positive_label)
        write_test_rows(path, self.test_texts, self.labels["test"], names)


def write_test_rows(path: Path, texts: list[str], labels: np.ndarray, names: tuple[str, str]) -> None:
    # JSON lines: any text (newlines, quotes, megabytes) round-trips exactly.
    encoder = json.JSONEncoder(ensure_ascii=False).encode
    label_json = [encoder(name) for name in names]
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        fh.writelines(
            f'{{"text": {encoder(text)}, "label": {label_json[int(y)]}}}\n'
            for text, y in zip(texts, labels, strict=True)
        )


def cache_dir() -> Path:
    return home_dir() / "prepared"


def _file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _code_digest() -> str:
    """The source of the modules that compute the prepared arrays: a changed tokeniser is a cache miss."""
    import sentiment.dataset
    import sentiment.ngrams
    import sentiment.phrases
    import sentiment.pooling
    import sentiment.tokenizer

    digest = hashlib.sha256()
    modules = (sentiment.dataset, sentiment.ngrams, sentiment.phrases, sentiment.pooling, sentiment.tokenizer)
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def cache_key(config: Config, data_path: Path) -> str | None:
    """SHA-256 of every input of the preparation (file contents, settings, code); None when a file cannot be
    read, so that reading it for real reports the problem."""
    data = config.data
    paths = {"data": data_path, "test": data.test_path, "unlabeled": data.unlabeled_path}
    files: dict[str, str] = {}
    digests: dict[Path, str] = {}  # a file given twice (say, as training and test data) is read once
    for role, path in paths.items():
        if path is not None:
            resolved = Path(path).expanduser().resolve()
            try:
                files[role] = digests.get(resolved) or digests.setdefault(resolved, _file_digest(resolved))
            except OSError:
                return None
    keyed = {
        "format": CACHE_FORMAT,
        "code": _code_digest(),
        "files": files,
        "data_path": str(data_path),
        "seed": config.seed,
        "data": data.model_dump(mode="json"),
        "text": config.text.model_dump(mode="json"),
        "word2vec": word2vec_settings(config.word2vec, config.seed),
    }
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:32]


def prepare(config: Config, reporter: Reporter | None = None, *, background: bool = False) -> Prepared:
    """The prepared splits of ``config``'s data: from the cache when every input is unchanged, else computed
    (and cached, unless ``word2vec.cache`` is false).

    ``background=True`` writes the new cache entry in a forked process while the caller goes on to train;
    ``Prepared.wait_stored`` waits for it, and so does the exit.
    """
    reporter = reporter or Reporter(quiet=True)
    downloading = not config.data.path and bool(config.data.kaggle_handle)
    if downloading:
        handle = config.data.kaggle_handle
        reporter.log(f"data: Kaggle dataset {handle} (kagglehub, cached after the first download)")
    key = None
    if config.word2vec.cache:
        with reporter.stage("data"), reporter.download_progress() if downloading else nullcontext():
            key = cache_key(config, resolve_data_path(config.data))
            cached = _load(cache_dir() / key) if key is not None else None
        if cached is not None:
            _log_data(reporter, cached)
            reporter.log(
                f"prepared data reused from cache: {len(cached.wv.words)} tokens x "
                f"{cached.wv.vectors.shape[1]} dims (data, text and Word2Vec settings unchanged)"
            )
            return cached
    prepared = _compute(config, reporter, downloading and key is None)
    if key is not None:
        target = cache_dir() / key
        if background and can_fork():
            prepared._storing = _Background(lambda: _store(prepared, target), target / TEST_ROWS)
        else:
            prepared.test_rows_file = _store(prepared, target)
    return prepared


class _Background:
    """Runs ``work`` in a forked child: the entry is written on another core while this process trains, with
    no GIL to share (a thread slowed a 2-second training by 0.8 s). ``wait`` returns ``result`` when the
    child succeeded, else None; the exit waits for the child, so no entry is left half-written by it."""

    def __init__(self, work: Callable[[], object], result: Path) -> None:
        self.result = result
        self._done: Path | None = None
        self.pid: int | None = os.fork()
        if self.pid == 0:  # the child: a few seconds of writing, then out without the parent's exit handlers
            code = 1
            try:
                # Ctrl-C reaches the whole process group: let the entry finish rather than leave half of it.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                code = 0 if work() is not None else 1
            finally:
                os._exit(code)
        atexit.register(self.wait)

    def wait(self) -> Path | None:
        if self.pid is None:
            return self._done
        _, status = os.waitpid(self.pid, 0)
        atexit.unregister(self.wait)
        self.pid = None
        self._done = self.result if os.waitstatus_to_exitcode(status) == 0 else None
        return self._done


def _log_data(reporter: Reporter, p: Prepared) -> None:
    rows = p.rows
    reporter.log(
        f"data: {rows['train']} train / {rows['validation']} validation / {rows['test']} test rows from "
        f"{p.source}" + (f"; {rows['unlabeled']} unlabelled texts" if rows["unlabeled"] else "")
    )


class _Collect(logging.Handler):
    """Keeps the data loader's warnings (dropped rows, ...) so that a cache hit can repeat them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _compute(config: Config, reporter: Reporter, show_download: bool) -> Prepared:
    collect = _Collect()
    data_log = logging.getLogger("sentiment.dataset")
    data_log.addHandler(collect)
    try:
        with reporter.stage("data"), reporter.download_progress() if show_download else nullcontext():
            splits = load_splits(config.data, config.seed)
    finally:
        data_log.removeHandler(collect)
    rows = {
        "train": len(splits.train.labels),
        "validation": len(splits.val.labels) if splits.val else 0,
        "test": len(splits.test.labels),
        "unlabeled": len(splits.unlabeled),
    }
    settings = TokenizerSettings.from_config(config.text)
    result = Prepared(
        wv=WordVectors([], np.zeros((0, 0), np.float32), np.zeros(0, np.int64)),
        bags={},
        labels={
            "train": splits.train.labels,
            "val": splits.val.labels if splits.val else None,
            "test": splits.test.labels,
        },
        tokenizer=settings,
        phrases=[],
        negative_label=splits.negative_label,
        positive_label=splits.positive_label,
        source=splits.source,
        test_source=splits.test_source,
        rows=rows,
        word2vec_cache_hit=False,
        test_texts=splits.test.texts,
        warnings=collect.messages,
    )
    _log_data(reporter, result)

    with reporter.stage("tokenise"):
        train_tok = _tokenize_train(splits.train.texts, settings, reporter)

    phrases: frozenset[str] = frozenset()
    if config.text.phrases:
        with reporter.stage("phrases"):
            phrases = frozenset(
                learn_phrases(
                    _corpus(train_tok, splits.unlabeled, settings, frozenset()),
                    config.text.phrases_min_count,
                    config.text.phrases_threshold,
                )
            )
            train_tok = [apply_phrases(t, phrases) for t in train_tok]
        reporter.log(f"phrases: {len(phrases)} learnt")
    result.phrases = sorted(phrases)

    w2v = config.word2vec
    with reporter.stage("word2vec"), reporter.bar("Word2Vec epochs", w2v.epochs) as update:
        w2v_start = time.perf_counter()

        def on_w2v_epoch(done: int, total: int) -> None:
            update(done)
            reporter.step(f"word2vec epoch {done:>3}/{total}  ({time.perf_counter() - w2v_start:.1f} s)")

        # Only training (+ unlabelled) text reaches Word2Vec: validation and test text never do.
        wv, result.word2vec_cache_hit = train_word2vec(
            _corpus(train_tok, splits.unlabeled, settings, phrases), w2v, config.seed, on_epoch=on_w2v_epoch
        )
    kind = "reused from cache" if result.word2vec_cache_hit else f"{'skip-gram' if w2v.sg else 'CBOW'}, "
    reporter.log(
        f"word2vec: {len(wv.words)} words x {wv.vectors.shape[1]} dims ("
        + (kind if result.word2vec_cache_hit else f"{kind}{w2v.epochs} epochs")
        + ")"
    )
    result.word2vec_words = len(wv.words)
    n_gram = config.text.ngrams
    if n_gram > 1:
        with reporter.stage("n-grams"):
            wv = _with_ngrams(wv, train_tok, config)
        reporter.log(f"n-grams: vocabulary now {len(wv.words)} tokens (words + 2..{n_gram}-grams)")
    result.wv = wv

    with reporter.stage("features"):
        start = time.perf_counter()
        index = wv.index()

        def tokens_of(text: str) -> list[str]:
            tokens = tokenize(text, settings)
            tokens = apply_phrases(tokens, phrases) if phrases else tokens
            return add_ngrams(tokens, n_gram) if n_gram > 1 else tokens

        def train_bags(lo: int, hi: int) -> TokenBags:
            # n-grams are added a slice at a time: the longer token lists are never all held at once
            toks = train_tok[lo:hi]
            return encode([add_ngrams(t, n_gram) for t in toks] if n_gram > 1 else toks, index)

        # Validation and test texts are tokenised only now, straight into ids: nothing learns from them, so
        # their tokens need neither interning nor keeping. Large splits are spread over forked processes.
        splits_texts = {"val": splits.val.texts if splits.val else None, "test": splits.test.texts}
        total = len(train_tok) + sum(len(t) for t in splits_texts.values() if t is not None)
        parts = cpu_count() * 2 if total >= PARALLEL_MIN_TEXTS else 1
        tasks: list[tuple[str, Callable[[], TokenBags]]] = [
            ("train", functools.partial(train_bags, lo, hi)) for lo, hi in split_ranges(len(train_tok), parts)
        ]
        for name, texts in splits_texts.items():
            if texts is not None:
                tasks += [
                    (name, functools.partial(encode_texts, texts[lo:hi], tokens_of, index))
                    for lo, hi in split_ranges(len(texts), parts)
                ]
        done = fork_map([task for _, task in tasks]) if parts > 1 else [task() for _, task in tasks]
        for name in _SPLITS:
            pieces = [bags for (owner, _), bags in zip(tasks, done, strict=True) if owner == name]
            result.bags[name] = concat_bags(pieces) if name != "val" or splits.val else None
    reporter.log(f"encode: {total:,} texts into token ids ({time.perf_counter() - start:.1f} s)")
    return result


def _corpus(
    train_tokens: list[list[str]], unlabeled: list[str], settings: TokenizerSettings, phrases: frozenset
) -> Iterator[list[str]]:
    """Word2Vec's text: training tokens, then the unlabelled texts tokenised on the fly (never held twice)."""
    yield from train_tokens
    for text in unlabeled:
        tokens = tokenize(text, settings)
        yield apply_phrases(tokens, phrases) if phrases else tokens


def _with_ngrams(wv: WordVectors, train_tokens: list[list[str]], config: Config) -> WordVectors:
    """Word vectors plus the frequent training n-grams, each starting as the mean of its words' vectors."""
    text = config.text
    index = wv.index()
    kept = frequent_ngrams(train_tokens, text.ngrams, text.ngram_min_count, text.ngram_max, index)
    grams = [g for g, _ in kept]
    return WordVectors(
        wv.words + grams,
        np.concatenate([wv.vectors, ngram_vectors(grams, index, wv.vectors)]),
        np.concatenate([wv.counts, np.array([c for _, c in kept], dtype=wv.counts.dtype)]),
        cache_key=wv.cache_key,
    )


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


def _store(p: Prepared, target: Path) -> Path | None:
    """Write the entry under a temporary name, then rename it into place; returns its test-rows file."""
    if p.wv.cache_key is None:  # the vectors are not in the Word2Vec cache: there is nothing to refer to
        return None
    n_base = p.word2vec_words
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        meta = {
            "format": CACHE_FORMAT,
            "word2vec_key": p.wv.cache_key,
            "word2vec_words": n_base,
            "word2vec_cache_hit": p.word2vec_cache_hit,
            "extra_tokens": p.wv.words[n_base:],
            "tokenizer": asdict(p.tokenizer),
            "phrases": p.phrases,
            "labels": [p.negative_label, p.positive_label],
            "source": p.source,
            "test_source": p.test_source,
            "rows": p.rows,
            "warnings": p.warnings,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        arrays = {"extra_vectors": p.wv.vectors[n_base:], "extra_counts": p.wv.counts[n_base:]}
        for name in _SPLITS:
            bags = p.bags[name]
            if bags is not None:
                # int32 on disk halves the entry; the vocabulary is far below 2**31
                arrays[f"{name}_ids"] = bags.ids.astype(np.int32)
                arrays[f"{name}_offsets"] = bags.offsets
                arrays[f"{name}_labels"] = p.labels[name]
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        write_test_rows(
            tmp / TEST_ROWS, p.test_texts or [], p.labels["test"], (p.negative_label, p.positive_label)
        )
        os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
    except Exception as exc:  # a cache is an optimisation: never let it fail the run
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("could not write the prepared-data cache at %s: %s", target, exc)
        return None
    return target / TEST_ROWS


def _load(directory: Path) -> Prepared | None:
    """The cache entry in ``directory``, or None when it is missing, unreadable or its vectors are gone."""
    if not (directory / "meta.json").exists():
        return None
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != CACHE_FORMAT:
            return None
        base = load_cached_vectors(meta["word2vec_key"])
        if base is None or len(base.words) != meta["word2vec_words"]:
            return None

        def array(name: str) -> np.ndarray:
            return np.load(directory / f"{name}.npy", allow_pickle=False)

        extra = meta["extra_tokens"]
        wv = WordVectors(
            base.words + extra,
            np.concatenate([base.vectors, array("extra_vectors")]),
            np.concatenate([base.counts, array("extra_counts")]),
            cache_key=base.cache_key,
        )
        bags: dict[str, TokenBags | None] = {}
        labels: dict[str, np.ndarray | None] = {}
        for name in _SPLITS:
            if not (directory / f"{name}_ids.npy").exists():
                bags[name] = labels[name] = None
                continue
            ids, offsets = array(f"{name}_ids").astype(np.int64), array(f"{name}_offsets")
            labels[name] = array(f"{name}_labels")
            if offsets[-1] != len(ids) or len(labels[name]) != len(offsets) - 1:
                raise ValueError(f"{name} arrays disagree")
            if len(ids) and (ids.min() < 0 or ids.max() >= len(wv.words)):
                raise ValueError(f"{name} ids out of range")
            bags[name] = TokenBags(ids, offsets)
        if bags["train"] is None or bags["test"] is None or not (directory / TEST_ROWS).exists():
            raise ValueError("incomplete entry")
        negative, positive = meta["labels"]
        for message in meta["warnings"]:
            log.warning("%s", message)
        return Prepared(
            wv=wv,
            bags=bags,
            labels=labels,
            tokenizer=TokenizerSettings.from_dict(meta["tokenizer"]),
            phrases=meta["phrases"],
            negative_label=negative,
            positive_label=positive,
            source=meta["source"],
            test_source=meta["test_source"],
            rows=meta["rows"],
            word2vec_cache_hit=True,
            word2vec_words=len(base.words),
            cache_hit=True,
            test_rows_file=directory / TEST_ROWS,
            warnings=meta["warnings"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("prepared-data cache entry %s is unreadable (%s); preparing anew", directory, exc)
        return None
