"""Training a micro-CNN cell pair from scratch: the fixed network, with the DARTS/ENAS recipe.

The network: a 3×3 stem to ``3·channels``, then ``num_cells`` cells with reduction cells at 1/3 and
2/3 of the depth (channels doubling there), global pooling and a linear classifier; each cell holds
only the ops its architecture uses (the ops of :mod:`.supernet`, with affine batch norm that tracks
running statistics). Training: SGD with momentum and Nesterov, cosine learning rate to zero,
weight decay, gradient clipping, crop/flip/cutout augmentation, drop-path on every non-identity
op (its rate ramped from 0 to ``drop_path``), an optional auxiliary head at 2/3 of the depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wpl.data.augment import augment, normalise
from wpl.data.images import ImageSplits
from wpl.dist import SINGLE, Dist
from wpl.fields import at_least, in_unit, one_of
from wpl.nas.batchnorm import SyncBatchNorm2d, use_dist
from wpl.runtime import model_mode

from .supernet import Block, FactorizedReduce, MicroArch, ReluConvBn, make_op


@dataclass(frozen=True)
class CnnFinalConfig:
    """Sizes and recipe of the final network (defaults: the paper-size GPU configuration)."""

    channels: int = 36
    num_cells: int = 20
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    batch_size: int = 96
    eval_batch_size: int = 256
    cutout: int = 16
    drop_path: float = 0.2
    auxiliary: bool = True
    auxiliary_weight: float = 0.4
    train_on: str = "train"  # or "train+valid" (then nothing is left to validate on)
    sep_conv: str = "separable"

    def __post_init__(self) -> None:
        at_least(self, 1, "channels", "batch_size", "eval_batch_size")
        at_least(self, 3, "num_cells")  # two of them are reduction cells
        in_unit(self, "drop_path")
        one_of(self, "train_on", ("train", "train+valid"))


def _standard_bn(module: nn.Module) -> nn.Module:
    """Replace the supernet's parameter-free batch norms with affine ones that track statistics (and, under
    torchrun, compute them over every rank's part of the batch; ``nn.BatchNorm2d``'s state either way)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, SyncBatchNorm2d(child.num_features))
        else:
            _standard_bn(child)
    return module


def _drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    if not training or p <= 0:
        return x
    keep = x.new_empty(x.size(0), 1, 1, 1).bernoulli_(1 - p)
    return x * keep / (1 - p)


class FixedCell(nn.Module):
    """One cell of a fixed architecture: its input calibration, its blocks' ops, the projection."""

    def __init__(self, c_pp: int, c_p: int, c: int, cell: tuple[Block, ...], reduction: bool,
                 reduction_prev: bool, sep_conv: str) -> None:
        super().__init__()
        self.cell = cell
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReluConvBn(c_pp, c)
        self.pre1 = ReluConvBn(c_p, c)
        self.ops = nn.ModuleList()
        self.identity: list[bool] = []
        for i1, o1, i2, o2 in cell:
            for i, o in ((i1, o1), (i2, o2)):
                self.ops.append(make_op(o, c, 2 if reduction and i < 2 else 1, sep_conv))
                self.identity.append(o == "identity")
        self.loose = MicroArch.loose_ends(cell)
        self.proj = nn.Conv2d(c * len(self.loose), c, 1, bias=False)
        self.bn = SyncBatchNorm2d(c)

    def forward(self, s0: Tensor, s1: Tensor, drop_path: float) -> Tensor:  # noqa: D102
        nodes = [self.pre0(s0), self.pre1(s1)]
        for b, (i1, _, i2, _) in enumerate(self.cell):
            outs = []
            for k, i in ((2 * b, i1), (2 * b + 1, i2)):
                y = self.ops[k](nodes[i])
                outs.append(y if self.identity[k] else _drop_path(y, drop_path, self.training))
            nodes.append(outs[0] + outs[1])
        x = torch.cat([nodes[b + 2] for b in self.loose], dim=1) if len(self.loose) > 1 else nodes[self.loose[0] + 2]
        return self.bn(self.proj(F.relu(x)))


class AuxHead(nn.Module):
    """Auxiliary classifier on the features at 2/3 of the depth (training only)."""

    def __init__(self, c: int, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Conv2d(c, 128, 1, bias=False),
                                      SyncBatchNorm2d(128), nn.ReLU())
        self.classifier = nn.Linear(128 * 4, classes)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.classifier(self.features(x).flatten(1))


class FixedCNN(nn.Module):
    """The network of one micro architecture (see the module docstring)."""

    def __init__(self, arch: MicroArch, in_channels: int, classes: int, cfg: CnnFinalConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 3 * c, 3, padding=1, bias=False), SyncBatchNorm2d(3 * c))
        reductions = {cfg.num_cells // 3, 2 * cfg.num_cells // 3}
        self.cells = nn.ModuleList()
        self.aux_after = 2 * cfg.num_cells // 3
        c_pp, c_p, red_prev, aux_c = 3 * c, 3 * c, False, 0
        for k in range(cfg.num_cells):
            red = k in reductions
            c = c * 2 if red else c
            self.cells.append(FixedCell(c_pp, c_p, c, arch.reduce if red else arch.normal, red, red_prev,
                                        cfg.sep_conv))
            c_pp, c_p, red_prev = c_p, c, red
            if k == self.aux_after:
                aux_c = c
        _standard_bn(self)
        self.aux = AuxHead(aux_c, classes) if cfg.auxiliary else None
        self.classifier = nn.Linear(c_p, classes)
        self.drop_path = 0.0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Images → (logits, auxiliary logits or None outside training)."""
        s0 = s1 = self.stem(x)
        aux = None
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path)
            if k == self.aux_after and self.aux is not None and self.training:
                aux = self.aux(s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1)), aux


class CnnFinal:
    """The fixed network of ``arch`` on ``data`` and its training state; the metric is the error rate."""

    metric = "error"

    def __init__(self, arch: MicroArch, data: ImageSplits, cfg: CnnFinalConfig, device: torch.device,
                 seed: int, max_epoch: int, dist: Dist = SINGLE) -> None:
        self.arch, self.cfg, self.device, self.data, self.dist = arch, cfg, device, data, dist
        c = data.train_x.shape[1]
        self.model = FixedCNN(arch, c, len(data.classes), cfg).to(device)
        use_dist(self.model, dist)
        if cfg.train_on == "train+valid":
            self.train_x = torch.cat([data.train_x, data.valid_x]).to(device)
            self.train_y = torch.cat([data.train_y, data.valid_y]).to(device)
        else:
            self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.splits = {"valid": (data.valid_x.to(device), data.valid_y.to(device)),
                       "test": (data.test_x.to(device), data.test_y.to(device))}
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                                   weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, max(max_epoch, 1))
        self.max_epoch = max(max_epoch, 1)
        self.epoch = 0
        self.gen = torch.Generator().manual_seed(seed)
        self.flip = not data.source.startswith("mnist")

    @property
    def params(self) -> int:
        """Trainable parameters of the network used at test time (the auxiliary head excluded)."""
        aux = 0 if self.model.aux is None else sum(p.numel() for p in self.model.aux.parameters())
        return sum(p.numel() for p in self.model.parameters()) - aux

    def train_epoch(self, on_batch=None) -> dict[str, float]:
        """One shuffled pass over the training images (the short remainder is skipped); data-parallel,
        batches of ``world × batch_size`` drawn and augmented alike on every rank, each training on its part
        and the gradients averaged."""
        cfg, m, d = self.cfg, self.model, self.dist
        m.train()
        m.drop_path = cfg.drop_path * self.epoch / self.max_epoch
        order = torch.randperm(len(self.train_x), generator=self.gen)
        bs = cfg.batch_size * d.world
        # the sums stay on the device (one read at the end of the epoch, not two per batch)
        sums, count = torch.zeros(2, dtype=torch.float64, device=self.device), 0  # loss sum, correct
        n_batches = max(len(order) // bs, 1)
        for k in range(n_batches):
            idx = order[k * bs:(k + 1) * bs].to(self.device)
            x = augment(self.train_x[idx], self.data.mean, self.data.std, self.gen, flip=self.flip,
                        cutout=cfg.cutout)
            x, y = d.part(x), d.part(self.train_y[idx])
            logits, aux = m(x)
            loss = F.cross_entropy(logits, y)
            if aux is not None:
                loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss ({loss.item()}) in batch {k}; lower --final_lr")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            d.mean_grads_(m.parameters())
            torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.grad_clip)
            self.opt.step()
            sums[0] += loss.detach().double() * len(y)
            sums[1] += (logits.argmax(1) == y).sum()
            count += len(y)
            if on_batch is not None:
                on_batch((k + 1) / n_batches)
        self.sched.step()
        self.epoch += 1
        total, correct = sums.tolist()
        correct = int(correct)
        if d.active:
            total, correct, count = d.sum_floats(total, correct, count)
        return {"train_loss": total / count, "train_error": 1 - correct / count, "lr": self.opt.param_groups[0]["lr"]}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """``valid`` or ``test``: loss, error rate and accuracy (eval mode, running statistics)."""
        x_all, y_all = self.splits[split]
        bs = self.cfg.eval_batch_size
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, correct: read once, at the end
        with model_mode(self.model, "eval"):
            for i in range(0, len(x_all), bs):
                logits, _ = self.model(normalise(x_all[i:i + bs], self.data.mean, self.data.std))
                y = y_all[i:i + bs]
                sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
                sums[1] += (logits.argmax(1) == y).sum()
        loss_sum, correct = sums.tolist()
        correct = int(correct)
        n = max(len(x_all), 1)
        loss = loss_sum / n
        return {"loss": loss if math.isfinite(loss) else math.inf, "error": 1 - correct / n, "acc": correct / n}

    def end_epoch(self, valid_loss: float) -> str | None:
        """Nothing to switch in this recipe."""
        return None

    def weights(self) -> dict[str, Tensor]:
        """A copy of the network's weights and batch-norm statistics."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        """Load weights from :meth:`weights`."""
        self.model.load_state_dict(weights)

    def state_dict(self) -> dict:
        """Everything to continue bit-identically."""
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "epoch": self.epoch, "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epoch = int(state["epoch"])
        self.gen.set_state(state["gen"])
