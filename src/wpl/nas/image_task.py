"""What the image spaces share: the search task on image classification (CIFAR-10, MNIST or an image folder).

The questions of :class:`wpl.nas.task.Task`, on images: the metric is the error rate
(1 − accuracy) and rewards are ``reward_c · accuracy`` (or accuracy²). Training batches
come from a shuffled pass over the training split (or are drawn with replacement), augmented on the
device; validation batches (held out of training) move through the validation split for rewards and the
Fisher, and a fixed first slice of it measures forgetting. A space subclasses :class:`ImageTask` with
``_build_space`` (its supernet, ``decisions`` and ``reset_at``) and its architecture methods.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.augment import augment, normalise
from ..data.images import ImageSplits, load_images
from ..dist import SINGLE, Dist
from ..runtime import model_mode
from .batchnorm import use_dist
from .config import ImageConfig
from .task import Arch, FisherBatch

log = logging.getLogger("wpl")


def load_image_data(configs, data_dir: str | None) -> ImageSplits:
    """The splits of ``--dataset`` at the image config's size, channels, held-out size and split seed (logged)."""
    cfg: ImageConfig = configs.space
    data = load_images(data_dir, configs.run.dataset, valid_size=cfg.valid_size, seed=cfg.random_seed,
                       size=(cfg.cnn_height, cfg.cnn_width), channels=cfg.cnn_input_channels)
    log.info("images %s: %d/%d/%d train/valid/test, %d classes, %s", data.source, len(data.train_x),
             len(data.valid_x), len(data.test_x), len(data.classes), "×".join(map(str, data.shape)))
    return data


class ArchNet(nn.Module):
    """The supernet restricted to one architecture: ``forward(x)`` → logits (what per-sample Fisher estimators need)."""

    def __init__(self, supernet: nn.Module, arch: Arch) -> None:
        super().__init__()
        self.supernet, self.arch = supernet, arch

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.supernet(x, self.arch)


class ImageTask:
    """Search on images; a space subclasses it with ``_build_space`` and its architecture methods."""


    def __init__(self, data: ImageSplits, config: ImageConfig, device: torch.device, dist: Dist = SINGLE) -> None:
        cfg = self.config = config
        self.device, self.data, self.dist = device, data, dist
        c, _, _ = data.shape
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.valid_x, self.valid_y = data.valid_x.to(device), data.valid_y.to(device)
        self.test_x, self.test_y = data.test_x.to(device), data.test_y.to(device)
        classes = max(len(data.classes), int(data.train_y.max()) + 1)
        self.supernet = self._build_space(c, classes).to(device)
        use_dist(self.supernet, dist)  # batch norms see the global batch
        self.global_batch = cfg.batch_size * dist.world  # data-parallel: every batch is split across the ranks
        n_valid = math.ceil(len(self.valid_x) / self.global_batch)
        cfg.check_valid_batches(n_valid)
        self.gen = torch.Generator().manual_seed(cfg.random_seed)
        self.order = torch.randperm(len(self.train_x), generator=self.gen)
        self.train_pos, self.valid_pos = 0, 0
        self.flip = not data.source.startswith("mnist")  # mirrored digits are other digits

    def _build_space(self, channels: int, classes: int) -> nn.Module:
        """The supernet; sets ``decisions`` and ``reset_at`` (each image space defines it)."""
        raise NotImplementedError

    def arch_from_json(self, text: str) -> Arch:
        """Parse an architecture's JSON (the space's architecture class)."""
        return self.arch_type.from_json(text)

    def protected_names(self, arch: Arch) -> list[str]:
        """The shared parameters WPL protects for ``arch``: its ops' weights (``--wpl_scope=used``: all it uses)."""
        if self.config.wpl_scope == "used":
            return self.supernet.parameters_for(arch)
        return self.supernet.op_names(arch)

    def all_protected_names(self) -> list[str]:
        """Every parameter WPL may protect."""
        if self.config.wpl_scope == "used":
            return [n for n, _ in self.supernet.named_parameters()]
        return self.supernet.op_names()

    # ---- data ----------------------------------------------------------------------------------
    def _next_train(self) -> tuple[Tensor, Tensor]:
        """The next augmented training batch: the global batch drawn and augmented alike on every rank
        (one generator), this rank's part of it kept."""
        bs = self.global_batch
        if self.config.train_sampling == "replace":
            idx = torch.randint(0, len(self.train_x), (bs,), generator=self.gen).to(self.device)
        else:
            if self.train_pos + bs > len(self.order):  # a new shuffled pass (the short remainder is skipped)
                self.order = torch.randperm(len(self.train_x), generator=self.gen)
                self.train_pos = 0
            idx = self.order[self.train_pos:self.train_pos + bs].to(self.device)
            self.train_pos += bs
        x = augment(self.train_x[idx], self.data.mean, self.data.std, self.gen, flip=self.flip,
                    cutout=self.config.cutout, per_batch=self.config.augment_scope == "batch")
        return self.dist.part(x), self.dist.part(self.train_y[idx])

    def train_loss(self, arch: Arch) -> tuple[Tensor, Tensor]:
        """Cross-entropy on the next augmented training batch (twice: to backpropagate, detached)."""
        x, y = self._next_train()
        ce = F.cross_entropy(self.supernet(x, arch), y)
        return ce, ce.detach()

    def eval_batches(self, x_all: Tensor, y_all: Tensor, start: int, n_batches: int | None,
                     bs: int) -> Iterator[tuple[Tensor, Tensor]]:
        """This rank's part of ``n_batches`` global batches of ``world × bs`` from ``start`` (all when None),
        normalised."""
        bs *= self.dist.world
        i, k = start, 0
        while i < len(x_all) and (n_batches is None or k < n_batches):
            x = normalise(self.dist.part(x_all[i:i + bs]), self.data.mean, self.data.std)
            yield x, self.dist.part(y_all[i:i + bs])
            i += bs
            k += 1

    @torch.no_grad()
    def _stats(self, x_all: Tensor, y_all: Tensor, arch: Arch, start: int, n_batches: int | None,
               bs: int) -> tuple[float, float]:
        """(mean CE, accuracy) over ``n_batches`` batches of ``bs`` from ``start`` (all when None), eval mode;
        data-parallel: global batches of ``world × bs``, each rank scoring its part, the sums all-reduced."""
        with model_mode(self.supernet, "eval"):
            # the sums stay on the device: one read after the last batch, not two per batch
            sums, count = torch.zeros(2, dtype=torch.float64, device=self.device), 0
            for x, y in self.eval_batches(x_all, y_all, start, n_batches, bs):
                logits = self.supernet(x, arch)
                sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
                sums[1] += (logits.argmax(1) == y).sum()
                count += len(y)
        loss_sum, correct = sums.tolist()
        correct = int(correct)
        if self.dist.active:
            loss_sum, correct, count = self.dist.sum_floats(loss_sum, correct, count)
        loss = loss_sum / count
        return (loss if math.isfinite(loss) else math.inf), correct / count

    def valid_accuracy(self, arch: Arch, batches: int, batch_size: int) -> float:
        """Accuracy (0–1) on the first ``batches`` validation batches of ``batch_size`` (what ranking scores)."""
        return self.valid_stats(arch, batches, batch_size)[1]

    def valid_stats(self, arch: Arch, batches: int, batch_size: int) -> tuple[float, float]:
        """(mean cross-entropy, accuracy 0–1) on the first ``batches`` validation batches of ``batch_size``."""
        return self._stats(self.valid_x, self.valid_y, arch, 0, batches, batch_size)

    def score(self, arch: Arch) -> tuple[float, float]:
        """(error rate, loss) on the fixed validation slice (the first ``--forgetting_batches`` batches)."""
        loss, acc = self._stats(self.valid_x, self.valid_y, arch, 0, self.config.forgetting_batches,
                                self.config.batch_size)
        return 1.0 - acc, loss

    def reward(self, arch: Arch, batches: int) -> tuple[float, float]:
        """(reward, loss) on ``batches`` validation batches at the stream's position (not moved)."""
        loss, acc = self._stats(self.valid_x, self.valid_y, arch, self.valid_pos, batches, self.config.batch_size)
        return self.config.reward_c * (acc * acc if self.config.ppl_square else acc), loss

    def advance_valid(self, batches: int) -> None:
        """Move the validation stream on by ``batches`` batches (wrapping)."""
        self.valid_pos += batches * self.global_batch
        if self.valid_pos >= len(self.valid_x):
            self.valid_pos = 0

    def fisher_batch(self, arch: Arch) -> FisherBatch:
        """One normalised validation batch at the stream's position (not moved); the model is an
        ``nn.Module`` of ``arch`` returning logits, so every estimator applies."""
        pos, bs = self.valid_pos, self.global_batch
        x = normalise(self.dist.part(self.valid_x[pos:pos + bs]), self.data.mean, self.data.std)
        y = self.dist.part(self.valid_y[pos:pos + bs])
        return FisherBatch(ArchNet(self.supernet, arch), [(x, y)], F.cross_entropy)

    def evaluate(self, arch: Arch, split: str) -> dict[str, float]:
        """Full ``valid`` or ``test`` split at ``test_batch_size``: loss, error rate, accuracy."""
        x, y = (self.valid_x, self.valid_y) if split == "valid" else (self.test_x, self.test_y)
        loss, acc = self._stats(x, y, arch, 0, None, self.config.test_batch_size)
        return {"loss": loss, "error": 1.0 - acc, "acc": acc}

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
