"""A test-only search space: a two-layer MLP whose layers each pick one of two ops, on synthetic data.

It is what adding a space takes — this package plus one registry line (``spaces.register``) — and the
tests run the whole tool on it: search, resume, derive, ``--mode=test --arch``, ``wpl draw``, ``compare``,
``runs``, ``plot --fisher`` and ``train-final`` (one line: the space has no from-scratch training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wpl.nas.config import TaskConfig
from wpl.nas.space import Space
from wpl.nas.task import FisherBatch, JsonArch
from wpl.runtime import model_mode

OPS = ("relu", "tanh")
LAYERS, WIDTH, FEATURES, CLASSES = 2, 8, 6, 3


@dataclass(frozen=True)
class ToyArch(JsonArch):
    """One op per layer."""

    ops: tuple[str, ...]

    def to_dict(self) -> dict:
        """The canonical form."""
        return {"type": "toy_mlp", "ops": list(self.ops)}


    @classmethod
    def from_dict(cls, d: dict) -> ToyArch:
        """Inverse of ``to_dict``."""
        ops = tuple(d["ops"])
        if len(ops) != LAYERS or any(o not in OPS for o in ops):
            raise ValueError(f"needs {LAYERS} ops of {OPS}, got {ops}")
        return cls(ops)



def graph(arch: ToyArch):
    """input → one node per layer → output."""
    nodes = {"x": ("x", "#ffffff"), **{f"l{i}": (op, "#ffc0cb") for i, op in enumerate(arch.ops)}, "y": ("y", "#fff")}
    chain = ["x", *(f"l{i}" for i in range(LAYERS)), "y"]
    return nodes, list(zip(chain, chain[1:], strict=False))


@dataclass(frozen=True)
class ToyConfig(TaskConfig):
    """Only what every task reads (no flags of its own)."""


class ToyNet(nn.Module):
    """Every (layer, op) has its own weights; an architecture uses one op per layer."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({f"{i}_{op}": nn.Linear(FEATURES if i == 0 else WIDTH, WIDTH)
                                     for i in range(LAYERS) for op in OPS})
        self.head = nn.Linear(WIDTH, CLASSES)

    def names_for(self, arch: ToyArch) -> list[str]:
        """The parameters ``arch`` uses (its layers' and the head's)."""
        return [n for n, _ in self.named_parameters()
                if n.startswith("head.") or any(n.startswith(f"layers.{i}_{op}.") for i, op in enumerate(arch.ops))]

    def forward(self, x: Tensor, arch: ToyArch) -> Tensor:  # noqa: D102
        for i, op in enumerate(arch.ops):
            x = getattr(torch, op)(self.layers[f"{i}_{op}"](x))
        return self.head(x)


class ToyTask:
    """Synthetic 3-class data; the metric is the error rate."""

    kind = "toy_mlp"
    decisions, reset_at = [len(OPS)] * LAYERS, ()

    def __init__(self, config: ToyConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        g = torch.Generator().manual_seed(0)
        x = torch.randn(600, FEATURES, generator=g)
        y = (x @ torch.randn(FEATURES, CLASSES, generator=g)).argmax(1)
        self.split = {"train": (x[:400], y[:400]), "valid": (x[400:500], y[400:500]), "test": (x[500:], y[500:])}
        self.supernet = ToyNet().to(device)
        self.gen = torch.Generator().manual_seed(1)
        self.valid_pos = 0

    def decode(self, actions) -> ToyArch:  # noqa: D102
        return ToyArch(tuple(OPS[a] for a in actions))

    def encode(self, arch: ToyArch) -> list[int]:  # noqa: D102
        return [OPS.index(o) for o in arch.ops]

    def arch_from_json(self, text: str) -> ToyArch:  # noqa: D102
        return ToyArch.from_json(text)

    def protected_names(self, arch: ToyArch) -> list[str]:  # noqa: D102
        return self.supernet.names_for(arch)

    def all_protected_names(self) -> list[str]:  # noqa: D102
        return [n for n, _ in self.supernet.named_parameters()]

    def train_loss(self, arch: ToyArch) -> tuple[Tensor, Tensor]:  # noqa: D102
        x, y = self.split["train"]
        idx = torch.randint(0, len(x), (self.config.batch_size,), generator=self.gen)
        ce = F.cross_entropy(self.supernet(x[idx], arch), y[idx])
        return ce, ce.detach()

    @torch.no_grad()
    def _stats(self, split: str, arch: ToyArch, start: int, n: int | None) -> tuple[float, float]:
        x, y = self.split[split]
        bs = self.config.batch_size
        end = len(x) if n is None else min(len(x), start + n * bs)
        with model_mode(self.supernet, "eval"):
            logits = self.supernet(x[start:end], arch)
        return float(F.cross_entropy(logits, y[start:end])), float((logits.argmax(1) == y[start:end]).float().mean())

    def score(self, arch: ToyArch) -> tuple[float, float]:  # noqa: D102
        loss, acc = self._stats("valid", arch, 0, self.config.forgetting_batches)
        return 1 - acc, loss

    def reward(self, arch: ToyArch, batches: int) -> tuple[float, float]:  # noqa: D102
        loss, acc = self._stats("valid", arch, self.valid_pos, batches)
        return self.config.reward_c * acc, loss

    def advance_valid(self, batches: int) -> None:  # noqa: D102
        self.valid_pos = (self.valid_pos + batches * self.config.batch_size) % 80

    def fisher_batch(self, arch: ToyArch) -> FisherBatch:  # noqa: D102
        x, y = self.split["valid"]
        s = slice(self.valid_pos, self.valid_pos + self.config.batch_size)
        return FisherBatch(lambda t: self.supernet(t, arch), [(x[s], y[s])], F.cross_entropy)

    def evaluate(self, arch: ToyArch, split: str) -> dict[str, float]:  # noqa: D102
        loss, acc = self._stats(split, arch, 0, None)
        return {"loss": loss, "error": 1 - acc, "acc": acc}

    def state_dict(self) -> dict:  # noqa: D102
        return {"gen": self.gen.get_state(), "valid_pos": self.valid_pos}

    def load_state_dict(self, state: dict) -> None:  # noqa: D102
        self.gen.set_state(state["gen"])
        self.valid_pos = int(state["valid_pos"])


def random_arch(seed: int, blocks: int | None = None) -> ToyArch:
    """A uniformly sampled cell (``random:SEED``); ``blocks`` does not apply (two layers)."""
    picks = torch.randint(0, len(OPS), (LAYERS,), generator=torch.Generator().manual_seed(seed))
    return ToyArch(tuple(OPS[i] for i in picks.tolist()))


SPACE = Space(
    kind="toy_mlp", metric="error", dataset="synthetic", arch=ToyArch, config=ToyConfig,
    build_task=lambda configs, data_dir, device, dist: ToyTask(configs.space, device), graph=graph,
    estimators=("batch_sq",), random_arch=random_arch,
    flag_defaults={"shared_lr": 0.1, "shared_grad_clip": 5.0, "test_batch_size": 20},
)
