"""The two-model experiment: train A, then B sharing A's first blocks, with and without WPL.

Protocol (docs/two-models.md explains why): blocks are fully connected layers. A applies leaky ReLU after each
of its 4 blocks; B runs the shared blocks inside a *different* operation (tanh), as one edge weight
is used by different operations in weight-sharing NAS, then 3 private blocks and its own classifier.
A is trained first — to convergence (``strict``) or only briefly (``loose``) — then B is trained
with Adam while A's test accuracy is tracked: once plainly, once with WPL on the shared blocks
(Fisher from ``fisher_samples`` held-out validation images at A's weights, anchors at A's weights).
Baselines: ``l2`` (the same penalty with F ≡ 1) and ``ewc`` (EWC's form: the Fisher penalty on *all*
of A's parameters, not only the shared ones). Accuracies are reported on the test split, and on the
validation images the Fisher did not use (``*_valid``), which is where settings are chosen.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .data.mnist import MnistSplits
from .errors import ConfigError
from .plasticity import WeightPlasticity
from .progress import bar as progress_bar

ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.1),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
}
SETTINGS = ("strict", "loose")
METHODS = ("plain", "wpl", "l2", "ewc")


@dataclass
class TwoModelsConfig:
    """Every knob of the experiment; defaults are the documented protocol."""

    shared_blocks: int = 3
    a_blocks: int = 4
    b_blocks: int = 6
    width: int = 64
    b_width: int = 64
    a_activation: str = "leaky_relu"
    b_activation: str = "tanh"
    batch_size: int = 128
    a_lr: float = 1e-3
    b_lr: float = 3e-3
    a_iters: dict = field(default_factory=lambda: {"strict": 2000, "loose": 600})
    b_iters: int = 1500
    alpha: float = 3000.0
    fisher_samples: int = 200
    estimator: str = "empirical"
    fisher_clip_by_norm: float = 0.0
    eval_every: int = 50
    methods: tuple[str, ...] = ("plain", "wpl")
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.shared_blocks <= min(self.a_blocks, self.b_blocks):
            raise ConfigError("shared_blocks", self.shared_blocks,
                              f"must be between 1 and {min(self.a_blocks, self.b_blocks)}")
        for name in ("a_activation", "b_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ConfigError(name, getattr(self, name), f"must be one of {', '.join(ACTIVATIONS)}")
        if set(self.a_iters) != set(SETTINGS) or min(self.a_iters.values()) < 1:
            raise ConfigError("a_iters", self.a_iters, f"needs a positive count for each of {SETTINGS}")
        for name in ("b_iters", "fisher_samples", "eval_every", "batch_size", "width", "b_width"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if not self.alpha >= 0:
            raise ConfigError("alpha", self.alpha, "must be >= 0")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or "plain" not in self.methods:
            raise ConfigError("methods", self.methods, f"must include 'plain' and come from {', '.join(METHODS)}")


class BlockChain(nn.Module):
    """``blocks`` (each Linear + activation) then a linear classifier."""

    def __init__(self, blocks: nn.ModuleList, activations: list[str], classifier: nn.Linear) -> None:
        super().__init__()
        self.blocks = blocks
        self.activations = list(activations)
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)
        for block, act in zip(self.blocks, self.activations):
            h = ACTIVATIONS[act](block(h))
        return self.classifier(h)


def _linear_chain(n: int, in_dim: int, width: int) -> list[nn.Linear]:
    return [nn.Linear(in_dim if i == 0 else width, width) for i in range(n)]


def build_models(cfg: TwoModelsConfig, in_dim: int, classes: int, seed: int) -> tuple[BlockChain, BlockChain]:
    """Model A and model B; B's first ``shared_blocks`` blocks are A's own modules."""
    torch.manual_seed(seed)
    a_layers = _linear_chain(cfg.a_blocks, in_dim, cfg.width)
    model_a = BlockChain(nn.ModuleList(a_layers), [cfg.a_activation] * cfg.a_blocks, nn.Linear(cfg.width, classes))
    torch.manual_seed(seed + 1)
    n_private = cfg.b_blocks - cfg.shared_blocks
    private = [nn.Linear(cfg.width if i == 0 else cfg.b_width, cfg.b_width) for i in range(n_private)]
    b_acts = [cfg.b_activation] * cfg.shared_blocks + [cfg.a_activation] * n_private
    model_b = BlockChain(
        nn.ModuleList(a_layers[: cfg.shared_blocks] + private), b_acts, nn.Linear(cfg.b_width, classes)
    )
    return model_a, model_b


def shared_names(cfg: TwoModelsConfig) -> list[str]:
    """Names, in model A, of the shared blocks' parameters."""
    return [f"blocks.{i}.{k}" for i in range(cfg.shared_blocks) for k in ("weight", "bias")]


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch: int = 4096) -> float:
    """Top-1 accuracy as a fraction."""
    was = model.training
    model.eval()
    correct = sum((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item() for i in range(0, len(y), batch))
    model.train(was)
    return correct / len(y)


def _train(
    model: nn.Module,
    data: MnistSplits,
    iters: int,
    lr: float,
    batch_size: int,
    gen: torch.Generator,
    bar: tqdm,
    penalty=None,
    on_eval=None,
    eval_every: int = 50,
) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data.train_y)
    for it in range(1, iters + 1):
        idx = torch.randint(0, n, (batch_size,), generator=gen).to(data.train_x.device)
        loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
        if penalty is not None:
            loss = loss + penalty()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at iteration {it}; lower alpha or the "
                                     "learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(1)
        if on_eval is not None and (it % eval_every == 0 or it == iters):
            on_eval(it)


Variant = tuple[str, str, float]  # (label, method, alpha)


def default_variants(cfg: TwoModelsConfig) -> list[Variant]:
    """One variant per configured method, each at ``cfg.alpha`` (labels are the method names)."""
    return [(m, m, cfg.alpha) for m in cfg.methods]


def _penalty(method: str, alpha: float, cfg: TwoModelsConfig, model_a: nn.Module, fisher_batch: list):
    """The penalty callable of ``method`` (None for plain), anchored at A's current weights."""
    if method == "plain":
        return None
    params_a = dict(model_a.named_parameters())
    names = list(params_a) if method == "ewc" else shared_names(cfg)
    wpl = WeightPlasticity(
        [(n, params_a[n]) for n in names],
        alpha=alpha,
        lambda_fisher=1.0,
        fisher_clip_by_norm=cfg.fisher_clip_by_norm,
        importance="uniform" if method == "l2" else "fisher",
    )
    if method != "l2":
        wpl.estimate_fisher(model_a, fisher_batch, estimator=cfg.estimator,
                            generator=torch.Generator().manual_seed(cfg.seed))
    return wpl.penalty


def run_setting(cfg: TwoModelsConfig, data: MnistSplits, setting: str, bar: tqdm,
                variants: list[Variant] | None = None) -> dict:
    """One setting (strict or loose): train A once, then B once per variant; return the run record."""
    variants = default_variants(cfg) if variants is None else variants
    model_a, model_b = build_models(cfg, data.train_x[0].numel(), int(data.train_y.max()) + 1, cfg.seed)
    device = data.train_x.device
    model_a.to(device)
    model_b.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    _train(model_a, data, cfg.a_iters[setting], cfg.a_lr, cfg.batch_size, gen, bar)
    # Validation images the Fisher did not see: where a sweep chooses its setting.
    vx, vy = data.valid_x[cfg.fisher_samples:], data.valid_y[cfg.fisher_samples:]
    a_before = accuracy(model_a, data.test_x, data.test_y)
    a_before_valid = accuracy(model_a, vx, vy) if len(vy) else float("nan")
    a_state = copy.deepcopy(model_a.state_dict())
    b_state = copy.deepcopy(model_b.state_dict())
    record: dict = {"convergence": setting, "shared_blocks": cfg.shared_blocks, "a_iters": cfg.a_iters[setting],
                    "a_acc_before": a_before, "a_acc_before_valid": a_before_valid}
    fisher_batch = [(data.valid_x[: cfg.fisher_samples], data.valid_y[: cfg.fisher_samples])]
    b_start = accuracy(model_b, data.test_x, data.test_y)  # every variant starts B from this same state
    for label, method, alpha in variants:
        model_a.load_state_dict(a_state)
        model_b.load_state_dict(b_state)
        penalty = _penalty(method, alpha, cfg, model_a, fisher_batch)
        curve: dict[str, list] = {"iter": [0], "a_acc": [a_before], "b_acc": [b_start]}

        def on_eval(it: int, curve: dict = curve) -> None:
            curve["iter"].append(it)
            curve["a_acc"].append(accuracy(model_a, data.test_x, data.test_y))
            curve["b_acc"].append(accuracy(model_b, data.test_x, data.test_y))

        bar.set_postfix_str(f"{setting}/{label}")
        gen_b = torch.Generator().manual_seed(cfg.seed + 7)
        _train(model_b, data, cfg.b_iters, cfg.b_lr, cfg.batch_size, gen_b, bar, penalty, on_eval, cfg.eval_every)
        valid = {"a_acc_after_valid": accuracy(model_a, vx, vy), "b_acc_valid": accuracy(model_b, vx, vy)} \
            if len(vy) else {}
        record[label] = {"method": method, "alpha": alpha, "a_acc_after": curve["a_acc"][-1],
                         "b_acc": curve["b_acc"][-1], **valid, "curve": curve}
        record[f"forgetting_{label}"] = a_before - curve["a_acc"][-1]
    if "plain" in record:
        for label, method, _ in variants:
            if method != "plain":
                record[f"forgetting_reduction{'' if label == 'wpl' else '_' + label}"] = _reduction(
                    record["forgetting_plain"], record[f"forgetting_{label}"]
                )
    return record


def _reduction(plain: float, other: float) -> float | None:
    """``1 − other/plain``; None when the plain run forgot nothing (the ratio is meaningless)."""
    return None if plain <= 0 else 1.0 - other / plain


def run_two_models(cfg: TwoModelsConfig, data: MnistSplits, settings: tuple[str, ...] = SETTINGS,
                   variants: list[Variant] | None = None) -> dict:
    """Run the experiment for each setting; the result is what ``two_models.json`` holds."""
    variants = default_variants(cfg) if variants is None else variants
    total = sum(cfg.a_iters[s] + cfg.b_iters * len(variants) for s in settings)
    # Adam's second moments underflow to denormals here, which slows CPU arithmetic up to 20x.
    torch.set_flush_denormal(True)
    with progress_bar(total=total, desc="two-models", unit="it", dynamic_ncols=True, mininterval=0.5) as bar:
        try:
            runs = [run_setting(cfg, data, s, bar, variants) for s in settings]
        finally:
            torch.set_flush_denormal(False)
    config = asdict(cfg)
    config["methods"] = list(cfg.methods)
    return {"dataset": data.source, "config": config, "runs": runs}
