"""Tokenisation of raw reviews. The same function runs at training and at prediction time.

Pure standard library (``re``, ``html``): importing it costs nothing, so ``sentiment predict`` stays fast.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_TAG = re.compile(r"<[^>]*>")
# Words keep inner apostrophes ("don't", "it's"); ! and ? carry sentiment, so they are tokens too.
_WORD_OR_MARK = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")
_CLAUSE_END = re.compile(r"[.,;:!?()\[\]\"]")
_NEGATIONS = frozenset(
    {"not", "no", "never", "nothing", "nobody", "none", "nor", "neither", "nowhere", "cannot", "without"}
)


@dataclass(frozen=True)
class TokenizerSettings:
    """The tokeniser's knobs; mirrors ``TextConfig`` but is importable without pydantic."""

    lowercase: bool = True
    strip_html: bool = True
    split: str = "regex"
    negation: bool = False
    min_token_length: int = 1

    @classmethod
    def from_config(cls, text_config: object) -> TokenizerSettings:
        return cls(**{name: getattr(text_config, name) for name in cls.__dataclass_fields__})

    @classmethod
    def from_dict(cls, raw: dict) -> TokenizerSettings:
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})


def _is_negation(token: str) -> bool:
    return token in _NEGATIONS or token.endswith("n't")


def _mark_negation(tokens: list[str]) -> list[str]:
    out: list[str] = []
    negated = False
    for token in tokens:
        if token in ("!", "?", "\n"):
            negated = False
            if token != "\n":
                out.append(token)
            continue
        out.append(f"not_{token}" if negated else token)
        if _is_negation(token):
            negated = True
    return out


def tokenize(text: str, settings: TokenizerSettings = TokenizerSettings()) -> list[str]:
    """Split one text into tokens."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if settings.strip_html:
        text = _TAG.sub(" ", text)
        if "&" in text:
            text = html.unescape(text)
    if settings.lowercase:
        text = text.lower()
    if settings.split == "whitespace":
        tokens = text.split()
    else:
        text = text.replace("\u2019", "'")
        if settings.negation:
            # Clause punctuation ends a negation's scope: mark it with a newline the word regex drops.
            text = _CLAUSE_END.sub(lambda m: m.group(0) if m.group(0) in "!?" else " \n ", text)
            tokens = re.findall(r"\n|" + _WORD_OR_MARK.pattern, text)
            tokens = _mark_negation(tokens)
        else:
            tokens = _WORD_OR_MARK.findall(text)
    if settings.min_token_length > 1:
        tokens = [t for t in tokens if len(t) >= settings.min_token_length or t in ("!", "?")]
    return tokens


def make_tokenizer(settings: TokenizerSettings) -> Callable[[str], list[str]]:
    def _tok(text: str) -> list[str]:
        return tokenize(text, settings)

    return _tok


def tokenize_many(texts: Iterable[str], settings: TokenizerSettings = TokenizerSettings()) -> list[list[str]]:
    return [tokenize(t, settings) for t in texts]
