"""The recurrent-cell space's search settings (its flags)."""

from __future__ import annotations

from dataclasses import dataclass

from wpl.errors import ConfigError
from wpl.fields import at_least, flag, in_unit
from wpl.nas.config import TaskConfig, distinct, space_name

from .arch import check_activation

RNN_ACTIVATIONS = ("tanh", "ReLU", "identity", "sigmoid")  # the original's default list (its spelling)
RNN_CELLS = ("auto", "cpp", "python", "reference")  # rnn_cell.unroll's implementations (same numbers to rounding)

@dataclass(frozen=True)
class RnnConfig(TaskConfig):
    """The recurrent-cell space's sizes, dropouts and activation regularizers."""

    shared_embed: int = flag(1000, "embedding size")
    shared_hid: int = flag(1000, "hidden size")
    tie_weights: bool = flag(True, "tie decoder and embedding (needs shared_embed == shared_hid)")
    shared_wdrop: float = flag(0.5, "DropConnect on node 0's recurrent weights")
    shared_dropout: float = flag(0.4, "locked dropout on cell outputs")
    shared_dropoute: float = flag(0.1, "embedding (word-type) dropout")
    shared_dropouti: float = flag(0.65, "locked dropout on embeddings")
    shared_rnn_max_length: int = flag(35, "BPTT length")
    shared_rnn_activations: tuple[str, ...] = flag(RNN_ACTIVATIONS, "activation vocabulary of the RNN cell")
    activation_regularization: bool = flag(False, "AR on the dropped cell outputs")
    activation_regularization_amount: float = flag(2.0, "AR weight")
    temporal_activation_regularization: bool = flag(False, "TAR on consecutive raw outputs")
    temporal_activation_regularization_amount: float = flag(1.0, "TAR weight")
    norm_stabilizer_regularization: bool = flag(False, "penalise hidden norms away from a fixed point")
    norm_stabilizer_regularization_amount: float = flag(1.0, "NSR weight")
    norm_stabilizer_fixed_point: float = flag(5.0, "NSR target norm")
    rnn_cell: str = flag("auto", "the RNN cell's implementation: auto = the C++ kernels where they build (CPU, "
        "float32), else python = the hand-written backward in torch ops; reference = plain autograd (slowest)",
        choices=RNN_CELLS, on_resume="given")

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, "shared_embed", "shared_hid", "shared_rnn_max_length")
        in_unit(self, "shared_wdrop", "shared_dropout", "shared_dropoute", "shared_dropouti")
        if self.tie_weights and self.shared_embed != self.shared_hid:
            raise ConfigError("tie_weights", True, f"needs shared_embed == shared_hid, got {self.shared_embed} and "
                              f"{self.shared_hid} (or set tie_weights False)")
        acts = [space_name(check_activation, "shared_rnn_activations", a) for a in self.shared_rnn_activations]
        distinct("shared_rnn_activations", acts)
        object.__setattr__(self, "shared_rnn_activations", tuple(acts))
