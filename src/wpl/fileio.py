"""Atomic file writes: a reader never sees a half-written output."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, WplError


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


def atomic_write(path: str | Path, write: Callable[[str], None], size_hint: int | None = None) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (same directory); a full disk
    or a folder that cannot be written is a :class:`WplError` naming ``path`` (the old file stays as it was)
    and, for a full disk, about how much it needed (``size_hint``, else what was written or the old size)."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        written = os.path.getsize(tmp) if tmp and os.path.exists(tmp) else 0
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:
            before = path.stat().st_size if path.is_file() else 0
            raise write_error(path, exc, max(size_hint or 0, written, before) or None) from exc
        raise
    return path


# what a machine can do to a write: a full disk, a read-only or vanished folder, lost permission
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT)


def write_error(path: Path, exc: OSError, needed: int | None = None) -> WplError:
    """One line for a failed write of ``path``: what happened, how much it needed, that earlier output is
    intact, and what to do."""
    fix = "then continue with --resume=True (the last checkpoint and the logs up to it are intact)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = _free_bytes(path.parent)
        need = f"it needed about {_mb(needed)}" if needed else "it needed more than was left"
        have = f", {_mb(free)} free there" if free is not None else ""
        return WplError(f"{path}: no space left on the device ({need}{have}); free some space, {fix}")
    if exc.errno == errno.ENOENT:
        return WplError(f"{path}: its folder no longer exists (removed while the run was writing); restore it or "
                        f"choose another --log_dir, {fix}")
    return WplError(f"{path}: cannot write it ({exc.strerror or exc}); make the folder writable or choose another "
                    f"--log_dir, {fix}")


def append_text(path: str | Path, text: str, newline: str | None = None) -> None:
    """Append ``text`` to ``path``; a failed write is a :class:`WplError` (see :func:`write_error`)."""
    path = Path(path)
    try:
        with open(path, "a", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
    except OSError as exc:
        if exc.errno in WRITE_ERRORS:
            raise write_error(path, exc, len(text.encode())) from exc
        raise


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


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


def kept_or_changed(path: str | Path, data: dict) -> list[str]:
    """On first use keep ``data`` (plain JSON) at ``path`` and return []; later, the top-level keys whose saved
    value differs from ``data``'s (what a resumed job compares its setup with)."""
    path = Path(path)
    data = json.loads(json.dumps(data))  # as it reads back
    if not path.exists():
        write_json(path, data)
        return []
    saved = json.loads(path.read_text())
    return sorted(k for k in set(saved) | set(data) if saved.get(k) != data.get(k))


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def remove_stale_temporaries(folder: Path) -> None:
    """Delete ``folder``'s ``.*.tmp`` files: writes a killed process never finished (atomic_write's temporaries)."""
    for stale in Path(folder).glob(".*.tmp"):
        stale.unlink(missing_ok=True)
