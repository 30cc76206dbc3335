"""Full-state checkpoints: written atomically, holding only tensors and plain data, loaded with
``torch.load(weights_only=True)`` (opening someone else's run cannot execute code), with clear errors.

Each carries a SHA-256 digest of its content, checked on load, so a bit flip or a partial copy is
refused instead of resumed from (torch's zip format does not notice a flipped byte in a tensor).
With ``keep_previous`` the checkpoint it replaces stays as ``NAME.prev.pt`` until the next save, and
:func:`load_resumable` falls back to it, with a warning, when the newest one is damaged."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import WplError
from .fileio import WRITE_ERRORS, atomic_write, write_error

log = logging.getLogger("wpl")

FORMAT = "wpl-search-checkpoint"
# 4: a search's typed configs (``configs``) in place of its flat flags (``args``); 3: a content digest; 2: numpy
# RNG state as a tensor, so a safe (weights-only) load reads every part
VERSION = 4
READABLE = (2, 3, 4)  # version 2 has no digest: it is loaded unchecked


class CorruptCheckpoint(WplError):
    """A checkpoint file that cannot be trusted: truncated, unreadable, or not matching its digest."""


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
    saved = state.get("cuda") or []
    if saved and torch.cuda.is_available():  # a run saved on more GPUs than this machine has: the ones it has
        for i, s in enumerate(saved[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


def digest(state: object) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes, every other value's repr,
    in order (the same before ``torch.save`` and after ``torch.load``)."""
    h = hashlib.sha256()
    _feed(h, state)
    return h.hexdigest()


def _feed(h, obj: object) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(obj, dict):
        h.update(b"D%d" % len(obj))
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d" % len(obj))
        for v in obj:
            _feed(h, v)
    else:
        h.update(b"P" + repr(obj).encode())


def _nbytes(obj: object) -> int:
    """The tensor bytes in ``obj`` (what a checkpoint of it needs on disk, roughly)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def previous_path(path: str | Path) -> Path:
    """Where :func:`save_checkpoint` with ``keep_previous`` keeps the checkpoint it replaced."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, state: dict, keep_previous: bool = False) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``; with
    ``keep_previous`` the replaced file is kept as :func:`previous_path` (so two complete ones always exist)."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **state, "digest": digest(state)}
    if keep_previous and path.is_file():
        _keep(path, previous_path(path))
    return atomic_write(path, lambda tmp: torch.save(payload, tmp), size_hint=_nbytes(payload))


def _keep(path: Path, prev: Path) -> None:
    """``prev`` becomes a copy of ``path`` (a hard link where the file system has them), atomically."""
    tmp = prev.with_name(f".{prev.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, prev)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in WRITE_ERRORS:
            raise write_error(prev, exc, path.stat().st_size) from exc
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; anything else is a clear error
    (:class:`CorruptCheckpoint` when the file is damaged)."""
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
        raise CorruptCheckpoint(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc}); "
                                "delete it to start over, or restore a copy from checkpoint_epoch_*.pt") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WplError(f"{path}: not a wpl search checkpoint")
    version = state.get("version")
    if version not in READABLE:
        newer = isinstance(version, int) and version > VERSION
        hint = "; it was written by a newer wpl: upgrade" if newer else ""
        raise WplError(f"{path}: checkpoint version {version} is not supported (this wpl reads "
                       f"{', '.join(map(str, READABLE))}){hint}")
    saved = state.pop("digest", None)
    if version >= 3:
        content = {k: v for k, v in state.items() if k not in ("format", "version")}
        if saved != digest(content):
            raise CorruptCheckpoint(f"{path}: its content does not match the digest written with it (a damaged "
                                    "or partly copied file); delete it, or restore a copy from checkpoint_epoch_*.pt")
    return state


def load_resumable(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, Path]:
    """The checkpoint at ``path``, or — when it is damaged — the previous one kept beside it, with a
    warning; returns the state and the file it came from."""
    path = Path(path)
    try:
        return load_checkpoint(path, map_location), path
    except CorruptCheckpoint as exc:
        prev = previous_path(path)
        if not prev.is_file():
            raise
        state = load_checkpoint(prev, map_location)
        log.warning("%s; resuming from the previous checkpoint %s instead (epoch %s)", exc, prev,
                    state.get("epoch"))
        return state, prev
