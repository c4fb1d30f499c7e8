from __future__ import annotations

import numpy as np
import pytest
import torch

from sentiment.batches import TensorBatches, make_loader
from sentiment.config import TrainingConfig
from sentiment.errors import ConfigError
from sentiment.metrics import best_threshold, compute_metrics
from sentiment.model import SimpleMLP
from sentiment.runtime import resolve_device
from sentiment.trainer import fit


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    return x, y


def test_mlp_shapes_layers_and_batch_of_one() -> None:
    model = SimpleMLP(10, [16, 8], activation="tanh", dropout=0.3)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(10, 16), (16, 8), (8, 1)]
    out = model(torch.randn(1, 10))
    assert out.shape == (1,) and 0 < out.item() < 1


def test_fit_learns_and_early_stopping_restores_best_weights() -> None:
    torch.manual_seed(0)
    x, y = _data(512, 0)
    vx, vy = _data(256, 1)
    train = make_loader(TensorBatches(x, y), 32, shuffle=True, seed=0)
    val = make_loader(TensorBatches(vx, vy), 256, shuffle=False, seed=0)
    model = SimpleMLP(6, [16])
    # lr high enough to overfit and wander; patience 2 must stop before 40 epochs
    cfg = TrainingConfig(epochs=40, lr=0.05, patience=2, monitor="val_loss")
    result = fit(model, train, val, cfg, torch.device("cpu"))
    losses = [r.val_loss for r in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    model.eval()
    with torch.no_grad():
        p = np.clip(model(vx).numpy(), 1e-7, 1 - 1e-7)  # the clipping fit() uses for val_loss
    restored = float(-np.mean(vy.numpy() * np.log(p) + (1 - vy.numpy()) * np.log(1 - p)))
    assert restored == pytest.approx(min(losses), rel=1e-4)
    assert compute_metrics(vy.numpy(), p)["accuracy"] > 0.9


def test_device_resolution() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_metrics_match_hand_counts_and_threshold() -> None:
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.7])
    m = compute_metrics(y, p, threshold=0.5)
    assert m["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 2}
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert compute_metrics(y, p, threshold=0.35)["recall"] == 1.0
    t = best_threshold(y, p)
    assert compute_metrics(y, p, t)["accuracy"] == max(compute_metrics(y, p, s)["accuracy"] for s in p)


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
def test_best_threshold_maximises_the_named_metric(metric: str) -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.2).astype(int)  # imbalanced: the two metrics disagree
    p = np.clip(0.35 * y + rng.random(300) * 0.65, 0, 1)
    t = best_threshold(y, p, metric)
    best = max(compute_metrics(y, p, s)[metric] for s in np.append(p, 1.0))
    assert compute_metrics(y, p, t)[metric] == pytest.approx(best)


def test_weighted_loss_is_each_rows_bce_times_its_class_weight() -> None:
    from sentiment.trainer import make_criterion

    probs, y = torch.tensor([0.9, 0.2, 0.6]), torch.tensor([1.0, 0.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy(probs, y, reduction="none")
    expected = (bce * torch.tensor([3.0, 0.5, 0.5])).mean()
    assert torch.allclose(make_criterion([0.5, 3.0])(probs, y), expected)
    assert torch.allclose(make_criterion(None)(probs, y), bce.mean())
    # label sets: a label's weight multiplies its positive cells only (pos_weight)
    probs2, y2 = torch.tensor([[0.9, 0.3], [0.2, 0.6]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce2 = torch.nn.functional.binary_cross_entropy(probs2, y2, reduction="none")
    expected2 = (bce2 * torch.tensor([[2.0, 1.0], [1.0, 5.0]])).mean()
    assert torch.allclose(make_criterion([2.0, 5.0])(probs2, y2), expected2)


def test_weights_that_blow_up_stop_training_with_a_config_error() -> None:
    """NaN outputs made BCELoss fail with an internal RuntimeError; the cause is the step size."""
    x, y = _data(64, 0)
    model = SimpleMLP(6, [8])
    with torch.no_grad():
        model.net[0].weight.fill_(float("nan"))  # where a too large learning rate ends up
    cfg = TrainingConfig(epochs=2, lr=1e38)
    with pytest.raises(ConfigError, match=r"training diverged in epoch 1: .*training\.lr = 1e\+38"):
        fit(
            model, make_loader(TensorBatches(x, y), 32, shuffle=False, seed=0), None, cfg, torch.device("cpu")
        )
