"""The recurrent-cell search task: a word-level language model on a text corpus.

It owns the supernet and the data streams (with their positions and carried hidden states) and
answers the search loop's questions (:class:`wpl.nas.task.Task`): the next training loss, an
architecture's score on a fixed validation slice, its reward on the moving validation stream, a
Fisher batch, a full evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from wpl.data.text import Corpus, batchify, get_batch
from wpl.dist import SINGLE, Dist
from wpl.nas.metrics import perplexity
from wpl.nas.task import FisherBatch
from wpl.runtime import model_mode

from .config import RnnConfig
from .supernet import RnnArch, SharedRNN, check_activation, decode_rnn, encode_rnn, rnn_decisions


def shard_columns(tokens: Tensor, batch_size: int, dist: Dist = SINGLE) -> Tensor:
    """``tokens`` batchified at the global batch (``world × batch_size`` columns); this rank's columns.
    One process with the global batch sees exactly the union of the ranks' columns."""
    data = batchify(tokens, batch_size * dist.world)
    return data[:, dist.rank * batch_size: (dist.rank + 1) * batch_size].contiguous()


class RnnTask:
    """ENAS RNN search on ``corpus``; the metric is perplexity, rewards are ``c/ppl`` (or ``c/ppl²``)."""

    kind = "rnn"

    def __init__(self, corpus: Corpus, config: RnnConfig, device: torch.device, dist: Dist = SINGLE) -> None:
        cfg = self.config = config
        self.device = device
        self.dist = dist
        self.bptt = cfg.shared_rnn_max_length
        self.activations = [check_activation(a) for a in cfg.shared_rnn_activations]
        self.train_data = self._shard(corpus.train, cfg.batch_size)
        self.valid_data = self._shard(corpus.valid, cfg.batch_size)
        self.valid_eval = self._shard(corpus.valid, cfg.test_batch_size)
        self.test_eval = self._shard(corpus.test, cfg.test_batch_size)
        n_valid = self._num_batches(self.valid_data)
        cfg.check_valid_batches(n_valid)
        self.supernet = SharedRNN(
            corpus.vocab_size, cfg.shared_embed, cfg.shared_hid, cfg.num_blocks, cfg.tie_weights,
            cfg.shared_dropout, cfg.shared_dropoute, cfg.shared_dropouti, cfg.shared_wdrop, cell_impl=cfg.rnn_cell,
        ).to(device)
        self.decisions = rnn_decisions(cfg.num_blocks, len(self.activations))
        self.reset_at: tuple[int, ...] = ()
        self.train_pos, self.valid_pos = 0, 0
        self.train_hidden: Tensor | None = None

    # ---- architectures -------------------------------------------------------------------------
    def decode(self, actions: Sequence[int]) -> RnnArch:
        """Controller actions → architecture."""
        return decode_rnn(actions, self.activations)

    def encode(self, arch: RnnArch) -> list[int]:
        """Architecture → controller actions."""
        return encode_rnn(arch, self.activations)

    def arch_from_json(self, text: str) -> RnnArch:
        """Parse an architecture's JSON."""
        return RnnArch.from_json(text)

    def protected_names(self, arch: RnnArch) -> list[str]:
        """The shared parameters WPL protects for ``arch``: its edges (``--wpl_scope=used``: all it uses)."""
        if self.config.wpl_scope == "used":
            return self.supernet.parameters_for(arch)
        return self.supernet.edge_names(arch)

    def all_protected_names(self) -> list[str]:
        """Every parameter WPL may protect."""
        if self.config.wpl_scope == "used":
            return [n for n, _ in self.supernet.named_parameters()]
        return self.supernet.edge_names()


    # ---- data ----------------------------------------------------------------------------------
    def _shard(self, tokens: Tensor, batch_size: int) -> Tensor:
        return shard_columns(tokens, batch_size, self.dist).to(self.device)

    def _num_batches(self, data: Tensor) -> int:
        return math.ceil((data.size(0) - 1) / self.bptt)

    def _forward_loss(self, arch: RnnArch, x: Tensor, y: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.supernet.loss(x, y, hidden, arch)

    def train_loss(self, arch: RnnArch) -> tuple[Tensor, Tensor]:
        """Loss to backpropagate (CE + AR/TAR/NSR if on) and the CE, on the next training batch."""
        a = self.config
        if self.train_pos >= self.train_data.size(0) - 1:
            self.train_pos, self.train_hidden = 0, None
        x, y = get_batch(self.train_data, self.train_pos, self.bptt)
        self.train_pos += self.bptt
        hidden = self.train_hidden if self.train_hidden is not None else self.supernet.init_hidden(x.size(1))
        ce, hidden, raw = self._forward_loss(arch, x, y, hidden)
        self.train_hidden = hidden.detach()
        total = ce
        if a.activation_regularization:
            total = total + a.activation_regularization_amount * raw.pow(2).mean()
        if a.temporal_activation_regularization and raw.size(0) > 1:
            total = total + a.temporal_activation_regularization_amount * (raw[1:] - raw[:-1]).pow(2).mean()
        if a.norm_stabilizer_regularization:
            dev = raw.norm(dim=-1) - a.norm_stabilizer_fixed_point
            total = total + a.norm_stabilizer_regularization_amount * dev.pow(2).mean()
        return total, ce.detach()

    @torch.no_grad()
    def _mean_loss(self, arch: RnnArch, data: Tensor, start: int, n_batches: int | None) -> float:
        """Token-weighted mean CE over ``n_batches`` batches from ``start`` (all when None), eval mode."""
        with model_mode(self.supernet, "eval"):
            hidden = self.supernet.init_hidden(data.size(1))
            total, count, i, k = torch.zeros((), dtype=torch.float64, device=self.device), 0, start, 0
            while i < data.size(0) - 1 and (n_batches is None or k < n_batches):
                x, y = get_batch(data, i, self.bptt)
                ce, hidden, _ = self._forward_loss(arch, x, y, hidden)
                total += ce.detach().double() * y.numel()
                count += y.numel()
                i += self.bptt
                k += 1
        total, count = self.dist.sum_floats(total.item(), count)  # one device read; all ranks: the global mean
        loss = total / count
        if not math.isfinite(loss):
            return math.inf
        return loss

    def score(self, arch: RnnArch) -> tuple[float, float]:
        """(perplexity, loss) on the fixed validation slice (the first ``--forgetting_batches`` batches)."""
        loss = self._mean_loss(arch, self.valid_data, 0, self.config.forgetting_batches)
        return perplexity(loss), loss

    def reward(self, arch: RnnArch, batches: int) -> tuple[float, float]:
        """(reward, loss) on ``batches`` validation batches at the stream's position (not moved)."""
        loss = self._mean_loss(arch, self.valid_data, self.valid_pos, batches)
        ppl = perplexity(loss)
        return self.config.reward_c / (ppl * ppl if self.config.ppl_square else ppl), loss

    def advance_valid(self, batches: int) -> None:
        """Move the validation stream on by ``batches`` batches (wrapping)."""
        self.valid_pos += batches * self.bptt
        if self.valid_pos >= self.valid_data.size(0) - 1:
            self.valid_pos = 0

    def fisher_batch(self, arch: RnnArch) -> FisherBatch:
        """One validation batch at the stream's position (not moved), from a zero hidden state.

        ``loss_fn(model(x), y)`` is the batch's cross-entropy; ``model`` is the identity (the
        language model runs inside ``loss_fn``), so only ``batch_sq`` applies. With
        ``wpl_scope="edges"`` the decoder is detached: gradients flow to the edges only.
        """
        x, y = get_batch(self.valid_data, self.valid_pos, self.bptt)
        hidden = self.supernet.init_hidden(x.size(1))
        edges_only = self.config.wpl_scope == "edges"

        def loss_fn(inp: Tensor, target: Tensor) -> Tensor:
            return self.supernet.loss(inp, target, hidden, arch, edges_only=edges_only)[0]

        return FisherBatch(lambda inp: inp, [(x, y)], loss_fn)

    def evaluate(self, arch: RnnArch, split: str) -> dict[str, float]:
        """Full ``valid`` or ``test`` split at ``--test_batch_size``: loss and perplexity."""
        data = self.valid_eval if split == "valid" else self.test_eval
        loss = self._mean_loss(arch, data, 0, None)
        return {"loss": loss, "ppl": perplexity(loss)}

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Stream positions and the carried training hidden state."""
        return {"train_pos": self.train_pos, "valid_pos": self.valid_pos,
                "train_hidden": None if self.train_hidden is None else self.train_hidden.cpu()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.train_pos, self.valid_pos = int(state["train_pos"]), int(state["valid_pos"])
        h = state["train_hidden"]
        self.train_hidden = None if h is None else h.to(self.device)
