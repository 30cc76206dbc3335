"""Shared fixtures: tiny MNIST-format data written on the fly."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest


def write_idx(path: Path, array: np.ndarray, kind: str) -> None:
    """Write ``array`` (uint8) as a gzipped idx file of ``kind`` 'images' or 'labels'."""
    if kind == "images":
        header = struct.pack(">IIII", 2051, *array.shape)
    else:
        header = struct.pack(">II", 2049, array.shape[0])
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def make_mnist(root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """Separable 10-class 28x28 images: class k lights up row band k, plus noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 + 2 * k : 4 + 2 * k, :] = 255
        write_idx(root / f"{split}-images-idx3-ubyte.gz", images, "images")
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels, "labels")
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return make_mnist(tmp_path / "mnist")


def make_text(root: Path, name: str = "tiny", lines: tuple[int, int, int] = (300, 40, 40), seed: int = 0) -> Path:
    """A tiny PTB-format corpus ``root/name/{train,valid,test}.txt`` from a 30-word grammar."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(29)] + ["<unk>"]
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        out = []
        for _ in range(n):
            start = int(rng.integers(0, 29))
            out.append(" " + " ".join(words[(start + 3 * k) % 30] for k in range(int(rng.integers(4, 12)))) + " ")
        (folder / f"{split}.txt").write_text("\n".join(out) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def text_root(tmp_path: Path) -> Path:
    return make_text(tmp_path / "data")
