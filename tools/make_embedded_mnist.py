"""Rebuild the embedded real-MNIST subset shipped in ``wpl/data/mnist_embedded`` (developer tool).

Usage: python tools/make_embedded_mnist.py ../shared/data/mnist [N_TRAIN] [N_TEST]
Takes the first N_TRAIN training and N_TEST test images of the official idx files, unchanged.
"""

import gzip
import struct
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/wpl/data/mnist_embedded"


def subset(src: Path, name: str, n: int) -> None:
    raw = gzip.decompress((src / name).read_bytes())
    images = struct.unpack(">I", raw[:4])[0] == 2051
    header = 16 if images else 8
    item = 784 if images else 1
    head = raw[:4] + struct.pack(">I", n) + raw[8:header]
    body = raw[header : header + n * item]
    (OUT / name).write_bytes(gzip.compress(head + body, compresslevel=9, mtime=0))


def main() -> None:
    src = Path(sys.argv[1])
    n_train = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    n_test = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    for name, n in [
        ("train-images-idx3-ubyte.gz", n_train),
        ("train-labels-idx1-ubyte.gz", n_train),
        ("t10k-images-idx3-ubyte.gz", n_test),
        ("t10k-labels-idx1-ubyte.gz", n_test),
    ]:
        subset(src, name, n)
    total = sum(p.stat().st_size for p in OUT.glob("*.gz"))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
