"""Where a search's architectures come from: the ENAS controller (sampled, rewarded on validation batches and
updated by REINFORCE) or, with ``search_strategy="random"``, uniform draws."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..config import ControllerConfig, SearchConfig
from ..task import Arch
from .controller import Controller, Reinforce


class Sampler:
    """The architectures of a search: ``sample(n)`` draws them, ``controller_step()`` trains the controller;
    ``steps`` counts controller steps over the run."""

    def __init__(self, task, cfg: SearchConfig, controller: ControllerConfig, dist, seed: int,
                 diverged: Callable[[str, float, str], str]) -> None:
        self.task, self.cfg, self.dist, self.diverged = task, cfg, dist, diverged
        self.controller = Controller.from_config(task.decisions, controller, task.reset_at).to(task.device)
        self.reinforce = Reinforce(self.controller, controller)
        self.policy_batch_size = controller.policy_batch_size
        # --arch_stream=own: uniform architectures from their own generator (same sequence whatever else runs)
        self.arch_gen = torch.Generator().manual_seed(seed + 7919) if cfg.arch_stream == "own" else None
        self.steps = 0

    @torch.no_grad()
    def sample(self, n: int) -> list[Arch]:
        """``n`` architectures from the current policy (uniformly, with ``search_strategy="random"``)."""
        actions = None
        if self.dist.main:  # data-parallel: rank 0 samples, every rank trains the same architectures
            if self.cfg.search_strategy == "random":
                own = getattr(self.task, "random_actions", None)  # the Task protocol's optional member
                actions = None if own is None else own(n, self.arch_gen)
                if actions is None:
                    actions = torch.stack([torch.randint(0, k, (n,), generator=self.arch_gen)
                                           for k in self.task.decisions], 1).tolist()
            else:
                self.controller.eval()
                actions = self.controller.sample(n)[0].tolist()
        return [self.task.decode(a) for a in self.dist.broadcast(actions)]

    def controller_step(self) -> dict[str, float]:
        """Sample ``policy_batch_size`` architectures, reward each on the validation batches at the
        stream's position (the task scores in eval mode), advance the stream, and take one REINFORCE
        step; returns its statistics."""
        self.controller.train()
        d = self.dist
        actions = logp = ent = None
        if d.main:  # data-parallel: rank 0 samples and updates; every rank scores its shard of the rewards
            actions, logp, ent = self.controller.sample(self.policy_batch_size)
        n = self.cfg.nb_batch_reward_controller
        listed = d.broadcast(None if actions is None else actions.tolist())
        scored = [self.task.reward(self.task.decode(a), n) for a in listed]
        bad = [loss for _, loss in scored if not math.isfinite(loss)]
        if bad:
            raise FloatingPointError(self.diverged("validation loss of a reward", bad[0],
                                                    f" at controller step {self.steps}"))
        self.task.advance_valid(n)
        stats = None
        if d.main:
            rewards = torch.tensor([r for r, _ in scored], device=logp.device)
            stats = self.reinforce.update(logp, ent, rewards)
        stats = d.broadcast(stats)
        self.steps += 1
        return stats
