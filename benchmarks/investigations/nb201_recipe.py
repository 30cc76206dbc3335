"""A bare single-path NAS-Bench-201 supernet, outside the search loop: how well does it rank cells?

Trains ``SharedNB201`` (C = 8, N = 1 by default) with uniform single-path sampling on real CIFAR-10 for
a fixed number of steps, then scores 200 fixed cells (``wpl rank``'s seed-0 sample) with batch-statistics
BN and reports Kendall τ and Spearman ρ against the ground truth under several scoring rules, τ within
the true top 10%, the parameter count's τ on the same cells, and what the supernet prefers: the Spearman ρ
of each op's count in a cell with the supernet's score and with the truth.

Every factor the issue #24 bisection varies is a flag; the defaults are the recipe that ranks (BENCHMARKS.md,
"NAS-Bench-201: why the supernet ranked backwards"). ``run(args)`` returns the result as a dict
(``benchmarks/investigations/nb201_bisect.py`` calls it once per row and seed).

Usage: python -m benchmarks.investigations.nb201_recipe --data_dir ~/data [--steps 4400] [--seed 0] [factor flags]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import wpl.nas.spaces.nb201.supernet as nb
from wpl.data.augment import augment, normalise
from wpl.data.images import load_cifar10
from wpl.data.nb201 import OPS, all_archs, ground_truth
from wpl.nas.rank import kendall_tau, spearman, tau_top
from wpl.nas.spaces.nb201.ranking import parameter_counts, sample_benchmark_cells

SCORINGS = {"1000x250": (1000, 250), "512x256": (512, 256), "256x64": (256, 64)}


def parser() -> argparse.ArgumentParser:
    """The flags: the data, the budget, and one flag per bisected factor."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True, help="holds cifar10/")
    ap.add_argument("--steps", type=int, default=4400, help="training batches")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9, help="Nesterov when > 0")
    ap.add_argument("--wd", type=float, default=5e-4, help="weight decay")
    ap.add_argument("--clip", type=float, default=5.0, help="gradient norm clip")
    ap.add_argument("--lr_schedule", choices=("constant", "cosine", "exp"), default="constant",
                    help="exp: ×0.6 per sixth of the steps (the search's per-epoch decay over 6 epochs)")
    ap.add_argument("--outer_affine", type=int, choices=(0, 1), default=0,
                    help="1: the stem's, reduction blocks' and head's BN learn a scale and shift")
    ap.add_argument("--init", choices=nb.INITS, default="default", help="conv initialisation")
    ap.add_argument("--batches", choices=("replace", "epoch"), default="replace",
                    help="replace: each batch drawn uniformly with replacement; epoch: passes over a permutation")
    ap.add_argument("--aug", choices=("batch", "image"), default="batch",
                    help="one crop offset and flip for the whole batch, or one per image")
    ap.add_argument("--per_arch", type=int, default=1, help="consecutive batches per sampled cell")
    ap.add_argument("--score", choices=sorted(SCORINGS), default="1000x250",
                    help="validation images × batch size of the headline score (all are reported)")
    return ap


def _batch_aug(x: torch.Tensor, mean, std, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """One crop offset and one flip for the whole batch."""
    out = normalise(x, mean, std)
    if torch.rand((), generator=gen) < 0.5:
        out = out.flip(3)
    padded = F.pad(out, (pad, pad, pad, pad))
    i, j = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    return padded[:, :, i:i + x.shape[2], j:j + x.shape[3]]


def _lr(a: argparse.Namespace, step: int) -> float:
    if a.lr_schedule == "cosine":
        return a.lr * 0.5 * (1 + np.cos(np.pi * step / a.steps))
    if a.lr_schedule == "exp":
        return a.lr * 0.6 ** (step * 6 // a.steps)
    return a.lr


def run(a: argparse.Namespace) -> dict:
    """Train one supernet by ``a`` and score the 200 cells; the result as plain data."""
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    d = load_cifar10(Path(a.data_dir).expanduser() / "cifar10", 5000, 0)
    model = nb.SharedNB201(3, 10, a.channels, a.cells, outer_affine=bool(a.outer_affine), init=a.init)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.momentum > 0,
                          weight_decay=a.wd)
    gen = torch.Generator().manual_seed(a.seed)
    strings = all_archs()
    idx = sample_benchmark_cells(200, 0)
    cells = [nb.Nb201Arch.from_string(strings[i]) for i in idx]
    truth = ground_truth().test_acc[idx]
    n = len(d.train_x)
    t0 = time.time()
    order, pos = torch.randperm(n, generator=gen), 0
    arch = None
    for step in range(a.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(a, step)
        if a.batches == "replace":
            ix = torch.randint(0, n, (a.batch_size,), generator=gen)
        else:
            if pos + a.batch_size > n:
                order, pos = torch.randperm(n, generator=gen), 0
            ix, pos = order[pos:pos + a.batch_size], pos + a.batch_size
        x = (_batch_aug if a.aug == "batch" else augment)(d.train_x[ix], d.mean, d.std, gen)
        if step % a.per_arch == 0:
            arch = nb.Nb201Arch.from_string(random.choice(strings))
        loss = F.cross_entropy(model(x, arch), d.train_y[ix])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
    train_s = time.time() - t0
    model.eval()
    vx, vy = normalise(d.valid_x[:1000], d.mean, d.std), d.valid_y[:1000]
    scores = {}
    with torch.no_grad():
        for name, (num, bs) in SCORINGS.items():
            scores[name] = np.array([sum(int((model(vx[b:b + bs], c).argmax(1) == vy[b:b + bs]).sum())
                                         for b in range(0, num, bs)) / num for c in cells])
    head = scores[a.score]
    params = parameter_counts(model, cells)
    prefers = {op: [round(spearman([c.ops.count(op) for c in cells], v), 3) for v in (head, truth)] for op in OPS}
    return {"args": {k: v for k, v in vars(a).items() if k != "data_dir"}, "images": a.steps * a.batch_size,
            "train_s": round(train_s, 1), "kendall_tau": round(kendall_tau(head, truth), 3),
            "spearman": round(spearman(head, truth), 3), "tau_top10": round(tau_top(head, truth), 3),
            "top1_true_acc": float(truth[int(np.argmax(head))]), "mean_score": round(float(head.mean()), 4),
            "tau_by_scoring": {k: round(kendall_tau(v, truth), 3) for k, v in scores.items()},
            "param_count_tau": round(kendall_tau(params, truth), 3), "op_rho_score_truth": prefers}


def main() -> None:
    print(json.dumps(run(parser().parse_args())))


if __name__ == "__main__":
    main()
