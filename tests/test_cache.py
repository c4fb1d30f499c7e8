"""The caches: entries keyed by their inputs and the cache format number, apart from the stages."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment import cache


def test_an_entry_round_trips(tmp_path) -> None:
    key = cache.make_key("prepared", {"files": {"data": "abc"}, "seed": 1})
    directory = cache.store(
        "prepared", key, {"rows": 3}, {"ids": np.arange(3)}, {"x.txt": lambda p: p.write_text("x")}
    )
    assert directory == cache.cache_dir("prepared") / key
    entry = cache.load("prepared", key)
    assert entry is not None and entry.meta["rows"] == 3
    assert entry.array("ids").tolist() == [0, 1, 2] and entry.has("x.txt")


def test_keys_change_with_every_input_and_the_format_number(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = {"files": {"data": "abc"}, "seed": 1}
    key = cache.make_key("prepared", inputs)
    assert key == cache.make_key("prepared", dict(reversed(list(inputs.items()))))  # order does not matter
    assert key != cache.make_key("prepared", {**inputs, "seed": 2})
    assert key != cache.make_key("word2vec", inputs)
    monkeypatch.setattr(cache, "CACHE_VERSION", cache.CACHE_VERSION + 1)
    assert key != cache.make_key("prepared", inputs)


def test_an_entry_of_another_format_number_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    cache.store("word2vec", "k", {"words": ["a"]}, {"vectors": np.zeros((1, 2))})
    assert cache.load("word2vec", "k") is not None
    monkeypatch.setattr(cache, "CACHE_VERSION", cache.CACHE_VERSION + 1)
    assert cache.load("word2vec", "k") is None


def test_an_unwritable_cache_is_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SENTIMENT_HOME", str(blocker))
    assert cache.store("prepared", "k", {}, {"a": np.zeros(1)}) is None
    assert "could not write the prepared cache" in caplog.text


@pytest.mark.parametrize("damage", ["garbage-meta", "meta-a-directory", "entry-a-file"])
def test_a_damaged_entry_is_replaced_by_the_next_store(damage: str) -> None:
    """An entry found unreadable is removed, so that the run that computes it again stores it anew (``store``
    kept the damaged entry: every later run warned and computed it again)."""
    import shutil

    cache.store("word2vec", "k", {"words": ["a"]}, {"vectors": np.zeros((1, 2))})
    entry = cache.cache_dir("word2vec") / "k"
    if damage == "garbage-meta":
        (entry / "meta.json").write_bytes(b"\xff\x00 not json")
    elif damage == "meta-a-directory":
        (entry / "meta.json").unlink()
        (entry / "meta.json").mkdir()
    else:
        shutil.rmtree(entry)
        entry.write_text("not an entry")
    assert cache.load("word2vec", "k") is None
    assert cache.store("word2vec", "k", {"words": ["a"]}, {"vectors": np.ones((1, 2))}) == entry
    again = cache.load("word2vec", "k")
    assert again is not None and again.array("vectors").tolist() == [[1.0, 1.0]]
    assert sorted(p.name for p in entry.parent.iterdir()) == ["k"]


def test_what_killed_writers_left_is_removed_by_the_next_store() -> None:
    """kill -9 while storing an entry leaves its hidden staging directory; the next store or load of any entry
    of the cache removes it (only a store of the same entry did), and leaves a live writer's alone."""
    import os

    folder = cache.cache_dir("prepared")
    folder.mkdir(parents=True)
    dead, live = folder / ".other.tmp-999999999", folder / f".busy.tmp-{os.getppid()}"
    for staging in (dead, live):
        staging.mkdir()
        (staging / "ids.npy").write_bytes(b"half")
    cache.store("prepared", "k", {"rows": 1}, {"ids": np.arange(1)})
    assert sorted(p.name for p in folder.iterdir()) == [live.name, "k"]
    dead.mkdir()  # again, and a run that only reads the cache
    assert cache.load("prepared", "k") is not None
    assert sorted(p.name for p in folder.iterdir()) == [live.name, "k"]
