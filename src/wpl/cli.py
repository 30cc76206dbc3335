"""The ``wpl`` command and its subcommands (``wpl --help`` lists them)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ConfigError, WplError
from .flags import StrictParser, str2bool
from .rundir import RunDir


def _common(p: StrictParser) -> None:
    p.add_argument("--seed", "--random_seed", dest="seed", type=int, default=0, help="seed for python, numpy, torch")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")


def _two_models_parser(prog: str, output_default: str) -> StrictParser:
    from .fisher import ESTIMATORS
    from .two_models import ACTIVATIONS

    p = StrictParser(prog=prog, description="Train model A, then model B sharing A's first blocks; ",
                     epilog="example: wpl two-models --convergence strict --seed 0 --output_dir runs/two_models"
                     "measure A's forgetting without and with WPL.")
    p.add_argument("--data_dir", default=None, help="folder with the four MNIST idx .gz files "
                   "(default: the embedded real-MNIST subset)")
    p.add_argument("--convergence", choices=["strict", "loose", "both"], default="both")
    p.add_argument("--shared_blocks", type=int, default=3, help="blocks of A that B shares (1-4)")
    p.add_argument("--b_iters", type=int, default=1500, help="training iterations of B")
    p.add_argument("--a_iters_strict", type=int, default=2000, help="training iterations of A, strict setting")
    p.add_argument("--a_iters_loose", type=int, default=600, help="training iterations of A, loose setting")
    p.add_argument("--alpha", type=float, default=None, help="WPL strength α (default 3000)")
    p.add_argument("--a_activation", choices=list(ACTIVATIONS), default="leaky_relu",
                   help="operation A applies after each block")
    p.add_argument("--b_activation", choices=list(ACTIVATIONS), default="tanh",
                   help="operation B applies after each shared block (a different one makes forgetting)")
    p.add_argument("--b_width", type=int, default=64, help="width of B's private blocks")
    p.add_argument("--b_lr", type=float, default=3e-3, help="Adam learning rate of B")
    p.add_argument("--fisher_samples", type=int, default=200, help="validation images for the Fisher")
    p.add_argument("--estimator", choices=list(ESTIMATORS), default="empirical")
    p.add_argument("--fisher_clip_by_norm", type=float, default=0.0, help="per-tensor Fisher norm clip (0 = none)")
    p.add_argument("--with_l2", type=str2bool, default=False, help="also run the L2-to-anchor baseline (F = 1)")
    p.add_argument("--valid_size", type=int, default=None,
                   help="training images held out for validation (default 5000; 1000 for the embedded subset)")
    p.add_argument("--output_dir", default=output_default)
    _common(p)
    return p


def _config_from(args) -> object:
    """The experiment's config from its flags (the a_iters_* flags fill ``a_iters``)."""
    from .two_models import TwoModelsConfig

    kwargs = dict(
        shared_blocks=args.shared_blocks,
        b_iters=args.b_iters,
        a_activation=args.a_activation,
        b_activation=args.b_activation,
        b_lr=args.b_lr,
        b_width=args.b_width,
        a_iters={"strict": args.a_iters_strict, "loose": args.a_iters_loose},
        fisher_samples=args.fisher_samples,
        estimator=args.estimator,
        fisher_clip_by_norm=args.fisher_clip_by_norm,
        methods=("plain", "wpl", "l2") if args.with_l2 else ("plain", "wpl"),
        seed=args.seed,
    )
    if args.alpha is not None:
        kwargs["alpha"] = args.alpha
    return TwoModelsConfig(**kwargs)


def cmd_two_models(argv: Sequence[str]) -> int:
    """``wpl two-models``."""
    from .two_models import SETTINGS
    from .two_models_report import run_experiment

    args = _two_models_parser("wpl two-models", "two_models_out").parse_args(argv)
    settings = SETTINGS if args.convergence == "both" else (args.convergence,)
    run_experiment(_config_from(args), args.output_dir, data_dir=args.data_dir, valid_size=args.valid_size,
                   settings=settings, device=args.device)
    return 0


def cmd_demo(argv: Sequence[str]) -> int:
    """``wpl demo``: the two-model experiment on embedded MNIST, then a tiny search without and with WPL."""
    from .demo import SIZES, run_demo

    p = StrictParser(prog="wpl demo", description="The main job on embedded data: outputs under ./demo_out/",
                     epilog="example: wpl demo --size tiny")
    p.add_argument("--output_dir", default="demo_out")
    p.add_argument("--size", choices=SIZES, default="full",
                   help="full (about 3 minutes) or tiny (a smoke run in seconds; its numbers mean nothing)")
    _common(p)
    args = p.parse_args(argv)
    run_demo(args.output_dir, args.seed, args.device, args.size)
    return 0


def _split_mode(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """The ``--mode`` value of ``argv`` (None when absent) and ``argv`` without it."""
    rest, mode, skip = [], None, False
    for k, a in enumerate(argv):
        if skip:
            skip = False
        elif a.startswith("--mode="):
            mode = a.split("=", 1)[1]
        elif a == "--mode" and k + 1 < len(argv):
            mode, skip = argv[k + 1], True
        else:
            rest.append(a)
    return mode, rest


def cmd_search(argv: Sequence[str], prog: str = "wpl search") -> int:
    """``wpl search``: ENAS search with WPL (the original ``main.py`` flags); ``--mode=train_final`` is
    ``wpl train-final`` (its own flags)."""
    from .nas.search.run import run_search

    mode, rest = _split_mode(argv)
    if mode == "train_final":
        return cmd_train_final(rest, f"{prog} --mode=train_final")
    run_search(argv, prog)
    return 0


def cmd_gif(argv: Sequence[str], prog: str = "wpl gif") -> int:
    """``wpl gif`` / ``python generate_gif.py``: a GIF of a run's derived cells."""
    from .gif import make_gif

    p = StrictParser(prog=prog, description="An animated GIF of the derived cells of a search run",
                     epilog="example: wpl gif --model_name ptb_rnn-train --log_dir logs")
    p.add_argument("--model_name", required=True, help="the run folder's name under --log_dir, e.g. ptb_rnn-train")
    p.add_argument("--log_dir", default="logs", help="where the run folders are")
    p.add_argument("--output", default=None, help="the .gif to write (default <run folder>/cells.gif)")
    p.add_argument("--max_frame", type=int, default=50, help="at most this many frames, evenly spaced")
    p.add_argument("--title", default="", help="caption before the epoch number")
    p.add_argument("--frame_ms", type=int, default=500, help="display time of a frame, in milliseconds")
    args = p.parse_args(argv)
    run_dir = Path(args.log_dir) / args.model_name
    out = make_gif(run_dir, args.output or RunDir(run_dir).figure("cells.gif"), args.max_frame,
                   args.title or args.model_name, args.frame_ms)
    print(f"wrote {out}")
    return 0


def cmd_train_final(argv: Sequence[str], prog: str = "wpl train-final") -> int:
    """``wpl train-final``: train a cell from scratch, test it once."""
    import logging

    import torch

    from .nas.final.flags import build_job, parse_final_args
    from .nas.final.loop import train_final

    args = parse_final_args(argv, prog)
    logging.basicConfig(format="%(asctime)s:%(levelname)s::%(message)s", level=getattr(logging, args.log_level),
                        force=True)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    job = build_job(args)
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.root]):
        s = train_final(job)
    if not s:  # a data-parallel rank other than 0: rank 0 reports
        return 0
    m = s["metric"]
    valid = "n/a" if s["best_valid"] is None else f"{s['best_valid']:.4g}"
    print(f"final training of {s['source']}: {s['params']:,} parameters, {s['epochs_done']} epochs "
          f"({s['seconds'] / 60:.1f} min){', stopped early' if s['stopped_early'] else ''}\n"
          f"  best epoch {s['best_epoch']}: valid {m} {valid}, test {m} {s['test']:.4g}\n"
          f"  wrote {job.out_dir}/: summary.json, metrics.jsonl, config.json, checkpoint.pt, best.pt"
          f"{', tensorboard/' if job.use_tensorboard else ''}")
    return 0


def cmd_draw(argv: Sequence[str]) -> int:
    """``wpl draw``: the drawing of a named cell, random:SEED or an architecture file."""
    from .nas import spaces
    from .nas.presets import resolve_arch
    from .viz import save_cell_drawing

    p = StrictParser(prog="wpl draw", description="Draw a cell (.png and Graphviz .dot)",
                     epilog="example: wpl draw --arch enas-ptb --output enas-ptb.png")
    p.add_argument("--arch", required=True, help="a named cell (wpl cells), random:SEED[:SPACE] or a .json")
    p.add_argument("--output", default="", help="the .png to write (default <name>.png here; the .dot goes beside it)")
    args = p.parse_args(argv)
    arch, name = resolve_arch(args.arch)
    graph = spaces.of_arch(arch).graph(arch)
    stem = Path(args.output).with_suffix("") if args.output else Path(name)
    dot, png = save_cell_drawing(*graph, stem, title=name)
    print(f"wrote {png} and {dot}")
    return 0


def cmd_cells(argv: Sequence[str]) -> int:
    """``wpl cells``: the named cells, their space and source."""
    from .nas import spaces
    from .nas.presets import presets

    p = StrictParser(prog="wpl cells", description="The named cells --arch accepts (and random:SEED)",
                     epilog="example: wpl cells --json true")
    p.add_argument("--json", type=str2bool, default=False, help="print each cell's canonical JSON too")
    args = p.parse_args(argv)
    for name, pr in presets().items():
        print(f"{name:<18} {pr.space:<9} {pr.source}")
        if pr.note:
            print(f"{'':<28} {pr.note}")
        if args.json:
            print(f"{'':<28} {pr.arch.to_json()}")
    kinds = "|".join(s.name for s in spaces.all_spaces() if s.random_arch is not None)
    print(f"random:SEED[:{kinds}]  a uniformly sampled cell of the space (default: the first), e.g. random:0")
    return 0


def _runs_and_labels(args) -> tuple[list, list[str]]:
    from .nas.final.loop import run_folder
    from .nas.search.report import load_run

    if args.runs and (args.model_name or args.compare):
        raise WplError("name the runs once: as arguments (wpl compare RUN1 RUN2) or with --model_name/--compare")
    names = list(args.runs) or [args.model_name, *args.compare]
    if not names[0]:
        raise WplError("name at least one search run: wpl COMMAND RUN [RUN ...] (folders under --log_dir)")
    log_dir = Path(args.log_dir)
    runs = [load_run(run_folder(log_dir, n)) for n in names]
    labels = list(args.labels) if args.labels else [Path(n).name for n in names]
    if len(labels) != len(runs):
        raise WplError(f"--labels: {len(labels)} labels for {len(runs)} runs; give one per run, in order")
    return runs, labels


def _run_flags(p: StrictParser) -> None:
    p.add_argument("runs", nargs="*", help="search runs under --log_dir (the first is the reference)")
    p.add_argument("--model_name", default="", help="a search run under --log_dir (or give runs as arguments)")
    p.add_argument("--compare", nargs="*", default=[], help="more runs to overlay")
    p.add_argument("--labels", nargs="*", default=[], help="one label per run (default: the folder names)")
    p.add_argument("--log_dir", default="logs")


def cmd_plot(argv: Sequence[str]) -> int:
    """``wpl plot``: the paper's ENAS forgetting figure from runs."""
    from .nas.search.report import plot_runs

    p = StrictParser(prog="wpl plot", epilog="example: wpl plot ptb_rnn-train ptb_rnn-wpl --labels plain WPL",
                     description="The paper's ENAS figure (mean, best-5 and max forgetting per "
                     "epoch, the controller's reward) from search runs, overlaid")
    _run_flags(p)
    p.add_argument("--unit", choices=["metric", "loss"], default="metric",
                   help="forgetting in the task's unit (ppl or error) or in loss")
    p.add_argument("--final", type=str2bool, default=False, help="add the runs' final-training validation curves")
    p.add_argument("--fisher", type=str2bool, default=False,
                   help="instead: where WPL holds, each edge's (op's) share of the Fisher mass per epoch, one map "
                   "per run (<run>/fisher.png)")
    p.add_argument("--output", default="", help="the PNG (default <run>/forgetting.png)")
    args = p.parse_args(argv)
    runs, labels = _runs_and_labels(args)
    if args.fisher:
        return _plot_fisher(runs, labels, args.output)
    out = plot_runs(runs, labels, Path(args.output) if args.output else RunDir(runs[0].path).figure("forgetting.png"),
                    args.unit, args.final)
    for run, label in zip(runs, labels, strict=True):
        fg = [e["diff_best_mean"] for e in run.forgetting if e["epoch"] >= run.wpl_from]
        mean = f"{sum(fg) / len(fg):.4g}" if fg else "n/a"
        print(f"{label}: {len(run.epochs)} epochs; mean best-5 forgetting from epoch {run.wpl_from}: {mean} "
              f"{run.metric}")
    print(f"wrote {out}")
    return 0


def _plot_fisher(runs: list, labels: list[str], output: str) -> int:
    from .nas.search.fisher_map import plot_fisher

    if output and len(runs) > 1:
        raise WplError("--output names one PNG; with --fisher and several runs each map goes to <run>/fisher.png")
    for run, label in zip(runs, labels, strict=True):
        if not run.fisher:
            raise WplError(f"{run.path}: no Fisher mass logged (WPL was on in no finished epoch, or the run predates "
                           "the 'fisher' events); run a search with --use_wpl=True")
        out = plot_fisher(run.fisher, Path(output) if output else RunDir(run.path).figure("fisher.png"),
                          f"{label}: share of the Fisher mass per epoch")
        mass = {g: v or 0.0 for g, v in run.fisher[-1]["mass"].items()}  # None: a non-finite sum
        top = max(mass.items(), key=lambda kv: kv[1])
        total = sum(mass.values()) or 1.0
        print(f"{label}: {len(run.fisher)} epochs with WPL; in the last, {top[0]} holds {top[1] / total:.1%} of "
              f"the Fisher mass; wrote {out}")
    return 0


def cmd_compare(argv: Sequence[str]) -> int:
    """``wpl compare``: settings, forgetting and scores of runs, as markdown and JSON."""
    import json

    from .fileio import finite, write_json
    from .nas.search.report import compare_markdown, compare_runs

    p = StrictParser(prog="wpl compare", epilog="example: wpl compare ptb_rnn-train ptb_rnn-wpl --json cmp.json",
                     description="A table of search runs: the settings that differ, "
                     "forgetting over the WPL epochs, the best derived cell, the final-training score")
    _run_flags(p)
    p.add_argument("--json", default="", help="also write the comparison as JSON here")
    args = p.parse_args(argv)
    runs, labels = _runs_and_labels(args)
    cmp = compare_runs(runs, labels)
    sys.stdout.write(compare_markdown(cmp, labels))
    if args.json:
        write_json(args.json, finite(json.loads(json.dumps(cmp))))
        print(f"wrote {args.json}")
    return 0


def cmd_runs(argv: Sequence[str]) -> int:
    """``wpl runs``: the search runs in a folder, with their space, epochs, best score and state."""
    from .nas.final.loop import list_runs
    from .nas.search.report import run_status

    p = StrictParser(prog="wpl runs", description="The search runs under --log_dir: space, epochs done, best "
                     "derived score, state (running / finished / interrupted)",
                     epilog="example: wpl runs --log_dir logs")
    p.add_argument("--log_dir", default="logs")
    args = p.parse_args(argv)
    names = list_runs(Path(args.log_dir))
    if not names:
        print(f"no search runs under {args.log_dir}")
        return 0
    rows = [run_status(Path(args.log_dir) / n) for n in names]
    print("| run | space | epochs | best | state |\n|---|---|---|---|---|")
    for r in rows:
        best = "–" if r["best"] is None else f"{r['metric']} {r['best']:.4g}"
        print(f"| {r['run']} | {r['space']} | {r['epochs']} | {best} | {r['state']} |")
    return 0


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "search": (cmd_search, "ENAS search with WPL (the original main.py flags)"),
    "two-models": (cmd_two_models, "the two-model forgetting experiment (MNIST)"),
    "demo": (cmd_demo, "the main job on embedded data (what `make demo` runs)"),
    "gif": (cmd_gif, "an animated GIF of a search run's derived cells (= python generate_gif.py)"),
    "train-final": (cmd_train_final, "train a derived or named cell from scratch, test it once"),
    "cells": (cmd_cells, "the named cells (ENAS, DARTS, baselines) that --arch accepts"),
    "draw": (cmd_draw, "draw a named cell, random:SEED or an architecture file"),
    "plot": (cmd_plot, "the paper's ENAS forgetting figure from runs (overlaid)"),
    "compare": (cmd_compare, "a table of runs: differing settings, forgetting, scores"),
    "runs": (cmd_runs, "the search runs in a folder: space, epochs, best score, running/finished/interrupted"),
}


def commands() -> dict[str, tuple[Callable[[Sequence[str]], int], str]]:
    """The built-in commands and those the registered spaces add (``Space.commands``, e.g. ``rank``)."""
    from .nas import spaces

    out = dict(COMMANDS)
    for space in spaces.all_spaces():
        out.update(space.commands)
    return out


def _usage() -> str:
    rows = "\n".join(f"  {name:<12} {help_}" for name, (_, help_) in commands().items())
    return f"usage: wpl COMMAND [flags]   (wpl COMMAND --help for its flags)\n\ncommands:\n{rows}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wpl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"wpl {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    table = COMMANDS if name in COMMANDS else commands()  # the spaces load only for their own commands
    if name not in table:
        import difflib

        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; choose one of {', '.join(table)}"
        sys.stderr.write(f"wpl: error: unknown command {name!r}{hint}\n")
        return 2
    try:
        return table[name][0](rest)
    except ConfigError as exc:
        sys.stderr.write(f"wpl {name}: error: {exc.as_flag()}\n")
        return 1
    except WplError as exc:
        sys.stderr.write(f"wpl {name}: error: {exc}\n")
        return getattr(exc, "exit_code", 1)  # a signal's stop: 128 + its number
    except FloatingPointError as exc:
        sys.stderr.write(f"wpl {name}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"wpl {name}: interrupted; no output was marked complete\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
