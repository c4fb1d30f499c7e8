"""Word n-grams as tokens: the NumPy predictor sees the same tokens and computes what the torch model does."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG, write_reviews
from sentiment.ngrams import add_ngrams, frequent_ngrams, ngram_text_counts, ngram_vectors


def test_add_ngrams() -> None:
    tokens = ["not", "good", "at", "all"]
    assert add_ngrams(tokens, 2) == [*tokens, "not good", "good at", "at all"]
    assert add_ngrams(["a", "b", "c"], 3)[-1] == "a b c"
    assert add_ngrams(["a"], 2) == ["a"]


def test_frequent_ngrams_counts_texts_and_needs_known_words() -> None:
    texts = [["not", "good", "not", "good"], ["not", "good"], ["very", "good"]]
    kept = frequent_ngrams(texts, 2, min_count=2, max_ngrams=None, known={"not": 0, "good": 1})
    assert kept == [("not good", 2)]  # counted once per text; "good not" is in one text only
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert np.allclose(ngram_vectors(["not good"], {"not": 0, "good": 1}, vectors), [[0.5, 0.5]])


def _reference(
    texts: list[list[str]], n: int, min_count: int, known: dict[str, int]
) -> list[tuple[str, int]]:
    """The definition, by string sets: texts holding each 2..n-gram of known words."""
    from collections import Counter

    df: Counter[str] = Counter()
    for tokens in texts:
        grams = {" ".join(tokens[i : i + k]) for k in range(2, n + 1) for i in range(len(tokens) - k + 1)}
        df.update(g for g in grams if all(w in known for w in g.split(" ")))
    return sorted(((g, c) for g, c in df.items() if c >= min_count), key=lambda gc: (-gc[1], gc[0]))


@pytest.mark.parametrize("n", [2, 3])
def test_vectorised_counting_equals_counting_strings(n: int) -> None:
    import random

    rng = random.Random(n)
    words = [f"w{i}" for i in range(12)]
    texts = [rng.choices(words, k=rng.randint(0, 9)) for _ in range(300)]
    known = {
        w: i for i, w in enumerate(words[:10])
    }  # w10 and w11 are unknown: n-grams with them are not kept
    got = frequent_ngrams(texts, n, min_count=3, max_ngrams=None, known=known)
    assert got == _reference(texts, n, 3, known) and len(got) > 50
    assert frequent_ngrams(texts, n, 3, max_ngrams=7, known=known) == got[:7]
    # a vocabulary so large that trigram keys would overflow int64 counts the strings instead, alike
    huge = {**known, **{f"pad{i}": 10 + i for i in range(2_100_000)}} if n == 3 else known
    assert frequent_ngrams(texts, n, 3, None, huge) == got


@pytest.mark.parametrize("size", [2, 3])
def test_text_counts_alike_with_one_sort_key_and_with_two(size: int) -> None:
    """Small radixes count each (n-gram, text) pair as one int64; past 2**63 a two-key sort does: both give
    the definition's keys (word ids as digits) and numbers of texts."""
    from collections import Counter

    rng = np.random.default_rng(size)
    lengths = rng.integers(0, 40, size=60)  # long enough that texts repeat n-grams
    ids = rng.integers(-1, 6, size=int(lengths.sum()))  # -1: an unknown word, in no n-gram
    bounds = np.cumsum(np.r_[0, lengths])
    for base in (10, 2**31 if size == 2 else 2**20):  # keys fit int64; (key, text) pairs only for 10
        assert base**size < 2**63 and (base**size * len(lengths) <= 2**63) == (base == 10)
        texts: Counter[int] = Counter()
        for lo, hi in itertools.pairwise(bounds):
            text = ids[lo:hi].tolist()
            grams = (text[i : i + size] for i in range(len(text) - size + 1))
            texts.update({sum(w * base**k for k, w in enumerate(reversed(g))) for g in grams if min(g) >= 0})
        keys, counts = ngram_text_counts(ids, lengths, size, base)
        assert keys.tolist() == sorted(texts) and counts.tolist() == [texts[k] for k in sorted(texts)]
        assert len(keys) > 20 and counts.max() > 1


@pytest.mark.parametrize(
    ("fine_tune", "pooling"), [(True, "tfidf"), (True, "nb"), (False, "mean"), (False, "nb")]
)
def test_numpy_prediction_matches_torch(tmp_path: Path, fine_tune: bool, pooling: str) -> None:
    import torch

    from sentiment.config import load_config
    from sentiment.evaluate import evaluate_model
    from sentiment.model import BagClassifier
    from sentiment.pipeline import train
    from sentiment.predictor import Predictor
    from test_speed_paths import torch_mlp

    data = write_reviews(tmp_path / "reviews.csv", n=300, seed=3)
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY_CONFIG.format(output_dir=tmp_path / "runs", data=data), encoding="utf-8")
    overrides = ["text.ngrams=2", "text.ngram_min_count=2", "training.epochs=3"]
    overrides.append(f"features.pooling={pooling}")
    if fine_tune:
        overrides += ["model.fine_tune_embeddings=true", "features.normalize=false"]
    out = train(load_config(config_path, overrides), tmp_path / "model")
    meta = json.loads((out.model_dir / "meta.json").read_text())
    assert meta["text"]["ngrams"] == 2
    predictor = Predictor.load(out.model_dir)
    vocab = predictor.encoder.vocab
    grams = [w for w in vocab if " " in w]
    assert grams, "frequent bigrams join the vocabulary"
    assert " " not in "".join(vocab[: predictor.encoder.n_words])  # the saved boundary: words, then n-grams
    assert all(" " in w for w in vocab[predictor.encoder.n_words :])

    texts = ["the film was wonderful and brilliant", "boring plot, awful acting and a dull ending!", "great"]
    bags = predictor.encode(texts)
    assert any(vocab[i] in grams for i in bags.ids)  # n-gram ids reach the model
    probs, known = predictor.predict_proba(texts)
    # known_words counts words only, not the n-gram tokens matched next to them
    from sentiment.tokenizer import tokenize

    index = predictor.encoder.index
    words = [sum(t in index for t in tokenize(text, predictor.encoder.settings)) for text in texts]
    assert known.tolist() == words

    mlp = torch_mlp(predictor.mlp)
    features = predictor.features
    with torch.no_grad():
        if fine_tune:
            model = BagClassifier(features.vectors_, mlp, features.weights_).eval()
            expected = model(torch.from_numpy(bags.ids), torch.from_numpy(bags.offsets[:-1])).numpy()
        else:
            expected = mlp(torch.from_numpy(features.transform(bags).astype(np.float32))).numpy()
    assert np.allclose(probs, expected, atol=1e-5)

    # the saved test split scored by NumPy reproduces the metrics the torch model had at training time
    metrics = evaluate_model(out.model_dir)
    assert metrics["accuracy"] == pytest.approx(out.metrics["accuracy"], abs=1e-12)
