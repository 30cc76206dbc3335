"""NAS-Bench-201 ranking on real CIFAR-10, plain vs WPL (the README's original settings and the
recommended one), ENAS and random strategies: does WPL make the supernet rank cells better?

Usage: python benchmarks/reproduce_nb201.py --data_dir DIR [--quick] [--seeds 0,1,2]
DIR holds cifar10/ (../shared/data/cifar10/get DIR/cifar10). Writes benchmarks/results/reproduce_nb201.json
and .png (``_quick`` with --quick).

The configuration of benchmarks/nb201_compare.sh (C = 8, N = 1, 6 epochs, Nesterov SGD lr 0.05, WPL
from epoch 1). Per seed and strategy one plain epoch is shared by the variants (branching.py); each
finished supernet then ranks the same 200 fixed cells on 8 validation batches (``wpl rank``).
Resumable: finished runs and rankings are kept; finished seeds go to results/reproduce_nb201_seeds/ (commit
them: a fresh clone continues from there).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from branching import Branches, branch_means, events, run  # noqa: E402
from reproduce_common import finish, fmt, kept, mean_std, out_path, parser, same_setup, seeds, step, target, work_dir  # noqa: E402
from search_repro import COLORS, FORGETTING, band, recommended  # noqa: E402

FLAGS = ("--network_type=nb201 --dataset=cifar10 --nb201_channels=8 --nb201_cells=1 --batch_size=64 "
         "--test_batch_size=100 --num_batch_per_iter=5 --shared_max_step=130 --shared_momentum=0.9 --shared_lr=0.05 "
         "--shared_decay=0.6 --shared_decay_after=0 --shared_l2_reg=5e-4 --controller_max_step=30 "
         "--nb_batch_reward_controller=2 --derive_num_sample=20 --forgetting_batches=1 --rank_every=1 "
         "--rank_archs=100 --rank_batches=3 --train_controller=True --start_training_controller=0 "
         "--fisher_clip_by_norm=10 --alpha_fisher=60 --alpha_decay=1 --alpha_decay_mode=1 --set_fisher_zero_per_iter=3 "
         "--use_tensorboard=False --log_level=WARNING").split()
QUICK = "--shared_max_step=30 --controller_max_step=10 --rank_archs=30 --derive_num_sample=5".split()
LR = 0.05
VARIANTS = {"plain": ["--use_wpl=False"], "original": [], "recommended": recommended(LR)}
MODES = {"full": {"epochs": 5, "cells": 200, "batches": 8}, "quick": {"epochs": 2, "cells": 50, "batches": 2}}
METRICS = ("kendall_tau", "spearman", "tau_top10", "p_at_top5", "p_at_top10", "top1_true_acc")
# forgetting over the WPL epochs, plus the best-5 in error and err1 (how well each architecture does right
# after its own step: what a setting that learns less pays)
FORGETTING = {**FORGETTING, "forgetting_best5": "diff_best_mean", "err1": "err1_mean"}


def run_seed(studies: dict[str, Branches], seed: int, cells: int, batches: int) -> dict:
    """Every strategy and variant of one seed: search, then rank; the metrics and τ per epoch."""
    out: dict = {}
    for strategy, study in studies.items():
        for name, flags in VARIANTS.items():
            d = study.variant(seed, name, flags)
            if why := study.failed(seed, name):  # e.g. diverged: reported, not retried
                out[f"{strategy}-{name}"] = {"failed": why, "tau_epochs": [], "seconds": study.seconds(seed, name),
                                             **dict.fromkeys((*METRICS, *FORGETTING))}
                continue
            rank = d / "rank.json"
            if not rank.exists():
                run([sys.executable, "-m", "wpl", "rank", f"--model_name={d.name}", f"--log_dir={d.parent}",
                     f"--num_archs={cells}", f"--rank_batches={batches}", "--seed=0"], d.parent / f"{name}-rank.log")
            m = json.loads(rank.read_text())
            tau = {e["epoch"]: e["kendall_tau"] for e in events(d, "rank")}
            out[f"{strategy}-{name}"] = {**{k: m[k] for k in METRICS}, **branch_means(d, study.branch, FORGETTING),
                                         "tau_epochs": [tau[k] for k in sorted(tau)],
                                         "seconds": study.seconds(seed, name)}
        out[f"{strategy}-base_seconds"] = study.seconds(seed, "base")
    return out


def figure(per_seed: list[dict], path: Path) -> Path:
    """In-search Kendall τ per epoch (100 fixed cells), mean and min–max band over seeds, per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wpl.fileio import atomic_write

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, strategy in zip(axes, ("enas", "random")):
        for name, color in COLORS.items():
            curves = [r[f"{strategy}-{name}"]["tau_epochs"] for r in per_seed]
            curves = [c for c in curves if c]  # a failed run has none
            if curves:
                band(ax, list(range(len(curves[0]))), curves, color, name)
        ax.axvline(0.5, color="k", ls=":", lw=0.8)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{strategy} strategy", fontsize=10)
        ax.set_xlabel("epoch (WPL from the dotted line)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Kendall τ, in-search cells")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"NAS-Bench-201 supernet ranking over the search ({len(per_seed)} seed(s))")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    work = work_dir(args, "nb201")
    flags = [*FLAGS, *(QUICK if args.quick else []), f"--data_dir={args.data_dir}"]
    setup = {"flags": flags, "variants": VARIANTS, "mode": cfg}
    same_setup(work, setup)
    keep = kept(args, "nb201", setup)
    studies = {s: Branches([*flags, f"--search_strategy={s}"], work / s, 1, cfg["epochs"], dataset="cifar10")
               for s in ("enas", "random")}
    seed_list = seeds(args, "0,1,2")
    per_seed = [step(keep / f"seed{s}.json", lambda s=s: run_seed(studies, s, cfg["cells"], cfg["batches"]))
                for s in seed_list]
    png = figure(per_seed, out_path(args, "nb201", "png"))
    keys = [f"{st}-{name}" for st in studies for name in VARIANTS]
    summary = {k: {m: mean_std([r[k][m] for r in per_seed]) for m in (*METRICS, *FORGETTING, "seconds")}
               for k in keys}
    targets = []
    for strategy in ("enas", "random"):
        p, w = summary[f"{strategy}-plain"], summary[f"{strategy}-recommended"]
        if w["kendall_tau"]["mean"] is None or p["kendall_tau"]["mean"] is None:
            targets.append(target(f"{strategy}: recommended vs plain", None, "both ran", False))
            continue
        targets.append(target(f"{strategy}: Kendall τ, recommended vs plain",
                              [round(w["kendall_tau"]["mean"], 3), round(p["kendall_tau"]["mean"], 3)],
                              "recommended >= plain", w["kendall_tau"]["mean"] >= p["kendall_tau"]["mean"]))
        better = {m: w[m]["mean"] > p[m]["mean"] for m in ("tau_top10", "p_at_top5", "top1_true_acc")}
        targets.append(target(f"{strategy}: top-k measures (τ top-10%, P@5%, top-1 true acc), recommended > plain",
                              {m: [round(w[m]["mean"], 3), round(p[m]["mean"], 3)] for m in better},
                              "all three better", all(better.values())))
    lines = ["| variant | Kendall τ | Spearman ρ | τ top-10% | P@5% | top-1 true acc | loss forgetting (nats) | "
             "best-5 (nats) | err1 | minutes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k, s in summary.items():
        lines.append(f"| {k} | {fmt(s['kendall_tau'])} | {fmt(s['spearman'])} | {fmt(s['tau_top10'])} | "
                     f"{fmt(s['p_at_top5'])} | {fmt(s['top1_true_acc'], 2)} | {fmt(s['loss_forgetting'], 4)} | "
                     f"{fmt(s['loss_forgetting_best5'], 4)} | {fmt(s['err1'], 3)} | {fmt(s['seconds'], 1, 1 / 60)} |")
    md = "\n".join(lines)
    print(md)
    payload = {
        "command": "python " + " ".join(sys.argv), "seeds": seed_list,
        "scale": f"C = 8, N = 1 supernet, 1 + {cfg['epochs']} epochs × 130 shared steps × 5 batches of 64 on real "
                 f"CIFAR-10; {cfg['cells']} fixed cells ranked on {cfg['batches']} validation batches"
                 + (" (quick: shrunk)" if args.quick else ""),
        "paper": "the paper has no NAS-Bench-201 experiment; published supernets rank at τ 0.485 (one-shot) and "
                 "0.551 (few-shot)",
        "variants": VARIANTS, "summary": summary, "per_seed": per_seed, "targets": targets, "markdown": md,
        "figure": png.name,
    }
    seconds = sum(r[k]["seconds"] for r in per_seed for k in keys) + sum(
        r[f"{st}-base_seconds"] for r in per_seed for st in studies)
    finish(args, "nb201", payload, seconds)


if __name__ == "__main__":
    main()
