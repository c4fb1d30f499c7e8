"""Shared fixtures: small synthetic review data the tests make, an isolated state directory, a CLI runner."""

from __future__ import annotations

import csv
import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py imported as a module (the scripts are not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


POSITIVE = [
    "great",
    "wonderful",
    "excellent",
    "loved",
    "brilliant",
    "superb",
    "moving",
    "beautiful",
    "gripping",
]
NEGATIVE = ["awful", "terrible", "boring", "hated", "dull", "worst", "waste", "poor", "tedious"]
NEUTRAL = [
    "the",
    "a",
    "and",
    "film",
    "movie",
    "plot",
    "actor",
    "actress",
    "scene",
    "story",
    "was",
    "it",
    "director",
    "music",
    "camera",
    "script",
    "ending",
    "cast",
    "character",
    "time",
    "watch",
    "seen",
    "people",
    "really",
    "one",
    "two",
    "first",
    "also",
]


def make_review(rng: random.Random, positive: bool) -> str:
    words = rng.choices(NEUTRAL, k=rng.randint(4, 8))
    own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    words += rng.choices(own, k=rng.randint(3, 5)) + rng.choices(other, k=rng.randint(0, 1))
    rng.shuffle(words)
    text = " ".join(words)
    if rng.random() < 0.3:
        text = text.replace(" ", " <br /><br /> ", 1)  # raw reviews carry HTML markup
    return text[0].upper() + text[1:] + rng.choice([".", "!", "..."])


def write_reviews(
    path: Path,
    n: int = 400,
    seed: int = 0,
    *,
    text_column: str = "review",
    label_column: str = "sentiment",
    labels: tuple[str, str] = ("negative", "positive"),
    delimiter: str = ",",
) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow([text_column, label_column])
        for i in range(n):
            positive = i % 2 == 0
            writer.writerow([make_review(rng, positive), labels[int(positive)]])
    return path


TINY_CONFIG = """\
seed: 7
device: cpu
output_dir: {output_dir}
data:
  path: {data}
  text_column: review
  label_column: sentiment
  positive_label: positive
  test_size: 0.2
  val_size: 0.2
word2vec:
  vector_size: 16
  window: 3
  min_count: 1
  epochs: 5
  workers: 1
features:
  normalize: true
model:
  hidden_dims: [8]
training:
  epochs: 10
  batch_size: 32
  lr: 0.01
  patience: 3
"""


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own state dir (last-model pointer, Word2Vec cache) and kagglehub cache."""
    home = tmp_path_factory.mktemp("sentiment_home")
    monkeypatch.setenv("SENTIMENT_HOME", str(home))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path_factory.mktemp("kagglehub_cache")))
    monkeypatch.delenv("SENTIMENT_DEBUG", raising=False)
    return home


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    return write_reviews(tmp_path / "reviews.csv")


@pytest.fixture
def tiny_config(tmp_path: Path, reviews_csv: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_CONFIG.format(output_dir=tmp_path / "runs", data=reviews_csv), encoding="utf-8")
    return path


@pytest.fixture
def cli():
    """Run the real CLI in-process: cli(["train", ...]) -> Result with exit_code, stdout, stderr."""
    from sentiment.cli import app

    runner = CliRunner()

    def run(args: list[str], input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return run


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small model trained once for the tests that only read a model."""
    from sentiment.config import load_config
    from sentiment.pipeline import train

    root = tmp_path_factory.mktemp("trained")
    data = write_reviews(root / "reviews.csv", n=400, seed=1)
    config_path = root / "tiny.yaml"
    config_path.write_text(TINY_CONFIG.format(output_dir=root / "runs", data=data), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:  # session scope: keep the user's real state dir untouched
        mp.setenv("SENTIMENT_HOME", str(root / "home"))
        return train(load_config(config_path), root / "model").model_dir
