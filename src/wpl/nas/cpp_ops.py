"""The C++ CPU kernels (``csrc/``: the unrolled recurrent cell, the fused softmax cross-entropy),
compiled on first use and cached.

``load()`` returns the compiled ops or ``None`` when they cannot be built here (no C++ compiler, no
``ninja``, a platform the source does not support, ``WPL_CPP=0`` in the environment); the
reason is kept in :data:`STATUS` and logged once, and callers fall back to their torch-op paths
(same results to float rounding, slower). The build takes ≈10–20 s once per machine and torch
version; later processes load the cached library in well under a second
(``torch.utils.cpp_extension`` keys it by source and flags).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
import time
from pathlib import Path

import torch

log = logging.getLogger("wpl")

SOURCES = [Path(__file__).with_name("csrc") / name for name in ("rnn_cell.cpp", "softmax_ce.cpp")]
STATUS: dict[str, object] = {"state": "not tried"}  # state: not tried | built | unavailable; reason; seconds
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
    cpp_extension.load(
        name=f"wpl_cpu_ops_{_cpu_tag()}", sources=[str(p) for p in SOURCES], is_python_module=False,
        verbose=False, extra_cflags=["-O3", "-march=native", "-fno-math-errno", "-fopenmp"],
        extra_ldflags=["-lmvec", "-fopenmp"],
    )
    return torch.ops.wpl


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
