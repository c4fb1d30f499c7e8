"""The fast paths agree with the straightforward ones: NumPy prediction vs torch, the ASCII tokeniser vs the
regex, sparse vs looped pooling; ``sentiment predict`` stays free of heavy imports; the Word2Vec cache keys on
every input; the loaders fetch whole batches."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import TINY_CONFIG, write_reviews
from sentiment.batches import BagBatches, TensorBatches, make_loader
from sentiment.features import Features, idf_weights, nb_weights, sif_weights
from sentiment.mlp import ACTIVATIONS, MLPWeights
from sentiment.model import BagClassifier, SimpleMLP
from sentiment.modeldir import ModelMeta, SavedModel
from sentiment.pooling import pool
from sentiment.predictor import Predictor
from sentiment.text import TextEncoder, TokenBags, encode
from sentiment.tokenizer import TokenizerSettings, tokenize, tokenize_many

TEXTS = [
    "A wonderful, gripping film: I loved it!",
    "Awful. Boring plot, terrible acting; I hated every minute?",
    "not good, not bad <br /><br />just dull",
    "",
    "zzzz qqqq",  # no known word: zero features
    "great great great film film",
]


# -- NumPy MLP / predictor vs torch ----------------------------------------------------------------------


def torch_mlp(weights: MLPWeights) -> SimpleMLP:
    """A torch SimpleMLP holding saved NumPy weights (the reverse of SimpleMLP.export)."""
    hidden = [w.shape[0] for w, _ in weights.layers[:-1]]
    mlp = SimpleMLP(weights.input_dim, hidden, weights.activation)
    linear = [m for m in mlp.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, (w, b) in zip(linear, weights.layers, strict=True):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    return mlp.eval()


def _randomise(module: torch.nn.Module, seed: int) -> None:
    # Default init leaves the output near 0.5; larger weights spread the probabilities over (0, 1).
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.8)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("hidden", [[8], [16, 8]])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_numpy_mlp_matches_torch(activation: str, hidden: list[int], dropout: float) -> None:
    torch.manual_seed(0)
    model = SimpleMLP(12, hidden, activation, dropout)
    _randomise(model, 1)
    model.eval()
    x = torch.randn(257, 12) * 2
    with torch.no_grad():
        expected = model(x).double().numpy()
    weights = model.export()
    assert len(weights.layers) == len(hidden) + 1
    got = weights.forward(x.numpy())
    assert np.abs(got - expected).max() < 1e-6
    assert expected.min() < 0.2 and expected.max() > 0.8  # the comparison covers a real range


VOCAB = [
    "wonderful",
    "gripping",
    "film",
    "i",
    "loved",
    "it",
    "!",
    "awful",
    "boring",
    "plot",
    "terrible",
    "great",
    "not",
    "good",
    "bad",
    "just",
    "dull",
    "?",
    "hated",
    "every",
    "minute",
    "acting",
]


def _predictor(features: Features, mlp: torch.nn.Module) -> Predictor:
    meta = ModelMeta(["negative", "positive"], 0.5, {}, {}, mlp.activation, 0, [], False, "review")
    encoder = TextEncoder(TokenizerSettings(), vocab=VOCAB, n_words=len(VOCAB))
    return Predictor(SavedModel(meta, encoder, features, mlp.export()))


def _weights(pooling: str, bags: TokenBags) -> np.ndarray | None:
    if pooling == "tfidf":
        return idf_weights(bags, len(VOCAB))
    if pooling == "sif":
        return sif_weights(np.arange(1, len(VOCAB) + 1), 1e-2)
    if pooling == "nb":
        return nb_weights(bags, np.arange(len(bags)) % 2, len(VOCAB), 1.0, 0.1)
    return None


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("pooling", ["mean", "tfidf", "sif", "nb", "mean_max"])
def test_predictor_matches_torch_on_frozen_features(activation: str, pooling: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(VOCAB), 6)).astype(np.float32)
    index = {w: i for i, w in enumerate(VOCAB)}
    bags = encode(tokenize_many(TEXTS), index)
    weights = _weights(pooling, bags)
    features = pool(bags, vectors, pooling, weights)
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    torch.manual_seed(0)
    mlp = SimpleMLP(features.shape[1], [10, 5], activation)
    _randomise(mlp, 2)
    mlp.eval()
    with torch.no_grad():
        expected = mlp(torch.from_numpy(((features - mean) / std).astype(np.float32))).double().numpy()
    fitted = Features(pooling, vectors_=vectors, weights_=weights, mean_=mean, std_=std)
    probs, known = _predictor(fitted, mlp).predict_proba(TEXTS)
    assert np.abs(probs - expected).max() < 1e-6
    assert known.tolist() == bags.lengths.tolist()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("pooling", ["mean", "tfidf", "sif", "nb"])
def test_predictor_matches_torch_on_fine_tuned_embeddings(activation: str, pooling: str) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(len(VOCAB), 6)).astype(np.float32)
    bags = encode(tokenize_many(TEXTS), {w: i for i, w in enumerate(VOCAB)})
    weights = _weights(pooling, bags)
    torch.manual_seed(0)
    model = BagClassifier(vectors, SimpleMLP(6, [10], activation), weights)
    _randomise(model.mlp, 3)
    model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(bags.ids), torch.from_numpy(bags.offsets[:-1])).double().numpy()
    fitted = Features(pooling, vectors_=model.embedding.weight.detach().numpy().copy(), weights_=weights)
    probs, _ = _predictor(fitted, model.mlp).predict_proba(TEXTS)
    assert np.abs(probs - expected).max() < 1e-6


def _train_tiny(tmp_path: Path, extra: list[str]) -> Path:
    from sentiment.config import load_config
    from sentiment.pipeline import train

    data = write_reviews(tmp_path / "reviews.csv", n=300, seed=3)
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY_CONFIG.format(output_dir=tmp_path / "runs", data=data), encoding="utf-8")
    return train(load_config(config_path, ["training.epochs=3", *extra]), tmp_path / "model").model_dir


def test_saved_frozen_model_numpy_path_matches_torch(trained_model: Path) -> None:
    predictor = Predictor.load(trained_model)
    features = predictor.features.transform(predictor.encode(TEXTS))
    with torch.no_grad():
        expected = torch_mlp(predictor.mlp)(torch.from_numpy(features.astype(np.float32))).double().numpy()
    probs, _ = predictor.predict_proba(TEXTS)
    assert np.abs(probs - expected).max() < 1e-6


def test_saved_fine_tuned_model_numpy_path_matches_torch(tmp_path: Path) -> None:
    model_dir = _train_tiny(tmp_path, ["model.fine_tune_embeddings=true", "features.normalize=false"])
    assert json.loads((model_dir / "meta.json").read_text())["fine_tuned_embeddings"]
    predictor = Predictor.load(model_dir)
    bags = predictor.encode(TEXTS)
    fitted = predictor.features
    model = BagClassifier(fitted.vectors_, torch_mlp(predictor.mlp), fitted.weights_).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(bags.ids), torch.from_numpy(bags.offsets[:-1])).double().numpy()
    probs, _ = predictor.predict_proba(TEXTS)
    assert np.abs(probs - expected).max() < 1e-6


# -- start-up: no heavy import on the prediction path ------------------------------------------------------

HEAVY = ("torch", "gensim", "sklearn", "pandas")

PROBE = """
import json, sys
sys.argv = ["sentiment", *json.loads(sys.argv[1])]
from sentiment.cli import app
try:
    app(prog_name="sentiment")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % ((*HEAVY, "scipy", "matplotlib", "numba"),)  # noqa: UP031


def _probe(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_predict_imports_no_heavy_library(trained_model: Path) -> None:
    result = _probe(["predict", "--model", str(trained_model), "--json", "a wonderful film"])
    assert result["code"] in (0, None)
    assert not {m.split(".")[0] for m in result["loaded"]} & set(HEAVY), result["loaded"]
    # one text never needs scipy (the sparse pooling is for thousands of tokens), matplotlib nor numba (the
    # compiled kernels are for many texts)
    assert not result["loaded"], result["loaded"]


def test_help_imports_no_heavy_library() -> None:
    result = _probe(["--help"])
    assert result["code"] in (0, None) and not result["loaded"], result["loaded"]


# -- Word2Vec cache ------------------------------------------------------------------------------------------

CORPUS = [["good", "film", "great", "plot"], ["bad", "film", "awful", "plot"], ["fine", "cast"]] * 30
BASE = {
    "vector_size": 8,
    "window": 2,
    "min_count": 1,
    "epochs": 1,
    "sg": 1,
    "negative": 5,
    "sample": 1e-3,
    "alpha": 0.025,
    "max_vocab_size": None,
    "workers": 1,
    "seed": None,
    "cache": True,
}
# One different value for every Word2Vec setting that can change the vectors.
CHANGED = {
    "vector_size": 9,
    "window": 3,
    "min_count": 2,
    "epochs": 2,
    "sg": 0,
    "negative": 0,
    "sample": 1e-4,
    "alpha": 0.03,
    "max_vocab_size": 10_000,
    "workers": 2,
    "seed": 5,
}


def test_word2vec_cache_hits_only_on_identical_text_and_settings() -> None:
    from sentiment.config import Word2VecConfig
    from sentiment.word2vec import train_word2vec

    assert set(CHANGED) == set(Word2VecConfig.model_fields) - {"cache"}, (
        "a new Word2Vec setting needs a case here"
    )
    base = Word2VecConfig(**BASE)
    first, hit = train_word2vec(iter(CORPUS), base, seed=1)
    assert not hit
    again, hit = train_word2vec(iter(CORPUS), base, seed=1)
    assert hit and again.words == first.words and np.array_equal(again.vectors, first.vectors)

    _, hit = train_word2vec(iter([*CORPUS[:-1], ["fine", "casts"]]), base, seed=1)  # one token differs
    assert not hit, "changed text"
    _, hit = train_word2vec(iter(CORPUS[:-1]), base, seed=1)  # one text fewer
    assert not hit, "fewer texts"
    _, hit = train_word2vec(iter(CORPUS), base, seed=2)  # the top-level seed (Word2Vec seed unset)
    assert not hit, "top-level seed"
    for name, value in CHANGED.items():
        _, hit = train_word2vec(iter(CORPUS), Word2VecConfig(**{**BASE, name: value}), seed=1)
        assert not hit, f"changed {name}"
    # none of the misses replaced the first entry
    _, hit = train_word2vec(iter(CORPUS), base, seed=1)
    assert hit


def test_word2vec_cache_disabled_never_hits() -> None:
    from sentiment.config import Word2VecConfig
    from sentiment.word2vec import train_word2vec

    config = Word2VecConfig(**{**BASE, "cache": False})
    train_word2vec(iter(CORPUS), config, seed=1)
    assert not train_word2vec(iter(CORPUS), config, seed=1)[1]


# -- loaders: whole batches by index -------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_loader_fetches_whole_batches_by_index(shuffle: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    features = torch.arange(103 * 3, dtype=torch.float32).reshape(103, 3)
    labels = torch.arange(103, dtype=torch.float32)
    calls: list[Any] = []
    real = TensorBatches.__getitem__
    monkeypatch.setattr(
        TensorBatches, "__getitem__", lambda self, rows: calls.append(rows) or real(self, rows)
    )
    loader = make_loader(TensorBatches(features, labels), 16, shuffle=shuffle, seed=0)
    batches = list(loader)
    assert len(calls) == len(batches) == 7  # one fetch per batch, never one per sample
    assert all(isinstance(c, list) and len(c) == 16 for c in calls[:-1]) and len(calls[-1]) == 103 % 16
    seen = torch.cat([y for _, y in batches]).long()
    assert sorted(seen.tolist()) == list(range(103))
    assert (seen.tolist() != list(range(103))) == shuffle
    for x, y in batches:
        assert torch.equal(x, features[y.long()])


def test_bag_loader_fetches_whole_batches_by_index(monkeypatch: pytest.MonkeyPatch) -> None:
    token_lists = [["good"] * (i % 4) + ["bad"] * (i % 3) for i in range(50)]
    bags = encode(token_lists, {"good": 0, "bad": 1})
    calls: list[Any] = []
    real = BagBatches.__getitem__
    monkeypatch.setattr(BagBatches, "__getitem__", lambda self, rows: calls.append(rows) or real(self, rows))
    loader = make_loader(BagBatches(bags, np.arange(50)), 8, shuffle=True, seed=1)
    batches = list(loader)
    assert len(calls) == len(batches) == 7 and all(len(c) == 8 for c in calls[:-1])
    for (ids, offsets, y), rows in zip(batches, calls, strict=True):
        sub = bags.subset(np.asarray(rows))
        assert np.array_equal(ids.numpy(), sub.ids) and np.array_equal(offsets.numpy(), sub.offsets[:-1])
        assert y.long().tolist() == list(rows)


# -- pooling: the sparse product and the loop give the same bits --------------------------------------------


@pytest.mark.parametrize("pooling", ["mean", "tfidf", "sif", "nb", "mean_max"])
def test_sparse_and_looped_pooling_are_bit_identical(pooling: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sentiment.pooling as pooling_module

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 60, 400)
    lengths[[0, 7, 399]] = 0  # empty texts, first and last included
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    bags = TokenBags(rng.integers(0, 300, offsets[-1]).astype(np.int64), offsets)
    vectors = rng.normal(size=(300, 24)).astype(np.float32)
    weights = {
        "tfidf": idf_weights(bags, 300),
        "sif": sif_weights(rng.integers(1, 99, 300), 1e-3),
        "nb": nb_weights(bags, rng.integers(0, 2, len(bags)), 300, 1.0, 0.1),
    }.get(pooling)
    monkeypatch.setattr(pooling_module, "SPARSE_MIN_TOKENS", 1)
    sparse = pool(bags, vectors, pooling, weights, chunk_tokens=2_000)
    monkeypatch.setattr(pooling_module, "SPARSE_MIN_TOKENS", 10**12)
    looped = pool(bags, vectors, pooling, weights, chunk_tokens=2_000)
    assert np.array_equal(sparse, looped)
    assert not sparse[[0, 7, 399]].any()
    # and both equal the plain definition up to float rounding
    for i in (1, 2, 200):
        ids = bags.ids[offsets[i] : offsets[i + 1]]
        w = np.ones(len(ids)) if weights is None else weights[ids]
        mean = (vectors[ids] * w[:, None]).sum(axis=0) / w.sum()
        np.testing.assert_allclose(sparse[i, :24], mean, rtol=1e-5, atol=1e-6)
        if pooling == "mean_max":
            assert np.array_equal(sparse[i, 24:], vectors[ids].max(axis=0))


# -- tokeniser: the ASCII fast path gives the regex's tokens ----------------------------------------------

_WORD = r"[^\W_]+(?:'[^\W_]+)*|[!?]"


def _reference(text: str, settings: TokenizerSettings) -> list[str]:
    """The tokeniser written plainly with the regex (no ASCII fast path)."""
    import html

    text = re.sub(r"<[^>]*>", " ", text) if settings.strip_html else text
    text = html.unescape(text) if settings.strip_html and "&" in text else text
    text = text.lower() if settings.lowercase else text
    text = text.replace("\u2019", "'")
    if not settings.negation:
        tokens = re.findall(_WORD, text)
    else:
        text = re.sub(r"[.,;:!?()\[\]\"]", lambda m: m.group(0) if m.group(0) in "!?" else " \n ", text)
        tokens, negated = [], False
        for token in re.findall(r"\n|" + _WORD, text):
            if token in ("!", "?", "\n"):
                negated = False
                if token != "\n":
                    tokens.append(token)
                continue
            tokens.append(f"not_{token}" if negated else token)
            negated = (
                negated
                or token
                in {
                    "not",
                    "no",
                    "never",
                    "nothing",
                    "nobody",
                    "none",
                    "nor",
                    "neither",
                    "nowhere",
                    "cannot",
                    "without",
                }
                or token.endswith("n't")
            )
    if settings.min_token_length > 1:
        tokens = [t for t in tokens if len(t) >= settings.min_token_length or t in ("!", "?")]
    return tokens


TRICKY = [
    "''",
    "a''b",
    "'",
    "rock'n'roll",
    "don't!",
    "x'",
    "'x",
    "_under_score",
    "foo_bar'baz",
    "l33t 2'3",
    "\n\nnot\ngood",
    "NOT good. Fine",
    "n't n't",
    "|pipe| not |bad|",
    "tab\tnot\tbad",
    "\x00\x01",
    "Ünïcödé not bad",
    "it's' 'tis",
    "not!good",
    "never?bad",
    "no (good) bad",
    '"not" good',
    "a'|b",
    "don\u2019t like",
    "<b>not</b> &amp; good",
    "a'b'c'",
    "'''a'''b'''",
    "ABC'DEF",
    "x_'y",
    "9'9",
    "don't_",
    "e.g. not,good;bad:ok[x]y",
    "\r\nnot good",
    "&#39;not&#39; good",
    "I didn't like it. Great cast",
    "Wasn't it... NOT bad?! <br/>No way",
    "caf\u00e9 isn't good",
    "",
    "   ",
]


@pytest.mark.parametrize("negation", [False, True])
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("min_len", [1, 3])
def test_ascii_fast_path_equals_the_regex(negation: bool, lowercase: bool, min_len: int) -> None:
    settings = TokenizerSettings(lowercase=lowercase, negation=negation, min_token_length=min_len)
    rng = np.random.default_rng(0)
    alphabet = [*"abcXYZ09'_!?.,;:()[]\"|<>&- \n\t", "n't", "not ", "<br />"]
    fuzz = ["".join(rng.choice(alphabet, size=rng.integers(0, 30))) for _ in range(500)]
    for text in TRICKY + fuzz:
        assert tokenize(text, settings) == _reference(text, settings), repr(text)


def test_tokenize_many_shares_equal_tokens() -> None:
    a, b = tokenize_many(["the film the end", "The film"])
    assert a == ["the", "film", "the", "end"] and b == ["the", "film"]
    assert a[0] is a[2] is b[0] and a[1] is b[1]  # one string object per distinct token: bounded memory


def test_cpu_loader_leaves_the_features_where_they_are() -> None:
    dataset = TensorBatches(torch.zeros(10, 2), torch.zeros(10))
    loader = make_loader(dataset, 4, shuffle=False, seed=0, device=torch.device("cpu"))
    assert loader.dataset is dataset and not loader.pin_memory


def test_moved_features_are_sliced_on_their_device() -> None:
    # The "meta" device stands in for a GPU here: the index tensor must follow the features.
    dataset = TensorBatches(torch.zeros(10, 2), torch.zeros(10))
    moved = dataset.to(torch.device("meta"))
    assert moved is dataset.to(torch.device("meta"))  # one copy, however many loaders ask
    x, y = moved[[1, 3, 5]]
    assert x.device.type == y.device.type == "meta" and x.shape == (3, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_loader_slices_batches_on_the_gpu() -> None:
    features, labels = torch.randn(100, 3), torch.arange(100, dtype=torch.float32)
    device = torch.device("cuda")
    loader = make_loader(TensorBatches(features, labels), 16, shuffle=True, seed=0, device=device)
    for x, y in loader:
        assert x.device.type == y.device.type == "cuda"
        assert torch.equal(x.cpu(), features[y.long().cpu()])
    bags = encode([["a", "b"], ["b"], []] * 10, {"a": 0, "b": 1})
    bag_loader = make_loader(BagBatches(bags, np.zeros(30)), 8, shuffle=False, seed=0, device=device)
    assert bag_loader.pin_memory  # token bags are gathered on the CPU, then copied from pinned memory


def test_parallel_batch_prediction_equals_serial(
    trained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large inputs are spread over forked processes; the results must not change."""
    import sentiment.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "PARALLEL_MIN_TEXTS", 10)
    calls = []
    real_fork_map = predictor_module.fork_map
    monkeypatch.setattr(predictor_module, "fork_map", lambda *a: calls.append(a) or real_fork_map(*a))
    predictor = predictor_module.Predictor.load(trained_model)
    texts = [
        f"the film was {w} and the plot {v}" for w in ("great", "awful", "zzz") for v in ("moving", "dull")
    ] * 7
    serial = predictor.predict_proba(texts, workers=1)
    parallel = predictor.predict_proba(texts, workers=2)
    assert len(calls) == 1 and len(calls[0][0]) == 4  # two ranges per worker
    np.testing.assert_allclose(parallel[0], serial[0], rtol=0, atol=1e-12)
    assert np.array_equal(parallel[1], serial[1])
