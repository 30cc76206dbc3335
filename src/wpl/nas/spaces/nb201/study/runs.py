"""A study's runs: each seed's trained arms (``wpl search`` in a child process, resumable), each arm's supernet
scored on the study's cells (in this process), one compressed record per seed and arm, and the cells' file (the
sample, the truth and the no-training scores on it). A record that exists is done: a rerun skips it, so a study
stopped anywhere continues where it was."""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from wpl.errors import WplError
from wpl.fileio import atomic_write, finite
from wpl.rundir import RunDir
from wpl.runtime import machine

from .spec import Arm, Cells, Spec

# every run's flags the study sets (besides the seed, folder and name)
STUDY_FLAGS = ("--network_type=nb201", "--dataset=cifar10", "--resume=True", "--use_tensorboard=False",
               "--log_level=WARNING")


def write_gz_json(path: Path, data: object) -> Path:
    """``data`` as gzip-compressed JSON (non-finite floats as null), written atomically."""
    blob = gzip.compress(json.dumps(finite(data), allow_nan=False).encode(), mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)

    def _write(tmp: str) -> None:
        Path(tmp).write_bytes(blob)

    return atomic_write(path, _write, len(blob))


def read_gz_json(path: Path) -> dict:
    """What :func:`write_gz_json` wrote."""
    return json.loads(gzip.decompress(path.read_bytes()))


def run_dir(work: Path, seed: int, arm: str) -> Path:
    """The search run of ``arm`` at ``seed``."""
    return work / f"seed{seed}" / f"cifar10_{arm}"


def record_path(out: Path, seed: int, arm: str) -> Path:
    """The record of ``arm`` at ``seed`` (its scores on the study's cells)."""
    return out / "runs" / f"seed{seed}" / f"{arm}.json.gz"


def search_command(spec: Spec, arm: Arm, seed: int, work: Path, data_dir: str) -> list[str]:
    """The ``wpl search`` command of one trained arm at one seed."""
    own = ["--arch_stream=own"] if arm.strategy == "random" else []  # the random arms of a seed train one stream
    return [sys.executable, "-m", "wpl", "search", *STUDY_FLAGS, *spec.flags, *arm.flags,
            f"--search_strategy={arm.strategy}", *own, f"--random_seed={seed}", f"--log_dir={work / f'seed{seed}'}",
            f"--comment={arm.name}", f"--data_dir={data_dir}"]


def check_arm_flags(spec: Spec, where: Path) -> None:
    """Every trained arm's search flags parse (before any run): a refused one is one line naming the arm."""
    from wpl.nas.search.flags import parse_search_args

    for arm in spec.arms:
        if arm.trains:
            try:
                parse_search_args(search_command(spec, arm, spec.seeds[0], Path("work"), "data")[4:])
            except SystemExit as exc:
                raise WplError(f"{where} [arms.{arm.name}]: its flags are refused (the line above says why)") from exc


# flags that say where a run lives or how it logs, not what it trains
WHERE = frozenset({"data_dir", "log_dir", "load_path", "resume", "log_level", "use_tensorboard"})


def check_same_run(spec: Spec, arm: Arm, seed: int, d: Path) -> None:
    """A finished run found in the work folder (this study's, or another study's it shares) is ``arm`` at
    ``seed`` trained with this spec's flags: any flag its ``config.json`` saved with another value is one line
    naming the folder, else it would be scored as if it were."""
    from wpl.nas.search.flags import parse_search_args

    want = json.loads(json.dumps(parse_search_args(search_command(spec, arm, seed, d.parent.parent, "data")[4:])
                                 .flags(), default=str))
    saved = json.loads((d / "config.json").read_text())
    differ = sorted(k for k in (want.keys() & saved.keys()) - WHERE if want[k] != saved[k])
    if differ:
        shown = "; ".join(f"--{k}={saved[k]} there, {want[k]} in the spec" for k in differ[:3])
        raise WplError(f"{d}: a finished run of arm {arm.name}, seed {seed}, trained with other flags ({shown}"
                       f"{'; …' if len(differ) > 3 else ''}); give the study a fresh --work_dir, or match the spec")


class Diverged(Exception):
    """A search that stopped on a non-finite loss: a result of its arm (recorded), not a fault of the study."""


def train(spec: Spec, arm: Arm, seed: int, work: Path, data_dir: str) -> Path:
    """Train (or finish training) ``arm`` at ``seed``; its run folder. A run that diverged raises
    :class:`Diverged`; any other failure is one line naming its log."""
    d = run_dir(work, seed, arm.name)
    if RunDir(d).summary.exists():
        check_same_run(spec, arm, seed, d)
        return d
    if not spec.trains:
        raise WplError(f"{d}: no finished run of arm {arm.name}, seed {seed}, and this spec trains nothing (trains = "
                       "false); finish the study that trains it, or point --work_dir at its runs")
    d.parent.mkdir(parents=True, exist_ok=True)
    log = d.parent / f"{arm.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("a") as fh:
        rc = subprocess.run(search_command(spec, arm, seed, work, data_dir), stdout=fh, stderr=subprocess.STDOUT,
                            env=env).returncode
    if rc != 0:
        tail = [ln for ln in log.read_text(errors="replace").replace("\r", "\n").splitlines() if ln.strip()][-1:]
        if rc == 1 and tail and "error: non-finite" in tail[0]:
            raise Diverged(tail[0].split("error: ", 1)[1].strip())
        raise WplError(f"the search of arm {arm.name}, seed {seed} exited with {rc} ({tail[0].strip() if tail else ''}"
                       f"); its log is {log}; fix the cause and rerun the study (it resumes)")
    return d


def failed_record(spec: Spec, arm: Arm, seed: int, out: Path, why: str) -> dict:
    """The record of a run that diverged (or scores a supernet that did): no scores, the reason."""
    rec = {"seed": seed, "arm": arm.name, "run": run_dir(Path(), seed, arm.source).as_posix(), "weights": arm.weights,
           "failed": why, "scores": {name: None for name in samples(spec)}}
    write_gz_json(record_path(out, seed, arm.name), rec)
    return rec


def failed_source(out: Path, seed: int, arm: Arm) -> str | None:
    """Why the supernet a scoring arm reads diverged at ``seed`` (None when it did not)."""
    p = record_path(out, seed, arm.source)
    return read_gz_json(p).get("failed") if p.exists() else None


def time_left(spec: Spec, out: Path, todo: list[tuple[int, Arm]], recent: int = 5) -> float | None:
    """Seconds the runs in ``todo`` should take: each the median of its arm's last ``recent`` recorded runs
    (training and scoring; scoring only for an arm that scores another's supernet), else of every recorded run;
    None before any run is recorded."""
    by_arm: dict[str, list[float]] = {}
    for seed in spec.seeds:
        for arm in spec.arms:
            p = record_path(out, seed, arm.name)
            rec = read_gz_json(p) if p.exists() else {}
            if "score_seconds" in rec:
                by_arm.setdefault(arm.name, []).append(rec["score_seconds"] + (rec["train_seconds"] if arm.trains
                                                                               else 0.0))
    every = [x for xs in by_arm.values() for x in xs]
    if not every:
        return None
    return sum(statistics.median(by_arm.get(arm.name, [])[-recent:] or every) for _, arm in todo)


def cell_sample(cells: Cells) -> tuple[np.ndarray, list[str]]:
    """The sample's canonical indices and cell strings."""
    from wpl.data.nb201 import all_archs

    from ..ranking import sample_benchmark_cells

    idx = sample_benchmark_cells(cells.num, cells.seed, cells.unique)
    return idx, [all_archs()[i] for i in idx]


def load_run(d: Path, data_dir: str):
    """The search in run folder ``d`` as its last checkpoint left it (for scoring)."""
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import load_search, setup_logging

    setup_logging("WARNING")
    flags = [f"--load_path={d}", "--mode=test", "--log_level=WARNING", f"--data_dir={data_dir}"]
    return load_search(parse_search_args(flags), d, RunDir(d).checkpoint)


def sample_file(search, cells: Cells) -> dict:
    """One sample of the cells' file: indices, strings, truth, and the scores that need no training on them."""
    from wpl.data.nb201 import ground_truth

    from ..ranking import jacob_cov_scores, mac_counts, parameter_counts
    from ..supernet import Nb201Arch

    idx, strings = cell_sample(cells)
    archs = [Nb201Arch.from_string(s) for s in strings]
    g = ground_truth()
    task = search.task
    return {**{k: getattr(cells, k) for k in ("seed", "num", "unique", "images", "batch_size")},
            "index": idx.tolist(), "arch": strings, "truth": g.test_acc[idx].tolist(),
            "reference": {"parameter_count": parameter_counts(task.supernet, archs),
                          "flops": mac_counts(task.supernet, archs, task.data.shape),
                          "jacob_cov": jacob_cov_scores(task, archs),
                          "one_shot": g.one_shot[idx].tolist(), "few_shot": g.few_shot[idx].tolist()}}


def samples(spec: Spec) -> dict[str, Cells]:
    """The study's cell samples by name: ``cells`` (the endpoints') and, if declared, ``continuity``."""
    return {"cells": spec.cells, **({"continuity": spec.continuity} if spec.continuity else {})}


def _siblings(spec: Spec, arm: Arm) -> list[Arm]:
    """The other arms that score the same supernet with the same weights (by another measure)."""
    return [a for a in spec.arms if a is not arm and a.source == arm.source and a.weights == arm.weights]


def _kept_scores(spec: Spec, arm: Arm, seed: int, out: Path) -> tuple[str, dict, dict | None] | None:
    """A sibling's record that kept ``arm``'s measure when it scored the same supernet: (its arm, the scores, the
    machine that computed them)."""
    for other in _siblings(spec, arm):
        p = record_path(out, seed, other.name)
        rec = read_gz_json(p) if p.exists() else {}
        kept = rec.get("other_measures", {}).get(arm.measure)
        if kept is not None:
            return other.name, kept, rec.get("machine")
    return None


def score(spec: Spec, arm: Arm, seed: int, work: Path, out: Path, data_dir: str, on_cell=None) -> dict:
    """Score ``arm``'s supernet at ``seed`` on every sample; write its record (and, the first time, the cells'
    file); the record. One pass gives every measure (:func:`~..ranking.cell_scores`): the record keeps the
    measures its sibling arms (the same supernet and weights, another measure) need, and a sibling scored later
    takes its scores from there instead of scoring again — the same numbers."""
    from ..ranking import cell_scores, use_weights
    from ..supernet import Nb201Arch

    d = run_dir(work, seed, arm.source)
    t0 = time.time()
    extra: dict = {}
    where = machine()
    if (kept := _kept_scores(spec, arm, seed, out)) is not None:
        extra["scored_with"], scores, where = kept
        for _ in range(cells_scored(spec)) if on_cell is not None else ():
            on_cell()
    else:
        search = load_run(d, data_dir)
        try:
            use_weights(search, arm.weights, RunDir(d).checkpoint)
            cells_file = out / "cells.json.gz"
            if not cells_file.exists():
                write_gz_json(cells_file, {name: sample_file(search, c) for name, c in samples(spec).items()})
            both = {name: cell_scores(search.task, [Nb201Arch.from_string(x) for x in cell_sample(c)[1]], c.batches,
                                      c.batch_size, on_cell) for name, c in samples(spec).items()}
        finally:
            search.runlog.close()
        scores = {name: by[arm.measure] for name, by in both.items()}
        wanted = {a.measure for a in _siblings(spec, arm)} - {arm.measure}
        if wanted:
            extra["other_measures"] = {m: {name: by[m] for name, by in both.items()} for m in sorted(wanted)}
    summary = RunDir(d).read_summary()
    rec = {"seed": seed, "arm": arm.name, "run": run_dir(Path(), seed, arm.source).as_posix(), "weights": arm.weights,
           **({"measure": arm.measure} if arm.measure != "accuracy" else {}),
           "train_seconds": round(sum(summary.get("seconds", {}).values()), 1),
           "score_seconds": round(time.time() - t0, 1), **({"machine": where} if where else {}), "scores": scores,
           **extra}
    write_gz_json(record_path(out, seed, arm.name), rec)
    return rec


def cells_scored(spec: Spec) -> int:
    """Cells scored per record (every sample)."""
    return sum(c.num for c in samples(spec).values())
