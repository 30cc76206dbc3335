"""The NAS-Bench-201 space's search settings (its flags)."""

from __future__ import annotations

from dataclasses import dataclass

from wpl.errors import ConfigError
from wpl.fields import at_least, flag
from wpl.nas.config import ImageConfig

from .supernet import INITS as NB201_INITS


@dataclass(frozen=True)
class Nb201Config(ImageConfig):
    """The NAS-Bench-201 space's sizes (the benchmark's own: C = 16, N = 5) and its supernet's choices."""

    nb201_channels: int = flag(16, "nb201: channels C of the first stage (2C, 4C after the reductions)")
    nb201_cells: int = flag(5, "nb201: cells N per stage")
    nb201_bn_recal: int = flag(0, "nb201: score each architecture with batch-norm statistics recalibrated over K fixed "
        "training batches (0: each evaluation batch's own statistics)")
    nb201_outer_affine: bool = flag(False, "nb201: the stem's, reduction blocks' and head's batch norms learn a scale "
        "and shift (the cells' ops never do; ranked worse in BENCHMARKS.md's bisection)")
    nb201_init: str = flag("default", "nb201: the convolutions' initialisation, PyTorch's default or kaiming (normal, "
        "fan-out; ranks far worse at CPU budgets, BENCHMARKS.md)", choices=NB201_INITS)
    nb201_unique: bool = flag(False, "nb201 with --search_strategy=random: sample (train and derive) only the "
        "benchmark's 6,466 non-isomorphic cells, uniformly over isomorphism classes")

    rank_every: int = flag(0, "nb201: every N epochs, rank --rank_archs fixed cells against the ground truth "
        "(metrics.jsonl 'rank' events, TensorBoard rank/*; 0: never)")
    rank_archs: int = flag(100, "nb201: the cells of that fixed, seeded uniform sample")
    rank_batches: int = flag(4, "nb201: validation batches (of --rank_batch_size) each of them is scored on")
    rank_batch_size: int = flag(250, "nb201: images per ranking batch (batch-statistics BN: larger is steadier)")

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, "nb201_channels", "nb201_cells")
        at_least(self, 0, "nb201_bn_recal")
        at_least(self, 0, "rank_every")
        at_least(self, 1, "rank_batches", "rank_batch_size")
        if not 2 <= self.rank_archs <= 15625:
            raise ConfigError("rank_archs", self.rank_archs, "must be in 2..15625 (NAS-Bench-201's cells)")
