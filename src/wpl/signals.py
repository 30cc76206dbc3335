"""SIGINT / SIGTERM as a clean stop: the first asks the running job to stop (a search at its next step
boundary, after a checkpoint; a final training at once, its last epoch's checkpoint standing), which
then exits non-zero (128 + the signal's number) with a message; a second stops it at once."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Protocol

from .errors import WplError


class Stopped(WplError):
    """A job stopped when a signal asked it to; ``exit_code`` is 128 + the signal's number."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Stoppable(Protocol):
    """What the handlers talk to: a job that stops at its next step boundary once asked."""

    stop_signal: tuple[str, int] | None

    def request_stop(self, name: str, exit_code: int) -> None: ...


@contextlib.contextmanager
def stop_on_signals(job: Stoppable) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM ask ``job`` to stop (exit code 128 + the signal's number);
    outside the main thread (where Python cannot install handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if job.stop_signal is not None:
            raise KeyboardInterrupt  # asked twice: stop now (the last checkpoint stays)
        job.request_stop(name, 128 + signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
