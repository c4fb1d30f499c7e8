"""The compiled batch path (``sentiment.kernels``): the NumPy path's word ids, pooled rows, wide sums, known
word counts and probabilities, bit for bit, under every tokeniser setting, pooling and n-gram size."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("numba")

from sentiment import kernels
from sentiment import wide as wide_part
from sentiment.features import Features
from sentiment.ngrams import add_ngrams
from sentiment.text import TextEncoder
from sentiment.tokenizer import TokenizerSettings, tokenize
from test_wordlookup import HARD, _pool, _settings


def _texts(seed: int = 0) -> list[str]:
    rng, pool = random.Random(seed), _pool()
    texts = HARD + [" ".join(rng.sample(HARD, 4)) for _ in range(60)]
    return texts + ["".join(rng.choices(pool, k=rng.randint(0, 120))) for _ in range(300)]


def _encoder(settings: TokenizerSettings, ngrams: int, texts: list[str]) -> TextEncoder:
    """Words (about 70 % of the texts' tokens) and about half their n-grams of every size up to ``ngrams``."""
    rng = random.Random(2)
    tokens = sorted({t for text in texts for t in tokenize(text, settings)})
    # every token of 15 bytes or more (rows of 16 bytes, and the dict past them), about 70 % of the rest
    words = [t for t in tokens if len(t.encode("utf-8", "surrogatepass")) >= 15 or rng.random() < 0.7]
    known, grams = set(words), set()
    for text in texts:
        tokens = tokenize(text, settings)
        grams.update(g for g in add_ngrams(tokens, ngrams)[len(tokens) :] if rng.random() < 0.5)
    kept = sorted(g for g in grams if all(w in known for w in g.split(" ")))
    encoder = TextEncoder(settings, frozenset(), ngrams, words + kept, len(words))
    encoder.expect(10**6)  # the vectorised look-ups, which the kernels take their tables from
    return encoder


def _model(encoder: TextEncoder, pooling: str, outputs: int, seed: int = 0) -> tuple[Features, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = len(encoder.vocab)
    features = Features(pooling=pooling)
    features.vectors_ = rng.standard_normal((size, 24)).astype(np.float32)
    if pooling != "mean":
        features.weights_ = (rng.random(size) * 3).astype(np.float32)
    return features, rng.standard_normal((size, outputs)).astype(np.float32)


def _check(encoder: TextEncoder, features: Features, wide: np.ndarray | None, texts: list[str]) -> np.ndarray:
    compiled = kernels.CompiledEncoder.for_model(
        encoder, features.vectors_, features.weights_, features.pooling, wide
    )
    assert compiled is not None
    x, wide_logits, known = compiled.features(texts)
    bags = encoder.encode(texts)  # the NumPy path
    assert np.array_equal(x, features.transform(bags))
    assert np.array_equal(known, encoder.known_words(bags))
    if wide is not None:
        assert np.array_equal(wide_logits, wide_part.logits(bags, wide))
    return known


@pytest.mark.parametrize("settings", [s for s in _settings() if not s.negation], ids=str)
def test_the_kernels_give_the_numpy_paths_features(settings: TokenizerSettings) -> None:
    """Markup, entities, other scripts, control characters, tokens over 16 bytes (the dict), empty texts:
    word ids, then pooled rows, wide sums and known words equal to the NumPy path's."""
    texts = _texts()
    encoder = _encoder(settings, 2, texts)
    assert any(len(w.encode()) > 16 for w in encoder.vocab[: encoder.n_words])
    spaced = encoder.spaced(texts)
    features, wide = _model(encoder, "nb", 1)
    compiled = kernels.CompiledEncoder.for_model(encoder, features.vectors_, features.weights_, "nb", wide)
    assert compiled is not None
    ids, counts = compiled.word_ids(spaced)
    expected = encoder._word_lookup.word_ids(spaced, settings.min_token_length)
    assert np.array_equal(ids, expected[0]) and np.array_equal(counts, expected[1])
    known = _check(encoder, features, wide, texts)
    assert (known == 0).sum() >= 2 and (known > 3).sum() > 50  # empty texts and texts with words both


@pytest.mark.parametrize("ngrams", [1, 2, 3])
@pytest.mark.parametrize("pooling", ["mean", "nb", "tfidf"])
@pytest.mark.parametrize("outputs", [0, 1, 3])  # no wide part; one output (binary); three (multiclass)
def test_every_pooling_ngram_size_and_wide_part(ngrams: int, pooling: str, outputs: int) -> None:
    texts = _texts(1)
    encoder = _encoder(TokenizerSettings(), ngrams, texts)
    features, wide = _model(encoder, pooling, max(outputs, 1), seed=ngrams)
    if ngrams > 1:
        assert (encoder.encode(texts).ids >= encoder.n_words).sum() > 50  # n-grams were found
    _check(encoder, features, wide if outputs else None, texts)


def test_the_pairwise_sum_is_numpys() -> None:
    """``np.add.reduceat``'s float32 total of a text's weights: the first, plus NumPy's pairwise sum of the
    rest; lengths across the 8-value and 128-value block edges and several halvings."""
    rng = np.random.default_rng(0)
    for n in [*range(1, 300), 511, 512, 513, 1000, 1031, 4097]:
        a = (rng.random(n) * rng.choice([1e-3, 1.0, 1e3])).astype(np.float32)
        assert a[0] + kernels._pairwise(a, 1, n - 1) == np.add.reduceat(a, [0])[0], n


def test_models_the_kernels_do_not_cover_stay_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    encoder = _encoder(TokenizerSettings(), 2, texts)
    features, _ = _model(encoder, "nb", 1)
    assert kernels.CompiledEncoder.for_model(encoder, features.vectors_, None, "mean_max", None) is None
    negating = _encoder(TokenizerSettings(negation=True), 1, texts)
    vectors = features.vectors_[: len(negating.vocab)]
    assert kernels.CompiledEncoder.for_model(negating, vectors, None, "mean", None) is None
    monkeypatch.setenv("SENTIMENT_KERNELS", "0")
    assert not kernels.enabled()


def test_a_predictor_predicts_the_same_with_and_without_kernels(
    trained_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``Predictor``: once many texts are expected (a server, a large file) the kernels take the
    batches, and every probability and known-word count is the NumPy path's."""
    from sentiment.predictor import Predictor
    from sentiment.text import NGRAM_TABLES_MIN_TEXTS

    texts = _texts(2)
    compiled = Predictor.load(trained_model)
    compiled.expect(NGRAM_TABLES_MIN_TEXTS)
    assert isinstance(compiled._kernels, kernels.CompiledEncoder)
    monkeypatch.setenv("SENTIMENT_KERNELS", "0")
    plain = Predictor.load(trained_model)
    plain.expect(NGRAM_TABLES_MIN_TEXTS)
    assert plain._kernels is None
    fast = compiled.predict_proba(texts, batch_size=100)
    reference = plain.predict_proba(texts, batch_size=100)
    assert np.array_equal(fast[0], reference[0]) and np.array_equal(fast[1], reference[1])
    head = texts[:50]
    assert [p.to_dict() for p in compiled.predict(head)] == [p.to_dict() for p in plain.predict(head)]
    # a few texts too (a server's single-text requests): the kernels take them, and they answer as the
    # NumPy path's text-by-text route does
    calls = []
    features = compiled._kernels.features
    monkeypatch.setattr(
        compiled._kernels, "features", lambda batch: calls.append(len(batch)) or features(batch)
    )
    for few in ([texts[0]], texts[1:4]):
        got, want = compiled.predict_proba(few), plain.predict_proba(few)
        assert np.allclose(got[0], want[0], rtol=0, atol=1e-12) and np.array_equal(got[1], want[1])
        assert compiled.predict_dicts(few) == [p.to_dict() for p in plain.predict(few)]
    assert calls == [1, 1, 3, 3]


def test_imdb_reviews_get_the_same_features() -> None:
    """The first 2,000 IMDB training reviews (when ../shared is present): a bigram vocabulary, NB-weighted
    pooling and a wide part, as configs/imdb_fast.yaml trains."""
    from conftest import SHARED

    path = SHARED / "data" / "imdb" / "train.csv.gz"
    if not path.is_file():
        pytest.skip("../shared/data/imdb/train.csv.gz is not here")
    import pandas as pd

    texts = pd.read_csv(path, nrows=2000)["review"].tolist()
    settings = TokenizerSettings()
    counts: dict[str, int] = {}
    for text in texts:
        for token in add_ngrams(tokenize(text, settings), 2):
            counts[token] = counts.get(token, 0) + 1
    words = sorted(w for w, c in counts.items() if c >= 2 and " " not in w)
    known = set(words)
    grams = sorted(g for g, c in counts.items() if c >= 3 and " " in g and all(w in known for w in g.split()))
    encoder = TextEncoder(settings, frozenset(), 2, words + grams, len(words))
    encoder.expect(len(texts))
    features, wide = _model(encoder, "nb", 1)
    _check(encoder, features, wide, texts)


@pytest.mark.parametrize(
    "settings",
    [
        TokenizerSettings(),
        TokenizerSettings(lowercase=False),
        TokenizerSettings(strip_html=False),
        TokenizerSettings(lowercase=False, strip_html=False, min_token_length=2),
    ],
    ids=str,
)
def test_texts_are_cleaned_as_the_tokenizer_cleans_them(settings: TokenizerSettings) -> None:
    """``_clean`` (compiled) against ``spaced_utf8`` on 6,000 random texts full of markup, apostrophes, ! and
    ?, entities, upper case, and characters beyond ASCII of every kind (letters that lower to more
    characters, marks, spaces, CJK, emoji, lone surrogates, U+2019): the same bytes. Texts holding an entity,
    and texts beyond ASCII when ``min_token_length`` > 1, are handed to the tokeniser and come out the same
    too."""
    from sentiment.tokenizer import spaced_utf8

    rng = random.Random(5)
    pieces = [*"abcXYZ019'!?<>;/ \n\t.-_\"", "<br />", "</i>", "it's", "'tis", "dogs'", "GOOD", "don't"]
    pieces += ["&", " & ", "&1", "&;", "&&"]  # ampersands that html.unescape leaves alone
    others = [*pieces, "&amp;", "&#39;", "&lt;b&gt;", "caf\u00e9", "\u2019"]
    unicode = [
        *pieces,
        *_pool(),
        "\u2019",
        "don\u2019t",
        "\u0130STANBUL",
        "STRA\u00dfE",
        "<\u00e9>",
        "'\u00e9'",
    ]
    # lower cases one by one in the kernel: longer in UTF-8 (U+023A, U+023E), ASCII (the Kelvin sign),
    # beyond the BMP (Deseret), capital sharp s; and the capital sigma, lowered by its place in a word
    unicode += [
        "\u023a",
        "\u023e",
        "\u212a",
        "\U00010400",
        "\u1e9e",
        "\u00c9T\u00c9",
        "\u03a3",
        "\u039f\u03a3 ",
    ]
    texts = ["".join(rng.choices(pieces, k=rng.randint(0, 60))) for _ in range(3000)] + HARD
    texts += ["".join(rng.choices(unicode, k=rng.randint(0, 60))) for _ in range(2000)]
    texts += ["".join(rng.choices(others, k=rng.randint(0, 60))) for _ in range(1000)]
    encoder = _encoder(settings, 1, texts[:200])
    vectors = np.zeros((len(encoder.vocab), 4), np.float32)
    compiled = kernels.CompiledEncoder.for_model(encoder, vectors, None, "mean", None)
    assert compiled is not None
    tokeniser_calls = []
    spaced = encoder.spaced
    encoder.spaced = lambda one: tokeniser_calls.append(one) or spaced(one)
    buffer, ends = compiled.cleaned(texts)
    del encoder.spaced
    starts = np.concatenate([[0], ends[:-1]])
    got = [buffer[a : b - 1].tobytes() for a, b in zip(starts, ends, strict=True)]
    assert got == encoder.spaced(texts)  # spaced_utf8, or the words joined where it does not apply
    cleanable = settings.min_token_length <= 1
    if cleanable:
        assert got == [spaced_utf8(t, settings) for t in texts]
    entity = [settings.strip_html and kernels._ENTITY.search(t) is not None for t in texts]
    handed = [e or (not t.isascii() and not cleanable) for t, e in zip(texts, entity, strict=True)]
    assert len(tokeniser_calls) == sum(handed)
    if cleanable:  # most texts beyond ASCII were cleaned by _clean
        assert sum(not t.isascii() and not h for t, h in zip(texts, handed, strict=True)) > 1500


def test_the_kernels_lower_case_and_letters_are_pythons() -> None:
    """``_lower`` and ``_alnum`` are ``str.lower`` and ``str.isalnum`` for every code point: the one
    character whose lower case is longer (U+0130) is one _clean leaves to ``str.lower``, and no character
    from ``CASED_BELOW`` on has a lower case of its own."""
    lower, alnum = kernels._lower(), kernels._alnum()
    longer = []
    for c in range(0x110000):
        char = chr(c)
        low = char.lower()
        if len(low) != 1:
            longer.append(char)
        elif c < kernels.CASED_BELOW:
            assert lower[c] == ord(low), hex(c)
        else:
            assert low == char, hex(c)
        assert alnum[c] == char.isalnum(), hex(c)
    assert longer == ["\u0130"] and "\u0130" in kernels._LOWERED_IN_CONTEXT


def test_without_a_writable_cache_the_kernels_still_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba refuses ``cache=True`` when neither the package's folder nor the user's cache folder can be
    written (a read-only install): the kernels are then compiled on each run instead of failing."""
    import numba

    real = numba.njit

    def no_cache_place(*args, **options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **options)

    monkeypatch.setattr(numba, "njit", no_cache_place)

    def double(x):
        return 2 * x

    compiled = kernels._jit(double)
    assert compiled(21) == 42 and not compiled._cache.__class__.__name__.startswith("FunctionCache")
