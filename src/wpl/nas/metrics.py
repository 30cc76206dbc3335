"""Small metric conversions shared by the tasks and the search loop."""

from __future__ import annotations

import math


def perplexity(loss: float) -> float:
    """``exp(loss)``, or ``inf`` where that would overflow."""
    return math.exp(loss) if loss < 700 else math.inf
