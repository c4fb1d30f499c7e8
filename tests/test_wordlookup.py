"""The vectorised look-up of many texts (serving, batch prediction): the ids of tokenize + dict look-up."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sentiment.ngrams import add_ngrams
from sentiment.text import TextEncoder, concat_bags, encode, token_ids
from sentiment.tokenizer import TokenizerSettings, tokenize
from sentiment.wordlookup import WIDTH, IntTable, WordLookup, split_tokens

HARD = [
    "A GREAT film!!! Really?! I'd say it's 10/10 -- wasn't it?",
    "<br /><br />The acting &amp; the score &lt;br&gt; were 'fine', the dogs' bowls rock'n'roll 'tis",
    "Caf\u00e9 cr\u00e8me, na\u00efve \u2014 \u201cquoted\u201d and don\u2019t; \u00a0nbsp\u00a0here",
    "\u212a is a Kelvin sign, \u0130stanbul, stra\u00dfe, emoji \U0001f600 ok",
    "\u65e5\u672c\u8a9e\u306e\u6620\u753b (18 bytes), \u65e5\u672c\u8a9e (9)",
    "tabs\tand\r\nnewlines\x0bvertical\x0cform\x1cseparators\x1d\x1e\x1fend",
    "supercalifragilisticexpialidocious exactlysixteen16 exactlysixteen1 exactlysixteen167 x " * 2,
    "",
    "   ",
    "!?!? ... ---",
    "under_score snake_case_word 3.14 1,000 $5 50%",
    "<a href='x'>link</a> &#39;quoted&#39; &quot;double&quot; & alone",
    "NOT good, never bad; not at all. No way!",
]


def _settings() -> list[TokenizerSettings]:
    return [
        TokenizerSettings(),
        TokenizerSettings(lowercase=False),
        TokenizerSettings(strip_html=False),
        TokenizerSettings(split="whitespace", lowercase=False, strip_html=False),
        TokenizerSettings(split="whitespace"),
        TokenizerSettings(min_token_length=3),
        TokenizerSettings(negation=True),
    ]


def _vocabulary(texts: list[str], settings: TokenizerSettings, seed: int) -> list[str]:
    """About 70 % of the texts' tokens (the rest stay unknown), and all those about a row wide or wider."""
    rng = random.Random(seed)
    tokens = sorted({t for text in texts for t in tokenize(text, settings)})
    return [t for t in tokens if len(t.encode()) >= WIDTH - 1 or rng.random() < 0.7]


def test_int_table_answers_as_a_dict() -> None:
    rng = np.random.default_rng(0)
    keys = np.unique(np.concatenate([rng.integers(-(2**62), 2**62, 5000), np.arange(300) * 1024]))
    values = rng.integers(0, 10**9, len(keys))
    table = IntTable(keys, values)
    reference = dict(zip(keys.tolist(), values.tolist(), strict=True))
    queries = np.concatenate([keys, rng.integers(-(2**62), 2**62, 5000), np.arange(600) * 1024])
    assert table.get(queries).tolist() == [reference.get(k, -1) for k in queries.tolist()]
    assert len(table) == len(keys)
    assert IntTable(np.zeros(0, np.int64), np.zeros(0, np.int64)).get(np.array([0, 5])).tolist() == [-1, -1]


@pytest.mark.parametrize("settings", _settings(), ids=str)
def test_word_ids_equal_tokenize_and_dict_look_up(settings: TokenizerSettings) -> None:
    """Texts as the server gets them: markup, entities, curly quotes, other scripts, control characters,
    tokens longer than a row of ``WIDTH`` bytes, empty texts; under every tokeniser setting."""
    from sentiment.tokenizer import spaced_utf8

    texts = HARD + [" ".join(random.Random(i).sample(HARD, 3)) for i in range(30)]
    vocab = _vocabulary(texts, settings, seed=1)
    assert any(len(w.encode()) > WIDTH for w in vocab) and any(len(w.encode()) == WIDTH for w in vocab)
    lookup = WordLookup(vocab)
    spaced = [spaced_utf8(t, settings) or " ".join(tokenize(t, settings)).encode() for t in texts]
    ids, lengths = lookup.word_ids(spaced, settings.min_token_length)
    expected_ids, expected_lengths = token_ids(
        [tokenize(t, settings) for t in texts], {w: i for i, w in enumerate(vocab)}
    )
    assert np.array_equal(lengths, expected_lengths) and np.array_equal(ids, expected_ids)
    assert (ids >= 0).sum() > 100 and (ids < 0).sum() > 20  # known and unknown tokens both


@pytest.mark.parametrize("ngrams", [1, 2, 3])
@pytest.mark.parametrize("phrases", [False, True])
def test_the_vectorised_encoder_gives_the_string_paths_ids(ngrams: int, phrases: bool) -> None:
    settings = TokenizerSettings()
    texts = HARD + [" ".join(random.Random(i).sample(HARD, 4)) for i in range(50)]
    words = _vocabulary(texts, settings, seed=2)
    joined = frozenset({"the_acting", "great_film"}) if phrases else frozenset()
    words += sorted(joined)
    rng = random.Random(3)
    grams: set[str] = set()
    for text in texts:
        tokens = tokenize(text, settings)
        grams.update(g for g in add_ngrams(tokens, ngrams)[len(tokens) :] if rng.random() < 0.5)
    known = set(words)
    grams_kept = sorted(g for g in grams if all(w in known for w in g.split(" ")))
    encoder = TextEncoder(settings, joined, ngrams, words + grams_kept, len(words))
    reference = TextEncoder(settings, joined, ngrams, words + grams_kept, len(words)).encode(texts[:40])
    assert "_word_lookup" not in encoder.__dict__
    encoder.expect(10**6)
    assert encoder._word_lookup is not None
    fast = encoder.encode(texts[:40])
    assert np.array_equal(fast.offsets, reference.offsets) and np.array_equal(fast.ids, reference.ids)
    if ngrams > 1:
        assert (fast.ids >= len(words)).sum() > 10  # n-grams were found
    # and the plain composition, spelled out: tokenise -> phrases -> n-grams -> dict look-up
    from sentiment.phrases import apply_phrases

    spelled = encode(
        [add_ngrams(apply_phrases(tokenize(t, settings), joined), ngrams) for t in texts[:40]], encoder.index
    )
    assert np.array_equal(fast.ids, spelled.ids)


def test_imdb_reviews_get_the_same_ids() -> None:
    """The first 3,000 IMDB training reviews (when ../shared is present) through a bigram vocabulary."""
    from conftest import SHARED

    path = SHARED / "data" / "imdb" / "train.csv.gz"
    if not path.is_file():
        pytest.skip("../shared/data/imdb/train.csv.gz is not here")
    import pandas as pd

    texts = pd.read_csv(path, nrows=3000)["review"].tolist()
    settings = TokenizerSettings()
    counts: dict[str, int] = {}
    for text in texts:
        for token in tokenize(text, settings):
            counts[token] = counts.get(token, 0) + 1
    words = sorted(w for w, c in counts.items() if c >= 2)
    known = set(words)
    bigram_counts: dict[str, int] = {}
    for text in texts[:1000]:
        tokens = tokenize(text, settings)
        for gram in add_ngrams(tokens, 2)[len(tokens) :]:
            bigram_counts[gram] = bigram_counts.get(gram, 0) + 1
    grams = sorted(g for g, c in bigram_counts.items() if c >= 3 and all(w in known for w in g.split(" ")))
    # the string path: each call encodes fewer texts than the vectorised look-up is built for
    slow = TextEncoder(settings, frozenset(), 2, words + grams, len(words))
    reference = concat_bags([slow.encode(texts[i : i + 1000]) for i in range(0, len(texts), 1000)])
    assert "_word_lookup" not in slow.__dict__
    encoder = TextEncoder(settings, frozenset(), 2, words + grams, len(words))
    encoder.expect(len(texts))
    assert encoder._word_lookup is not None and len(texts) >= 2000
    fast = encoder.encode(texts)
    assert np.array_equal(fast.offsets, reference.offsets) and np.array_equal(fast.ids, reference.ids)


def _pool() -> list[str]:
    """Characters of many kinds: ASCII, Latin letters, punctuation and spaces beyond ASCII, combining and
    spacing marks (Devanagari), CJK, emoji, digits of other scripts, lone surrogates, markup."""
    ranges = [(0x20, 0x7F), (0xA0, 0x180), (0x2000, 0x2070), (0x300, 0x370), (0x900, 0x980), (0x600, 0x660)]
    chars = [chr(c) for lo, hi in ranges for c in range(lo, hi)]
    chars += ["\u65e5", "\u672c", "\U0001f600", "\u0660", "\u00b2", "\u212a", "\u0130", "\ud800", "\udcff"]
    chars += [
        "\x85",
        "\u3000",
        "\u2028",
        "\x1c",
        "\t",
        "\n",
        "\r",
        "'",
        "\u2019",
        "!",
        "?",
        "_",
        "<b>",
        "&amp;",
    ]
    return chars + list("abcdefghij") * 20  # enough letters that words form


@pytest.mark.parametrize("settings", _settings(), ids=str)
def test_spaced_bytes_split_into_the_tokenizers_tokens(settings: TokenizerSettings) -> None:
    """``spaced_utf8`` against ``tokenize`` on 3,500 random texts of every kind of character: split at ASCII
    whitespace and decoded, the same tokens (before ``min_token_length``, which the look-up applies)."""
    from dataclasses import replace

    from sentiment.tokenizer import spaced_utf8

    rng, pool = random.Random(11), _pool()
    ascii_pool = [c for c in pool if c.isascii()]
    texts = ["".join(rng.choices(pool, k=rng.randint(0, 80))) for _ in range(3000)] + HARD
    texts += ["".join(rng.choices(ascii_pool, k=rng.randint(0, 80))) for _ in range(500)]
    unfiltered = replace(settings, min_token_length=1)
    covered = 0
    for text in texts:
        spaced = spaced_utf8(text, settings)
        if spaced is None:
            assert settings.negation or (settings.min_token_length > 1 and not text.isascii())
            continue
        covered += 1
        buffer, split = split_tokens([spaced])  # as the look-up splits them
        tokens = [
            buffer[a : a + n].tobytes().decode("utf-8", "surrogatepass")
            for a, n in zip(split.starts, split.lengths, strict=True)
        ]
        assert tokens == tokenize(text, unfiltered), text
    assert covered == 0 if settings.negation else covered > 100
