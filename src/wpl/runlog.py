"""A run's plain-file and TensorBoard logs: ``metrics.jsonl``, ``forgetting.csv``, TB events.

On resume, the files are cut back to their size at the checkpoint, so events logged after it
(by the interrupted run) are not repeated, and TensorBoard events past its step are purged.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .fileio import append_text
from .forgetting import CSV_HEADER, ForgettingRecord
from .rundir import RunDir


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


class RunLog:
    """Append-only logs in ``run_dir``; ``sizes()`` / ``truncate()`` make them resumable."""

    def __init__(self, run_dir: Path, tensorboard: bool, purge_step: int | None = None) -> None:
        self.dir = run_dir
        self.metrics = RunDir(run_dir).metrics
        self.forgetting = RunDir(run_dir).forgetting
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(RunDir(run_dir).tensorboard), purge_step=purge_step)

    def sizes(self) -> dict[str, int]:
        """Current byte sizes of the plain logs (saved in checkpoints)."""
        return {p.name: (p.stat().st_size if p.exists() else 0) for p in (self.metrics, self.forgetting)}

    def truncate(self, sizes: dict[str, int]) -> None:
        """Cut the plain logs back to ``sizes`` (what a checkpoint recorded)."""
        for p in (self.metrics, self.forgetting):
            if p.exists():
                with open(p, "r+b") as fh:
                    fh.truncate(sizes.get(p.name, 0))

    def event(self, event: str, **fields) -> None:
        """Append one JSON object with an ``"event"`` key to ``metrics.jsonl``."""
        rec = {"event": event, **{k: _clean(v) for k, v in fields.items()}}
        append_text(self.metrics, json.dumps(rec, allow_nan=False) + "\n")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """TensorBoard scalars (finite ones) at ``step``."""
        if self.tb is None:
            return
        for tag, v in values.items():
            if v is not None and math.isfinite(float(v)):
                self.tb.add_scalar(tag, float(v), step)

    def image(self, tag: str, png: Path, step: int) -> None:
        """A PNG file as a TensorBoard image."""
        if self.tb is None:
            return
        import numpy as np
        from PIL import Image

        arr = np.asarray(Image.open(png).convert("RGB"))
        self.tb.add_image(tag, arr, step, dataformats="HWC")

    def forgetting_rows(self, records: list[ForgettingRecord]) -> None:
        """Append one CSV row per architecture (header first if the file is new)."""
        new = not self.forgetting.exists() or self.forgetting.stat().st_size == 0
        buf = io.StringIO()
        w = csv.writer(buf)
        if new:
            w.writerow(CSV_HEADER)
        for r in records:
            w.writerow([_fmt(v) for v in r.row()])
        append_text(self.forgetting, buf.getvalue(), newline="")

    def flush(self) -> None:
        """Flush TensorBoard."""
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        """Close TensorBoard."""
        if self.tb is not None:
            self.tb.close()


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v


class NullRunLog:
    """The logs of a process that writes none (a data-parallel rank other than 0): every call does nothing."""

    def sizes(self) -> dict[str, int]:
        """No files: nothing to cut back."""
        return {}

    def truncate(self, sizes: dict[str, int]) -> None:
        """Nothing to cut."""

    def event(self, event: str, **fields) -> None:
        """Dropped."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Dropped."""

    def image(self, tag: str, png: Path, step: int) -> None:
        """Dropped."""

    def forgetting_rows(self, records: list[ForgettingRecord]) -> None:
        """Dropped."""

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to close."""
