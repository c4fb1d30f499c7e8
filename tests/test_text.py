"""TextEncoder: one way from text to token ids for training, the cache and prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment.ngrams import add_ngrams
from sentiment.phrases import apply_phrases
from sentiment.text import TextEncoder, encode
from sentiment.tokenizer import TokenizerSettings, tokenize, tokenize_many

TEXTS = [
    "Special effects were NOT good at all!",
    "<br />the special effects, the acting: not good",
    "",
    "unknown words only",
]
WORDS = ["special_effects", "were", "not", "good", "at", "all", "!", "the", "acting"]
GRAMS = ["not good", "special_effects were", "good at"]


def _encoder() -> TextEncoder:
    settings = TokenizerSettings(negation=False)
    return TextEncoder(settings, frozenset({"special_effects"}), 2, WORDS + GRAMS, len(WORDS))


def test_raw_texts_and_pre_tokenised_training_texts_get_the_same_ids() -> None:
    encoder = _encoder()
    words = [apply_phrases(t, encoder.phrases) for t in tokenize_many(TEXTS, encoder.settings)]
    by_words, by_text = encoder.encode_words(words), encoder.encode(TEXTS)
    assert np.array_equal(by_words.ids, by_text.ids) and np.array_equal(by_words.offsets, by_text.offsets)
    # and both are the plain composition: tokenise -> phrases -> n-grams -> look-up
    expected = encode(
        [add_ngrams(apply_phrases(tokenize(t), encoder.phrases), 2) for t in TEXTS], encoder.index
    )
    assert np.array_equal(by_text.ids, expected.ids)
    first = [encoder.vocab[i] for i in by_text.ids[by_text.offsets[0] : by_text.offsets[1]]]
    assert "special_effects" in first and "not good" in first and "special_effects were" in first


def test_known_words_count_words_not_ngrams() -> None:
    encoder = _encoder()
    bags = encoder.encode(TEXTS)
    assert encoder.known_words(bags).tolist() == [7, 6, 0, 0]
    assert bags.lengths.tolist()[0] > 7  # the n-gram tokens are in the bag too


def test_saved_and_loaded_encoder_encodes_alike() -> None:
    encoder = _encoder()
    raw = json.loads(json.dumps(encoder.to_dict()))  # what meta.json holds
    loaded = TextEncoder.from_dict(raw, list(encoder.vocab))
    assert loaded == encoder
    assert np.array_equal(loaded.encode(TEXTS).ids, encoder.encode(TEXTS).ids)


def test_ngram_ids_by_word_ids_equal_ngram_strings() -> None:
    """The vectorised n-gram look-up (word ids, no strings) gives the string path's ids, in its order."""
    import random

    rng = random.Random(5)
    words = [f"w{i}" for i in range(30)]
    known = words[:20]  # w20..w29 are unknown: an n-gram with one of them is never known
    grams = sorted({" ".join(rng.choices(known, k=rng.choice([2, 3]))) for _ in range(150)})
    encoder = TextEncoder(TokenizerSettings(), frozenset(), 3, known + grams, len(known))
    texts = [rng.choices(words, k=rng.randint(0, 40)) for _ in range(300)] + [[], ["w1"], ["w25", "w1"]]
    fast = encoder.encode_words(texts)
    assert encoder._ngram_tables is not None
    slow = encode([add_ngrams(t, 3) for t in texts], encoder.index)
    assert np.array_equal(fast.ids, slow.ids) and np.array_equal(fast.offsets, slow.offsets)
    assert (fast.ids >= len(known)).sum() > 100  # plenty of bigrams and trigrams were found


def test_a_few_texts_skip_the_ngram_tables_to_the_same_ids() -> None:
    """`predict` of one review should not build the look-up tables of every n-gram; its ids are the same."""
    import random

    rng = random.Random(6)
    known = [f"w{i}" for i in range(20)]
    grams = sorted({" ".join(rng.choices(known, k=2)) for _ in range(100)})
    encoder = TextEncoder(TokenizerSettings(), frozenset(), 2, known + grams, len(known))
    texts = [" ".join(rng.choices(known, k=12)) for _ in range(5)]
    few = encoder.encode(texts)
    assert "_ngram_tables" not in encoder.__dict__  # the string path ran
    assert (few.ids >= len(known)).sum() > 5  # and found bigrams
    encoder._ngram_tables  # noqa: B018 -- now built: the vectorised path runs
    again = encoder.encode(texts)
    assert np.array_equal(few.ids, again.ids) and np.array_equal(few.offsets, again.offsets)


def test_many_texts_in_small_batches_use_the_ngram_tables() -> None:
    """A server's requests or a large file encoded 512 texts at a time are many texts in all: ``expect``
    builds the vectorised look-up once (the string path is 2x slower), and the ids stay the same."""
    import random

    from sentiment.predictor import Predictor
    from sentiment.text import NGRAM_TABLES_MIN_TEXTS

    rng = random.Random(7)
    known = [f"w{i}" for i in range(20)]
    grams = sorted({" ".join(rng.choices(known, k=2)) for _ in range(100)})
    texts = [" ".join(rng.choices(known, k=12)) for _ in range(NGRAM_TABLES_MIN_TEXTS)]
    reference = TextEncoder(TokenizerSettings(), frozenset(), 2, known + grams, len(known)).encode(texts[:5])
    encoder = TextEncoder(TokenizerSettings(), frozenset(), 2, known + grams, len(known))
    encoder.expect(10)
    assert "_ngram_tables" not in encoder.__dict__  # a few texts: no tables
    encoder.expect(NGRAM_TABLES_MIN_TEXTS)
    assert encoder._ngram_tables is not None
    batch = encoder.encode(texts[:5])  # a small batch now takes the vectorised path, to the same ids
    assert np.array_equal(batch.ids, reference.ids) and np.array_equal(batch.offsets, reference.offsets)

    class Stop(Exception):
        pass

    # the predictor asks for the tables before it splits its input into batches
    seen: list[int] = []
    predictor = Predictor.__new__(Predictor)
    predictor.encoder = TextEncoder(TokenizerSettings(), frozenset(), 2, known + grams, len(known))
    predictor._predict = lambda texts, batch_size: (_ for _ in ()).throw(Stop())  # type: ignore[method-assign]
    predictor.encoder.expect = seen.append  # type: ignore[method-assign]
    with pytest.raises(Stop):
        predictor.predict_proba(texts)
    assert seen == [len(texts)]


def test_an_ngram_of_words_the_vocabulary_lacks_is_model_damage() -> None:
    """Training lists n-grams of its own words only; a vocab.json edited otherwise is a damaged model."""
    from sentiment.errors import ModelDirError

    encoder = TextEncoder(TokenizerSettings(), frozenset(), 2, ["good", "film", "good film", "bad film"], 2)
    with pytest.raises(ModelDirError, match="n-gram with the word 'bad'"):
        encoder.expect(10_000)
