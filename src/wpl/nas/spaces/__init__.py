"""The search spaces, one package each, and the registry: the one place that lists them.

``REGISTRY`` maps a ``--network_type`` to the module that exports its :class:`~wpl.nas.space.Space`
as ``SPACE``; the module is imported the first time the space is asked for. :func:`register` adds one
at run time (a plugin, or a test's toy space).
"""

from __future__ import annotations

import importlib

from ...errors import WplError
from ..space import Space

REGISTRY: dict[str, str] = {
    "rnn": "wpl.nas.spaces.rnn",
    "micro_cnn": "wpl.nas.spaces.micro_cnn",
    "nb201": "wpl.nas.spaces.nb201",
}
_LOADED: dict[str, Space] = {}


def register(kind: str, module: str) -> None:
    """Add (or replace) the space ``kind``, exported as ``SPACE`` by ``module``."""
    REGISTRY[kind] = module
    _LOADED.pop(kind, None)


def kinds() -> list[str]:
    """Every registered ``--network_type``."""
    return list(REGISTRY)


def get(kind: str) -> Space:
    """The space of ``--network_type=kind`` (or of one of its aliases); WplError listing them otherwise."""
    kind = next((s.kind for s in _known() if kind in s.aliases), kind) if kind not in REGISTRY else kind
    if kind not in REGISTRY:
        raise WplError(f"unknown space {kind!r}; the spaces are {', '.join(REGISTRY)}")
    if kind not in _LOADED:
        space = importlib.import_module(REGISTRY[kind]).SPACE
        if space.kind != kind:
            raise WplError(f"{REGISTRY[kind]}.SPACE is space {space.kind!r}, registered as {kind!r}")
        _LOADED[kind] = space
    return _LOADED[kind]


def _known() -> list[Space]:
    return [get(k) for k in REGISTRY]


def all_spaces() -> list[Space]:
    """Every registered space, in registry order."""
    return _known()


def of_arch(arch) -> Space:
    """The space an architecture belongs to (by its class)."""
    for space in _known():
        if isinstance(arch, space.arch):
            return space
    raise WplError(f"{type(arch).__name__}: not the architecture of any space ({', '.join(REGISTRY)})")


def arch_from_dict(d: dict, source: str):
    """An architecture from its canonical dict (its ``type`` names the space); WplError naming ``source``."""
    kind = d.get("type") if isinstance(d, dict) else None
    if kind not in REGISTRY:
        raise WplError(f"{source}: an architecture needs \"type\": one of {', '.join(map(repr, REGISTRY))} "
                       f"(got {kind!r})")
    try:
        return get(kind).arch.from_dict(d)
    except (KeyError, TypeError, ValueError, WplError) as exc:
        raise WplError(f"{source}: not a valid {kind} architecture ({exc})") from exc
