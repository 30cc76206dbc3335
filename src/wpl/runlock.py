"""One process per run folder: an OS file lock (released when its holder exits, however it exits)
in ``FOLDER/.wpl.lock``, holding the owner's pid, host and start time for the refusal message."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import WplError

LOCK_NAME = ".wpl.lock"


@contextlib.contextmanager
def run_lock(folder: str | Path, hint: str = "choose another --comment or --log_dir") -> Iterator[Path]:
    """Hold ``folder`` for this process; a second process is refused with one line naming the owner."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing to hold
        yield Path(folder)
        return
    path = Path(folder) / LOCK_NAME
    fh = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            raise WplError(f"{folder}: in use by {owner}; two processes writing one run folder would mix their "
                           f"files: wait for it to finish, or {hint}") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            yield path
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def is_locked(folder: str | Path) -> bool:
    """Whether a process holds ``folder`` now (a run in progress); False where no lock can be taken."""
    path = Path(folder) / LOCK_NAME
    try:
        import fcntl
    except ImportError:
        return False
    if not path.is_file():
        return False
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False
