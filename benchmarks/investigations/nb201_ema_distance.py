"""How far a study's weight average is from the weights it averages, seed by seed, beside what scoring with it did
to Kendall tau. For each seed whose source run is in ``--work``: per tensor of the last checkpoint, the cosine
between the EMA and the last weights and the ratio of their norms (the cells' ops, whose non-affine batch norms
make them scale-invariant, apart from the rest), and the seed's tau of the EMA arm minus its source's on the
study's held-out cells (from the committed records). Reads checkpoints only: no training, no scoring.

Usage: python -m benchmarks.investigations.nb201_ema_distance --study benchmarks/studies/nb201_confirmatory \\
    --arm random-ema --work benchmarks/studies/nb201_confirmatory/work --out benchmarks/results/nb201_ema_distance.json
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from benchmarks.lib.common import command_line
from wpl.fileio import write_json
from wpl.nas.rank import kendall_tau, spearman
from wpl.nas.spaces.nb201.study.runs import read_gz_json, record_path, run_dir
from wpl.nas.spaces.nb201.study.spec import read_spec


def distances(checkpoint: Path) -> dict:
    """Median and least cosine, and median norm ratio (EMA / last), over the cells' op tensors and the others."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if ck.get("weight_ema") is None:
        raise SystemExit(f"{checkpoint}: keeps no weight average (the run had no --weight_ema)")
    out: dict = {"ops": {"cos": [], "norm": []}, "other": {"cos": [], "norm": []}}
    for name, w in ck["supernet"].items():
        e = ck["weight_ema"][name].flatten().double()
        w = w.flatten().double()
        group = out["ops" if ".ops." in name else "other"]
        group["cos"].append(float(torch.dot(w, e) / (w.norm() * e.norm())))
        group["norm"].append(float(e.norm() / w.norm()))
    return {g: {"tensors": len(v["cos"]), "cos_median": round(statistics.median(v["cos"]), 4),
                "cos_least": round(min(v["cos"]), 4), "norm_ratio_median": round(statistics.median(v["norm"]), 4)}
            for g, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="the study's folder (its frozen spec.toml, cells and runs/)")
    ap.add_argument("--arm", required=True, help="an arm of the study scored with another arm's weight average")
    ap.add_argument("--work", required=True, help="the study's work folder, holding the trained runs")
    ap.add_argument("--out", required=True, help="the JSON file to write")
    args = ap.parse_args()
    study = Path(args.study)
    spec = read_spec(study / "spec.toml")
    arm = next((a for a in spec.arms if a.name == args.arm and a.weights == "ema"), None)
    if arm is None:
        raise SystemExit(f"--arm={args.arm}: not an arm of {study / 'spec.toml'} scored with a weight average")
    truth = read_gz_json(study / "cells.json.gz")["cells"]["truth"]
    rows = []
    for seed in spec.seeds:
        ck = run_dir(Path(args.work), seed, arm.source) / "checkpoint.pt"
        if not ck.exists():
            continue
        tau = {a: kendall_tau(read_gz_json(record_path(study, seed, a))["scores"]["cells"], truth)
               for a in (arm.name, arm.source)}
        rows.append({"seed": seed, "delta_tau": round(tau[arm.name] - tau[arm.source], 4), **distances(ck)})
    if not rows:
        raise SystemExit(f"--work={args.work}: holds no run of {arm.source} for seeds {spec.seeds[0]}-{spec.seeds[-1]}")
    dt = [r["delta_tau"] for r in rows]
    cos = [r["ops"]["cos_median"] for r in rows]
    write_json(Path(args.out), {
        "what": f"{arm.name} scores {arm.source}'s weight average: how far it is from the last weights, per seed",
        "seeds": len(rows), "per_seed": rows,
        "delta_tau_mean": round(statistics.fmean(dt), 4),
        "ops_cos_median_range": [min(cos), max(cos)],
        "spearman_ops_cos_vs_delta_tau": round(spearman(cos, dt), 3) if len(rows) > 2 else None,
        "command": command_line("benchmarks.investigations.nb201_ema_distance", args),
    })
    print(f"{args.out}: {len(rows)} seeds; ops' median cosine {min(cos)}–{max(cos)}; "
          f"Δτ mean {statistics.fmean(dt):+.4f}")


if __name__ == "__main__":
    main()
