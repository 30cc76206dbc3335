"""The NAS-Bench-201 search task: :class:`~wpl.nas.image_task.ImageTask` on the NAS-Bench-201 supernet.

Data, rewards, the forgetting slice, the Fisher and evaluation are the image task's; the space
(architectures in the benchmark's strings, one op per edge, the single-path supernet) is
:mod:`.supernet`'s. With ``--dataset=cifar10`` every derived cell can be looked up in the benchmark's
ground truth (``wpl.data.nb201``). With ``--nb201_bn_recal=K`` every evaluation of an architecture
(rewards, derive, forgetting, ranking) first recalibrates the batch norms over the first K training
batches, unaugmented (:func:`.supernet.recalibrated`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from wpl.data.augment import normalise
from wpl.data.nb201 import OPS, all_archs, unique_cells
from wpl.nas.image_task import ImageTask

from .supernet import Nb201Arch, SharedNB201, decode_nb201, encode_nb201, nb201_decisions, recalibrated


class Nb201Task(ImageTask):
    """A search over NAS-Bench-201 cells on images; the metric is the error rate."""

    kind = "nb201"
    arch_type = Nb201Arch

    def _build_space(self, channels: int, classes: int) -> nn.Module:
        cfg = self.config
        self.ops = list(OPS)
        self.decisions = nb201_decisions(self.ops)
        self.reset_at: tuple[int, ...] = ()
        self.bn_recal = cfg.nb201_bn_recal  # wpl rank may score with another choice
        self.cell_pool = unique_cells() if cfg.nb201_unique else None  # what random sampling draws from
        return SharedNB201(channels, classes, cfg.nb201_channels, cfg.nb201_cells, self.ops,
                           outer_affine=cfg.nb201_outer_affine, init=cfg.nb201_init)

    def decode(self, actions: Sequence[int]) -> Nb201Arch:
        """Controller actions → architecture."""
        return decode_nb201(actions, self.ops)

    def encode(self, arch: Nb201Arch) -> list[int]:
        """Architecture → controller actions."""
        return encode_nb201(arch, self.ops)

    def actions_of_index(self, k: int) -> list[int]:
        """The actions of the benchmark's cell with canonical index ``k``."""
        return self.encode(Nb201Arch.from_string(all_archs()[k]))

    def random_actions(self, n: int, generator: torch.Generator) -> list[list[int]] | None:
        """With ``--nb201_unique``: ``n`` cells drawn uniformly over the non-isomorphic ones; else None (the
        loop's uniform draw over every decision)."""
        if self.cell_pool is None:
            return None
        picks = self.cell_pool[torch.randint(0, len(self.cell_pool), (n,), generator=generator).numpy()]
        return [self.actions_of_index(int(k)) for k in picks]


    def _stats(self, x_all: Tensor, y_all: Tensor, arch: Nb201Arch, start: int, n_batches: int | None,
               bs: int) -> tuple[float, float]:
        """The image task's evaluation, inside a BN recalibration for ``arch`` when ``bn_recal`` > 0."""
        if not self.bn_recal:
            return super()._stats(x_all, y_all, arch, start, n_batches, bs)
        tb = self.global_batch  # every rank recalibrates on the same whole batches
        batches = (normalise(self.train_x[i * tb:(i + 1) * tb], self.data.mean, self.data.std)
                   for i in range(min(self.bn_recal, max(len(self.train_x) // tb, 1))))
        with recalibrated(self.supernet, arch, batches):
            return super()._stats(x_all, y_all, arch, start, n_batches, bs)
