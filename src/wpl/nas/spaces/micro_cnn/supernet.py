"""The ENAS micro-CNN search space (Pham et al. 2018): architectures and the shared supernet.

A cell has two inputs (node 0 = the cell two back, node 1 = the previous cell) and ``B`` blocks
(nodes 2..B+1). Block ``b`` picks two earlier nodes and one op for each and sums the results. The
cell output concatenates the *loose ends* (blocks no other block reads) and projects them back to
the cell's channels (one 1×1 weight per block, so the projection's parameters do not depend on how
many loose ends there are). An architecture is a normal cell and a reduction cell.

Supernet: stem conv → ``cnn_num_modules`` stages of ``cnn_num_repeat_normal`` normal cells, with a
reduction cell (stride 2, next stage's channels) between stages → global average pool → linear.
Channels halve per stage from ``cnn_final_filter_size`` toward the input. Every (cell, block,
input node, op) has its own weights, shared by all architectures that make that choice. BatchNorm
has no affine parameters and no running statistics (batch statistics in train and eval alike, as
in the original), so the parameter set never depends on the mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wpl.nas.batchnorm import BatchStatNorm
from wpl.nas.task import JsonArch
from wpl.viz import INPUT_COLOR, JOIN_COLOR, Graph

Block = tuple[int, str, int, str]  # (input 1, op 1, input 2, op 2)


@dataclass(frozen=True)
class MicroArch(JsonArch):
    """A normal and a reduction cell, each a tuple of blocks ``(in1, op1, in2, op2)``."""

    normal: tuple[Block, ...]
    reduce: tuple[Block, ...]

    def __post_init__(self) -> None:
        if len(self.normal) != len(self.reduce) or not self.normal:
            raise ValueError(f"both cells need the same number (≥ 1) of blocks, got {len(self.normal)} and "
                             f"{len(self.reduce)}")
        for cell in (self.normal, self.reduce):
            for b, (i1, o1, i2, o2) in enumerate(cell):
                for i, o in ((i1, o1), (i2, o2)):
                    if not 0 <= i < b + 2:
                        raise ValueError(f"block {b}'s input must be in 0..{b + 1}, got {i}")
                    if o not in OPS:
                        raise ValueError(f"unknown op {o!r} in block {b}; known: {list(OPS)}")

    @property
    def num_blocks(self) -> int:
        """Blocks per cell B."""
        return len(self.normal)

    @staticmethod
    def loose_ends(cell: tuple[Block, ...]) -> list[int]:
        """Block indices (0-based) no other block of ``cell`` reads."""
        used = {i - 2 for i1, _, i2, _ in cell for i in (i1, i2) if i >= 2}
        return [b for b in range(len(cell)) if b not in used]

    def to_dict(self) -> dict:
        """Plain data: the canonical form."""
        return {"type": "micro_cnn", "normal": [list(b) for b in self.normal], "reduce": [list(b) for b in self.reduce]}


    @classmethod
    def from_dict(cls, d: dict) -> MicroArch:
        """Inverse of :meth:`to_dict` (op names are canonicalised)."""
        if d.get("type", "micro_cnn") != "micro_cnn":
            raise ValueError(f"not a micro-CNN architecture: type {d.get('type')!r}")

        def cell(rows) -> tuple[Block, ...]:
            return tuple((int(a), canonical_op(o1), int(c), canonical_op(o2)) for a, o1, c, o2 in rows)

        return cls(cell(d["normal"]), cell(d["reduce"]))



def micro_decisions(num_blocks: int, n_normal_ops: int, n_reduce_ops: int) -> list[int]:
    """Choice counts: per block (input 1, op 1, input 2, op 2), normal cell then reduction cell."""
    out = []
    for n_ops in (n_normal_ops, n_reduce_ops):
        for b in range(num_blocks):
            out += [b + 2, n_ops, b + 2, n_ops]
    return out


def decode_micro(actions: list[int], normal_ops: list[str], reduce_ops: list[str]) -> MicroArch:
    """Controller actions (see :func:`micro_decisions`) → architecture."""
    half = len(actions) // 2

    def cell(acts: list[int], ops: list[str]) -> tuple[Block, ...]:
        return tuple((acts[k], ops[acts[k + 1]], acts[k + 2], ops[acts[k + 3]]) for k in range(0, len(acts), 4))

    return MicroArch(cell(actions[:half], normal_ops), cell(actions[half:], reduce_ops))


def encode_micro(arch: MicroArch, normal_ops: list[str], reduce_ops: list[str]) -> list[int]:
    """Architecture → controller actions (inverse of :func:`decode_micro`)."""
    out = []
    for cell, ops in ((arch.normal, normal_ops), (arch.reduce, reduce_ops)):
        for i1, o1, i2, o2 in cell:
            out += [i1, ops.index(o1), i2, ops.index(o2)]
    return out


def micro_graph(arch: MicroArch) -> Graph:
    """The drawing of both cells: inputs, one node per op, the blocks' sums, the concat."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []
    for tag, cell in (("normal", arch.normal), ("reduce", arch.reduce)):
        p = tag[0]
        nodes[f"{p}in0"] = (f"{tag}\nx[t-1]", INPUT_COLOR)
        nodes[f"{p}in1"] = (f"{tag}\nx[t]", INPUT_COLOR)
        src = {0: f"{p}in0", 1: f"{p}in1"}
        for b, (i1, o1, i2, o2) in enumerate(cell):
            add = f"{p}b{b}"
            nodes[add] = (f"add\n(block {b})", "#e8e8e8")
            for slot, (i, op) in enumerate(((i1, o1), (i2, o2))):
                op_id = f"{p}b{b}op{slot}"
                nodes[op_id] = (OPS[op].label, OPS[op].color)
                edges += [(src[i], op_id), (op_id, add)]
            src[b + 2] = add
        nodes[f"{p}out"] = (f"{tag}\nconcat", JOIN_COLOR)
        edges += [(f"{p}b{b}", f"{p}out") for b in MicroArch.loose_ends(cell)]
    return nodes, edges


# ---- layers ------------------------------------------------------------------------------------
def _bn(c: int) -> nn.BatchNorm2d:
    return BatchStatNorm(c)


class ReluConvBn(nn.Sequential):
    """ReLU → 1×1 conv → BN: brings a cell input to the cell's channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), _bn(c_out))


class FactorizedReduce(nn.Module):
    """ReLU → two offset 1×1 stride-2 convs, concatenated → BN: halves the resolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = _bn(c_out)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = F.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.a(x), self.b(shifted)], dim=1))


SEP_CONVS = ("separable", "depthwise")


def _channels_last(x: Tensor) -> Tensor | None:
    """``x`` in channels-last memory, or None inside ``torch.func.vmap`` (which keeps the plain layout).

    On the CPU, pools and depthwise convolutions at these sizes run several times faster on
    channels-last tensors, and batch norm with few channels slower: the ops that gain convert, the
    rest stay in the usual layout (BENCHMARKS.md)."""
    try:
        return x.contiguous(memory_format=torch.channels_last)
    except RuntimeError:
        return None


class SepConv(nn.Module):
    """ReLU → depthwise k×k (stride) → pointwise 1×1 → BN (ENAS's separable conv); ``kind="depthwise"``
    drops the pointwise conv (the original code's op). The convolutions run in channels-last memory,
    the BN in the usual layout (×1.2 on a CPU shared batch of the README's CPU example)."""

    def __init__(self, c: int, k: int, stride: int, kind: str = "separable") -> None:
        super().__init__()
        if kind not in SEP_CONVS:
            raise ValueError(f"kind must be one of {', '.join(SEP_CONVS)}, got {kind!r}")
        self.dw = nn.Conv2d(c, c, k, stride=stride, padding=k // 2, groups=c, bias=False)
        self.pw = nn.Conv2d(c, c, 1, bias=False) if kind == "separable" else nn.Identity()
        self.bn = _bn(c)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        cl = _channels_last(x)
        if cl is None:
            return self.bn(self.pw(self.dw(F.relu(x))))
        return self.bn(self.pw(self.dw(F.relu(cl))).contiguous())


class Pool(nn.Module):
    """3×3 average or max pooling (stride), no parameters.

    Pools in channels-last memory (and returns the usual layout): on CPU that runs 5–10× faster
    than pooling NCHW tensors at these sizes, with the same forward values (the backward agrees to
    float rounding), ×1.17 on a whole shared batch of the README's CPU example (BENCHMARKS.md).
    """

    def __init__(self, kind: str, stride: int) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"pool kind must be 'avg' or 'max', got {kind!r}")
        self.kind, self.stride = kind, stride

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        cl = _channels_last(x)
        return self._pool(x) if cl is None else self._pool(cl).contiguous()

    def _pool(self, x: Tensor) -> Tensor:
        if self.kind == "avg":
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        return F.max_pool2d(x, 3, self.stride, 1)


@dataclass(frozen=True)
class OpSpec:
    """One op of the space: ``build(channels, stride, sep_conv)`` makes its module (``sep_conv`` is one of
    ``SEP_CONVS``, read by the convolutions only); ``label`` and ``color`` draw it."""

    build: Callable[[int, int, str], nn.Module]
    label: str
    color: str


def _identity(c: int, stride: int, sep_conv: str) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c)


# the one table of the space's ops: configs, the supernet, the drawings and the flag check read it
OPS: dict[str, OpSpec] = {
    "identity": OpSpec(_identity, "identity", "#ffa500"),
    "sep_conv_3x3": OpSpec(lambda c, s, sep: SepConv(c, 3, s, sep), "sep 3x3", "#ffc0cb"),
    "sep_conv_5x5": OpSpec(lambda c, s, sep: SepConv(c, 5, s, sep), "sep 5x5", "#ff8fa3"),
    "avg_pool_3x3": OpSpec(lambda c, s, sep: Pool("avg", s), "avg 3x3", "#43cd80"),
    "max_pool_3x3": OpSpec(lambda c, s, sep: Pool("max", s), "max 3x3", "#87ceeb"),
}


ALIASES = {  # the original's names → ours ("depthwise" there was depthwise-only; ours is separable)
    "avg3x3": "avg_pool_3x3", "max3x3": "max_pool_3x3", "depthwise_3x3": "sep_conv_3x3",
    "depthwise_5x5": "sep_conv_5x5", "sep3x3": "sep_conv_3x3", "sep5x5": "sep_conv_5x5",
}


def canonical_op(name: str) -> str:
    """Our name for an op (accepts the original's names); ValueError for unknown ones."""
    op = ALIASES.get(name.lower(), name.lower())
    if op not in OPS:
        raise ValueError(f"unknown CNN op {name!r}; known: {', '.join(OPS)} (or the original's "
                         f"{', '.join(list(ALIASES)[:4])})")
    return op


def make_op(name: str, c: int, stride: int, sep_conv: str = "separable") -> nn.Module:
    """The module of op ``name`` at ``c`` channels; stride 2 halves the resolution; ValueError for unknown names."""
    return OPS[canonical_op(name)].build(c, stride, sep_conv)


class Cell(nn.Module):
    """One cell position of the supernet: its input calibration, every op choice, the projection."""

    def __init__(self, c_pp: int, c_p: int, c: int, num_blocks: int, ops: list[str], reduction: bool,
                 reduction_prev: bool, sep_conv: str = "separable") -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReluConvBn(c_pp, c)
        self.pre1 = ReluConvBn(c_p, c)
        self.ops = nn.ModuleDict()
        for b in range(num_blocks):
            for i in range(b + 2):
                for op in ops:
                    self.ops[f"{b}_{i}_{op}"] = make_op(op, c, 2 if reduction and i < 2 else 1, sep_conv)
        self.proj = nn.ParameterList(nn.Parameter(torch.empty(c, c, 1, 1)) for _ in range(num_blocks))
        for w in self.proj:
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        self.bn = _bn(c)

    def forward(self, s0: Tensor, s1: Tensor, cell: tuple[Block, ...]) -> Tensor:  # noqa: D102
        nodes = [self.pre0(s0), self.pre1(s1)]
        for b, (i1, o1, i2, o2) in enumerate(cell):
            nodes.append(self.ops[f"{b}_{i1}_{o1}"](nodes[i1]) + self.ops[f"{b}_{i2}_{o2}"](nodes[i2]))
        loose = MicroArch.loose_ends(cell)
        x = torch.cat([nodes[b + 2] for b in loose], dim=1) if len(loose) > 1 else nodes[loose[0] + 2]
        w = torch.cat([self.proj[b] for b in loose], dim=1) if len(loose) > 1 else self.proj[loose[0]]
        return self.bn(F.conv2d(F.relu(x), w))


class SharedCNN(nn.Module):
    """The micro-CNN supernet (see the module docstring)."""

    def __init__(self, in_channels: int = 3, classes: int = 10, final_filters: int = 384, num_modules: int = 3,
                 num_repeat_normal: int = 6, num_blocks: int = 5, normal_ops: list[str] | None = None,
                 reduce_ops: list[str] | None = None, sep_conv: str = "separable") -> None:
        super().__init__()
        if sep_conv not in SEP_CONVS:
            raise ValueError(f"sep_conv must be one of {', '.join(SEP_CONVS)}, got {sep_conv!r}")
        normal_ops = [canonical_op(o) for o in normal_ops or OPS]
        reduce_ops = [canonical_op(o) for o in reduce_ops or OPS]
        if num_modules < 1 or num_repeat_normal < 0 or num_blocks < 1:
            raise ValueError(f"num_modules and num_blocks must be >= 1 and num_repeat_normal >= 0, got "
                             f"{num_modules}, {num_blocks} and {num_repeat_normal}")
        scale = 2 ** (num_modules - 1)
        if final_filters % scale or (final_filters // scale) % 2:
            raise ValueError(f"final_filters={final_filters} must be divisible by 2^num_modules = {2 * scale} "
                             "(channels halve per stage and reductions split channels in two)")
        chans = [final_filters // 2 ** (num_modules - 1 - s) for s in range(num_modules)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, chans[0], 3, padding=1, bias=False), _bn(chans[0]))
        self.kinds: list[str] = []
        self.cells = nn.ModuleList()
        c_pp = c_p = chans[0]
        reduction_prev = False
        for s, c in enumerate(chans):
            plan = ([True] if s > 0 else []) + [False] * num_repeat_normal
            for red in plan:
                self.cells.append(Cell(c_pp, c_p, c, num_blocks, reduce_ops if red else normal_ops, red,
                                       reduction_prev, sep_conv))
                self.kinds.append("reduce" if red else "normal")
                c_pp, c_p, reduction_prev = c_p, c, red
        if not self.cells:
            raise ValueError("the network has no cells: raise num_repeat_normal or num_modules")
        self.classifier = nn.Linear(c_p, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self._op_params = {
            (k, key): [f"cells.{k}.ops.{key}.{n}" for n, _ in op.named_parameters()]
            for k, cell in enumerate(self.cells) for key, op in cell.ops.items()
        }

    def forward(self, x: Tensor, arch: MicroArch) -> Tensor:
        """Images ``[N, C, H, W]`` → class logits ``[N, classes]``."""
        s0 = s1 = self.stem(x)
        for cell, kind in zip(self.cells, self.kinds):
            s0, s1 = s1, cell(s0, s1, arch.normal if kind == "normal" else arch.reduce)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def op_names(self, arch: MicroArch | None = None) -> list[str]:
        """Parameters of the ops ``arch`` uses (every op's when None): the weights WPL protects."""
        if arch is None:
            return [n for names in self._op_params.values() for n in names]
        out: list[str] = []
        for k, kind in enumerate(self.kinds):
            for b, (i1, o1, i2, o2) in enumerate(arch.normal if kind == "normal" else arch.reduce):
                for key in dict.fromkeys((f"{b}_{i1}_{o1}", f"{b}_{i2}_{o2}")):
                    out += self._op_params[(k, key)]
        return out

    def parameters_for(self, arch: MicroArch) -> list[str]:
        """Names of every parameter ``arch`` uses (the others get no gradient from it)."""
        always = [n for n, _ in self.named_parameters() if ".ops." not in n and ".proj." not in n]
        proj = [f"cells.{k}.proj.{b}" for k, kind in enumerate(self.kinds)
                for b in MicroArch.loose_ends(arch.normal if kind == "normal" else arch.reduce)]
        return always + proj + self.op_names(arch)
