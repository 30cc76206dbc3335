"""How well a supernet's scores rank architectures against a ground truth.

All metrics take the scores (higher = better, e.g. a supernet's validation accuracy) and the true
accuracies of the same cells, in the same order:

- ``kendall_tau``: Kendall τ-b (ties counted as scipy's ``kendalltau`` counts them), O(n log n);
- ``spearman``: Spearman ρ, the Pearson correlation of average ranks (ties get their mean rank);
- ``sparse_kendall_tau``: τ-b after rounding both to 0.1 (percentage points), as Yu et al. ("How to
  train your super-net", 2020) do so that near-equal accuracies count as ties;
- ``tau_top10``: τ-b within the cells whose true accuracy is in the top 10% of those scored;
- ``p_at_top5`` / ``p_at_top10``: the share of the top 5% / 10% by score that are in the true top
  5% / 10% of those scored;
- ``top1_true_acc``: the true accuracy of the highest-scored cell (its regret: best − that).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# what a supernet can rank cells by: each cell's validation accuracy, or its (negated) mean cross-entropy
MEASURES = ("accuracy", "loss")


def _tie_pairs(values: np.ndarray) -> int:
    _, counts = np.unique(values, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall τ-b of two equally long sequences (NaN when either is constant or n < 2)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    n = len(x)
    if n < 2:
        return math.nan
    order = np.lexsort((y, x))  # by x, ties by y
    xs, ys = x[order], y[order]
    n0 = n * (n - 1) // 2
    n1 = _tie_pairs(xs)
    n2 = _tie_pairs(ys)
    pairs = np.stack([xs, ys], 1)
    _, joint = np.unique(pairs, axis=0, return_counts=True)
    n3 = int((joint * (joint - 1) // 2).sum())
    # discordant pairs: earlier (smaller x) elements with a strictly larger y — a Fenwick tree over y ranks
    ranks = np.searchsorted(np.unique(ys), ys) + 1
    m = int(ranks.max())
    tree = [0] * (m + 1)
    discordant = 0
    for k, r in enumerate(ranks.tolist()):
        i, le = r, 0
        while i > 0:
            le += tree[i]
            i -= i & -i
        discordant += k - le
        i = r
        while i <= m:
            tree[i] += 1
            i += i & -i
    # earlier elements tied in x have y <= the current one (sorted), so they are never counted
    denom = math.sqrt((n0 - n1) * (n0 - n2))
    if denom == 0:
        return math.nan
    return (n0 - n1 - n2 + n3 - 2 * discordant) / denom


def kendall_components(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Each item's share of Kendall's τ: ``h_i`` = the mean over ``j ≠ i`` of ``sign(x_i − x_j)·sign(y_i − y_j)``.
    Their mean is τ-a (τ-b without ties); ``4·var(h)/n`` is the U-statistic's variance of τ over the sample of
    items (Hoeffding), the part of a τ's uncertainty that comes from which items were drawn."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    s = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    return s.sum(1) / max(len(x) - 1, 1)


def _average_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman ρ with average ranks for ties (NaN when either is constant)."""
    rx, ry = _average_ranks(np.asarray(x, float)), _average_ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def sparse_kendall_tau(x: Sequence[float], y: Sequence[float], decimals: int = 1) -> float:
    """τ-b after rounding both to ``decimals`` (0.1 percentage point by default)."""
    return kendall_tau(np.round(np.asarray(x, float), decimals), np.round(np.asarray(y, float), decimals))


def _top(values: np.ndarray, frac: float) -> np.ndarray:
    k = max(1, int(round(frac * len(values))))
    return np.argsort(-values, kind="mergesort")[:k]


def precision_at(score: Sequence[float], truth: Sequence[float], frac: float) -> float:
    """Share of the top ``frac`` by score that are in the top ``frac`` by truth."""
    s, t = np.asarray(score, float), np.asarray(truth, float)
    top_s, top_t = _top(s, frac), set(_top(t, frac).tolist())
    return sum(int(i) in top_t for i in top_s) / len(top_s)


def tau_top(score: Sequence[float], truth: Sequence[float], frac: float = 0.1) -> float:
    """τ-b within the cells whose truth is in the top ``frac`` of those scored."""
    s, t = np.asarray(score, float), np.asarray(truth, float)
    idx = _top(t, frac)
    return kendall_tau(s[idx], t[idx])


def rank_metrics(score: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    """Every metric of the module docstring (``top1_true_acc`` is the best-scored cell's truth)."""
    s, t = np.asarray(score, float), np.asarray(truth, float)
    if len(s) != len(t) or len(s) < 2:
        raise ValueError(f"score and truth need one value per cell (≥ 2 cells), got {len(s)} and {len(t)}")
    return {"kendall_tau": kendall_tau(s, t), "spearman": spearman(s, t),
            "sparse_kendall_tau": sparse_kendall_tau(s, t), "tau_top10": tau_top(s, t, 0.1),
            "p_at_top5": precision_at(s, t, 0.05),
            "p_at_top10": precision_at(s, t, 0.1), "top1_true_acc": float(t[int(np.argmax(s))]),
            "num_archs": len(s)}


def sample_cells(num: int | None, seed: int, total: int) -> np.ndarray:
    """Sorted indices of ``num`` cells drawn uniformly without replacement (all when None)."""
    if num is None:
        return np.arange(total)
    if not 2 <= num <= total:
        raise ValueError(f"num_archs={num}: must be in 2..{total}")
    return np.sort(np.random.default_rng(seed).choice(total, size=num, replace=False))


METRIC_COLUMNS = ("kendall_tau", "spearman", "sparse_kendall_tau", "tau_top10", "p_at_top5", "p_at_top10",
                  "top1_true_acc")


def metrics_table(rows: dict[str, dict]) -> str:
    """Markdown: one row per estimate (``{name: rank_metrics(...)}``)."""
    head = "| estimate | cells | Kendall τ | Spearman ρ | sparse τ | τ top-10% | P@5% | P@10% | top-1 true acc |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['num_archs']} | " + " | ".join(f"{m[c]:.3f}" if c != "top1_true_acc" else
                                                                  f"{m[c]:.2f}" for c in METRIC_COLUMNS) + " |")
    return "\n".join(lines) + "\n"
