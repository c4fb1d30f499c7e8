"""Reliability, round two: paths that cannot be written and damaged input fail before the work, with exit 2
and one line naming the problem; nothing is left behind."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from _reliability import assert_bad_input
from conftest import write_reviews


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("a regular file where a directory should be")
    return path


def test_train_output_under_a_file(cli, tmp_path: Path, blocker: Path) -> None:
    data = write_reviews(tmp_path / "r.csv")
    assert_bad_input(cli(["train", "--data", data, "-o", blocker / "model", "-q"]), f"{blocker} is a file")
    result = cli(["train", "--data", data, "--set", f"output_dir={blocker}/runs", "-q"])
    assert_bad_input(result, "cannot be created", f"{blocker} is a file")


def test_state_directory_that_is_a_file(cli, tmp_path: Path, blocker: Path, monkeypatch) -> None:
    data = write_reviews(tmp_path / "r.csv")
    monkeypatch.setenv("SENTIMENT_HOME", str(blocker))
    result = cli(["train", "--data", data, "-o", tmp_path / "model", "-q"])
    assert_bad_input(result, f"SENTIMENT_HOME {blocker} is a file")
    assert not (tmp_path / "model").exists()


def test_predict_output_into_a_directory_or_under_a_file(
    cli, trained_model: Path, tmp_path: Path, blocker
) -> None:
    (tmp_path / "in.txt").write_text("a wonderful film\n")
    result = cli(["predict", "--model", trained_model, "--file", tmp_path / "in.txt", "--output", tmp_path])
    assert_bad_input(result, "is a directory; give a file name")
    result = cli(
        ["predict", "--model", trained_model, "--file", tmp_path / "in.txt", "--output", blocker / "o.csv"]
    )
    assert_bad_input(result, f"{blocker} is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in.txt"]  # no temporary file left


def test_gzip_damaged_mid_stream(cli, tmp_path: Path) -> None:
    raw = gzip.compress(write_reviews(tmp_path / "r.csv", n=2000).read_bytes())
    middle = len(raw) // 2
    (tmp_path / "bad.csv.gz").write_bytes(raw[:middle] + bytes(200) + raw[middle + 200 :])
    assert_bad_input(
        cli(["train", "--data", tmp_path / "bad.csv.gz", "-q"]), "bad.csv.gz: cannot parse as csv"
    )


def test_word2vec_setting_that_leaves_no_vocabulary(cli, tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "r.csv")
    result = cli(["train", "--data", data, "-q", "--set", "word2vec.min_count=100000"])
    assert_bad_input(
        result, "word2vec.min_count=100000 leaves no word to train on", "--set word2vec.min_count=N"
    )


def test_text_cells_that_look_missing_are_text(tmp_path: Path) -> None:
    from sentiment.data import read_table

    path = tmp_path / "t.csv"
    path.write_text("review,sentiment\nNA,positive\nnull,negative\nNone,positive\n,negative\nN/A,positive\n")
    frame = read_table(path)
    assert frame["review"].tolist()[:3] == ["NA", "null", "None"] and frame["review"].isna().tolist()[3]


def test_a_line_is_what_ends_at_lf_or_crlf(cli, trained_model: Path, tmp_path: Path) -> None:
    texts = ["a wonderful\x0cfilm", "dull\u2028and boring", "great\x0bcast"]
    (tmp_path / "in.txt").write_bytes("\r\n".join(texts).encode() + b"\r\n")
    result = cli(["predict", "--model", trained_model, "--file", tmp_path / "in.txt", "--json"])
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == texts


def test_blank_lines_keep_their_place(cli, trained_model: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a wonderful film\n\n  \ndull and boring\n\n\n")
    result = cli(["predict", "--model", trained_model, "--file", tmp_path / "in.txt", "--json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["a wonderful film", "", "  ", "dull and boring"]
    assert [r["no_known_words"] for r in rows] == [False, True, True, False]
    lines = cli(["predict", "--model", trained_model, "--file", tmp_path / "in.txt"]).stdout.splitlines()
    assert len(lines) == 4 and lines[1].split("\t")[0].endswith("*")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n")
    only_blank = cli(["predict", "--model", trained_model, "--file", blank])
    assert only_blank.exit_code == 2 and "no text to classify" in only_blank.stderr
