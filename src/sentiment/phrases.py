"""Frequent word pairs joined into one token ("special_effects"), learnt with gensim ``Phrases``.

Only the learnt pairs are kept (plain JSON); applying them is pure Python so prediction needs no gensim.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DELIMITER = "_"


def learn_phrases(token_lists: Iterable[Sequence[str]], min_count: int, threshold: float) -> list[str]:
    """Pairs that gensim's Phrases scores above ``threshold``, as ``first_second`` strings."""
    from gensim.models.phrases import ENGLISH_CONNECTOR_WORDS, Phrases

    model = Phrases(
        token_lists,
        min_count=min_count,
        threshold=threshold,
        delimiter=DELIMITER,
        connector_words=ENGLISH_CONNECTOR_WORDS,
    )
    frozen = model.freeze()
    # Only two-word phrases: applying them needs no knowledge of connector words.
    return sorted(p for p in frozen.phrasegrams if p.count(DELIMITER) == 1 and " " not in p)


def apply_phrases(tokens: Sequence[str], phrases: frozenset[str] | set[str]) -> list[str]:
    """Greedy left-to-right joining of adjacent pairs found in ``phrases``."""
    if not phrases or len(tokens) < 2:
        return list(tokens)
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        if i + 1 < n:
            pair = f"{tokens[i]}{DELIMITER}{tokens[i + 1]}"
            if pair in phrases:
                out.append(pair)
                i += 2
                continue
        out.append(tokens[i])
        i += 1
    return out
