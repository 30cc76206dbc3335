"""Training a recurrent cell from scratch: a standalone language model with the cell's own weights.

The ENAS/DARTS final-training recipe: SGD with gradient clipping and weight decay, a variable BPTT
length with the learning rate scaled to it, the supernet's dropouts (output, embedding rows,
embedding features) and weight-drop on the recurrent weights, and an optional switch to averaged
SGD when the validation loss stops improving (``asgd``). Validation and test run in eval mode from
a zero hidden state carried across the split, at their own batch sizes (10 and 1 in the papers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from wpl.data.text import Corpus, batchify, get_batch
from wpl.dist import SINGLE, Dist
from wpl.errors import ConfigError
from wpl.fields import at_least, in_unit
from wpl.nas.metrics import perplexity
from wpl.runtime import model_mode

from .supernet import RnnArch, SharedRNN
from .task import shard_columns


@dataclass(frozen=True)
class RnnFinalConfig:
    """Sizes and recipe of the final language model (defaults: the paper-size GPU configuration)."""

    embed: int = 850
    hid: int = 850
    dropout: float = 0.75
    dropoute: float = 0.1
    dropouti: float = 0.2
    wdrop: float = 0.5
    lr: float = 20.0
    grad_clip: float = 0.25
    weight_decay: float = 8e-7
    batch_size: int = 64
    eval_batch_size: int = 10
    test_batch_size: int = 1
    bptt: int = 35
    variable_bptt: bool = True
    asgd: bool = True
    nonmono: int = 5
    cell_impl: str = "auto"

    def __post_init__(self) -> None:
        at_least(self, 1, "embed", "hid", "batch_size", "eval_batch_size", "test_batch_size", "bptt", "nonmono")
        in_unit(self, "dropout", "dropoute", "dropouti", "wdrop")
        if self.embed != self.hid:
            raise ConfigError("embed", self.embed, f"the decoder is tied to the embedding, so embed must equal hid "
                              f"({self.hid})")


class RnnFinal:
    """The language model of ``arch`` on ``corpus`` and its training state; the metric is perplexity."""

    metric = "ppl"

    def __init__(self, arch: RnnArch, corpus: Corpus, cfg: RnnFinalConfig, device: torch.device,
                 seed: int, dist: Dist = SINGLE) -> None:
        self.arch, self.cfg, self.device, self.dist = arch, cfg, device, dist
        self.model = SharedRNN(corpus.vocab_size, cfg.embed, cfg.hid, arch.num_blocks, True, cfg.dropout,
                               cfg.dropoute, cfg.dropouti, cfg.wdrop, cell_impl=cfg.cell_impl, only=arch).to(device)
        self.train_data = shard_columns(corpus.train, cfg.batch_size, dist).to(device)  # this rank's columns
        self.splits = {"valid": batchify(corpus.valid, cfg.eval_batch_size).to(device),
                       "test": batchify(corpus.test, cfg.test_batch_size).to(device)}
        self.opt: torch.optim.Optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr,
                                                          weight_decay=cfg.weight_decay)
        self.averaging = False  # switched to ASGD
        self.valid_losses: list[float] = []
        self.gen = torch.Generator().manual_seed(seed)  # the BPTT lengths

    @property
    def params(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.model.parameters())

    def _seq_len(self) -> int:
        bptt = self.cfg.bptt
        if not self.cfg.variable_bptt:
            return bptt
        base = bptt if torch.rand((), generator=self.gen).item() < 0.95 else bptt / 2
        return max(5, int(base + 5 * torch.randn((), generator=self.gen).item()))

    def train_epoch(self, on_batch=None) -> dict[str, float]:
        """One pass over the training split; returns the token-weighted training loss. Data-parallel: each
        rank its columns of the global batch (``world × batch_size``), the same BPTT lengths (one seeded
        generator), the gradients averaged before the clip."""
        cfg, data, d = self.cfg, self.train_data, self.dist
        self.model.train()
        hidden = self.model.init_hidden(cfg.batch_size)
        total, count, i = torch.zeros((), dtype=torch.float64, device=self.device), 0, 0  # read once, at the end
        while i < data.size(0) - 2:
            seq = self._seq_len()
            for g in self.opt.param_groups:  # the rate per token stays the same for shorter windows
                g["lr"] = cfg.lr * seq / cfg.bptt
            x, y = get_batch(data, i, seq)
            ce, hidden, _ = self.model.loss(x, y, hidden.detach(), self.arch)
            if not torch.isfinite(ce):
                raise FloatingPointError(f"non-finite training loss ({ce.item()}) at token {i}; lower --final_lr "
                                         "or --final_grad_clip")
            self.opt.zero_grad(set_to_none=True)
            ce.backward()
            d.mean_grads_(self.model.parameters())
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.opt.step()
            total += ce.detach().double() * y.numel()
            count += y.numel()
            i += seq
            if on_batch is not None:
                on_batch(i / data.size(0))
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr
        total = total.item()
        if d.active:
            total, count = d.sum_floats(total, count)
        return {"train_loss": total / count, "train_ppl": perplexity(total / count)}

    def _swap_average(self) -> None:
        """Exchange the weights and their ASGD averages (call twice to swap back)."""
        for p in self.model.parameters():
            ax = self.opt.state[p].get("ax")
            if ax is not None:
                tmp = p.detach().clone()
                p.data.copy_(ax)
                ax.copy_(tmp)

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """``valid`` or ``test``: loss and perplexity (with the averaged weights once ASGD is on)."""
        data = self.splits[split]
        if self.averaging:
            self._swap_average()
        try:
            with model_mode(self.model, "eval"):
                hidden = self.model.init_hidden(data.size(1))
                total, count, i = torch.zeros((), dtype=torch.float64, device=self.device), 0, 0  # read once
                while i < data.size(0) - 1:
                    x, y = get_batch(data, i, self.cfg.bptt)
                    ce, hidden, _ = self.model.loss(x, y, hidden, self.arch)
                    total += ce.double() * y.numel()
                    count += y.numel()
                    i += self.cfg.bptt
        finally:
            if self.averaging:
                self._swap_average()
        loss = total.item() / count
        return {"loss": loss if math.isfinite(loss) else math.inf, "ppl": perplexity(loss)}

    def end_epoch(self, valid_loss: float) -> str | None:
        """After validation: switch to averaged SGD when the loss has not improved on the best of
        all but the last ``nonmono`` epochs; returns a note when it switches."""
        cfg = self.cfg
        prev = self.valid_losses
        self.valid_losses = prev + [valid_loss]
        if cfg.asgd and not self.averaging and len(prev) > cfg.nonmono and valid_loss > min(prev[:-cfg.nonmono]):
            self.opt = torch.optim.ASGD(self.model.parameters(), lr=cfg.lr, t0=0, lambd=0.0,
                                        weight_decay=cfg.weight_decay)
            self.averaging = True
            return "switched to averaged SGD"
        return None

    def weights(self) -> dict[str, Tensor]:
        """The weights evaluation uses (the ASGD averages once they are on)."""
        if not self.averaging:
            return {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self._swap_average()
        try:
            return {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        finally:
            self._swap_average()

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        """Load evaluation weights (and evaluate with them as they are: averaging off)."""
        self.model.load_state_dict(weights)
        self.averaging = False

    def state_dict(self) -> dict:
        """Everything to continue bit-identically."""
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "averaging": self.averaging,
                "valid_losses": list(self.valid_losses), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        if state["averaging"]:
            self.opt = torch.optim.ASGD(self.model.parameters(), lr=self.cfg.lr, t0=0, lambd=0.0,
                                        weight_decay=self.cfg.weight_decay)
        self.opt.load_state_dict(state["opt"])
        self.averaging = bool(state["averaging"])
        self.valid_losses = [float(v) for v in state["valid_losses"]]
        self.gen.set_state(state["gen"])
