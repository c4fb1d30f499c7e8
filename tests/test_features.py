from __future__ import annotations

import numpy as np
import pytest

from sentiment.features import idf_weights, nb_weights, sif_weights
from sentiment.pooling import pool
from sentiment.text import TextEncoder, encode

VOCAB = ["good", "bad", "film", "plot"]
INDEX = {w: i for i, w in enumerate(VOCAB)}


def naive(tokens: list[str], vectors: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    rows = [(vectors[INDEX[t]], 1.0 if weights is None else weights[INDEX[t]]) for t in tokens if t in INDEX]
    if not rows:
        return np.zeros(vectors.shape[1])
    return sum(v * w for v, w in rows) / sum(w for _, w in rows)


@pytest.mark.parametrize("pooling", ["mean", "tfidf", "sif", "nb"])
def test_vectorised_pooling_equals_a_plain_loop(pooling: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 5)).astype(np.float32)
    docs = [["good", "film", "good"], [], ["unknown", "words"], ["bad"], ["plot", "bad", "film", "zzz"]] * 7
    bags = encode(docs, INDEX)
    weights = {
        "mean": None,
        "tfidf": idf_weights(bags, 4),
        "sif": sif_weights(np.array([5, 3, 9, 1]), 1e-3),
        "nb": nb_weights(bags, np.arange(len(docs)) % 2, 4, 1.0, 0.1),
    }[pooling]
    # a small chunk size exercises the chunk boundaries too
    out = pool(bags, vectors, pooling, weights, chunk_tokens=4)
    expected = np.stack([naive(d, vectors, weights) for d in docs])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(bags.lengths[:3], [3, 0, 0])  # unknown words are not counted


def test_nb_weights_are_the_smoothed_log_count_ratio() -> None:
    # "good" is in both positive texts (twice in one: counted once), "bad" in both negative ones, "film" in
    # one of each, "plot" in none: with alpha 1 the class counts are [3, 1, 2, 1] and [1, 3, 2, 1] of 7.
    docs = [["good", "good", "film"], ["good"], ["bad", "film"], ["bad"]]
    weights = nb_weights(encode(docs, INDEX), np.array([1, 1, 0, 0]), 4, alpha=1.0, floor=0.1)
    np.testing.assert_allclose(weights, [np.log(3) + 0.1, np.log(3) + 0.1, 0.1, 0.1], rtol=1e-6)
    # a telling word outweighs a neutral one in the pooled mean
    vectors = np.array([[1.0], [0.0], [0.0], [0.0]], dtype=np.float32)
    pooled = pool(encode([["good", "film"]], INDEX), vectors, "nb", weights)
    np.testing.assert_allclose(pooled, [[(np.log(3) + 0.1) / (np.log(3) + 0.2)]], rtol=1e-6)


def test_mean_max_concatenates_max() -> None:
    vectors = np.array([[1.0, -1.0], [3.0, 5.0], [0.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    out = pool(encode([["good", "bad"], []], INDEX), vectors, "mean_max")
    np.testing.assert_allclose(out, [[2.0, 2.0, 3.0, 5.0], [0, 0, 0, 0]])


def test_subset_gathers_rows_in_order() -> None:
    bags = encode([["good"], ["bad", "film"], [], ["plot", "plot", "good"]], INDEX)
    sub = bags.subset(np.array([3, 1, 2]))
    assert sub.ids.tolist() == [3, 3, 0, 1, 2] and sub.offsets.tolist() == [0, 3, 5, 5]


def test_idf_is_scikit_learns_smoothed_idf() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [["good", "film"], ["bad", "film"], ["good", "good", "plot"]]
    idf = idf_weights(encode(docs, INDEX), 4)
    vec = TfidfVectorizer(analyzer=lambda d: d, vocabulary=INDEX).fit(docs)
    np.testing.assert_allclose(idf, vec.idf_, rtol=1e-6)


@pytest.mark.parametrize("chunk", [1, 3, 4, 100])
def test_encode_texts_in_chunks_equals_encoding_all_at_once(chunk: int) -> None:
    texts = ["good film", "", "bad bad plot", "unknown", "a good plot", "film film film", "", "good"]
    encoder = TextEncoder(vocab=["good", "bad", "film", "plot"], n_words=4)
    whole = encode([t.split() for t in texts], encoder.index)
    chunked = encoder.encode(texts, chunk=chunk)
    assert np.array_equal(chunked.ids, whole.ids) and np.array_equal(chunked.offsets, whole.offsets)
    assert len(encoder.encode([])) == 0
