"""Named cells of every space (published architectures, baselines), ``random:SEED``, and cells from files.

``preset(name)`` gives the architecture; ``presets()`` every space's :class:`~wpl.nas.space.Preset`, which
says where each definition comes from and, where our space cannot express it exactly, what differs.
``resolve_arch(spec)`` accepts a preset name, ``random:SEED[:SPACE]``, or a path to an architecture's
canonical JSON (or a run's ``networks/epoch_XXX.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import WplError
from . import spaces
from .space import Preset
from .task import Arch


def presets() -> dict[str, Preset]:
    """Every space's named cells, in registry order."""
    return {name: p for space in spaces.all_spaces() for name, p in space.presets().items()}


def __getattr__(name: str):
    """``PRESETS``: every space's named cells (what :func:`presets` returns)."""
    if name == "PRESETS":
        return presets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def preset(name: str) -> Arch:
    """The architecture of preset ``name``; WplError listing the presets for unknown names."""
    named = presets()
    if name not in named:
        raise WplError(f"unknown cell {name!r}; the named cells are {', '.join(named)} (wpl cells lists them), "
                       "or random:SEED, or a path to an architecture's .json")
    return named[name].arch


def random_arch(seed: int, space: str, num_blocks: int | None = None) -> Arch:
    """A uniformly sampled cell of ``space`` (a ``--network_type`` or one of its aliases)."""
    sp = spaces.get(space)
    if sp.random_arch is None:
        have = [s.kind for s in spaces.all_spaces() if s.random_arch is not None]
        raise WplError(f"random:{seed}:{space}: the space must be one of {', '.join(have)}")
    return sp.random_arch(seed, num_blocks)


def resolve_arch(spec: str, space: str | None = None, num_blocks: int | None = None) -> tuple[Arch, str]:
    """``(architecture, name)`` of a preset name, ``random:SEED[:space]`` (``num_blocks`` nodes/blocks when
    given; the space defaults to ``space``, else the first registered) or a JSON file path."""
    named = presets()
    if spec in named:
        return named[spec].arch, spec
    if spec.startswith("random:"):
        parts = spec.split(":")
        kinds = "|".join(s.name for s in spaces.all_spaces() if s.random_arch is not None)
        try:
            seed = int(parts[1])
        except (IndexError, ValueError):
            raise WplError(f"--arch={spec}: write random:SEED or random:SEED:{kinds} (e.g. random:0)") from None
        try:
            sp = spaces.get(parts[2] if len(parts) > 2 else (space or spaces.kinds()[0]))
        except WplError:
            raise WplError(f"--arch={spec}: the space must be one of {kinds}") from None
        return random_arch(seed, sp.kind, num_blocks), f"random-{sp.name}-{seed}"
    path = Path(spec)
    if not path.is_file():
        preset(spec)  # raises with the list of presets
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WplError(f"{path}: not readable as JSON ({exc})") from exc
    if isinstance(d, dict) and isinstance(d.get("arch"), dict):  # a networks/epoch_XXX.json file
        d = d["arch"]
    return spaces.arch_from_dict(d, str(path)), path.stem
