"""Rebuild the embedded NAS-Bench-201 ground truth (``src/wpl/data/nb201_embedded/cifar10.u16.gz``) from
the CSV (``../shared/data/nb201/nb201_cifar10.csv.gz``): per column, one uint16 (value × 100) per cell
in the benchmark's canonical order (``wpl.data.nb201.all_archs()``), little-endian, gzipped.

Usage: python tools/make_embedded_nb201.py [CSV] [OUT]
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

import numpy as np

from wpl.data.nb201 import COLUMNS, all_archs

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/nb201/nb201_cifar10.csv.gz"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "src/wpl/data/nb201_embedded/cifar10.u16.gz"
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(src.read_bytes()).decode())))
    if [r["arch"] for r in rows] != all_archs():
        raise SystemExit(f"{src}: its rows are not the 15,625 cells in canonical order")
    cols = []
    for c in COLUMNS:
        v = np.array([round(float(r[c]) * 100) for r in rows], dtype="<u2")
        if not np.allclose(v / 100, [float(r[c]) for r in rows], atol=1e-9):
            raise SystemExit(f"{src}: column {c} has values with more than two decimals")
        cols.append(v)
    out.write_bytes(gzip.compress(np.concatenate(cols).tobytes(), mtime=0))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
