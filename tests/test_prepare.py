"""The prepared-data cache: a re-run that changes only model or training settings skips reading, tokenising
and encoding, and gets exactly the arrays a fresh preparation would give."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_reviews
from sentiment.cache import cache_dir
from sentiment.config import load_config
from sentiment.prepare import prepare


def _same(a, b) -> None:
    assert a.encoder == b.encoder and np.array_equal(a.vectors, b.vectors)
    assert np.array_equal(a.counts, b.counts)
    for name in ("train", "val", "test"):
        assert np.array_equal(a.bags[name].ids, b.bags[name].ids)
        assert a.bags[name].ids.dtype == b.bags[name].ids.dtype == np.int64
        assert np.array_equal(a.bags[name].offsets, b.bags[name].offsets)
        assert np.array_equal(a.labels[name], b.labels[name])
    assert (a.source, a.rows, a.label_names) == (b.source, b.rows, b.label_names)


def test_training_settings_reuse_the_prepared_data(tiny_config: Path, tmp_path: Path) -> None:
    from sentiment.pipeline import train

    first = train(load_config(tiny_config), tmp_path / "a")
    assert json.loads((first.model_dir / "meta.json").read_text())["prepared_cache_hit"] is False
    changed = ["training.lr=0.02", "model.hidden_dims=[4]"]
    again = train(load_config(tiny_config, changed), tmp_path / "b")
    fresh = train(load_config(tiny_config, [*changed, "word2vec.cache=false"]), tmp_path / "c")
    assert json.loads((again.model_dir / "meta.json").read_text())["prepared_cache_hit"] is True
    assert json.loads((fresh.model_dir / "meta.json").read_text())["prepared_cache_hit"] is False
    # the cached arrays train the very same model as a preparation from scratch
    assert again.metrics == fresh.metrics
    from safetensors.numpy import load_file

    a, b = load_file(again.model_dir / "model.safetensors"), load_file(fresh.model_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for name in ("vocab.json", "test.jsonl.gz"):
        read = gzip.open if name.endswith(".gz") else open
        with read(again.model_dir / name, "rb") as x, read(fresh.model_dir / name, "rb") as y:
            assert x.read() == y.read(), name


@pytest.mark.parametrize(
    "change",
    [
        ["seed=8"],
        ["data.val_size=0.25"],
        ["text.lowercase=false"],
        ["text.ngrams=2", "text.ngram_min_count=2"],
        ["word2vec.window=2"],
        ["word2vec.epochs=2"],
    ],
)
def test_any_data_text_or_word2vec_change_is_a_miss(tiny_config: Path, change: list[str]) -> None:
    base = prepare(load_config(tiny_config))
    assert not base.cache_hit
    hit = prepare(load_config(tiny_config))
    assert hit.cache_hit
    _same(base, hit)
    other = prepare(load_config(tiny_config, change))
    assert not other.cache_hit
    assert prepare(load_config(tiny_config, change)).cache_hit  # and is cached in turn


def test_changed_file_contents_are_a_miss(tmp_path: Path, tiny_config: Path) -> None:
    config = load_config(tiny_config)
    prepare(config)
    data = Path(config.data.path)
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("great", "grand", 1), encoding="utf-8")  # same path, one word differs
    changed = prepare(config)
    assert not changed.cache_hit
    assert "grand" in changed.encoder.vocab


@pytest.mark.parametrize("content", [b"not an array", b""], ids=["garbage", "empty"])
def test_unreadable_entry_is_prepared_again(
    tiny_config: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    """(An empty array file was `unexpected EOFError`, exit 1.)"""
    config = load_config(tiny_config)
    base = prepare(config)
    (entry,) = cache_dir("prepared").iterdir()
    (entry / "train_ids.npy").write_bytes(content)
    again = prepare(config)
    assert not again.cache_hit
    assert "unreadable" in caplog.text
    _same(base, again)


def test_dropped_row_warnings_repeat_on_a_hit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = write_reviews(tmp_path / "r.csv", n=200)
    with data.open("a", encoding="utf-8") as fh:
        fh.write(",positive\n")  # an empty text: dropped with a warning
    config = load_config(None, [f"data.path={data}", "data.kaggle_handle=null", "word2vec.workers=1"])
    prepare(config)
    caplog.clear()
    assert prepare(config).cache_hit
    assert "dropped 1 row" in caplog.text


@pytest.mark.parametrize("change", [[], ["text.ngrams=2", "text.ngram_min_count=2"]])
def test_parallel_encoding_equals_serial(
    tiny_config: Path, monkeypatch: pytest.MonkeyPatch, change: list[str]
) -> None:
    """Large splits are encoded in forked processes; the ids must be exactly those of one process."""
    import sentiment.prepare as prepare_module

    config = load_config(tiny_config, [*change, "word2vec.cache=false"])
    serial = prepare(config)
    forks = []
    real = prepare_module.fork_map
    monkeypatch.setattr(prepare_module, "fork_map", lambda tasks: forks.append(len(tasks)) or real(tasks))
    monkeypatch.setattr(prepare_module, "PARALLEL_MIN_TEXTS", 10)
    monkeypatch.setattr(prepare_module, "cpu_count", lambda: 2)
    parallel = prepare(config)
    assert forks == [12]  # train, validation and test, four slices each
    _same(serial, parallel)


def test_caches_deleted_during_a_cached_run(
    tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README says the cache folders can go at any time: a run that loaded its data from them finishes,
    reading again what it still needs (the test rows)."""
    import shutil

    import sentiment.pipeline as pipeline
    from sentiment.paths import home_dir

    first = pipeline.train(load_config(tiny_config), tmp_path / "a")
    real = pipeline.prepare

    def then_delete(*args, **kwargs):
        prepared = real(*args, **kwargs)
        assert prepared.cache_hit
        for kind in ("prepared", "word2vec"):
            shutil.rmtree(home_dir() / kind)
        return prepared

    monkeypatch.setattr(pipeline, "prepare", then_delete)
    again = pipeline.train(load_config(tiny_config), tmp_path / "b")
    assert again.metrics == first.metrics
    rows = [gzip.decompress((out.model_dir / "test.jsonl.gz").read_bytes()) for out in (first, again)]
    assert rows[0] == rows[1]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "directory"])
def test_damaged_cached_test_rows_are_read_from_the_data(
    tiny_config: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache hit copies the entry's test rows into the model directory: damaged since they were cached,
    they are read from the data again (they were copied as they were: a model `eval` could not read, or
    an IsADirectoryError that failed the run)."""
    config = load_config(tiny_config)
    prepare(config)
    (entry,) = cache_dir("prepared").iterdir()
    rows = entry / "test.jsonl.gz"
    whole = gzip.decompress(rows.read_bytes())
    if damage == "truncated":
        rows.write_bytes(rows.read_bytes()[:-40])
    elif damage == "garbage":
        rows.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    else:
        rows.unlink()
        rows.mkdir()
    prepared = prepare(config)
    assert prepared.cache_hit
    prepared.write_test_rows(tmp_path / "test.jsonl.gz")
    assert gzip.decompress((tmp_path / "test.jsonl.gz").read_bytes()) == whole
    assert "damaged test rows" in caplog.text
