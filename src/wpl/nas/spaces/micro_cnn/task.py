"""The micro-CNN search task: :class:`~wpl.nas.image_task.ImageTask` on ENAS's micro-CNN supernet."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from wpl.nas.image_task import ImageTask

from .supernet import MicroArch, SharedCNN, decode_micro, encode_micro, micro_decisions


class CnnTask(ImageTask):
    """ENAS micro-CNN search on images."""

    kind = "micro_cnn"
    arch_type = MicroArch

    def _build_space(self, channels: int, classes: int) -> nn.Module:
        """The micro-CNN supernet; its decisions (normal cell, then reduction cell)."""
        cfg = self.config
        self.normal_ops = list(cfg.shared_cnn_normal_types)
        self.reduce_ops = list(cfg.shared_cnn_reduce_types)
        self.decisions = micro_decisions(cfg.num_blocks, len(self.normal_ops), len(self.reduce_ops))
        self.reset_at: tuple[int, ...] = (len(self.decisions) // 2,)
        return SharedCNN(channels, classes, cfg.cnn_final_filter_size, cfg.cnn_num_modules,
                         cfg.cnn_num_repeat_normal, cfg.num_blocks, self.normal_ops, self.reduce_ops, cfg.cnn_sep_conv)

    # ---- architectures -------------------------------------------------------------------------
    def decode(self, actions: Sequence[int]) -> MicroArch:
        """Controller actions → architecture."""
        return decode_micro(actions, self.normal_ops, self.reduce_ops)

    def encode(self, arch: MicroArch) -> list[int]:
        """Architecture → controller actions."""
        return encode_micro(arch, self.normal_ops, self.reduce_ops)

