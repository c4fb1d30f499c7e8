"""The real 5,000-review stand-in of the tutorial's dataset, from ../shared (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED

DATA = SHARED / "data" / "kaggle-cleaned" / "IMDB_cleaned.csv"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not DATA.exists(), reason="../shared/data/kaggle-cleaned/IMDB_cleaned.csv not present"
    ),
]


def test_default_config_beats_the_tutorial_recipe(cli, tmp_path: Path) -> None:
    scores = {}
    for name in ("tutorial", "default"):
        out = tmp_path / name
        result = cli(["train", "-c", CONFIGS / f"{name}.yaml", "--set", f"data.path={DATA}", "-o", out, "-q"])
        assert result.exit_code == 0, result.stderr
        scores[name] = json.loads((out / "metrics.json").read_text())["test"]
    assert scores["tutorial"]["n"] == scores["default"]["n"] == 1000
    assert 0.55 < scores["tutorial"]["accuracy"] < 0.75  # the tutorial's recipe reports 0.66
    assert scores["default"]["accuracy"] >= scores["tutorial"]["accuracy"] + 0.15

    result = cli(["eval", "--model", tmp_path / "default", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(scores["default"]["accuracy"])
    result = cli(["predict", "--model", tmp_path / "default", "--json", "a gripping, beautifully shot film"])
    assert json.loads(result.stdout)["label"] == "positive"
