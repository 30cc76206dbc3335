"""The α schedule of the original code: constant, then linear or exponential decay, with a floor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class AlphaSchedule:
    """α per epoch: ``alpha`` until ``alpha_decay_after``, then decayed, never below the floor.

    Mode 1 (linear): α_e = α0 − (e − after + 1)·decay.  Mode 2 (exponential): α_e = α0·decay^(e − after + 1).
    The result is clamped to ``max(alpha_small_scale, 0)``.
    """

    alpha: float = 1.0
    alpha_decay: float = 0.0
    alpha_decay_after: float = math.inf
    alpha_decay_mode: int = 1
    alpha_small_scale: float = 0.0

    def __post_init__(self) -> None:
        if self.alpha_decay_mode not in (1, 2):
            raise ConfigError("alpha_decay_mode", self.alpha_decay_mode, "must be 1 (linear) or 2 (exponential)")
        if not self.alpha >= 0:
            raise ConfigError("alpha", self.alpha, "must be >= 0")
        if not self.alpha_decay >= 0:
            raise ConfigError("alpha_decay", self.alpha_decay, "must be >= 0")
        if self.alpha_decay_mode == 2 and self.alpha_decay > 1:
            raise ConfigError("alpha_decay", self.alpha_decay, "with alpha_decay_mode=2 it is a factor per epoch "
                              "and must be in [0, 1] (e.g. 0.9)")
        if not self.alpha_small_scale >= 0:
            raise ConfigError("alpha_small_scale", self.alpha_small_scale, "must be >= 0")

    def __call__(self, epoch: int) -> float:
        """α for ``epoch`` (0-based)."""
        if epoch < self.alpha_decay_after:
            alpha = self.alpha
        else:
            n = epoch - self.alpha_decay_after + 1
            if self.alpha_decay_mode == 1:
                alpha = self.alpha - n * self.alpha_decay
            else:
                alpha = self.alpha * self.alpha_decay**n
        return max(alpha, self.alpha_small_scale, 0.0)

    def to_dict(self) -> dict:
        """Plain-data form (JSON-safe except an infinite ``alpha_decay_after``)."""
        return asdict(self)
