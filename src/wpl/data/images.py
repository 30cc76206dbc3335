"""Image datasets for the CNN search: CIFAR-10 python pickles, MNIST idx files, or a folder of
images ``<dataset>/{train,valid,test}/<class>/*.png|jpg|jpeg``.

Images are kept in memory as ``uint8 [N, C, H, W]``; augmentation and normalisation happen per
batch on the training device (:mod:`.augment`). Validation images are held out of the training
split (``valid_size``) unless a folder dataset brings its own ``valid/``; the test split is only
for final evaluation.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, WplError
from .splits import Splits

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_NUMPY_GLOBALS = {  # what a CIFAR pickle may reference; nothing else is loaded
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


@dataclass
class ImageSplits(Splits):
    """uint8 images ``[N, C, H, W]`` per split, class names, per-channel stats of the training images."""

    classes: list[str]
    mean: tuple[float, ...]  # in [0, 1]
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)``."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise WplError(f"{path}: missing CIFAR-10 batch; the folder must hold data_batch_1..5 and test_batch "
                       "(the python version, cifar-10-python.tar.gz, extracted)")
    try:
        raw = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 — any unpickling failure means the file is unusable
        raise WplError(f"{path}: not a readable CIFAR-10 pickle ({exc})") from None
    if not isinstance(raw, dict):
        raise WplError(f"{path}: not a CIFAR-10 batch (expected a dict, got {type(raw).__name__})")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
    if "data" not in d or "labels" not in d:
        raise WplError(f"{path}: not a CIFAR-10 batch (keys {sorted(d)}; expected 'data' and 'labels')")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise WplError(f"{path}: malformed CIFAR-10 batch (data {data.shape}, {len(labels)} labels; expected "
                       "N×3072 uint8 images and N labels): extract cifar-10-python.tar.gz again")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_dir(root: Path) -> Path:
    if (root / CIFAR_TEST).is_file():
        return root
    subs = [p for p in sorted(root.iterdir()) if p.is_dir() and (p / CIFAR_TEST).is_file()] if root.is_dir() else []
    if subs:
        return subs[0]
    raise WplError(f"{root}: no CIFAR-10 python batches here or one level down (expected data_batch_1..5 and "
                   "test_batch, e.g. from cifar-10-python.tar.gz)")


def _hold_out(x: Tensor, y: Tensor, valid_size: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    n = len(x)
    if not 0 < valid_size < n:
        raise ConfigError("valid_size", valid_size, f"must be between 1 and {n - 1} (the training images); "
                          "lower it for a small dataset")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    v, t = perm[:valid_size], perm[valid_size:]
    return x[t], y[t], x[v], y[v]


def _stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    f = x.float().div_(255.0)
    mean = f.mean(dim=(0, 2, 3))
    std = f.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _splits(train: tuple[Tensor, Tensor], valid: tuple[Tensor, Tensor] | None, test: tuple[Tensor, Tensor],
            classes: list[str], source: str, valid_size: int, seed: int) -> ImageSplits:
    if valid is None:
        tx, ty, vx, vy = _hold_out(*train, valid_size, seed)
    else:
        (tx, ty), (vx, vy) = train, valid
    mean, std = _stats(tx)
    return ImageSplits(tx, ty, vx, vy, test[0], test[1], source, classes, mean, std)


def load_cifar10(root: Path, valid_size: int, seed: int) -> ImageSplits:
    """CIFAR-10 python batches in ``root`` (or one folder down)."""
    d = _cifar_dir(root)
    parts = [_read_cifar_batch(d / name) for name in CIFAR_TRAIN]
    train_x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    train_y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    test_x, test_y = (torch.from_numpy(a) for a in _read_cifar_batch(d / CIFAR_TEST))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return _splits((train_x, train_y), None, (test_x, test_y), classes, "cifar10", valid_size, seed)


def _mnist(data_dir: Path | None, valid_size: int, seed: int) -> ImageSplits:
    from .mnist import load_mnist

    m = load_mnist(data_dir, valid_size=valid_size, seed=seed)

    def u8(x: Tensor) -> Tensor:
        return x.mul(255.0).round_().to(torch.uint8)

    mean, std = _stats(u8(m.train_x))
    return ImageSplits(u8(m.train_x), m.train_y, u8(m.valid_x), m.valid_y, u8(m.test_x), m.test_y, m.source,
                       [str(i) for i in range(10)], mean, std)


def _folder_split(split_dir: Path, classes: list[str] | None, size: tuple[int, int], channels: int,
                  ) -> tuple[Tensor, Tensor, list[str]]:
    from PIL import Image

    subdirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
    loose = [p for p in split_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if loose or not subdirs:
        raise WplError(
            f"{split_dir}: images must be in one sub-folder per class, {split_dir}/<class_name>/*.png|jpg|jpeg "
            f"(found {len(loose)} image files directly in the split and {len(subdirs)} sub-folders)")
    names = [p.name for p in subdirs]
    if classes is None:
        classes = names
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise WplError(f"{split_dir / unknown[0]}: class {unknown[0]!r} is not among the training classes {classes}")
    xs, ys = [], []
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ConfigError("channels", channels, "image folders are read as 1 (grey) or 3 (RGB) channels")
    for sub in subdirs:
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert(mode).resize((size[1], size[0]), Image.BILINEAR)
                    arr = np.asarray(im, dtype=np.uint8)
            except Exception as exc:  # noqa: BLE001 — Pillow raises many types for bad files
                raise WplError(f"{f}: not a readable image ({exc})") from None
            xs.append(arr.reshape(size[0], size[1], channels).transpose(2, 0, 1))
            ys.append(classes.index(sub.name))
    if not xs:
        raise WplError(f"{split_dir}: no .png/.jpg/.jpeg images in its class folders")
    # a fixed shuffle: read class by class, evaluation batches would hold one class each, and
    # BatchNorm (batch statistics in eval too) would then see class-specific statistics
    perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(0))
    return torch.from_numpy(np.stack(xs))[perm], torch.tensor(ys, dtype=torch.int64)[perm], classes


def load_image_folder(root: Path, size: tuple[int, int], channels: int, valid_size: int, seed: int) -> ImageSplits:
    """``root/{train,valid,test}/<class>/*.png|jpg|jpeg`` (``valid/`` optional), resized to ``size``."""
    for need in ("train", "test"):
        if not (root / need).is_dir():
            raise WplError(f"{root}: missing {need}/ (expected {root}/{{train,valid,test}}/<class_name>/*.png|jpg, "
                           "valid/ optional)")
    train_x, train_y, classes = _folder_split(root / "train", None, size, channels)
    valid = _folder_split(root / "valid", classes, size, channels)[:2] if (root / "valid").is_dir() else None
    test = _folder_split(root / "test", classes, size, channels)[:2]
    return _splits((train_x, train_y), valid, test, classes, f"folder:{root.name}", valid_size, seed)


def load_images(data_dir: str | Path | None, dataset: str, *, valid_size: int = 5000, seed: int = 0,
                size: tuple[int, int] = (32, 32), channels: int = 3) -> ImageSplits:
    """The image dataset ``dataset`` under ``data_dir`` (``mnist`` with no ``data_dir``: the embedded subset)."""
    if dataset == "mnist":
        return _mnist(None if data_dir is None else Path(data_dir), valid_size, seed)
    if data_dir is None:
        raise ConfigError("data_dir", "embedded", f"dataset {dataset!r} needs a data folder (only mnist has an "
                          "embedded copy)")
    root = Path(data_dir) / dataset
    if not root.is_dir() and dataset == "cifar10":
        raise WplError(f"{root}: no such folder; extract CIFAR-10's python version (cifar-10-python.tar.gz from "
                       "https://www.cs.toronto.edu/~kriz/cifar.html) into it")
    if not root.is_dir():
        raise WplError(f"{root}: no such folder; put images in {root}/{{train,valid,test}}/<class_name>/*.png "
                       "(valid/ optional), or use the dataset cifar10 or mnist")
    if dataset == "cifar10" or any(root.rglob(CIFAR_TEST)):
        return load_cifar10(root, valid_size, seed)
    return load_image_folder(root, size, channels, valid_size, seed)
