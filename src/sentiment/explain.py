"""Which words pushed a prediction, and by how much: leave-one-word-out occlusion in the NumPy predictor.

The method: a word's weight is the label's log-odds with the text minus its log-odds with the text without
that word occurrence, where "without" removes the word's token and every n-gram token that covers it.
Positive weights pushed toward the explained label, negative ones away from it; +0.69 means the word doubled
the odds. Log-odds rather than probabilities because a confident prediction (P = 0.999) barely moves in
probability when one word goes, yet its odds do: the weights stay readable and comparable across texts.

Why it is faithful for this model: the classifier sees nothing but the pooled (weighted) mean of the text's
token vectors, so removing a word's tokens from the mean and running the very same forward pass is the exact
counterfactual "this text without this word", not an approximation of the network (as gradients would be).
For the (weighted) mean poolings the occluded means are computed in closed form, one row per word:
(S - sum of the word's weighted vectors) / (W - sum of its weights); ``mean_max`` re-pools each occluded text.
A wide part (``model.wide``) adds its sum over the text's distinct tokens: without the word, the tokens whose
every occurrence it covered leave that sum (``sentiment.wide.occluded_logits``).

NumPy only, like ``sentiment.predictor``: ``sentiment explain`` and the server pay no torch import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import wide as wide_part
from sentiment.errors import SentimentError
from sentiment.ngrams import add_ngrams
from sentiment.pooling import WEIGHTED_POOLINGS
from sentiment.text import Cover, TokenBags
from sentiment.tokenizer import _TAG

if TYPE_CHECKING:
    from sentiment.predictor import Prediction, Predictor

METHOD = "occlusion"
# --top-words reads at most this many test texts: enough for stable means, a few seconds at most
TOP_WORDS_TEXTS = 5000
TOP_WORDS_CHUNK = 64  # texts scored in one forward pass


@dataclass
class TokenWeight:
    token: str  # the word as the model sees it (lower-cased, a phrase "special_effects", "not_good")
    weight: float  # log-odds of the label with the text minus without this word: > 0 pushed toward it
    known: bool  # in the model's vocabulary (an unknown word weighs 0: the model never saw it)
    start: int | None  # where it is in the original text (None: could not be located)
    end: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "weight": round(self.weight, 6),
            "known": self.known,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Explanation:
    prediction: Prediction
    label: str  # the label explained: the predicted one unless asked otherwise
    tokens: list[TokenWeight]

    @property
    def probability(self) -> float:
        return self.prediction.probabilities[self.label]

    def top(self, n: int) -> tuple[list[TokenWeight], list[TokenWeight]]:
        """The ``n`` words that pushed hardest toward the label and away from it (strongest first), each word
        once (its strongest occurrence)."""
        best: dict[str, TokenWeight] = {}
        for t in self.tokens:
            if t.known and (t.token not in best or abs(t.weight) > abs(best[t.token].weight)):
                best[t.token] = t
        ranked = sorted(best.values(), key=lambda t: -t.weight)
        toward = [t for t in ranked if t.weight > 0][:n]
        away = [t for t in reversed(ranked) if t.weight < 0][:n]
        return toward, away

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        """The prediction's own fields (as ``predict --json``) plus ``explanation``."""
        return {
            **self.prediction.to_dict(top_k),
            "explanation": {
                "label": self.label,
                "method": METHOD,
                "tokens": [t.to_dict() for t in self.tokens],
            },
        }


def class_probabilities(predictor: Predictor, x: np.ndarray, wide: np.ndarray | None = None) -> np.ndarray:
    """(rows, labels): every label's probability for feature rows ``x`` (binary: [1 - p, p]); ``wide``: the
    rows' wide-part logits, for a model that has one."""
    mlp = predictor.mlp
    z = mlp.logits(x) if mlp.wide is None else mlp.deep_logits(x) + wide
    probs = mlp.probabilities(z)
    if probs.ndim == 1:
        return np.stack([1.0 - probs, probs], axis=1)
    return probs


def log_odds(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), finite at 0 and 1."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _text_tokens(predictor: Predictor, text: str) -> tuple[list[str], np.ndarray, Cover]:
    """A text's words, the ids of its known tokens and the word positions each covers."""
    encoder = predictor.encoder
    words = encoder.words(text)
    tokens = add_ngrams(words, encoder.ngrams) if encoder.ngrams > 1 else words
    index = encoder.index
    spans: list[tuple[int, int]] = [(i, 1) for i in range(len(words))]
    for size in range(2, max(encoder.ngrams, 1) + 1):  # add_ngrams' order: all bigrams, then trigrams ...
        spans.extend((i, size) for i in range(len(words) - size + 1))
    ids, pair_token, pair_word = [], [], []
    for token, (first, size) in zip(tokens, spans, strict=True):
        token_id = index.get(token)
        if token_id is not None:
            pair_token.extend([len(ids)] * size)
            pair_word.extend(range(first, first + size))
            ids.append(token_id)
    cover = Cover(np.asarray(pair_token, dtype=np.int64), np.asarray(pair_word, dtype=np.int64), len(words))
    return words, np.asarray(ids, dtype=np.int64), cover


def _occluded_wide(predictor: Predictor, ids: np.ndarray, cover: Cover) -> np.ndarray | None:
    """The wide part's logits for the rows of ``_occluded_features`` (None: the model has no wide part)."""
    weights = predictor.mlp.wide
    return None if weights is None else wide_part.occluded_logits(ids, cover, weights)


def _occluded_features(predictor: Predictor, ids: np.ndarray, cover: Cover) -> np.ndarray:
    """Feature rows: the whole text first, then the text without word i, for every word i."""
    features = predictor.features
    if features.pooling == "mean_max":  # no closed form for the max: pool each occluded bag again
        keep = cover.dense(len(ids)).T == 0  # (words, tokens): the tokens left when word i goes
        rows = [ids] + [ids[keep[i]] for i in range(cover.n_words)]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return features.transform(TokenBags(np.concatenate(rows), offsets))
    if features.pooling in WEIGHTED_POOLINGS and features.weights_ is not None:
        w = features.weights_[ids].astype(np.float64)
    else:
        w = np.ones(len(ids))
    weighted = features.vectors_[ids].astype(np.float64) * w[:, None]  # (tokens, dim): only this text's rows
    total_sum, total_w = weighted.sum(axis=0), w.sum()
    removed = np.zeros((cover.n_words, weighted.shape[1]))
    np.add.at(removed, cover.word, weighted[cover.token])  # each word's share: its tokens' weighted vectors
    removed_w = np.bincount(cover.word, weights=w[cover.token], minlength=cover.n_words)
    sums = np.vstack([total_sum, total_sum - removed])  # (1 + words, dim)
    weights = np.concatenate([[total_w], total_w - removed_w])
    # A text left with no known token pools to zeros, as in sentiment.pooling (weights are positive).
    empty = weights <= 1e-12
    x = np.where(empty[:, None], 0.0, sums / np.where(empty, 1.0, weights)[:, None])
    if features.mean_ is not None and features.std_ is not None:
        x = (x - features.mean_) / features.std_
    return x


def _label_index(predictor: Predictor, label: str | None, prediction: Prediction) -> int:
    labels = predictor.labels
    if label is None:
        # the predicted label; for label sets, the most probable label (the one a reader looks at first)
        label = max(prediction.probabilities, key=prediction.probabilities.__getitem__)
        if not predictor.multilabel:
            label = prediction.label
    if label not in labels:
        raise SentimentError(f"unknown label '{label}': the model's labels are {', '.join(labels)}")
    return labels.index(label)


def explain(predictor: Predictor, texts: Sequence[str], label: str | None = None) -> list[Explanation]:
    """Each text's prediction and every word's weight toward ``label`` (default: the predicted label)."""
    predictions = predictor.predict(list(texts))
    out = []
    for text, prediction in zip(texts, predictions, strict=True):
        c = _label_index(predictor, label, prediction)
        words, ids, cover = _text_tokens(predictor, text)
        x, wide = _occluded_features(predictor, ids, cover), _occluded_wide(predictor, ids, cover)
        odds = log_odds(class_probabilities(predictor, x, wide)[:, c])
        weights = odds[0] - odds[1:]
        known = cover.known_words()
        spans = locate(text, words, predictor)
        tokens = [
            TokenWeight(word, float(wt) if k else 0.0, bool(k), *span)
            for word, wt, k, span in zip(words, weights, known, spans, strict=True)
        ]
        out.append(Explanation(prediction, predictor.labels[c], tokens))
    return out


def top_words(
    predictor: Predictor, texts: Sequence[str], n: int = 15, min_count: int = 5
) -> dict[str, list[tuple[str, float, int]]]:
    """The words the model leans on most for each label, over ``texts``: for each label, the ``n`` words whose
    occurrences pushed toward it most on average (mean occlusion weight), among words seen ``min_count``
    times or more. Returns {label: [(word, mean weight, occurrences), ...]}."""
    labels = predictor.labels
    names: list[str] = []  # the word of every known occurrence, in order
    weights: list[np.ndarray] = []  # (occurrences, labels) blocks, in the same order
    for first in range(0, len(texts), TOP_WORDS_CHUNK):
        rows, wides, blocks = [], [], []
        for text in texts[first : first + TOP_WORDS_CHUNK]:
            words, ids, cover = _text_tokens(predictor, text)
            if len(ids):
                rows.append(_occluded_features(predictor, ids, cover))
                wides.append(_occluded_wide(predictor, ids, cover))
                blocks.append((words, np.flatnonzero(cover.known_words())))
        if not rows:
            continue
        # one forward pass for a chunk of texts: many small matrix products cost more than one large one
        wide = None if wides[0] is None else np.vstack(wides)
        odds = log_odds(class_probabilities(predictor, np.vstack(rows), wide))
        start = 0
        for x, (words, known) in zip(rows, blocks, strict=True):
            block = odds[start : start + len(x)]
            start += len(x)
            names.extend(words[i] for i in known)
            weights.append(block[0] - block[1:][known])
    if not names:
        return {label: [] for label in labels}
    vocabulary, which = np.unique(np.array(names, dtype=object), return_inverse=True)
    counts = np.bincount(which, minlength=len(vocabulary))
    stacked = np.vstack(weights)
    totals = np.stack(
        [np.bincount(which, weights=stacked[:, c], minlength=len(vocabulary)) for c in range(len(labels))], 1
    )
    counts_of = dict(zip(vocabulary.tolist(), counts.tolist(), strict=True))
    totals_of = dict(zip(vocabulary.tolist(), totals, strict=True))
    frequent = [w for w, k in counts_of.items() if k >= min_count]
    if not frequent:
        return {label: [] for label in labels}
    means = np.array([totals_of[w] / counts_of[w] for w in frequent])  # (words, labels)
    result = {}
    for c, label in enumerate(labels):
        order = np.argsort(-means[:, c], kind="stable")[:n]
        result[label] = [
            (frequent[i], float(means[i, c]), counts_of[frequent[i]]) for i in order if means[i, c] > 0
        ]
    return result


def _is_word_char(c: str) -> bool:
    return c.isalnum()  # the tokeniser's [^\W_]: letters and digits of any script


def _find_word(hay: str, piece: str, position: int) -> tuple[int, int] | None:
    """The first whole-word occurrence of ``piece`` in ``hay`` at or after ``position`` ("a" not inside
    "an"). str.find and a look at the neighbours: a regex per word cost more than the explanation itself."""
    check_before, check_after = _is_word_char(piece[0]), _is_word_char(piece[-1])
    at = hay.find(piece, position)
    while at >= 0:
        end = at + len(piece)
        before_ok = not (check_before and at > 0 and _is_word_char(hay[at - 1]))
        after_ok = not (check_after and end < len(hay) and _is_word_char(hay[end]))
        if before_ok and after_ok:
            return at, end
        at = hay.find(piece, at + 1)
    return None


def locate(text: str, words: Sequence[str], predictor: Predictor) -> list[tuple[int | None, int | None]]:
    """Character span of each word in the original text, in order; (None, None) where it cannot be found
    (the tokeniser changed the text beyond case, tags and apostrophes)."""
    settings = predictor.encoder.settings
    hay = text.replace("\u2019", "'")
    if settings.strip_html:  # blank the tags out (same length), so no word is found inside one
        hay = _TAG.sub(lambda m: " " * len(m.group()), hay)
    if settings.lowercase:
        lowered = hay.lower()
        if len(lowered) != len(hay):  # a few characters change length when lower-cased: give up on spans
            return [(None, None)] * len(words)
        hay = lowered
    phrases = predictor.encoder.phrases
    spans: list[tuple[int | None, int | None]] = []
    cursor = 0
    for word in words:
        core = word.removeprefix("not_") if settings.negation and word.startswith("not_") else word
        pieces = core.split("_") if word in phrases or core in phrases else [core]
        start = end = None
        position = cursor
        for piece in pieces:
            found = _find_word(hay, piece, position) if piece else None
            if found is None:
                start = end = None
                break
            start = found[0] if start is None else start
            end = position = found[1]
        if start is not None:
            cursor = end
        spans.append((start, end))
    return spans
