"""Multi-model forgetting during a search: each architecture's error right after its own training
step (err1) and again at the end of the shared phase (err2), after the others have trained.

``diff = err2 − err1``; positive means the later architectures made it worse (it forgot). Errors are
kept in two units: the task's error (perplexity for language models, error rate for images) and
the validation loss in nats, whose differences are not heavy-tailed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ForgettingRecord:
    """One architecture trained in the shared phase."""

    epoch: int
    step: int
    arch: str
    err1: float
    loss1: float
    err2: float = math.nan
    loss2: float = math.nan

    @property
    def diff(self) -> float:
        """err2 − err1."""
        return self.err2 - self.err1

    @property
    def loss_diff(self) -> float:
        """loss2 − loss1 (nats)."""
        return self.loss2 - self.loss1

    def row(self) -> list:
        """The ``forgetting.csv`` row."""
        return [self.epoch, self.step, self.arch, self.err1, self.err2, self.diff,
                self.loss1, self.loss2, self.loss_diff]


CSV_HEADER = ["epoch", "step", "arch", "err1", "err2", "diff", "loss1", "loss2", "loss_diff"]


def summarize(values: list[float], keys: list[float], top_k: int = 5) -> dict[str, float]:
    """mean, median, max, std of ``values`` and ``best_mean``: their mean over the ``top_k`` smallest ``keys``."""
    if not values:
        return {}
    best = [v for _, v in sorted(zip(keys, values), key=lambda kv: kv[0])[:top_k]]
    return {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "max": max(values),
        # pstdev cannot take inf (an overflowed perplexity): the spread is then undefined
        "std": (statistics.pstdev(values) if all(map(math.isfinite, values)) else math.nan)
        if len(values) > 1 else 0.0,
        "best_mean": statistics.fmean(best),
    }


class ForgettingMonitor:
    """Collects err1 per trained architecture, then err2 for all of them at the end of the phase."""

    def __init__(self, top_k: int = 5) -> None:
        self.top_k = top_k
        self.records: list[ForgettingRecord] = []

    def before(self, epoch: int, step: int, arch: str, err: float, loss: float) -> None:
        """Record err1 of ``arch`` right after its training step."""
        self.records.append(ForgettingRecord(epoch, step, arch, float(err), float(loss)))

    def after(self, score: Callable[[str], tuple[float, float]]) -> list[ForgettingRecord]:
        """Score every recorded architecture again (``score(arch) → (err, loss)``); return and clear."""
        cache: dict[str, tuple[float, float]] = {}
        for r in self.records:
            if r.arch not in cache:
                cache[r.arch] = score(r.arch)
            r.err2, r.loss2 = cache[r.arch]
        done, self.records = self.records, []
        return done

    def summary(self, records: list[ForgettingRecord]) -> dict[str, float]:
        """Per-epoch summary: ``diff_*`` in the task's unit, ``loss_diff_*`` in nats (``*_best_mean`` over the
        ``top_k`` architectures with the lowest err1 / loss1), the means of err1/err2 and the count."""
        if not records:
            return {}
        err1 = [r.err1 for r in records]
        out = {f"diff_{k}": v for k, v in summarize([r.diff for r in records], err1, self.top_k).items()}
        loss1 = [r.loss1 for r in records]
        loss_summary = summarize([r.loss_diff for r in records], loss1, self.top_k)
        out.update({f"loss_diff_{k}": v for k, v in loss_summary.items()})
        out["err1_mean"] = statistics.fmean(err1)
        out["err2_mean"] = statistics.fmean(r.err2 for r in records)
        out["archs"] = len(records)
        return out

    def state_dict(self) -> dict:
        """Pending records (a checkpoint inside a shared phase would need them)."""
        return {"records": [vars(r).copy() for r in self.records], "top_k": self.top_k}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.top_k = state["top_k"]
        self.records = [ForgettingRecord(**r) for r in state["records"]]
