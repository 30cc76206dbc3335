"""The search command's flags: every flag of the original ``config.py`` with its name and default,
the ones its README uses without defining, and ours; parsed strictly (see :mod:`wpl.flags`) and
turned once into the typed configs of :mod:`wpl.nas.config` (:func:`build_configs`), so a bad
value is refused before any data loads, in one line naming the flag."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import warnings
from collections.abc import Sequence

from wpl.errors import ConfigError
from wpl.flags import StrictParser, str2bool
from wpl.plasticity import WplConfig

from .. import spaces
from ..config import Configs, ControllerConfig, ImageConfig, SearchConfig, TaskConfig


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


# (flag, type, default, help). Types: int, float, str, bool (str2bool), list (str_list).
FLAGS: dict[str, list[tuple[str, object, object, str]]] = {
    "WPL": [
        ("wpl_recipe", str, "original", "original = WPL as the flags below say (their defaults and the README's "
         "commands are the original's); recommended = this project's measured best (docs/rnn.md, BENCHMARKS.md): "
         "--legacy_compound_alpha=False --fisher_normalise=mean --fisher_clip_by_norm=0 --wpl_update=proximal "
         "--wpl_scope=used --alpha_fisher=1/shared_lr, in place of those flags given before it (a flag after "
         "it wins)"),
        ("set_fisher_zero_per_iter", int, -1, "reset the Fisher every N epochs (N > 0)"),
        ("lambda_fisher", float, 0.9, "weight of the new estimate in the Fisher EMA"),
        ("fisher_clip_by_norm", float, 0.0, "clip each Fisher tensor to this L2 norm (0 = no clip)"),
        ("alpha_fisher", float, 1.0, "WPL strength α"),
        ("momentum", bool, True, "Fisher as EMA (True) or accumulated sum (False); not the optimizer's momentum"),
        ("alpha_decay", float, 2.0, "α decay per epoch after --alpha_decay_after"),
        ("alpha_decay_after", float, 15.0, "epoch at which α starts to decay"),
        ("alpha_decay_mode", int, 1, "1 = linear decay, 2 = exponential (α·decay^k)"),
        ("alpha_small_scale", float, 0.0, "floor α never decays below"),
        ("legacy_compound_alpha", bool, True,
         "the original's Fisher update (α multiplied into the stored F at every update, so the "
         "original's α and clip mean what they meant); False = α/2·ΣF·d² with F = EMA of g² (see docs/rnn.md)"),
        ("fisher_normalise", str, "none", "none, or mean: each tensor's Fisher divided by its mean, so α does not "
         "depend on the model's gradient scale (needs --legacy_compound_alpha=False)"),
        ("shared_ce_fisher", bool, True, "Fisher from the cross-entropy only (accepted; always CE here)"),
        ("controller_update_fisher", bool, False, "accepted for compatibility (unused in the original too)"),
    ],
    "CNN": [
        ("search_mode", str, "micro", "micro (macro search is not implemented, as in the original)"),
        ("output_classes", int, 10, "classes of the image dataset"),
        ("cnn_height", int, 32, "input height (images are resized to it)"),
        ("cnn_width", int, 32, "input width"),
        ("cnn_input_channels", int, 3, "image channels"),
        ("num_workers", int, 4, "accepted for compatibility (data stays in memory)"),
        ("valid_size", int, 5000, "training images held out for validation (images only)"),
    ],
    "Network": [
        ("network_type", str, spaces.kinds()[0], "the search space: one of the registered spaces (wpl.nas.spaces; the "
         "first, the original's, is the default)"),
        ("cnn_hid", int, 64, "accepted for compatibility (unused in the original)"),
        ("dataset", str, "ptb", "folder under --data_dir (text: train/valid/test.txt); default: the space's own "
         "(rnn: ptb, micro_cnn and nb201: cifar10)"),
    ],
    "Learning": [
        ("mode", str, "train", "train (search), derive (derive from a saved run), test (test numbers of a run: "
         "its final model's when trained) or train_final (= wpl train-final, its own flags)"),
        ("controller_lr_cosine", bool, False, "accepted for compatibility (unused in the original)"),
        ("controller_lr_max", float, 0.05, "accepted for compatibility"),
        ("controller_lr_min", float, 0.001, "accepted for compatibility"),
        ("shared_num_sample", int, 1, "architectures per shared step (only 1 is supported)"),
    ],
    "Misc": [
        ("load_path", str, "", "run to resume or derive from: a folder, or a model name under --log_dir"),
        ("arch", str, "", "--mode=test: score this cell with the run's supernet (a named cell, random:SEED or a "
         ".json) instead of its best derived cell"),
        ("resume", bool, False, "continue the run named by --load_path, else the <dataset>_<comment> run"),
        ("resume_with_new_params", bool, False, "on resume, take hyper-parameters from this command line"),
        ("log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
        ("log_dir", str, "logs", "output root"),
        ("data_dir", str, "data", "input root (holds <dataset>/)"),
        ("num_gpu", int, 1, "0 forces the CPU; otherwise CUDA when available"),
        ("use_tensorboard", bool, True, "write TensorBoard events"),
        ("comment", str, None, "run name suffix: logs/<dataset>_<comment>"),
        ("dag_path", str, "", "accepted for compatibility"),
        ("device", str, "auto", "auto, cpu, cuda or cuda:N (overrides --num_gpu)"),
        ("num_threads", int, 0, "CPU threads of torch's intra-op pool (0 = torch's default: all cores); give "
         "each of several searches on one machine its share"),
        ("deterministic", bool, False, "deterministic CUDA kernels (slower), so a GPU run repeats and resumes "
         "to the same numbers; the CPU always does"),
    ],
}
# --wpl_recipe=recommended: the mechanism study's best (BENCHMARKS.md); α is 1/shared_lr, so a weight of
# mean Fisher moves half as far per step as the task gradient alone would take it
RECIPES: dict[str, dict[str, object]] = {
    "original": {},
    "recommended": {"legacy_compound_alpha": False, "fisher_normalise": "mean", "fisher_clip_by_norm": 0.0,
                    "wpl_update": "proximal", "wpl_scope": "used", "alpha_fisher": "1/shared_lr"},
}
ALIASES = {"random_seed": ["--seed"]}
CHOICES = {
    "mode": ["train", "derive", "test", "train_final"],
    "fisher_normalise": ["none", "mean"],
    "alpha_decay_mode": [1, 2],
    "log_level": ["DEBUG", "INFO", "WARNING", "ERROR"],
    "search_mode": ["micro"],
    "wpl_recipe": list(RECIPES),
}
# settings the command line spells differently (the regularizer's α, the image loader's channels)
FLAG_OF = {"alpha": "alpha_fisher", "channels": "cnn_input_channels"}


_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "tuple[str, ...]": str_list}


# the configs whose fields made with wpl.nas.config.flag are flags, in --help's order (then each space's own)
CONFIG_GROUPS = {"Search loop": SearchConfig, "Controller": ControllerConfig, "Task (every space)": TaskConfig,
                 "Image spaces": ImageConfig}


def _config_rows(cls, seen: set[str]) -> list[tuple]:
    """The flags of ``cls``'s fields made with :func:`wpl.nas.config.flag` (name, type, default, help) that no
    earlier group has."""
    rows = []
    for f in dataclasses.fields(cls):
        if "help" in f.metadata and f.name not in seen:
            seen.add(f.name)
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            rows.append((f.name, _TYPES[str(f.type)], default, f.metadata["help"]))
    return rows


def all_flags() -> dict[str, list[tuple]]:
    """Every flag by --help group: the hand-written ones (WPL, data, run), the configs' fields, each space's."""
    seen = {name for group in FLAGS.values() for name, *_ in group}
    out = {**FLAGS, **{title: _config_rows(cls, seen) for title, cls in CONFIG_GROUPS.items()}}
    for space in spaces.all_spaces():
        if rows := _config_rows(space.config, seen):
            out[f"{space.kind} space (--network_type={space.kind})"] = rows
    return out


def config_choices() -> dict[str, list]:
    """The allowed values of the configs' flags that have them (each space's too), and of --network_type."""
    out: dict[str, list] = {"network_type": spaces.kinds()}
    for cls in (*CONFIG_GROUPS.values(), *(s.config for s in spaces.all_spaces())):
        out.update({f.name: f.metadata["choices"] for f in dataclasses.fields(cls)
                    if f.metadata.get("choices") is not None})
    return out


def defaults() -> dict:
    """Every flag's default value."""
    return {name: default for group in all_flags().values() for name, _, default, _ in group}


def build_parser(prog: str = "wpl search") -> StrictParser:
    """The strict parser for ``python main.py`` / ``wpl search``."""
    own = "; ".join(f"--network_type={s.kind}: " + ", ".join(f"{k}={v}" for k, v in s.flag_defaults.items())
                    for s in spaces.all_spaces() if s.flag_defaults)
    p = StrictParser(prog=prog, description="ENAS search with Weight Plasticity Loss (the original main.py flags)",
                     epilog="example: wpl search --network_type=nb201 --dataset=cifar10 --data_dir=DIR "
                     "--nb201_channels=8 --nb201_cells=1 --max_epoch=2. Some spaces change some defaults (an explicit "
                     f"flag always wins): {own}.")
    choices = {**CHOICES, **config_choices()}
    for group_name, flags in all_flags().items():
        g = p.add_argument_group(group_name)
        for name, typ, default, help_ in flags:
            kind = str2bool if typ is bool else typ
            g.add_argument(f"--{name}", *ALIASES.get(name, []), dest=name, type=kind, default=default,
                           choices=choices.get(name), help=f"{help_} (default {default!r})".replace("%", "%%"),
                           metavar=name.upper() if name not in choices else None)
    return p


def _fields(cls, ns: argparse.Namespace) -> dict:
    """The fields of ``cls`` that are flags, from ``ns`` (lists become tuples); the others keep their defaults."""
    out = {}
    for f in dataclasses.fields(cls):
        flag = FLAG_OF.get(f.name, f.name)
        if hasattr(ns, flag):
            value = getattr(ns, flag)
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out


def build_configs(ns: argparse.Namespace) -> Configs:
    """The typed configs of parsed flags; a bad value raises :class:`ConfigError` naming its field."""
    space_cls = spaces.get(ns.network_type).config
    search = SearchConfig(**_fields(SearchConfig, ns))
    return Configs(ns.network_type, search, WplConfig(**_fields(WplConfig, ns)),
                   ControllerConfig(**_fields(ControllerConfig, ns)), space_cls(**_fields(space_cls, ns)))


def parse_search_args(argv: Sequence[str], prog: str = "wpl search") -> argparse.Namespace:
    """Parse and check the flags (the last of repeated flags wins); a bad value exits with one line naming it."""
    p = build_parser(prog)
    args = p.parse_args(list(argv))
    args.explicit = sorted(_explicit_flags(p, argv))
    space = spaces.get(args.network_type)
    if "dataset" not in args.explicit:  # each space's own: a CNN search without --dataset reads cifar10/, not ptb/
        args.dataset = space.dataset
    for name, value in space.flag_defaults.items():
        if name not in args.explicit:
            setattr(args, name, value)
    apply_recipe(args, _last_positions(p, argv))
    problems = check_args(args)
    if problems:
        p.error(problems[0])
    try:
        build_configs(args)
    except ConfigError as exc:
        flag = FLAG_OF.get(exc.name, exc.name)
        p.error(exc.as_flag(flag, default=flag not in args.explicit))
    if args.use_wpl and args.start_using_fisher >= args.max_epoch:
        warnings.warn(
            f"--start_using_fisher={args.start_using_fisher} >= --max_epoch={args.max_epoch}: WPL will never "
            "activate in this run", stacklevel=2)
    return args


def _explicit_flags(p: StrictParser, argv: Sequence[str]) -> set[str]:
    """Destinations given on the command line (for --resume_with_new_params)."""
    return set(_last_positions(p, argv))


def _last_positions(p: StrictParser, argv: Sequence[str]) -> dict[str, int]:
    """Each destination given on the command line, with the position of its last occurrence."""
    by_flag = {s: a.dest for a in p._actions for s in a.option_strings}
    return {by_flag[t.split("=", 1)[0]]: i for i, t in enumerate(argv) if t.split("=", 1)[0] in by_flag}


def apply_recipe(args: argparse.Namespace, positions: dict[str, int]) -> None:
    """Set ``--wpl_recipe``'s flags on ``args``, except those given after it on the command line."""
    where = positions.get("wpl_recipe", -1)
    for name, value in RECIPES[args.wpl_recipe].items():
        if positions.get(name, -1) > where:
            continue
        setattr(args, name, 1.0 / args.shared_lr if value == "1/shared_lr" else value)


def check_args(args: argparse.Namespace) -> list[str]:
    """What no single config can check: flags accepted for compatibility and combinations, as one-line messages."""
    out = []
    if args.shared_num_sample != 1:
        out.append(f"--shared_num_sample={args.shared_num_sample}: only 1 architecture per shared step is supported "
                   "(the original silently mis-handles more)")
    if args.use_wpl and args.legacy_compound_alpha and args.fisher_clip_by_norm <= 0:
        growth = args.alpha_fisher * (1 - args.lambda_fisher) if args.momentum else args.alpha_fisher
        if growth >= 1 and args.alpha_fisher > 1:
            out.append(f"--alpha_fisher={args.alpha_fisher:g} with --legacy_compound_alpha=True and no "
                       "--fisher_clip_by_norm: the stored Fisher is multiplied by α at every update and grows "
                       "without bound; set --fisher_clip_by_norm (the original README uses 10) or "
                       "--legacy_compound_alpha=False")
    for space in spaces.all_spaces():  # each space checks its own flags (also where another space runs)
        out += space.check_flags(args)
    if args.num_gpu < 0:
        out.append(f"--num_gpu must be >= 0, got {args.num_gpu}")
    if args.num_threads < 0:
        out.append(f"--num_threads must be >= 0 (0 = torch's default), got {args.num_threads}")
    return out
