"""Why does WPL not help the RNN search? Branch WPL variants off one plain supernet and measure forgetting.

Usage: python -m benchmarks.investigations.wpl_mechanisms --data_dir DIR --out RUNS [--seeds 0] [--branch 6]
           [--epochs 4] [--variants plain,original,...] [--table]

Per seed, one plain search (the README's RNN command at the CPU example's size, uniform architecture
sampling) runs to epoch ``--branch``; every variant then continues from that same checkpoint for
``--epochs`` epochs with its own WPL flags (plain continues without WPL), drawing the same architecture
sequence (``--arch_stream=own`` from the branch on), so variants differ only in what WPL does.
Forgetting is read from each run's ``forgetting`` events over the branched epochs (loss space, nats,
on the validation slice); training CE shows what WPL costs. Resumable: finished runs are
kept, unfinished ones resume. ``--table`` prints the Markdown table of what is there and exits.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from benchmarks.lib.branching import Branches, events
from benchmarks.lib.common import fmt, mean_std

BASE = ("--train_controller=True --start_training_controller=1 --shared_max_step=30 --policy_batch_size=1 "
        "--num_blocks=12 --num_batch_per_iter=7 --alpha_fisher=60.0 --fisher_clip_by_norm=10.0 --alpha_decay=1. "
        "--alpha_decay_after=15 --set_fisher_zero_per_iter=2 --alpha_small_scale=.0001 --reward_c=80 "
        "--shared_embed=200 --shared_hid=200 --derive_num_sample=10 --test_batch_size=64 "
        "--search_strategy=random --use_tensorboard=False").split()
NORM = ["--legacy_compound_alpha=False", "--fisher_normalise=mean", "--fisher_clip_by_norm=0"]
# name -> flags added to BASE (WPL on from the branch epoch unless --use_wpl=False)
PROX = [*NORM, "--wpl_update=proximal"]
VARIANTS: dict[str, list[str]] = {
    "plain": ["--use_wpl=False"],
    "original": [],  # the README's WPL: α = 60 compounded into F, clip 10, gradient before the clip, step anchors
    "original-after_clip": ["--wpl_update=after_clip"],
    "prox-step-a0.005": [*PROX, "--alpha_fisher=0.005"],
    "prox-step-a0.05": [*PROX, "--alpha_fisher=0.05"],
    "prox-step-a0.5": [*PROX, "--alpha_fisher=0.5"],
    "prox-snapshot-a0.05": [*PROX, "--wpl_anchor=snapshot", "--wpl_anchor_every=30", "--alpha_fisher=0.05"],
    "prox-ema-a0.05": [*PROX, "--wpl_anchor=ema", "--wpl_anchor_rate=0.1", "--alpha_fisher=0.05"],
    # every weight the architecture uses (embedding, decoder, node 0 too), not only its edges
    "original-used": ["--wpl_scope=used"],
    "prox-step-used-a0.05": [*PROX, "--wpl_scope=used", "--alpha_fisher=0.05"],
}


def read_run(study: Branches, seed: int, name: str) -> dict:
    """Forgetting (nats) and training CE over the branched epochs, the last derive's valid ppl, time."""
    d = study.run_dir(seed, name)
    forg = [e for e in events(d, "forgetting") if e["epoch"] >= study.branch]
    shared = [e for e in events(d, "epoch") if e["epoch"] >= study.branch]
    return {
        "loss_diff_mean": statistics.fmean(e["loss_diff_mean"] for e in forg),
        "loss_diff_median": statistics.fmean(e["loss_diff_median"] for e in forg),
        "loss_diff_best_mean": statistics.fmean(e["loss_diff_best_mean"] for e in forg),
        "loss1": statistics.fmean(float(r["loss1"]) for r in csv.DictReader((d / "forgetting.csv").open())
                                  if int(r["epoch"]) >= study.branch),
        "train_ce_last": shared[-1]["shared_loss"],
        "valid_ppl": [e for e in events(d, "derive") if e["epoch"] >= study.branch][-1]["valid"],
        "seconds": study.seconds(seed, name),
        "per_epoch_loss_diff_mean": [round(e["loss_diff_mean"], 4) for e in forg],
    }


def paired(study: Branches, seed: int, name: str, key: str = "loss_diff") -> list[float] | None:
    """Per architecture after the branch: its ``key`` (loss forgetting; ``loss2``: its loss at the epoch's
    end) under ``name`` minus under plain (the same architecture at the same step; None when the two runs
    did not train the same sequence)."""
    def rows(n: str) -> dict:
        with (study.run_dir(seed, n) / "forgetting.csv").open() as fh:
            return {(r["epoch"], r["step"]): r for r in csv.DictReader(fh) if int(r["epoch"]) >= study.branch}

    a, b = rows(name), rows("plain")
    if set(a) != set(b) or any(a[k]["arch"] != b[k]["arch"] for k in a):
        return None
    return [float(a[k][key]) - float(b[k][key]) for k in a]


def pair_text(study: Branches, seeds: list[int], name: str, key: str) -> str:
    """Mean ± s.e. (and median) of the paired differences of ``key`` over ``seeds``; "" for plain."""
    diffs = [d for s in seeds for d in (paired(study, s, name, key) or [])]
    if len(diffs) < 2 or name == "plain":
        return ""
    return (f"{statistics.fmean(diffs):+.3f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.3f} "
            f"(median {statistics.median(diffs):+.3f})")


def table(study: Branches, seed_list: list[int], names: list[str]) -> str:
    """Mean ± std over the seeds that have the run."""
    def ms(v: list[float], d: int = 3) -> str:
        return fmt(mean_std(v), d, sign=True)

    lines = ["| variant | seeds | paired Δ forgetting vs plain (nats, ± s.e.) | paired Δ loss at the epoch's end | "
             "forgetting mean (nats) | median | best-5 | err1 (mean loss) | train CE, last epoch | derived valid ppl | "
             "minutes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        rows = [read_run(study, s, name) for s in seed_list
                if study.run_dir(s, name).joinpath("summary.json").exists()]
        failed = [f"seed {s}: {why}" for s in seed_list if (why := study.failed(s, name))]
        if failed:
            lines.append(f"| {name} | {len(failed)} failed | " + "; ".join(failed) + " | | | | | | | | |")
        if not rows:
            continue
        done = [s for s in seed_list
                if all(study.run_dir(s, n).joinpath("summary.json").exists() for n in (name, "plain"))]
        pl, p2 = (pair_text(study, done, name, key) for key in ("loss_diff", "loss2"))
        lines.append(f"| {name} | {len(rows)} | {pl} | {p2} | "
                     f"{ms([r['loss_diff_mean'] for r in rows])} | "
                     f"{ms([r['loss_diff_median'] for r in rows])} | {ms([r['loss_diff_best_mean'] for r in rows])} | "
                     f"{ms([r['loss1'] for r in rows])} | "
                     f"{ms([r['train_ce_last'] for r in rows])} | {ms([r['valid_ppl'] for r in rows], 1)} | "
                     f"{statistics.fmean(r['seconds'] for r in rows) / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True, help="folder holding ptb/")
    ap.add_argument("--out", required=True, help="where the runs go")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--branch", type=int, default=6, help="plain epochs before the variants branch off")
    ap.add_argument("--epochs", type=int, default=4, help="epochs each variant runs after the branch")
    ap.add_argument("--base_epochs", type=int, default=0,
                    help="epochs of the plain base run (default: --branch; more shows forgetting over a longer run)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--table", action="store_true", help="print the table of finished runs and exit")
    args = ap.parse_args()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    seed_list = [int(s) for s in args.seeds.split(",")]
    study = Branches([*BASE, f"--data_dir={args.data_dir}"], Path(args.out), args.branch, args.epochs,
                     args.base_epochs, paired=True)
    if not args.table:
        for seed in seed_list:
            study.base(seed)
            for name in names:
                study.variant(seed, name, VARIANTS[name])
    print(table(study, seed_list, names))


if __name__ == "__main__":
    main()
