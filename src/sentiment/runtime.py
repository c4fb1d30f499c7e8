"""Run-time set-up of a training run: seeds, torch threads and the device."""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import numpy as np
import torch

from sentiment.errors import ConfigError

if TYPE_CHECKING:
    from sentiment.config import Config


def setup(config: Config) -> torch.device:
    """Seed every generator, set torch's CPU threads and pick the device ``config.device`` names."""
    threads = cpu_threads(config.training.cpu_threads, config.model.fine_tune_embeddings)
    seed_everything(config.seed, config.training.deterministic, threads)
    return resolve_device(config.device)


def seed_everything(seed: int, deterministic: bool = False, threads: int | None = None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # Setting the thread count also turns MKL's dynamic threading off: with it on, MKL picks its threads per
    # call from the machine's momentary load, and float sums then differ in the last bit from run to run.
    torch.set_num_threads(threads or torch.get_num_threads())
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda``/``cuda:N`` must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device '{spec}' requested but CUDA is not available here; use --set device=cpu"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            found = torch.cuda.device_count()
            raise ConfigError(f"device '{spec}' does not exist: {found} CUDA device(s) found")
    return torch.device(spec)


def cpu_threads(requested: int, fine_tune: bool) -> int | None:
    """Threads for torch on CPU: ``requested``, or by default one for a small frozen-feature MLP."""
    if requested:
        return requested
    return None if fine_tune else 1


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
