"""Device choice and seeding, shared by every command."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import WplError


def resolve_device(device: str | None = None) -> torch.device:
    """CUDA when available, CPU otherwise; ``device`` ('cpu', 'cuda', 'cuda:1', 'auto') forces one."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise WplError(f"--device {device!r} is not a device name; use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise WplError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise WplError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type != "cpu":
        raise WplError(f"--device {device!r}: only cpu and cuda are supported")
    return dev


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
