"""NAS-Bench-201: does sampling only the 6,466 non-isomorphic cells (``--nb201_unique=true``) rank better?

Usage: python benchmarks/nb201_unique.py --data_dir DIR [--quick] [--seeds 0,1,2,3,4] [--work_dir W]
DIR holds cifar10/. Writes benchmarks/results/reproduce_nb201_unique.json (``_quick`` with --quick).

Per seed, two plain random-search supernets with reproduce_nb201.py's recipe and budget (10,000 batches of 64,
one epoch = 2,500): one samples uniformly over all 15,625 cells, the other over the isomorphism classes
(``--nb201_unique=true``). Both draw from their own seeded stream (``--arch_stream=own``). Each then ranks the
same 200 non-isomorphic cells (``wpl rank --nb201_unique=true``, 1,000 validation images), where Ning et al.
(NeurIPS 2021) report that de-duplicated sampling doubles P@5%. Paired by seed: τ, τ top-10%, P@5%, P@10%
and the top-1 pick's true accuracy, with 95% intervals. Resumable; finished seeds go to
results/reproduce_nb201_unique_seeds/ (commit them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from branching import run  # noqa: E402
from reproduce_common import (  # noqa: E402
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
from reproduce_nb201 import FLAGS, METRICS, ranked  # noqa: E402

ARMS = {"all": ["--nb201_unique=False"], "unique": ["--nb201_unique=True"]}
MODES = {"full": {"steps": 2500, "epochs": 4, "cells": 200, "batches": 4},
         "quick": {"steps": 150, "epochs": 2, "cells": 50, "batches": 1}}


def run_arm(work: Path, flags: list[str], seed: int, arm: str, cfg: dict) -> dict:
    """One supernet (search, then rank on the non-isomorphic sample): the rank metrics and the search's
    seconds per phase."""
    logs = work / f"seed{seed}"
    logs.mkdir(parents=True, exist_ok=True)
    d = logs / f"cifar10_{arm}"
    if not (d / "summary.json").exists():
        run([sys.executable, "-m", "wpl", "search", *flags, *ARMS[arm], "--search_strategy=random",
             "--use_wpl=False", "--arch_stream=own", f"--random_seed={seed}", f"--log_dir={logs}",
             f"--comment={arm}", f"--max_epoch={cfg['epochs']}", f"--save_epoch={cfg['epochs']}", "--resume=True"],
            logs / f"{arm}.log")
    summary = json.loads((d / "summary.json").read_text())
    return {**ranked(d, cfg["cells"], cfg["batches"], logs / f"{arm}-rank.log", "--nb201_unique=true"),
            "search_seconds": summary.get("seconds")}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    work = work_dir(args, "nb201_unique")
    flags = [*FLAGS, f"--shared_max_step={cfg['steps']}", f"--data_dir={args.data_dir}"]
    setup = {"flags": flags, "arms": ARMS, "mode": cfg}
    same_setup(work, setup)
    keep = kept(args, "nb201_unique", setup)
    seed_list = seeds(args, "0,1,2,3,4")
    per_seed = [step(keep / f"seed{s}.json", lambda s=s: {a: run_arm(work, flags, s, a, cfg) for a in ARMS})
                for s in seed_list]
    summary = {a: {m: mean_std([r[a][m] for r in per_seed]) for m in (*METRICS, "param_count_tau")} for a in ARMS}
    diffs = {m: paired_diff([r["unique"][m] for r in per_seed], [r["all"][m] for r in per_seed]) for m in METRICS}
    lines = table_head("sampling", "Kendall τ", "parameter count τ", "Spearman ρ", "τ top-10%", "P@5%", "P@10%",
                       "top-1 true acc")
    for a, s in summary.items():
        lines.append(f"| {a} | {fmt(s['kendall_tau'])} | {fmt(s['param_count_tau'])} | {fmt(s['spearman'])} | "
                     f"{fmt(s['tau_top10'])} | {fmt(s['p_at_top5'])} | {fmt(s['p_at_top10'])} | "
                     f"{fmt(s['top1_true_acc'], 2)} |")
    lines += ["", *table_head("unique − all (paired by seed)", *(f"Δ {m} [95%]" for m in METRICS))]
    lines.append("| " + " | ".join(["paired", *(fmt_diff(diffs[m], 2 if m == "top1_true_acc" else 3)
                                                for m in METRICS)]) + " |")
    md = "\n".join(lines)
    print(md)
    p5 = diffs["p_at_top5"]
    targets = [target("unique sampling's P@5% − all cells' (paired 95% interval)",
                      None if p5["mean"] is None else [round(p5["mean"], 3), p5["lo"], p5["hi"]],
                      "reported (Ning et al.: 0.21 → 0.47 on their supernet)", None)]
    payload = {"command": "python " + " ".join(sys.argv), "seeds": seed_list,
               "scale": f"C = 8, N = 1 plain random-search supernet, {cfg['epochs']} × {cfg['steps']} batches of 64; "
                        f"{cfg['cells']} non-isomorphic cells ranked on {cfg['batches'] * 250} validation images",
               "arms": ARMS, "summary": summary, "paired_unique_minus_all": diffs, "per_seed": per_seed,
               "targets": targets, "markdown": md}
    # the searches' own seconds survive a resume (a seed file's "seconds" counts only its last invocation)
    finish(args, "nb201_unique", payload, sum(sum(r[a]["search_seconds"].values()) for r in per_seed for a in ARMS))


if __name__ == "__main__":
    main()
