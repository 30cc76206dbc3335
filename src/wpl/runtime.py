"""Device choice and seeding, shared by every command."""

from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
from torch import nn

from .errors import ConfigError

Mode = Literal["eval", "train", "keep"]


def resolve_device(device: str | None = None) -> torch.device:
    """CUDA when available, CPU otherwise; ``device`` ('cpu', 'cuda', 'cuda:1', 'auto') forces one."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError("device", device, "is not a device name; use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device", device, "CUDA is not available on this machine; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError("device", device, f"only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type != "cpu":
        raise ConfigError("device", device, "only cpu and cuda are supported")
    return dev


def machine() -> dict[str, object]:
    """What computed a result, as far as its float bits go: the CPU, the vector instructions torch uses, torch's
    version and threads (the same seed on another CPU trains another supernet: its kernels round differently)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            **({"gpu": torch.cuda.get_device_name()} if torch.cuda.is_available() else {})}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    """``on``: deterministic CUDA kernels (cuBLAS's fixed workspace, no cuDNN autotuning), so a GPU run repeats
    bit for bit; an op without a deterministic kernel warns instead of failing. The CPU is deterministic anyway."""
    if not on:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts: before the first matmul
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


@contextmanager
def model_mode(model: object, mode: Mode) -> Iterator[None]:
    """Put ``model`` in eval/train mode for the block and restore its previous mode after (``keep``: no change)."""
    if not isinstance(model, nn.Module) or mode == "keep":
        yield
        return
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval', 'train' or 'keep', got {mode!r}")
    was_training = model.training
    model.train(mode == "train")
    try:
        yield
    finally:
        model.train(was_training)


def clock(device: torch.device | None = None) -> float:
    """Wall-clock seconds, after waiting for ``device``'s queued work when it is CUDA (so phase timings are true)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
