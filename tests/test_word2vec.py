from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY_CONFIG, write_reviews
from sentiment.config import Word2VecConfig, load_config
from sentiment.word2vec import train_word2vec


def test_settings_reach_gensim_and_seed_makes_it_reproducible() -> None:
    corpus = [["good", "film", "great", "plot"], ["bad", "film", "awful", "plot"]] * 50
    cfg = Word2VecConfig(vector_size=12, window=2, min_count=1, epochs=2, workers=1, cache=False)
    a, hit = train_word2vec(iter(corpus), cfg, seed=1)
    b, _ = train_word2vec(iter(corpus), cfg, seed=1)
    assert not hit
    assert a.vectors.shape == (6, 12) and a.words == b.words
    assert (a.vectors == b.vectors).all()  # one worker: bit-identical
    assert dict(zip(a.words, a.counts.tolist(), strict=True))["film"] == 100


def test_test_text_never_reaches_word2vec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tutorial trained Word2Vec on every review, test ones included: we must not."""
    import sentiment.pipeline as pipeline
    import sentiment.prepare as prepare

    data = write_reviews(tmp_path / "r.csv", n=100)
    config_path = tmp_path / "c.yaml"
    config_path.write_text(TINY_CONFIG.format(output_dir=tmp_path / "runs", data=data))
    seen: list[list[str]] = []
    real = prepare.train_word2vec

    def spy(token_lists, *args, **kwargs):
        token_lists = list(token_lists)
        seen.extend(token_lists)
        return real(iter(token_lists), *args, **kwargs)

    monkeypatch.setattr(prepare, "train_word2vec", spy)
    config = load_config(config_path, ["training.epochs=1"])
    pipeline.train(config, tmp_path / "model")
    splits = prepare.load_splits(config.data, config.seed)
    from sentiment.tokenizer import TokenizerSettings, tokenize_many

    train_tokens = tokenize_many(splits.train.texts, TokenizerSettings.from_config(config.text))
    assert seen == [t for t in train_tokens if t]  # exactly the training texts, no validation or test text
