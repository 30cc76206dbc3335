"""A NAS-Bench-201 supernet at the benchmark's own size (C = 16, N = 5) trained for a fixed time with the comparison's
recipe (plain random search with weight sharing), then ranked on 1,000 non-isomorphic cells beside the parameter
count on the same cells: what a GPU buys in ranking fidelity.

    python -m benchmarks.gpu.nb201_scale --data_dir /tmp/wpl_data --device cuda --budget_s 180 --out nb201_scale.json

First a speed probe (shared batches in float32 and under bf16 autocast, interleaved) sets the number of batches
that fills ``--budget_s``; the search then runs as ``wpl search`` would (float32: bf16 is only measured), and
``wpl rank`` scores the cells (seed 20261207: no study or bisection used it). One JSON file holds the probe, the
run's settings and wall time, and the ranking numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

RECIPE = ["--network_type=nb201", "--dataset=cifar10", "--nb201_outer_affine=False", "--nb201_init=default",
          "--augment_scope=batch", "--train_sampling=replace", "--batch_size=64", "--test_batch_size=100",
          "--num_batch_per_iter=1", "--shared_momentum=0.9", "--shared_lr=0.05", "--shared_decay=1",
          "--shared_l2_reg=5e-4", "--shared_grad_clip=5", "--derive_num_sample=20", "--forgetting_batches=1",
          "--forgetting_every=10", "--rank_every=0", "--search_strategy=random", "--use_wpl=False",
          "--valid_size=1000", "--max_epoch=4", "--save_epoch=4", "--use_tensorboard=False", "--log_level=WARNING"]
CELL_SEED = 20261207


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe(argv: list[str], device: torch.device, rounds: int) -> dict:
    """Median seconds of one shared batch in float32 and under bf16 autocast (interleaved, after a warm-up)."""
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    search = build_search(parse_search_args(argv), run_dir=None, device=device)
    archs = search.sample_archs(8)
    variants = {"fp32": contextlib.nullcontext, "bf16": lambda: torch.autocast(device.type, dtype=torch.bfloat16)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(rounds + 3):
        for name, ctx in variants.items():
            arch = archs[i % len(archs)]
            _sync(device)
            t0 = time.perf_counter()
            with ctx():
                search.shared_batch(arch, [], wpl=False)
            _sync(device)
            if i >= 3:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"fp32_batch_ms": round(med["fp32"] * 1e3, 2), "bf16_batch_ms": round(med["bf16"] * 1e3, 2),
            "bf16_speedup": round(med["fp32"] / med["bf16"], 3), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True, help="holds cifar10/ (benchmarks/gpu/data.py unpack)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget_s", type=float, default=180.0, help="seconds of shared training the run is sized to")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--num_archs", type=int, default=1000, help="non-isomorphic cells ranked")
    ap.add_argument("--probe_rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="the search's seed")
    ap.add_argument("--work", type=Path, default=Path("/tmp/wpl_gpu_nb201"), help="the run folder's parent")
    ap.add_argument("--out", type=Path, required=True, help="the JSON file written")
    a = ap.parse_args(argv)
    from wpl.nas.search.run import run_search
    from wpl.nas.spaces.nb201.rank_command import cmd_rank

    device = torch.device(a.device)
    argv_run = [*RECIPE, f"--data_dir={a.data_dir}", f"--device={a.device}", f"--nb201_channels={a.channels}",
                f"--nb201_cells={a.cells}", f"--random_seed={a.seed}"]
    speed = probe(argv_run, device, a.probe_rounds)
    batches = max(4, int(a.budget_s / (speed["fp32_batch_ms"] / 1e3)))
    per_epoch = max(1, batches // 4)
    print(f"probe: {speed}; {4 * per_epoch} batches fill {a.budget_s:.0f} s", flush=True)
    t0 = time.perf_counter()
    summary = run_search([*argv_run, f"--shared_max_step={per_epoch}", f"--log_dir={a.work}", "--comment=gpu_scale"])
    search_s = time.perf_counter() - t0
    rank_json = a.out.with_name(a.out.stem + "_rank.json")
    t0 = time.perf_counter()
    code = cmd_rank(["--model_name", "cifar10_gpu_scale", "--log_dir", str(a.work), "--num_archs", str(a.num_archs),
                     "--nb201_unique", "true", "--seed", str(CELL_SEED), "--output", str(rank_json)])
    rank_s = time.perf_counter() - t0
    r = json.loads(rank_json.read_text())
    base = r["reference"]["parameter_count"]["same_cells"]
    out = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "channels": a.channels, "cells": a.cells, "batches": 4 * per_epoch, "budget_s": a.budget_s,
           "probe": speed, "search_s": round(search_s, 1), "rank_s": round(rank_s, 1), "rank_exit": code,
           "cell_seed": CELL_SEED, "num_archs": a.num_archs,
           "tau": r["kendall_tau"], "param_count_tau": base["kendall_tau"],
           "p_at_top5": r["p_at_top5"], "param_count_p_at_top5": base["p_at_top5"],
           "top1_true_acc": r["top1_true_acc"], "param_count_top1_true_acc": base["top1_true_acc"],
           "one_shot_tau": r["reference"]["one_shot"]["same_cells"]["kendall_tau"],
           "best_valid": summary.get("best_valid"),
           "command": "python -m benchmarks.gpu.nb201_scale " + " ".join(sys.argv[1:] if argv is None else argv)}
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
