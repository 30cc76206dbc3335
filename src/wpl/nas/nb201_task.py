"""The NAS-Bench-201 search task: the image task of :mod:`.cnn_task` on the NAS-Bench-201 supernet.

Data, rewards, the forgetting slice, the Fisher and evaluation are the micro-CNN task's; the space
(architectures in the benchmark's strings, one op per edge, the single-path supernet) is
:mod:`.nb201`'s. With ``--dataset=cifar10`` every derived cell can be looked up in the benchmark's
ground truth (``wpl.data.nb201``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..data.nb201 import OPS
from ..viz import Graph
from .cnn_task import CnnTask
from .config import SPACE_ESTIMATORS
from .nb201 import Nb201Arch, SharedNB201, decode_nb201, encode_nb201, nb201_decisions, nb201_graph


class Nb201Task(CnnTask):
    """A search over NAS-Bench-201 cells on images; the metric is the error rate."""

    kind = "nb201"
    fisher_estimators = SPACE_ESTIMATORS["nb201"]

    def _build_space(self, channels: int, classes: int) -> nn.Module:
        cfg = self.config
        self.ops = list(OPS)
        self.decisions = nb201_decisions(self.ops)
        self.reset_at: tuple[int, ...] = ()
        return SharedNB201(channels, classes, cfg.nb201_channels, cfg.nb201_cells, self.ops)

    def decode(self, actions: Sequence[int]) -> Nb201Arch:
        """Controller actions → architecture."""
        return decode_nb201(actions, self.ops)

    def encode(self, arch: Nb201Arch) -> list[int]:
        """Architecture → controller actions."""
        return encode_nb201(arch, self.ops)

    def arch_from_json(self, text: str) -> Nb201Arch:
        """Parse an architecture's JSON."""
        return Nb201Arch.from_json(text)

    def graph(self, arch: Nb201Arch) -> Graph:
        """Nodes and edges of the drawing."""
        return nb201_graph(arch)
