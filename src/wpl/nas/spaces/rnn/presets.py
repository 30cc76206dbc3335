"""Named recurrent cells (published ones written in this space, a baseline) and uniformly random ones."""

from __future__ import annotations

import random

from wpl.nas.space import Preset

from .arch import ACTIVATIONS, RnnArch


def _rnn(node0: str, nodes: list[tuple[str, int]]) -> RnnArch:
    """A cell from node 0's activation and ``(activation, parent)`` of nodes 1, 2, …"""
    return RnnArch((node0, *(a for a, _ in nodes)), tuple(p for _, p in nodes))



PRESETS: dict[str, Preset] = {
    "enas-ptb": Preset(
        _rnn("tanh", [("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3), ("relu", 4),
                      ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8)]),
        "the ENAS paper's PTB cell (Pham et al. 2018, Fig. 6), as written in DARTS's rnn/genotypes.py "
        "(github.com/quark0/darts, genotype ENAS, concat = its loose ends 2, 5, 6, 9, 10, 11)",
        "exact: 12 nodes, node 0 tanh (DARTS's initial node), output = mean of the loose ends"),
    "darts-v2-rnn": Preset(
        _rnn("tanh", [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                      ("tanh", 3), ("relu", 5)]),
        "DARTS (second order) PTB cell (Liu et al. 2019), genotype DARTS_V2 in github.com/quark0/darts "
        "rnn/genotypes.py",
        "wiring and activations exact (9 nodes); differs in the output: DARTS averages all 8 intermediate "
        "nodes, our space the loose ends only (4, 6, 7, 8); DARTS has no hidden-norm clip"),
    "identity-rnn": Preset(
        RnnArch(("identity",) * 12, tuple(range(11))),
        "a worst-case baseline: 12 identity nodes in a chain (every node a gated copy of the last)"),
}


def random_arch(seed: int, num_blocks: int | None = None) -> RnnArch:
    """A uniformly sampled cell: ``num_blocks`` nodes (default 12), each an activation and an earlier parent."""
    rng = random.Random(seed)
    b = num_blocks or 12
    return RnnArch(tuple(rng.choice(list(ACTIVATIONS)) for _ in range(b)), tuple(rng.randrange(j) for j in range(1, b)))
