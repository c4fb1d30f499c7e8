"""PyTorch datasets and DataLoaders over features in memory, or token ids mapped from disk (data.streaming).

Batches are index tensors into one feature tensor (or one flattened token-id array), never a sample at a time:
the loader's sampler yields a whole batch of indices and the dataset slices it in one go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from sentiment import distributed
from sentiment.arrays import adjacent_view, disk_array, release_pages
from sentiment.paths import scratch_dir
from sentiment.text import TokenBags, concat_bags

if TYPE_CHECKING:
    from sentiment.config import TrainingConfig
    from sentiment.features import Features
    from sentiment.prepared import Prepared


# Rows or ids mapped from disk (data.streaming): the pages read for batches are unmapped every this many
# batches, so an epoch's random reads do not leave the whole file resident.
RELEASE_EVERY = 256


class TensorBatches(Dataset):
    """Rows of a feature matrix, fetched a batch of indices at a time."""

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, mapped: np.ndarray | None = None
    ) -> None:
        self.features, self.labels = features, labels
        self.mapped = mapped  # the matrix on disk the features view (out-of-core data), else None
        self._copies: dict[torch.device, TensorBatches] = {}
        self._batches = 0

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> TensorBatches:
        """This data on ``device``; one copy per device however many loaders (train, train-eval) ask."""
        if self.features.device == device:
            return self
        if device not in self._copies:
            self._copies[device] = TensorBatches(self.features.to(device), self.labels.to(device))
        return self._copies[device]

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select, not features[index]: advanced indexing goes through a parallel kernel whose thread
        # hand-off costs milliseconds per batch on a busy CPU (measured: 8 ms vs 3 us for 64 rows).
        self._batches += 1
        if self.mapped is not None and self._batches % RELEASE_EVERY == 0:
            release_pages(self.mapped)
        index = torch.as_tensor(rows, dtype=torch.int64, device=self.features.device)
        return self.features.index_select(0, index), self.labels.index_select(0, index)


class BagBatches(Dataset):
    """Token-id bags (for the fine-tuned EmbeddingBag), fetched a batch of indices at a time."""

    def __init__(self, bags: TokenBags, labels: np.ndarray) -> None:
        self.bags, self.labels = bags, torch.as_tensor(labels, dtype=torch.float32)
        self._batches = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self._batches += 1
        if self._batches % RELEASE_EVERY == 0:
            release_pages(self.bags.ids)
        sub = self.bags.subset(np.asarray(rows, dtype=np.int64))
        index = torch.as_tensor(rows, dtype=torch.int64)
        labels = self.labels.index_select(0, index)
        return torch.from_numpy(sub.ids), torch.from_numpy(sub.offsets[:-1]), labels


def feature_buffers(prepared: Prepared, dim: int) -> dict[str, np.ndarray | None]:
    """Where each split's feature rows go: for token ids on disk (data.streaming), row ranges of one matrix
    on disk, train, validation and test back to back (a refit then joins train and validation as a view);
    otherwise None, rows in memory."""
    bags = prepared.bags
    if not isinstance(bags["train"].ids, np.memmap):
        return dict.fromkeys(bags)
    sizes = {name: len(b) if b is not None else 0 for name, b in bags.items()}
    matrix = disk_array(scratch_dir(), (sum(sizes.values()), dim), np.float32)
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = matrix[start : start + size] if bags[name] is not None else None
        start += size
    return out


def make_datasets(
    prepared: Prepared,
    features: Features,
    fine_tune: bool,
    train_features: np.ndarray | None = None,
    buffers: dict[str, np.ndarray | None] | None = None,
) -> dict[str, Dataset | None]:
    """A dataset per split: token-id bags when the embeddings are fine-tuned, else fitted feature rows
    (``train_features``: the training rows ``Features.fit_transform`` already computed; ``buffers``: where
    each split's rows go, ``feature_buffers``)."""
    out: dict[str, Dataset | None] = {}
    for name, bags in prepared.bags.items():
        labels = prepared.labels[name]
        if bags is None or labels is None:
            out[name] = None
        elif fine_tune:
            out[name] = BagBatches(bags, labels)
        else:
            if name == "train" and train_features is not None:
                x = train_features
            else:
                x = features.transform(bags, out=(buffers or {}).get(name))
            out[name] = _feature_batches(x, torch.as_tensor(labels, dtype=torch.float32))
    return out


def _feature_batches(x: np.ndarray, labels: torch.Tensor) -> TensorBatches:
    if isinstance(x, np.memmap):  # rows on disk: the tensor views the map, pages read as batches need them
        return TensorBatches(torch.from_numpy(x), labels, mapped=x)
    return TensorBatches(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), labels)


def concat_batches(first: Dataset, second: Dataset) -> Dataset:
    """The rows of ``first`` then those of ``second`` (both TensorBatches or both BagBatches)."""
    if isinstance(first, BagBatches) and isinstance(second, BagBatches):
        labels = torch.cat([first.labels, second.labels]).numpy()
        return BagBatches(concat_bags([first.bags, second.bags]), labels)
    if isinstance(first, TensorBatches) and isinstance(second, TensorBatches):
        labels = torch.cat([first.labels, second.labels])
        if first.mapped is not None and second.mapped is not None:
            view = adjacent_view([first.mapped, second.mapped])
            if view is not None:
                return _feature_batches(view, labels)
        return TensorBatches(torch.cat([first.features, second.features]), labels)
    raise TypeError(f"cannot join {type(first).__name__} and {type(second).__name__}")


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    device: torch.device | None = None,
) -> DataLoader:
    cuda = device is not None and device.type == "cuda"
    small = isinstance(dataset, TensorBatches) and _nbytes(dataset) <= GPU_RESIDENT_BYTES
    if cuda and num_workers == 0 and small:
        # The features are one tensor: keep it on the GPU and slice batches there, with no per-batch
        # host-to-device copy to wait for (the training loop's .to(device) is then a no-op).
        dataset = dataset.to(device)
        cuda = False  # nothing left to pin
    generator = torch.Generator().manual_seed(seed)
    base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    batches = BatchSampler(base, batch_size=batch_size, drop_last=False)
    return DataLoader(
        dataset,
        # several ranks (torchrun): each takes its part of every batch (training) or of the rows (predictions)
        sampler=distributed.shard_batches(batches, len(dataset), shuffle),
        batch_size=None,  # the sampler already yields whole batches
        num_workers=num_workers,
        pin_memory=cuda,  # page-locked batches: the copies with non_blocking=True overlap the GPU's work
        persistent_workers=num_workers > 0,
    )


# Feature tensors up to this size move to the GPU whole; a larger one is copied batch by batch (pinned).
GPU_RESIDENT_BYTES = 1 << 30


def _nbytes(dataset: TensorBatches) -> int:
    return dataset.features.element_size() * dataset.features.nelement()


@dataclass
class Loaders:
    train: DataLoader  # shuffled, seeded
    train_eval: DataLoader  # the training rows in order, for the training accuracy of each epoch
    val: DataLoader | None
    test: DataLoader


def make_loaders(
    datasets: dict[str, Dataset | None], config: TrainingConfig, seed: int, device: torch.device
) -> Loaders:
    train = datasets["train"]
    assert train is not None and datasets["test"] is not None
    eval_batch = max(config.batch_size, 1024)

    def ordered(dataset: Dataset) -> DataLoader:
        return make_loader(dataset, eval_batch, shuffle=False, seed=0, device=device)

    return Loaders(
        train=make_loader(
            train, config.batch_size, shuffle=True, seed=seed, num_workers=config.num_workers, device=device
        ),
        train_eval=ordered(train),
        val=ordered(datasets["val"]) if datasets["val"] is not None else None,
        test=ordered(datasets["test"]),
    )
