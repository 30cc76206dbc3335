"""``python main.py`` / ``wpl search``: parse the original flags, find or create the run folder,
resume when asked, build the task and run the search."""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from wpl.dist import SINGLE, Dist, joined
from wpl.errors import ConfigError, WplError
from wpl.fileio import ensure_writable_dir, remove_stale_temporaries, write_json
from wpl.rundir import SEARCH_OUTPUTS, RunDir
from wpl.runlock import run_lock
from wpl.runtime import resolve_device, seed_everything, set_deterministic
from wpl.signals import stop_on_signals

from .. import spaces
from ..config import RunConfig
from ..configs import Configs
from .flags import parse_search_args, setting_flags

log = logging.getLogger("wpl")


def setup_logging(level: str) -> None:
    """The original's log format, at ``--log_level``, on stderr."""
    logging.basicConfig(format="%(asctime)s:%(levelname)s::%(message)s", level=getattr(logging, level), force=True)
    logging.getLogger("wpl").setLevel(getattr(logging, level))


def run_dir_for(run: RunConfig) -> Path:
    """``log_dir/<model_name>``: from ``--load_path``, else ``<dataset>_<comment>``, else a timestamp."""
    if run.load_path:
        lp = Path(run.load_path)
        if lp.is_dir() or lp.parts[:1] == Path(run.log_dir).parts[:1]:
            return lp
        name = run.load_path if run.load_path.startswith(run.dataset) else f"{run.dataset}_{run.load_path}"
        return Path(run.log_dir) / name
    if run.comment:
        return Path(run.log_dir) / f"{run.dataset}_{run.comment}"
    return Path(run.log_dir) / f"{run.dataset}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def pick_device(run: RunConfig):
    """``--device`` wins; else ``--num_gpu=0`` forces CPU; else CUDA when available."""
    if run.device not in ("", "auto"):
        return resolve_device(run.device)
    return resolve_device("cpu" if run.num_gpu == 0 else "auto")


def saved_configs(state: dict) -> Configs:
    """The configs a checkpoint holds (``args``: the flat flags of checkpoints written before typed configs)."""
    return Configs.from_saved(state["configs"] if state.get("configs") is not None else state["args"])


def build_task(configs: Configs, device, dist: Dist = SINGLE):
    """Load the data of ``--dataset`` and build the task of ``--network_type`` on it (``dist``: this rank's
    shard of a data-parallel job)."""
    data_dir = None if configs.run.data_dir == "embedded" else configs.run.data_dir
    return spaces.get(configs.network_type).build_task(configs, data_dir, device, dist)


def build_search(configs: Configs, run_dir: Path | None, device, runlog=None, dist: Dist = SINGLE):
    """The task and :class:`~wpl.nas.search.loop.Search` of parsed (and, on resume, merged) configs."""
    from .loop import Search

    task = build_task(configs, device, dist)
    return Search(task, configs.search, configs.wpl, configs.controller, run_dir, configs=configs, runlog=runlog)


def run_search(argv: Sequence[str], prog: str = "wpl search") -> dict:
    """The whole command; returns the summary. A setting's bad value found after parsing (e.g. more
    forgetting batches than the data has) becomes a one-line error naming its flag."""
    try:
        return _run_search(argv, prog)
    except ConfigError as exc:
        raise WplError(exc.as_flag(flags=setting_flags())) from exc


def _run_search(argv: Sequence[str], prog: str) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configs = parse_search_args(argv, prog)
    run = configs.run
    setup_logging(run.log_level)
    for w in caught:
        log.warning("%s", w.message)
    run_dir = run_dir_for(run)
    ckpt = RunDir(run_dir).checkpoint
    resume = run.resume or bool(run.load_path)
    if run.mode != "train":
        return inspect_run(configs, run_dir, ckpt)
    state, source = None, ckpt
    if resume and ckpt.exists():
        from wpl.checkpoint import load_resumable

        read_stamp = _stamp(ckpt)  # checked again once this process holds the folder
        state, source = load_resumable(ckpt)  # a damaged newest checkpoint: the previous one, with a warning
        configs = configs.resumed(saved_configs(state))
        log.info("resuming %s at %s (to --max_epoch=%d)", run_dir, _where(state), configs.search.max_epoch)
    elif resume:
        log.warning("--resume=True but %s holds no checkpoint: starting a new run there", run_dir)
    elif ckpt.exists():
        raise WplError(f"{run_dir} already holds a run; pass --resume=True to continue it, or choose another "
                       "--comment / --log_dir")
    run = configs.run
    device = pick_device(run)
    set_deterministic(run.deterministic)
    if run.num_threads > 0:
        torch.set_num_threads(run.num_threads)
    if (check := spaces.get(run.network_type).check_run) is not None:
        check(configs, device)  # before anything is written
    with joined(device) as dist:  # under torchrun: the job (rank 0 writes, every rank trains its shard)
        if not dist.main:
            logging.getLogger("wpl").setLevel(logging.WARNING)  # one rank reports
            return _search_in(configs, run_dir, device, state, source, dist)
        ensure_writable_dir(run_dir, "log_dir")
        with run_lock(run_dir):
            if state is not None and _stamp(ckpt) != read_stamp:
                raise WplError(f"{ckpt}: another process wrote it while this one started; run the command again")
            return _search_in(configs, run_dir, device, state, source, dist)


def _where(state: dict) -> str:
    """Where a checkpoint stands: an epoch boundary, or a step inside a phase."""
    p = state.get("progress")
    if not p or p.get("phase") is None and not p.get("done"):
        return f"epoch {state['epoch']}"
    where = "the warm-up" if p["where"] == "warmup" else f"epoch {p['where']}"
    return f"{where}, {p['phase']} step {p['step']}" if p.get("phase") else f"{where}, after {', '.join(p['done'])}"


def _stamp(path: Path) -> tuple:
    """What changes when a file is replaced or rewritten."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _search_in(configs: Configs, run_dir: Path, device, state: dict | None, source: Path, dist: Dist = SINGLE) -> dict:
    """The search in ``run_dir`` (held by this process; rank 0 of ``dist`` writes it), fresh or from ``state``
    (read from ``source``)."""
    if dist.main:
        remove_stale_temporaries(run_dir)
    seed = configs.space.random_seed
    if state is None:
        seed_everything(seed)
    from wpl.runlog import NullRunLog, RunLog

    purge = None if state is None else state["shared_step"] + state["controller_step"]
    runlog = RunLog(run_dir, configs.run.use_tensorboard, purge_step=purge) if dist.main else NullRunLog()
    search = build_search(configs, run_dir, device, runlog, dist)
    if state is None and not dist.main:
        seed_everything(dist.seed(seed))  # the same weights, each rank its own dropout
    if state is None and dist.main:
        RunDir(run_dir).remove_stale(SEARCH_OUTPUTS)
    elif state is not None:
        search.load_state_dict(state, source, cut_logs=dist.main)
        if dist.main:
            RunDir(run_dir).summary.unlink(missing_ok=True)
    if dist.main:
        write_json(RunDir(run_dir).config, configs.flags())  # by flag name; the checkpoint holds the typed configs
    log.info("run folder %s on %s; %d supernet parameters, WPL from epoch %d", run_dir, device,
             sum(p.numel() for p in search.supernet.parameters()), configs.search.start_using_fisher)
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm(loggers=[log]), stop_on_signals(search):
            summary = search.run()
    finally:
        search.runlog.close()
    m = summary["metric"]
    log.info("done: best valid %s %s, test %s %s; outputs in %s", m, _fmt(summary["best_valid"]), m,
             _fmt(summary["test"]), run_dir)
    return summary


def load_search(configs: Configs, run_dir: Path, ckpt: Path):
    """The run's search as its checkpoint left it (its saved configs, this command's run flags), logs untouched."""
    from wpl.checkpoint import load_checkpoint

    state = load_checkpoint(ckpt)
    configs = configs.resumed(saved_configs(state))
    search = build_search(configs, run_dir, pick_device(configs.run))  # plain-file logs only
    search.load_state_dict(state, ckpt, cut_logs=False)
    search.progress = None  # inspecting a run neither continues its epoch nor writes its checkpoint
    return search


def inspect_run(configs: Configs, run_dir: Path, ckpt: Path) -> dict:
    """``--mode=derive``: derive a cell from a run's latest checkpoint (``networks/derived.*``);
    ``--mode=test``: score the run's best derived cell on the test split (``test.json``)."""

    mode, arch_spec = configs.run.mode, configs.run.arch
    final = RunDir(run_dir).final.summary
    if mode == "test" and final.is_file() and not arch_spec:
        out = json.loads(final.read_text())
        log.info("test %s of the final model (the best derived cell trained from scratch, %d parameters, best "
                 "epoch %d of %d): %s; from %s", out["metric"], out["params"], out["best_epoch"], out["epochs_done"],
                 _fmt(out["test"]), final)
        return {**out, "model": "final"}
    if not ckpt.exists():
        raise WplError(f"--mode={mode} reads a run's checkpoint, and {ckpt} does not exist; name the run "
                       "with --load_path=<run folder> (or the --comment/--dataset it was started with)")
    search = load_search(configs, run_dir, ckpt)
    task, m = search.task, search.metric
    try:
        if mode == "derive":
            rec = search.derive(search.epoch - 1, name="derived")
            log.info("derived from %s (after epoch %d): valid %s %s; networks/derived.{json,dot,png}", ckpt,
                     search.epoch - 1, m, _fmt(rec["valid"]))
            return rec
        if arch_spec:
            return _test_named(arch_spec, search, run_dir)
        if search.best is None:
            raise WplError(f"{ckpt}: the run has no derived architecture yet (derive runs every --save_epoch); "
                           "run --mode=derive first")
        arch = task.arch_from_json(search.best["arch"])
        test = task.evaluate(arch, "test")
        out = {"arch": arch.to_dict(), "epoch": search.best["epoch"], "metric": m, "valid": search.best["valid"],
               "test": test[m], **{f"test_{k}": v for k, v in test.items()}}
        write_json(RunDir(run_dir).test(), out)
        log.info("test %s of the best derived cell (epoch %d) with the supernet's weights (no final model yet: "
                 "wpl train-final --model_name=%s): %s; written to %s", m, out["epoch"], run_dir.name,
                 _fmt(test[m]), RunDir(run_dir).test())
        return {**out, "model": "supernet"}
    finally:
        search.runlog.close()


def _test_named(spec: str, search, run_dir: Path) -> dict:
    """``--mode=test --arch=...``: a given cell scored with the run's supernet weights (``test_<name>.json``)."""
    from ..presets import resolve_arch

    task, m = search.task, search.metric
    arch, name = resolve_arch(spec, task.kind, task.config.num_blocks)
    if spaces.of_arch(arch).kind != task.kind:
        raise WplError(f"--arch={spec}: a {type(arch).__name__} cell, but {run_dir} searched "
                       f"--network_type={task.kind}")
    try:
        task.protected_names(arch)  # the Task protocol's: a cell the supernet lacks weights for fails here
        valid, test = task.evaluate(arch, "valid"), task.evaluate(arch, "test")
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise WplError(f"--arch={spec}: this run's supernet cannot run that cell ({exc}); it needs the same "
                       "--num_blocks and ops") from exc
    out = {"arch": arch.to_dict(), "name": name, "metric": m, "valid": valid[m], "test": test[m], "model": "supernet",
           **{f"test_{k}": v for k, v in test.items()}}
    write_json(RunDir(run_dir).test(name), out)
    log.info("%s with the supernet's weights of %s: valid %s %s, test %s %s; written to %s", name, run_dir.name, m,
             _fmt(valid[m]), m, _fmt(test[m]), RunDir(run_dir).test(name))
    return out


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"
