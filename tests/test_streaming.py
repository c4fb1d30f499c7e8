"""Out-of-core data (data.streaming): the same prepared data and model as in memory, through files on disk, a
chunk of texts at a time; sharded data paths end to end."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sentiment.streaming as streaming
from conftest import make_review, write_reviews
from sentiment.arrays import ArrayWriter, release_pages
from sentiment.config import load_config
from sentiment.ngrams import merge_counts, ngram_text_counts
from sentiment.paths import home_dir
from sentiment.prepare import prepare, streams
from sentiment.text import TokenBags, concat_bags


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 texts: every stage crosses many chunk boundaries on the tests' few hundred rows; n-gram
    counts merged every few chunks."""
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 7)
    monkeypatch.setattr(streaming, "MERGE_ENTRIES", 50)


def _same(a, b) -> None:
    assert a.encoder.vocab == b.encoder.vocab and a.encoder.phrases == b.encoder.phrases
    assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.counts, b.counts)
    for name in ("train", "val", "test"):
        if a.bags[name] is None:
            assert b.bags[name] is None
            continue
        assert np.array_equal(a.bags[name].ids, b.bags[name].ids), name
        assert np.array_equal(a.bags[name].offsets, b.bags[name].offsets), name
        assert np.array_equal(a.labels[name], b.labels[name]), name
    assert (a.rows, a.label_names, a.warnings) == (b.rows, b.label_names, b.warnings)


def _shards(folder: Path, n: int = 300, parts: int = 3, seed: int = 0) -> Path:
    """``n`` reviews (with a movie column and one row without a text) in ``parts`` CSV shards."""
    rng = random.Random(seed)
    rows = [
        {"review": make_review(rng, i % 2 == 0), "sentiment": ["negative", "positive"][i % 2 == 0]}
        for i in range(n)
    ]
    rows[5]["review"] = " "  # dropped, with a warning, on both paths
    for i, row in enumerate(rows):
        row["movie"] = f"m{i % 40}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    for k, part in enumerate(np.array_split(np.arange(n), parts)):
        frame.iloc[part].to_csv(folder / f"part-{k}.csv", index=False)
    return folder


BASE = ["data.kaggle_handle=null", "word2vec.workers=1", "word2vec.min_count=1", "word2vec.vector_size=16"]


@pytest.mark.parametrize(
    "change",
    [
        [],
        ["text.ngrams=2", "text.ngram_min_count=2", "features.pooling=nb"],
        ["text.ngrams=3", "text.ngram_min_count=2", "data.max_rows=250", "features.pooling=tfidf"],
        [
            "text.phrases=true",
            "text.phrases_min_count=2",
            "text.phrases_threshold=1",
            "data.group_column=movie",
        ],
        ["data.val_size=0"],
    ],
)
def test_streaming_prepares_what_memory_does(tmp_path: Path, change: list[str]) -> None:
    data = _shards(tmp_path / "shards")
    unlabeled = _shards(tmp_path / "unlabeled", n=120, parts=2, seed=1)
    sets = [*BASE, f"data.path={data}", f"data.unlabeled_path={unlabeled}/*.csv", *change]
    in_memory = prepare(load_config(None, [*sets, "data.streaming=false"]))
    streamed = prepare(load_config(None, [*sets, "data.streaming=true"]))
    _same(in_memory, streamed)
    assert isinstance(streamed.bags["train"].ids, np.memmap)  # token ids on disk, not in memory
    assert any("dropped 1 row" in w for w in streamed.warnings)
    assert not any((home_dir() / "tmp").iterdir())  # the scratch files are gone once mapped


def test_streaming_reads_a_test_file(tmp_path: Path) -> None:
    data, test = (
        write_reviews(tmp_path / "train.csv", n=200),
        write_reviews(tmp_path / "test.csv", n=90, seed=3),
    )
    sets = [*BASE, f"data.path={data}", f"data.test_path={test}"]
    in_memory = prepare(load_config(None, [*sets, "data.streaming=false"]))
    streamed = prepare(load_config(None, [*sets, "data.streaming=true"]))
    _same(in_memory, streamed)
    assert len(streamed.labels["test"]) == 90
    out_a, out_b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    in_memory.write_test_rows(out_a)
    streamed.write_test_rows(out_b)
    assert gzip.decompress(out_a.read_bytes()) == gzip.decompress(out_b.read_bytes())


def test_auto_streams_large_data_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sentiment.prepare as prepare_module

    data = _shards(tmp_path / "shards")
    config = load_config(None, [*BASE, f"data.path={data}"])
    assert config.data.streaming == "auto" and not streams(config.data, data)
    monkeypatch.setattr(prepare_module, "STREAMING_AUTO_BYTES", 1000)  # the shards hold more than this
    assert streams(config.data, data)
    assert not streams(load_config(None, [*BASE, f"data.path={data}", "data.streaming=false"]).data, data)


def test_train_on_shards_out_of_core_equals_in_memory(tmp_path: Path, cli) -> None:
    """The real CLI on a directory of shards: fine-tuned embeddings, the wide part and a refit (whose
    training + validation rows are one view of the ids file) give the model trained in memory."""
    data = _shards(tmp_path / "shards", n=400)
    results = {}
    for mode in ("false", "true"):
        out = tmp_path / f"model-{mode}"
        args = ["train", "--output", out, "--set", f"data.path={data}", "--set", f"data.streaming={mode}"]
        for item in [
            *BASE,
            "data.text_column=review",
            "data.label_column=sentiment",
            "model.fine_tune_embeddings=true",
            "model.wide=true",
            "training.epochs=3",
            "training.refit=true",
            "training.batch_size=16",
            "training.num_workers=0",
        ]:
            args += ["--set", item]
        result = cli(args)
        assert result.exit_code == 0, result.stderr
        assert ("out of core" in result.stderr) == (mode == "true")
        results[mode] = json.loads((out / "metrics.json").read_text())
        results[mode + "-rows"] = gzip.decompress((out / "test.jsonl.gz").read_bytes())
    assert results["true"]["test"] == results["false"]["test"]
    assert results["true-rows"] == results["false-rows"]
    evaluated = cli(["eval", "--model", tmp_path / "model-true", "--json"])
    assert (
        evaluated.exit_code == 0
        and json.loads(evaluated.stdout)["accuracy"] == results["true"]["test"]["accuracy"]
    )


def test_a_glob_that_matches_nothing_is_a_config_error(tmp_path: Path, cli) -> None:
    result = cli(["train", "--set", f"data.path={tmp_path}/part-*.csv", "--set", "data.kaggle_handle=null"])
    assert result.exit_code == 2
    assert (
        f"JSON-lines file matches {tmp_path}/part-*.csv" in result.stderr and "Traceback" not in result.stderr
    )


def test_text_store_round_trips_any_text(tmp_path: Path) -> None:
    store = streaming.TextStore(tmp_path)
    texts = ["plain", "", "ünïcödé ✓ 映画", 'two\nlines, "quoted"', "x" * 10_000]
    store.append(texts[:2])
    store.append(texts[2:])
    assert not list(tmp_path.iterdir())  # unlinked at once: nothing to clean up
    assert [t for chunk in store.chunks(size=2) for t in chunk] == texts
    assert [t for chunk in store.chunks(np.array([0, 2, 4])) for t in chunk] == [texts[0], texts[2], texts[4]]
    assert list(store.chunks(np.array([], dtype=np.int64))) == []


def test_disk_arrays_are_mapped_and_unlinked(tmp_path: Path) -> None:
    writer = ArrayWriter(tmp_path / "ids.bin", np.int32)
    writer.append(np.arange(5))
    writer.append(np.arange(5, 12))
    ids = writer.finish()
    assert isinstance(ids, np.memmap) and ids.tolist() == list(range(12))
    assert not (tmp_path / "ids.bin").exists()
    release_pages(ids)  # unmaps this process's pages; the values read again from the page cache
    assert ids[11] == 11
    release_pages(np.arange(3))  # in memory: nothing to do


def test_adjacent_mapped_bags_join_as_a_view(tmp_path: Path) -> None:
    writer = ArrayWriter(tmp_path / "ids.bin", np.int32)
    writer.append(np.arange(10))
    ids = writer.finish()
    first, second = TokenBags(ids[:6], np.array([0, 2, 6])), TokenBags(ids[6:], np.array([0, 1, 4]))
    joined = concat_bags([first, second])
    assert joined.ids.base is ids.base or joined.ids.base is ids  # a view of the map, no copy
    assert joined.ids.tolist() == list(range(10)) and joined.offsets.tolist() == [0, 2, 6, 7, 10]
    swapped = concat_bags([second, first])  # not back to back: copied, still right
    assert not isinstance(swapped.ids, np.memmap) or swapped.ids.base is None
    assert swapped.ids.tolist() == [6, 7, 8, 9, 0, 1, 2, 3, 4, 5]
    assert joined.subset(np.array([3, 0])).ids.dtype == np.int64
    chunks = list(joined.chunks(tokens=3))
    assert [start for start, _ in chunks] == [0, 1, 2, 3]
    assert np.concatenate([c.ids for _, c in chunks]).tolist() == list(range(10))


def test_ngram_counts_of_batches_add_up() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 12, size=50)
    ids = rng.integers(-1, 9, size=int(lengths.sum()))
    whole = ngram_text_counts(ids, lengths, 2, 10)
    cut = int(lengths[:20].sum())
    parts = [
        ngram_text_counts(ids[:cut], lengths[:20], 2, 10),
        ngram_text_counts(ids[cut:], lengths[20:], 2, 10),
    ]
    merged = merge_counts(parts)
    assert np.array_equal(whole[0], merged[0]) and np.array_equal(whole[1], merged[1])


def test_frozen_features_out_of_core_are_rows_on_disk(tmp_path: Path) -> None:
    """Frozen vectors: the pooled rows of every split live in one matrix on disk; the refit joins training and
    validation rows as a view of it; the model scores what the in-memory one scores."""
    from sentiment.batches import concat_batches
    from sentiment.pipeline import set_up, train
    from sentiment.progress import Reporter

    data = _shards(tmp_path / "shards", n=300)
    sets = [*BASE, f"data.path={data}", "data.text_column=review", "data.label_column=sentiment"]
    sets += ["features.normalize=true", "training.refit=true", "training.epochs=3", "model.dropout=0"]
    run = set_up(load_config(None, [*sets, "data.streaming=true"]), Reporter(quiet=True))
    train_rows, val_rows = run.datasets["train"], run.datasets["val"]
    assert isinstance(train_rows.mapped, np.memmap) and isinstance(val_rows.mapped, np.memmap)
    joined = concat_batches(train_rows, val_rows)
    assert joined.mapped is not None and joined.mapped.base is train_rows.mapped.base
    assert len(joined) == len(train_rows) + len(val_rows)
    in_memory = set_up(load_config(None, [*sets, "data.streaming=false"]), Reporter(quiet=True))
    assert in_memory.datasets["train"].mapped is None
    # standardised a block at a time in float64: the same rows up to float32 rounding
    np.testing.assert_allclose(
        train_rows.features.numpy(), in_memory.datasets["train"].features.numpy(), atol=1e-5
    )
    streamed = train(load_config(None, [*sets, "data.streaming=true"]), tmp_path / "a")
    kept = train(load_config(None, [*sets, "data.streaming=false"]), tmp_path / "b")
    assert abs(streamed.metrics["accuracy"] - kept.metrics["accuracy"]) <= 0.02


def test_several_ranks_keep_the_data_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentiment import distributed
    from sentiment.errors import ConfigError

    data = _shards(tmp_path / "shards")
    monkeypatch.setattr(distributed, "active", lambda: True)
    assert not streams(load_config(None, [*BASE, f"data.path={data}"]).data, data)  # auto: in memory
    with pytest.raises(ConfigError, match=r"data\.streaming=true does not work with several ranks"):
        streams(load_config(None, [*BASE, f"data.path={data}", "data.streaming=true"]).data, data)


def test_sharded_data_in_memory_is_cached_by_each_shard(tmp_path: Path) -> None:
    """A directory of shards keys the prepared-data cache by every shard's name and contents: a re-run hits,
    a changed shard misses."""
    data = _shards(tmp_path / "shards")
    config = load_config(None, [*BASE, f"data.path={data}", "data.streaming=false"])
    assert not prepare(config).cache_hit
    assert prepare(config).cache_hit
    shard = data / "part-1.csv"
    shard.write_text(shard.read_text().replace("film", "picture"))
    assert not prepare(config).cache_hit
