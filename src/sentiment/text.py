"""Text -> token ids, in one place: tokeniser settings, learnt phrases, word n-grams and the vocabulary.

A ``TextEncoder`` is built once in training (``sentiment.prepare``), saved with the model and used again by
the cache and the predictor, so every side turns a text into the same ids. Pure Python and NumPy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from itertools import chain, repeat
from typing import Any

import numpy as np

from sentiment.arrays import adjacent_view, release_pages, unique_sorted
from sentiment.errors import ModelDirError, check_record_keys
from sentiment.ngrams import add_ngrams, ngram_word_ids, window_keys
from sentiment.phrases import apply_phrases
from sentiment.tokenizer import TokenizerSettings, spaced_utf8, tokenize
from sentiment.wordlookup import IntTable, WordLookup


@dataclass
class TokenBags:
    """Known-token ids of many texts, flattened: text i owns ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray  # int64; or int32 mapped from disk (data.streaming), read a part at a time
    offsets: np.ndarray  # int64, len = n_texts + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, rows: np.ndarray) -> TokenBags:
        """Bags of the given rows, in that order (vectorised gather), in memory with int64 ids."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, lengths = self.offsets[rows], self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # index of each output token in self.ids: start of its row + position inside the row
        pos = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        return TokenBags(self.ids[np.repeat(starts, lengths) + pos].astype(np.int64, copy=False), offsets)

    def chunks(self, tokens: int = 1 << 22) -> Iterator[tuple[int, TokenBags]]:
        """(first row, bags) of consecutive rows holding about ``tokens`` tokens each (at least one row),
        with their ids in memory: a pass over ids mapped from disk keeps one chunk resident, not the file."""
        start, n = 0, len(self)
        while start < n:
            end = int(np.searchsorted(self.offsets, self.offsets[start] + tokens, side="right")) - 1
            end = min(max(end, start + 1), n)
            lo, hi = self.offsets[start], self.offsets[end]
            yield (
                start,
                TokenBags(np.array(self.ids[lo:hi], dtype=np.int64), self.offsets[start : end + 1] - lo),
            )
            release_pages(self.ids)
            start = end


def distinct_tokens(bags: TokenBags, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(text index, token id) of every distinct token of every text, sorted by text."""
    doc = np.repeat(np.arange(len(bags), dtype=np.int64), bags.lengths)
    pairs, _ = unique_sorted(doc * vocab_size + bags.ids)
    return pairs // vocab_size, pairs % vocab_size


def encode(token_lists: Sequence[Sequence[str]], index: dict[str, int]) -> TokenBags:
    """Map tokens to vocabulary ids, dropping unknown ones."""
    return known_bags(*token_ids(token_lists, index))


def token_ids(token_lists: Sequence[Sequence[str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(every token's id back to back, -1 for a token not in ``index``; each text's length in tokens)."""
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    tokens = chain.from_iterable(token_lists)
    return np.fromiter(map(index.get, tokens, repeat(-1)), np.int64, int(lengths.sum())), lengths


def known_bags(ids: np.ndarray, lengths: np.ndarray) -> TokenBags:
    """The bags of texts given as ``token_ids``' result, unknown tokens (-1) dropped."""
    known = ids >= 0
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.bincount(doc[known], minlength=len(lengths)), out=offsets[1:])
    return TokenBags(ids[known], offsets)


def concat_bags(parts: Sequence[TokenBags]) -> TokenBags:
    """The bags of several parts, one after the other. Parts whose ids lie back to back in one array mapped
    from disk (the splits of data.streaming) share it: the result is a view, not a copy in memory."""
    if not parts:
        return TokenBags(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
    shifts = np.cumsum([0] + [len(p.ids) for p in parts[:-1]])
    offsets = [parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)]
    ids = adjacent_view([p.ids for p in parts])
    return TokenBags(np.concatenate([p.ids for p in parts]) if ids is None else ids, np.concatenate(offsets))


NGRAM_TABLES_MIN_TEXTS = 2000
# per review, one at a time: 283 us by dict, 339 us by arrays; 16 at a time: 156 vs 107 us (IMDB, bigrams)
VECTORISED_MIN_TEXTS = 8


@dataclass
class TextEncoder:
    """How a text becomes token ids: ``tokenize`` -> phrases -> n-grams -> vocabulary look-up.

    ``vocab[:n_words]`` are words (Word2Vec's, phrases included); the rest are n-grams, whose vectors start
    from their words' (``sentiment.ngrams``). Unknown tokens are dropped.
    """

    settings: TokenizerSettings = field(default_factory=TokenizerSettings)
    phrases: frozenset[str] = frozenset()
    ngrams: int = 1
    vocab: list[str] = field(default_factory=list)
    n_words: int = 0

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.vocab)}

    def words(self, text: str) -> list[str]:
        """The word tokens of a text (what Word2Vec learns from): tokeniser, then phrases."""
        tokens = tokenize(text, self.settings)
        return apply_phrases(tokens, self.phrases) if self.phrases else tokens

    def tokens(self, words: list[str]) -> list[str]:
        """Word tokens plus their n-grams: what is looked up in the vocabulary."""
        return add_ngrams(words, self.ngrams) if self.ngrams > 1 else words

    def encode_words(self, word_lists: Sequence[list[str]]) -> TokenBags:
        """Ids of texts already split into words (the training texts, tokenised once)."""
        if self.ngrams > 1 and self._ngram_tables is not None:
            return self._encode_with_ngrams(word_lists)
        # n-grams are added a slice at a time: the longer token lists are never all held at once
        return encode([self.tokens(w) for w in word_lists] if self.ngrams > 1 else word_lists, self.index)

    @cached_property
    def _ngram_tables(self) -> list[IntTable] | None:
        """For each n-gram size 2..ngrams: the known n-grams' token ids by key (their word ids as digits in
        base ``n_words``). None when a key could overflow int64 (then n-gram strings are used)."""
        base = max(self.n_words, 1)
        if base ** max(self.ngrams, 1) >= 2**63:
            return None
        try:
            by_size = ngram_word_ids(self.vocab[self.n_words :], self.index)
        except KeyError as exc:  # only a damaged vocab.json: training lists n-grams of its own words
            raise ModelDirError(
                f"the vocabulary lists an n-gram with the word {exc} that it does not hold; retrain or "
                "re-download the model"
            ) from None
        tables = []
        for size in range(2, self.ngrams + 1):
            rows, word_ids = by_size.get(size, (np.zeros(0, np.int64), np.zeros((0, size), np.int64)))
            k = np.zeros(len(rows), dtype=np.int64)
            for column in range(size):
                k = k * base + word_ids[:, column]
            tables.append(IntTable(k, rows + self.n_words))
        return tables

    def _encode_with_ngrams(self, word_lists: Sequence[list[str]]) -> TokenBags:
        """Ids of words and their n-grams without building an n-gram string: each n-gram is looked up by its
        word ids, vectorised (3x faster than joining and hashing strings). Same ids in the same order as
        ``encode([self.tokens(w) ...])``: each text's known words, then its known bigrams, then trigrams."""
        return self.encode_word_ids(*token_ids(word_lists, self.index))

    def encode_word_ids(self, word_ids: np.ndarray, lengths: np.ndarray) -> TokenBags:
        """Token ids of texts given as their word ids (``token_ids``' result): their known words, then their
        known n-grams (when the vocabulary has n-grams: ``_ngram_tables`` must not be None)."""
        if self.ngrams == 1 or self.n_words >= len(self.vocab):
            return known_bags(word_ids, lengths)
        n_texts, total = len(lengths), len(word_ids)
        doc = np.repeat(np.arange(n_texts, dtype=np.int64), lengths)
        known = word_ids >= 0
        parts_doc, parts_id = [doc[known]], [word_ids[known]]
        base = max(self.n_words, 1)
        for size, table in enumerate(self._ngram_tables or [], start=2):
            if total < size or not len(table):
                continue
            starts, key = window_keys(word_ids, doc, size, base)
            ids = table.get(key)
            found = ids >= 0
            parts_doc.append(doc[starts[found]])
            parts_id.append(ids[found])
        all_doc = np.concatenate(parts_doc)
        # Each part is in text order (words, then bigrams, ... each by position): a stable sort by text alone
        # merges them into each text's words, then its bigrams, ... (a lexsort on three keys took 3x longer)
        order = np.argsort(all_doc, kind="stable")
        offsets = np.zeros(n_texts + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_doc, minlength=n_texts), out=offsets[1:])
        return TokenBags(np.concatenate(parts_id)[order], offsets)

    @cached_property
    def _word_lookup(self) -> WordLookup | None:
        """The vectorised look-up of many texts' words (``sentiment.wordlookup``); None where n-grams cannot
        be looked up by word ids (``_ngram_tables``), as the look-up hands word ids on to them."""
        if self.ngrams > 1 and self._ngram_tables is None:
            return None
        try:
            return WordLookup(self.vocab[: self.n_words])
        except ValueError:  # two words with one 64-bit key: the dictionary look-up stays exact
            return None

    def expect(self, n_texts: int) -> None:
        """Get ready to encode about ``n_texts`` texts, in one call or in many small ones (a server's
        requests, a large input encoded a batch at a time): the vectorised look-ups pay for their tables
        (0.8 s for 230,000 bigrams) only on many texts, and are about 2x faster from then on."""
        if n_texts >= NGRAM_TABLES_MIN_TEXTS:
            self._word_lookup  # noqa: B018 -- built once (with the n-gram tables it needs), cached

    def _encode_vectorised(self, texts: Sequence[str]) -> TokenBags:
        """``encode``'s ids through the vectorised word look-up. Texts reach it as the tokeniser's cleaned-up
        bytes (``spaced_utf8``), or where that does not apply (negation marking, phrases, a minimum token
        length on text beyond ASCII) as their words, tokenised one by one, joined by spaces."""
        lookup = self._word_lookup
        assert lookup is not None
        return self.encode_word_ids(*lookup.word_ids(self.spaced(texts), self.settings.min_token_length))

    def spaced(self, texts: Sequence[str]) -> list[bytes]:
        """Each text's words as UTF-8 bytes that ASCII whitespace separates (what the vectorised look-ups
        take): the tokeniser's cleaned-up bytes (``spaced_utf8``), or where that does not apply its words
        joined by spaces."""
        settings, direct = self.settings, not self.phrases
        return [
            (direct and spaced_utf8(text, settings))
            or " ".join(self.words(text)).encode("utf-8", "surrogatepass")
            for text in texts
        ]

    def encode(self, texts: Sequence[str], chunk: int = 4096) -> TokenBags:
        """Ids of raw texts, a chunk at a time: one chunk's tokens are held at most."""
        index, settings, phrases, n = self.index, self.settings, self.phrases, self.ngrams
        # A few texts (a `predict` of one review) are tokenised one by one and join their n-grams as strings,
        # to the same ids, unless the vectorised look-ups are built already (``expect``); even then, the
        # array operations of the word look-up cost more than they save below VECTORISED_MIN_TEXTS texts.
        self.expect(len(texts))
        if len(texts) >= VECTORISED_MIN_TEXTS and self.__dict__.get("_word_lookup") is not None:
            return concat_bags(
                [self._encode_vectorised(texts[i : i + chunk]) for i in range(0, len(texts), chunk)]
            )
        if n > 1 and "_ngram_tables" in self.__dict__ and self._ngram_tables is not None:
            return concat_bags(
                [
                    self._encode_with_ngrams([self.words(t) for t in texts[i : i + chunk]])
                    for i in range(0, len(texts), chunk)
                ]
            )

        def tokens_of(text: str) -> list[str]:  # words() then tokens(), inlined: this runs once per text
            tokens = tokenize(text, settings)
            if phrases:
                tokens = apply_phrases(tokens, phrases)
            return add_ngrams(tokens, n) if n > 1 else tokens

        return concat_bags(
            [encode([tokens_of(t) for t in texts[i : i + chunk]], index) for i in range(0, len(texts), chunk)]
        )

    def known_words(self, bags: TokenBags) -> np.ndarray:
        """Known words per text: ids below ``n_words`` (n-gram tokens are not words)."""
        if self.n_words >= len(self.vocab):
            return bags.lengths
        doc = np.repeat(np.arange(len(bags), dtype=np.int64), bags.lengths)
        return np.bincount(doc[bags.ids < self.n_words], minlength=len(bags))

    def to_dict(self) -> dict[str, Any]:
        """Everything but the vocabulary (saved apart, as a plain JSON list)."""
        return {
            "tokenizer": asdict(self.settings),
            "phrases": sorted(self.phrases),
            "ngrams": self.ngrams,
            "n_words": self.n_words,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], vocab: list[str]) -> TextEncoder:
        """``to_dict``'s record (meta.json's ``text``, a cache entry's) over ``vocab``, checked before
        anything is built from it: a missing or unknown key, a value of the wrong type or out of range (n-gram
        sizes 1 to 5, ``n_words`` within the vocabulary) is a ValueError that starts with the key
        (``ngrams = 0: ...``, ``tokenizer.split = 'evil': ...``)."""
        from reprlib import repr as short

        keys = ("tokenizer", "phrases", "ngrams", "n_words")
        check_record_keys(raw, "text settings", keys, keys)
        tokenizer, phrases, ngrams, n_words = (raw[key] for key in keys)
        if not isinstance(tokenizer, dict):
            raise ValueError(f"tokenizer = {short(tokenizer)}: must be an object of tokenizer settings")
        try:
            settings = TokenizerSettings.from_dict(tokenizer)
        except ValueError as exc:
            raise ValueError(f"tokenizer.{exc}") from None
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise ValueError(f"phrases = {short(phrases)}: must be a list of strings")
        if isinstance(ngrams, bool) or not isinstance(ngrams, int) or not 1 <= ngrams <= 5:
            raise ValueError(f"ngrams = {short(ngrams)}: must be an integer from 1 to 5")
        if isinstance(n_words, bool) or not isinstance(n_words, int) or not 0 <= n_words <= len(vocab):
            raise ValueError(
                f"n_words = {short(n_words)}: must be an integer from 0 to {len(vocab):,} (the vocabulary)"
            )
        return cls(settings, frozenset(phrases), ngrams, vocab, n_words)


@dataclass
class Cover:
    """Which word positions each known token of a text covers, as (token, word) pairs: a word covers itself,
    an n-gram token each of its words."""

    token: np.ndarray  # index into the text's known-token ids
    word: np.ndarray  # word position
    n_words: int

    def dense(self, n_tokens: int) -> np.ndarray:
        """(tokens, words) 0/1 matrix."""
        out = np.zeros((n_tokens, self.n_words))
        out[self.token, self.word] = 1.0
        return out

    def known_words(self) -> np.ndarray:
        return np.bincount(self.word, minlength=self.n_words) > 0
