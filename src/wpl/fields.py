"""Config fields that are also command-line flags, and the checks configs run when built.

A field made with :func:`flag` is a flag: ``--NAME`` (or the ``name`` it is spelled with on the command
line), its help line, its allowed values, the default the command line gives it when that differs from the
library's (``cli``), and what a resumed run takes for it (``on_resume``). The command line's parser is
generated from these fields alone (:mod:`wpl.nas.search.flags`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from .errors import ConfigError

OnResume = Literal["saved", "given", "command"]
_MISSING: Any = dataclasses.MISSING


def flag(default: Any, help: str, choices: Sequence | None = None, *, name: str | None = None, cli: Any = _MISSING,
         on_resume: OnResume = "saved") -> Any:
    """A config field that is also a flag. ``on_resume``: ``saved`` = a resumed run keeps its saved value;
    ``given`` = the command line's value when given (how long or where to run, not what is learned);
    ``command`` = always this command's (what the command does, never a run's setting)."""
    meta = {"help": help, "choices": None if choices is None else list(choices), "on_resume": on_resume}
    if name is not None:
        meta["flag"] = name
    if cli is not _MISSING:
        meta["cli_default"] = cli
    if isinstance(default, (list, dict, set)):
        raise TypeError("a flag's default must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=meta)


def is_flag(f: dataclasses.Field) -> bool:
    """Whether a dataclass field was made with :func:`flag`."""
    return "help" in f.metadata


def flag_name(f: dataclasses.Field) -> str:
    """The field's name on the command line."""
    return f.metadata.get("flag", f.name)


def cli_default(f: dataclasses.Field) -> Any:
    """The field's default on the command line."""
    return f.metadata.get("cli_default", f.default)


def at_least(cfg: object, low: float, *names: str) -> None:
    """Each named field is ``>= low``."""
    for name in names:
        value = getattr(cfg, name)
        if not value >= low:
            raise ConfigError(name, value, f"must be >= {low:g}")


def in_unit(cfg: object, *names: str, closed: bool = False) -> None:
    """Each named field is in [0, 1) (``closed``: [0, 1])."""
    for name in names:
        value = getattr(cfg, name)
        if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
            raise ConfigError(name, value, f"must be in [0, 1{']' if closed else ')'}")


def one_of(cfg: object, name: str, allowed: Sequence) -> None:
    """The named field is one of ``allowed``."""
    value = getattr(cfg, name)
    if value not in allowed:
        raise ConfigError(name, value, f"must be one of {', '.join(map(str, allowed))}")


def check_choices(cfg: object) -> None:
    """Every flag field of ``cfg`` with allowed values holds one of them."""
    for f in dataclasses.fields(cfg):
        if f.metadata.get("choices") is not None:
            one_of(cfg, f.name, f.metadata["choices"])
