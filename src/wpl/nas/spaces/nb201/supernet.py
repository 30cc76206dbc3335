"""The NAS-Bench-201 search space: architectures (the benchmark's own strings) and the shared supernet.

A cell has 4 nodes; node ``j`` sums ``op(node i)`` over every earlier node ``i`` (6 edges), each
op one of ``none`` (the edge is absent), ``skip_connect``, ``nor_conv_1x1`` / ``nor_conv_3x3``
(ReLU → conv → BN) and ``avg_pool_3x3``; the cell's output is node 3. The macro network (as the
benchmark's): a 3×3 stem conv to ``C`` channels, ``N`` cells, a residual reduction block to ``2C``,
``N`` cells, one to ``4C``, ``N`` cells, BN → ReLU, global pooling, a linear head.

The supernet holds one set of weights per (cell, edge, op) and runs one op per edge (single path).
Its batch norms have no affine parameters and keep no running statistics. How an architecture is
scored is a named choice (``--nb201_bn_recal``): with each evaluation batch's own statistics (0, the
usual weight-sharing choice), or with statistics recalibrated for that architecture over K fixed
training batches (:func:`recalibrated`), then held fixed while it is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wpl.data.nb201 import EDGES, OPS, arch_string, parse_arch
from wpl.dist import SINGLE, Dist
from wpl.nas.batchnorm import batch_norm
from wpl.nas.task import JsonArch
from wpl.viz import INPUT_COLOR, JOIN_COLOR, Graph

COLORS = {"none": "#dddddd", "skip_connect": "#ffa500", "nor_conv_1x1": "#ffc0cb", "nor_conv_3x3": "#ff8fa3",
          "avg_pool_3x3": "#43cd80"}
LABELS = {"none": "none", "skip_connect": "skip", "nor_conv_1x1": "conv 1x1", "nor_conv_3x3": "conv 3x3",
          "avg_pool_3x3": "avg 3x3"}


@dataclass(frozen=True)
class Nb201Arch(JsonArch):
    """One cell: the op of each of the 6 edges, in the benchmark string's order (``EDGES``)."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise ValueError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(self.ops)} ops")
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise ValueError(f"unknown op {unknown[0]!r}; NAS-Bench-201's ops are {', '.join(OPS)}")

    @property
    def string(self) -> str:
        """The benchmark's string form (its ground truth's key)."""
        return arch_string(self.ops)

    def to_dict(self) -> dict:
        """Plain data: the canonical form."""
        return {"type": "nb201", "arch": self.string}


    @classmethod
    def from_string(cls, text: str) -> Nb201Arch:
        """Parse the benchmark's string (WplError naming what is wrong)."""
        return cls(parse_arch(text))

    @classmethod
    def from_dict(cls, d: dict) -> Nb201Arch:
        """Inverse of :meth:`to_dict`."""
        if d.get("type", "nb201") != "nb201":
            raise ValueError(f"not a NAS-Bench-201 architecture: type {d.get('type')!r}")
        return cls.from_string(d["arch"])



def nb201_decisions(ops: Sequence[str] = OPS) -> list[int]:
    """Choice counts of the controller's decisions: one op per edge."""
    return [len(ops)] * len(EDGES)


def decode_nb201(actions: Sequence[int], ops: Sequence[str] = OPS) -> Nb201Arch:
    """Controller actions → architecture."""
    return Nb201Arch(tuple(ops[int(a)] for a in actions))


def encode_nb201(arch: Nb201Arch, ops: Sequence[str] = OPS) -> list[int]:
    """Architecture → controller actions."""
    return [list(ops).index(o) for o in arch.ops]


def nb201_graph(arch: Nb201Arch) -> Graph:
    """The drawing: the cell's 4 nodes and one box per present edge's op."""
    nodes = {"n0": ("node 0\n(input)", INPUT_COLOR), "n3": ("node 3\n(output)", JOIN_COLOR)}
    nodes.update({f"n{j}": (f"node {j}", "#e8e8e8") for j in (1, 2)})
    edges = []
    for k, ((i, j), op) in enumerate(zip(EDGES, arch.ops, strict=True)):
        if op == "none":
            continue
        nodes[f"e{k}"] = (LABELS[op], COLORS[op])
        edges += [(f"n{i}", f"e{k}"), (f"e{k}", f"n{j}")]
    return nodes, edges


# ---- layers ------------------------------------------------------------------------------------
class SupernetBN(nn.Module):
    """Batch norm without buffers: batch statistics, unless :func:`recalibrated` has fixed this layer's
    statistics for the architecture being evaluated (eval mode only); a learned scale and shift when
    ``affine``."""

    eps = 1e-5

    def __init__(self, c: int, affine: bool = False) -> None:
        super().__init__()
        self.num_features = c
        self.weight = nn.Parameter(torch.ones(c)) if affine else None
        self.bias = nn.Parameter(torch.zeros(c)) if affine else None
        self.dist: Dist = SINGLE  # data-parallel: batch statistics over every rank (batchnorm.use_dist)
        self.fixed: tuple[Tensor, Tensor] | None = None
        self._acc: list[Tensor] | None = None  # [count, sum, sum of squares] while recalibrating

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        y = self._normalise(x)
        if self.weight is None:
            return y
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def _normalise(self, x: Tensor) -> Tensor:
        if self._acc is not None:  # recalibrating: every rank sees the same whole batches, so no collective
            x64 = x.detach().double()
            self._acc[0] += x.shape[0] * x.shape[2] * x.shape[3]
            self._acc[1] += x64.sum((0, 2, 3))
            self._acc[2] += (x64 * x64).sum((0, 2, 3))
            return F.batch_norm(x, None, None, training=True, eps=self.eps)
        if self.fixed is not None and not self.training:
            return F.batch_norm(x, self.fixed[0], self.fixed[1], training=False, eps=self.eps)
        return batch_norm(x, self.eps, self.dist)

    def begin(self, device: torch.device) -> None:
        """Start accumulating the statistics of the inputs this layer sees."""
        self.fixed = None
        self._acc = [torch.zeros((), dtype=torch.float64, device=device),
                     torch.zeros(self.num_features, dtype=torch.float64, device=device),
                     torch.zeros(self.num_features, dtype=torch.float64, device=device)]

    def end(self) -> None:
        """Fix the accumulated mean and (biased) variance; a layer that saw nothing keeps batch statistics."""
        n, s, sq = self._acc
        self._acc = None
        if float(n) > 0:
            mean = s / n
            self.fixed = (mean.float(), (sq / n - mean * mean).clamp_min(0).float())


@contextmanager
def recalibrated(model: nn.Module, arch, batches: Iterable[Tensor]) -> Iterator[None]:
    """Inside: every :class:`SupernetBN` of ``model`` normalises with the statistics ``arch`` produced
    over ``batches`` (inputs, already normalised) — the per-architecture BN recalibration."""
    layers = [m for m in model.modules() if isinstance(m, SupernetBN)]
    device = next(model.parameters()).device
    for m in layers:
        m.begin(device)
    try:
        with torch.no_grad():
            for x in batches:
                model(x, arch)
        for m in layers:
            m.end()
        yield
    finally:
        for m in layers:
            m.fixed, m._acc = None, None


class ReluConvBn(nn.Sequential):
    """ReLU → k×k conv (stride) → BN."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, affine: bool = False) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), SupernetBN(c_out, affine))


class ResBlock(nn.Module):
    """The benchmark's residual reduction block: two 3×3 ReLU-conv-BN (the first stride 2) plus a
    pooled 1×1 shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool = False) -> None:
        super().__init__()
        self.a = ReluConvBn(c_in, c_out, 3, 2, affine)
        self.b = ReluConvBn(c_out, c_out, 3, 1, affine)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.b(self.a(x)) + self.shortcut(x)


class AvgPool3x3(nn.Module):
    """The 3×3 mean over each pixel's neighbours inside the image (``nn.AvgPool2d(3, 1, 1,
    count_include_pad=False)``), as two separable sums of shifted slices divided by the neighbour counts: the same
    values to float rounding, 3–6× faster than PyTorch's CPU pooling kernel forward and backward (the op was a
    fifth of a C = 8 supernet's step). No parameters or buffers: state dicts are unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[tuple, Tensor] = {}

    @staticmethod
    def _sum3(x: Tensor) -> Tensor:
        p = F.pad(x, (1, 1, 1, 1))
        h = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
        return h[..., :-2, :] + h[..., 1:-1, :] + h[..., 2:, :]

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        if key not in self._counts:
            self._counts[key] = self._sum3(torch.ones(1, 1, *key[:2], device=x.device, dtype=x.dtype))
        return self._sum3(x) / self._counts[key]


def make_op(name: str, c: int) -> nn.Module | None:
    """The module of op ``name`` at ``c`` channels (None for ``none``: the edge adds nothing)."""
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        return ReluConvBn(c, c, int(name[-1]))
    raise ValueError(f"unknown op {name!r}; NAS-Bench-201's ops are {', '.join(OPS)}")


# node j's value depends on the ops of the edges into nodes ≤ j: a prefix of the cell's ops (EDGES is sorted by
# target node), this long
NODE_DEPS = tuple(sum(1 for _, jj in EDGES if jj <= j) for j in range(4))


class CellMemo:
    """The parts of one cell's computation on one input that several architectures share: each edge's term,
    keyed by the edge, its op and the ops its source node depends on. Architectures scored in sorted order
    (:func:`sorted` of their ``ops``) share every prefix they can; an entry whose prefix the current
    architecture does not have is dropped, so the memo holds one group's terms at a time."""

    def __init__(self) -> None:
        self.entries: dict[tuple, Tensor] = {}

    def keep(self, ops: tuple[str, ...]) -> None:
        """Drop the entries ``ops`` cannot use."""
        for key in [k for k in self.entries if k[-1] != ops[:len(k[-1])]]:
            del self.entries[key]

    def get(self, key: tuple, deps: tuple[str, ...], make) -> Tensor:
        """The entry ``key`` under prefix ``deps``, made by ``make()`` the first time."""
        full = (*key, deps)
        if full not in self.entries:
            self.entries[full] = make()
        return self.entries[full]


class SharedCell(nn.Module):
    """One cell position: every (edge, op)'s module; ``forward(x, arch)`` runs the chosen op per edge."""

    def __init__(self, c: int, ops: Sequence[str]) -> None:
        super().__init__()
        self.ops = nn.ModuleDict()
        for k in range(len(EDGES)):
            for op in ops:
                module = make_op(op, c)
                if module is not None:
                    self.ops[f"{k}_{op}"] = module

    def forward(self, x: Tensor, arch: Nb201Arch, memo: CellMemo | None = None) -> Tensor:
        """Node 3 of ``arch``'s cell on ``x``; with a ``memo`` (one per input, :class:`CellMemo`), the parts
        an earlier architecture on the same input shares with this one are reused, not recomputed (the
        same values bit for bit: the same operations on the same tensors, summed in the same order)."""
        if memo is not None:
            memo.keep(arch.ops)
        nodes = [x]
        for j in (1, 2, 3):
            if memo is None or j == 3:  # node 3 depends on every op: no other architecture shares it
                nodes.append(self._node(nodes, j, arch, memo))
            else:
                nodes.append(memo.get(("node", j), arch.ops[:NODE_DEPS[j]],
                                      lambda j=j: self._node(nodes, j, arch, memo)))
        return nodes[3]

    def _node(self, nodes: list[Tensor], j: int, arch: Nb201Arch, memo: CellMemo | None) -> Tensor:
        """Node ``j``: the sum of its in-edges' ops on the earlier nodes, in edge order (zeros if none)."""
        total = None
        for k, ((i, jj), op) in enumerate(zip(EDGES, arch.ops, strict=True)):
            if jj != j or op == "none":
                continue
            module = self.ops[f"{k}_{op}"]
            if memo is None:
                y = module(nodes[i])
            else:
                y = memo.get(("edge", k, op), arch.ops[:NODE_DEPS[i]], lambda m=module, h=nodes[i]: m(h))
            total = y if total is None else total + y
        return torch.zeros_like(nodes[0]) if total is None else total


INITS = ("kaiming", "default")


class SharedNB201(nn.Module):
    """The NAS-Bench-201 supernet (see the module docstring): ``C`` = ``channels``, ``N`` = ``cells``.

    ``outer_affine``: the stem's, reduction blocks' and head's batch norms learn a scale and shift (the
    cells' ops stay non-affine, as the benchmark's). ``init``: ``kaiming`` (normal, fan-out) or PyTorch's
    ``default`` for the convolutions.
    """

    def __init__(self, in_channels: int = 3, classes: int = 10, channels: int = 16, cells: int = 5,
                 ops: Sequence[str] = OPS, outer_affine: bool = False, init: str = "default") -> None:
        super().__init__()
        if channels < 1 or cells < 1:
            raise ValueError(f"channels and cells must be >= 1, got {channels} and {cells}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  SupernetBN(channels, outer_affine))
        self.layers = nn.ModuleList()
        c = channels
        for stage in range(3):
            if stage > 0:
                self.layers.append(ResBlock(c, 2 * c, outer_affine))
                c *= 2
            self.layers.extend(SharedCell(c, ops) for _ in range(cells))
        self.head_bn = SupernetBN(c, outer_affine)
        self.classifier = nn.Linear(c, classes)
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor, arch: Nb201Arch, memo: CellMemo | None = None) -> Tensor:
        """Images ``[N, C, H, W]`` → class logits. ``memo`` (one per input ``x``): the stem's output and the
        first cell's shared parts are reused across the architectures scored on ``x`` (:class:`CellMemo`)."""
        x = self.stem(x) if memo is None else memo.get(("stem",), (), lambda: self.stem(x))
        for li, layer in enumerate(self.layers):
            if isinstance(layer, SharedCell):
                x = layer(x, arch, memo if li == 0 else None)
            else:
                x = layer(x)
        x = F.relu(self.head_bn(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def op_names(self, arch: Nb201Arch | None = None) -> list[str]:
        """Parameters of the ops ``arch`` uses (every op's when None): the weights WPL protects."""
        out = []
        for li, layer in enumerate(self.layers):
            if not isinstance(layer, SharedCell):
                continue
            for key, module in layer.ops.items():
                k, op = key.split("_", 1)
                if arch is None or arch.ops[int(k)] == op:
                    out += [f"layers.{li}.ops.{key}.{n}" for n, _ in module.named_parameters()]
        return out

    def parameters_for(self, arch: Nb201Arch) -> list[str]:
        """Names of every parameter ``arch`` uses (the others get no gradient from it)."""
        always = [n for n, _ in self.named_parameters() if ".ops." not in n]
        return always + self.op_names(arch)
