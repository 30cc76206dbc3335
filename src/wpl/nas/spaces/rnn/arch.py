"""The ENAS recurrent-cell search space: architectures (genotypes), their encoding and drawing.

A cell has ``B`` nodes. Node 0 reads ``x[t]`` and ``h[t−1]``; node ``j ≥ 1`` reads one earlier node
(its *parent*). Every node is a highway unit::

    c = σ(W_c · h_in),   h = c ⊙ f(W_h · h_in) + (1 − c) ⊙ h_in

with ``f`` the node's activation. The cell output is the mean of the loose ends (nodes nobody reads)
and is also the next hidden state (as in the ENAS paper). Each edge ``i → j`` owns one weight of
shape ``[2H, H]`` holding ``W_c`` and ``W_h`` stacked, so an edge costs one matrix product; the
children of one parent are computed in a single product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from wpl.nas.task import JsonArch
from wpl.viz import INPUT_COLOR, JOIN_COLOR, STATE_COLOR, Graph

# the one list of the space's activations (and their colours in drawings)
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda t: t,
    "sigmoid": torch.sigmoid,
}
COLORS = {"tanh": "#ffff66", "relu": "#ffc0cb", "identity": "#ffa500", "sigmoid": "#adff2f"}
HIDDEN_NORM_CLIP = 25.0


def check_activation(name: str) -> str:
    """The canonical (lower-case) name of an activation (``ReLU`` = ``relu``); ValueError for unknown ones."""
    if name.lower() not in ACTIVATIONS:
        raise ValueError(f"unknown RNN activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return name.lower()


@dataclass(frozen=True)
class RnnArch(JsonArch):
    """One recurrent cell: ``activations[j]`` of node j, ``parents[j-1]`` = the node j reads (< j)."""

    activations: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        b = len(self.activations)
        if b < 1 or len(self.parents) != b - 1:
            raise ValueError(f"an RNN cell with {b} nodes needs {max(b - 1, 0)} parents, got {len(self.parents)}")
        for j, p in enumerate(self.parents, start=1):
            if not 0 <= p < j:
                raise ValueError(f"node {j}'s parent must be in 0..{j - 1}, got {p}")
        unknown = [a for a in self.activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"unknown activation {unknown[0]!r} in the cell; known: {list(ACTIVATIONS)}")

    @property
    def num_blocks(self) -> int:
        """Number of nodes B."""
        return len(self.activations)

    def children(self) -> list[list[int]]:
        """``children()[i]`` = the nodes that read node i, in increasing order."""
        out: list[list[int]] = [[] for _ in self.activations]
        for j, p in enumerate(self.parents, start=1):
            out[p].append(j)
        return out

    def leaves(self) -> list[int]:
        """Loose ends: nodes no other node reads (their mean is the cell output)."""
        return [i for i, ch in enumerate(self.children()) if not ch]

    def edges(self) -> list[tuple[int, int]]:
        """``(parent, child)`` pairs."""
        return [(p, j) for j, p in enumerate(self.parents, start=1)]

    def to_dict(self) -> dict:
        """Plain data: the canonical form."""
        return {"type": "rnn", "activations": list(self.activations), "parents": list(self.parents)}


    @classmethod
    def from_dict(cls, d: dict) -> RnnArch:
        """Inverse of :meth:`to_dict` (activation names are normalised to lower case)."""
        if d.get("type", "rnn") != "rnn":
            raise ValueError(f"not an RNN architecture: type {d.get('type')!r}")
        return cls(tuple(str(a).lower() for a in d["activations"]), tuple(int(p) for p in d["parents"]))



def rnn_decisions(num_blocks: int, num_activations: int) -> list[int]:
    """Choice counts of the controller's decisions: act0, then (parent of j, act j) for j = 1..B−1."""
    out = [num_activations]
    for j in range(1, num_blocks):
        out += [j, num_activations]
    return out


def decode_rnn(actions: list[int], activations: list[str]) -> RnnArch:
    """Controller actions (see :func:`rnn_decisions`) → architecture."""
    acts = [activations[actions[0]].lower()]
    parents = []
    for k in range(1, len(actions), 2):
        parents.append(int(actions[k]))
        acts.append(activations[actions[k + 1]].lower())
    return RnnArch(tuple(acts), tuple(parents))


def encode_rnn(arch: RnnArch, activations: list[str]) -> list[int]:
    """Architecture → controller actions (inverse of :func:`decode_rnn`)."""
    lower = [a.lower() for a in activations]
    out = [lower.index(arch.activations[0])]
    for j in range(1, arch.num_blocks):
        out += [arch.parents[j - 1], lower.index(arch.activations[j])]
    return out


def rnn_graph(arch: RnnArch) -> Graph:
    """The drawing of a cell: nodes ``{id: (label, colour)}`` and edges, inputs first."""
    nodes = {"x": ("x[t]", INPUT_COLOR), "hprev": ("h[t-1]", STATE_COLOR)}
    edges = [("x", "n0"), ("hprev", "n0")]
    for j, act in enumerate(arch.activations):
        nodes[f"n{j}"] = (f"{act}\n({j})", COLORS.get(act, "#ffffff"))
    edges += [(f"n{p}", f"n{j}") for p, j in arch.edges()]
    nodes["avg"] = ("avg", JOIN_COLOR)
    nodes["h"] = ("h[t]", STATE_COLOR)
    edges += [(f"n{i}", "avg") for i in arch.leaves()] + [("avg", "h")]
    return nodes, edges
