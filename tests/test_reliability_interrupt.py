"""Interrupts, kills and resume: the previous model always survives, a resumed run ends where an
uninterrupted one does, and two runs of one config on CPU agree exactly.

In-process tests stop training at an exact batch by sending SIGINT from inside the optimizer step; the
subprocess tests run the real command (tests/slow_cli.py: `python -m sentiment`, slowed down) and send
SIGINT / SIGTERM / SIGKILL when its stderr shows it has reached a given moment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from _reliability import assert_bad_input, edit_config, install_previous_model, record, snapshot
from sentiment.paths import last_model_file
from sentiment.predictor import Predictor

SLOW_CLI = Path(__file__).with_name("slow_cli.py")


def metrics(model_dir: Path) -> dict:
    saved = json.loads((model_dir / "metrics.json").read_text())
    return {"test": saved["test"], "validation": saved["validation"], "threshold": saved["threshold"]}


def weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def assert_same_model(a: Path, b: Path) -> None:
    assert metrics(a) == metrics(b)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


def stop_at_step(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """SIGINT to this process during the n-th optimizer step (as if Ctrl-C were pressed right then)."""
    import torch

    step = torch.optim.Adam.step
    calls = {"n": 0}

    def interrupting_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGINT)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)


RESUME_CASES = {
    # 240 training rows / batch 32 = 8 batches an epoch
    "mid-epoch-dropout": (12, ["model.dropout=0.3"]),
    "epoch-boundary-plateau": (8, ["training.lr_schedule=plateau"]),
    "fine-tuned-cosine": (
        19,
        [
            "model.fine_tune_embeddings=true",
            "features.normalize=false",
            "model.embedding_dropout=0.2",
            "training.lr_schedule=cosine",
        ],
    ),
}


@pytest.mark.parametrize(("stop_at", "sets"), RESUME_CASES.values(), ids=RESUME_CASES.keys())
def test_ctrl_c_keeps_previous_model_and_resume_matches_uninterrupted_run(
    cli,
    tiny_config: Path,
    tmp_path: Path,
    trained_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop_at: int,
    sets: list[str],
) -> None:
    options = [a for s in sets for a in ("--set", s)]
    reference = tmp_path / "reference"
    result = cli(["train", "--config", tiny_config, "--output", reference, "--quiet", *options])
    assert result.exit_code == 0, result.stderr

    target = install_previous_model(trained_model, tmp_path / "runs" / "tiny")
    before = snapshot(target, last_model_file())
    with monkeypatch.context() as patch:
        stop_at_step(patch, stop_at)
        result = cli(["train", "--config", tiny_config, "--quiet", *options])
    assert result.exit_code == 130, (result.stderr, result.exception)
    *_, message, command = result.stderr.strip().splitlines()
    record(message)
    epoch, batch = divmod(stop_at, 8)
    where = f"after epoch {epoch}/10" if batch == 0 else f"in epoch {epoch + 1}/10 after batch {batch}/8"
    assert f"training interrupted by SIGINT {where}" in message
    checkpoint = tmp_path / "runs" / "tiny.checkpoint"
    assert f"state saved in {checkpoint}" in message
    assert message.endswith("; resume with the next line")  # the command alone on a line: one copy
    assert command == " ".join(["sentiment", "train", "--config", str(tiny_config), *options, "--resume"])
    assert "Traceback" not in result.stderr
    assert snapshot(target, last_model_file()) == before  # the previous model is exactly as it was
    Predictor.load(target)
    assert sorted(p.name for p in checkpoint.iterdir()) == ["state.json", "tensors.safetensors"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny", "tiny.checkpoint"]
    assert b"pickle" not in (checkpoint / "state.json").read_bytes()

    result = cli(["train", "--config", tiny_config, "--resume", *options])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert f"resuming from {checkpoint}" in result.stderr
    assert_same_model(reference, target)
    assert not checkpoint.exists()  # the run is complete: the checkpoint is gone
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]


@pytest.fixture
def interrupted(cli, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run of the tiny config stopped by Ctrl-C in its second epoch; returns its checkpoint directory."""
    with monkeypatch.context() as patch:
        stop_at_step(patch, 10)
        result = cli(["train", "--config", tiny_config, "--quiet"])
    assert result.exit_code == 130, result.stderr
    return tmp_path / "runs" / "tiny.checkpoint"


def test_resume_without_checkpoint(cli, tiny_config: Path, tmp_path: Path) -> None:
    result = cli(["train", "--config", tiny_config, "--resume", "--quiet"])
    assert_bad_input(
        result,
        f"no checkpoint to resume from at {tmp_path / 'runs' / 'tiny.checkpoint'}",
        "without --resume to start over",
    )
    assert not (tmp_path / "runs" / "tiny").exists()


def test_resume_with_a_different_config(cli, tiny_config: Path, interrupted: Path) -> None:
    before = snapshot(interrupted)
    result = cli(["train", "--config", tiny_config, "--resume", "--quiet", "--set", "training.lr=0.02"])
    assert_bad_input(
        result,
        "was made with a different config (training.lr: 0.01 -> 0.02)",
        "same config and --set options",
    )
    assert snapshot(interrupted) == before


def test_resume_with_changed_data(cli, tiny_config: Path, interrupted: Path, reviews_csv: Path) -> None:
    from conftest import write_reviews

    write_reviews(reviews_csv, seed=99)  # same path, other rows
    result = cli(["train", "--config", tiny_config, "--resume", "--quiet"])
    assert_bad_input(result, "the training data or word vectors differ from the interrupted run")
    assert interrupted.is_dir()


def test_resume_from_a_corrupted_checkpoint(cli, tiny_config: Path, interrupted: Path, tmp_path) -> None:
    import pickle

    sentinel = tmp_path / "code-ran"
    (interrupted / "tensors.safetensors").write_bytes(pickle.dumps(Path.touch) + str(sentinel).encode())
    result = cli(["train", "--config", tiny_config, "--resume", "--quiet"])
    assert_bad_input(result, "tensors.safetensors: truncated or corrupted", "without --resume to start over")
    assert not sentinel.exists()
    (interrupted / "state.json").write_text("{")
    result = cli(["train", "--config", tiny_config, "--resume", "--quiet"])
    assert_bad_input(result, "state.json: unreadable (JSONDecodeError)")


def _edit_state(key: str, value):
    def edit(state: dict) -> None:
        *path, last = key.split(".")
        for part in path:
            state = state[part]
        state[last] = value

    return edit


def _wrong_weights(checkpoint: Path) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(checkpoint / "tensors.safetensors"))
    tensors = {k: np.zeros((3, 3), v.dtype) if k.startswith("model/") else v for k, v in tensors.items()}
    save_file(tensors, str(checkpoint / "tensors.safetensors"))


DAMAGED_STATES = {
    # what each did before: `error: unexpected <name>`, exit 1, after the data and features were made again
    "optimizer-state-keys-a-list": (_edit_state("optimizer.state_keys", []), "AttributeError"),
    "param-groups-without-params": (_edit_state("optimizer.param_groups", [{"lr": 0.01}]), "KeyError"),
    "python-rng-wrong-size": (_edit_state("rng.python", [3, [1, 2], None]), "state vector"),
    "batch-past-the-epoch": (_edit_state("batch", 99), "batch 99 of 8: out of range"),  # StopIteration
    "epoch-negative": (
        _edit_state("epoch", -5),
        "epoch = -5: must be an integer >= 1",
    ),  # trained 15 epochs: another model, exit 0
    "weights-of-another-shape": (None, "Error(s) in loading state_dict"),
}


def test_resume_from_a_checkpoint_whose_state_does_not_fit(
    cli, tiny_config: Path, interrupted: Path, tmp_path: Path
) -> None:
    """A checkpoint that reads (JSON, safetensors) but whose state cannot be restored: one line, exit 2,
    before any training; the checkpoint is left for the user (and a run without --resume starts over)."""
    whole = tmp_path / "whole.checkpoint"
    shutil.copytree(interrupted, whole)
    for name, (edit, fragment) in DAMAGED_STATES.items():
        shutil.rmtree(interrupted)
        shutil.copytree(whole, interrupted)
        if edit is None:
            _wrong_weights(interrupted)
        else:
            state = json.loads((interrupted / "state.json").read_text())
            edit(state)
            (interrupted / "state.json").write_text(json.dumps(state))
        result = cli(["train", "--config", tiny_config, "--resume", "--quiet"])
        message = assert_bad_input(result, f"{interrupted}: ", fragment, "without --resume to start over")
        assert "does not fit this run" in message or "incomplete checkpoint" in message, (name, message)
        assert not (tmp_path / "runs" / "tiny").exists(), name


def test_a_checkpoint_that_is_a_file(cli, tiny_config: Path, tmp_path: Path) -> None:
    """A file where the checkpoint directory belongs: `--resume` finds no checkpoint; a run without it
    starts over and removes the file with the checkpoint (it stayed: rmtree skips a file)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "tiny.checkpoint").write_text("damaged")
    assert_bad_input(
        cli(["train", "--config", tiny_config, "--resume", "--quiet"]), "no checkpoint to resume"
    )
    result = cli(["train", "--config", tiny_config, "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["tiny"]


def test_a_fresh_run_replaces_a_stale_checkpoint(cli, tiny_config: Path, interrupted: Path) -> None:
    result = cli(["train", "--config", tiny_config])
    assert result.exit_code == 0, result.stderr
    assert "holds an interrupted run; this one starts over (--resume continues it)" in result.stderr
    assert not interrupted.exists()


# --- real processes, real signals ---


class Run:
    """`python [LAUNCHER] tests/slow_cli.py ARGS` with its stderr collected line by line as it comes
    (``launcher``: interpreter options before the script, e.g. ``-m torch.distributed.run ...``)."""

    def __init__(self, args: list, launcher: tuple[str, ...] = (), **env: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, str(SLOW_CLI), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, start: str, timeout: float = 120) -> str:
        """Wait for a stderr line that starts with ``start``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(start):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError(f"never saw {start!r}; stderr: {self.lines}")

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


KILLS = {
    "sigterm-in-training": ("epoch   1/", {"SLOW_STEP": "0.05"}, signal.SIGTERM, 143),
    "sigkill-in-training": ("epoch   1/", {"SLOW_STEP": "0.05"}, signal.SIGKILL, -9),
    "sigterm-while-saving": ("committing", {"SLOW_COMMIT": "30"}, signal.SIGTERM, 130),
    "sigkill-while-saving": ("committing", {"SLOW_COMMIT": "30"}, signal.SIGKILL, -9),
}


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "env", "sig", "code"), KILLS.values(), ids=KILLS.keys())
def test_kill_at_any_moment_leaves_previous_model_intact(
    tiny_config: Path, tmp_path: Path, trained_model: Path, moment: str, env: dict, sig: int, code: int
) -> None:
    target = install_previous_model(trained_model, tmp_path / "runs" / "tiny")
    before = snapshot(target, last_model_file())
    run = Run(["train", "--config", tiny_config], **env)
    run.wait_for(moment)
    run.proc.send_signal(sig)
    assert run.finish() == code, run.lines
    assert snapshot(target, last_model_file()) == before
    Predictor.load(target)
    assert not any("Traceback" in line for line in run.lines), run.lines
    leftovers = sorted(p.name for p in target.parent.iterdir())
    if sig == signal.SIGKILL and moment == "committing":
        # nothing could clean up: the finished-but-unmoved copy stays under its hidden temporary name
        assert leftovers == [f".tiny.tmp-{run.proc.pid}", "tiny"]
    elif code in (130, 143) and moment != "committing":
        record(run.lines[-2])
        # the signal lands in epoch 2's batches, or (a busy machine) between epochs 1 and 2: both stop cleanly
        stopped = f"training interrupted by {signal.Signals(sig).name} "
        assert any(f"{stopped}{where} epoch" in run.lines[-2] for where in ("in", "after")), run.lines
        assert run.lines[-1].startswith("sentiment train --config "), run.lines
        assert leftovers == ["tiny", "tiny.checkpoint"]
    else:
        assert leftovers == ["tiny"]


@pytest.mark.slow
def test_sigint_in_a_real_process_then_resume(
    cli, tiny_config: Path, tmp_path: Path, trained_model: Path
) -> None:
    """Ctrl-C in training (a real process, a real signal); the printed resume command gives the same model."""
    reference = tmp_path / "reference"
    assert cli(["train", "--config", tiny_config, "--output", reference, "--quiet"]).exit_code == 0
    shutil.rmtree(Path(os.environ["SENTIMENT_HOME"]) / "word2vec")  # the process trains its own Word2Vec
    target = install_previous_model(trained_model, tmp_path / "runs" / "tiny")
    before = snapshot(target, last_model_file())
    run = Run(["train", "--config", tiny_config], SLOW_STEP="0.05")
    run.wait_for("epoch   2/")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.lines
    assert snapshot(target, last_model_file()) == before
    Predictor.load(target)
    assert not any("Traceback" in line for line in run.lines), run.lines
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny", "tiny.checkpoint"]
    record(run.lines[-2])
    assert run.lines[-2].startswith("training interrupted by SIGINT "), run.lines
    resume = run.lines[-1]
    assert resume == f"sentiment train --config {tiny_config} --resume"
    result = cli([*resume.split()[1:]])
    assert result.exit_code == 0, result.stderr
    assert_same_model(reference, target)


def test_a_later_run_removes_what_a_killed_save_left(
    cli, tiny_config: Path, tmp_path: Path, trained_model: Path
) -> None:
    target = install_previous_model(trained_model, tmp_path / "runs" / "tiny")
    leftover = target.parent / ".tiny.tmp-999999999"  # a staging directory of a process that no longer exists
    shutil.copytree(trained_model, leftover)
    result = cli(["train", "--config", tiny_config, "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]


def test_a_later_run_removes_what_a_checkpoint_killed_mid_write_left(
    cli, tiny_config: Path, tmp_path: Path, trained_model: Path
) -> None:
    """kill -9 while a checkpoint is written leaves its hidden staging directory; the next run that
    completes removes it with the checkpoint (it stayed for good: only a later checkpoint of the same
    model removed it)."""
    target = install_previous_model(trained_model, tmp_path / "runs" / "tiny")
    leftover = target.parent / ".tiny.checkpoint.tmp-999999999"  # a process that no longer exists
    leftover.mkdir()
    (leftover / "state.json").write_text("{")
    result = cli(["train", "--config", tiny_config, "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]


# --- determinism ---


def test_two_cpu_runs_of_one_config_are_identical(cli, tiny_config: Path, tmp_path: Path) -> None:
    edit_config(tiny_config, model={"dropout": 0.2})
    for name in ("first", "second"):
        # word2vec.cache=false: Word2Vec really is trained twice (workers: 1 in the tiny config)
        result = cli(
            [
                "train",
                "--config",
                tiny_config,
                "--output",
                tmp_path / name,
                "--quiet",
                "--set",
                "word2vec.cache=false",
            ]
        )
        assert result.exit_code == 0, result.stderr
    assert_same_model(tmp_path / "first", tmp_path / "second")


def _edit_state(checkpoint: Path, **changes) -> None:
    state = json.loads((checkpoint / "state.json").read_text())
    state.update(changes)
    (checkpoint / "state.json").write_text(json.dumps(state))


def test_a_damaged_or_hostile_checkpoint_is_refused(cli, tiny_config: Path, interrupted: Path) -> None:
    """Every field and tensor checked before use (were a hang on a FIFO or /dev/zero, `unexpected
    StopIteration / RuntimeError`, or a resumed run from a negative epoch or int8 weights, exit 0)."""
    import torch
    from safetensors.torch import load_file, save_file

    state, tensors = interrupted / "state.json", interrupted / "tensors.safetensors"
    good_state, good_tensors = state.read_bytes(), tensors.read_bytes()
    resume = ["train", "--config", tiny_config, "--resume", "--quiet"]

    state.unlink()
    os.mkfifo(state)
    assert_bad_input(cli(resume), "state.json: missing or not a regular file")
    state.unlink()
    state.write_bytes(good_state.replace(b'"epoch": ', b'"epoch": 0, "epoch": ', 1))
    assert_bad_input(cli(resume), "state.json: corrupted (key 'epoch' given twice)")
    for field, value, expected in [
        ("epoch", 1e300, "epoch = 1e+300: must be an integer >= 1"),
        ("batch", 10**12, f"batch {10**12} of 8: out of range"),  # (a negative epoch: DAMAGED_STATES)
    ]:
        state.write_bytes(good_state)
        _edit_state(interrupted, **{field: value})
        assert_bad_input(cli(resume), expected)
    state.write_bytes(good_state)

    weights = load_file(tensors)
    name = next(k for k in weights if k.startswith("model/") and k.endswith("weight"))
    for changed, expected in [
        (weights[name].to(torch.int8), f"'{name}' holds int8 values, not floats"),
        (weights[name] * float("nan"), f"non-finite values (NaN or infinity) in '{name}'"),
    ]:
        save_file({**weights, name: changed}, tensors)
        assert_bad_input(cli(resume), expected)
    tensors.write_bytes(good_tensors)
