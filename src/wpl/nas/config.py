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

    max_epoch: int = flag(100, "epochs")
    shared_max_step: int = flag(50, "shared steps (sampled architectures) per epoch")
    shared_initial_step: int = flag(0, "warm-up shared steps before epoch 0 (capped at shared_max_step)")
    num_batch_per_iter: int = flag(10, "consecutive training batches per sampled architecture (one shared step)")
    shared_optim: str = flag("sgd", "sgd or adam", choices=["sgd", "adam"])
    shared_momentum: float = flag(0.0, "Nesterov momentum of the shared SGD (0: plain SGD, the original's)")
    shared_lr: float = flag(20.0, "shared learning rate")
    shared_decay: float = flag(0.96, "shared lr decay per epoch after --shared_decay_after")
    shared_decay_after: float = flag(15.0, "epoch after which the shared lr decays")
    shared_l2_reg: float = flag(1e-7, "shared weight decay")
    shared_grad_clip: float = flag(0.25, "shared grad-norm clip")
    shared_zero_grad: str = flag("none", "gradients between shared steps: none (a weight the step's architecture "
        "did not use is not stepped) or zero (PyTorch 0.4.1's, the original's: a weight used once keeps a zero "
        "gradient, so weight decay and momentum move it at every later step)", choices=["none", "zero"])
    use_wpl: bool = flag(True, "False = plain ENAS, the no-WPL baseline (no penalty, no Fisher)")
    start_using_fisher: int = flag(0, "first epoch with WPL on (penalty, Fisher and anchor updates)")
    shared_valid_fisher: bool = flag(True, "Fisher from a validation batch after each step; False also folds in the "
        "step's last training batch (its gradient, with AR/TAR if on)")
    fisher_estimator: str = flag("batch_sq", "Fisher estimator: batch_sq (the original's squared batch gradient), "
        "empirical or true (per-sample; image spaces only)", choices=ESTIMATORS)
    fisher_mode: str = flag("train", "mode of the supernet during the Fisher pass: train (dropout on, as the original) "
        "or eval", choices=["train", "eval"])
    fisher_source: str = flag("valid", "data of the Fisher after each shared step: valid = one validation batch (the "
        "original; one extra forward and backward), train = the step's last training batch, whose gradient is computed "
        "anyway (before the optimizer steps on it; no extra pass)", choices=["valid", "train"])
    fisher_every: int = flag(1, "fold the Fisher after every N-th shared step only (a validation Fisher's extra pass "
        "on 1/N of the steps); anchors still move after every step; 1 = every step, as the original")
    valid_skip_every: int = flag(0, "from --start_using_fisher on, advance the validation stream (the batches the "
        "controller's rewards read) by one batch after every N-th shared step, as the original's validation-batch "
        "Fisher pass does as a side effect (0: never; a step whose validation Fisher pass already advanced it is not "
        "counted twice)")
    weight_ema: float = flag(0.0, "also keep an exponential moving average of the shared weights, θ̄ ← d·θ̄ + (1 − d)·θ "
        "after every shared step, from the initial weights (0: none); training is unchanged; wpl rank --weights=ema "
        "and wpl study score it")
    search_strategy: str = flag("enas", "enas (the controller samples architectures) or random (uniform samples, no "
        "controller: random search with weight sharing, Li & Talwalkar 2019)", choices=["enas", "random"])
    arch_stream: str = flag("global", "random strategy: global = architectures drawn from torch's RNG (which WPL, "
        "dropout and data also draw from), own = from their own seeded generator, so runs that differ only in WPL "
        "settings train the same architecture sequence (paired comparisons)", choices=["global", "own"])
    wpl_update: str = flag("gradient", "how the penalty acts: gradient = its gradient added before the clip (the "
        "original), after_clip = added after clipping the task gradient, proximal = an exact implicit step θ ← (θ + "
        "lr·α·F·θ̂)/(1 + lr·α·F) after the optimizer's (stable for any α)", choices=WPL_UPDATES)
    wpl_anchor: str = flag("step", "where the anchors θ̂ are: step = the weights after each architecture's step (the "
        "original), snapshot = all weights every --wpl_anchor_every shared steps, ema = a moving average of each "
        "architecture's weights (--wpl_anchor_rate)", choices=WPL_ANCHORS)
    wpl_anchor_every: int = flag(100, "snapshot anchors: shared steps between snapshots")
    wpl_anchor_rate: float = flag(0.1, "ema anchors: θ̂ ← θ̂ + rate·(θ − θ̂) after each architecture's step")
    rank_every: int = flag(0, "nb201: every N epochs, rank --rank_archs fixed cells against the ground truth "
        "(metrics.jsonl 'rank' events, TensorBoard rank/*; 0: never)")
    rank_archs: int = flag(100, "nb201: the cells of that fixed, seeded uniform sample")
    rank_batches: int = flag(4, "nb201: validation batches (of --rank_batch_size) each of them is scored on")
    rank_batch_size: int = flag(250, "nb201: images per ranking batch (batch-statistics BN: larger is steadier)")
    train_controller: bool = flag(False, "train the controller each epoch")
    start_training_controller: int = flag(0, "first epoch in which the controller trains")
    stop_training_controller: int = flag(1000, "the controller trains only while epoch < this")
    controller_max_step: int = flag(1500, "controller updates per epoch")
    nb_batch_reward_controller: int = flag(1, "validation batches averaged for each reward")
    start_evaluate_diff: int = flag(0, "forgetting telemetry runs from this epoch on")
    forgetting_every: int = flag(1, "forgetting telemetry on every N-th shared step's architecture only (each scored "
        "twice: right after its step and at the epoch's end); 1 = every architecture")
    forgetting_top_k: int = flag(5, "forgetting is also summarised over the k architectures best at err1")
    derive_num_sample: int = flag(100, "architectures scored when deriving")
    save_epoch: int = flag(5, "derive, draw and keep a checkpoint copy every N epochs")
    max_save_num: int = flag(4, "checkpoint copies kept")
    log_step: int = flag(50, "steps between log lines")
    # inside a phase too: every N steps (shared, controller, derive); 0 = at epoch ends only; -1 = auto
    # (as soon as AUTO_CHECKPOINT_RATIO times the last write's duration, and at least 10 s, have passed)
    checkpoint_every_steps: int = flag(-1, "also write checkpoint.pt inside a phase, every N steps (shared, controller "
        "and derive steps together), so a killed run loses at most N steps; 0 = at epoch ends only; -1 = auto: at the "
        "first step after 50x the last write's duration (and at least 10 s) have passed, so writing costs at most 2% "
        "of the run's time")

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
        at_least(self, 0, "rank_every", "valid_skip_every")
        in_unit(self, "weight_ema")
        at_least(self, 1, "rank_batches", "rank_batch_size")
        if not 2 <= self.rank_archs <= 15625:
            raise ConfigError("rank_archs", self.rank_archs, "must be in 2..15625 (NAS-Bench-201's cells)")
        if self.fisher_source == "train" and self.fisher_estimator != "batch_sq":
            raise ConfigError("fisher_estimator", self.fisher_estimator, "fisher_source=train folds the training "
                              "batch's own gradient, which is batch_sq; use fisher_source=valid for the others")

    def policy(self):
        """The library's :class:`~wpl.policy.PolicyConfig` these flags describe (``after_clip`` is the gradient
        update applied after the clip; ``--wpl_anchor=step`` is the policy's ``model``: after each architecture)."""
        from wpl.policy import PolicyConfig

        return PolicyConfig(update="proximal" if self.wpl_update == "proximal" else "gradient",
                            anchor={"step": "model"}.get(self.wpl_anchor, self.wpl_anchor),
                            anchor_every=self.wpl_anchor_every, anchor_rate=self.wpl_anchor_rate,
                            estimator=self.fisher_estimator, source=self.fisher_source, every=self.fisher_every)

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

    controller_hid: int = flag(100, "controller LSTM width")
    softmax_temperature: float = flag(5.0, "controller softmax temperature")
    tanh_c: float = flag(2.5, "tanh constant of the controller logits")
    controller_optim: str = flag("adam", "adam or sgd", choices=["adam", "sgd"])
    controller_lr: float = flag(3.5e-4, "controller learning rate")
    controller_grad_clip: float = flag(0.0, "controller grad-norm clip (0 = none)")
    policy_batch_size: int = flag(5, "architectures sampled per controller step")
    entropy_mode: str = flag("reward", "reward (entropy bonus in the reward) or regularizer",
        choices=["reward", "regularizer"])
    entropy_coeff: float = flag(1e-4, "entropy weight")
    ema_baseline_decay: float = flag(0.95, "decay of the REINFORCE baseline")
    discount: float = flag(1.0, "reward discount over decisions (1 = none)")

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

    batch_size: int = flag(64, "text: parallel streams; images: batch size")
    test_batch_size: int = flag(1, "batch size of the full validation/test evaluations")
    forgetting_batches: int = flag(4, "validation batches of the fixed forgetting slice")
    reward_c: float = flag(80.0, "reward constant c")
    ppl_square: bool = flag(False, "reward c/ppl² (RNN) or c·acc² (CNN)")
    wpl_scope: str = flag("edges", "what WPL protects: edges = the architecture-specific weights (RNN edges, CNN ops; "
        "the original), used = every parameter the architecture uses (adds embedding/decoder/stem...)",
        choices=["edges", "used"])
    num_blocks: int = flag(12, "RNN: nodes per cell; CNN: blocks per cell")

    def __post_init__(self) -> None:
        at_least(self, 1, "batch_size", "test_batch_size", "forgetting_batches", "num_blocks")
        one_of(self, "wpl_scope", ("edges", "used"))

    def check_valid_batches(self, n_valid: int) -> None:
        """The forgetting slice must fit in the ``n_valid`` validation batches the data gives."""
        if self.forgetting_batches > n_valid:
            raise ConfigError("forgetting_batches", self.forgetting_batches,
                              f"exceeds the {n_valid} validation batches of batch_size {self.batch_size}")


# the image spaces' search-flag defaults: they train with momentum and a linear head, which the RNN's defaults
# (lr 20, clip 0.25) would not; an evaluation batch of one image (the RNN's) gives their batch norms no statistics
IMAGE_DEFAULTS = {"shared_lr": 0.1, "shared_grad_clip": 5.0, "test_batch_size": 100}


@dataclass(frozen=True)
class ImageConfig(TaskConfig):
    """What the image spaces share: how their training batches are drawn and augmented."""

    cutout: int = flag(0, "cutout size in pixels for training augmentation (0 = off)")
    augment_scope: str = flag("image", "image: each training image gets its own random crop, flip and cutout; batch: "
        "one draw for the whole batch (milder; nb201's default, it ranks better there)", choices=AUGMENT_SCOPES)
    train_sampling: str = flag("epoch", "image spaces' training batches: epoch = passes over a shuffled order, replace "
        "= each batch drawn uniformly with replacement (nb201's default)", choices=TRAIN_SAMPLINGS)
    random_seed: int = flag(12345, "seed for python, numpy and torch (alias --seed)")

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
