"""The α schedule of the original code: constant, then linear or exponential decay, with a floor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AlphaSchedule:
    """α per epoch: ``alpha_fisher`` until ``alpha_decay_after``, then decayed, never below the floor.

    Mode 1 (linear): α_e = α0 − (e − after + 1)·decay.  Mode 2 (exponential): α_e = α0·decay^(e − after + 1).
    The result is clamped to ``max(alpha_small_scale, 0)``.
    """

    alpha_fisher: float = 1.0
    alpha_decay: float = 0.0
    alpha_decay_after: float = math.inf
    alpha_decay_mode: int = 1
    alpha_small_scale: float = 0.0

    def __post_init__(self) -> None:
        if self.alpha_decay_mode not in (1, 2):
            raise ValueError(
                f"alpha_decay_mode must be 1 (linear) or 2 (exponential), got {self.alpha_decay_mode!r}"
            )
        if self.alpha_fisher < 0:
            raise ValueError(f"alpha_fisher must be >= 0, got {self.alpha_fisher}")
        if self.alpha_decay < 0:
            raise ValueError(f"alpha_decay must be >= 0, got {self.alpha_decay}")
        if self.alpha_decay_mode == 2 and self.alpha_decay > 1:
            raise ValueError(
                f"alpha_decay is a factor in exponential mode and must be <= 1, got {self.alpha_decay}"
            )

    def __call__(self, epoch: int) -> float:
        """α for ``epoch`` (0-based)."""
        if epoch < self.alpha_decay_after:
            alpha = self.alpha_fisher
        else:
            n = epoch - self.alpha_decay_after + 1
            if self.alpha_decay_mode == 1:
                alpha = self.alpha_fisher - n * self.alpha_decay
            else:
                alpha = self.alpha_fisher * self.alpha_decay**n
        return max(alpha, self.alpha_small_scale, 0.0)

    def to_dict(self) -> dict:
        """Plain-data form (JSON-safe except an infinite ``alpha_decay_after``)."""
        return asdict(self)
