"""The train/validation/test tensors every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Splits:
    """Inputs and int64 labels of each split, and where they came from."""

    train_x: Tensor
    train_y: Tensor
    valid_x: Tensor
    valid_y: Tensor
    test_x: Tensor
    test_y: Tensor
    source: str
