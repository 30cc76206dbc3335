"""NAS-Bench-201: two plain random-search settings side by side, paired by seed (the shared part of
``nb201_unique.py`` and ``nb201_zero_grad.py``).

Per seed, one supernet per arm with reproduce_nb201.py's recipe and budget (10,000 batches of 64, one epoch =
2,500), each drawing its cells from its own seeded stream (``--arch_stream=own``), so the arms of a seed start
from the same weights and, where their flags allow, train the same cells. Each ranks the same 200
non-isomorphic cells (``wpl rank --nb201_unique=true``, 1,000 validation images). Paired by seed: τ, τ top-10%,
P@5%, P@10% and the top-1 pick's true accuracy, with 95% intervals. Resumable; finished seeds go to
results/reproduce_<name>_seeds/ (commit them).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.lib.branching import run
from benchmarks.lib.common import (
    finish,
    fmt,
    fmt_diff,
    kept,
    mean_std,
    paired_diff,
    parser,
    same_setup,
    seeds,
    step,
    table_head,
    target,
    work_dir,
)
from benchmarks.reproduce.nb201 import FLAGS, METRICS, ranked

MODES = {"full": {"steps": 2500, "epochs": 4, "cells": 200, "batches": 4},
         "quick": {"steps": 150, "epochs": 2, "cells": 50, "batches": 1}}


@dataclass(frozen=True)
class Arms:
    """One comparison: its name, its arms' extra flags (the first is the baseline) and what the paired P@5%
    difference is read against."""

    name: str
    arms: dict[str, list[str]]
    p5_reading: str


def run_arm(work: Path, flags: list[str], seed: int, arm: str, extra: list[str], cfg: dict) -> dict:
    """One supernet (search, then rank on the non-isomorphic sample): the rank metrics and the search's
    seconds per phase."""
    logs = work / f"seed{seed}"
    logs.mkdir(parents=True, exist_ok=True)
    d = logs / f"cifar10_{arm}"
    if not (d / "summary.json").exists():
        run([sys.executable, "-m", "wpl", "search", *flags, *extra, "--search_strategy=random",
             "--use_wpl=False", "--arch_stream=own", f"--random_seed={seed}", f"--log_dir={logs}",
             f"--comment={arm}", f"--max_epoch={cfg['epochs']}", f"--save_epoch={cfg['epochs']}", "--resume=True"],
            logs / f"{arm}.log")
    summary = json.loads((d / "summary.json").read_text())
    return {**ranked(d, cfg["cells"], cfg["batches"], logs / f"{arm}-rank.log", "--nb201_unique=true"),
            "search_seconds": summary.get("seconds")}


def compare(study: Arms, doc: str) -> None:
    """Run (or resume) the comparison, print its tables and write ``reproduce_<name>.json``."""
    args = parser(doc.splitlines()[0]).parse_args()
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    work = work_dir(args, study.name)
    flags = [*FLAGS, f"--shared_max_step={cfg['steps']}", f"--data_dir={args.data_dir}"]
    setup = {"flags": flags, "arms": study.arms, "mode": cfg}
    same_setup(work, setup)
    keep = kept(args, study.name, setup)
    seed_list = seeds(args, "0,1,2,3,4")
    per_seed = [step(keep / f"seed{s}.json",
                     lambda s=s: {a: run_arm(work, flags, s, a, extra, cfg) for a, extra in study.arms.items()})
                for s in seed_list]
    base, other = list(study.arms)
    summary = {a: {m: mean_std([r[a][m] for r in per_seed]) for m in (*METRICS, "param_count_tau")}
               for a in study.arms}
    diffs = {m: paired_diff([r[other][m] for r in per_seed], [r[base][m] for r in per_seed]) for m in METRICS}
    lines = table_head("arm", "Kendall τ", "parameter count τ", "Spearman ρ", "τ top-10%", "P@5%", "P@10%",
                       "top-1 true acc")
    for a, s in summary.items():
        lines.append(f"| {a} | {fmt(s['kendall_tau'])} | {fmt(s['param_count_tau'])} | {fmt(s['spearman'])} | "
                     f"{fmt(s['tau_top10'])} | {fmt(s['p_at_top5'])} | {fmt(s['p_at_top10'])} | "
                     f"{fmt(s['top1_true_acc'], 2)} |")
    lines += ["", *table_head(f"{other} − {base} (paired by seed)", *(f"Δ {m} [95%]" for m in METRICS))]
    lines.append("| " + " | ".join(["paired", *(fmt_diff(diffs[m], 2 if m == "top1_true_acc" else 3)
                                                for m in METRICS)]) + " |")
    md = "\n".join(lines)
    print(md)
    p5 = diffs["p_at_top5"]
    targets = [target(f"{other}'s P@5% − {base}'s (paired 95% interval)",
                      None if p5["mean"] is None else [round(p5["mean"], 3), p5["lo"], p5["hi"]],
                      study.p5_reading, None)]
    payload = {"command": "python " + " ".join(sys.argv), "seeds": seed_list,
               "scale": f"C = 8, N = 1 plain random-search supernet, {cfg['epochs']} × {cfg['steps']} batches of 64; "
                        f"{cfg['cells']} non-isomorphic cells ranked on {cfg['batches'] * 250} validation images",
               "arms": study.arms, "summary": summary, f"paired_{other}_minus_{base}": diffs, "per_seed": per_seed,
               "targets": targets, "markdown": md}
    # the searches' own seconds survive a resume (a seed file's "seconds" counts only its last invocation)
    finish(args, study.name, payload,
           sum(sum(r[a]["search_seconds"].values()) for r in per_seed for a in study.arms))
