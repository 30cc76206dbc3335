"""Paired comparisons with their power: Student's t (central and noncentral, computed here, no SciPy), the paired
t-test and its interval, Holm's step-down adjustment, the smallest effect a design detects, and a verdict computed
from those numbers.

The t distribution's tail is one integral over the chi distribution of the denominator,
``P(T > c) = E_s[Φ(nc − c·s)]`` with ``s = sqrt(χ²_df / df)``, evaluated on a fine grid in float64 (agrees with
SciPy to about 1e-9 over the ranges a study meets)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch

_GRID = 20_001


@lru_cache(maxsize=64)
def _chi_grid(df: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``s`` and trapezoid weights × density of ``sqrt(χ²_df / df)``."""
    top = 1.0 + 12.0 / math.sqrt(df) + (8.0 if df < 3 else 0.0)
    s = torch.linspace(0.0, top, _GRID, dtype=torch.float64)
    log_c = math.log(2.0) + (df / 2) * math.log(df / 2) - math.lgamma(df / 2)
    # in logs, so that a large df does not overflow s**(df - 1); xlogy(0, 0) = 0: df = 1 is finite at s = 0
    density = torch.exp(torch.xlogy(torch.tensor(df - 1.0, dtype=torch.float64), s) + log_c - df * s * s / 2)
    w = torch.full_like(s, top / (_GRID - 1))
    w[0] /= 2
    w[-1] /= 2
    return s, w * density


def t_sf(c: float, df: float, nc: float = 0.0) -> float:
    """``P(T > c)`` for Student's t with ``df`` degrees of freedom and noncentrality ``nc``."""
    if df <= 0:
        raise ValueError(f"df={df}: must be > 0")
    if math.isinf(c):
        return 0.0 if c > 0 else 1.0
    s, w = _chi_grid(df)
    return float((torch.special.ndtr(nc - c * s) * w).sum().clamp(0.0, 1.0))


@lru_cache(maxsize=1024)
def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (central), by bisection on :func:`t_sf` (remembered: a study's report
    asks for the same few quantiles hundreds of times)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q={q}: must be in (0, 1)")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > 1.0 - q:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf(mid, df) > 1.0 - q else (lo, mid)
    return (lo + hi) / 2


def _rejects(c: float, df: float, nc: float) -> float:
    """``P(|T| > c)`` for the noncentral t: the two-sided test's power at noncentrality ``nc``."""
    return t_sf(c, df, nc) + 1.0 - t_sf(-c, df, nc)


def power_two_sided(effect: float, sd: float, n: int, alpha: float) -> float:
    """Power of a two-sided one-sample (paired) t-test at level ``alpha`` with ``n`` pairs whose differences have
    standard deviation ``sd``, when the true mean difference is ``effect``."""
    if n < 2 or not sd > 0:
        return float("nan")
    df = n - 1
    return _rejects(t_ppf(1.0 - alpha / 2, df), df, effect * math.sqrt(n) / sd)


def detectable(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test at ``alpha`` with ``n`` pairs of standard
    deviation ``sd`` detects with probability ``power`` (NaN when it cannot be computed)."""
    if n < 2 or not sd > 0:
        return float("nan")
    df = n - 1
    c = t_ppf(1.0 - alpha / 2, df)
    lo, hi = 0.0, 1.0
    while _rejects(c, df, hi) < power:
        hi *= 2.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _rejects(c, df, mid) < power else (lo, mid)
    return (lo + hi) / 2 * sd / math.sqrt(n)


PAIRS_MOST = 10_000  # the most pairs pairs_needed searches; beyond it a design is reported as out of reach


def pairs_needed(effect: float, sd: float, alpha: float, power: float = 0.8, most: int = PAIRS_MOST) -> int | None:
    """The fewest pairs with which a two-sided paired t-test at ``alpha`` detects a true mean difference ``effect``
    with probability ``power``, when the differences have standard deviation ``sd`` (None when it cannot be
    computed or needs more than ``most``)."""
    if not sd > 0 or effect == 0:  # NaN fails sd > 0
        return None
    if power_two_sided(effect, sd, most, alpha) < power:
        return None
    lo, hi = 2, most  # power grows with n: the first n at or above ``power``, by bisection
    if power_two_sided(effect, sd, lo, alpha) >= power:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_two_sided(effect, sd, mid, alpha) >= power else (mid, hi)
    return hi


def holm(pvalues: Sequence[float], m: int | None = None) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given) over a family of ``m`` tests (default: the
    p-values that are not NaN; a NaN stays NaN)."""
    idx = sorted((i for i, p in enumerate(pvalues) if not math.isnan(p)), key=lambda i: pvalues[i])
    m = len(idx) if m is None else m
    out, running = [float("nan")] * len(pvalues), 0.0
    for k, i in enumerate(idx):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        out[i] = running
    return out


def paired(a: Sequence[float | None], b: Sequence[float | None], level: float = 0.95) -> dict:
    """``a − b`` paired by position (a pair with a missing or NaN value dropped): n, mean, sd, the ``level``
    t-interval ``lo``/``hi``, t, the two-sided p, and how many pairs went up and down."""
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)
         if x is not None and y is not None and not math.isnan(float(x)) and not math.isnan(float(y))]
    n = len(d)
    out = {"n": n, "mean": None, "sd": None, "lo": None, "hi": None, "t": None, "p": float("nan"),
           "up": sum(x > 0 for x in d), "down": sum(x < 0 for x in d), "diffs": d}
    if n == 0:
        return out
    mean = math.fsum(d) / n
    out["mean"] = mean
    if n < 2:
        return out
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    half = t_ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    t = mean / (sd / math.sqrt(n)) if sd > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    out.update(sd=sd, lo=mean - half, hi=mean + half, t=t,
               p=1.0 if t == 0 else min(1.0, 2.0 * t_sf(abs(t), n - 1)))
    return out


def verdict(c: dict, alpha: float, delta: float, power: float = 0.8) -> tuple[str, str]:
    """``(key, sentence)`` for a comparison ``c`` (:func:`paired`'s result with ``p_holm`` and ``detectable``): a
    higher or lower mean supported after Holm's correction; nominal only; no effect as large as ``delta`` (the
    interval inside ±delta); or not resolved, with the smallest effect the design detects with ``power``."""
    if c["mean"] is None or c["lo"] is None:
        return "undefined", f"undefined: {c['n']} pair(s)"
    if c["sd"] == 0 and c["mean"] == 0:
        return "identical", f"identical: every one of the {c['n']} pairs is equal"
    if c["p_holm"] < alpha:
        word = "higher" if c["mean"] > 0 else "lower"
        return word, f"{word}: supported after Holm correction (p = {c['p_holm']:.3g})"
    if c["p"] < alpha:
        return "nominal", (f"not supported after correction (p = {c['p']:.3g} alone, {c['p_holm']:.3g} after Holm)")
    if -delta < c["lo"] and c["hi"] < delta:
        return "equivalent", f"no effect as large as ±{delta:g}: the interval lies inside it"
    return "unresolved", f"not resolved: the design detects ≥ {c['detectable']:.3f} ({power:.0%} power)"


def compare_family(rows: list[tuple[str, Sequence, Sequence]], alpha: float = 0.05, power: float = 0.8,
                   delta: float | None = None) -> list[dict]:
    """Each ``(name, a, b)`` compared as :func:`paired` ``a − b``, with Holm's adjustment over the declared family
    (all ``m`` rows, an undefined one included), the smallest effect detectable at ``power`` under the family's
    strictest level (``alpha / m``), the power for ``delta`` there and the pairs that would give it ``power``, and
    the verdict."""
    out = [{"name": name, **paired(a, b)} for name, a, b in rows]
    m = len(out)
    for c, p in zip(out, holm([c["p"] for c in out], m), strict=True):
        sd = c["sd"] or 0.0
        c["p_holm"] = p
        c["detectable"] = detectable(sd, c["n"], alpha / m, power)
        if delta is not None:
            c["power_at_delta"] = power_two_sided(delta, sd, c["n"], alpha / m)
            c["pairs_needed"] = pairs_needed(delta, sd, alpha / m, power)
        c["verdict"], c["verdict_text"] = verdict(c, alpha, delta if delta is not None else 0.0, power)
    return out
