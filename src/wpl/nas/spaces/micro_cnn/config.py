"""The micro-CNN space's search settings (its flags)."""

from __future__ import annotations

from dataclasses import dataclass

from wpl.errors import ConfigError
from wpl.fields import at_least, flag
from wpl.nas.config import ImageConfig, distinct, space_name

from .supernet import OPS, SEP_CONVS, canonical_op

CNN_OPS = tuple(OPS)

@dataclass(frozen=True)
class CnnConfig(ImageConfig):
    """The micro-CNN space's sizes and op lists (``num_blocks``: blocks per cell; the original's default 12, as
    the command line's; ENAS's CIFAR-10 cells have 5)."""

    cnn_final_filter_size: int = flag(384, "channels of the last stage (halved per stage toward the input)")
    cnn_num_repeat_normal: int = flag(6, "normal cells per stage")
    cnn_num_modules: int = flag(3, "stages (reduction cells between them)")
    shared_cnn_types: tuple[str, ...] = flag(CNN_OPS, "accepted for compatibility (unused in the original)")
    shared_cnn_normal_types: tuple[str, ...] = flag(CNN_OPS, "op vocabulary of normal cells")
    shared_cnn_reduce_types: tuple[str, ...] = flag(CNN_OPS, "op vocabulary of reduction cells")
    cnn_sep_conv: str = flag("separable", "the sep_conv ops: separable = depthwise + pointwise (ENAS), depthwise = "
        "depthwise only (the original code's op)", choices=SEP_CONVS)

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, "cnn_num_modules")
        at_least(self, 0, "cnn_num_repeat_normal")
        scale = 2 ** self.cnn_num_modules
        if self.cnn_final_filter_size < scale or self.cnn_final_filter_size % scale:
            raise ConfigError("cnn_final_filter_size", self.cnn_final_filter_size,
                              f"must be a multiple of 2^cnn_num_modules = {scale} (channels halve per stage and "
                              "reductions split them in two)")
        for name in ("shared_cnn_normal_types", "shared_cnn_reduce_types"):
            ops = [space_name(canonical_op, name, o) for o in getattr(self, name)]
            distinct(name, ops)
            object.__setattr__(self, name, tuple(ops))
