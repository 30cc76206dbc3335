"""The flags of ``wpl train-final`` (and ``main.py --mode=train_final``) → a :class:`FinalJob`, once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from wpl.errors import ConfigError, WplError
from wpl.flags import StrictParser, str2bool

from ..presets import resolve_arch
from ..spaces.micro_cnn.final import CnnFinalConfig
from ..spaces.micro_cnn.supernet import MicroArch
from ..spaces.rnn.final import RnnFinalConfig
from .loop import FinalJob, arch_of_run, run_folder

# flag → (recipe field, the spaces it applies to); defaults come from the recipe of the cell's space
RECIPE_FLAGS = {
    "final_lr": ("lr", "both"), "final_grad_clip": ("grad_clip", "both"),
    "final_weight_decay": ("weight_decay", "both"), "final_batch_size": ("batch_size", "both"),
    "final_eval_batch_size": ("eval_batch_size", "both"),
    "final_embed": ("embed", "rnn"), "final_hid": ("hid", "rnn"), "final_dropout": ("dropout", "rnn"),
    "final_dropoute": ("dropoute", "rnn"), "final_dropouti": ("dropouti", "rnn"), "final_wdrop": ("wdrop", "rnn"),
    "final_test_batch_size": ("test_batch_size", "rnn"), "final_bptt": ("bptt", "rnn"),
    "final_variable_bptt": ("variable_bptt", "rnn"), "final_asgd": ("asgd", "rnn"),
    "final_nonmono": ("nonmono", "rnn"), "rnn_cell": ("cell_impl", "rnn"),
    "final_channels": ("channels", "micro_cnn"), "final_num_cells": ("num_cells", "micro_cnn"),
    "final_cutout": ("cutout", "micro_cnn"), "final_drop_path": ("drop_path", "micro_cnn"),
    "final_auxiliary": ("auxiliary", "micro_cnn"), "final_auxiliary_weight": ("auxiliary_weight", "micro_cnn"),
    "final_train_on": ("train_on", "micro_cnn"), "final_momentum": ("momentum", "micro_cnn"),
    "cnn_sep_conv": ("sep_conv", "micro_cnn"),
}


def final_parser(prog: str = "wpl train-final") -> StrictParser:
    """The command's flags; recipe flags default to the cell's space's recipe (see the README)."""
    p = StrictParser(prog=prog, description="Train a cell from scratch (from a search run, a JSON file, a named "
                     "cell or random:SEED) and score it once on the test split.")
    src = p.add_argument_group("the cell")
    src.add_argument("--model_name", "--load_path", dest="model_name", default="",
                     help="a search run under --log_dir: train its derived cell (writes RUN/final/)")
    src.add_argument("--arch_from", default="best", help="which cell of the run: best, derived or epoch_NNN")
    src.add_argument("--arch", default="", help="a named cell (wpl cells), random:SEED[:rnn|micro_cnn] or an "
                     "architecture .json (writes log_dir/<name>/)")
    src.add_argument("--name", default="", help="the output folder's name with --arch (default: the cell's name)")
    run = p.add_argument_group("the run")
    run.add_argument("--log_dir", default="logs")
    run.add_argument("--dataset", default="", help="default: the run's; with --arch ptb (rnn) or cifar10 (cnn)")
    run.add_argument("--data_dir", default="", help="default: the run's; with --arch 'embedded' (the PTB slice)")
    run.add_argument("--valid_size", type=int, default=None, help="images held out for validation (images only; "
                     "default: the run's, else 5000)")
    run.add_argument("--max_epoch", type=int, default=40)
    run.add_argument("--patience", type=int, default=0,
                     help="stop after this many epochs without a better validation score (0: never)")
    run.add_argument("--seed", "--random_seed", dest="seed", type=int, default=0)
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    run.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    run.add_argument("--resume", type=str2bool, default=False, help="continue this final training")
    run.add_argument("--use_tensorboard", type=str2bool, default=True)
    run.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    rec = p.add_argument_group("the recipe (defaults: the paper-size configuration of the cell's space)")
    types = {f.name: f.type for cls in (RnnFinalConfig, CnnFinalConfig) for f in fields(cls)}
    for flag, (name, space) in RECIPE_FLAGS.items():
        kind = {"int": int, "float": float, "bool": str2bool, "str": str}[str(types[name])]
        rec.add_argument(f"--{flag}", type=kind, default=None, help=f"{space}: {name}")
    return p


def _recipe(cls, args, space: str):
    given = {name: getattr(args, flag) for flag, (name, sp) in RECIPE_FLAGS.items()
             if sp in ("both", space) and getattr(args, flag) is not None}
    wrong = [f"--{flag}" for flag, (_, sp) in RECIPE_FLAGS.items()
             if sp not in ("both", space) and getattr(args, flag) is not None]
    if wrong:
        raise WplError(f"{', '.join(wrong)}: not a setting of the {space} recipe (the cell is {space})")
    try:
        return cls(**given)
    except ConfigError as exc:
        flag = next((f for f, (n, _) in RECIPE_FLAGS.items() if n == exc.name), exc.name)
        raise WplError(exc.as_flag(flag)) from exc


def build_job(args) -> FinalJob:
    """The job the flags describe; WplError (one line naming the flag) for what cannot run."""
    if bool(args.model_name) == bool(args.arch):
        raise WplError("name the cell to train: --model_name RUN (a search run) or --arch NAME|FILE.json|random:SEED, "
                       "not both")
    log_dir = Path(args.log_dir)
    if args.model_name:
        run = run_folder(log_dir, args.model_name)
        arch = arch_of_run(run, args.arch_from)
        cfg = json.loads((run / "config.json").read_text())
        dataset = args.dataset or cfg.get("dataset", "ptb")
        data_dir = args.data_dir or cfg.get("data_dir", "embedded")
        out, source = run / "final", f"run {run.name} ({args.arch_from} derived cell)"
        valid_size = args.valid_size or int(cfg.get("valid_size", 5000))
        split_seed = int(cfg.get("random_seed", args.seed))  # the search's held-out images stay held out
    else:
        arch, name = resolve_arch(args.arch)
        space = "micro_cnn" if isinstance(arch, MicroArch) else "rnn"
        dataset = args.dataset or ("ptb" if space == "rnn" else "cifar10")
        data_dir = args.data_dir or "embedded"
        out, source = log_dir / (args.name or name), f"--arch {args.arch}"
        valid_size, split_seed = args.valid_size or 5000, None
    from ..spaces.nb201.supernet import Nb201Arch

    if isinstance(arch, Nb201Arch):
        raise WplError(f"{arch.string}: a NAS-Bench-201 cell needs no final training here: the benchmark trained "
                       f"every cell (its CIFAR-10 test accuracy is {_nb201_truth(arch):.2f}%)")
    space = "micro_cnn" if isinstance(arch, MicroArch) else "rnn"
    job = FinalJob(arch=arch, out_dir=out, source=source, dataset=dataset,
                   data_dir=None if data_dir == "embedded" else data_dir, max_epoch=args.max_epoch,
                   patience=args.patience, seed=args.seed, device=args.device, resume=args.resume,
                   use_tensorboard=args.use_tensorboard, valid_size=valid_size, split_seed=split_seed)
    if args.max_epoch < 1:
        raise ConfigError("max_epoch", args.max_epoch, "must be >= 1")
    if args.patience < 0:
        raise ConfigError("patience", args.patience, "must be >= 0 (0: never stop early)")
    if space == "rnn":
        job.rnn = _recipe(RnnFinalConfig, args, space)
    else:
        job.cnn = _recipe(CnnFinalConfig, args, space)
    return job


def _nb201_truth(arch) -> float:
    from wpl.data.nb201 import ground_truth

    return ground_truth().lookup(arch.string)


def parse_final_args(argv: Sequence[str], prog: str = "wpl train-final"):
    """Parsed flags (argparse errors exit 2 with one line)."""
    return final_parser(prog).parse_args(list(argv))
