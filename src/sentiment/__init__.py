"""sentiment: train, evaluate and serve text-sentiment classifiers.

The few names a Python user needs (the CLI is a thin layer over them)::

    import sentiment
    config = sentiment.load_config("default", ["training.epochs=3"])
    result = sentiment.train(config, "runs/first")          # data -> Word2Vec -> MLP -> saved model directory
    sentiment.evaluate("runs/first")                        # metrics of a saved model
    sentiment.load_predictor("runs/first").predict(["a gripping film"])   # NumPy only: fast start-up

They are imported on first use, so ``import sentiment`` (and ``sentiment --help``) imports no torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["evaluate", "load_config", "load_predictor", "train"]

_LAZY = {
    "train": ("sentiment.pipeline", "train"),
    "evaluate": ("sentiment.evaluate", "evaluate_model"),
    "load_config": ("sentiment.config", "load_config"),
    "load_predictor": ("sentiment.predictor", "Predictor.load"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sentiment' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value
