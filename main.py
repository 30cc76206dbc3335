"""The original repository's entry point, kept so its commands run as written:

    python main.py --network_type=rnn --dataset=ptb --data_dir=DIR ...

It is ``wpl search`` with the same flags.
"""

import sys
from pathlib import Path

try:
    import wpl  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from wpl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["search", *sys.argv[1:]]))
