"""Named cells: published architectures written in our spaces, baselines, and ``random:SEED``.

``preset(name)`` gives the architecture; ``PRESETS`` says where each definition comes from and,
where our space cannot express it exactly, what differs. ``resolve_arch(spec)`` accepts a preset
name, ``random:SEED[:rnn|micro_cnn]``, or a path to an architecture's canonical JSON.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import WplError
from .spaces.micro_cnn.supernet import MicroArch
from .spaces.rnn.arch import ACTIVATIONS, RnnArch

Arch = RnnArch | MicroArch


@dataclass(frozen=True)
class Preset:
    """A named cell: its architecture, where it is defined, what (if anything) differs in our space."""

    arch: Arch
    source: str
    note: str = ""

    @property
    def space(self) -> str:
        """``rnn`` or ``micro_cnn`` (the ``--network_type`` it trains in)."""
        return "rnn" if isinstance(self.arch, RnnArch) else "micro_cnn"


def _rnn(node0: str, nodes: list[tuple[str, int]]) -> RnnArch:
    """A cell from node 0's activation and ``(activation, parent)`` of nodes 1, 2, …"""
    return RnnArch((node0, *(a for a, _ in nodes)), tuple(p for _, p in nodes))


# ENAS's micro op indices (melodyguan/enas, micro_child.py): 0 sep 3x3, 1 sep 5x5, 2 avg pool, 3 max pool, 4 identity
_ENAS_OPS = ["sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"]


def _enas_micro(arc: str) -> tuple[tuple[int, str, int, str], ...]:
    """ENAS's ``fixed_arc`` string for one cell: per block ``x_id x_op y_id y_op``."""
    v = [int(t) for t in arc.split()]
    return tuple((v[k], _ENAS_OPS[v[k + 1]], v[k + 2], _ENAS_OPS[v[k + 3]]) for k in range(0, len(v), 4))


PRESETS: dict[str, Preset] = {
    "enas-ptb": Preset(
        _rnn("tanh", [("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3), ("relu", 4),
                      ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8)]),
        "the ENAS paper's PTB cell (Pham et al. 2018, Fig. 6), as written in DARTS's rnn/genotypes.py "
        "(github.com/quark0/darts, genotype ENAS, concat = its loose ends 2, 5, 6, 9, 10, 11)",
        "exact: 12 nodes, node 0 tanh (DARTS's initial node), output = mean of the loose ends"),
    "darts-v2-rnn": Preset(
        _rnn("tanh", [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
                      ("tanh", 3), ("relu", 5)]),
        "DARTS (second order) PTB cell (Liu et al. 2019), genotype DARTS_V2 in github.com/quark0/darts "
        "rnn/genotypes.py",
        "wiring and activations exact (9 nodes); differs in the output: DARTS averages all 8 intermediate "
        "nodes, our space the loose ends only (4, 6, 7, 8); DARTS has no hidden-norm clip"),
    "identity-rnn": Preset(
        RnnArch(("identity",) * 12, tuple(range(11))),
        "a worst-case baseline: 12 identity nodes in a chain (every node a gated copy of the last)"),
    "enas-cifar10": Preset(
        MicroArch(_enas_micro("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1"),
                  _enas_micro("1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")),
        "the ENAS paper's CIFAR-10 micro cells (Pham et al. 2018, Fig. 7): fixed_arc of "
        "github.com/melodyguan/enas scripts/cifar10_micro_final.sh",
        "exact: B = 5, ops sep 3x3/5x5, avg/max pool 3x3, identity; output = concat of the loose ends"),
    "identity-cifar10": Preset(
        MicroArch(((0, "identity", 1, "identity"),) * 5, ((0, "identity", 1, "identity"),) * 5),
        "a worst-case baseline: every block adds its two inputs unchanged (reduction: factorized reduce)"),
}


def preset(name: str) -> Arch:
    """The architecture of preset ``name``; WplError listing the presets for unknown names."""
    if name not in PRESETS:
        raise WplError(f"unknown cell {name!r}; the named cells are {', '.join(PRESETS)} (wpl cells lists them), "
                       "or random:SEED, or a path to an architecture's .json")
    return PRESETS[name].arch


SPACE_ALIASES = {"rnn": "rnn", "micro": "micro_cnn", "micro_cnn": "micro_cnn", "cnn": "micro_cnn"}


def random_arch(seed: int, space: str, num_blocks: int | None = None) -> Arch:
    """A uniformly sampled cell of ``space`` (``rnn``: 12 nodes, the 4 activations; ``micro_cnn``: B = 5,
    the 5 ops)."""
    space = SPACE_ALIASES.get(space, space)
    rng = random.Random(seed)
    if space == "rnn":
        b = num_blocks or 12
        return RnnArch(tuple(rng.choice(list(ACTIVATIONS)) for _ in range(b)),
                       tuple(rng.randrange(j) for j in range(1, b)))
    if space == "micro_cnn":
        from .spaces.micro_cnn.supernet import OPS

        b = num_blocks or 5

        def cell() -> tuple[tuple[int, str, int, str], ...]:
            return tuple((rng.randrange(k + 2), rng.choice(list(OPS)), rng.randrange(k + 2), rng.choice(list(OPS)))
                         for k in range(b))

        return MicroArch(cell(), cell())
    raise WplError(f"random:{seed}:{space}: the space must be rnn or micro_cnn")


def arch_from_dict(d: dict, source: str) -> Arch:
    """An architecture from its canonical dict (``type`` rnn or micro); WplError naming ``source``."""
    kind = d.get("type") if isinstance(d, dict) else None
    try:
        if kind == "rnn":
            return RnnArch.from_dict(d)
        if kind == "micro_cnn":
            return MicroArch.from_dict(d)
        if kind == "nb201":
            from .spaces.nb201.supernet import Nb201Arch

            return Nb201Arch.from_dict(d)
    except (KeyError, TypeError, ValueError, WplError) as exc:
        raise WplError(f"{source}: not a valid {kind} architecture ({exc})") from exc
    raise WplError(f"{source}: an architecture needs \"type\": \"rnn\", \"micro_cnn\" or \"nb201\" (got {kind!r})")


def resolve_arch(spec: str, space: str | None = None, num_blocks: int | None = None) -> tuple[Arch, str]:
    """``(architecture, name)`` of a preset name, ``random:SEED[:space]`` (``num_blocks`` nodes/blocks when
    given) or a JSON file path."""
    if spec in PRESETS:
        return PRESETS[spec].arch, spec
    if spec.startswith("random:"):
        parts = spec.split(":")
        try:
            seed = int(parts[1])
        except (IndexError, ValueError):
            raise WplError(f"--arch={spec}: write random:SEED or random:SEED:rnn|micro_cnn (e.g. random:0)") from None
        sp = SPACE_ALIASES.get(parts[2], parts[2]) if len(parts) > 2 else (space or "rnn")
        return random_arch(seed, sp, num_blocks), f"random-{'rnn' if sp == 'rnn' else 'cnn'}-{seed}"
    path = Path(spec)
    if not path.is_file():
        preset(spec)  # raises with the list of presets
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WplError(f"{path}: not readable as JSON ({exc})") from exc
    if isinstance(d, dict) and isinstance(d.get("arch"), dict):  # a networks/epoch_XXX.json file
        d = d["arch"]
    return arch_from_dict(d, str(path)), path.stem
