"""End to end through the real CLI: train -> eval -> predict on data the test makes."""

from __future__ import annotations

import json
from pathlib import Path


def test_train_eval_predict(cli, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = cli(["train", "--config", tiny_config, "--output", out, "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert "accuracy" in result.stdout
    train_metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert train_metrics["accuracy"] > 0.8  # the synthetic sentiment words are easy to learn

    # eval without --model uses the model the last train wrote, and reproduces the training-time metrics
    result = cli(["eval", "--json"])
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("accuracy", "precision", "recall", "f1"):
        assert abs(metrics[key] - train_metrics[key]) < 1e-9
    assert metrics["n"] == train_metrics["n"] == 80

    texts = [
        "the film was wonderful and brilliant, loved the story",
        "the movie was awful and boring, hated the plot",
    ]
    result = cli(["predict", "--json", *texts])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["positive", "negative"]
    assert rows[0]["probability"] > 0.5 > rows[1]["probability"]
