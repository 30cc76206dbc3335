"""Progress bars: tqdm on a terminal; in a log file (no terminal), plain lines.

On a terminal a bar redraws itself in place (carriage returns; nested bars move the cursor up). Written to
a file those become ``\\r`` runs and ``ESC[A`` fragments. :func:`bar` gives the same tqdm bar when stderr is
a terminal, and otherwise one that writes a whole line at most every ``LOG_INTERVAL_S`` seconds (and its
last state), with no carriage return or escape sequence.
"""

from __future__ import annotations

import re
import sys
from typing import IO, Any

from tqdm import tqdm

LOG_INTERVAL_S = 60.0
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LineWriter:
    """A file-like wrapper that turns a bar's redraws into whole lines: escapes dropped, each non-blank
    ``\\r``-separated piece written once, ending in a newline."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        """Write the visible content of ``text`` as lines."""
        for piece in _ESCAPES.sub("", text).replace("\n", "\r").split("\r"):
            if piece.strip():
                self.stream.write(piece.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        """Flush the stream."""
        self.stream.flush()


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """A tqdm bar (same arguments); without a terminal, lines at most every ``LOG_INTERVAL_S`` seconds."""
    if not is_terminal(kwargs.get("file")):
        kwargs.update(file=LineWriter(kwargs.get("file") or sys.stderr), mininterval=LOG_INTERVAL_S,
                      maxinterval=LOG_INTERVAL_S, dynamic_ncols=False, ncols=100, ascii=True, position=None)
    return tqdm(iterable, **kwargs)
