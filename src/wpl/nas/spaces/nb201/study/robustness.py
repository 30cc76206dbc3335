"""How firm the primary family's declared verdicts are, reported beside them and never replacing them: the
equivalence reading at the family's strictest level (each comparison's 1 − α/m interval inside ±delta, where the
declared verdict reads its 95% interval), and the verdicts when any one seed is left out (Holm recomputed over the
whole family each time)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from wpl.stats import compare_family, paired


def family_interval(a: Sequence, b: Sequence, alpha: float, m: int) -> tuple[float | None, float | None]:
    """``a − b``'s t-interval at level 1 − alpha/m (Bonferroni over a family of ``m``)."""
    c = paired(a, b, level=1.0 - alpha / m)
    return c["lo"], c["hi"]


def robustness(rows: list[tuple[str, Sequence, Sequence]], full: list[dict], alpha: float, power: float,
               delta: float) -> list[dict]:
    """Per comparison of ``rows`` (``(name, a, b)``, paired by seed) with ``full`` its declared family's result:
    the family-level interval and whether it lies inside ±delta, and, over the n ways of leaving one seed out, how
    many keep the declared verdict, the verdicts they give and the range of the Holm p."""
    m, n = len(rows), min(len(a) for _, a, _ in rows)
    loo = [compare_family([(name, _drop(a, k), _drop(b, k)) for name, a, b in rows], alpha, power, delta)
           for k in range(n)] if n > 2 else []
    out = []
    for j, ((name, a, b), c) in enumerate(zip(rows, full, strict=True)):
        lo, hi = family_interval(a, b, alpha, m)
        held = [f[j] for f in loo]
        ps = [h["p_holm"] for h in held]
        out.append({"name": name, "level": 1.0 - alpha / m, "lo_family": lo, "hi_family": hi,
                    "equivalent_family": lo is not None and -delta < lo and hi < delta,
                    "loo_n": len(held), "loo_kept": sum(h["verdict"] == c["verdict"] for h in held),
                    "loo_verdicts": dict(Counter(h["verdict"] for h in held).most_common()),
                    "loo_p_holm_min": min(ps) if ps else None, "loo_p_holm_max": max(ps) if ps else None})
    return out


def _drop(values: Sequence, k: int) -> list:
    return [v for i, v in enumerate(values) if i != k]
