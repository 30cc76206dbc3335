"""``wpl rank --model_name RUN``: how well a NAS-Bench-201 run's supernet ranks cells against the truth.

A fixed, seeded, uniform sample of cells (or all 15,625) is scored with the run's supernet as its
last checkpoint left it — validation accuracy on the first ``batches`` validation batches, in eval
mode, with batch statistics or per-cell recalibrated BN (``--nb201_bn_recal``) — and compared with
NAS-Bench-201's CIFAR-10 test accuracies (:mod:`.rank`). Reference rows, on the same cells: each cell's
parameter count and multiply-accumulates in the run's network, and its jacob_cov score at initialisation
(no training: what a supernet must beat); the two published supernets' estimates, on the same cells and on
all cells. Writes ``rank.json`` and ``rank.png`` in the run.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wpl.data.nb201 import NUM_CELLS, all_archs, ground_truth, unique_cells
from wpl.errors import WplError
from wpl.fileio import finite, write_json
from wpl.nas.rank import MEASURES, rank_metrics, sample_cells
from wpl.plots import pyplot, save_figure
from wpl.rundir import RunDir
from wpl.runtime import model_mode

from .supernet import CellMemo, Nb201Arch

log = logging.getLogger("wpl")


def sample_benchmark_cells(num: int | None, seed: int, unique: bool = False) -> np.ndarray:
    """Canonical indices of a seeded uniform sample of NAS-Bench-201's cells (all when ``num`` is None), from
    all 15,625 or, ``unique``, from the 6,466 non-isomorphic ones (one per class)."""
    if not unique:
        return sample_cells(num, seed, NUM_CELLS)
    pool = unique_cells()
    return pool[sample_cells(num, seed, len(pool))]


def score_cells(task, archs: list[Nb201Arch], batches: int, batch_size: int, on_cell=None, chunk: int = 50,
                measure: str = "accuracy") -> list[float]:
    """Each cell's score with the task's supernet on the first ``batches`` validation batches of ``batch_size``, in
    ``archs``' order: its accuracy (%), or with ``measure="loss"`` its negated mean cross-entropy (higher is better
    either way). :func:`cell_scores` computes both."""
    if measure not in MEASURES:
        raise WplError(f"measure={measure!r}: must be one of {', '.join(MEASURES)}")
    return cell_scores(task, archs, batches, batch_size, on_cell, chunk)[measure]


@torch.no_grad()
def cell_scores(task, archs: list[Nb201Arch], batches: int, batch_size: int, on_cell=None,
                chunk: int = 50) -> dict[str, list[float]]:
    """Each cell's accuracy (%) and negated mean cross-entropy, by measure (:data:`MEASURES`), in ``archs``' order.

    Scored with batch statistics on one process (the usual case), the cells go in sorted order, ``chunk`` at a
    time, and every batch's stem output and first-cell parts are computed once for the cells that share them
    (:class:`~.supernet.CellMemo`): the same scores bit for bit as one cell at a time (:func:`score_each`), about
    half the work. With BN recalibration or data-parallel, one cell at a time. ``on_cell`` is called once per
    cell scored."""
    if task.bn_recal or task.dist.active:
        return score_each(task, archs, batches, batch_size, on_cell)
    order = sorted(range(len(archs)), key=lambda i: archs[i].ops)
    correct = torch.zeros(len(archs), dtype=torch.int64, device=task.device)
    loss = torch.zeros(len(archs), dtype=torch.float64, device=task.device)
    with model_mode(task.supernet, "eval"):
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            count = 0
            for x, y in task.eval_batches(task.valid_x, task.valid_y, 0, batches, batch_size):
                memo = CellMemo()
                for i in part:
                    logits = task.supernet(x, archs[i], memo)
                    correct[i] += (logits.argmax(1) == y).sum()
                    loss[i] += F.cross_entropy(logits, y, reduction="sum").double()
                count += len(y)
            for _ in part if on_cell is not None else ():
                on_cell()
    return {"accuracy": [100.0 * (c / count) for c in correct.tolist()],
            "loss": [-(v / count) if math.isfinite(v) else -math.inf for v in loss.tolist()]}


@torch.no_grad()
def score_each(task, archs: list[Nb201Arch], batches: int, batch_size: int,
               on_cell=None) -> dict[str, list[float]]:
    """:func:`cell_scores` one cell at a time, every cell's whole network on every batch."""
    out: dict[str, list[float]] = {"accuracy": [], "loss": []}
    for arch in archs:
        loss, acc = task.valid_stats(arch, batches, batch_size)
        out["accuracy"].append(100.0 * acc)
        out["loss"].append(-loss)
        if on_cell is not None:
            on_cell()
    return out


def use_weights(search, which: str, source: Path) -> None:
    """Score with the run's trained weights (``"last"``) or their moving average (``"ema"``, kept by a search run
    with ``--weight_ema``); a run without that average is one line naming the fix."""
    if which == "last":
        return
    if which != "ema":
        raise WplError(f"--weights={which}: must be last or ema")
    if search.weight_ema is None:
        raise WplError(f"{source}: the run kept no weight average; search with --weight_ema=DECAY (e.g. 0.9986) to "
                       "score one")
    with torch.no_grad():
        for name, p in search.supernet.named_parameters():
            p.copy_(search.weight_ema[name])


def rank_in_search(search) -> dict:
    """Ranking fidelity of ``search``'s supernet now: a fixed sample of ``rank_archs`` cells (seeded by the
    task's seed) scored on the first ``rank_batches`` validation batches of ``rank_batch_size``, against the
    truth."""
    cfg = search.task.config
    idx = sample_benchmark_cells(cfg.rank_archs, cfg.random_seed)
    archs = [Nb201Arch.from_string(all_archs()[i]) for i in idx]
    scores = score_cells(search.task, archs, cfg.rank_batches, cfg.rank_batch_size)
    return rank_metrics(scores, ground_truth().test_acc[idx])


def parameter_counts(supernet, archs: list[Nb201Arch]) -> list[int]:
    """Each cell's parameter count in the run's network: the supernet weights it uses (a score that needs
    no training, the baseline every supernet's ranking is read against)."""
    sizes = {n: p.numel() for n, p in supernet.named_parameters()}
    return [sum(sizes[n] for n in supernet.parameters_for(a)) for a in archs]


@torch.no_grad()
def mac_counts(supernet, archs: list[Nb201Arch], shape: tuple[int, int, int]) -> list[int]:
    """Each cell's multiply-accumulates in the run's network on one image of ``shape`` (C, H, W): its
    convolutions' and linear layers' (pooling and normalisation, a few percent at most, not counted)."""
    total = [0]

    def conv(m: torch.nn.Conv2d, args: tuple, out: torch.Tensor) -> None:
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m: torch.nn.Linear, args: tuple, out: torch.Tensor) -> None:
        total[0] += out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
             for m in supernet.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    x = torch.zeros(1, *shape, device=next(supernet.parameters()).device)
    out = []
    try:
        with model_mode(supernet, "eval"):
            for a in archs:
                total[0] = 0
                supernet(x, a)
                out.append(total[0])
    finally:
        for h in hooks:
            h.remove()
    return out


def jacob_cov(model, x: torch.Tensor, k: float = 1e-5) -> float:
    """Mellor et al.'s (ICML 2021) score of an untrained network on one batch ``x``: the input gradient of the
    summed outputs, one row per image; the eigenvalues λ of those rows' correlation matrix;
    −Σ (log(λ + k) + 1/(λ + k)). Higher: the network tells the images apart. A network whose output does
    not depend on its input (correlations undefined) scores −inf."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(model(x).sum(), [x], allow_unused=True)
    corr = None if g is None else torch.corrcoef(g.reshape(len(x), -1).double())
    if corr is None or not bool(torch.isfinite(corr).all()):
        return float("-inf")
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())


def jacob_cov_scores(task, archs: list[Nb201Arch], images: int = 64, seed: int = 0) -> list[float]:
    """:func:`jacob_cov` of each cell in a freshly initialised copy of the run's network (PyTorch's default
    initialisation, seeded), on the first ``images`` validation images."""
    from wpl.data.augment import normalise

    net = copy.deepcopy(task.supernet)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in net.modules():
            if m is not net and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    x = normalise(task.valid_x[:images], task.data.mean, task.data.std)
    with model_mode(net, "train"):
        return [jacob_cov(lambda t, a=a: net(t, a), x) for a in archs]


def rank_search(search, run_dir: Path, num_archs: int | None, seed: int, batches: int, batch_size: int = 250,
                output: Path | None = None, unique: bool = False, measure: str = "accuracy") -> dict:
    """Score the sample with ``search``'s supernet (each cell's validation accuracy, or its negated loss:
    ``measure``); write ``rank.json`` and ``rank.png`` (in the run, or ``output`` and the PNG beside it); the
    result."""
    task = search.task
    if task.kind != "nb201":
        raise WplError(f"{run_dir}: a --network_type={task.kind} run; ranking against the ground truth needs a "
                       "--network_type=nb201 search (NAS-Bench-201's cells)")
    if search.dataset != "cifar10":
        log.warning("the run searched on %s; the ground truth is CIFAR-10's, so the comparison is off-task",
                    search.dataset)
    idx = sample_benchmark_cells(num_archs, seed, unique)
    strings = [all_archs()[i] for i in idx]
    archs = [Nb201Arch.from_string(s) for s in strings]
    from wpl.progress import bar as progress_bar

    with progress_bar(total=len(archs), desc="rank", dynamic_ncols=True, leave=False) as bar:
        scores = score_cells(task, archs, batches, batch_size, lambda: bar.update(1), measure=measure)
    g = ground_truth()
    truth = g.test_acc[idx]
    metrics = rank_metrics(scores, truth)
    top1 = int(np.argmax(scores))
    metrics["top1_true_rank"] = g.true_rank(float(truth[top1]))
    metrics["top1_regret"] = round(94.37 - float(truth[top1]), 2)
    reference = {"parameter_count": {"same_cells": rank_metrics(parameter_counts(task.supernet, archs), truth)},
                 "flops": {"same_cells": rank_metrics(mac_counts(task.supernet, archs, task.data.shape), truth)},
                 "jacob_cov": {"same_cells": rank_metrics(jacob_cov_scores(task, archs), truth)}}
    for name, est in (("one_shot", g.one_shot), ("few_shot", g.few_shot)):
        reference[name] = {"same_cells": rank_metrics(est[idx], truth), "all_cells": rank_metrics(est, g.test_acc)}
    out = {**metrics, "seed": seed, "unique": unique, "batches": batches, "batch_size": batch_size, "score": measure,
           "bn_recal": task.bn_recal, "epoch": search.epoch, "top1_arch": strings[top1],
           "archs": [{"arch": s, "score": sc, "true_acc": float(t)} for s, sc, t in zip(strings, scores, truth,
                                                                                      strict=True)],
           "reference": reference}
    path = output or RunDir(run_dir).rank()
    write_json(path, finite(out))
    _scatter(scores, truth, path.with_suffix(".png"), metrics, measure)
    return out


def _scatter(scores: list[float], truth: np.ndarray, path: Path, m: dict, measure: str = "accuracy") -> Path:
    plt = pyplot()

    s = np.asarray(scores)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    k = max(1, int(round(0.1 * len(s))))
    top_true = np.argsort(-truth, kind="mergesort")[:k]
    ax.scatter(s, truth, s=10, alpha=0.6, color="tab:blue", label="cells")
    ax.scatter(s[top_true], truth[top_true], s=14, color="tab:orange", label="true top 10%")
    best = int(np.argmax(s))
    ax.scatter([s[best]], [truth[best]], s=60, marker="*", color="tab:red", label="supernet's top-1")
    ax.set_xlabel("supernet validation accuracy (%)" if measure == "accuracy"
                  else "supernet validation loss, negated (nats)")
    ax.set_ylabel("NAS-Bench-201 test accuracy (%)")
    ax.set_title(f"{m['num_archs']} cells: Kendall τ {m['kendall_tau']:.3f}, Spearman {m['spearman']:.3f}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)
