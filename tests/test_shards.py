"""`predict --file 'shards/*' --output DIR [--engine dask]`: one output per shard, equal to a one-file run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_review

pytest.importorskip("distributed")


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    import random

    rng = random.Random(4)
    folder = tmp_path / "shards"
    folder.mkdir()
    rows = [{"id": i, "review": make_review(rng, i % 2 == 0)} for i in range(90)]
    frame = pd.DataFrame(rows)
    frame.iloc[:30].to_parquet(folder / "a.parquet")
    frame.iloc[30:60].to_csv(folder / "b.csv", index=False)
    frame.iloc[60:].to_json(folder / "c.jsonl", orient="records", lines=True)
    return folder


def single_file_outputs(cli, model: Path, folder: Path, out: Path) -> dict[str, str]:
    out.mkdir()
    expected = {}
    for shard in sorted(folder.iterdir()):
        target = out / f"{shard.stem}.csv"
        assert cli(["predict", "--model", model, "--file", shard, "--output", target]).exit_code == 0
        expected[target.name] = target.read_text()
    return expected


@pytest.mark.slow
def test_dask_and_local_outputs_equal_one_file_runs(cli, trained_model: Path, shards: Path, tmp_path: Path):
    expected = single_file_outputs(cli, trained_model, shards, tmp_path / "one")
    for engine in ("local", "dask"):
        out = tmp_path / engine
        args = ["predict", "--model", trained_model, "--file", f"{shards}/*", "--output", out]
        result = cli([*args, "--engine", engine, "--workers", "2"])
        assert result.exit_code == 0, result.stderr
        assert f"90 predictions from 3 file(s) written to {out}/" in result.stderr
        assert {p.name: p.read_text() for p in out.iterdir()} == expected
    # row order kept: the input's ids, in order, then the predictions
    b = pd.read_csv(tmp_path / "dask" / "b.csv")
    assert b["id"].tolist() == list(range(30, 60)) and set(b["label"]) <= {"negative", "positive"}


@pytest.mark.slow
def test_a_running_scheduler_is_used(cli, trained_model: Path, shards: Path, tmp_path: Path) -> None:
    import logging

    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    ) as c:
        args = ["predict", "--model", trained_model, "--file", shards, "--output", tmp_path / "out"]
        result = cli([*args, "--engine", "dask", "--scheduler", c.scheduler_address])
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv", "b.csv", "c.csv"]


@pytest.mark.slow
def test_a_bad_shard_on_a_worker_is_a_clear_error(cli, trained_model: Path, shards: Path, tmp_path: Path):
    pd.DataFrame({"other": ["x"]}).to_csv(shards / "d.csv", index=False)
    args = ["predict", "--model", trained_model, "--file", shards, "--output", tmp_path / "out"]
    result = cli([*args, "--engine", "dask", "--workers", "1"])
    assert result.exit_code == 2 and "text column 'review' not found" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--file", "{tmp}/none/*.csv", "--output", "{tmp}/o"],
            "no CSV / TSV / Parquet / JSON-lines file matches",
        ),
        (["--file", "{shards}"], "is a directory: give --output DIR for one CSV per data file in it"),
        (["--file", "{shards}", "--output", "{shards}/a.parquet"], "must be a directory"),
        (["--file", "{shards}", "--output", "{tmp}/o", "--engine", "spark"], "use one of local, dask"),
        (
            [
                "--file",
                "{shards}",
                "--output",
                "{tmp}/o",
                "--engine",
                "dask",
                "--scheduler",
                "tcp://127.0.0.1:9",
            ],
            "cannot reach the Dask scheduler",
        ),
    ],
)
def test_shard_errors(cli, trained_model: Path, shards: Path, tmp_path: Path, args: list[str], message: str):
    import dask

    filled = [a.format(tmp=tmp_path, shards=shards) for a in args]
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):  # the closed port: give up soon
        result = cli(["predict", "--model", trained_model, *filled])
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_two_shards_that_would_share_an_output_are_refused(cli, trained_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    pd.DataFrame({"review": ["good"]}).to_csv(folder / "x.csv", index=False)
    (folder / "x.jsonl").write_text(json.dumps({"review": "bad"}) + "\n")
    result = cli(["predict", "--model", trained_model, "--file", folder, "--output", tmp_path / "o"])
    assert result.exit_code == 2 and "would both write" in result.stderr
