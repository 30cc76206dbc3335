"""SIGINT / SIGTERM as a clean stop: the first asks the running job to stop at its next step
boundary (it checkpoints, then exits non-zero with a message); a second stops it at once."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Protocol

log = logging.getLogger("wpl")


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
        log.warning("%s: stopping after the current step, with a checkpoint (send it again to stop at once, "
                    "losing the steps since the last checkpoint)", name)
        job.request_stop(name, 128 + signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
