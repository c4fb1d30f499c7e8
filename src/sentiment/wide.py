"""The wide part of a wide-and-deep classifier (``model.wide``): one weight per token and label, summed
over the distinct tokens of a text (words and n-grams; a token counts once however often it occurs) and
added to the MLP's logits before the sigmoid or softmax.

Each weight is ``(w + W_ADJ) * r / R_ADJ``: ``r`` starts as the token's Naive Bayes log-count ratio for the
label and ``w`` near zero, and Adam trains both. This is the NB-weighted bag of fast.ai's IMDB lesson (after
Wang & Manning's NBSVM): the ratios start every n-gram at a sensible weight, so one or two epochs suffice.
Training keeps ``w`` and ``r`` (``sentiment.model``); the saved model holds the products, and this module
applies them with NumPy alone (prediction and ``explain``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentiment.text import Cover, TokenBags

from sentiment.text import distinct_tokens

WIDE = "wide"  # tensor name in model.safetensors: (vocabulary, outputs) float32
W_ADJ, R_ADJ = 0.4, 10.0  # fast.ai's constants: the initial weight is about 0.04 r


def logits(bags: TokenBags, weights: np.ndarray) -> np.ndarray:
    """(texts, outputs) float64: each text's sum of the weights of its distinct tokens."""
    doc, token = distinct_tokens(bags, len(weights))
    return np.stack(
        [np.bincount(doc, weights=weights[token, c], minlength=len(bags)) for c in range(weights.shape[1])],
        axis=1,
    )


def occluded_logits(ids: np.ndarray, cover: Cover, weights: np.ndarray) -> np.ndarray:
    """(1 + words, outputs): the wide logits of one text (its known-token ids, in order), then of the text
    without word i for every word i. A token leaves the sum only when word i covered all its occurrences."""
    uniq, local = np.unique(ids, return_inverse=True)  # one text's tokens: small
    total = weights[uniq].astype(np.float64).sum(axis=0)
    out = np.tile(total, (cover.n_words + 1, 1))
    if not len(cover.token):
        return out
    occurrences = np.bincount(local, minlength=len(uniq))
    # how many occurrences of each distinct token word i covers: (word, token) pairs with their counts
    keys, counts = np.unique(cover.word * len(uniq) + local[cover.token], return_counts=True)
    word, token = keys // len(uniq), keys % len(uniq)
    gone = counts == occurrences[token]
    np.subtract.at(out, word[gone] + 1, weights[uniq[token[gone]]].astype(np.float64))
    return out
