"""The module paths of releases before the package-per-space layout, kept importable for one release.

``import wpl.nas.spaces.rnn.task`` (and every name below) still works and gives the module at its new
path, with a :class:`DeprecationWarning` naming it; ``wpl.nas.search.loop`` and ``wpl.nas.final.loop`` are
packages now and re-export what their modules exported. Removed in the release after 0.x's next.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {  # old module → its new path (wpl.nas.search and wpl.nas.final are packages at their old names)
    "wpl.nas.rnn_arch": "wpl.nas.spaces.rnn.arch",
    "wpl.nas.rnn_cell": "wpl.nas.spaces.rnn.cell",
    "wpl.nas.rnn": "wpl.nas.spaces.rnn.supernet",
    "wpl.nas.rnn_task": "wpl.nas.spaces.rnn.task",
    "wpl.nas.final_rnn": "wpl.nas.spaces.rnn.final",
    "wpl.nas.cpp_ops": "wpl.nas.spaces.rnn.cpp_ops",
    "wpl.nas.linear_ce": "wpl.nas.spaces.rnn.linear_ce",
    "wpl.nas.cnn": "wpl.nas.spaces.micro_cnn.supernet",
    "wpl.nas.cnn_task": "wpl.nas.spaces.micro_cnn.task",
    "wpl.nas.final_cnn": "wpl.nas.spaces.micro_cnn.final",
    "wpl.nas.nb201": "wpl.nas.spaces.nb201.supernet",
    "wpl.nas.nb201_task": "wpl.nas.spaces.nb201.task",
    "wpl.nas.rank_run": "wpl.nas.spaces.nb201.ranking",
    "wpl.nas.search_flags": "wpl.nas.search.flags",
    "wpl.nas.run": "wpl.nas.search.run",
    "wpl.nas.controller": "wpl.nas.search.controller",
    "wpl.nas.run_report": "wpl.nas.search.report",
    "wpl.nas.fisher_map": "wpl.nas.search.fisher_map",
    "wpl.nas.final_flags": "wpl.nas.final.flags",
    "wpl.nas.cells": "wpl.nas.presets",
}


MOVED_NAMES = {  # (old module, name) → the module that holds it now
    ("wpl.nas.config", "RnnConfig"): "wpl.nas.spaces.rnn.config",
    ("wpl.nas.config", "CnnConfig"): "wpl.nas.spaces.micro_cnn.config",
    ("wpl.nas.config", "Nb201Config"): "wpl.nas.spaces.nb201.config",
    ("wpl.nas.rank", "sample_benchmark_cells"): "wpl.nas.spaces.nb201.ranking",
}


def moved_name(module: str, name: str):
    """A name that moved out of ``module`` (its module-level ``__getattr__``), with a DeprecationWarning."""
    new = MOVED_NAMES.get((module, name))
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved to {new}; the old path goes in the next release", DeprecationWarning,
                  stacklevel=3)
    return getattr(importlib.import_module(new), name)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module name with the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: D102
        warnings.warn(f"{spec.name} moved to {MOVED[spec.name]}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:  # noqa: D102
        """Nothing to run: the module at the new path is already imported."""


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
