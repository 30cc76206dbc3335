"""Print docs/errors.md's table: every case of tests/test_bad_input.py and the one line it gives.

Usage: python tools/error_table.py   (from the repository root; paths are shortened to their last parts)
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from test_bad_input import CASES, shown  # noqa: E402
from wpl.cli import main  # noqa: E402


def message(build) -> str:
    """The error line the case gives, with its temporary folder cut from the paths."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = build(Path(tmp))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(argv)
            except SystemExit:
                pass
        return shown(next((ln for ln in err.getvalue().splitlines() if "error" in ln.lower()), ""), tmp)


if __name__ == "__main__":
    print("| bad input | what it says |")
    print("|---|---|")
    for name, (build, _) in CASES.items():
        print(f"| {name} | `{message(build)}` |")
