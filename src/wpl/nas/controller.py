"""The ENAS policy: an LSTM that makes a fixed sequence of categorical decisions.

``decisions[k]`` is the number of choices at step k. Each step has its own linear decoder; the
chosen action is embedded (one embedding row per (step, choice), so no two tokens collide) and fed
back. Logits are ``tanh_c · tanh(decoder(h) / temperature)``. ``reset_at`` lists steps where the LSTM
state and input restart from zero (the CNN space's reduction cell).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Controller(nn.Module):
    """``sample(n)`` → actions ``[n, D]``, log-probs ``[n, D]``, entropies ``[n, D]``."""

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
