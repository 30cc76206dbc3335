"""The original repository's GIF script, kept so its command runs as written:

    python generate_gif.py --model_name=ptb_rnn-train --output=sample.gif

It is ``wpl gif`` with the same flags.
"""

import sys
from pathlib import Path

try:
    import wpl  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from wpl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["gif", *sys.argv[1:]]))
