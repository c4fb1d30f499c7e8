"""Compiled kernels (numba) for predicting many texts: the tokeniser's cleaning, word look-up, n-grams,
pooling and the wide part, with the NumPy path's results bit for bit and without the GIL.

The NumPy batch path (``tokenizer.spaced_utf8``, ``wordlookup``, ``TextEncoder.encode_word_ids``,
``pooling``, ``wide``) costs about 130 us per IMDB review, much of it in making, sorting and gathering
intermediate arrays, and the Python part holds the GIL. Here the texts' UTF-8 is cleaned (``_clean``),
split and looked up in the same hash table (``_word_ids``), their n-grams found in the same n-gram tables
(``_ngram_ids``), and each text's token vectors and wide weights added up in one loop (``_features``) that
asks for the rows of the token 8 places ahead (``_prefetch``): the rows are random reads from a table of tens
of MB, each copied to start on a cache line (``_aligned``). About 50-70 us per review in all
(``scripts/benchmark_kernels.py``); the GIL is released, so a server's threads share the cores.

The same numbers, not only nearly: the float32 sums add the same values in the order NumPy does (the sparse
product's one-after-another sums, ``np.add.reduceat``'s pairwise sum), and the wide part's float64 sum of
float32 weights is exact in any order unless one text's weights span more than about 2**29 in size.
``tests/test_kernels.py`` checks equality, bit for bit.

numba is imported only here, and this module only for many texts (``Predictor.expect``): a ``predict`` of
one text or ``--help`` never pays its import (0.5 s). Compiled code is cached on disk (``cache=True``), so
only the first run compiles (about 10 s). Without numba, or with ``SENTIMENT_KERNELS=0``, NumPy does it all.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sentiment.pooling import WEIGHTED_POOLINGS
from sentiment.tokenizer import _ASCII_KEEP
from sentiment.wordlookup import _MIX, _SPACE

if TYPE_CHECKING:
    from sentiment.text import TextEncoder

try:
    import numba
except ImportError:  # an optional speed-up: the NumPy path gives the same results
    numba = None

POOLINGS = ("mean", *WEIGHTED_POOLINGS)  # the poolings the kernels cover: mean_max stays on NumPy
LONG = -2  # a token longer than the hash table's 16 bytes: looked up in the vocabulary's dict by the caller


def enabled() -> bool:
    """numba is installed and ``SENTIMENT_KERNELS`` is not ``0`` (the NumPy path, to compare the two)."""
    return numba is not None and os.environ.get("SENTIMENT_KERNELS", "1") != "0"


def _jit(fn):
    if numba is None:
        return fn
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable place for numba's cache (read-only install and home): compile each run
        return numba.njit(nogil=True)(fn)


# tokens: pooling asks for the rows of the token 8 places on (IMDB reviews' pooling: 25-30 -> 17-20 us)
PREFETCH_AHEAD = 8


def _make_prefetch():
    """``_prefetch(flat, i)``: ask the CPU to bring ``flat[i]``'s cache line in (LLVM's prefetch hint), so
    that the random rows a text's tokens read arrive while the previous ones are added up."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def _prefetch(typingctx, flat, index):
        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            pointer = cgutils.get_item_pointer(
                context, builder, signature.args[0], array, [args[1]], wraparound=False
            )
            byte_pointer, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            hint = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
            function = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0i8")
            # read, keep in every cache level, data
            builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(flat, index), codegen

    return _prefetch


_prefetch = _make_prefetch() if numba is not None else None


_U = np.uint64


@_jit
def _token_key(first, second):
    # wordlookup._token_keys for one token, in uint64 arithmetic (numba: every operand uint64, or it
    # would turn to float)
    key = first * _U(0xFF51AFD7ED558CCD)
    key ^= key >> _U(29)
    key = (key ^ second) * _U(0xC4CEB9FE1A85EC53)
    key ^= key >> _U(32)
    return key


@_jit
def _slot(key, bits):
    # IntTable._slots: Fibonacci hashing of the key's bits
    return np.int64((np.uint64(key) * _MIX) >> _U(64 - bits))


# the tokeniser's kept ASCII bytes (letters, digits, ' ! ?), and of those the word bytes
_KEEP = np.zeros(256, dtype=np.bool_)
_KEEP[[ord(c) for c in _ASCII_KEEP]] = True
# _clean's first pass, one look-up per ASCII byte: the byte it becomes (lowered or not), or 0 where the
# byte needs a look (a < may open a tag; a byte >= 128 starts a character beyond ASCII)
_ASCII_MAP = np.where(_KEEP, np.arange(256), 32).astype(np.uint8)
_ASCII_MAP[[60, *range(128, 256)]] = 0
_ASCII_MAP_LOWER = _ASCII_MAP.copy()
_ASCII_MAP_LOWER[65:91] += 32
_WORD = _KEEP.copy()
_WORD[[ord(c) for c in "'!?"]] = False
_WORD[128:] = True  # the bytes of a character beyond ASCII that is kept (a letter or digit: see _alnum)
# where html.unescape may change a text: an & before a letter or # (entity names start with a letter; an &
# before anything else stays, checked over every character)
_ENTITY = re.compile(r"&[A-Za-z#]")


# No character from here on has a lower case other than itself (tested against str.lower)
CASED_BELOW = 0x20000
# Characters str.lower lowers otherwise than one by one: U+0130 (to two characters) and the capital sigma
# (to a final sigma at the end of a word); texts holding them are lowered by str.lower before _clean
_LOWERED_IN_CONTEXT = ("\u0130", "\u03a3")


@functools.cache
def _lower() -> np.ndarray:
    """``ord(chr(c).lower())`` for every code point c below ``CASED_BELOW`` (0.5 MB, 70 ms), U+0130 aside:
    the lower case of characters beyond ASCII in ``_clean`` (``str.lower`` took 21 us per IMDB review
    beyond ASCII, holding the GIL)."""
    return np.char.lower(np.arange(CASED_BELOW, dtype=np.uint32).view("U1")).view(np.uint32).astype(np.int32)


@functools.cache
def _alnum() -> np.ndarray:
    """``chr(c).isalnum()`` for every code point c (1.1 MB; NumPy 2 vectorises ``np.char``: 40 ms): the
    characters beyond ASCII that ``spaced_utf8`` keeps in words."""
    return np.char.isalnum(np.arange(0x110000, dtype=np.uint32).view("U1"))


@_jit
def _clean(buffer, ends, kind, ascii_map, strip_html, word, alnum, lower):
    """``tokenizer.spaced_utf8`` of texts as UTF-8 (``split: regex``, no negation; texts with an entity,
    which ``html.unescape`` would change, are not given here) without the GIL. Text i is ``buffer[ends[i -
    1]: ends[i] - 1]`` (a newline follows each). ``kind[i]``: 0, bytes already cleaned, copied as they are;
    1, a text to clean whose characters beyond ASCII are lowered here, by ``lower`` (``_lower``); 2, a text
    to clean that comes lowered already, or is not to be lowered.

    As ``spaced_utf8``: each ``<...>`` becomes a space (``<[^>]*>``: a ``<`` with a ``>`` after it, up to
    the first), upper case is lowered (``ascii_map``, ``lower``), ASCII bytes other than letters, digits,
    ' ! ? become spaces, a character beyond ASCII stays if ``str.isalnum`` (``alnum``, by code point) and
    is otherwise one space, except U+2019 (a right single quote), which is an apostrophe; ! and ? are spaced
    apart, and an apostrophe without a letter or digit (or a byte of a kept character beyond ASCII) on both
    sides becomes a space."""
    # two characters' lower case takes 3 bytes, not 2 (U+023A, U+023E): room for half as much again
    mid = np.empty(len(buffer) * 3 // 2 + 1, dtype=np.uint8)
    out = np.empty(3 * len(mid), dtype=np.uint8)  # ! and ? take 3 bytes each
    cased = len(lower)
    out_ends = np.empty(len(ends), dtype=np.int64)
    n, start = 0, 0
    for t in range(len(ends)):
        end = ends[t] - 1
        if kind[t] == 0:
            for i in range(start, end):
                out[n] = buffer[i]
                n += 1
        else:
            last_close = -1
            if strip_html:
                for i in range(end - 1, start - 1, -1):
                    if buffer[i] == 62:  # >
                        last_close = i
                        break
            m, i = 0, start
            while i < end:  # 1. tags out, lower case, unkept bytes to spaces
                c = buffer[i]
                mapped = ascii_map[c]
                if mapped:  # most bytes
                    mid[m] = mapped
                    m += 1
                    i += 1
                    continue
                if c == 60:
                    if i < last_close:  # < with a > after it: the tag is one space
                        while buffer[i] != 62:
                            i += 1
                    mid[m] = 32
                    m += 1
                    i += 1
                    continue
                if c >= 128:  # a character beyond ASCII: its code point decides (UTF-8 is valid here)
                    if c >= 240:
                        size, point = 4, np.int64(c & 7)
                    elif c >= 224:
                        size, point = 3, np.int64(c & 15)
                    else:
                        size, point = 2, np.int64(c & 31)
                    for k in range(1, size):
                        point = (point << 6) | (buffer[i + k] & 63)
                    if kind[t] == 1 and point < cased:
                        point = lower[point]
                    if point < 128:  # the Kelvin sign's lower case is k
                        mid[m] = max(ascii_map[point], 32)
                        m += 1
                    elif point == 0x2019:
                        mid[m] = 39
                        m += 1
                    elif alnum[point]:  # the lowered character's UTF-8
                        if point < 0x800:
                            mid[m] = 0xC0 | (point >> 6)
                            mid[m + 1] = 0x80 | (point & 63)
                            m += 2
                        elif point < 0x10000:
                            mid[m] = 0xE0 | (point >> 12)
                            mid[m + 1] = 0x80 | ((point >> 6) & 63)
                            mid[m + 2] = 0x80 | (point & 63)
                            m += 3
                        else:
                            mid[m] = 0xF0 | (point >> 18)
                            mid[m + 1] = 0x80 | ((point >> 12) & 63)
                            mid[m + 2] = 0x80 | ((point >> 6) & 63)
                            mid[m + 3] = 0x80 | (point & 63)
                            m += 4
                    else:
                        mid[m] = 32
                        m += 1
                    i += size
            for j in range(m):  # 2. ! and ? spaced apart, loose apostrophes to spaces
                c = mid[j]
                if c == 33 or c == 63:
                    out[n] = 32
                    out[n + 1] = c
                    out[n + 2] = 32
                    n += 3
                elif c == 39 and not (j > 0 and word[mid[j - 1]] and j + 1 < m and word[mid[j + 1]]):
                    out[n] = 32
                    n += 1
                else:
                    out[n] = c
                    n += 1
        out[n] = 10
        n += 1
        out_ends[t] = n
        start = ends[t]
    return out[:n], out_ends


@_jit
def _word_ids(buffer, ends, is_space, min_length, table, bits):
    """``WordLookup.word_ids`` over ``buffer`` (texts' spaced UTF-8 bytes, each followed by a newline; text
    i ends before ``ends[i]``): every token's word id (-1 unknown, ``LONG`` over 16 bytes), its first byte and
    length, and each text's token count. Tokens are runs of non-whitespace bytes; with ``min_length`` > 1
    shorter ones are dropped, except ``!`` and ``?``. ``table``: one row per hash slot, (key, first 8 bytes,
    next 8 bytes, word id or -1 for an empty slot), so a probe reads one cache line.

    Three passes, so that the random reads of the table come in a tight loop of independent loads (the CPU
    overlaps them) rather than one at a time between the branches that decide each token."""
    n_texts, size = len(ends), len(buffer)
    cap = size // 2 + 1  # a token takes at least one byte and one space
    out = np.empty(cap, dtype=np.int64)
    starts = np.empty(cap, dtype=np.int64)
    lengths = np.empty(cap, dtype=np.int64)
    keys = np.empty(cap, dtype=np.int64)
    # empty, not zeros: cap is about 3 times the tokens, and zeroing it all cost about 1 us per review
    first = np.empty(cap, dtype=np.int64)
    second = np.empty(cap, dtype=np.int64)
    slots = np.empty(cap, dtype=np.int64)
    counts = np.zeros(n_texts, dtype=np.int64)
    mask = (1 << bits) - 1
    n, text, i = 0, 0, 0
    while i < size:  # 1. the tokens, their keys and home slots
        if is_space[buffer[i]]:
            i += 1
            continue
        start = i
        while i < size and not is_space[buffer[i]]:
            i += 1
        length = i - start
        while ends[text] <= start:
            text += 1
        if length < min_length and not (length == 1 and (buffer[start] == 33 or buffer[start] == 63)):
            continue
        counts[text] += 1
        starts[n] = start
        lengths[n] = length
        slots[n] = 0  # a long token's (pass 2 reads it; pass 3 skips the token)
        if length <= 16:
            lo = _U(0)
            hi = _U(0)
            for k in range(min(length, 8)):
                lo |= _U(buffer[start + k]) << _U(8 * k)
            for k in range(8, length):
                hi |= _U(buffer[start + k]) << _U(8 * (k - 8))
            key = np.int64(_token_key(lo, hi))
            first[n], second[n], keys[n] = np.int64(lo), np.int64(hi), key
            slots[n] = _slot(key, bits)
        n += 1
    home_key = np.empty(n, dtype=np.int64)
    for j in range(n):  # 2. every home slot's key, in one loop of independent reads
        home_key[j] = table[slots[j], 0]
    for j in range(n):  # 3. each token's answer: its home slot's, or further on (linear probing)
        if lengths[j] > 16:
            out[j] = LONG
            continue
        slot, key = slots[j], keys[j]
        stored = home_key[j]
        while table[slot, 3] >= 0 and stored != key:
            slot = (slot + 1) & mask
            stored = table[slot, 0]
        if table[slot, 3] >= 0 and table[slot, 1] == first[j] and table[slot, 2] == second[j]:
            out[j] = table[slot, 3]
        else:
            out[j] = -1
    return out[:n], starts[:n], lengths[:n], counts


@_jit
def _ngram_ids(word_ids, counts, size, base, table, bits):
    """For every position: the token id of the n-gram of ``size`` words starting there, or -1 (an unknown
    word in it, past its text's end, or not in the vocabulary). Its key is its word ids as digits in base
    ``base`` (``ngrams.window_keys``); ``table`` is ``IntTable``'s slots as rows of (key, value)."""
    total = len(word_ids)
    out = np.full(total, -1, dtype=np.int64)
    keys = np.empty(total, dtype=np.int64)
    slots = np.full(total, -1, dtype=np.int64)
    mask = (1 << bits) - 1
    at = 0
    for t in range(len(counts)):  # 1. keys and home slots of the windows of known words inside a text
        end = at + counts[t]
        for p in range(at, end - size + 1):
            key = np.int64(0)
            for k in range(size):
                word = word_ids[p + k]
                if word < 0:
                    key = -1
                    break
                key = key * base + word
            if k == size - 1 and word >= 0:
                keys[p] = key
                slots[p] = _slot(key, bits)
        at = end
    home = np.empty(total, dtype=np.int64)
    for p in range(total):  # 2. the home slots' keys, in one loop of independent reads
        home[p] = table[max(slots[p], 0), 0]
    for p in range(total):  # 3. resolve: the home slot, or further on
        slot = slots[p]
        if slot < 0:
            continue
        key, stored = keys[p], home[p]
        while table[slot, 1] >= 0 and stored != key:
            slot = (slot + 1) & mask
            stored = table[slot, 0]
        out[p] = table[slot, 1]  # -1 at an empty slot: not in the vocabulary
    return out


@_jit
def _block_sum(a, lo, n):
    """NumPy's pairwise float32 sum of up to 128 values: sequential below 8, else 8 running sums."""
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += a[lo + i]
        return res
    r = np.empty(8, dtype=np.float32)
    for j in range(8):
        r[j] = a[lo + j]
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += a[lo + i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_jit
def _pairwise(a, lo, n):
    """NumPy's pairwise float32 sum of ``a[lo:lo + n]`` (``np.add.reduce``), operation for operation, so the
    result is the same bits: blocks of up to 128, halved (at a multiple of 8) and added as a tree. The tree is
    walked with a stack: numba's on-disk cache mishandles recursive functions (a crash on loading)."""
    kind = np.empty(128, dtype=np.int64)  # 0: sum a[lo:lo + n]; 1: add the two sums on top of the values
    los = np.empty(128, dtype=np.int64)
    ns = np.empty(128, dtype=np.int64)
    values = np.empty(128, dtype=np.float32)
    kind[0], los[0], ns[0] = 0, lo, n
    tasks, stored = 1, 0
    while tasks:
        tasks -= 1
        if kind[tasks] == 1:
            stored -= 1
            values[stored - 1] = values[stored - 1] + values[stored]
            continue
        lo_t, n_t = los[tasks], ns[tasks]
        if n_t <= 128:
            values[stored] = _block_sum(a, lo_t, n_t)
            stored += 1
            continue
        half = n_t // 2
        half -= half % 8
        # run left, then right, then add: pushed in reverse
        kind[tasks] = 1
        kind[tasks + 1], los[tasks + 1], ns[tasks + 1] = 0, lo_t + half, n_t - half
        kind[tasks + 2], los[tasks + 2], ns[tasks + 2] = 0, lo_t, half
        tasks += 3
    return values[0]


@_jit
def _prefetch_rows(flat_vectors, flat_side, row, dim, width):
    """Ask for a token's vector (every 64-byte line of it: 16 float32) and its ``side`` row."""
    _prefetch(flat_side, row * width)
    for k in range(0, dim, 16):
        _prefetch(flat_vectors, row * dim + k)


@_jit
def _features(word_ids, counts, ngram_ids, vectors, flat_vectors, side, flat_side, weighted, has_wide):
    """Per text: the pooled row (float32; ``pooling._pool_chunk``), the wide logits (float64;
    ``wide.logits``) and the number of known words, from every position's word id and n-gram ids (one row
    per n-gram size). A text's tokens are its known words, then its known bigrams, ... each in order
    (``TextEncoder.encode_word_ids``). ``side``: per token its pooling weight, then its wide weights (one
    row: one cache line for both). ``flat_*``: the same arrays, one-dimensional, for ``_prefetch``."""
    n_texts, dim, outputs = len(counts), vectors.shape[1], side.shape[1] - 1
    width = side.shape[1]
    pooled = np.zeros((n_texts, dim), dtype=np.float32)
    wide_z = np.zeros((n_texts, outputs), dtype=np.float64)
    known = np.zeros(n_texts, dtype=np.int64)
    longest = 0
    for t in range(n_texts):
        longest = max(longest, counts[t])
    bag = np.empty(longest * (len(ngram_ids) + 1) + 1, dtype=np.int64)
    w = np.empty(len(bag), dtype=np.float32)
    # the distinct tokens of a text (for the wide part): a small hash set, cleared by a stamp per text
    set_bits = 4
    while (1 << set_bits) < 2 * len(bag):
        set_bits += 1
    set_keys = np.empty(1 << set_bits, dtype=np.int64)
    set_stamps = np.full(1 << set_bits, -1, dtype=np.int64)
    total_sum = np.empty(dim, dtype=np.float32)
    at = 0
    for t in range(n_texts):
        end = at + counts[t]
        m = 0
        for p in range(at, end):
            if word_ids[p] >= 0:
                bag[m] = word_ids[p]
                m += 1
        known[t] = m
        for s in range(len(ngram_ids)):
            for p in range(at, end):
                if ngram_ids[s, p] >= 0:
                    bag[m] = ngram_ids[s, p]
                    m += 1
        at = end
        if m == 0:
            continue
        # the weighted sum, one token after another in float32 (scipy's csr_matvecs); mean: weight 1
        for k in range(dim):
            total_sum[k] = 0.0
        for j in range(min(PREFETCH_AHEAD, m)):
            _prefetch_rows(flat_vectors, flat_side, bag[j], dim, width)
        for j in range(m):
            if j + PREFETCH_AHEAD < m:
                _prefetch_rows(flat_vectors, flat_side, bag[j + PREFETCH_AHEAD], dim, width)
            row = bag[j]
            wj = side[row, 0]  # 1.0 without weights: the sparse product's data then, and 1 * x is x exactly
            w[j] = wj
            for k in range(dim):
                total_sum[k] += wj * vectors[row, k]
        if weighted:
            # np.add.reduceat: the first weight, plus the pairwise sum of the rest
            total = max(w[0] + _pairwise(w, 1, m - 1), np.float32(1e-12))
            for k in range(dim):
                pooled[t, k] = total_sum[k] / total
        else:
            for k in range(dim):
                pooled[t, k] = np.float32(np.float64(total_sum[k]) / np.float64(m))
        if has_wide:
            # the float64 sum over the distinct tokens (``wide.logits``), in the order first seen, not in id
            # order as bincount adds them: float64 holds a sum of float32 weights exactly unless one text's
            # weights span more than about 2**29 in size, so the order changes nothing (sorting cost 10 us)
            bits = 4
            while (1 << bits) < 2 * m:
                bits += 1
            mask = (1 << bits) - 1
            for j in range(m):
                row = bag[j]
                h = _slot(row, bits)
                while set_stamps[h] == t and set_keys[h] != row:
                    h = (h + 1) & mask
                if set_stamps[h] != t:
                    set_stamps[h] = t
                    set_keys[h] = row
                    for c in range(outputs):
                        wide_z[t, c] += np.float64(side[row, 1 + c])
    return pooled, wide_z, known


def _aligned(array: np.ndarray, to: int = 64) -> np.ndarray:
    """A C-ordered copy of ``array`` that starts on a cache line. NumPy's large arrays start 16 bytes into
    a page, so a 128-byte vector row spanned three cache lines instead of two (and the third was not
    prefetched), and a 32-byte hash slot every other one two."""
    raw = np.empty(array.nbytes + to, dtype=np.uint8)
    start = -raw.ctypes.data % to
    out = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def _joined(parts: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' bytes, each followed by a newline, as one array; and where each text's newline ends."""
    buffer = np.frombuffer(b"\n".join(parts) + b"\n", dtype=np.uint8)
    return buffer, np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) + 1)


@dataclass
class CompiledEncoder:
    """A model's tables in the layout the kernels take, built once per predictor (``for_model``)."""

    encoder: TextEncoder
    words: np.ndarray  # the word hash table: (slots, 4) rows of key, first and next 8 bytes, word id
    word_bits: int
    ngram_tables: list[tuple[np.ndarray, int]]  # per n-gram size 2..: (slots, 2) rows of key, id; bits
    vectors: np.ndarray
    side: np.ndarray  # (vocabulary, 1 + outputs) float32: each token's pooling weight, then wide weights
    weighted: bool
    has_wide: bool

    @classmethod
    def for_model(
        cls,
        encoder: TextEncoder,
        vectors: np.ndarray,
        weights: np.ndarray | None,
        pooling: str,
        wide: np.ndarray | None,
    ) -> CompiledEncoder | None:
        """None where the kernels do not cover the model (no numba, mean_max pooling, phrases or negation
        marking, n-gram keys that do not fit int64): the NumPy path predicts it."""
        if numba is None or pooling not in POOLINGS or encoder.phrases or encoder.settings.negation:
            return None
        if vectors.dtype != np.float32 or (weights is not None and weights.dtype != np.float32):
            return None
        if encoder._word_lookup is None:
            return None
        tables = encoder._ngram_tables if encoder.ngrams > 1 and encoder.n_words < len(encoder.vocab) else []
        if tables is None:
            return None
        lookup = encoder._word_lookup
        table = lookup.table
        occupied = table.values >= 0
        words = np.zeros((len(table.keys), 4), dtype=np.int64)
        words[:, 0] = table.keys
        words[:, 3] = -1
        words[occupied, 1] = lookup.halves[0][table.values[occupied]].view(np.int64)
        words[occupied, 2] = lookup.halves[1][table.values[occupied]].view(np.int64)
        words[occupied, 3] = lookup.ids[table.values[occupied]]
        weighted = pooling in WEIGHTED_POOLINGS and weights is not None
        outputs = wide.shape[1] if wide is not None else 0
        side = np.ones((len(vectors), 1 + outputs), dtype=np.float32)
        if weighted:
            side[:, 0] = weights
        if wide is not None:
            side[:, 1:] = wide
        return cls(
            encoder,
            _aligned(words),
            table.bits,
            [(_aligned(np.stack([t.keys, t.values], axis=1)), t.bits) for t in tables],
            _aligned(vectors),
            _aligned(side),
            weighted,
            wide is not None,
        )

    def word_ids(self, spaced: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``WordLookup.word_ids(spaced, min_length)``: every token's word id and each text's token count."""
        return self._word_ids(*_joined(spaced))

    def _word_ids(self, buffer: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        min_length = self.encoder.settings.min_token_length
        ids, starts, lengths, counts = _word_ids(buffer, ends, _SPACE, min_length, self.words, self.word_bits)
        long = self.encoder._word_lookup.long
        for at in np.flatnonzero(ids == LONG):  # a few tokens over 16 bytes: the dict
            ids[at] = long.get(buffer[starts[at] : starts[at] + lengths[at]].tobytes(), -1)
        return ids, counts

    def cleaned(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The texts' ``spaced_utf8`` bytes, each followed by a newline, and where each ends. ``_clean``
        cleans them without the GIL; the tokeniser, one by one, only those with an HTML entity, and those
        beyond ASCII when ``min_token_length`` > 1 (counted in characters, not bytes)."""
        settings, spaced = self.encoder.settings, self.encoder.spaced
        compiled = settings.split == "regex"  # (negation and phrases never reach here: ``for_model``)
        lower, beyond_ascii = settings.lowercase, settings.min_token_length <= 1
        parts, kind = [], np.zeros(len(texts), dtype=np.int8)
        for i, text in enumerate(texts):
            if (
                compiled
                and isinstance(text, str)
                and not (settings.strip_html and "&" in text and _ENTITY.search(text))
            ):
                if text.isascii():
                    parts.append(text.encode("ascii"))
                    kind[i] = 1
                    continue
                if beyond_ascii:
                    if lower and any(c in text for c in _LOWERED_IN_CONTEXT):
                        text = text.lower()  # lowering before the tags go is the same
                        kind[i] = 2
                    else:
                        kind[i] = 1 if lower else 2
                    parts.append(text.encode("utf-8", "surrogatepass"))
                    continue
            parts.append(spaced([text])[0])
        ascii_map = _ASCII_MAP_LOWER if lower else _ASCII_MAP
        return _clean(*_joined(parts), kind, ascii_map, settings.strip_html, _WORD, _alnum(), _lower())

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled rows, wide logits, known words) of raw texts."""
        ids, counts = self._word_ids(*self.cleaned(texts))
        base = max(self.encoder.n_words, 1)
        ngrams = np.full((len(self.ngram_tables), len(ids)), -1, dtype=np.int64)
        for row, (table, bits) in enumerate(self.ngram_tables):
            ngrams[row] = _ngram_ids(ids, counts, row + 2, base, table, bits)
        vectors, side = self.vectors, self.side
        flat_vectors, flat_side = vectors.reshape(-1), side.reshape(-1)
        return _features(
            ids, counts, ngrams, vectors, flat_vectors, side, flat_side, self.weighted, self.has_wide
        )
