"""The MLP head as NumPy arrays: the names its layers are saved under, and the forward pass prediction runs.

``sentiment.model`` exports its trained ``SimpleMLP`` to ``MLPWeights`` (and nothing else names the tensors);
the predictor loads them back and runs ``forward`` without torch (a test checks agreement with torch).
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sentiment import wide as wide_part

if TYPE_CHECKING:
    from sentiment.text import TokenBags


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "gelu": _gelu_tanh,
}


def layer_names(i: int) -> tuple[str, str]:
    """Tensor names of the i-th Linear layer (0-based, in order from the input)."""
    return f"mlp.{i}.weight", f"mlp.{i}.bias"


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class MLPWeights:
    """(weight, bias) of each Linear layer, in order, and the hidden activation."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    activation: str
    head: str = "sigmoid"  # sigmoid: one probability per output; softmax: the outputs share one distribution
    wide: np.ndarray | None = None  # (vocabulary, outputs): the wide part's token weights (sentiment.wide)

    def __post_init__(self) -> None:
        """Shapes that chain (each layer takes the previous one's outputs, a bias per output) and floats: a
        mismatch is a ValueError naming the tensor, not NumPy's broadcasting error at the first prediction."""
        if not self.layers:
            raise ValueError("an MLP needs at least one layer")
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {reprlib.repr(self.activation)}")
        width = None
        for i, (weight, bias) in enumerate(self.layers):
            w_name, b_name = layer_names(i)
            if weight.ndim != 2 or weight.dtype.kind != "f" or 0 in weight.shape:
                raise ValueError(
                    f"{w_name}: {weight.dtype} of shape {weight.shape}, expected a matrix of floats"
                )
            if width is not None and weight.shape[1] != width:
                raise ValueError(
                    f"{w_name}: shape {weight.shape} does not take the {width} outputs of layer {i - 1}"
                )
            if bias.shape != weight.shape[:1] or bias.dtype.kind != "f":
                raise ValueError(
                    f"{b_name}: {bias.dtype} of shape {bias.shape}, expected {weight.shape[0]} floats"
                )
            width = weight.shape[0]

    @property
    def input_dim(self) -> int:
        return int(self.layers[0][0].shape[1])

    @property
    def outputs(self) -> int:
        return int(self.layers[-1][0].shape[0])

    def logits(self, x: np.ndarray, bags: TokenBags | None = None) -> np.ndarray:
        """(rows, outputs) pre-activation scores of the last layer, in float64 for accuracy; with a wide
        part, plus its sum over each text's tokens (``bags``, the texts of the rows ``x``)."""
        if self.wide is None:
            return self.deep_logits(x)
        if bags is None:
            raise ValueError("this model has a wide part: pass the texts' token bags")
        return self.logits_with(x, wide_part.logits(bags, self.wide))

    def logits_with(self, x: np.ndarray, wide_logits: np.ndarray) -> np.ndarray:
        """``logits`` given the wide part's sums already (``sentiment.kernels`` computes them with the
        pooling); ignored without a wide part."""
        z = self.deep_logits(x)
        if self.wide is not None:
            z += wide_logits
        return z

    def deep_logits(self, x: np.ndarray) -> np.ndarray:
        act = ACTIVATIONS[self.activation]
        h = x.astype(np.float64, copy=False)
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight.T.astype(np.float64) + bias.astype(np.float64)
            if i < len(self.layers) - 1:
                h = act(h)
        return h

    def forward(self, x: np.ndarray, bags: TokenBags | None = None) -> np.ndarray:
        """One sigmoid output: the probability of the positive class per row. More outputs: each row's
        probability of every class (softmax), or of every label on its own (sigmoid head: multilabel)."""
        return self.probabilities(self.logits(x, bags))

    def probabilities(self, z: np.ndarray) -> np.ndarray:
        """What ``forward`` returns, from the (rows, outputs) logits."""
        if self.outputs == 1:
            return sigmoid(z[:, 0])
        if self.head == "sigmoid":  # multilabel: each label on its own
            return sigmoid(z)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def to_tensors(self) -> dict[str, np.ndarray]:
        out = {}
        for i, (weight, bias) in enumerate(self.layers):
            w_name, b_name = layer_names(i)
            out[w_name], out[b_name] = weight, bias
        if self.wide is not None:
            out[wide_part.WIDE] = self.wide
        return out

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, np.ndarray], activation: str, n_layers: int, head: str = "sigmoid"
    ) -> MLPWeights:
        layers = [tuple(tensors[name] for name in layer_names(i)) for i in range(n_layers)]
        mlp = cls(layers, activation, head, tensors.get(wide_part.WIDE))
        wide = mlp.wide
        if wide is not None and (wide.ndim != 2 or wide.shape[1] != mlp.outputs or wide.dtype.kind != "f"):
            raise ValueError(
                f"{wide_part.WIDE}: {wide.dtype} of shape {wide.shape}, expected floats of shape "
                f"(vocabulary, {mlp.outputs})"
            )
        return mlp
