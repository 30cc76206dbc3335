"""The flags of ``wpl train-final`` (and ``main.py --mode=train_final``) → a :class:`FinalJob`, once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from wpl.errors import ConfigError, WplError
from wpl.flags import StrictParser, str2bool
from wpl.rundir import RunDir

from .. import spaces
from ..configs import saved_flags
from ..presets import resolve_arch
from .loop import FinalJob, arch_of_run, run_folder

# flags every space's recipe has (same field names); each space adds its own (its FinalTraining.flags)
COMMON_FLAGS = {"final_lr": "lr", "final_grad_clip": "grad_clip", "final_weight_decay": "weight_decay",
                "final_batch_size": "batch_size", "final_eval_batch_size": "eval_batch_size"}


def recipe_flags() -> dict[str, tuple[str, str]]:
    """flag → (recipe field, the space it applies to, or "both" for every space's)."""
    out = {flag: (name, "both") for flag, name in COMMON_FLAGS.items()}
    for space in spaces.all_spaces():
        if space.final is not None:
            out.update({flag: (name, space.kind) for flag, name in space.final.flags.items()})
    return out


def final_parser(prog: str = "wpl train-final") -> StrictParser:
    """The command's flags; recipe flags default to the cell's space's recipe (see docs/final-training.md)."""
    p = StrictParser(prog=prog, epilog="example: wpl train-final --model_name ptb_rnn-train --max_epoch 40",
                     description="Train a cell from scratch (from a search run, a JSON file, a named "
                     "cell or random:SEED) and score it once on the test split.")
    src = p.add_argument_group("the cell")
    src.add_argument("--model_name", "--load_path", dest="model_name", default="",
                     help="a search run under --log_dir: train its derived cell (writes RUN/final/)")
    src.add_argument("--arch_from", default="best", help="which cell of the run: best, derived or epoch_NNN")
    src.add_argument("--arch", default="", help="a named cell (wpl cells), random:SEED[:SPACE] or an "
                     "architecture .json (writes log_dir/<name>/)")
    src.add_argument("--name", default="", help="the output folder's name with --arch (default: the cell's name)")
    run = p.add_argument_group("the run")
    run.add_argument("--log_dir", default="logs")
    run.add_argument("--dataset", default="", help="default: the run's; with --arch the cell's space's (wpl cells)")
    run.add_argument("--data_dir", default="", help="default: the run's; with --arch 'embedded' (the PTB slice)")
    run.add_argument("--valid_size", type=int, default=None, help="images held out for validation (images only; "
                     "default: the run's, else 5000)")
    run.add_argument("--max_epoch", type=int, default=40)
    run.add_argument("--patience", type=int, default=0,
                     help="stop after this many epochs without a better validation score (0: never)")
    run.add_argument("--seed", "--random_seed", dest="seed", type=int, default=0)
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    run.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    run.add_argument("--deterministic", type=str2bool, default=False,
                     help="deterministic CUDA kernels (slower): a GPU run repeats and resumes to the same numbers")
    run.add_argument("--resume", type=str2bool, default=False, help="continue this final training")
    run.add_argument("--use_tensorboard", type=str2bool, default=True)
    run.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    rec = p.add_argument_group("the recipe (defaults: the paper-size configuration of the cell's space)")
    recipes = [s.final.recipe for s in spaces.all_spaces() if s.final is not None]
    types = {f.name: f.type for cls in recipes for f in fields(cls)}
    for flag, (name, space) in recipe_flags().items():
        kind = {"int": int, "float": float, "bool": str2bool, "str": str}[str(types[name])]
        rec.add_argument(f"--{flag}", type=kind, default=None, help=f"{space}: {name}")
    return p


def _recipe(cls, args, space: str):
    table = recipe_flags()
    given = {name: getattr(args, flag) for flag, (name, sp) in table.items()
             if sp in ("both", space) and getattr(args, flag) is not None}
    wrong = [f"--{flag}" for flag, (_, sp) in table.items()
             if sp not in ("both", space) and getattr(args, flag) is not None]
    if wrong:
        raise WplError(f"{', '.join(wrong)}: not a setting of the {space} recipe (the cell is {space})")
    try:
        return cls(**given)
    except ConfigError as exc:
        raise WplError(exc.as_flag(flags={n: f for f, (n, _) in table.items()})) from exc


def build_job(args) -> FinalJob:
    """The job the flags describe; WplError (one line naming the flag) for what cannot run."""
    if bool(args.model_name) == bool(args.arch):
        raise WplError("name the cell to train: --model_name RUN (a search run) or --arch NAME|FILE.json|random:SEED, "
                       "not both")
    log_dir = Path(args.log_dir)
    if args.model_name:
        run = run_folder(log_dir, args.model_name)
        arch = arch_of_run(run, args.arch_from)
        cfg = saved_flags(RunDir(run).read_config())
        dataset = args.dataset or cfg.get("dataset") or spaces.of_arch(arch).dataset
        data_dir = args.data_dir or cfg.get("data_dir", "embedded")
        out, source = RunDir(run).final.path, f"run {run.name} ({args.arch_from} derived cell)"
        valid_size = args.valid_size or int(cfg.get("valid_size", 5000))
        split_seed = int(cfg.get("random_seed", args.seed))  # the search's held-out images stay held out
    else:
        arch, name = resolve_arch(args.arch)
        dataset = args.dataset or spaces.of_arch(arch).dataset
        data_dir = args.data_dir or "embedded"
        out, source = log_dir / (args.name or name), f"--arch {args.arch}"
        valid_size, split_seed = args.valid_size or 5000, None
    space = spaces.of_arch(arch)
    if space.final is None:
        raise WplError(space.no_final(arch))
    job = FinalJob(arch=arch, out_dir=out, source=source, dataset=dataset,
                   data_dir=None if data_dir == "embedded" else data_dir, max_epoch=args.max_epoch,
                   patience=args.patience, seed=args.seed, device=args.device, deterministic=args.deterministic,
                   resume=args.resume,
                   use_tensorboard=args.use_tensorboard, valid_size=valid_size, split_seed=split_seed)
    if args.max_epoch < 1:
        raise ConfigError("max_epoch", args.max_epoch, "must be >= 1")
    if args.patience < 0:
        raise ConfigError("patience", args.patience, "must be >= 0 (0: never stop early)")
    job.recipe = _recipe(space.final.recipe, args, space.kind)
    return job


def parse_final_args(argv: Sequence[str], prog: str = "wpl train-final"):
    """Parsed flags (argparse errors exit 2 with one line)."""
    return final_parser(prog).parse_args(list(argv))
