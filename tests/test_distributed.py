"""Distributed training (torchrun, DistributedDataParallel, gloo on CPU, 2 ranks).

The slow tests launch real ranks with ``python -m torch.distributed.run --standalone --nproc_per_node=2``
(torchrun) on tests/slow_cli.py, which is ``python -m sentiment`` with hooks that log what each rank prepared
and which training rows it took, and that slow the optimizer steps down so a signal lands mid-training.
The fast tests check the sampler and the helpers without a process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _reliability import assert_bad_input
from test_reliability_interrupt import Run

TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
BATCH = "training.batch_size=33"  # 240 training rows: 7 batches of 33, then 9 rows, split 5 / 4 between ranks


def weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


class Ranks(Run):
    """``torchrun --standalone --nproc_per_node=2 tests/slow_cli.py ARGS``, stderr collected as it comes."""

    def __init__(self, args: list, **env: str) -> None:
        super().__init__(args, TORCHRUN, **{"SENTIMENT_DIST_TIMEOUT": "60", **env})

    def finish(self, timeout: float = 180) -> int:
        return super().finish(timeout)

    def rank_pid(self, rank: int) -> int:
        """The process id of a rank (torchrun's child whose environment says RANK=rank)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in map(int, children):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if f"RANK={rank}".encode() in environ:
                return pid
        raise AssertionError(f"no rank {rank} among {children}")


def train_two_ranks(config: Path, output: Path, *sets: str, **env: str) -> Ranks:
    args = ["train", "--config", config, "--output", output]
    ranks = Ranks([*args, *(a for s in sets for a in ("--set", s))], **env)
    code = ranks.finish()
    assert code == 0, "\n".join(ranks.lines)
    return ranks


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A one-process model and a 2-rank model of one config and global batch, the 2-rank run logging which
    process prepared the data and which rows each rank trained on."""
    from conftest import TINY_CONFIG, write_reviews
    from sentiment.config import load_config
    from sentiment.pipeline import train

    root = tmp_path_factory.mktemp("distributed")
    data = write_reviews(root / "reviews.csv")
    config = root / "tiny.yaml"
    config.write_text(TINY_CONFIG.format(output_dir=root / "runs", data=data), encoding="utf-8")
    (root / "batches").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_HOME", str(root / "home-one"))
        train(load_config(config, [BATCH]), root / "one")
        # a state directory of its own: the ranks cannot reuse the one-process run's Word2Vec
        mp.setenv("SENTIMENT_HOME", str(root / "home-two"))
        log = {"PREPARE_LOG": str(root / "prepared.log"), "BATCH_LOG": str(root / "batches")}
        ranks = train_two_ranks(config, root / "two", BATCH, **log)
    (root / "two.stderr").write_text("\n".join(ranks.lines), encoding="utf-8")
    return {"root": root, "config": config, "one": root / "one", "two": root / "two"}


@pytest.mark.slow
def test_two_ranks_train_the_one_process_model(runs: dict[str, Path]) -> None:
    one, two = weights(runs["one"]), weights(runs["two"])
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5, err_msg=key)
    metrics = [json.loads((runs[r] / "metrics.json").read_text()) for r in ("one", "two")]
    for split in ("test", "validation"):  # validation: reduced over both ranks' rows
        for name in ("accuracy", "f1", "roc_auc"):
            assert metrics[1][split][name] == pytest.approx(metrics[0][split][name], abs=1e-6), (split, name)
    history = [(runs[r] / "history.csv").read_text().splitlines() for r in ("one", "two")]
    assert len(history[0]) == len(history[1])  # the same epochs, the same early stop


@pytest.mark.slow
def test_rank_zero_alone_prepares_and_prints(runs: dict[str, Path]) -> None:
    assert (runs["root"] / "prepared.log").read_text().split() == ["0"]  # Word2Vec and all: once
    stderr = (runs["root"] / "two.stderr").read_text()
    assert "device: cpu (1 thread); 2 ranks, this is rank 0 (gloo)" in stderr
    assert stderr.count("model: SimpleMLP") == 1  # rank 1 prints nothing
    assert sorted(p.name for p in runs["root"].iterdir() if p.name.startswith("two")) == ["two", "two.stderr"]


@pytest.mark.slow
def test_every_training_row_once_per_epoch_in_the_one_process_order(runs: dict[str, Path]) -> None:
    import torch

    logs = [
        [json.loads(line) for line in (runs["root"] / "batches" / f"rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]
    passes = sorted({b["pass"] for b in logs[0]})
    assert passes == sorted({b["pass"] for b in logs[1]}) and len(passes) >= 2
    for n in passes:
        parts = [[b["rows"] for b in log if b["pass"] == n] for log in logs]
        assert len(parts[0]) == len(parts[1])  # both ranks step together, batch for batch
        rows = [row for a, b in zip(*parts, strict=True) for row in a + b]
        assert sorted(rows) == list(range(len(rows))), n  # each row exactly once, none padded or repeated
        assert len(rows) in (240, 320)  # the fit's training rows, or the refit's training + validation
        for a, b in zip(*parts, strict=True):
            assert 0 <= len(a) - len(b) <= 1  # contiguous halves of one global batch
        if n == passes[0]:  # the one-process run's first epoch, in its order and batches
            order = torch.randperm(240, generator=torch.Generator().manual_seed(7)).tolist()
            assert rows == order
            assert [len(a) + len(b) for a, b in zip(*parts, strict=True)] == [33] * 7 + [9]


@pytest.mark.slow
def test_an_interrupted_two_rank_run_resumes_to_the_same_model(runs: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "stopped"
    ranks = Ranks(["train", "--config", runs["config"], "--output", target, "--set", BATCH], SLOW_STEP="0.05")
    ranks.wait_for("epoch   1/")
    ranks.proc.send_signal(signal.SIGTERM)  # to torchrun, as a scheduler would: it passes it to the ranks
    assert ranks.finish() != 0
    stopped = [line for line in ranks.lines if line.startswith("training interrupted by SIGTERM")]
    assert len(stopped) == 1, ranks.lines  # rank 0 says it, once
    assert "state saved in" in stopped[0] and not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopped.checkpoint"]
    resume = ranks.lines[ranks.lines.index(stopped[0]) + 1]
    assert resume.startswith("torchrun --standalone --nproc_per_node=2 -m sentiment train --config ")
    assert resume.endswith(" --resume")

    resumed = Ranks(["train", "--config", runs["config"], "--output", target, "--set", BATCH, "--resume"])
    assert resumed.finish() == 0, resumed.lines
    assert any(line.startswith("resuming from ") for line in resumed.lines)
    expected, got = weights(runs["two"]), weights(target)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopped"]  # the checkpoint is gone


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_others_with_a_message(runs: dict[str, Path], tmp_path: Path) -> None:
    ranks = Ranks(["train", "--config", runs["config"], "--output", tmp_path / "m"], SLOW_STEP="0.05")
    ranks.wait_for("epoch   1/")
    os.kill(ranks.rank_pid(1), signal.SIGKILL)
    start = time.monotonic()
    assert ranks.finish(timeout=90) != 0
    assert time.monotonic() - start < 60, "the surviving rank hung"
    errors = [line for line in ranks.lines if line.startswith("error: ")]
    # every line, not pytest's shortened list: a failure seen once in a full run could not be reproduced
    assert errors, "\n".join(ranks.lines)
    assert errors[0].startswith("error: distributed training stopped on rank 0 of 2: another rank failed")
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_nproc_launches_torchrun_and_keeps_bad_input_to_one_line(
    cli, tiny_config: Path, tmp_path: Path
) -> None:
    """``--nproc 2`` goes through torchrun; a problem rank 0 finds is still one line and exit status 2."""
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "train", "--config", tiny_config, "--nproc", "2", "--resume"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SENTIMENT_DIST_TIMEOUT": "60"},
    )

    class Result:  # what assert_bad_input reads
        exit_code, stdout, stderr = result.returncode, result.stdout, result.stderr

    assert_bad_input(Result, "no checkpoint to resume from")


# --- without a process group ---


@pytest.mark.parametrize(
    ("n", "batch", "world"), [(240, 33, 2), (10, 4, 3), (7, 64, 2), (5, 4, 4), (1, 1, 2)]
)
def test_sharded_batches_split_each_global_batch(n: int, batch: int, world: int) -> None:
    import torch
    from torch.utils.data import BatchSampler, RandomSampler

    from sentiment.distributed import ShardedBatches

    def batches() -> BatchSampler:
        return BatchSampler(RandomSampler(range(n), generator=torch.Generator().manual_seed(3)), batch, False)

    one = list(batches())
    parts = [list(ShardedBatches(batches(), r, world)) for r in range(world)]
    assert all(len(p) == len(one) == len(ShardedBatches(batches(), r, world)) for r, p in enumerate(parts))
    for i, global_batch in enumerate(one):
        pieces = [p[i] for p in parts]
        assert [row for piece in pieces for row in piece] == global_batch  # in order, nothing repeated
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1  # empty only when the batch is small


def test_row_shards_cover_the_rows_in_order() -> None:
    from sentiment.distributed import RowShard

    for n, world in [(80, 2), (5, 3), (1, 2), (0, 2)]:
        shards = [list(RowShard(n, 2, r, world)) for r in range(world)]
        rows = [row for shard in shards for batch in shard for row in batch]
        assert rows == list(range(n))
        assert all(len(shard) >= 1 for shard in shards)  # a rank with no rows still predicts (nothing)


def test_one_process_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.data import BatchSampler, SequentialSampler

    from sentiment import distributed

    for name in ("WORLD_SIZE", "RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    batches = BatchSampler(SequentialSampler(range(5)), 2, False)
    assert distributed.shard_batches(batches, 5, True) is batches
    assert not distributed.active() and distributed.is_main() and distributed.describe() == ""
    assert distributed.command_line(["train", "--resume"]) == ["sentiment", "train", "--resume"]
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main()  # before the process group is up: torchrun's RANK


def test_resume_lines_name_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentiment.distributed import NPROC_ENV, command_line

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.delenv(NPROC_ENV, raising=False)
    assert command_line(["train", "-o", "m"]) == [
        "torchrun", "--standalone", "--nproc_per_node=4", "-m", "sentiment", "train", "-o", "m"
    ]  # fmt: skip
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert command_line(["train"])[:4] == [
        "torchrun",
        "--nnodes=2",
        "--nproc_per_node=2",
        "--rdzv-endpoint=HOST:PORT",
    ]
    monkeypatch.setenv(NPROC_ENV, "2")
    assert command_line(["train", "-o", "m"]) == ["sentiment", "train", "--nproc", "2", "-o", "m"]


def test_a_bad_timeout_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentiment.distributed import TIMEOUT_ENV, timeout_seconds
    from sentiment.errors import ConfigError

    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match=TIMEOUT_ENV):
        timeout_seconds()
    monkeypatch.setenv(TIMEOUT_ENV, "90")
    assert timeout_seconds() == 90
