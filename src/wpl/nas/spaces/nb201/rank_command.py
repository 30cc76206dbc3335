"""``wpl rank``: how well a NAS-Bench-201 run's supernet ranks cells against the benchmark's truth (or, with
``--reference``, how the two published supernets' estimates do); the command this space adds to ``wpl``."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

from wpl.errors import WplError
from wpl.flags import StrictParser, str2bool
from wpl.rundir import RunDir

SPACE_KIND = "nb201"


def cmd_rank(argv: Sequence[str]) -> int:
    """``wpl rank``: a NAS-Bench-201 run's ranking fidelity (or, with --reference, the published estimates')."""
    from wpl.data.nb201 import NUM_CELLS, ground_truth, unique_cells
    from wpl.fileio import finite, write_json
    from wpl.nas.rank import MEASURES, metrics_table, rank_metrics

    from .ranking import sample_benchmark_cells

    p = StrictParser(prog="wpl rank", epilog="example: wpl rank --model_name cifar10_nb201 --num_archs 200",
                     description="Ranking fidelity against NAS-Bench-201's ground truth (CIFAR-10): "
                     "Kendall τ, Spearman ρ, sparse τ, τ in the true top 10%, precision at the top 5%/10%, the "
                     "top-1 pick's true accuracy")
    p.add_argument("--model_name", default="", help="a --network_type=nb201 search run under --log_dir")
    p.add_argument("--log_dir", default="logs")
    p.add_argument("--data_dir", default="", help="default: the run's")
    p.add_argument("--device", default="", help="default: the run's")
    p.add_argument("--rank_batches", type=int, default=4, help="validation batches each cell is scored on")
    p.add_argument("--rank_batch_size", type=int, default=250, help="images per such batch (the batch norms use "
                   "each batch's statistics, so small batches make noisy scores)")
    p.add_argument("--nb201_bn_recal", type=int, default=-1,
                   help="score with BN statistics recalibrated over K training batches per cell (0: batch "
                   "statistics; default: the run's --nb201_bn_recal)")
    p.add_argument("--score", default="accuracy", choices=list(MEASURES),
                   help="what ranks a cell: its validation accuracy, or its mean validation cross-entropy (lower "
                   "ranks higher; continuous, no ties; docs/ranking.md)")
    p.add_argument("--weights", default="last", choices=["last", "ema"],
                   help="the run's weights as trained (last) or their moving average (ema: a run with --weight_ema)")
    p.add_argument("--reference", type=str2bool, default=False,
                   help="(without --model_name) score the two published supernets' estimates shipped with wpl")
    p.add_argument("--num_archs", type=int, default=200, help="cells in the seeded uniform sample")
    p.add_argument("--all", type=str2bool, default=False, help="every one of the 15,625 cells")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed")
    p.add_argument("--nb201_unique", type=str2bool, default=False,
                   help="sample from the 6,466 non-isomorphic cells only (one per isomorphism class)")
    p.add_argument("--output", default="", help="write the metrics as JSON here (with --model_name: instead of "
                   "RUN/rank.json, the scatter plot beside it)")
    args = p.parse_args(argv)
    pool = len(unique_cells()) if args.nb201_unique else NUM_CELLS
    if not args.all and not 2 <= args.num_archs <= pool:
        raise WplError(f"--num_archs={args.num_archs}: at most {pool} (the benchmark's "
                       f"{'non-isomorphic ' if args.nb201_unique else ''}cells) and at least 2; or --all=true")
    for name in ("rank_batches", "rank_batch_size"):
        if getattr(args, name) < 1:
            raise WplError(f"--{name}={getattr(args, name)}: must be >= 1")
    if args.nb201_bn_recal < -1:
        raise WplError(f"--nb201_bn_recal={args.nb201_bn_recal}: must be >= 0 (or -1, the run's own)")
    num = None if args.all else args.num_archs
    if args.model_name:
        return _rank_run(args, num)
    if not args.reference:
        raise WplError("name a NAS-Bench-201 search run (--model_name RUN), or pass --reference=true for the "
                       "published estimates")
    g = ground_truth()
    idx = sample_benchmark_cells(num, args.seed, args.nb201_unique)
    rows = {name: rank_metrics(est[idx], g.test_acc[idx])
            for name, est in (("one-shot supernet", g.one_shot), ("few-shot supernet", g.few_shot))}
    sys.stdout.write(metrics_table(rows))
    kind = "non-isomorphic cells" if args.nb201_unique else "cells"
    sample = f"all {len(idx)} {kind}" if args.all else f"{len(idx)} {kind} (uniform sample, seed {args.seed})"
    print(f"NAS-Bench-201 CIFAR-10 test accuracy as the truth; {sample}; best cell 94.37")
    if args.output:
        write_json(args.output, finite({"cells": sample, "reference": rows}))
        print(f"wrote {args.output}")
    return 0


def _rank_run(args, num: int | None) -> int:
    from wpl.dist import launched
    from wpl.nas.final.loop import run_folder
    from wpl.nas.rank import metrics_table
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import load_search, setup_logging

    from .ranking import rank_search, use_weights

    if launched():
        raise WplError("wpl rank scores cells as one process; start it without torchrun")
    setup_logging("WARNING")
    run = run_folder(Path(args.log_dir), args.model_name)
    ckpt = RunDir(run).checkpoint
    if not ckpt.is_file():
        raise WplError(f"{run}: no checkpoint.pt yet (the search saves one after its first epoch)")
    flags = [f"--load_path={run}", "--mode=test", "--log_level=WARNING",
             *([f"--data_dir={args.data_dir}"] if args.data_dir else []),
             *([f"--device={args.device}"] if args.device else [])]
    search = load_search(parse_search_args(flags), run, ckpt)
    try:
        use_weights(search, args.weights, ckpt)
        if args.nb201_bn_recal >= 0 and search.task.kind == SPACE_KIND:
            search.task.bn_recal = args.nb201_bn_recal
        path = Path(args.output) if args.output else RunDir(run).rank(args.weights, args.score)
        out = rank_search(search, run, num, args.seed, args.rank_batches, args.rank_batch_size, path,
                          unique=args.nb201_unique, measure=args.score)
    finally:
        search.runlog.close()
    ref = out["reference"]
    counted = ref["parameter_count"]["same_cells"]
    rows = {f"{run.name} (epoch {out['epoch']})": out, "parameter count (no training)": counted,
            "FLOPs (no training)": ref["flops"]["same_cells"],
            "jacob_cov at initialisation (no training)": ref["jacob_cov"]["same_cells"],
            "one-shot supernet": ref["one_shot"]["same_cells"], "few-shot supernet": ref["few_shot"]["same_cells"]}
    sys.stdout.write(metrics_table(rows))
    tau, base = (m["kendall_tau"] for m in (out, counted))
    defined = [t is not None and math.isfinite(t) for t in (tau, base)]
    if all(defined):
        verdict = "better than" if tau > base else "no better than"
        print(f"supernet τ {tau:.3f}, parameter count τ {base:.3f}: the supernet ranks {verdict} counting parameters")
    else:
        shown = [f"{t:.3f}" if ok else "undefined" for t, ok in zip((tau, base), defined)]
        print(f"supernet τ {shown[0]}, parameter count τ {shown[1]}: τ is undefined where every cell scores the same")
    print(f"top-1 pick {out['top1_arch']}: true accuracy {out['top1_true_acc']:.2f}% (rank {out['top1_true_rank']} "
          f"of 15,625, regret {out['top1_regret']:.2f})")
    bn = f"BN recalibrated over {out['bn_recal']} training batches" if out["bn_recal"] else "batch-statistics BN"
    print(f"{bn}; wrote {path} and {path.with_suffix('.png')}")
    return 0
