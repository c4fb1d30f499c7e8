"""Word n-grams as extra tokens ("not good" next to "not" and "good"), the fastText trick for word order.

An n-gram token is its words joined by a space, which no word token can contain, so it never collides with a
word or a Phrases token. Only n-grams frequent in the training texts get a vector: the mean of their words'
Word2Vec vectors, a starting point that fine-tuning (``model.fine_tune_embeddings``) then moves.
Pure Python and NumPy: prediction adds the same n-grams without gensim or torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain, repeat

import numpy as np

from sentiment.arrays import run_lengths, unique_sorted

SEPARATOR = " "


def add_ngrams(tokens: Sequence[str], n: int) -> list[str]:
    """The tokens followed by the 2..n-grams of adjacent tokens."""
    out = list(tokens)
    for size in range(2, n + 1):
        out.extend(SEPARATOR.join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))
    return out


def frequent_ngrams(
    token_lists: Sequence[Sequence[str]],
    n: int,
    min_count: int,
    max_ngrams: int | None,
    known: dict[str, int],
) -> list[tuple[str, int]]:
    """(n-gram, number of texts) for 2..n-grams in at least ``min_count`` texts whose words are all ``known``
    (word -> id), most frequent first, ties in text order.

    Counted on word ids, vectorised: an n-gram is its ids in base ``len(known)``, and only the n-grams kept
    become strings (on IMDB trigrams, 25,000 texts: seconds instead of the half minute string sets took).
    """
    base = max(len(known), 1)
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    total = int(lengths.sum())
    ids = np.fromiter(map(known.get, chain.from_iterable(token_lists), repeat(-1)), np.int64, count=total)
    counted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    by_strings: list[tuple[str, int]] = []
    for size in range(2, n + 1):
        if base**size >= 2**63:  # keys would overflow int64: count the strings instead
            by_strings += _frequent_by_strings(token_lists, size, min_count, known)
        else:
            counted[size] = ngram_text_counts(ids, lengths, size, base)
    return kept_ngrams(counted, known, min_count, max_ngrams, by_strings)


def ngram_text_counts(
    word_ids: np.ndarray, lengths: np.ndarray, size: int, base: int
) -> tuple[np.ndarray, np.ndarray]:
    """(key, number of texts) of every ``size``-gram of known words (id >= 0) in texts given as their word
    ids back to back and their lengths; keys sorted. Counts of separate batches of texts add up
    (``merge_counts``): a corpus larger than memory is counted a batch at a time."""
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts, key = window_keys(word_ids, doc, size, base)
    texts = max(len(lengths), 1)
    if base**size * texts <= 2**63:
        # each (n-gram, text) pair as one int64, its key the high digits: one sort finds the distinct pairs,
        # sorted by key (IMDB bigrams, 22,500 texts: 0.55 s against 2.1 s for the two-key lexsort below)
        pair = key * texts + doc[starts]
        pair.sort()
        return run_lengths(pair[np.r_[True, pair[1:] != pair[:-1]]] // texts)
    where = doc[starts]
    order = np.lexsort((where, key))
    key, where = key[order], where[order]
    first = np.ones(len(key), dtype=bool)  # the first (n-gram, text) pair of each run
    first[1:] = (key[1:] != key[:-1]) | (where[1:] != where[:-1])
    return unique_sorted(key[first])


def merge_counts(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(key, count) pairs of several batches as one: keys sorted, counts of equal keys added."""
    keys = np.concatenate([k for k, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    change = np.ones(len(keys), dtype=bool)
    change[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(change)
    return keys[starts], np.add.reduceat(counts, starts) if len(keys) else counts


def kept_ngrams(
    counted: dict[int, tuple[np.ndarray, np.ndarray]],
    known: dict[str, int],
    min_count: int,
    max_ngrams: int | None,
    extra: Sequence[tuple[str, int]] = (),
) -> list[tuple[str, int]]:
    """The n-grams (by size: sorted keys in base ``len(known)`` and their text counts) in at least
    ``min_count`` texts, as strings, most frequent first, then by text; at most ``max_ngrams``."""
    base = max(len(known), 1)
    words = np.empty(base, dtype=object)
    for word, i in known.items():
        words[i] = word
    kept: list[tuple[str, int]] = list(extra)
    for size, (grams, df) in counted.items():
        grams, df = grams[df >= min_count], df[df >= min_count]
        parts = []
        for _ in range(size):  # the last word is the lowest digit
            parts.append(words[grams % base])
            grams = grams // base
        texts = zip(*reversed(parts), strict=True)
        kept += [(SEPARATOR.join(g), int(c)) for g, c in zip(texts, df.tolist(), strict=True)]
    kept.sort(key=lambda gc: (-gc[1], gc[0]))  # deterministic order: count, then text
    if max_ngrams is not None:
        kept = kept[:max_ngrams]
    return kept


def window_keys(word_ids: np.ndarray, doc: np.ndarray, size: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``size`` known words (id >= 0) that stays inside one text (``doc``: each position's
    text): its start position and its key, the word ids as digits in base ``base`` (the last word lowest)."""
    starts = np.arange(max(len(word_ids) - size + 1, 0))
    ok = doc[starts] == doc[starts + size - 1]
    key = np.zeros(len(starts), dtype=np.int64)
    for k in range(size):
        ids = word_ids[starts + k]
        ok &= ids >= 0
        key = key * base + np.maximum(ids, 0)
    return starts[ok], key[ok]


def _frequent_by_strings(
    token_lists: Iterable[Sequence[str]], size: int, min_count: int, known: dict[str, int]
) -> list[tuple[str, int]]:
    df: Counter[str] = Counter()
    for tokens in token_lists:
        df.update({SEPARATOR.join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)})
    return [(g, c) for g, c in df.items() if c >= min_count and all(w in known for w in g.split(SEPARATOR))]


def ngram_word_ids(ngrams: Sequence[str], index: dict[str, int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each n-gram size: the positions of the n-grams of that size in ``ngrams`` and their word ids, one
    row each. All strings are split in one join and one split (a split per n-gram cost 1.5 s for 300,000)."""
    sizes = np.fromiter((g.count(SEPARATOR) + 1 for g in ngrams), dtype=np.int64, count=len(ngrams))
    words = SEPARATOR.join(ngrams).split(SEPARATOR) if ngrams else []
    ids = np.fromiter(map(index.__getitem__, words), dtype=np.int64, count=len(words))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out = {}
    for size in np.flatnonzero(np.bincount(sizes)).tolist():  # the sizes present: a handful
        rows = np.flatnonzero(sizes == size)
        out[size] = (rows, ids[starts[rows][:, None] + np.arange(size)])
    return out


def ngram_vectors(ngrams: Sequence[str], index: dict[str, int], vectors: np.ndarray) -> np.ndarray:
    """Each n-gram's starting vector: the mean of its words' vectors (gathered a size at a time: a loop per
    n-gram took 7 s, profiled, for IMDB's 300,000 bigrams)."""
    out = np.zeros((len(ngrams), vectors.shape[1]), dtype=np.float32)
    for size, (rows, ids) in ngram_word_ids(ngrams, index).items():
        total = vectors[ids[:, 0]].astype(np.float32)
        for k in range(1, size):
            total += vectors[ids[:, k]]
        out[rows] = total / np.float32(size)
    return out
