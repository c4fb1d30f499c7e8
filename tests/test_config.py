from __future__ import annotations

from pathlib import Path

import pytest

from sentiment.config import Config, load_config, parse_override, schema_rows, shipped_configs
from sentiment.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REQUIRED_KEYS = [
    "seed",
    "device",
    "output_dir",
    "data.kaggle_handle",
    "data.kaggle_file",
    "data.path",
    "data.test_path",
    "data.unlabeled_path",
    "data.text_column",
    "data.label_column",
    "data.positive_label",
    "data.test_size",
    "data.val_size",
    "word2vec.vector_size",
    "word2vec.window",
    "word2vec.min_count",
    "word2vec.epochs",
    "word2vec.sg",
    "model.hidden_dims",
    "model.dropout",
    "training.epochs",
    "training.batch_size",
    "training.lr",
    "training.weight_decay",
    "training.patience",
    "eval.threshold",
]


def test_contract_keys_exist() -> None:
    keys = {row[0] for row in schema_rows()}
    assert set(REQUIRED_KEYS) <= keys


@pytest.mark.parametrize("path", sorted(shipped_configs().values()), ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    assert isinstance(load_config(path), Config)


def test_shipped_configs_are_every_yaml_but_the_search_space() -> None:
    # configs/space.yaml is tune's default search space, not a training config: `config list` skips it
    assert {p.name for p in CONFIGS.glob("*.yaml")} - {p.name for p in shipped_configs().values()} == {
        "space.yaml"
    }


def test_tutorial_config_is_the_tutorial_recipe() -> None:
    cfg = load_config(CONFIGS / "tutorial.yaml")
    assert (cfg.word2vec.vector_size, cfg.word2vec.sg, cfg.word2vec.min_count) == (50, 0, 1)
    assert cfg.model.hidden_dims == [32]
    assert (cfg.training.epochs, cfg.training.batch_size, cfg.training.lr) == (5, 64, 0.001)
    assert (cfg.data.shuffle, cfg.data.test_size) == (False, 0.2)
    assert cfg.data.kaggle_handle == "ibrahimqasimi/imdb-50k-cleaned-movie-reviews"


def test_overrides_are_yaml_scalars_on_dotted_keys(tmp_path: Path) -> None:
    cfg = load_config(
        CONFIGS / "default.yaml",
        ["training.epochs=3", "data.path=x.csv", "model.hidden_dims=[128, 32]", "data.positive_label=1"],
    )
    assert cfg.training.epochs == 3
    assert cfg.data.path == "x.csv"
    assert cfg.model.hidden_dims == [128, 32]
    assert cfg.data.positive_label == "1"  # an int in YAML, compared as a string label


def test_unknown_key_is_named_with_suggestion(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'training\.epoch'.*training\.epochs"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"unknown key.*word2vec\.vector_size"):
        load_config(None, ["word2vec.vectorsize=3"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("training.epochs=-1", "training.epochs"),
        ("data.test_size=1.5", "data.test_size"),
        ("model.dropout=1", "model.dropout"),
        ("model.hidden_dims=[]", "model.hidden_dims"),
        ("word2vec.sg=2", "word2vec.sg"),
        ("device=gpu", "device"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_config(bad)


def test_malformed_override() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("training.epochs")


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(CONFIGS / "default.yaml", ["training.epochs=7"])
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.to_yaml())
    assert load_config(saved) == cfg


def test_choice_lists_agree_with_the_code_that_implements_them() -> None:
    """The schema's Literal choices are written out for type checkers; the implementations must offer each."""
    from typing import get_args

    from sentiment import mlp, model, pooling
    from sentiment.config import FeaturesConfig, ModelConfig

    assert get_args(FeaturesConfig.model_fields["pooling"].annotation) == pooling.POOLINGS
    activations = set(get_args(ModelConfig.model_fields["activation"].annotation))
    assert activations == set(mlp.ACTIVATIONS) == set(model.ACTIVATIONS)
