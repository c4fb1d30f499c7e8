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


def test_stand_in_replicas_share_no_review_with_the_stand_in(tmp_path: Path) -> None:
    import pandas as pd

    from conftest import load_script

    script = load_script("stand_in_replicas")
    train = SHARED / "data" / "imdb" / "train.csv.gz"
    assert script.main(["--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("replica-*.csv"))
    assert len(files) == 4
    parts = [pd.read_csv(f) for f in files]
    stand_in = set(pd.read_csv(DATA)["cleaned_review"])
    for part in parts:
        assert list(part.columns) == ["cleaned_review", "sentiment"] and 4_900 <= len(part) <= 5_000
        assert not set(part["cleaned_review"]) & stand_in
    # the cleaning is the stand-in's own: every stand-in row comes out of the IMDB training split, and every
    # other row of that split is in exactly one replica
    cleaned = pd.read_csv(train)["review"].map(script.clean)
    assert stand_in <= set(cleaned)
    assert sum(map(len, parts)) == (~cleaned.isin(stand_in)).sum()
