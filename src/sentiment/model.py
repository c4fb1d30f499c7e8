"""The classifiers: ``SimpleMLP`` over pooled vectors, and ``BagClassifier`` that fine-tunes the word vectors.

With one output they end in a Sigmoid and are trained with ``BCELoss``. ``export`` turns a trained model into
plain arrays (``sentiment.mlp.MLPWeights`` and the token vectors), whose NumPy forward pass the predictor runs
without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from sentiment.mlp import MLPWeights
from sentiment.wide import R_ADJ, W_ADJ

if TYPE_CHECKING:
    from sentiment.config import Config

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": lambda: nn.GELU(approximate="tanh"),
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


class SimpleMLP(nn.Module):
    """input -> [Linear -> activation -> Dropout] x len(hidden_dims) -> Linear (-> Sigmoid if one output)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        activation: str = "relu",
        dropout: float = 0.0,
        outputs: int = 1,
        multilabel: bool = False,
    ) -> None:
        super().__init__()
        self.activation = activation
        # one sigmoid output (binary) or one per label (multilabel) give probabilities; otherwise logits
        self.head = "sigmoid" if outputs == 1 or multilabel else "softmax"
        layers: list[nn.Module] = []
        previous = input_dim
        for width in hidden_dims:
            layers += [nn.Linear(previous, width), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        layers.append(nn.Linear(previous, outputs))
        if self.head == "sigmoid":
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # squeeze(-1), not squeeze(): a batch of one must stay a batch.
        out = self.net(x)
        return out.squeeze(-1) if out.shape[-1] == 1 else out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(rows, outputs) scores before the sigmoid (the softmax head's output already is)."""
        return self.net[:-1](x) if self.head == "sigmoid" else self.net(x)

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returns, from ``logits``."""
        out = torch.sigmoid(z) if self.head == "sigmoid" else z
        return out.squeeze(-1) if out.shape[-1] == 1 else out

    def export(self) -> MLPWeights:
        """The Linear layers' weights as NumPy arrays, in order (dropout and activations hold none)."""
        linear = [m for m in self.net if isinstance(m, nn.Linear)]
        return MLPWeights(
            [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()) for m in linear],
            self.activation,
            self.head,
        )


class BagClassifier(nn.Module):
    """Mean of trainable word vectors (``nn.EmbeddingBag``, initialised from Word2Vec) -> ``SimpleMLP``.

    Optional per-word weights (tfidf / sif / nb) are fixed buffers: the bag computes a weighted mean.
    ``wide_ratios`` (vocabulary x outputs NB log-count ratios) add the wide part (``sentiment.wide``): a
    learnt weight per token and output (the ratio times a factor, both trained), summed over the text's
    distinct tokens and added to the MLP's logits.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        mlp: SimpleMLP,
        word_weights: np.ndarray | None = None,
        token_dropout: float = 0.0,
        wide_ratios: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag.from_pretrained(
            torch.from_numpy(np.ascontiguousarray(vectors)), freeze=False, mode="sum"
        )
        self.mlp = mlp
        self.token_dropout = token_dropout
        self.weighted = word_weights is not None
        if word_weights is not None:
            self.register_buffer("word_weights", torch.from_numpy(np.ascontiguousarray(word_weights)))
        self.wide = wide_ratios is not None
        if wide_ratios is not None:
            # both learnt, as in fast.ai's version: with fixed ratios, validation accuracy fell about a point
            ratios = torch.from_numpy(np.ascontiguousarray(wide_ratios, dtype=np.float32))
            self.wide_ratios = nn.Parameter(ratios)
            self.wide_weight = nn.Parameter(torch.empty_like(ratios).uniform_(-0.1, 0.1))

    def pooled(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        n, doc = offsets.numel(), _text_of_each_token(ids, offsets)
        if self.weighted:
            w = self.word_weights[ids]
        else:
            w = torch.ones(ids.shape, dtype=self.embedding.weight.dtype, device=ids.device)
        if self.training and self.token_dropout > 0:
            w = w * (torch.rand(w.shape, device=w.device) >= self.token_dropout)
        totals = torch.zeros(n, dtype=w.dtype, device=w.device).index_add_(0, doc, w)
        sums = self.embedding(ids, offsets, per_sample_weights=w)
        return sums / totals.clamp_min(1e-12).unsqueeze(-1)

    @property
    def head(self) -> str:
        return self.mlp.head

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        if not self.wide:
            return self.mlp(self.pooled(ids, offsets))
        return self.mlp.activate(self.mlp.logits(self.pooled(ids, offsets)) + self.wide_logits(ids, offsets))

    def wide_token_weights(self) -> torch.Tensor:
        """(vocabulary, outputs): each token's weight in the wide sum."""
        return (self.wide_weight + W_ADJ) * self.wide_ratios / R_ADJ

    def wide_logits(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """(texts, outputs): the sum of the wide weights of each text's distinct tokens."""
        vocab = self.wide_ratios.shape[0]
        pairs = torch.unique(_text_of_each_token(ids, offsets) * vocab + ids)
        weights = self.wide_token_weights()[pairs % vocab]
        out = torch.zeros(offsets.numel(), weights.shape[1], dtype=weights.dtype, device=ids.device)
        return out.index_add_(0, pairs // vocab, weights)


def _text_of_each_token(ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Index of the text each token of a flattened batch belongs to."""
    lengths = torch.diff(offsets, append=torch.tensor([ids.numel()], device=ids.device))
    return torch.repeat_interleave(torch.arange(offsets.numel(), device=ids.device), lengths)


def export(model: nn.Module) -> tuple[MLPWeights, np.ndarray | None]:
    """A trained classifier as arrays: its MLP and, when fine-tuned, its token vectors (else None)."""
    if isinstance(model, BagClassifier):
        mlp = model.mlp.export()
        if model.wide:
            mlp.wide = model.wide_token_weights().detach().cpu().numpy().astype(np.float32)
        return mlp, model.embedding.weight.detach().cpu().numpy().astype(np.float32)
    if isinstance(model, SimpleMLP):
        return model.export(), None
    raise TypeError(f"cannot export {type(model).__name__}")


def build_classifier(
    config: Config,
    vectors: np.ndarray,
    word_weights: np.ndarray | None,
    input_dim: int,
    outputs: int = 1,
    multilabel: bool = False,
    wide_ratios: np.ndarray | None = None,
) -> tuple[nn.Module, list[dict] | None]:
    """A freshly initialised classifier for ``config`` and its Adam parameter groups (None: one group).

    Frozen features train a ``SimpleMLP`` of ``input_dim`` inputs; fine-tuning wraps it in a ``BagClassifier``
    over a copy of ``vectors`` whose learning rate is ``training.embedding_lr``, with a wide part over
    ``wide_ratios`` (learning rate ``training.wide_lr``) when ``model.wide``.
    """
    m, t = config.model, config.training
    mlp = SimpleMLP(input_dim, m.hidden_dims, m.activation, m.dropout, outputs, multilabel)
    if not m.fine_tune_embeddings:
        return mlp, None
    model = BagClassifier(
        vectors.copy(), mlp, word_weights, m.embedding_dropout, wide_ratios if m.wide else None
    )
    groups = [
        {"params": model.embedding.parameters(), "lr": t.embedding_lr or t.lr, "weight_decay": 0.0},
        {"params": model.mlp.parameters()},
    ]
    if model.wide:
        groups.append({"params": [model.wide_weight, model.wide_ratios], "lr": t.wide_lr})
    return model, groups
