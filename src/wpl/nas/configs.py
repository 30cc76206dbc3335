"""Everything a search is configured with, as one typed value: :class:`Configs` gathers the run's, the loop's,
the regularizer's, the controller's, the space's and the compatibility flags' configs; it is built from flag
values (:meth:`Configs.from_flags`), saved as plain data (:meth:`Configs.to_dict`, in checkpoints,
``config.json`` and ``summary.json``), read back from either that or the flat flag dict older runs saved
(:meth:`Configs.from_saved`), and merged with a command line on resume (:meth:`Configs.resumed`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..fields import cli_default, flag_name, is_flag
from ..plasticity import WplConfig
from . import spaces
from .config import CompatConfig, ControllerConfig, RunConfig, SearchConfig, TaskConfig

log = logging.getLogger("wpl")
# each group's name in saved configs and its class (the space's is the space's own config class)
GROUPS: dict[str, type] = {"run": RunConfig, "search": SearchConfig, "wpl": WplConfig, "controller": ControllerConfig,
                           "space": TaskConfig, "compat": CompatConfig}


def config_classes() -> list[type]:
    """Every class whose flag fields are search flags: the groups', then each registered space's."""
    return [*(c for c in GROUPS.values() if c is not TaskConfig), *(s.config for s in spaces.all_spaces())]


def flag_fields() -> dict[str, dataclasses.Field]:
    """Every search flag's field, by flag name (a field several space configs inherit counts once)."""
    out: dict[str, dataclasses.Field] = {}
    for cls in config_classes():
        for f in dataclasses.fields(cls):
            if is_flag(f):
                out.setdefault(flag_name(f), f)
    return out


def flag_defaults() -> dict[str, Any]:
    """Every search flag's command-line default."""
    return {name: cli_default(f) for name, f in flag_fields().items()}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _group_flags(cfg: object) -> dict[str, Any]:
    return {flag_name(f): getattr(cfg, f.name) for f in dataclasses.fields(cfg) if is_flag(f)}


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls`` from flag values (lists become tuples); fields without a value keep their defaults."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        if is_flag(f) and flag_name(f) in values:
            v = values[flag_name(f)]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


@dataclass(frozen=True)
class Configs:
    """A search's typed configuration, checked group by group and across groups when built."""

    run: RunConfig
    search: SearchConfig
    wpl: WplConfig
    controller: ControllerConfig
    space: TaskConfig  # the space's own config class
    compat: CompatConfig = field(default_factory=CompatConfig)
    explicit: tuple[str, ...] = field(default=(), compare=False)  # the flags the command line gave (not saved)

    def __post_init__(self) -> None:
        space = spaces.get(self.run.network_type)
        if not isinstance(self.space, space.config):
            raise TypeError(f"a {self.run.network_type} search needs a {space.config.__name__}, got "
                            f"{type(self.space).__name__}")
        space.check_estimator(self.search.fisher_estimator)
        w = self.wpl
        if self.search.use_wpl and w.legacy_compound_alpha and w.fisher_clip_by_norm <= 0:
            growth = w.alpha * (1 - w.lambda_fisher) if w.momentum else w.alpha
            if growth >= 1 and w.alpha > 1:
                raise ConfigError("alpha", w.alpha, "with legacy_compound_alpha=True and fisher_clip_by_norm=0 (no "
                                  "clip) the stored Fisher is multiplied by α at every update and grows without "
                                  "bound; set fisher_clip_by_norm=10 (the original README's) or "
                                  "legacy_compound_alpha=False")
        space.check(self)

    @property
    def network_type(self) -> str:
        """The search space."""
        return self.run.network_type

    def groups(self) -> Iterator[tuple[str, Any]]:
        """``(name, config)`` of each group, in :data:`GROUPS`' order."""
        return ((name, getattr(self, name)) for name in GROUPS)

    def flags(self) -> dict[str, Any]:
        """Every flag's value, by flag name (a flat view: reports, the run's differences)."""
        return {k: v for _, cfg in self.groups() for k, v in _group_flags(cfg).items()}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain data, by group and field (what checkpoints, ``config.json`` and ``summary.json`` hold)."""
        return {name: {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
                for name, cfg in self.groups()}

    @classmethod
    def from_flags(cls, values: Mapping[str, Any], explicit: tuple[str, ...] = ()) -> Configs:
        """The configs of flag values (a flag not in ``values`` keeps its field's default); a bad value raises
        :class:`ConfigError` naming its field."""
        run = _build(RunConfig, values)
        groups = {name: _build(c, values) for name, c in GROUPS.items() if name not in ("run", "space")}
        return cls(run=run, space=_build(spaces.get(run.network_type).config, values), explicit=tuple(explicit),
                   **groups)

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any]) -> Configs:
        """The configs a run saved: :meth:`to_dict`'s data, or the flat flag dict of runs saved before it. Flags
        added since keep what the run did (its space's legacy values), else the command line's defaults."""
        flat = saved_flags(saved)
        kind = flat.get("network_type", RunConfig.network_type)
        return cls.from_flags({**flag_defaults(), **spaces.get(kind).legacy_flags, **flat})

    def resumed(self, saved: Configs) -> Configs:
        """On resume, this command line's configs merged into the run's ``saved`` ones: what is learned stays the
        run's (unless ``--resume_with_new_params``), the flags saying how long or where to run are this command's
        when it gives them (``on_resume="given"``), its own flags always are (``on_resume="command"``)."""
        if self.run.resume_with_new_params:
            return self
        fields, mine = flag_fields(), self.flags()
        values = saved.flags()
        for name, f in fields.items():
            when = f.metadata["on_resume"]
            if name in mine and (when == "command" or when == "given" and name in self.explicit):
                values[name] = mine[name]
        ignored = [k for k in self.explicit if fields[k].metadata["on_resume"] == "saved"
                   and _plain(values.get(k)) != _plain(mine.get(k))]
        if ignored:
            log.warning("resuming with the saved configuration; ignoring --%s from the command line (pass "
                        "--resume_with_new_params=True to use them)", ", --".join(ignored))
        return Configs.from_flags(values, self.explicit)


def saved_flags(saved: Mapping[str, Any]) -> dict[str, Any]:
    """Flag values of saved configs: :meth:`Configs.to_dict`'s data (flattened, by flag name) or, from runs
    saved before it, the flat flag dict itself."""
    if not isinstance(saved.get("run"), Mapping):
        return {k: v for k, v in saved.items() if k != "explicit"}
    kind = saved["run"].get("network_type", RunConfig.network_type)
    classes = {**GROUPS, "space": spaces.get(kind).config}
    out: dict[str, Any] = {}
    for name, cls in classes.items():
        names = {f.name: flag_name(f) for f in dataclasses.fields(cls) if is_flag(f)}
        out.update({names[k]: v for k, v in saved.get(name, {}).items() if k in names})
    return out
