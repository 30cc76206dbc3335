"""MNIST from the four official idx ``.gz`` files, checked strictly, or from the embedded subset."""

from __future__ import annotations

import gzip
import struct
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, WplError
from .splits import Splits

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
EMBEDDED_PACKAGE = "wpl.data.mnist_embedded"


class MnistSplits(Splits):
    """Images ``[N, 1, 28, 28]`` float in [0, 1]; ``source`` is "mnist" or "mnist-embedded"."""


def read_idx(raw: bytes, path: str, kind: str) -> np.ndarray:
    """Parse one decompressed idx file (``kind`` 'images' or 'labels'), naming ``path`` on errors."""
    magic_expected = IMAGE_MAGIC if kind == "images" else LABEL_MAGIC
    header = 16 if kind == "images" else 8
    if len(raw) < header:
        raise WplError(f"{path}: truncated idx file ({len(raw)} bytes, the header alone is {header})")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != magic_expected:
        raise WplError(
            f"{path}: wrong magic number {magic} (expected {magic_expected} for idx {kind}); "
            "is this the right file, and was it decompressed or renamed by mistake?"
        )
    if kind == "images":
        n, rows, cols = struct.unpack(">III", raw[4:16])
        shape: tuple[int, ...] = (n, rows, cols)
    else:
        (n,) = struct.unpack(">I", raw[4:8])
        shape = (n,)
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise WplError(
            f"{path}: truncated or corrupt idx file: header says {n} {kind} ({expected} bytes), "
            f"file has {len(raw)} bytes; download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_gz(path: Path, kind: str) -> np.ndarray:
    if not path.is_file():
        raise WplError(
            f"{path}: file not found; --data_dir must hold the four MNIST idx files "
            f"({', '.join(FILES.values())})"
        )
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise WplError(f"{path}: not a valid gzip file ({exc}); download it again") from exc
    return read_idx(raw, str(path), kind)


def _read_embedded(name: str, kind: str) -> np.ndarray:
    ref = resources.files(EMBEDDED_PACKAGE) / name
    return read_idx(gzip.decompress(ref.read_bytes()), f"<embedded>/{name}", kind)


def load_mnist(
    data_dir: str | Path | None = None, valid_size: int = 5000, seed: int = 0
) -> MnistSplits:
    """Load MNIST from ``data_dir`` (or the embedded subset when None), holding ``valid_size``
    training images out for validation (never taken from test)."""
    if data_dir is None:
        arrays = {k: _read_embedded(v, k.split("_")[1]) for k, v in FILES.items()}
        source = "mnist-embedded"
    else:
        root = Path(data_dir)
        if not root.is_dir():
            raise ConfigError("data_dir", str(root), "no such directory (it must hold the four MNIST idx .gz files)")
        sub = root / "mnist"
        if not (root / FILES["train_images"]).exists() and (sub / FILES["train_images"]).exists():
            root = sub
        arrays = {k: _read_gz(root / v, k.split("_")[1]) for k, v in FILES.items()}
        source = "mnist"
    for split in ("train", "test"):
        ni, nl = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if ni != nl:
            raise WplError(f"MNIST {split} split has {ni} images but {nl} labels; the files do not belong together")
    n_train = len(arrays["train_images"])
    if not 0 < valid_size < n_train:
        raise ConfigError("valid_size", valid_size, f"must be between 1 and {n_train - 1} (training images)")
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    x = _to_tensor(arrays["train_images"])
    y = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    valid_idx, train_idx = perm[:valid_size], perm[valid_size:]
    return MnistSplits(
        train_x=x[train_idx],
        train_y=y[train_idx],
        valid_x=x[valid_idx],
        valid_y=y[valid_idx],
        test_x=_to_tensor(arrays["test_images"]),
        test_y=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        source=source,
    )


def _to_tensor(images: np.ndarray) -> Tensor:
    return torch.from_numpy(images.copy()).float().div_(255.0).unsqueeze(1)
