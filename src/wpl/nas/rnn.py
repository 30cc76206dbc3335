"""The ENAS recurrent-cell search space: architectures (genotypes) and the shared supernet.

A cell has ``B`` nodes. Node 0 reads ``x[t]`` and ``h[t−1]``; node ``j ≥ 1`` reads one earlier node
(its *parent*). Every node is a highway unit::

    c = σ(W_c · h_in),   h = c ⊙ f(W_h · h_in) + (1 − c) ⊙ h_in

with ``f`` the node's activation. The cell output is the mean of the loose ends (nodes nobody reads)
and is also the next hidden state (as in the ENAS paper). Each edge ``i → j`` owns one weight of
shape ``[2H, H]`` holding ``W_c`` and ``W_h`` stacked, so an edge costs one matrix product; the
children of one parent are computed in a single product.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..viz import INPUT_COLOR, JOIN_COLOR, STATE_COLOR, Graph
from .linear_ce import linear_cross_entropy

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
class RnnArch:
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

    def to_json(self) -> str:
        """The one canonical JSON text of this architecture."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> RnnArch:
        """Inverse of :meth:`to_dict` (activation names are normalised to lower case)."""
        if d.get("type", "rnn") != "rnn":
            raise ValueError(f"not an RNN architecture: type {d.get('type')!r}")
        return cls(tuple(str(a).lower() for a in d["activations"]), tuple(int(p) for p in d["parents"]))

    @classmethod
    def from_json(cls, text: str) -> RnnArch:
        """Parse the canonical JSON (or any JSON with the same fields)."""
        return cls.from_dict(json.loads(text))


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


def _locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """One dropout mask per sequence, shared over time: ``x`` is ``[T, N, D]``."""
    if not training or p <= 0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p).div_(1 - p)
    return x * mask


class SharedRNN(nn.Module):
    """The supernet: embedding, node-0 weights, one ``[2H, H]`` weight per possible edge, tied decoder."""

    def __init__(
        self,
        vocab_size: int,
        embed: int = 1000,
        hid: int = 1000,
        num_blocks: int = 12,
        tie_weights: bool = True,
        dropout: float = 0.4,
        dropoute: float = 0.1,
        dropouti: float = 0.65,
        wdrop: float = 0.5,
        init_range: float = 0.025,
    ) -> None:
        super().__init__()
        if tie_weights and embed != hid:
            raise ValueError(f"tie_weights=True needs embed == hid, got {embed} and {hid}")
        self.vocab_size, self.embed, self.hid, self.num_blocks = vocab_size, embed, hid, num_blocks
        self.tie_weights = tie_weights
        self.dropout, self.dropoute, self.dropouti, self.wdrop = dropout, dropoute, dropouti, wdrop
        self.encoder = nn.Embedding(vocab_size, embed)
        self.w_x = nn.Linear(embed, 2 * hid)
        self.w_h0 = nn.Parameter(torch.empty(2 * hid, hid))
        self.edges = nn.ParameterDict(
            {f"{i}_{j}": nn.Parameter(torch.empty(2 * hid, hid)) for j in range(1, num_blocks) for i in range(j)}
        )
        self.decoder_weight = None if tie_weights else nn.Parameter(torch.empty(vocab_size, hid))
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))
        for name, p in self.named_parameters():
            if name != "decoder_bias":
                nn.init.uniform_(p, -init_range, init_range)

    # ---- which parameters an architecture uses -------------------------------------------------
    @staticmethod
    def edge_name(i: int, j: int) -> str:
        """Parameter name of edge ``i → j``."""
        return f"edges.{i}_{j}"

    def edge_names(self, arch: RnnArch | None = None) -> list[str]:
        """Edge parameters of ``arch`` (all edges when None): the weights WPL protects."""
        if arch is None:
            return [f"edges.{k}" for k in self.edges]
        return [self.edge_name(i, j) for i, j in arch.edges()]

    def parameters_for(self, arch: RnnArch) -> list[str]:
        """Names of every parameter ``arch`` uses (the others get no gradient from it)."""
        always = ["encoder.weight", "w_x.weight", "w_x.bias", "w_h0", "decoder_bias"]
        if not self.tie_weights:
            always.append("decoder_weight")
        return always + self.edge_names(arch)

    # ---- forward -------------------------------------------------------------------------------
    def init_hidden(self, batch: int) -> Tensor:
        """Zero hidden state ``[batch, H]``."""
        return self.w_h0.new_zeros(batch, self.hid)

    def forward(self, tokens: Tensor, hidden: Tensor, arch: RnnArch) -> tuple[Tensor, Tensor, Tensor]:
        """``tokens [T, N]`` → logits ``[T, N, V]``, next hidden ``[N, H]``, raw cell outputs ``[T, N, H]``."""
        out, hidden, raw = self.features(tokens, hidden, arch)
        dec_w, dec_b = self._decoder()
        return F.linear(out, dec_w, dec_b), hidden, raw

    def loss(
        self, tokens: Tensor, targets: Tensor, hidden: Tensor, arch: RnnArch, edges_only: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mean cross-entropy of predicting ``targets [T, N]``, next hidden, raw cell outputs.

        The decoder and softmax run fused (:mod:`.linear_ce`). ``edges_only`` (what the Fisher needs)
        detaches the decoder: a custom autograd function cannot tell that ``autograd.grad`` will drop
        its weight gradient, which would cost a full [V, H] product; the built-in ops upstream are
        pruned by autograd itself.
        """
        out, hidden, raw = self.features(tokens, hidden, arch)
        dec_w, dec_b = self._decoder(edges_only)
        ce = linear_cross_entropy(out.reshape(-1, out.size(-1)), dec_w, dec_b, targets.reshape(-1))
        return ce, hidden, raw

    def _decoder(self, detach: bool = False) -> tuple[Tensor, Tensor]:
        w = self.encoder.weight if self.tie_weights else self.decoder_weight
        return (w.detach(), self.decoder_bias.detach()) if detach else (w, self.decoder_bias)

    def features(self, tokens: Tensor, hidden: Tensor, arch: RnnArch) -> tuple[Tensor, Tensor, Tensor]:
        """The decoder's input ``[T, N, H]`` (dropout applied), next hidden, raw cell outputs."""
        train = self.training
        emb_w = self.encoder.weight
        if train and self.dropoute > 0:
            keep = emb_w.new_empty(emb_w.size(0), 1).bernoulli_(1 - self.dropoute).div_(1 - self.dropoute)
            emb_w = emb_w * keep
        x = _locked_dropout(F.embedding(tokens, emb_w), self.dropouti, train)
        x_proj = self.w_x(x)  # all time steps at once: [T, N, 2H]
        w_h0 = F.dropout(self.w_h0, self.wdrop, train) if self.wdrop > 0 else self.w_h0
        raw = self._unroll(x_proj, hidden, w_h0, arch)
        return _locked_dropout(raw, self.dropout, train), raw[-1], raw

    def _unroll(self, x_proj: Tensor, h: Tensor, w_h0: Tensor, arch: RnnArch) -> Tensor:
        H = self.hid
        acts = [ACTIVATIONS[a] for a in arch.activations]
        children = arch.children()
        grouped = {  # one weight per parent: its children's edges stacked
            i: torch.cat([self.edges[f"{i}_{j}"] for j in ch], 0) if len(ch) > 1 else self.edges[f"{i}_{ch[0]}"]
            for i, ch in enumerate(children) if ch
        }
        leaves = arch.leaves()
        outs = []
        # unbind/chunk/split (not indexing) so backward stacks the pieces instead of zero-filling
        # a full-size gradient for every slice
        for x_t in x_proj.unbind(0):
            c_pre, h_pre = torch.addmm(x_t, h, w_h0.t()).chunk(2, dim=1)
            c = torch.sigmoid(c_pre)
            nodes: list[Tensor | None] = [None] * self.num_blocks
            nodes[0] = h + c * (acts[0](h_pre) - h)
            for i, ch in enumerate(children):
                if not ch:
                    continue
                hi = nodes[i]
                parts = (hi @ grouped[i].t()).split(H, dim=1)
                for k, j in enumerate(ch):
                    cj = torch.sigmoid(parts[2 * k])
                    nodes[j] = hi + cj * (acts[j](parts[2 * k + 1]) - hi)
            out = nodes[leaves[0]] if len(leaves) == 1 else torch.stack([nodes[i] for i in leaves]).mean(0)
            norm = out.norm(dim=1, keepdim=True)
            h = out * torch.clamp(HIDDEN_NORM_CLIP / (norm + 1e-12), max=1.0)
            outs.append(h)
        return torch.stack(outs)
