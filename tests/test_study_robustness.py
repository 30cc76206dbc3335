"""The report's robustness section: the family-level interval, and the verdicts when one seed is left out."""

from __future__ import annotations

import math

import pytest

from wpl.nas.spaces.nb201.study.robustness import robustness
from wpl.stats import compare_family

STEADY = [0.1, 0.11, 0.09, 0.1, 0.1]     # mean 0.1, sd 0.00707: higher whichever seed is left out
HINGED = [0.1, 0.12, 0.08, 0.11, -0.5]   # unresolved with seed 5, higher without it


def _rob(rows, alpha=0.1, delta=0.2):
    return robustness(rows, compare_family(rows, alpha, 0.8, delta), alpha, 0.8, delta)


def test_the_family_interval_is_the_t_interval_at_one_minus_alpha_over_m() -> None:
    # alpha 0.1 over a family of 2: the 95% interval, t(4) = 2.776445 (tabled)
    s, h = _rob([("A", STEADY, [0.0] * 5), ("B", HINGED, [0.0] * 5)])
    half = 2.776445 * math.sqrt(0.0002 / 4) / math.sqrt(5)
    assert (s["lo_family"], s["hi_family"]) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)
    assert s["level"] == pytest.approx(0.95)
    assert s["equivalent_family"]  # inside ±0.2
    assert not h["equivalent_family"]  # the outlier makes it wide


def test_leaving_one_seed_out_counts_the_verdicts_it_keeps() -> None:
    full = compare_family([("A", STEADY, [0.0] * 5), ("B", HINGED, [0.0] * 5)], 0.1, 0.8, 0.2)
    assert [c["verdict"] for c in full] == ["higher", "unresolved"]
    s, h = _rob([("A", STEADY, [0.0] * 5), ("B", HINGED, [0.0] * 5)])
    assert (s["loo_n"], s["loo_kept"], s["loo_verdicts"]) == (5, 5, {"higher": 5})
    assert (h["loo_n"], h["loo_kept"]) == (5, 4)
    assert h["loo_verdicts"] == {"unresolved": 4, "higher": 1}  # only leaving out seed 5 resolves it
    assert h["loo_p_holm_min"] < 0.1 <= h["loo_p_holm_max"]


def test_two_seeds_are_too_few_to_leave_one_out() -> None:
    rows = [("A", [0.1, 0.2], [0.0, 0.0])]
    (r,) = _rob(rows)
    assert (r["loo_n"], r["loo_kept"], r["loo_p_holm_min"]) == (0, 0, None)
