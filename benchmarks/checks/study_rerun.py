"""Does this machine reproduce a study's committed record? Train one (seed, arm) of a study again from scratch with
its frozen spec (or take a finished run of it from ``--work``), score it on the study's cells, and compare with
the committed record: how many cells' scores differ, each score's Kendall tau against the benchmark's truth, and
the tau between the two. Same code and seed on the same machine gives the same bits (tests/test_study.py); on
another CPU the kernels round differently and the supernet is another draw. One JSON file.

Usage: python -m benchmarks.checks.study_rerun --study benchmarks/studies/nb201_confirmatory --seed 1000 \\
    --arm random-plain --data_dir ~/data --work ~/runs/rerun --out benchmarks/results/nb201_rerun.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.lib.common import command_line

from wpl.fileio import write_json
from wpl.nas.rank import kendall_tau
from wpl.nas.spaces.nb201.study.runs import read_gz_json, record_path, score, train
from wpl.nas.spaces.nb201.study.spec import read_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="the study's folder (its frozen spec.toml, cells and runs/)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--arm", required=True, help="a trained arm of the study")
    ap.add_argument("--data_dir", required=True, help="the folder holding cifar10/")
    ap.add_argument("--work", required=True, help="scratch folder for the rerun (a finished run there is reused)")
    ap.add_argument("--out", required=True, help="the JSON file to write")
    args = ap.parse_args()
    study = Path(args.study)
    spec = read_spec(study / "spec.toml")
    arm = next((a for a in spec.arms if a.name == args.arm and a.trains), None)
    if arm is None:
        raise SystemExit(f"--arm={args.arm}: not a trained arm of {study / 'spec.toml'} "
                         f"({', '.join(a.name for a in spec.arms if a.trains)})")
    recorded = read_gz_json(record_path(study, args.seed, arm.name))
    truth = {name: c["truth"] for name, c in read_gz_json(study / "cells.json.gz").items()}
    train(spec, arm, args.seed, Path(args.work), args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        rerun = score(spec, arm, args.seed, Path(args.work), Path(tmp), args.data_dir)
    samples = {}
    for name, new in rerun["scores"].items():
        old = recorded["scores"][name]
        samples[name] = {"cells": len(new), "differ": sum(a != b for a, b in zip(new, old, strict=True)),
                         "tau_rerun": round(kendall_tau(new, truth[name]), 4),
                         "tau_record": round(kendall_tau(old, truth[name]), 4),
                         "tau_between": round(kendall_tau(new, old), 4)}
    write_json(Path(args.out), {
        "what": "one study run trained again from scratch with the same code, spec and seed, against its record",
        "run": f"seed {args.seed}, {arm.name}", "identical": all(s["differ"] == 0 for s in samples.values()),
        "machine_rerun": rerun["machine"],
        "machine_record": recorded.get("machine", "not recorded (before 2026-12-07)"),
        "train_seconds": {"rerun": rerun["train_seconds"], "record": recorded["train_seconds"]},
        "samples": samples,
        "command": command_line("benchmarks.checks.study_rerun", args),
    })
    print(f"{args.out}: " + "; ".join(f"{n}: {s['differ']} of {s['cells']} scores differ, tau {s['tau_rerun']} "
                                      f"(record {s['tau_record']})" for n, s in samples.items()))


if __name__ == "__main__":
    main()
