"""One atomic writer: whatever happens inside, the target holds the old content or the new, never a mix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment.atomic import atomic_dir, write_atomic


def test_a_failed_write_leaves_the_previous_directory_and_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_dir(target) as staging:
        (staging / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as staging:
        (staging / "a.txt").write_text("new, half")
        raise KeyboardInterrupt
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_finished_write_replaces_the_previous_directory(tmp_path: Path) -> None:
    target = tmp_path / "model"
    for content in ("old", "new"):
        with atomic_dir(target) as staging:
            (staging / content).write_text(content)
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_keep_existing_keeps_an_entry_another_writer_made(tmp_path: Path) -> None:
    target = tmp_path / "entry"
    with atomic_dir(target, keep_existing=True) as staging:
        (staging / "first").write_text("1")
        target.mkdir()  # meanwhile another process finished the same entry
        (target / "second").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["second"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_write_atomic_replaces_a_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "pointer"
    write_atomic(path, "one\n")
    write_atomic(path, b"two\n")
    assert path.read_text() == "two\n"
    with pytest.raises(TypeError):
        write_atomic(path, 3)  # type: ignore[arg-type]
    assert path.read_text() == "two\n" and sorted(p.name for p in path.parent.iterdir()) == ["pointer"]
