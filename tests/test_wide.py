"""The wide part (``model.wide``): NB-started weights per token, summed over a text's distinct tokens and
added to the MLP's logits; the same sum in torch (training) and NumPy (prediction, explain)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment import wide
from sentiment.config import load_config
from sentiment.errors import ConfigError
from sentiment.explain import _occluded_wide, _text_tokens, explain
from sentiment.features import Features, nb_ratios, nb_weights
from sentiment.model import BagClassifier, SimpleMLP, export
from sentiment.predictor import Predictor
from sentiment.text import Cover, TokenBags
from test_explain import MARKER, train_marked


def bags(*texts: list[int]) -> TokenBags:
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
    return TokenBags(np.concatenate([np.asarray(t, dtype=np.int64) for t in texts]), offsets)


def test_a_token_counts_once_per_text() -> None:
    weights = np.array([[1.0], [10.0], [100.0]], dtype=np.float32)
    z = wide.logits(bags([0, 1, 1, 1], [2, 2], []), weights)
    assert z[:, 0].tolist() == [11.0, 100.0, 0.0]


def test_signed_ratios_and_the_nb_pooling_weights_agree() -> None:
    # token 0 only in positive texts, token 1 only in negative ones, token 2 in both
    b = bags([0, 2], [0, 2, 2], [1, 2], [1, 2])
    y = np.array([1, 1, 0, 0])
    r = nb_ratios(b, y, 3, alpha=1.0)
    assert r.shape == (3, 1) and r[0, 0] > 0 > r[1, 0] and r[2, 0] == pytest.approx(0.0)
    np.testing.assert_allclose(nb_weights(b, y, 3, 1.0, 0.1), np.abs(r[:, 0]) + 0.1, rtol=1e-6)
    three = nb_ratios(b, np.array([0, 1, 2, 2]), 3, alpha=1.0)
    assert three.shape == (3, 3)  # one column per class, each against the rest
    # Features computes the ratios once for the wide part and its nb weights, to the same weights
    vectors, counts = np.eye(3, dtype=np.float32), np.ones(3)
    alone = Features(pooling="nb").fit(b, y, vectors, counts)
    both = Features(pooling="nb").fit(b, y, vectors, counts, ratios=True)
    assert alone.ratios_ is None and both.ratios_ is not None
    np.testing.assert_array_equal(both.ratios_, r)
    np.testing.assert_array_equal(both.weights_, alone.weights_)


@pytest.mark.parametrize("outputs", [1, 3])
def test_numpy_forward_equals_torch(outputs: int) -> None:
    """The exported arrays (MLP, tuned vectors, wide weights) give the torch model's probabilities."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, dim = 30, 6
    vectors = rng.normal(size=(vocab, dim)).astype(np.float32)
    ratios = rng.normal(size=(vocab, outputs)).astype(np.float32)
    mlp = SimpleMLP(dim, [5], outputs=outputs)
    model = BagClassifier(vectors, mlp, wide_ratios=ratios)
    with torch.no_grad():  # move the trainable parts away from their starting values
        model.wide_weight.add_(torch.randn_like(model.wide_weight))
        model.embedding.weight.add_(0.1)
    b = bags([1, 2, 2, 3], [4], [5, 6, 7, 8, 8, 8, 9])
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(b.ids), torch.from_numpy(b.offsets[:-1]))
        expected = (out if outputs == 1 else torch.softmax(out, dim=1)).numpy()  # softmax head: logits
    weights, tuned = export(model)
    assert weights.wide is not None and weights.wide.shape == (vocab, outputs)
    features = Features(pooling="mean").with_vectors(tuned)
    got = weights.forward(features.transform(b), b)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="wide part"):
        weights.forward(features.transform(b))  # without the texts' tokens there is no wide sum


def test_occluded_wide_logits_equal_summing_again() -> None:
    """Leaving word i out removes a token from the sum only when word i held all its occurrences."""
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(6, 2))
    # words 0..3 with ids [0, 1, 0, 2]; bigram tokens 4 (words 0-1) and 5 (words 2-3)
    ids = np.array([0, 1, 0, 2, 4, 5])
    cover = Cover(np.array([0, 1, 2, 3, 4, 4, 5, 5]), np.array([0, 1, 2, 3, 0, 1, 2, 3]), 4)
    fast = wide.occluded_logits(ids, cover, weights)
    dense = cover.dense(len(ids))
    rows = [ids] + [ids[dense[:, i] == 0] for i in range(4)]
    slow = wide.logits(bags(*rows), weights)
    np.testing.assert_allclose(fast, slow)
    # row 1 + i: without word i. Word 1 (id 1, once): its token and bigram 4 go; word 2 (id 0, also word 0):
    # only bigram 5 goes
    assert fast[2, 0] == pytest.approx(fast[0, 0] - weights[1, 0] - weights[4, 0])
    assert fast[3, 0] == pytest.approx(fast[0, 0] - weights[5, 0])


def test_wide_needs_fine_tuning(tmp_path: Path) -> None:
    from sentiment.config import check_compatible

    config = load_config("default", ["model.wide=true", "model.fine_tune_embeddings=false"])
    with pytest.raises(ConfigError, match=r"model\.wide needs model\.fine_tune_embeddings"):
        check_compatible(config)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_marked(tmp_path_factory.mktemp("wide"), "model.wide=true", "text.ngram_min_count=2")


def test_trained_wide_model_saves_predicts_and_explains(wide_model: Path, cli) -> None:
    predictor = Predictor.load(wide_model)
    assert predictor.mlp.wide is not None and predictor.mlp.wide.shape == (len(predictor.encoder.vocab), 1)
    marker = predictor.encoder.index[MARKER]
    assert predictor.mlp.wide[marker, 0] > 0  # a word only positive texts hold weighs toward positive
    metrics = cli(["eval", "--model", wide_model, "--json"])
    assert metrics.exit_code == 0 and '"accuracy": 1.0' in metrics.stdout
    text = f"{MARKER} the film and the plot {MARKER}"
    (e,) = explain(predictor, [text], label="positive")
    weights = [t.weight for t in e.tokens if t.token == MARKER]
    assert len(weights) == 2 and min(weights) > 0
    # each weight is exactly the log-odds change of predicting the text without that occurrence (the last
    # word: leaving it out makes no new n-gram)
    words, ids, cover = _text_tokens(predictor, text)
    assert _occluded_wide(predictor, ids, cover).shape == (len(words) + 1, 1)
    without = text[: text.rindex(MARKER)]
    p, q = e.probability, predictor.predict([without])[0].probabilities["positive"]
    assert weights[1] == pytest.approx(np.log(p / (1 - p)) - np.log(q / (1 - q)), abs=1e-4)
