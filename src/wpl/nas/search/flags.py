"""The search command's flags, generated from the typed configs' fields (:mod:`wpl.nas.config`, the
regularizer's :class:`~wpl.plasticity.WplConfig` and each space's config): every flag of the original
``config.py`` with its name and default, the ones its README uses without defining, and ours; parsed strictly
(see :mod:`wpl.flags`) into :class:`~wpl.nas.configs.Configs` once, so a bad value is refused before any data
loads, in one line naming the flag."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import warnings
from collections.abc import Sequence

from wpl.errors import ConfigError
from wpl.fields import cli_default, flag_name, is_flag
from wpl.flags import StrictParser, str2bool
from wpl.plasticity import WplConfig

from .. import spaces
from ..config import CompatConfig, ControllerConfig, ImageConfig, RunConfig, SearchConfig, TaskConfig
from ..configs import Configs, flag_fields


def str_list(value: str) -> list[str]:
    """A Python list literal (``"['tanh','ReLU']"``, as the original's eval) or ``a,b,c``."""
    text = value.strip()
    if text.startswith("["):
        try:
            out = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise argparse.ArgumentTypeError(f"expected a list like ['tanh','ReLU'], got {value!r}") from exc
    else:
        out = [s.strip() for s in text.split(",") if s.strip()]
    if not isinstance(out, list) or not out or not all(isinstance(s, str) for s in out):
        raise argparse.ArgumentTypeError(f"expected a non-empty list of names, got {value!r}")
    return out


# --wpl_recipe=recommended: the mechanism study's best (BENCHMARKS.md); α is 1/shared_lr, so a weight of
# mean Fisher moves half as far per step as the task gradient alone would take it
RECIPES: dict[str, dict[str, object]] = {
    "original": {},
    "recommended": {"legacy_compound_alpha": False, "fisher_normalise": "mean", "fisher_clip_by_norm": 0.0,
                    "wpl_update": "proximal", "wpl_scope": "used", "alpha_fisher": "1/shared_lr"},
}
ALIASES = {"random_seed": ["--seed"]}


def setting_flags() -> dict[str, str]:
    """Each setting's flag, for a :class:`ConfigError`'s message (the regularizer's ``alpha`` is --alpha_fisher, the
    image loader's ``channels`` --cnn_input_channels; the others are spelled alike)."""
    return {**{f.name: flag for flag, f in flag_fields().items()}, "channels": "cnn_input_channels"}


_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "str | None": str, "tuple[str, ...]": str_list}
# the --help groups: the shared configs' flags, then each space's own
HELP_GROUPS = {"Run": RunConfig, "WPL (the regularizer)": WplConfig, "Search loop": SearchConfig,
               "Controller": ControllerConfig, "Task (every space)": TaskConfig, "Image spaces": ImageConfig,
               "Accepted for compatibility (no effect)": CompatConfig}


def _rows(cls: type, seen: set[str]) -> list[tuple[str, dataclasses.Field]]:
    """``cls``'s flags that no earlier group listed: ``(flag name, field)``."""
    rows = []
    for f in dataclasses.fields(cls):
        if is_flag(f) and flag_name(f) not in seen:
            seen.add(flag_name(f))
            rows.append((flag_name(f), f))
    return rows


def help_groups() -> dict[str, list[tuple[str, dataclasses.Field]]]:
    """Every flag, by --help group: the shared configs', then each space's own."""
    seen: set[str] = set()
    out = {title: _rows(cls, seen) for title, cls in HELP_GROUPS.items()}
    for space in spaces.all_spaces():
        if rows := _rows(space.config, seen):
            out[f"{space.kind} space (--network_type={space.kind})"] = rows
    return out


def owners() -> dict[str, list[str]]:
    """The flags of some spaces only (not every task's): flag name → those spaces' kinds."""
    shared = {f.name for f in dataclasses.fields(TaskConfig)}
    out: dict[str, list[str]] = {}
    for space in spaces.all_spaces():
        for f in dataclasses.fields(space.config):
            if is_flag(f) and f.name not in shared:
                out.setdefault(flag_name(f), []).append(space.kind)
    return out


def build_parser(prog: str = "wpl search") -> StrictParser:
    """The strict parser for ``python main.py`` / ``wpl search``: one flag per config field (types only; the
    configs check the values)."""
    own = "; ".join(f"--network_type={s.kind}: " + ", ".join(f"{k}={v}" for k, v in s.flag_defaults.items())
                    for s in spaces.all_spaces() if s.flag_defaults)
    p = StrictParser(prog=prog, description="ENAS search with Weight Plasticity Loss (the original main.py flags)",
                     epilog="example: wpl search --network_type=nb201 --dataset=cifar10 --data_dir=DIR "
                     "--nb201_channels=8 --nb201_cells=1 --max_epoch=2. Some spaces change some defaults (an explicit "
                     f"flag always wins): {own}.")
    for group_name, rows in help_groups().items():
        g = p.add_argument_group(group_name)
        for name, f in rows:
            default, choices = cli_default(f), f.metadata["choices"]
            if name == "network_type":  # the registry's, known once every space is
                choices = spaces.kinds()
            typ = _TYPES.get(str(f.type), type(default))
            shown = list(default) if isinstance(default, tuple) else default
            g.add_argument(f"--{name}", *ALIASES.get(name, []), dest=name, type=str2bool if typ is bool else typ,
                           default=shown, help=f"{f.metadata['help']} (default {shown!r})".replace("%", "%%"),
                           metavar="{" + ",".join(map(str, choices)) + "}" if choices else name.upper())
    return p


def parse_search_args(argv: Sequence[str], prog: str = "wpl search") -> Configs:
    """The typed configs of a command line (the last of repeated flags wins); a bad value exits with one line
    naming its flag."""
    p = build_parser(prog)
    args = p.parse_args(list(argv))
    positions = _last_positions(p, argv)
    explicit = tuple(sorted(positions))
    space = spaces.get(args.network_type) if args.network_type in spaces.kinds() else None
    if space is not None:
        if "dataset" not in explicit:  # each space's own: a CNN search without --dataset reads cifar10/, not ptb/
            args.dataset = space.dataset
        for name, value in space.flag_defaults.items():
            if name not in explicit:
                setattr(args, name, value)
        # a run named by --load_path/--resume has its space in its checkpoint: its flags are judged on resume
        known = "network_type" in explicit or not (args.load_path or args.resume)
        owned = owners() if known else {}
        for name in explicit:
            if (kinds := owned.get(name)) and space.kind not in kinds:
                p.error(f"--{name} is a flag of --network_type={'|'.join(kinds)}; this search is "
                        f"--network_type={space.kind} (drop the flag, or search that space)")
    apply_recipe(args, positions)
    try:
        configs = Configs.from_flags(vars(args), explicit)
    except ConfigError as exc:
        flags = setting_flags()
        flag = flags.get(exc.name, exc.name)
        p.error(exc.as_flag(flag, default=flag not in explicit, flags=flags))
    s = configs.search
    if s.use_wpl and s.start_using_fisher >= s.max_epoch:
        warnings.warn(f"--start_using_fisher={s.start_using_fisher} >= --max_epoch={s.max_epoch}: WPL will never "
                      "activate in this run", stacklevel=2)
    return configs


def _last_positions(p: StrictParser, argv: Sequence[str]) -> dict[str, int]:
    """Each destination given on the command line, with the position of its last occurrence."""
    by_flag = {s: a.dest for a in p._actions for s in a.option_strings}
    return {by_flag[t.split("=", 1)[0]]: i for i, t in enumerate(argv) if t.split("=", 1)[0] in by_flag}


def apply_recipe(args: argparse.Namespace, positions: dict[str, int]) -> None:
    """Set ``--wpl_recipe``'s flags on ``args``, except those given after it on the command line."""
    where = positions.get("wpl_recipe", -1)
    for name, value in RECIPES.get(args.wpl_recipe, {}).items():
        if positions.get(name, -1) > where:
            continue
        setattr(args, name, 1.0 / args.shared_lr if value == "1/shared_lr" else value)
