"""Scoring NAS-Bench-201 cells for a ranking: one cell at a time (``score_each``) against the shared-prefix scorer
(``score_cells``: each batch's stem and first-cell parts computed once for the cells sharing them), on a study run's
trained supernet and the study's own cell samples. Runs fast, slow, fast in one process (the slow variant between two
fast ones, so drift shows), checks the scores are identical bit for bit and equal to the run's committed study
record; one JSON file.

Usage: python -m benchmarks.speed.nb201_rank_speed --study benchmarks/studies/nb201_confirmatory \\
    --work ~/frozen/study/benchmarks/studies/nb201_confirmatory/work --seed 1000 --arm random-plain --data_dir ~/data \\
    --out benchmarks/results/nb201_rank_speed.json
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from benchmarks.lib.common import command_line
from wpl.fileio import write_json
from wpl.nas.spaces.nb201.ranking import score_cells, score_each, use_weights
from wpl.nas.spaces.nb201.study.runs import cell_sample, load_run, read_gz_json, record_path, run_dir, samples
from wpl.nas.spaces.nb201.study.spec import read_spec
from wpl.nas.spaces.nb201.supernet import Nb201Arch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="the study's folder (its frozen spec.toml and runs/)")
    ap.add_argument("--work", required=True, help="the folder of the study's trained runs")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    study = Path(args.study)
    spec = read_spec(study / "spec.toml")
    arm = next(a for a in spec.arms if a.name == args.arm)
    search = load_run(run_dir(Path(args.work), args.seed, arm.source), args.data_dir)
    use_weights(search, arm.weights, Path(args.work))
    sets = {name: (c, [Nb201Arch.from_string(s) for s in cell_sample(c)[1]]) for name, c in samples(spec).items()}

    def run(fn) -> tuple[float, dict]:
        t = time.perf_counter()
        scores = {name: fn(search.task, archs, c.batches, c.batch_size) for name, (c, archs) in sets.items()}
        return time.perf_counter() - t, scores

    t_fast1, fast1 = run(score_cells)
    t_slow, slow = run(lambda *a: score_each(*a)["accuracy"])
    t_fast2, fast2 = run(score_cells)
    record = read_gz_json(record_path(study, args.seed, args.arm))["scores"]
    cells = sum(len(a) for _, a in sets.values())
    write_json(Path(args.out), {
        "what": "seconds to score a study run's cell samples: one cell at a time vs the shared-prefix scorer",
        "host": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "run": f"seed {args.seed}, {args.arm}", "cells": cells,
        "images_per_cell": [c.batches * c.batch_size for c, _ in sets.values()],
        "seconds": {"shared_prefix_1": round(t_fast1, 1), "one_at_a_time": round(t_slow, 1),
                    "shared_prefix_2": round(t_fast2, 1)},
        "speedup": round(2 * t_slow / (t_fast1 + t_fast2), 2),
        "identical": fast1 == slow == fast2, "equal_to_study_record": fast1 == record,
        "command": command_line("benchmarks.speed.nb201_rank_speed", args),
    })


if __name__ == "__main__":
    main()
