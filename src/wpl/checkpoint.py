"""Full-state checkpoints: written atomically, holding only tensors and plain data, loaded with
``torch.load(weights_only=True)`` (opening someone else's run cannot execute code), with clear errors."""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import WplError
from .fileio import atomic_write

FORMAT = "wpl-search-checkpoint"
VERSION = 2  # 2: numpy RNG state as a tensor, so a safe (weights-only) load can read every part


def rng_state() -> dict:
    """Every RNG the run uses: python, numpy, torch CPU and CUDA (tensors and plain data only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise WplError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError) as exc:
        if "Weights only load failed" in str(exc):
            raise WplError(f"{path}: refusing to load it: it holds Python objects other than tensors and plain "
                           "data, and unpickling them could run code (a wpl checkpoint never does; one written by "
                           "wpl 0.1 stored numpy state that way: start that run again)") from exc
        raise WplError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc}); "
                       "delete it to start over, or restore a copy from checkpoint_epoch_*.pt") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WplError(f"{path}: not a wpl search checkpoint")
    if state.get("version") != VERSION:
        raise WplError(f"{path}: checkpoint version {state.get('version')} is not supported (expected {VERSION})")
    return state
