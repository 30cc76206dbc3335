"""What a search space declares about itself: one :class:`Space` per package under ``nas/spaces/``.

The search loop, the commands and the reports never name a space; they ask the registry
(:mod:`wpl.nas.spaces`) for the :class:`Space` of a ``--network_type`` or of an architecture and use
its members. A space package holds its architectures, supernet, task, config and (optionally) its
from-scratch training, and exports ``SPACE``; adding a space is that package plus one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..viz import Graph
from .task import Arch, Task


@dataclass(frozen=True)
class Preset:
    """A named cell: its architecture, where it is defined, what (if anything) differs in our space."""

    arch: Arch
    source: str
    note: str = ""

    @property
    def space(self) -> str:
        """The ``--network_type`` it trains in (its architecture's ``type``)."""
        return self.arch.to_dict()["type"]


@dataclass(frozen=True)
class FinalTraining:
    """A space's from-scratch training: its recipe (a dataclass of defaults) and the trainer's factory.

    ``build(job, device, dist)`` loads the data and returns the trainer (``train_epoch``, ``evaluate``,
    ``state_dict``/``load_state_dict``, as :mod:`wpl.nas.final.loop` drives it). ``flags`` maps each
    ``wpl train-final`` flag to a recipe field (the flags every recipe has are shared by name)."""

    recipe: type
    build: Callable[..., Any]
    flags: Mapping[str, str]
    validates: Callable[[Any], bool] = lambda recipe: True  # False: no held-out split (the recipe trains on it)


@dataclass(frozen=True)
class Space:
    """A search space as the rest of the package sees it."""

    kind: str  # the --network_type, and the "type" of its architectures' canonical JSON
    metric: str  # the unit of its scores: "ppl" or "error"
    dataset: str  # its default --dataset (for --arch cells, which name no run)
    arch: type  # the architecture class: from_dict(d), to_dict(), to_json()
    config: type  # its TaskConfig subclass: the space's own search flags
    build_task: Callable[..., Task]  # (configs, data_dir or None, device, dist) → its task, data loaded
    graph: Callable[[Arch], Graph]  # the drawing of one architecture
    estimators: tuple[str, ...]  # the Fisher estimators meaningful here
    short: str = ""  # its name in random cells' names (random-<short>-SEED); default: kind
    aliases: tuple[str, ...] = ()  # other names random:SEED:<name> accepts
    random_arch: Callable[[int, int | None], Arch] | None = None  # (seed, blocks or None) → a uniform sample
    presets: Callable[[], Mapping[str, Preset]] = dict  # its named cells
    flag_defaults: Mapping[str, Any] = field(default_factory=dict)  # search flags it sets unless given
    legacy_flags: Mapping[str, Any] = field(default_factory=dict)  # values of runs saved before a flag existed
    check: Callable[[Any], None] = lambda configs: None  # Configs → ConfigError for what its own config cannot check
    check_run: Callable[[Any, Any], None] | None = None  # (configs, device): refuse early, before files are written
    fisher_group: Callable[[Task, str], str | None] = lambda task, name: None  # parameter → its group's label
    final: FinalTraining | None = None  # from-scratch training, or None (then no_final says why)
    no_final: Callable[[Arch], str] = lambda arch: "this space has no from-scratch training"
    rank: Callable[..., dict] | None = None  # (search) → ranking fidelity against a ground truth, now
    rank_period: Callable[[Any], int] = lambda config: 0  # its config → epochs between those rankings (0: never)
    commands: Mapping[str, tuple[Callable[..., int], str]] = field(default_factory=dict)  # wpl NAME: (main, help)

    @property
    def name(self) -> str:
        """The short name (``short`` or ``kind``)."""
        return self.short or self.kind

    def check_estimator(self, estimator: str) -> None:
        """A :class:`ConfigError` unless ``estimator`` is one of this space's Fisher estimators."""
        if estimator not in self.estimators:
            raise ConfigError("fisher_estimator", estimator, f"is not available for network_type={self.kind} (it has "
                              f"{', '.join(self.estimators)}; the per-sample estimators need a task with per-sample "
                              "class logits)")
