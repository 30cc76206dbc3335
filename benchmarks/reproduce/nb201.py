"""NAS-Bench-201 ranking on real CIFAR-10 with the supernet recipe that ranks: does WPL make it rank better?

Usage: python -m benchmarks.reproduce.nb201 --data_dir DIR [--quick] [--seeds 0,1,2,3,4]
DIR holds cifar10/ (../shared/data/cifar10/get DIR/cifar10). Writes benchmarks/results/reproduce_nb201.json,
``.png`` (τ over the search) and ``_scatter.png`` (each run's forgetting against its τ); ``_quick`` with --quick.

The C = 8, N = 1 supernet trained by nb201's defaults (Nesterov SGD at a constant lr 0.05, weight decay 5e-4,
a new architecture every batch of 64; spelled out below), 2,500 batches an epoch: one plain epoch per seed and
strategy (ENAS, random), shared by the variants (branching.py), then 3 epochs per variant — 10,000 batches a
supernet. To fit 8 CPU-minutes a supernet (``benchmarks/speed/nb201_budget.py`` measures each variant's seconds per
step), forgetting is measured on every 10th architecture (``--forgetting_every=10``) and the two variants with a
validation-batch Fisher fold it after every 4th step (``--fisher_every=4``). Random variants draw the same
architectures (paired). Variants: plain; the original's WPL; ``--wpl_recipe=recommended``; and WPL with
persistent anchors (every weight's anchor snapshotted every 700 batches, a weak Fisher-weighted pull toward it
added to the gradient, the Fisher an EMA of squared training gradients normalised to mean 1). Each finished
supernet ranks the same 200 fixed cells on 1,000 validation images (``wpl rank``), next to the parameter count
on those cells. The "minutes" column is each run's wall time as it ran (on a shared machine it is longer than
nb201_budget.py's). Resumable: finished runs and rankings are kept; finished seeds go to
results/reproduce_nb201_seeds/ (commit them: a fresh clone continues).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.lib.branching import Branches, branch_means, events, run
from benchmarks.lib.common import (
    finish,
    fmt,
    fmt_diff,
    kept,
    mean_std,
    out_path,
    paired_diff,
    parser,
    same_setup,
    seeds,
    step,
    table_head,
    target,
    work_dir,
)
from benchmarks.lib.search_repro import FORGETTING, band, recommended
from wpl.plots import pyplot, save_figure

LR = 0.05
FLAGS = ("--network_type=nb201 --dataset=cifar10 --nb201_channels=8 --nb201_cells=1 --nb201_outer_affine=False "
         "--nb201_init=default --augment_scope=batch --train_sampling=replace --batch_size=64 --test_batch_size=100 "
         "--num_batch_per_iter=1 "
         f"--shared_momentum=0.9 --shared_lr={LR} --shared_decay=1 --shared_l2_reg=5e-4 --shared_grad_clip=5 "
         "--controller_max_step=30 --nb_batch_reward_controller=2 --derive_num_sample=20 --forgetting_batches=1 "
         "--forgetting_every=10 --rank_every=1 --rank_archs=100 --rank_batches=1 --rank_batch_size=250 "
         "--train_controller=True "
         "--start_training_controller=0 --use_tensorboard=False --log_level=WARNING").split()
ORIGINAL = ["--fisher_every=4", "--fisher_clip_by_norm=10", "--alpha_fisher=60", "--alpha_decay=1",
            "--alpha_decay_mode=1", "--set_fisher_zero_per_iter=3"]
PERSISTENT = ["--legacy_compound_alpha=False", "--fisher_normalise=mean", "--fisher_clip_by_norm=0",
              "--fisher_source=train", "--lambda_fisher=0.1", "--wpl_update=gradient", "--wpl_scope=used",
              "--wpl_anchor=snapshot", "--wpl_anchor_every=700", "--alpha_fisher=0.005"]
VARIANTS = {"plain": ["--use_wpl=False"], "original": ORIGINAL, "recommended": [*recommended(LR), "--fisher_every=4"],
            "persistent": PERSISTENT}
# the variants that move the weights: with one batch per cell and anchors moved after every step, the original's
# penalty is exactly 0 (its random-strategy supernets are plain's, bit for bit; ENAS differs only in the
# validation batches its controller sees), so it is reported but not a candidate for "the best WPL variant"
ACTING = ("recommended", "persistent")
COLORS = {"plain": "tab:purple", "original": "tab:gray", "recommended": "tab:orange", "persistent": "tab:green"}
MODES = {"full": {"steps": 2500, "epochs": 3, "cells": 200, "batches": 4},
         "quick": {"steps": 150, "epochs": 1, "cells": 50, "batches": 1}}
METRICS = ("kendall_tau", "spearman", "tau_top10", "p_at_top5", "p_at_top10", "top1_true_acc")
PAIRED = ("kendall_tau", "tau_top10", "p_at_top5", "top1_true_acc")
FORGETTING = {**FORGETTING, "forgetting_best5": "diff_best_mean", "err1": "err1_mean"}


def ranked(d: Path, cells: int, batches: int, log: Path, *extra: str) -> dict:
    """``wpl rank`` of the run in ``d`` on ``cells`` cells (sample seed 0) and ``batches`` × 250 validation images,
    once (``rank.json`` is kept): its METRICS and the parameter count's τ on the same cells."""
    rank = d / "rank.json"
    if not rank.exists():
        run([sys.executable, "-m", "wpl", "rank", f"--model_name={d.name}", f"--log_dir={d.parent}",
             f"--num_archs={cells}", f"--rank_batches={batches}", "--rank_batch_size=250", *extra, "--seed=0"], log)
    m = json.loads(rank.read_text())
    return {**{k: m[k] for k in METRICS},
            "param_count_tau": m["reference"]["parameter_count"]["same_cells"]["kendall_tau"]}


def run_seed(studies: dict[str, Branches], seed: int, cells: int, batches: int) -> dict:
    """Every strategy and variant of one seed: search, then rank; the metrics and τ per epoch."""
    out: dict = {}
    for strategy, study in studies.items():
        for name, flags in VARIANTS.items():
            d = study.variant(seed, name, flags)
            if why := study.failed(seed, name):  # e.g. diverged: reported, not retried
                out[f"{strategy}-{name}"] = {"failed": why, "tau_epochs": [], "seconds": study.seconds(seed, name),
                                             **dict.fromkeys((*METRICS, *FORGETTING, "param_count_tau"))}
                continue
            tau = {e["epoch"]: e["kendall_tau"] for e in events(d, "rank")}
            out[f"{strategy}-{name}"] = {**ranked(d, cells, batches, d.parent / f"{name}-rank.log"),
                                         **branch_means(d, study.branch, FORGETTING),
                                         "tau_epochs": [tau[k] for k in sorted(tau)],
                                         "seconds": study.seconds(seed, name)}
        out[f"{strategy}-base_seconds"] = study.seconds(seed, "base")
    return out


def figure(per_seed: list[dict], path: Path) -> Path:
    """In-search Kendall τ per epoch (100 fixed cells), mean and min–max band over seeds, per strategy."""
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, strategy in zip(axes, ("enas", "random"), strict=True):
        for name, color in COLORS.items():
            curves = [c for r in per_seed if (c := r[f"{strategy}-{name}"]["tau_epochs"])]
            if curves:
                band(ax, list(range(len(curves[0]))), curves, color, name)
        ax.axvline(0.5, color="k", ls=":", lw=0.8)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{strategy} strategy", fontsize=10)
        ax.set_xlabel("epoch (variants differ from the dotted line)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Kendall τ, in-search cells")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"NAS-Bench-201 supernet ranking over the search ({len(per_seed)} seed(s))")
    return save_figure(fig, path)


def scatter(per_seed: list[dict], cells: int, path: Path) -> Path:
    """Each run's mean forgetting after the branch (loss, nats) against its final Kendall τ."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = pyplot().subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, strategy in zip(axes, ("enas", "random"), strict=True):
        for name, color in COLORS.items():
            pts = [(r[f"{strategy}-{name}"]["loss_forgetting"], r[f"{strategy}-{name}"]["kendall_tau"])
                   for r in per_seed]
            pts = [p for p in pts if None not in p]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=color, label=name, s=22)
        ax.set_title(f"{strategy} strategy", fontsize=10)
        ax.set_xlabel("forgetting: mean loss increase after the branch (nats)")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"Kendall τ, {cells} cells")
    axes[0].legend(fontsize=8)
    fig.suptitle("Does forgetting predict ranking error? (one point per run)")
    return save_figure(fig, path)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    work = work_dir(args, "nb201")
    flags = [*FLAGS, f"--shared_max_step={cfg['steps']}", f"--data_dir={args.data_dir}"]
    setup = {"flags": flags, "variants": VARIANTS, "mode": cfg}
    same_setup(work, setup)
    keep = kept(args, "nb201", setup)
    studies = {s: Branches([*flags, f"--search_strategy={s}"], work / s, 1, cfg["epochs"], dataset="cifar10",
                           paired=s == "random") for s in ("enas", "random")}
    seed_list = seeds(args, "0,1,2,3,4")
    per_seed = [step(keep / f"seed{s}.json", lambda s=s: run_seed(studies, s, cfg["cells"], cfg["batches"]))
                for s in seed_list]
    png = figure(per_seed, out_path(args, "nb201", "png"))
    dots = scatter(per_seed, cfg["cells"], out_path(args, "nb201_scatter", "png"))
    keys = [f"{st}-{name}" for st in studies for name in VARIANTS]
    summary = {k: {m: mean_std([r[k][m] for r in per_seed]) for m in (*METRICS, *FORGETTING, "param_count_tau",
                                                                      "seconds")} for k in keys}
    diffs = {f"{st}-{name}": {m: paired_diff([r[f"{st}-{name}"][m] for r in per_seed],
                                             [r[f"{st}-plain"][m] for r in per_seed]) for m in PAIRED}
             for st in studies for name in VARIANTS if name != "plain"}
    targets = []
    for strategy in studies:
        p = summary[f"{strategy}-plain"]
        tau, counted = p["kendall_tau"]["mean"], p["param_count_tau"]["mean"]
        targets.append(target(f"{strategy}: plain supernet τ >= 0.5 and above the parameter count on the same cells",
                              [None if tau is None else round(tau, 3), None if counted is None else round(counted, 3)],
                              "τ >= 0.5 and τ > parameter count's", None if tau is None else
                              bool(tau >= 0.5 and tau > counted)))
        best = max(ACTING, key=lambda n: diffs[f"{strategy}-{n}"]["kendall_tau"]["mean"]
                   if diffs[f"{strategy}-{n}"]["kendall_tau"]["mean"] is not None else -9)
        d = diffs[f"{strategy}-{best}"]["kendall_tau"]
        targets.append(target(f"{strategy}: best WPL variant ({best}) τ − plain's τ, paired 95% interval above 0",
                              None if d["mean"] is None else [round(d["mean"], 3), d["lo"] and round(d["lo"], 3),
                                                              d["hi"] and round(d["hi"], 3)],
                              "mean > 0 and interval's low end > 0", None if d["lo"] is None else d["lo"] > 0))
        t10 = summary[f"{strategy}-{best}"]["tau_top10"]["mean"]
        targets.append(target(f"{strategy}: τ within the true top 10% for the best variant ({best})",
                              None if t10 is None else round(t10, 3), "> 0", None if t10 is None else t10 > 0))
    lines = table_head("run", "Kendall τ", "parameter count τ", "Spearman ρ", "τ top-10%", "P@5%", "top-1 true acc",
                       "forgetting (nats)", "best-5 (nats)", "minutes")
    for k, s in summary.items():
        lines.append(f"| {k} | {fmt(s['kendall_tau'])} | {fmt(s['param_count_tau'])} | {fmt(s['spearman'])} | "
                     f"{fmt(s['tau_top10'])} | {fmt(s['p_at_top5'])} | {fmt(s['top1_true_acc'], 2)} | "
                     f"{fmt(s['loss_forgetting'], 4)} | {fmt(s['loss_forgetting_best5'], 4)} | "
                     f"{fmt(s['seconds'], 1, 1 / 60)} |")
    lines += ["", *table_head("variant − plain (paired by seed)", "Δ Kendall τ [95%]", "Δ τ top-10%", "Δ P@5%",
                              "Δ top-1 true acc")]
    for k, d in diffs.items():
        lines.append(f"| {k} | {fmt_diff(d['kendall_tau'])} | {fmt_diff(d['tau_top10'])} | "
                     f"{fmt_diff(d['p_at_top5'])} | {fmt_diff(d['top1_true_acc'], 2)} |")
    md = "\n".join(lines)
    print(md)
    total = cfg["steps"] * (1 + cfg["epochs"])
    payload = {
        "command": "python " + " ".join(sys.argv), "seeds": seed_list,
        "scale": f"C = 8, N = 1 supernet, 1 plain + {cfg['epochs']} epochs × {cfg['steps']} batches of 64 "
                 f"({total * 64 / 45000:.1f} passes) on real CIFAR-10; {cfg['cells']} fixed cells ranked on "
                 f"{cfg['batches'] * 250} validation images" + (" (quick: shrunk)" if args.quick else ""),
        "paper": "the paper has no NAS-Bench-201 experiment; published supernets rank at τ 0.485 (one-shot) and "
                 "0.551 (few-shot) over all cells",
        "variants": VARIANTS, "summary": summary, "paired_vs_plain": diffs, "per_seed": per_seed,
        "targets": targets, "markdown": md, "figure": png.name, "scatter": dots.name,
    }
    seconds = sum(r[k]["seconds"] for r in per_seed for k in keys) + sum(
        r[f"{st}-base_seconds"] for r in per_seed for st in studies)
    finish(args, "nb201", payload, seconds)


if __name__ == "__main__":
    main()
