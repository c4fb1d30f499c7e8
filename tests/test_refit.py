"""training.refit: after early stopping, a fresh model trained on training + validation rows is kept."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from test_reliability_interrupt import assert_same_model, stop_at_step

FINE_TUNED = ["--set", "model.fine_tune_embeddings=true", "--set", "features.normalize=false"]


def train(cli, config: Path, out: Path, *options: str) -> dict:
    result = cli(["train", "--config", config, "--output", out, *options])
    assert result.exit_code == 0, (result.stderr, result.exception)
    return {
        "stderr": result.stderr,
        "meta": json.loads((out / "meta.json").read_text()),
        "metrics": json.loads((out / "metrics.json").read_text()),
        "weights": load_file(str(out / "model.safetensors")),
    }


@pytest.mark.parametrize("options", [[], FINE_TUNED], ids=["frozen", "fine-tuned"])
def test_refit_trains_a_fresh_model_on_training_and_validation(
    cli, tiny_config: Path, tmp_path: Path, options: list[str]
) -> None:
    plain = train(cli, tiny_config, tmp_path / "plain", *options)
    refit = train(cli, tiny_config, tmp_path / "refit", *options, "--set", "training.refit=true")

    rows = plain["meta"]["data"]["rows"]
    best = plain["meta"]["best_epoch"]
    assert plain["meta"]["refit"] is None
    assert refit["meta"]["refit"] == {"epochs": best, "rows": rows["train"] + rows["validation"]}
    assert (
        f"refit: a fresh model on training + validation ({rows['train'] + rows['validation']} rows)"
        in (refit["stderr"])
    )
    # The first fit is the same run: its history and validation figures are reported unchanged...
    assert refit["metrics"]["validation"] == plain["metrics"]["validation"]

    def curves(model_dir: Path, phase: str = "fit") -> list[tuple[str, str]]:
        return [(row["epoch"], row["val_loss"]) for row in _history(model_dir) if row["phase"] == phase]

    assert curves(tmp_path / "refit") == curves(tmp_path / "plain")
    # the refit's own epochs follow in history.csv, marked as such (training loss only: no validation rows)
    assert [epoch for epoch, _ in curves(tmp_path / "refit", "refit")] == [str(e) for e in range(1, best + 1)]
    assert curves(tmp_path / "plain", "refit") == []
    # ...but the saved weights and test figures are the refit model's.
    assert any(not np.array_equal(plain["weights"][k], refit["weights"][k]) for k in plain["weights"])
    result = cli(["eval", "--model", tmp_path / "refit"])
    assert result.exit_code == 0, result.stderr
    saved = json.loads((tmp_path / "refit" / "metrics.json").read_text())["test"]
    assert f"{saved['accuracy']:.4f}" in result.stdout


def _history(model_dir: Path) -> list[dict]:
    with (model_dir / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_refit_needs_a_validation_split(cli, tiny_config: Path) -> None:
    options = ["--set", "training.refit=true", "--set", "data.val_size=0"]
    result = cli(["train", "--config", tiny_config, *options])
    assert result.exit_code == 2
    assert "training.refit needs a validation split: set data.val_size > 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_during_the_refit_resumes_to_the_uninterrupted_model(
    cli, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = [*FINE_TUNED, "--set", "training.refit=true", "--set", "model.embedding_dropout=0.2"]
    reference = tmp_path / "reference"
    train(cli, tiny_config, reference, *options)
    first_fit_steps = len(_history(reference)) * 8  # 240 training rows / batch 32
    target = tmp_path / "runs" / "tiny"
    with monkeypatch.context() as patch:
        stop_at_step(patch, first_fit_steps + 3)  # in the refit's first epoch
        result = cli(["train", "--config", tiny_config, "--quiet", *options])
    assert result.exit_code == 130, (result.stderr, result.exception)
    message = result.stderr.strip().splitlines()[-2]  # the resume command follows on a line of its own
    checkpoint = tmp_path / "runs" / "tiny.checkpoint"
    assert "training interrupted by SIGINT during the refit on training + validation" in message
    assert f"the finished first fit is saved in {checkpoint}" in message
    assert not target.exists()

    result = cli(["train", "--config", tiny_config, "--resume", *options])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert f"resuming from {checkpoint}: the first fit is complete; the refit starts over" in result.stderr
    assert_same_model(reference, target)
    assert not checkpoint.exists()
