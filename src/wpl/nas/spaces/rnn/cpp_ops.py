"""The C++ CPU kernels (``csrc/``: the unrolled recurrent cell, the fused softmax cross-entropy),
compiled on first use and cached.

``load()`` returns the compiled ops or ``None`` when they cannot be built here (no C++ compiler, no
``ninja``, a platform the source does not support, ``WPL_CPP=0`` in the environment); the
reason is kept in :data:`STATUS` and logged once, and callers fall back to their torch-op paths
(same results to float rounding, slower). The build takes ≈10–20 s once per machine and torch
version; later processes load the cached library in well under a second
(``torch.utils.cpp_extension`` keys it by source and flags).

Builds are serialised across processes by an OS file lock that dies with its holder, so a build
killed half-way (Ctrl-C, ``kill -9``, a CI timeout) never leaves later runs waiting forever on
torch's own lock file: that file is removed as stale, and a wait for another live build gives up
after :data:`BUILD_WAIT_S` seconds (the torch-op path is used instead).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path

import torch

log = logging.getLogger("wpl")

SOURCES = [Path(__file__).with_name("csrc") / name for name in ("rnn_cell.cpp", "softmax_ce.cpp")]
STATUS: dict[str, object] = {"state": "not tried"}  # state: not tried | built | unavailable; reason; seconds
BUILD_WAIT_S = 600.0  # how long to wait for another process's build of the same library
_lock = threading.Lock()
_ops = None


def _cpu_tag() -> str:
    """A short tag of this CPU (the library is built with -march=native, so it is per CPU model)."""
    info = platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        info += next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    except OSError:
        pass
    return hashlib.sha1(info.encode()).hexdigest()[:8]


def _build():
    from torch.utils import cpp_extension

    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(f"the C++ kernels are built for Linux x86-64 only (this is {platform.system()} "
                           f"{platform.machine()})")
    try:  # the ninja wheel's binary, when the environment's bin folder is not on PATH
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    cpp_extension.verify_ninja_availability()
    name = f"wpl_cpu_ops_{_cpu_tag()}"
    build_dir = build_directory(name)
    with _build_lock(build_dir):
        cpp_extension.load(
            name=name, sources=[str(p) for p in SOURCES], is_python_module=False, build_directory=str(build_dir),
            verbose=False, extra_cflags=["-O3", "-march=native", "-fno-math-errno", "-fopenmp"],
            extra_ldflags=["-lmvec", "-fopenmp"],
        )
    return torch.ops.wpl


def build_directory(name: str) -> Path:
    """Where the library ``name`` is built: ``$TORCH_EXTENSIONS_DIR`` (or torch's default root), per
    Python and torch version."""
    from torch.utils import cpp_extension

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()
    folder = Path(root) / f"py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__}" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _build_lock(build_dir: Path, wait_s: float | None = None):
    """Hold ``build_dir``'s build for this process: an ``flock`` (released by the OS if the holder dies);
    under it, torch's ``lock`` file can only be a dead build's leftover and is removed."""
    import fcntl  # POSIX; _build runs on Linux only

    wait_s = BUILD_WAIT_S if wait_s is None else wait_s
    with open(build_dir / "wpl.flock", "w") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process has been building {build_dir} for over {wait_s:.0f} s; "
                                       "if none is, delete that folder") from None
                time.sleep(0.2)
        stale = build_dir / "lock"
        if stale.exists():
            log.warning("%s: removing a lock file left by a build that did not finish", stale)
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def applies(*tensors) -> bool:
    """The C++ kernels run on these tensors: float32, on the CPU."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def load():
    """The compiled ops (``torch.ops.wpl``), or None when they cannot be built here."""
    global _ops
    if STATUS["state"] != "not tried":
        return _ops
    with _lock:
        if STATUS["state"] != "not tried":
            return _ops
        if os.environ.get("WPL_CPP", "1") == "0":
            STATUS.update(state="unavailable", reason="WPL_CPP=0")
            return None
        t0 = time.perf_counter()
        try:
            _ops = _build()
            STATUS.update(state="built", seconds=round(time.perf_counter() - t0, 1))
            log.debug("C++ kernels ready in %.1f s", STATUS["seconds"])
        except Exception as e:  # no compiler, no ninja, a failed build: the Python path still works
            _ops = None
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            STATUS.update(state="unavailable", reason=reason[:300])
            log.warning("the C++ kernels could not be built (%s); using torch ops instead (slower, same "
                        "results to float rounding)", STATUS["reason"])
        return _ops
