"""The contract between the search loop and a search space: what a task must provide.

A space is two modules: the space itself (architectures with one canonical JSON form, a supernet
that says which parameters an architecture uses, and a drawing) and a task that owns the supernet
and the data and answers the loop's questions below. :class:`~wpl.nas.search.loop.Search`, the
checkpoints, the forgetting telemetry and the outputs work with any object that has these members.

Modes: the loop puts the supernet in train mode for the shared phase (``train_loss``) and chooses
the mode of the Fisher pass (``--fisher_mode``); every method that scores (``score``, ``reward``,
``evaluate``) switches to eval mode itself and restores the previous mode.

The validation stream: ``reward`` and ``fisher_batch`` read batches at the stream's current
position and never move it; the loop moves it with ``advance_valid`` by the number of batches it
used (``--nb_batch_reward_controller`` after each controller step, one after each Fisher batch).
``score`` always reads the same fixed first ``--forgetting_batches`` batches.

Optional members, read where present: ``dist`` (the task's data-parallel ranks; default: one process),
``config.random_seed`` (the seed of the ``--arch_stream=own`` generator; default: the run's flag), and
``random_actions(n, generator)`` (``search_strategy="random"``'s draw when a space's uniform distribution is
not uniform over each decision, e.g. NAS-Bench-201's non-isomorphic cells; None: the loop's own draw).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

METRICS = ("ppl", "error")  # the unit of a task's scores: perplexity, or error rate (1 − accuracy)


@runtime_checkable
class Arch(Protocol):
    """An architecture: immutable, hashable, with one canonical JSON text."""

    def to_dict(self) -> dict:
        """Plain data (the canonical form, with a ``type`` key)."""

    def to_json(self) -> str:
        """The one canonical JSON text of this architecture."""


class JsonArch:
    """The canonical JSON of an architecture class that has ``to_dict`` and ``from_dict`` (a space's base)."""

    def to_json(self) -> str:
        """The one canonical JSON text of this architecture (sorted keys, no spaces)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str):
        """Parse the canonical JSON (or any JSON with the same fields)."""
        return cls.from_dict(json.loads(text))


class FisherBatch(NamedTuple):
    """What the loop builds an architecture's Fisher from.

    ``loss_fn(model(x), y)`` is the loss whose gradient is squared, for each ``(x, y)`` in
    ``batches``. Per-sample estimators (``empirical``, ``true``) also need ``model`` to be an
    ``nn.Module`` returning class logits ``[N, C]``; a space that cannot offer that lists only
    ``batch_sq`` in its ``estimators``.
    """

    model: Callable[[Tensor], Tensor]
    batches: list[tuple[Tensor, Tensor]]
    loss_fn: Callable[[Tensor, Tensor], Tensor]


@runtime_checkable
class Task(Protocol):
    """A search space with its data, as the search loop uses it."""

    kind: str  # the --network_type it serves: its Space (the registry's) declares the metric — the unit of
    # score(), evaluate() and every logged error — the Fisher estimators meaningful here, and the drawing
    supernet: nn.Module  # the shared weights; its parameters are what the shared optimizer trains
    device: torch.device
    decisions: list[int]  # the controller's decisions: the number of choices of each
    reset_at: tuple[int, ...]  # decisions where the controller's LSTM restarts from zero

    def decode(self, actions: Sequence[int]) -> Arch:
        """Controller actions → architecture."""

    def encode(self, arch: Arch) -> list[int]:
        """Architecture → controller actions (inverse of ``decode``)."""

    def arch_from_json(self, text: str) -> Arch:
        """Parse an architecture's canonical JSON."""

    def protected_names(self, arch: Arch) -> list[str]:
        """Names of the supernet parameters WPL protects while ``arch`` trains."""

    def all_protected_names(self) -> list[str]:
        """Every parameter name ``protected_names`` can return (what the regularizer tracks)."""

    def train_loss(self, arch: Arch) -> tuple[Tensor, Tensor]:
        """On the next training batch (mode as set by the loop: train): (loss to backpropagate, its
        cross-entropy part detached)."""

    def score(self, arch: Arch) -> tuple[float, float]:
        """(error in ``metric``, mean loss) on the fixed validation slice, in eval mode."""

    def reward(self, arch: Arch, batches: int) -> tuple[float, float]:
        """(reward, mean loss) on ``batches`` validation batches at the stream's position, in eval mode."""

    def advance_valid(self, batches: int) -> None:
        """Move the validation stream on by ``batches`` batches (wrapping at the end)."""

    def fisher_batch(self, arch: Arch) -> FisherBatch:
        """One validation batch at the stream's position, to estimate ``arch``'s Fisher on."""

    def evaluate(self, arch: Arch, split: str) -> dict[str, float]:
        """The whole ``valid`` or ``test`` split, in eval mode: at least ``loss`` and ``metric``'s value."""

    def state_dict(self) -> dict:
        """The task's own state (stream positions, carried hidden states, generators): tensors and plain data."""

    def load_state_dict(self, state: dict) -> None:
        """Inverse of ``state_dict``."""
