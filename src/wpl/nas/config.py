"""Typed configs of a search, each checked when built: :class:`RunConfig` (what runs where),
:class:`SearchConfig` (the loop), :class:`ControllerConfig` (the policy and its REINFORCE update),
:class:`TaskConfig` (what every task reads; each space's package subclasses it with its sizes, e.g.
:class:`ImageConfig` for the image spaces) and :class:`CompatConfig` (the original's flags that do nothing);
with :class:`~wpl.plasticity.WplConfig` (the regularizer) they are gathered in
:class:`~wpl.nas.configs.Configs`. Every search flag is one of their fields (made with :func:`wpl.fields.flag`);
a bad value raises :class:`~wpl.errors.ConfigError` naming the field."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..fields import at_least, check_choices, flag, in_unit, one_of
from ..fisher import ESTIMATORS
from .spaces import get, kinds

AUGMENT_SCOPES = ("image", "batch")
TRAIN_SAMPLINGS = ("epoch", "replace")

WPL_UPDATES = ("gradient", "after_clip", "proximal")
WPL_ANCHORS = ("step", "snapshot", "ema")


@dataclass(frozen=True)
class SearchConfig:
    """The loop: epochs, shared training, when WPL and the controller are on, telemetry, derive, saving."""

    max_epoch: int = flag(100, "epochs", on_resume="given")
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
    save_epoch: int = flag(5, "derive, draw and keep a checkpoint copy every N epochs", on_resume="given")
    max_save_num: int = flag(4, "checkpoint copies kept", on_resume="given")
    log_step: int = flag(50, "steps between log lines", on_resume="given")
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
        check_choices(self)
        if not 0 <= self.shared_momentum < 1:
            raise ConfigError("shared_momentum", self.shared_momentum, "must be in [0, 1)")
        if self.shared_momentum and self.shared_optim != "sgd":
            raise ConfigError("shared_momentum", self.shared_momentum, "is SGD's momentum: it needs shared_optim=sgd")
        if self.arch_stream == "own" and self.search_strategy != "random":
            raise ConfigError("arch_stream", self.arch_stream, "applies to search_strategy=random (the controller "
                              "samples ENAS's architectures)")
        at_least(self, 1, "wpl_anchor_every")
        if not 0 < self.wpl_anchor_rate <= 1:
            raise ConfigError("wpl_anchor_rate", self.wpl_anchor_rate, "must be in (0, 1]")
        at_least(self, 0, "valid_skip_every")
        in_unit(self, "weight_ema")
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
        check_choices(self)
        in_unit(self, "ema_baseline_decay")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError("discount", self.discount, "must be in (0, 1] (1 = no discount)")


@dataclass(frozen=True)
class TaskConfig:
    """What every task reads: batch sizes, the forgetting slice, the reward, what WPL protects, the seed."""

    batch_size: int = flag(64, "text: parallel streams; images: batch size")
    test_batch_size: int = flag(1, "batch size of the full validation/test evaluations")
    forgetting_batches: int = flag(4, "validation batches of the fixed forgetting slice")
    reward_c: float = flag(80.0, "reward constant c")
    ppl_square: bool = flag(False, "reward c/ppl² (RNN) or c·acc² (CNN)")
    wpl_scope: str = flag("edges", "what WPL protects: edges = the architecture-specific weights (RNN edges, CNN ops; "
        "the original), used = every parameter the architecture uses (adds embedding/decoder/stem...)",
        choices=["edges", "used"])
    num_blocks: int = flag(12, "RNN: nodes per cell; CNN: blocks per cell")
    random_seed: int = flag(12345, "seed for python, numpy and torch (and the held-out images' split)")

    def __post_init__(self) -> None:
        check_choices(self)
        at_least(self, 1, "batch_size", "test_batch_size", "forgetting_batches", "num_blocks")

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
    """What the image spaces share: the images' size and held-out split, how training batches are drawn and
    augmented."""

    cnn_height: int = flag(32, "input height (images are resized to it)")
    cnn_width: int = flag(32, "input width")
    cnn_input_channels: int = flag(3, "image channels")
    valid_size: int = flag(5000, "training images held out for validation")
    cutout: int = flag(0, "cutout size in pixels for training augmentation (0 = off)")
    augment_scope: str = flag("image", "image: each training image gets its own random crop, flip and cutout; batch: "
        "one draw for the whole batch (milder; nb201's default, it ranks better there)", choices=AUGMENT_SCOPES)
    train_sampling: str = flag("epoch", "image spaces' training batches: epoch = passes over a shuffled order, replace "
        "= each batch drawn uniformly with replacement (nb201's default)", choices=TRAIN_SAMPLINGS)

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, "cnn_height", "cnn_width", "cnn_input_channels", "valid_size")
        at_least(self, 0, "cutout")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MODES = ("train", "derive", "test", "train_final")


@dataclass(frozen=True)
class RunConfig:
    """What runs where: the space and its data, the run folder, resuming, the device, logging."""

    network_type: str = flag(kinds()[0], "the search space: one of the registered spaces (wpl.nas.spaces; the "
                             "first, the original's, is the default)")
    dataset: str = flag("", "folder under --data_dir (text: train/valid/test.txt); default ('') the space's own, "
                        "e.g. ptb for the recurrent cells, cifar10 for the image spaces")
    data_dir: str = flag("data", "input root (holds <dataset>/)", on_resume="given")
    log_dir: str = flag("logs", "output root", on_resume="given")
    comment: str | None = flag(None, "run name suffix: logs/<dataset>_<comment>")
    mode: str = flag("train", "train (search), derive (derive from a saved run), test (test numbers of a run: its "
                     "final model's when trained) or train_final (= wpl train-final, its own flags)", choices=MODES,
                     on_resume="command")
    load_path: str = flag("", "run to resume or derive from: a folder, or a model name under --log_dir",
                          on_resume="command")
    arch: str = flag("", "--mode=test: score this cell with the run's supernet (a named cell, random:SEED or a .json) "
                     "instead of its best derived cell", on_resume="command")
    resume: bool = flag(False, "continue the run named by --load_path, else the <dataset>_<comment> run",
                        on_resume="command")
    resume_with_new_params: bool = flag(False, "on resume, take hyper-parameters from this command line",
                                        on_resume="command")
    wpl_recipe: str = flag("original", "original = WPL as its flags say (their defaults and the README's commands are "
                           "the original's); recommended = this project's measured best (docs/rnn.md, BENCHMARKS.md): "
                           "--legacy_compound_alpha=False --fisher_normalise=mean --fisher_clip_by_norm=0 "
                           "--wpl_update=proximal --wpl_scope=used --alpha_fisher=1/shared_lr, in place of those flags "
                           "given before it (a flag after it wins)", choices=["original", "recommended"])
    log_level: str = flag("INFO", "DEBUG, INFO, WARNING or ERROR", choices=LOG_LEVELS, on_resume="given")
    use_tensorboard: bool = flag(True, "write TensorBoard events", on_resume="given")
    num_gpu: int = flag(1, "0 forces the CPU; otherwise CUDA when available", on_resume="given")
    device: str = flag("auto", "auto, cpu, cuda or cuda:N (overrides --num_gpu)", on_resume="given")
    num_threads: int = flag(0, "CPU threads of torch's intra-op pool (0 = torch's default: all cores); give each of "
                            "several searches on one machine its share", on_resume="given")
    deterministic: bool = flag(False, "deterministic CUDA kernels (slower), so a GPU run repeats and resumes to the "
                               "same numbers; the CPU always does", on_resume="given")

    def __post_init__(self) -> None:
        one_of(self, "network_type", kinds())
        if not self.dataset:
            object.__setattr__(self, "dataset", get(self.network_type).dataset)
        check_choices(self)
        at_least(self, 0, "num_gpu", "num_threads")


@dataclass(frozen=True)
class CompatConfig:
    """The flags the original accepted that do nothing (there, or here): accepted so its commands run as written."""

    shared_ce_fisher: bool = flag(True, "Fisher from the cross-entropy only (accepted; always CE here)")
    controller_update_fisher: bool = flag(False, "accepted (unused in the original too)")
    search_mode: str = flag("micro", "micro (macro search is not implemented, as in the original)", choices=["micro"])
    output_classes: int = flag(10, "accepted (the classes are the dataset's)")
    num_workers: int = flag(4, "accepted (data stays in memory)")
    cnn_hid: int = flag(64, "accepted (unused in the original)")
    controller_lr_cosine: bool = flag(False, "accepted (unused in the original)")
    controller_lr_max: float = flag(0.05, "accepted (unused in the original)")
    controller_lr_min: float = flag(0.001, "accepted (unused in the original)")
    shared_num_sample: int = flag(1, "architectures per shared step (only 1 is supported)")
    dag_path: str = flag("", "accepted (unused)")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.shared_num_sample != 1:
            raise ConfigError("shared_num_sample", self.shared_num_sample, "only 1 architecture per shared step is "
                              "supported (the original silently mis-handles more)")


def space_name(check, field: str, name: str) -> str:
    try:
        return check(name)
    except ValueError as exc:
        raise ConfigError(field, name, str(exc)) from exc


def distinct(field: str, names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ConfigError(field, names, "lists a name twice")
