"""Build the embedded Penn Treebank slice shipped in ``wpl/data/ptb_embedded`` (used by ``wpl demo``).

Usage: python tools/make_embedded_ptb.py ../shared/data/ptb
Takes the first 12,000 lines of train.txt and 1,200 of valid.txt and test.txt, gzip level 9.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

LINES = {"train": 12000, "valid": 1200, "test": 1200}
OUT = Path(__file__).resolve().parents[1] / "src" / "wpl" / "data" / "ptb_embedded"


def main() -> None:
    src = Path(sys.argv[1])
    for split, n in LINES.items():
        lines = (src / f"{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)[:n]
        data = gzip.compress("".join(lines).encode("utf-8"), compresslevel=9, mtime=0)
        (OUT / f"{split}.txt.gz").write_bytes(data)
        print(f"{split}: {n} lines, {len(data) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
