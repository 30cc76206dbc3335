"""Ranking metrics against hand-computed values and a brute-force τ-b; the NAS-Bench-201 strings and
ground truth; the published supernets' τ reproduced from the embedded file."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from wpl.cli import main
from wpl.data.nb201 import NUM_CELLS, OPS, all_archs, arch_index, arch_string, ground_truth, parse_arch
from wpl.errors import WplError
from wpl.nas.rank import kendall_tau, precision_at, rank_metrics, sparse_kendall_tau, spearman, tau_top


def _brute_tau_b(x, y) -> float:
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tx) * (conc + disc + ty))


def test_kendall_tau_by_hand() -> None:
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # x = 1,2,3; y = 1,3,2: 2 concordant, 1 discordant → 1/3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # ties: x = 1,1,2; y = 1,2,3 → the pair tied in x counts for y only: 2 / sqrt(2·3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_kendall_tau_matches_brute_force_with_ties() -> None:
    rng = random.Random(0)
    checked = 0
    for _ in range(40):
        n = rng.randint(2, 40)
        x = [rng.randint(0, 6) for _ in range(n)]
        y = [rng.randint(0, 6) for _ in range(n)]
        if len(set(x)) > 1 and len(set(y)) > 1:
            assert kendall_tau(x, y) == pytest.approx(_brute_tau_b(np.array(x), np.array(y)), abs=1e-12)
            checked += 1
    assert checked > 20


def test_spearman_and_the_rest_by_hand() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    # average ranks for ties: x ranks 1.5, 1.5, 3 against 1, 2, 3 → ρ = √3 / 2
    assert spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    assert sparse_kendall_tau([90.04, 90.01, 80.0], [1, 2, 3]) == kendall_tau([90.0, 90.0, 80.0], [1, 2, 3])
    score, truth = list(range(20)), list(range(20))[::-1]  # exactly reversed
    assert precision_at(score, truth, 0.1) == 0.0 and precision_at(truth, truth, 0.1) == 1.0
    assert tau_top(truth, truth, 0.5) == 1.0
    m = rank_metrics([0.1, 0.9, 0.5, 0.4], [60.0, 90.0, 70.0, 80.0])
    assert m["top1_true_acc"] == 90.0 and m["num_archs"] == 4
    with pytest.raises(ValueError, match="one value per cell"):
        rank_metrics([1.0], [1.0])


def test_every_cell_string_round_trips() -> None:
    archs = all_archs()
    assert len(archs) == NUM_CELLS == 15625 and len(set(archs)) == NUM_CELLS
    for k, a in enumerate(archs):
        ops = parse_arch(a)
        assert arch_string(ops) == a and arch_index(ops) == k
    assert set(parse_arch(archs[-1])) <= set(OPS)


@pytest.mark.parametrize("bad, message", [
    ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_7x7'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 input edges"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read node 0"),
    ("nonsense", "3 node groups"),
])
def test_bad_cell_strings(bad: str, message: str) -> None:
    with pytest.raises(WplError, match=message):
        parse_arch(bad)


def test_ground_truth_lookup_and_published_taus() -> None:
    g = ground_truth()
    assert g.test_acc.max() == 94.37 and g.true_rank(94.37) == 1
    assert g.lookup("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|"
                    "nor_conv_3x3~2|") == 80.08
    # the file's README: one-shot τ 0.485, few-shot τ 0.551 against the truth over all cells
    assert kendall_tau(g.one_shot, g.test_acc) == pytest.approx(0.485, abs=5e-4)
    assert kendall_tau(g.few_shot, g.test_acc) == pytest.approx(0.551, abs=5e-4)


def test_rank_reference_command(tmp_path, capsys) -> None:
    out = tmp_path / "ref.json"
    assert main(["rank", "--reference=true", "--all=true", f"--output={out}"]) == 0
    text = capsys.readouterr().out
    assert "| one-shot supernet | 15625 | 0.485 |" in text and "| few-shot supernet | 15625 | 0.551 |" in text
    assert main(["rank", "--reference=true", "--num_archs=200", "--seed=1"]) == 0
    assert "| one-shot supernet | 200 |" in capsys.readouterr().out
    assert main(["rank", "--reference=true", "--num_archs=20000"]) == 1
    assert "--num_archs=20000: at most 15625" in capsys.readouterr().err
