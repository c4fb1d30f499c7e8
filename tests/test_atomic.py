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


COMMITTER = """
import os, sys, time
from pathlib import Path
from sentiment import atomic

real_rename = os.rename


def slow_rename(a, b):  # widen the window between "no target yet" and the rename: both runs look first
    time.sleep(0.3)
    real_rename(a, b)


atomic.os.rename = slow_rename
with atomic.atomic_dir(Path(sys.argv[1])) as staging:
    (staging / "run").write_text(sys.argv[2])
print("committed")
"""


def test_two_runs_committing_to_one_place_at_once_both_succeed(tmp_path: Path) -> None:
    """Without the lock both saw no target, and the second rename failed: 'Directory not empty'."""
    import subprocess
    import sys

    target = tmp_path / "model"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", COMMITTER, str(target), name], stdout=subprocess.PIPE, text=True
        )
        for name in ("a", "b")
    ]
    outs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0] and outs == ["committed\n"] * 2
    assert sorted(p.name for p in target.iterdir()) == ["run"] and (target / "run").read_text() in ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_file_where_the_directory_belongs_is_replaced_without_leftovers(tmp_path: Path) -> None:
    """A file in the way is replaced by two renames; the old file was left behind as .NAME.old-PID."""
    from sentiment import atomic

    target = tmp_path / "entry"
    target.write_text("a file")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "x").write_text("x")
    atomic.commit_dir(staging, target)
    assert (target / "x").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]
