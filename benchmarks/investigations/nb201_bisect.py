"""Issue #24's bisection: which factor makes the bare NAS-Bench-201 supernet rank cells backwards?

Each row is ``nb201_recipe.py`` with the flags it names changed from the reference-like recipe (affine BN
outside the cells, PyTorch's default init, constant lr 0.05 Nesterov, batches drawn with replacement,
one crop and flip per batch, scores on 1,000 images in batches of 250); ``ours`` is the recipe the search
used before (all the other choices at once). Rows run one seed at a time, every row before the next seed;
a finished (row, seed) in ``--out`` is skipped, so the study resumes. ``--table`` prints the markdown.

Usage: python -m benchmarks.investigations.nb201_bisect --data_dir ~/data --out ~/runs/bisect/rows.jsonl [--seeds 0 1]
       [--rows reference ours ...] [--steps 4400] [--table]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.investigations.nb201_recipe import parser as recipe_parser
from benchmarks.investigations.nb201_recipe import run

REFERENCE = ["--outer_affine", "1", "--init", "default", "--lr_schedule", "constant", "--batches", "replace",
             "--aug", "batch"]
ORDER = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
ROWS: dict[str, list[str]] = {
    "reference": [],
    "ours": ["--outer_affine", "0", "--init", "kaiming", "--lr_schedule", "cosine", "--batches", "epoch",
             "--aug", "image", "--score", "512x256"],
    "non-affine BN outside cells": ["--outer_affine", "0"],
    "kaiming init": ["--init", "kaiming"],
    "cosine lr": ["--lr_schedule", "cosine"],
    "lr ×0.6 per epoch": ["--lr_schedule", "exp"],
    "per-image crop and flip": ["--aug", "image"],
    "epoch permutation batches": ["--batches", "epoch"],
    "5 batches per cell": ["--per_arch", "5"],
    "search optimiser defaults": ["--momentum", "0", "--wd", "1e-7", "--lr", "0.1"],
    # beyond the bisection: the search's data path, and the choices that measured best together
    "epoch batches and per-image crop/flip (the search's data path)": ["--batches", "epoch", "--aug", "image"],
    "non-affine BN, epoch batches, per-image crop and flip": ["--batches", "epoch", "--aug", "image",
                                                              "--outer_affine", "0"],
    "non-affine BN, epoch batches, one crop and flip per batch": ["--batches", "epoch", "--outer_affine", "0"],
    "lr 0.1": ["--lr", "0.1"],
}


def _done(path: Path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["row"], r["args"]["seed"]) for r in rows}


def table(path: Path) -> str:
    """Markdown: one line per row, mean ± std over its seeds (and each seed's τ)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = ["| factor changed from the reference | seeds | Kendall τ (each seed) | Spearman ρ | τ top-10% | "
           "τ, 256 images in 64s | ρ(count, score): none / skip / 1×1 / 3×3 / avg |", "|---|---|---|---|---|---|---|"]
    for name in ROWS:
        rs = [r for r in rows if r["row"] == name]
        if not rs:
            continue

        def ms(vals: list[float]) -> str:
            return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1) if len(vals) > 1 else 0:.3f}"

        taus = [r["kendall_tau"] for r in rs]
        prefs = " / ".join(f"{np.mean([r['op_rho_score_truth'][op][0] for r in rs]):+.2f}"
                           for op in ORDER)
        out.append(f"| {name} | {len(rs)} | {ms(taus)} ({', '.join(f'{t:.2f}' for t in taus)}) | "
                   f"{ms([r['spearman'] for r in rs])} | {ms([r['tau_top10'] for r in rs])} | "
                   f"{ms([r['tau_by_scoring']['256x64'] for r in rs])} | {prefs} |")
    truth = rows[0]["op_rho_score_truth"]
    out.append("| *truth: ρ(count, true accuracy)* | | | | | | " + " / ".join(f"{truth[op][1]:+.2f}" for op in ORDER)
               + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", default="~/data")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--steps", type=int, default=4400)
    ap.add_argument("--table", action="store_true", help="print the table of --out and exit")
    a = ap.parse_args()
    if a.table:
        print(table(a.out))
        return
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in a.seeds:
        for name in a.rows:
            if (name, seed) in _done(a.out):
                continue
            flags = ["--data_dir", a.data_dir, "--steps", str(a.steps), "--seed", str(seed), *REFERENCE, *ROWS[name]]
            result = {"row": name, **run(recipe_parser().parse_args(flags))}
            print(json.dumps({k: result[k] for k in ("row", "kendall_tau", "spearman", "train_s")}), flush=True)
            with a.out.open("a") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
