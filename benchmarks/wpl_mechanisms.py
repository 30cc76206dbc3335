"""Why does WPL not help the RNN search? Branch WPL variants off one plain supernet and measure forgetting.

Usage: python benchmarks/wpl_mechanisms.py --data_dir DIR --out RUNS [--seeds 0] [--branch 6] [--epochs 4]
           [--variants plain,original,...] [--table]

Per seed, one plain search (the README's RNN command at the CPU example's size, uniform architecture
sampling) runs to epoch ``--branch``; every variant then continues from that same checkpoint for
``--epochs`` epochs with its own WPL flags (plain continues without WPL), so variants differ only in
what WPL does. Forgetting is read from each run's ``forgetting`` events over the branched epochs (loss
space, nats, on the validation slice); training CE shows what WPL costs. Resumable: finished runs are
kept, unfinished ones resume. ``--table`` prints the Markdown table of what is there and exits.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

BASE = ("--train_controller=True --start_training_controller=1 --shared_max_step=30 --policy_batch_size=1 "
        "--num_blocks=12 --num_batch_per_iter=7 --alpha_fisher=60.0 --fisher_clip_by_norm=10.0 --alpha_decay=1. "
        "--alpha_decay_after=15 --set_fisher_zero_per_iter=2 --alpha_small_scale=.0001 --reward_c=80 "
        "--shared_embed=200 --shared_hid=200 --derive_num_sample=10 --test_batch_size=64 "
        "--search_strategy=random --use_tensorboard=False --max_save_num=100").split()
NORM = ["--legacy_compound_alpha=False", "--fisher_normalise=mean", "--fisher_clip_by_norm=0"]
# name -> flags added to BASE (WPL on from the branch epoch unless --use_wpl=False)
VARIANTS: dict[str, list[str]] = {
    "plain": ["--use_wpl=False"],
    "original": [],  # the README's WPL: α = 60 compounded into F, clip 10, gradient before the clip, step anchors
    "original-after_clip": ["--wpl_update=after_clip"],
    "original-snapshot": ["--wpl_anchor=snapshot", "--wpl_anchor_every=30"],
    "prox-step-a0.05": [*NORM, "--wpl_update=proximal", "--alpha_fisher=0.05"],
    "prox-snapshot-a0.005": [*NORM, "--wpl_update=proximal", "--wpl_anchor=snapshot", "--wpl_anchor_every=30",
                             "--alpha_fisher=0.005"],
    "prox-snapshot-a0.05": [*NORM, "--wpl_update=proximal", "--wpl_anchor=snapshot", "--wpl_anchor_every=30",
                            "--alpha_fisher=0.05"],
    "prox-snapshot-a0.5": [*NORM, "--wpl_update=proximal", "--wpl_anchor=snapshot", "--wpl_anchor_every=30",
                           "--alpha_fisher=0.5"],
    "prox-ema-a0.05": [*NORM, "--wpl_update=proximal", "--wpl_anchor=ema", "--wpl_anchor_rate=0.1",
                       "--alpha_fisher=0.05"],
}


def run(cmd: list[str], log: Path) -> None:
    """Run one search command, its output appended to ``log``; fail loudly."""
    print("$", " ".join(cmd), flush=True)
    with log.open("a") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)


def search_cmd(args: argparse.Namespace, seed_dir: Path, name: str, extra: list[str], max_epoch: int,
               start: int) -> list[str]:
    """The ``wpl search`` command of one run."""
    return [sys.executable, "-m", "wpl", "search", *BASE, f"--data_dir={args.data_dir}", f"--log_dir={seed_dir}",
            f"--comment={name}", f"--random_seed={seed_dir.name.removeprefix('seed')}",
            f"--start_using_fisher={start}", f"--max_epoch={max_epoch}", f"--save_epoch={max_epoch}", *extra]


def base_run(args: argparse.Namespace, seed_dir: Path) -> Path:
    """The plain supernet to the branch epoch, a checkpoint copy after every epoch."""
    d = seed_dir / "ptb_base"
    if not (d / "summary.json").exists():
        n = max(args.base_epochs, args.branch)
        cmd = search_cmd(args, seed_dir, "base", ["--use_wpl=False", "--resume=True"], n, n)
        cmd[cmd.index(f"--save_epoch={n}")] = "--save_epoch=1"
        run(cmd, seed_dir / "base.log")
    return d


def branch_run(args: argparse.Namespace, seed_dir: Path, base: Path, name: str) -> Path:
    """Continue ``base``'s last checkpoint as variant ``name`` to ``branch + epochs``."""
    d = seed_dir / f"ptb_{name}"
    if (d / "summary.json").exists():
        return d
    if not (d / "checkpoint.pt").exists():
        d.mkdir(parents=True, exist_ok=True)
        for f in ("metrics.jsonl", "forgetting.csv", "config.json"):
            shutil.copy2(base / f, d / f)
        ckpt = base / f"checkpoint_epoch_{args.branch - 1:03d}.pt"  # saved after epoch branch-1
        shutil.copy2(ckpt, d / "checkpoint.pt")
    cmd = search_cmd(args, seed_dir, name, [*VARIANTS[name], "--resume=True", "--resume_with_new_params=True"],
                     args.branch + args.epochs, args.branch)
    run(cmd, seed_dir / f"{name}.log")
    return d


def read_run(d: Path, branch: int) -> dict:
    """Forgetting (nats) and training CE over the branched epochs, the last derive's valid ppl, time."""
    events = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
    forg = [e for e in events if e["event"] == "forgetting" and e["epoch"] >= branch]
    shared = [e for e in events if e["event"] == "epoch" and e["epoch"] >= branch]
    summary = json.loads((d / "summary.json").read_text())
    base = json.loads((d.parent / "ptb_base" / "summary.json").read_text())
    return {
        "loss_diff_mean": statistics.fmean(e["loss_diff_mean"] for e in forg),
        "loss_diff_median": statistics.fmean(e["loss_diff_median"] for e in forg),
        "loss_diff_best_mean": statistics.fmean(e["loss_diff_best_mean"] for e in forg),
        "err1_ppl": statistics.fmean(e["err1_mean"] for e in forg),
        "train_ce_last": shared[-1]["shared_loss"],
        "valid_ppl": summary["best_valid"],
        "seconds": sum(summary["seconds"].values()) - sum(base["seconds"].values()),
        "per_epoch_loss_diff_mean": [round(e["loss_diff_mean"], 4) for e in forg],
    }


def table(args: argparse.Namespace, seed_list: list[int], names: list[str]) -> str:
    """Mean ± std over the seeds that have the run."""
    def ms(v: list[float], d: int = 3) -> str:
        return f"{statistics.fmean(v):+.{d}f} ± {statistics.stdev(v) if len(v) > 1 else 0:.{d}f}"

    lines = ["| variant | seeds | forgetting mean (nats) | median | best-5 | err1 (ppl) | train CE, last epoch | "
             "derived valid ppl | minutes |", "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        rows = [read_run(d, args.branch) for s in seed_list
                if (d := Path(args.out) / f"seed{s}" / f"ptb_{name}").joinpath("summary.json").exists()]
        if not rows:
            continue
        lines.append(f"| {name} | {len(rows)} | {ms([r['loss_diff_mean'] for r in rows])} | "
                     f"{ms([r['loss_diff_median'] for r in rows])} | {ms([r['loss_diff_best_mean'] for r in rows])} | "
                     f"{ms([r['err1_ppl'] for r in rows], 1)} | "
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
    if not args.table:
        for seed in seed_list:
            seed_dir = Path(args.out) / f"seed{seed}"
            seed_dir.mkdir(parents=True, exist_ok=True)
            base = base_run(args, seed_dir)
            for name in names:
                branch_run(args, seed_dir, base, name)
    print(table(args, seed_list, names))


if __name__ == "__main__":
    main()
