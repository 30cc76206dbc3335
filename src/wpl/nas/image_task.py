"""The micro-CNN search task: image classification (CIFAR-10, MNIST or an image folder).

The same questions as :class:`wpl.nas.lm_task.LanguageModelTask` answers, on images: ``err`` is the
error rate (1 − accuracy) and rewards are ``reward_c · accuracy`` (or accuracy²). Training batches
come from a shuffled pass over the training split, augmented on the device; validation batches (held
out of training) move through the validation split for rewards and the Fisher, and a fixed first
slice of it measures forgetting.
"""

from __future__ import annotations

import math
from argparse import Namespace

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.augment import augment, normalise
from ..data.images import ImageSplits
from ..errors import WplError
from ..fisher import model_mode
from ..viz import micro_graph
from .cnn import MicroArch, SharedCNN, canonical_op, decode_micro, encode_micro, micro_decisions


class ImageTask:
    """ENAS micro-CNN search on ``data``."""

    kind = "micro_cnn"
    err_name = "err"

    def __init__(self, data: ImageSplits, args: Namespace, device: torch.device) -> None:
        self.args, self.device, self.data = args, device, data
        self.normal_ops = [canonical_op(o) for o in args.shared_cnn_normal_types]
        self.reduce_ops = [canonical_op(o) for o in args.shared_cnn_reduce_types]
        for name, ops in (("normal", self.normal_ops), ("reduce", self.reduce_ops)):
            if len(set(ops)) != len(ops):
                raise WplError(f"--shared_cnn_{name}_types lists an op twice: {ops}")
        c, _, _ = data.shape
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.valid_x, self.valid_y = data.valid_x.to(device), data.valid_y.to(device)
        self.test_x, self.test_y = data.test_x.to(device), data.test_y.to(device)
        classes = max(len(data.classes), int(data.train_y.max()) + 1)
        self.supernet = SharedCNN(c, classes, args.cnn_final_filter_size, args.cnn_num_modules,
                                  args.cnn_num_repeat_normal, args.num_blocks, self.normal_ops,
                                  self.reduce_ops).to(device)
        n_valid = math.ceil(len(self.valid_x) / args.batch_size)
        if args.forgetting_batches > n_valid:
            raise WplError(f"--forgetting_batches={args.forgetting_batches} exceeds the {n_valid} validation batches")
        self.decisions = micro_decisions(args.num_blocks, len(self.normal_ops), len(self.reduce_ops))
        self.reset_at: tuple[int, ...] = (len(self.decisions) // 2,)
        self.gen = torch.Generator().manual_seed(args.random_seed)
        self.order = torch.randperm(len(self.train_x), generator=self.gen)
        self.train_pos, self.valid_pos = 0, 0
        self.flip = not data.source.startswith("mnist")  # mirrored digits are other digits

    # ---- architectures -------------------------------------------------------------------------
    def decode(self, actions: list[int]) -> MicroArch:
        """Controller actions → architecture."""
        return decode_micro(actions, self.normal_ops, self.reduce_ops)

    def encode(self, arch: MicroArch) -> list[int]:
        """Architecture → controller actions."""
        return encode_micro(arch, self.normal_ops, self.reduce_ops)

    def arch_from_json(self, text: str) -> MicroArch:
        """Parse an architecture's JSON."""
        return MicroArch.from_json(text)

    def protected_names(self, arch: MicroArch) -> list[str]:
        """The shared parameters WPL protects for ``arch``: its ops' weights (``--wpl_scope=used``: all it uses)."""
        if self.args.wpl_scope == "used":
            return self.supernet.parameters_for(arch)
        return self.supernet.op_names(arch)

    def all_protected_names(self) -> list[str]:
        """Every parameter WPL may protect."""
        if self.args.wpl_scope == "used":
            return [n for n, _ in self.supernet.named_parameters()]
        return self.supernet.op_names()

    def graph(self, arch: MicroArch):
        """Nodes and edges of the drawing."""
        return micro_graph(arch)

    # ---- data ----------------------------------------------------------------------------------
    def _next_train(self) -> tuple[Tensor, Tensor]:
        bs = self.args.batch_size
        if self.train_pos + bs > len(self.order):  # a new shuffled pass (the short remainder is skipped)
            self.order = torch.randperm(len(self.train_x), generator=self.gen)
            self.train_pos = 0
        idx = self.order[self.train_pos:self.train_pos + bs].to(self.device)
        self.train_pos += bs
        x = augment(self.train_x[idx], self.data.mean, self.data.std, self.gen, flip=self.flip,
                    cutout=self.args.cutout)
        return x, self.train_y[idx]

    def train_loss(self, arch: MicroArch) -> tuple[Tensor, Tensor]:
        """Cross-entropy on the next augmented training batch (twice: to backpropagate, detached)."""
        x, y = self._next_train()
        ce = F.cross_entropy(self.supernet(x, arch), y)
        return ce, ce.detach()

    @torch.no_grad()
    def _stats(self, x_all: Tensor, y_all: Tensor, arch: MicroArch, start: int, n_batches: int | None,
               bs: int) -> tuple[float, float]:
        """(mean CE, accuracy) over ``n_batches`` batches from ``start`` (all when None), eval mode."""
        with model_mode(self.supernet, "eval"):
            loss_sum, correct, count, i, k = 0.0, 0, 0, start, 0
            while i < len(x_all) and (n_batches is None or k < n_batches):
                x = normalise(x_all[i:i + bs], self.data.mean, self.data.std)
                y = y_all[i:i + bs]
                logits = self.supernet(x, arch)
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
                count += len(y)
                i += bs
                k += 1
        loss = loss_sum / count
        return (loss if math.isfinite(loss) else math.inf), correct / count

    def score(self, arch: MicroArch) -> tuple[float, float]:
        """(error rate, loss) on the fixed validation slice (the first ``--forgetting_batches`` batches)."""
        loss, acc = self._stats(self.valid_x, self.valid_y, arch, 0, self.args.forgetting_batches,
                                self.args.batch_size)
        return 1.0 - acc, loss

    def reward(self, arch: MicroArch) -> tuple[float, float]:
        """(reward, loss) on ``nb_batch_reward_controller`` batches at the moving validation position."""
        loss, acc = self._stats(self.valid_x, self.valid_y, arch, self.valid_pos,
                                self.args.nb_batch_reward_controller, self.args.batch_size)
        return self.args.reward_c * (acc * acc if self.args.ppl_square else acc), loss

    def advance_valid(self, n: int = 1) -> None:
        """Move the validation stream on by ``n`` batches (wrapping)."""
        self.valid_pos += n * self.args.batch_size
        if self.valid_pos >= len(self.valid_x):
            self.valid_pos = 0

    def fisher_batch(self, arch: MicroArch):
        """``(model_fn, [(x, y)], loss_fn)`` for one validation batch at the moving position (then advance)."""
        pos, bs = self.valid_pos, self.args.batch_size
        x, y = normalise(self.valid_x[pos:pos + bs], self.data.mean, self.data.std), self.valid_y[pos:pos + bs]
        self.advance_valid(1)
        return (lambda inp: self.supernet(inp, arch)), [(x, y)], F.cross_entropy

    def evaluate(self, arch: MicroArch, split: str) -> dict[str, float]:
        """Full ``valid`` or ``test`` split at ``--test_batch_size``: loss, error rate, accuracy."""
        x, y = (self.valid_x, self.valid_y) if split == "valid" else (self.test_x, self.test_y)
        loss, acc = self._stats(x, y, arch, 0, None, self.args.test_batch_size)
        return {"loss": loss, "err": 1.0 - acc, "acc": acc}

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Stream positions, the training order and the augmentation generator."""
        return {"train_pos": self.train_pos, "valid_pos": self.valid_pos, "order": self.order.clone(),
                "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.train_pos, self.valid_pos = int(state["train_pos"]), int(state["valid_pos"])
        self.order = state["order"].clone()
        self.gen.set_state(state["gen"])
