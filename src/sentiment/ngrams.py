"""Word n-grams as extra tokens ("not good" next to "not" and "good"), the fastText trick for word order.

An n-gram token is its words joined by a space, which no word token can contain, so it never collides with a
word or a Phrases token. Only n-grams frequent in the training texts get a vector: the mean of their words'
Word2Vec vectors, a starting point that fine-tuning (``model.fine_tune_embeddings``) then moves.
Pure Python and NumPy: prediction adds the same n-grams without gensim or torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

SEPARATOR = " "


def add_ngrams(tokens: Sequence[str], n: int) -> list[str]:
    """The tokens followed by the 2..n-grams of adjacent tokens."""
    out = list(tokens)
    for size in range(2, n + 1):
        out.extend(SEPARATOR.join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))
    return out


def frequent_ngrams(
    token_lists: Iterable[Sequence[str]],
    n: int,
    min_count: int,
    max_ngrams: int | None,
    known: set[str] | dict[str, int],
) -> list[tuple[str, int]]:
    """(n-gram, number of texts) for 2..n-grams in at least ``min_count`` texts whose words are all ``known``,
    most frequent first."""
    df: Counter[str] = Counter()
    for tokens in token_lists:
        grams: set[str] = set()
        for size in range(2, n + 1):
            grams.update(SEPARATOR.join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))
        df.update(grams)
    kept = [(g, c) for g, c in df.items() if c >= min_count and all(w in known for w in g.split(SEPARATOR))]
    kept.sort(key=lambda gc: (-gc[1], gc[0]))  # deterministic order: count, then text
    if max_ngrams is not None:
        kept = kept[:max_ngrams]
    return kept


def ngram_vectors(ngrams: Sequence[str], index: dict[str, int], vectors: np.ndarray) -> np.ndarray:
    """Each n-gram's starting vector: the mean of its words' vectors."""
    out = np.zeros((len(ngrams), vectors.shape[1]), dtype=np.float32)
    for row, gram in enumerate(ngrams):
        ids = [index[w] for w in gram.split(SEPARATOR)]
        out[row] = vectors[ids].mean(axis=0)
    return out
