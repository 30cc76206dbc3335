"""Named micro-CNN cells (ENAS's CIFAR-10 cells, a baseline) and uniformly random ones."""

from __future__ import annotations

import random

from wpl.nas.space import Preset

from .supernet import OPS, MicroArch

# ENAS's micro op indices (melodyguan/enas, micro_child.py): 0 sep 3x3, 1 sep 5x5, 2 avg pool, 3 max pool, 4 identity
_ENAS_OPS = ["sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"]


def _enas_micro(arc: str) -> tuple[tuple[int, str, int, str], ...]:
    """ENAS's ``fixed_arc`` string for one cell: per block ``x_id x_op y_id y_op``."""
    v = [int(t) for t in arc.split()]
    return tuple((v[k], _ENAS_OPS[v[k + 1]], v[k + 2], _ENAS_OPS[v[k + 3]]) for k in range(0, len(v), 4))



PRESETS: dict[str, Preset] = {
    "enas-cifar10": Preset(
        MicroArch(_enas_micro("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1"),
                  _enas_micro("1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")),
        "the ENAS paper's CIFAR-10 micro cells (Pham et al. 2018, Fig. 7): fixed_arc of "
        "github.com/melodyguan/enas scripts/cifar10_micro_final.sh",
        "exact: B = 5, ops sep 3x3/5x5, avg/max pool 3x3, identity; output = concat of the loose ends"),
    "identity-cifar10": Preset(
        MicroArch(((0, "identity", 1, "identity"),) * 5, ((0, "identity", 1, "identity"),) * 5),
        "a worst-case baseline: every block adds its two inputs unchanged (reduction: factorized reduce)"),
}


def random_arch(seed: int, num_blocks: int | None = None) -> MicroArch:
    """A uniformly sampled normal and reduction cell of ``num_blocks`` blocks (default 5) over the space's ops."""
    rng = random.Random(seed)
    b = num_blocks or 5

    def cell() -> tuple[tuple[int, str, int, str], ...]:
        return tuple((rng.randrange(k + 2), rng.choice(list(OPS)), rng.randrange(k + 2), rng.choice(list(OPS)))
                     for k in range(b))

    return MicroArch(cell(), cell())
