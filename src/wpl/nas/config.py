"""Typed configs of a search, each checked when built: :class:`SearchConfig` (the loop),
:class:`ControllerConfig` (the policy and its REINFORCE update), :class:`TaskConfig` (what every task reads;
each space's package subclasses it with its sizes, e.g. :class:`ImageConfig` for the image spaces), with
:class:`~wpl.plasticity.WplConfig` (the regularizer) gathered in :class:`Configs`. A bad value raises
:class:`~wpl.errors.ConfigError` naming the field; field names are the search flags' names (the command line
builds these once, in :mod:`wpl.nas.search.flags`), except the regularizer's ``alpha`` (``--alpha_fisher``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..fisher import ESTIMATORS
from ..plasticity import WplConfig

AUGMENT_SCOPES = ("image", "batch")
TRAIN_SAMPLINGS = ("epoch", "replace")

WPL_UPDATES = ("gradient", "after_clip", "proximal")
WPL_ANCHORS = ("step", "snapshot", "ema")


def __getattr__(name: str):
    """The space configs that lived here before (one release; see :mod:`wpl.nas._moved`)."""
    from ._moved import moved_name

    return moved_name(__name__, name)


def flag(default, help: str, choices: Sequence | None = None):
    """A config field that is also a search flag (``--NAME``): its default, its help line, its allowed values.
    A space's config fields made with it are that space's flags (:func:`wpl.nas.search.flags.space_flags`)."""
    return field(default=default, metadata={"help": help, "choices": None if choices is None else list(choices)})


def at_least(cfg: object, low: float, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not value >= low:
            raise ConfigError(name, value, f"must be >= {low:g}")


def in_unit(cfg: object, *names: str, closed: bool = False) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
            raise ConfigError(name, value, f"must be in [0, 1{']' if closed else ')'}")


def one_of(cfg: object, name: str, allowed: Sequence) -> None:
    value = getattr(cfg, name)
    if value not in allowed:
        raise ConfigError(name, value, f"must be one of {', '.join(map(str, allowed))}")


@dataclass(frozen=True)
class SearchConfig:
    """The loop: epochs, shared training, when WPL and the controller are on, telemetry, derive, saving."""

    max_epoch: int = 100
    shared_max_step: int = 50
    shared_initial_step: int = 0
    num_batch_per_iter: int = 10
    shared_optim: str = "sgd"
    shared_momentum: float = 0.0  # SGD's (Nesterov) momentum; 0: the original's plain SGD
    shared_lr: float = 20.0
    shared_decay: float = 0.96
    shared_decay_after: float = 15.0
    shared_l2_reg: float = 1e-7
    shared_grad_clip: float = 0.25
    use_wpl: bool = True
    start_using_fisher: int = 0
    shared_valid_fisher: bool = True
    fisher_estimator: str = "batch_sq"
    fisher_mode: str = "train"
    fisher_source: str = "valid"  # valid: one validation batch per step; train: the step's last training batch
    fisher_every: int = 1  # fold the Fisher after every N-th shared step only (anchors still move every step)
    search_strategy: str = "enas"  # enas: the controller samples; random: uniform samples, no controller (RSWS)
    arch_stream: str = "global"  # random: uniform samples from torch's global RNG, or from their own generator
    wpl_update: str = "gradient"  # gradient (before the clip, the original) | after_clip | proximal
    wpl_anchor: str = "step"  # step (θ̂ ← θ after each architecture, the original) | snapshot | ema
    wpl_anchor_every: int = 100  # snapshot: every N shared steps
    wpl_anchor_rate: float = 0.1  # ema: θ̂ ← θ̂ + rate·(θ − θ̂) after each architecture
    rank_every: int = 0  # nb201: log ranking fidelity every N epochs (0: never)
    rank_archs: int = 100  # nb201: the cells of that fixed, seeded sample
    rank_batches: int = 4  # nb201: validation batches each of them is scored on
    rank_batch_size: int = 250  # nb201: images per such batch (its BN statistics)
    train_controller: bool = False
    start_training_controller: int = 0
    stop_training_controller: int = 1000
    controller_max_step: int = 1500
    nb_batch_reward_controller: int = 1
    start_evaluate_diff: int = 0
    forgetting_every: int = 1  # forgetting telemetry on every N-th shared step's architecture
    forgetting_top_k: int = 5
    derive_num_sample: int = 100
    save_epoch: int = 5
    max_save_num: int = 4
    log_step: int = 50
    # inside a phase too: every N steps (shared, controller, derive); 0 = at epoch ends only; -1 = auto
    # (as soon as AUTO_CHECKPOINT_RATIO times the last write's duration, and at least 10 s, have passed)
    checkpoint_every_steps: int = -1

    def __post_init__(self) -> None:
        at_least(self, -1, "checkpoint_every_steps")
        at_least(self, 1, "max_epoch", "shared_max_step", "num_batch_per_iter", "controller_max_step",
                  "nb_batch_reward_controller", "forgetting_top_k", "forgetting_every", "fisher_every",
                  "derive_num_sample", "save_epoch", "max_save_num", "log_step")
        at_least(self, 0, "shared_initial_step", "shared_lr", "shared_l2_reg", "shared_grad_clip", "shared_decay")
        one_of(self, "shared_optim", ("sgd", "adam"))
        if not 0 <= self.shared_momentum < 1:
            raise ConfigError("shared_momentum", self.shared_momentum, "must be in [0, 1)")
        if self.shared_momentum and self.shared_optim != "sgd":
            raise ConfigError("shared_momentum", self.shared_momentum, "is SGD's momentum: it needs shared_optim=sgd")
        one_of(self, "fisher_estimator", ESTIMATORS)
        one_of(self, "fisher_mode", ("train", "eval"))
        one_of(self, "fisher_source", ("valid", "train"))
        one_of(self, "search_strategy", ("enas", "random"))
        one_of(self, "arch_stream", ("global", "own"))
        if self.arch_stream == "own" and self.search_strategy != "random":
            raise ConfigError("arch_stream", self.arch_stream, "applies to search_strategy=random (the controller "
                              "samples ENAS's architectures)")
        one_of(self, "wpl_update", WPL_UPDATES)
        one_of(self, "wpl_anchor", WPL_ANCHORS)
        at_least(self, 1, "wpl_anchor_every")
        if not 0 < self.wpl_anchor_rate <= 1:
            raise ConfigError("wpl_anchor_rate", self.wpl_anchor_rate, "must be in (0, 1]")
        at_least(self, 0, "rank_every")
        at_least(self, 1, "rank_batches", "rank_batch_size")
        if not 2 <= self.rank_archs <= 15625:
            raise ConfigError("rank_archs", self.rank_archs, "must be in 2..15625 (NAS-Bench-201's cells)")
        if self.fisher_source == "train" and self.fisher_estimator != "batch_sq":
            raise ConfigError("fisher_estimator", self.fisher_estimator, "fisher_source=train folds the training "
                              "batch's own gradient, which is batch_sq; use fisher_source=valid for the others")

    def shared_lr_at(self, epoch: int) -> float:
        """The shared learning rate of ``epoch``: constant, then ×decay per epoch after ``shared_decay_after``."""
        return self.shared_lr * self.shared_decay ** max(epoch - self.shared_decay_after, 0)

    def wpl_active(self, epoch: int) -> bool:
        """WPL is on from ``start_using_fisher`` on (never without ``use_wpl``)."""
        return self.use_wpl and epoch >= self.start_using_fisher

    def controller_trains(self, epoch: int) -> bool:
        """The controller trains in ``epoch`` (never with ``search_strategy="random"``)."""
        return (self.search_strategy == "enas" and self.train_controller
                and self.start_training_controller <= epoch < self.stop_training_controller)


@dataclass(frozen=True)
class ControllerConfig:
    """The ENAS policy's size and sampling, and its REINFORCE update."""

    controller_hid: int = 100
    softmax_temperature: float = 5.0
    tanh_c: float = 2.5
    controller_optim: str = "adam"
    controller_lr: float = 3.5e-4
    controller_grad_clip: float = 0.0
    policy_batch_size: int = 5
    entropy_mode: str = "reward"
    entropy_coeff: float = 1e-4
    ema_baseline_decay: float = 0.95
    discount: float = 1.0

    def __post_init__(self) -> None:
        at_least(self, 1, "controller_hid", "policy_batch_size")
        at_least(self, 0, "controller_lr", "controller_grad_clip", "tanh_c")
        if not self.softmax_temperature > 0:
            raise ConfigError("softmax_temperature", self.softmax_temperature, "must be > 0")
        one_of(self, "controller_optim", ("adam", "sgd"))
        one_of(self, "entropy_mode", ("reward", "regularizer"))
        in_unit(self, "ema_baseline_decay")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError("discount", self.discount, "must be in (0, 1] (1 = no discount)")


@dataclass(frozen=True)
class TaskConfig:
    """What every task reads: batch sizes, the forgetting slice, the reward and what WPL protects."""

    batch_size: int = 64
    test_batch_size: int = 1
    forgetting_batches: int = 4
    reward_c: float = 80.0
    ppl_square: bool = False
    wpl_scope: str = "edges"
    num_blocks: int = 12

    def __post_init__(self) -> None:
        at_least(self, 1, "batch_size", "test_batch_size", "forgetting_batches", "num_blocks")
        one_of(self, "wpl_scope", ("edges", "used"))

    def check_valid_batches(self, n_valid: int) -> None:
        """The forgetting slice must fit in the ``n_valid`` validation batches the data gives."""
        if self.forgetting_batches > n_valid:
            raise ConfigError("forgetting_batches", self.forgetting_batches,
                              f"exceeds the {n_valid} validation batches of batch_size {self.batch_size}")


@dataclass(frozen=True)
class ImageConfig(TaskConfig):
    """What the image spaces share: how their training batches are drawn and augmented."""

    cutout: int = 0
    augment_scope: str = "image"  # one crop/flip/cutout draw per image, or one for the whole batch
    train_sampling: str = "epoch"  # training batches: passes over a shuffled order, or drawn with replacement
    random_seed: int = 12345

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 0, "cutout")
        one_of(self, "augment_scope", AUGMENT_SCOPES)
        one_of(self, "train_sampling", TRAIN_SAMPLINGS)


def space_name(check, field: str, name: str) -> str:
    try:
        return check(name)
    except ValueError as exc:
        raise ConfigError(field, name, str(exc)) from exc


def distinct(field: str, names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ConfigError(field, names, "lists a name twice")


@dataclass(frozen=True)
class Configs:
    """Everything a search needs, built once from the flags."""

    network_type: str
    search: SearchConfig
    wpl: WplConfig
    controller: ControllerConfig
    space: TaskConfig  # the space's own config class

    def __post_init__(self) -> None:
        from .spaces import all_spaces, get

        space = get(self.network_type)
        if self.search.rank_every and space.rank is None:
            have = "|".join(s.kind for s in all_spaces() if s.rank is not None)
            raise ConfigError("rank_every", self.search.rank_every, "ranks against a benchmark's ground truth: it "
                              f"needs network_type={have} (network_type={self.network_type} has none)")
        allowed = space.estimators
        if self.search.fisher_estimator not in allowed:
            raise ConfigError("fisher_estimator", self.search.fisher_estimator,
                              f"is not available for network_type={self.network_type} (it has "
                              f"{', '.join(allowed)}: a language-model batch has no per-sample class logits)")
