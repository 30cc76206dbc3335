"""Atomic file writes: a reader never sees a half-written output."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError


def ensure_writable_dir(path: str | Path, name: str = "output_dir") -> Path:
    """Create ``path`` if needed and check that files can be written in it (``name``: the setting that chose it)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".wpl-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(name, str(p),
                          f"cannot write there ({exc.strerror or exc}); choose another directory") from exc
    return p


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (same directory)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def finite(obj):
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None, through dicts and lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj


def write_json(path: str | Path, data: object) -> Path:
    """Write ``data`` as indented JSON (non-finite floats as null: strict JSON has no NaN), atomically."""
    text = json.dumps(finite(data), indent=2, allow_nan=False) + "\n"

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, _write)
