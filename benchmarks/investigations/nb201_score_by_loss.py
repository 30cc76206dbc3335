"""Exploratory: does a supernet rank NAS-Bench-201 cells better when each cell is scored by its validation loss
(negated mean cross-entropy) instead of its accuracy? Accuracy on 1,000 images moves in steps of 0.1 points and
ties many cells; the loss is continuous and reads how confident the cell is, not only whether it is right.

Declared before the run: every supernet the confirmatory study has trained and recorded at the seeds given (and its
weight-averaged arm), each scoring the study's **continuity** cells (200, sample seed 0 — the tuning cells, already
used) both ways in one pass; the study's held-out cells are not touched, so a later confirmatory test of the
scoring rule can still use them. Per measure: Kendall τ, τ top-10%, P@5%, the top-1 pick's true accuracy; the
difference loss − accuracy paired by supernet, with its 95% t-interval (all supernets; and per arm). The accuracy
scores are checked to equal the study's records. Exploratory: a lead for a declared study, not a result.

Usage: python -m benchmarks.investigations.nb201_score_by_loss --study benchmarks/studies/nb201_confirmatory \\
    --work ~/frozen/study/benchmarks/studies/nb201_confirmatory/work --seeds 1000-1003 --data_dir ~/data
  → results/nb201_score_by_loss.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from wpl.data.nb201 import ground_truth
from wpl.fileio import write_json
from wpl.nas.rank import kendall_tau, rank_metrics
from wpl.nas.spaces.nb201.ranking import cell_scores, use_weights
from wpl.nas.spaces.nb201.study.runs import cell_sample, load_run, read_gz_json, record_path, run_dir
from wpl.nas.spaces.nb201.study.spec import read_spec
from wpl.nas.spaces.nb201.supernet import Nb201Arch
from wpl.stats import paired

RESULTS = Path(__file__).resolve().parents[1] / "results"
METRICS = ("kendall_tau", "tau_top10", "p_at_top5", "top1_true_acc")


def mechanism(study: Path, runs: list[dict], truth: np.ndarray, params: np.ndarray) -> dict:
    """Where the difference comes from, from the saved scores: τ loss − τ accuracy on the cells the benchmark rates
    well (≥ 85%) and the rest, and on each run's cells whose accuracy no other cell shares (ties removed); how
    many distinct accuracies a run gives its cells; each measure's τ with the parameter count."""
    subsets: dict[str, list[tuple[float, float]]] = {"truth >= 85": [], "truth < 85": [], "accuracy untied": []}
    distinct, with_params = [], {"accuracy": [], "loss": []}
    for run in runs:
        acc = np.asarray(read_gz_json(record_path(study, run["seed"], run["arm"]))["scores"]["continuity"], float)
        loss = np.asarray(run["loss_scores"], float)
        values, counts = np.unique(acc, return_counts=True)
        untied = np.isin(acc, values[counts == 1])
        for name, m in (("truth >= 85", truth >= 85), ("truth < 85", truth < 85), ("accuracy untied", untied)):
            subsets[name].append((kendall_tau(loss[m], truth[m]), kendall_tau(acc[m], truth[m])))
        distinct.append(len(values))
        with_params["accuracy"].append(kendall_tau(acc, params))
        with_params["loss"].append(kendall_tau(loss, params))
    out = {}
    for name, pairs in subsets.items():
        c = paired([a for a, _ in pairs], [b for _, b in pairs])
        out[name] = {"loss": float(np.mean([a for a, _ in pairs])), "accuracy": float(np.mean([b for _, b in pairs])),
                     **{k: c[k] for k in ("n", "mean", "lo", "hi", "up", "down")}}
    out["cells"] = {"truth >= 85": int((truth >= 85).sum()), "truth < 85": int((truth < 85).sum())}
    out["distinct_accuracies"] = {"min": min(distinct), "max": max(distinct), "of": len(truth)}
    out["tau_with_parameter_count"] = {m: float(np.mean(v)) for m, v in with_params.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="the study's folder (its frozen spec.toml and runs/)")
    ap.add_argument("--work", required=True, help="the folder of the study's trained runs")
    ap.add_argument("--seeds", default="1000-1003", help="first-last, seeds whose every arm is recorded")
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--out", default=str(RESULTS / "nb201_score_by_loss.json"))
    ap.add_argument("--reread", action="store_true", help="recompute the summary from --out's saved scores")
    args = ap.parse_args()
    study, work = Path(args.study), Path(args.work)
    spec = read_spec(study / "spec.toml")
    first, last = (int(x) for x in args.seeds.split("-"))
    sample = spec.continuity
    idx, strings = cell_sample(sample)
    archs = [Nb201Arch.from_string(s) for s in strings]
    truth = ground_truth().test_acc[idx]
    params = np.asarray(read_gz_json(study / "cells.json.gz")["continuity"]["reference"]["parameter_count"], float)
    rows = json.loads(Path(args.out).read_text())["runs"] if args.reread else []
    for seed in range(first, last + 1) if not args.reread else ():
        for arm in spec.arms:
            t0 = time.time()
            search = load_run(run_dir(work, seed, arm.source), args.data_dir)
            try:
                use_weights(search, arm.weights, work)
                scores = cell_scores(search.task, archs, sample.batches, sample.batch_size)
            finally:
                search.runlog.close()
            recorded = read_gz_json(record_path(study, seed, arm.name))["scores"]["continuity"]
            if scores["accuracy"] != recorded:
                raise SystemExit(f"seed {seed} {arm.name}: accuracy scores differ from the study's record")
            rows.append({"seed": seed, "arm": arm.name, **{m: rank_metrics(scores[m], truth) for m in scores},
                         "loss_scores": scores["loss"]})
            print(f"seed {seed} {arm.name}: τ accuracy {rows[-1]['accuracy']['kendall_tau']:.3f}, loss "
                  f"{rows[-1]['loss']['kendall_tau']:.3f} ({time.time() - t0:.0f} s)", flush=True)

    def diff(subset: list[dict]) -> dict:
        out = {}
        for m in METRICS:
            c = paired([r["loss"][m] for r in subset], [r["accuracy"][m] for r in subset])
            out[m] = {k: c[k] for k in ("n", "mean", "sd", "lo", "hi", "p", "up", "down")}
        return out

    arms = [a.name for a in spec.arms]
    write_json(args.out, {
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "cells": {"seed": sample.seed, "num": sample.num, "images": sample.batches * sample.batch_size,
                  "unique": sample.unique},
        "seeds": list(range(first, last + 1)), "exploratory": True,
        "loss_minus_accuracy": {"all": diff(rows), **{a: diff([r for r in rows if r["arm"] == a]) for a in arms}},
        "mechanism": mechanism(study, rows, truth, params),
        "runs": [{k: r[k] for k in ("seed", "arm", "accuracy", "loss", "loss_scores")} for r in rows],
        "command": f"python -m benchmarks.investigations.nb201_score_by_loss --study {args.study} --work "
                   f"{args.work} --seeds {args.seeds} --data_dir {args.data_dir}".replace(str(Path.home()), "~"),
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
