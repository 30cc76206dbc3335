"""Run a ``wpl`` subcommand from a checkout, whether or not the package is installed (the root
scripts ``main.py`` and ``generate_gif.py`` use it)."""

import sys
from pathlib import Path


def run(command: str) -> None:
    """``wpl <command> <this script's arguments>``; exits with its status."""
    try:
        import wpl  # noqa: F401
    except ImportError:  # a checkout without `pip install -e .`
        sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from wpl.cli import main

    raise SystemExit(main([command, *sys.argv[1:]]))
