"""Vocabulary ids of many texts at once, in NumPy: the vectorised look-up behind serving and batch prediction.

Tokenising a review and looking up its words one Python string at a time costs about 80 us; the server's
batch path spent most of its time there. Here the texts of a batch are cleaned into UTF-8 bytes by the
tokeniser (``tokenizer.spaced_utf8``: C-speed ``str`` and ``bytes`` methods), joined into one byte array,
split at ASCII whitespace, and every token is looked up by its bytes in an open-addressing hash table, all as
array operations. The ids are exactly ``tokenize`` + dictionary look-up's (a match compares the whole token
with the vocabulary word, not only a hash). Texts that ``spaced_utf8`` does not cover (negation marking, ...)
are tokenised one by one, as before, and reach the look-up as their tokens joined by spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# str.split()'s whitespace within ASCII: \t \n \v \f \r, the four separators \x1c-\x1f, and space
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_MARKS = (ord("!"), ord("?"))  # one-character tokens that min_token_length keeps (as tokenize does)
WIDTH = 16  # bytes of a token compared as two integers (99.99 % of IMDB's tokens); longer ones: a dict
FILL = 2  # slots per key: at most half full (4 measured no faster on IMDB bigrams, with twice the memory)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the multiplier spreads keys over the slots


class IntTable:
    """int64 key -> value (>= 0) for many keys at once: open addressing with linear probing, one vectorised
    gather per probe, and a binary search (``np.searchsorted``) for the keys that the first probe leaves
    open: one random read for most keys instead of ~18 (encoding IMDB reviews with bigrams: 81-92 us per
    review, against 136-155 with a binary search alone). ``get`` answers -1 for a key not in the table."""

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        keys, values = np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64)
        self.count = len(keys)
        self.bits = max(int(len(keys) * FILL - 1).bit_length(), 4)
        size = 1 << self.bits
        self.keys = np.zeros(size, dtype=np.int64)
        self.values = np.full(size, -1, dtype=np.int64)  # -1 marks an empty slot
        order = np.argsort(keys)
        self.sorted_keys, self.sorted_values = keys[order], values[order]
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        while len(pending):  # place every key whose slot is free; the others move one slot on
            slot = slots[pending]
            free = self.values[slot] < 0
            # of several keys wanting one free slot, the first takes it
            _, first = np.unique(slot[free], return_index=True)
            placed = pending[free][first]
            self.keys[slots[placed]] = keys[placed]
            self.values[slots[placed]] = values[placed]
            done = np.zeros(len(keys), dtype=bool)
            done[placed] = True
            pending = pending[~done[pending]]
            slots[pending] = (slots[pending] + 1) & (size - 1)

    def __len__(self) -> int:
        return self.count

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.view(np.uint64) * _MIX) >> np.uint64(64 - self.bits)).astype(np.int64)

    def get(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        slots = self._slots(keys)
        stored, value = self.keys[slots], self.values[slots]
        same = stored == keys
        out = np.where(same, value, -1)  # an empty slot (-1) ends the search too: not in the table
        pending = np.flatnonzero(~same & (value >= 0))  # another key's slot: the key may be further on
        if len(pending):
            # The few keys left: a binary search. Probing on would take as many rounds of array
            # operations as the longest run of full slots (10-30), which costs more than it saves.
            at = np.minimum(np.searchsorted(self.sorted_keys, keys[pending]), len(self.sorted_keys) - 1)
            found = self.sorted_keys[at] == keys[pending]
            out[pending[found]] = self.sorted_values[at[found]]
        return out


def _token_keys(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A 64-bit key per token from its two 8-byte halves, to find a candidate word by; the match itself
    compares the halves."""
    key = first * np.uint64(0xFF51AFD7ED558CCD)
    key ^= key >> np.uint64(29)
    key = (key ^ second) * np.uint64(0xC4CEB9FE1A85EC53)
    key ^= key >> np.uint64(32)
    return key.view(np.int64)


@dataclass
class Split:
    """Tokens of joined texts: each token's first byte and length, and the text it belongs to."""

    starts: np.ndarray
    lengths: np.ndarray
    text: np.ndarray


def split_tokens(spaced: Sequence[bytes], min_length: int = 1) -> tuple[np.ndarray, Split]:
    """``spaced`` (UTF-8 bytes) joined by newlines (then ``WIDTH`` spaces, for ``_halves``), and their
    tokens: runs of bytes that are not ASCII whitespace, as ``str.split`` finds them in ASCII text; those
    shorter than ``min_length`` bytes dropped, but ! and ?. (Tokens joined by spaces never hold whitespace,
    and a token's length in bytes is at least its length in characters.)"""
    buffer = np.frombuffer(b"\n".join(spaced) + b"\n" + b" " * WIDTH, dtype=np.uint8)
    token = ~_SPACE[buffer]
    edges = np.diff(token.view(np.int8), prepend=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - starts  # the buffer ends in whitespace: every token ends
    if min_length > 1:
        keep = (lengths >= min_length) | np.isin(buffer[starts], _MARKS) & (lengths == 1)
        starts, lengths = starts[keep], lengths[keep]
    ends = np.cumsum(np.fromiter(map(len, spaced), dtype=np.int64, count=len(spaced)) + 1)
    return buffer, Split(starts, lengths, np.searchsorted(ends, starts, side="right"))


class WordLookup:
    """The ids of a vocabulary's words, for ``word_ids`` of many texts at once. A word of up to ``WIDTH``
    UTF-8 bytes (nearly every token) is compared as two 8-byte integers, a longer one looked up in a dict."""

    def __init__(self, words: Sequence[str]) -> None:
        # a word holding whitespace is never one token (tokenisers split there)
        words_ok = [
            (i, w.encode("utf-8", "surrogatepass")) for i, w in enumerate(words) if w and w.split() == [w]
        ]
        short = [(i, b) for i, b in words_ok if len(b) <= WIDTH]
        self.long = {b: i for i, b in words_ok if len(b) > WIDTH}
        buffer = np.frombuffer(b"".join(b for _, b in short) + bytes(WIDTH), dtype=np.uint8)
        lengths = np.fromiter((len(b) for _, b in short), dtype=np.int64, count=len(short))
        self.halves = _halves(buffer, np.cumsum(lengths) - lengths, lengths)
        self.ids = np.fromiter((i for i, _ in short), dtype=np.int64, count=len(short))
        keys = _token_keys(*self.halves)
        if len(np.unique(keys)) < len(keys):  # two words, one 64-bit key: never seen; be exact anyway
            raise ValueError("vocabulary words share a look-up key")
        self.table = IntTable(keys, np.arange(len(short)))

    def word_ids(self, spaced: Sequence[bytes], min_length: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``text.token_ids``' result for texts given as UTF-8 bytes in which ASCII whitespace separates the
        tokens (``tokenizer.spaced_utf8``, or tokens joined by spaces): every token's id back to back (-1 for
        a token not in the vocabulary) and each text's number of tokens."""
        buffer, split = split_tokens(spaced, min_length)
        ids = np.full(len(split.starts), -1, dtype=np.int64)
        fits = np.flatnonzero(split.lengths <= WIDTH)
        first, second = _halves(buffer, split.starts[fits], split.lengths[fits])
        candidate = self.table.get(_token_keys(first, second))
        found = np.flatnonzero(candidate >= 0)
        word = candidate[found]
        same = (self.halves[0][word] == first[found]) & (self.halves[1][word] == second[found])
        ids[fits[found[same]]] = self.ids[word[same]]
        if self.long:  # words longer than ``WIDTH``: a dict, for the few tokens that long
            for at in np.flatnonzero(split.lengths > WIDTH):
                start = split.starts[at]
                ids[at] = self.long.get(buffer[start : start + split.lengths[at]].tobytes(), -1)
        return ids, np.bincount(split.text, minlength=len(spaced)).astype(np.int64)


# _KEEP[n]: the bytes of an 8-byte little-endian integer that hold the first n of a token's bytes
_KEEP = np.array([(1 << (8 * n)) - 1 if n < 8 else (1 << 64) - 1 for n in range(WIDTH + 1)], dtype=np.uint64)
_KEEP_SECOND = np.array([_KEEP[max(n - 8, 0)] for n in range(WIDTH + 1)], dtype=np.uint64)


def _halves(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each token's bytes (``lengths[i]`` <= ``WIDTH`` from ``starts[i]``) as two 8-byte integers, the bytes
    past its end zeroed. ``buffer`` has ``WIDTH`` bytes to spare at its end."""
    # an 8-byte integer starting at every byte (unaligned reads): two gathers instead of a row of 16
    at_byte = np.ndarray(shape=(len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))
    return at_byte[starts] & _KEEP[lengths], at_byte[starts + 8] & _KEEP_SECOND[lengths]
