"""The ENAS policy — an LSTM that makes a fixed sequence of categorical decisions — and its
REINFORCE updater.

``decisions[k]`` is the number of choices at step k. Each step has its own linear decoder; the
chosen action is embedded (one embedding row per (step, choice), so no two tokens collide) and fed
back. Logits are ``tanh_c · tanh(decoder(h) / temperature)``. ``reset_at`` lists steps where the LSTM
state and input restart from zero (the CNN space's reduction cell).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ControllerConfig


class Controller(nn.Module):
    """``sample(n)`` → actions ``[n, D]``, log-probs ``[n, D]``, entropies ``[n, D]``."""

    @classmethod
    def from_config(cls, decisions: list[int], config: ControllerConfig, reset_at: tuple[int, ...] = ()) -> Controller:
        """The policy for ``decisions`` with the sizes and sampling of ``config``."""
        return cls(decisions, config.controller_hid, config.softmax_temperature, config.tanh_c, reset_at)

    def __init__(
        self,
        decisions: list[int],
        hid: int = 100,
        temperature: float = 5.0,
        tanh_c: float = 2.5,
        reset_at: tuple[int, ...] = (),
        init_range: float = 0.1,
    ) -> None:
        super().__init__()
        if not decisions or min(decisions) < 1:
            raise ValueError(f"every decision needs at least one choice, got {decisions}")
        self.decisions = list(decisions)
        self.hid, self.temperature, self.tanh_c = hid, float(temperature), float(tanh_c)
        self.reset_at = set(reset_at)
        self.lstm = nn.LSTMCell(hid, hid)
        self.decoders = nn.ModuleList(nn.Linear(hid, n) for n in self.decisions)
        offsets = [0]
        for n in self.decisions[:-1]:
            offsets.append(offsets[-1] + n)
        self.offsets = offsets
        self.embed = nn.Embedding(sum(self.decisions), hid)
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)
        for d in self.decoders:
            nn.init.zeros_(d.bias)

    def _logits(self, k: int, h: Tensor) -> Tensor:
        logits = self.decoders[k](h) / self.temperature
        return self.tanh_c * torch.tanh(logits) if self.tanh_c > 0 else logits

    def _run(self, n: int, forced: Tensor | None, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        dev = self.embed.weight.device
        zeros = torch.zeros(n, self.hid, device=dev)
        inp, state = zeros, (zeros, zeros)
        actions, logps, ents = [], [], []
        for k, _ in enumerate(self.decisions):
            if k in self.reset_at:
                inp, state = zeros, (zeros, zeros)
            h, c = self.lstm(inp, state)
            state = (h, c)
            logits = self._logits(k, h)
            logp_all = F.log_softmax(logits, dim=-1)
            if forced is None:
                a = torch.multinomial(logp_all.exp().detach(), 1, generator=generator).squeeze(1)
            else:
                a = forced[:, k]
            actions.append(a)
            logps.append(logp_all.gather(1, a.unsqueeze(1)).squeeze(1))
            ents.append(-(logp_all.exp() * logp_all).sum(-1))
            inp = self.embed(a + self.offsets[k])
        return torch.stack(actions, 1), torch.stack(logps, 1), torch.stack(ents, 1)

    def sample(self, n: int = 1, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Draw ``n`` action sequences; returns actions, their log-probs and the step entropies."""
        return self._run(n, None, generator)

    def evaluate(self, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probs and entropies of given ``actions [n, D]`` (teacher forcing)."""
        _, logp, ent = self._run(actions.size(0), actions.to(self.embed.weight.device), None)
        return logp, ent


class Reinforce:
    """The controller's REINFORCE update: reward (+ entropy bonus), discount, EMA baseline, its optimizer.

    ``update(logp, ent, rewards)`` takes the log-probs and entropies ``[n, D]`` of ``n`` sampled
    architectures and their rewards ``[n]``, and takes one optimizer step on
    ``−mean_n Σ_d logp·(r − b)`` (minus the entropy bonus with ``entropy_mode="regularizer"``).
    The baseline ``b`` (one per decision) is the EMA of the mean return and persists across calls.
    """

    def __init__(self, controller: Controller, config: ControllerConfig) -> None:
        self.controller, self.config = controller, config
        opt = torch.optim.Adam if config.controller_optim == "adam" else torch.optim.SGD
        self.optimizer = opt(controller.parameters(), lr=config.controller_lr)
        self.baseline: Tensor | None = None

    def returns(self, rewards: Tensor, ent: Tensor) -> Tensor:
        """Per-decision returns ``[n, D]``: the reward, plus the entropy bonus in ``reward`` mode, discounted."""
        c = self.config
        r = rewards[:, None].expand_as(ent).clone()
        if c.entropy_mode == "reward":
            r = r + c.entropy_coeff * ent.detach()
        if c.discount < 1:
            r = discounted(r, c.discount)
        return r

    def update(self, logp: Tensor, ent: Tensor, rewards: Tensor) -> dict[str, float]:
        """One policy-gradient step; returns the step's mean reward, entropy, advantage and loss."""
        c = self.config
        r = self.returns(rewards, ent)
        mean_r = r.mean(0)
        if self.baseline is None:
            self.baseline = mean_r.clone()
        else:
            self.baseline = c.ema_baseline_decay * self.baseline + (1 - c.ema_baseline_decay) * mean_r
        adv = r - self.baseline
        loss = -(logp * adv).sum(1).mean()
        if c.entropy_mode == "regularizer":
            loss = loss - c.entropy_coeff * ent.sum(1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.controller_grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.controller.parameters(), c.controller_grad_clip)
        self.optimizer.step()
        return {"reward": float(rewards.mean()), "entropy": float(ent.detach().sum(1).mean()),
                "adv": float(adv.detach().mean()), "loss": float(loss.detach())}

    def state_dict(self) -> dict:
        """The optimizer's state and the baseline."""
        return {"optimizer": self.optimizer.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]


def discounted(r: Tensor, gamma: float) -> Tensor:
    """Reverse discounted cumulative sum along the decision axis: ``out[:, t] = Σ_{k≥t} γ^(k−t) r[:, k]``."""
    out = torch.empty_like(r)
    acc = torch.zeros_like(r[:, 0])
    for t in range(r.size(1) - 1, -1, -1):
        acc = r[:, t] + gamma * acc
        out[:, t] = acc
    return out
