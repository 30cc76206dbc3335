"""The GPU check's data, small enough to travel with the working tree (≤ 64 MiB in all, nothing downloaded there).

    python -m benchmarks.gpu.data pack --cifar ~/data/cifar10/cifar-10-batches-py --ptb ../shared/data/ptb --out .gpu
    python -m benchmarks.gpu.data unpack --src .gpu --out /tmp/wpl_data      # on the GPU machine

``pack`` writes ``cifar10_subset.npz`` (compressed uint8: the first ``--train`` training images, which the
searches split into training and ``--valid`` held-out validation images, and the first ``--test`` test
images) and gzips PTB's three text files. ``unpack`` turns the subset back into CIFAR-10's python batches
(``cifar10/cifar-10-batches-py``: data_batch_1..5 and test_batch) beside ``ptb/``, the layout
``--data_dir`` reads.
"""

from __future__ import annotations

import argparse
import gzip
import pickle
import sys
from pathlib import Path

import numpy as np

BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def _read(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    with open(folder / name, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    return np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.uint8)


def pack(cifar: Path, ptb: Path, out: Path, train: int, test: int) -> None:
    """The subset and PTB into ``out``."""
    xs, ys = zip(*(_read(cifar, b) for b in BATCHES), strict=True)
    x, y = np.concatenate(xs)[:train], np.concatenate(ys)[:train]
    tx, ty = _read(cifar, "test_batch")
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "cifar10_subset.npz", train_x=x, train_y=y, test_x=tx[:test], test_y=ty[:test])
    (out / "ptb").mkdir(exist_ok=True)
    for split in ("train", "valid", "test"):  # gzipped: a quarter of the size
        (out / "ptb" / f"{split}.txt.gz").write_bytes(gzip.compress((ptb / f"{split}.txt").read_bytes(), mtime=0))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out}: {len(y)} training and {len(ty[:test])} test images, PTB; {size / 2**20:.1f} MiB")


def unpack(src: Path, out: Path) -> None:
    """CIFAR-10 batches and PTB under ``out`` from what :func:`pack` wrote."""
    d = np.load(src / "cifar10_subset.npz")
    folder = out / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in zip(BATCHES, np.array_split(np.arange(len(d["train_y"])), len(BATCHES)), strict=True):
        batch = {b"data": d["train_x"][part], b"labels": d["train_y"][part].tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    test = {b"data": d["test_x"], b"labels": d["test_y"].tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    (out / "ptb").mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (out / "ptb" / f"{split}.txt").write_bytes(gzip.decompress((src / "ptb" / f"{split}.txt.gz").read_bytes()))
    print(f"unpacked {len(d['train_y'])} training and {len(d['test_y'])} test images and PTB into {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--cifar", type=Path, required=True, help="CIFAR-10's cifar-10-batches-py folder")
    p.add_argument("--ptb", type=Path, required=True, help="PTB's folder (train.txt, valid.txt, test.txt)")
    p.add_argument("--out", type=Path, default=Path(".gpu"))
    p.add_argument("--train", type=int, default=16000, help="training images (the searches hold --valid_size out)")
    p.add_argument("--test", type=int, default=1000)
    u = sub.add_parser("unpack")
    u.add_argument("--src", type=Path, default=Path(".gpu"))
    u.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "pack":
            pack(a.cifar, a.ptb, a.out, a.train, a.test)
        else:
            unpack(a.src, a.out)
    except (OSError, KeyError) as exc:
        print(f"data.py {a.cmd}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
