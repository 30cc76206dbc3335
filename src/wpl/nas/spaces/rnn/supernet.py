"""The ENAS recurrent-cell supernet: embedding, one weight per possible edge, tied decoder.

The space itself (architectures, activations, encoding, drawing) is :mod:`.arch`; the cell's
unrolled forward and backward is :mod:`.cell`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .arch import (  # noqa: F401  (re-exported: the space's names have always been importable from here)
    ACTIVATIONS,
    COLORS,
    HIDDEN_NORM_CLIP,
    RnnArch,
    check_activation,
    decode_rnn,
    encode_rnn,
    rnn_decisions,
    rnn_graph,
)
from .cell import unroll
from .linear_ce import linear_cross_entropy


def _locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """One dropout mask per sequence, shared over time: ``x`` is ``[T, N, D]``."""
    if not training or p <= 0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p).div_(1 - p)
    return x * mask


class SharedRNN(nn.Module):
    """The supernet: embedding, node-0 weights, one ``[2H, H]`` weight per possible edge, tied decoder.

    ``only=arch`` builds the weights of that one cell's edges instead: the standalone language model
    a derived cell is trained from scratch as (:mod:`.final`)."""

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
        cell_impl: str = "auto",
        only: RnnArch | None = None,
    ) -> None:
        super().__init__()
        if tie_weights and embed != hid:
            raise ValueError(f"tie_weights=True needs embed == hid, got {embed} and {hid}")
        self.vocab_size, self.embed, self.hid, self.num_blocks = vocab_size, embed, hid, num_blocks
        self.tie_weights = tie_weights
        self.cell_impl = cell_impl  # rnn_cell.unroll's impl: auto | cpp | python | reference
        self.dropout, self.dropoute, self.dropouti, self.wdrop = dropout, dropoute, dropouti, wdrop
        self.encoder = nn.Embedding(vocab_size, embed)
        self.w_x = nn.Linear(embed, 2 * hid)
        self.w_h0 = nn.Parameter(torch.empty(2 * hid, hid))
        pairs = [(i, j) for j in range(1, num_blocks) for i in range(j)] if only is None else only.edges()
        self.edges = nn.ParameterDict({f"{i}_{j}": nn.Parameter(torch.empty(2 * hid, hid)) for i, j in pairs})
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
        x = F.embedding(tokens, emb_w)
        if train and self.dropoute > 0:  # whole words dropped: one mask draw per vocabulary row
            keep = emb_w.new_empty(emb_w.size(0), 1).bernoulli_(1 - self.dropoute).div_(1 - self.dropoute)
            x = x * F.embedding(tokens, keep)  # = embedding(tokens, emb_w * keep), without the [V, E] product
        x = _locked_dropout(x, self.dropouti, train)
        x_proj = self.w_x(x)  # all time steps at once: [T, N, 2H]
        w_h0 = F.dropout(self.w_h0, self.wdrop, train) if self.wdrop > 0 else self.w_h0
        raw = self._unroll(x_proj, hidden, w_h0, arch)
        return _locked_dropout(raw, self.dropout, train), raw[-1], raw

    def _unroll(self, x_proj: Tensor, h: Tensor, w_h0: Tensor, arch: RnnArch) -> Tensor:
        return unroll(x_proj, h, w_h0, arch, lambda i, j: self.edges[f"{i}_{j}"], self.cell_impl)
