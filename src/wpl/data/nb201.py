"""NAS-Bench-201's cell strings and its CIFAR-10 ground truth (embedded, ≈60 kB).

A cell has 4 nodes and 6 edges, each edge one of :data:`OPS`; the benchmark writes it as
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1's input edge; node 2's two; node 3's three;
``op~i`` = the operation applied to node i's output). :func:`all_archs` enumerates the 15,625
cells in the benchmark's canonical order (edges in string order, each over the sorted ops), the
order of the embedded columns: ``test_acc`` (CIFAR-10 test accuracy in %, after the benchmark's
200-epoch training; the ground truth, best 94.37), ``one_shot_supernet_acc`` and
``few_shot_supernet_acc`` (two published supernets' estimates). Sources: ``nb201_embedded``.
"""

from __future__ import annotations

import functools
import gzip
import itertools
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import WplError

OPS = ("avg_pool_3x3", "none", "nor_conv_1x1", "nor_conv_3x3", "skip_connect")  # sorted: the canonical order
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (from node, to node), in string order
COLUMNS = ("test_acc", "one_shot_supernet_acc", "few_shot_supernet_acc")
NUM_CELLS = len(OPS) ** len(EDGES)  # 15,625
BEST_ACC = 94.37


def arch_string(ops: tuple[str, ...]) -> str:
    """The benchmark's string of the cell whose 6 edges (in :data:`EDGES` order) carry ``ops``."""
    e = ops
    return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"


def parse_arch(text: str) -> tuple[str, ...]:
    """The 6 edge ops of a benchmark string; WplError saying what is wrong with a bad one."""
    nodes = text.strip().strip("+").split("+")
    if len(nodes) != 3:
        raise WplError(f"{text!r}: a NAS-Bench-201 cell has 3 node groups '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
    ops = []
    for j, group in enumerate(nodes, start=1):
        parts = [p for p in group.split("|") if p]
        if len(parts) != j:
            raise WplError(f"{text!r}: node {j} needs {j} input edges, got {len(parts)}")
        for i, part in enumerate(parts):
            op, _, src = part.partition("~")
            if src != str(i):
                raise WplError(f"{text!r}: node {j}'s edge {part!r} must read node {i} ('{op}~{i}')")
            if op not in OPS:
                raise WplError(f"{text!r}: unknown op {op!r}; NAS-Bench-201's ops are {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def arch_index(ops: tuple[str, ...]) -> int:
    """Position of the cell in the canonical order (:func:`all_archs`)."""
    k = 0
    for op in ops:
        k = k * len(OPS) + OPS.index(op)
    return k


@functools.lru_cache(maxsize=1)
def all_archs() -> list[str]:
    """All 15,625 cell strings in the canonical order."""
    return [arch_string(c) for c in itertools.product(OPS, repeat=len(EDGES))]


def isomorphism_key(ops: tuple[str, ...]) -> str:
    """What a cell computes, written out: two cells with the same key are isomorphic (the same network up
    to the order of a node's inputs) in the sense of NAS-Bench-201's own tools, which leaves the 6,466
    classes the literature counts. A node is its inputs' terms, sorted and joined by ``+``: ``(source)@op``,
    the source itself through ``skip_connect``, and ``#`` (zero) through ``none`` or from a source that is a
    single zero. (A term that is itself a sum stays one term, so this is not a full functional
    equivalence: flattening sums and dropping zeros would leave 5,273 classes.)"""
    op = dict(zip(EDGES, ops, strict=True))
    nodes = ["x"]
    for j in (1, 2, 3):
        terms = []
        for i in range(j):
            o, src = op[(i, j)], nodes[i]
            terms.append("#" if o == "none" or src == "#" else src if o == "skip_connect" else f"({src})@{o}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]


@functools.lru_cache(maxsize=1)
def unique_cells() -> np.ndarray:
    """The canonical index of one cell per isomorphism class (the first in canonical order): 6,466 cells."""
    first: dict[str, int] = {}
    for k, ops in enumerate(itertools.product(OPS, repeat=len(EDGES))):
        first.setdefault(isomorphism_key(ops), k)
    return np.array(sorted(first.values()), dtype=np.int64)


@dataclass(frozen=True)
class GroundTruth:
    """Per cell (canonical order): the true test accuracy and the two published estimates, in %."""

    test_acc: np.ndarray
    one_shot: np.ndarray
    few_shot: np.ndarray

    def lookup(self, arch: str) -> float:
        """The true test accuracy of the cell ``arch`` (a benchmark string)."""
        return float(self.test_acc[arch_index(parse_arch(arch))])

    def true_rank(self, acc: float) -> int:
        """1 + the number of cells with a strictly higher true accuracy (1 = the best cell)."""
        return int((self.test_acc > acc + 1e-9).sum()) + 1


@functools.lru_cache(maxsize=1)
def ground_truth() -> GroundTruth:
    """The embedded ground truth (cached)."""
    raw = gzip.decompress(resources.files("wpl.data.nb201_embedded").joinpath("cifar10.u16.gz").read_bytes())
    cols = np.frombuffer(raw, dtype="<u2").astype(np.float64).reshape(len(COLUMNS), NUM_CELLS) / 100.0
    return GroundTruth(*cols)
