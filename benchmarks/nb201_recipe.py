"""A bare single-path NAS-Bench-201 supernet, outside the search loop: how well does it rank cells?

Trains ``SharedNB201`` (C = 8 by default) with uniform single-path sampling on real CIFAR-10 for a
fixed number of steps (Nesterov SGD, cosine learning rate to zero, weight decay 5e-4, gradient clip
5), then scores 200 fixed cells (seed 0) on the first 512 validation images with batch-statistics BN
and prints Kendall τ and Spearman ρ against the ground truth, and what the supernet prefers: the
Spearman ρ of each op's count in a cell with the supernet's score and with the truth. Used to choose
the recipe of ``nb201_compare.sh`` (BENCHMARKS.md, "NAS-Bench-201 ranking").

Usage: python benchmarks/nb201_recipe.py --data_dir ~/data [--steps 4500] [--lr 0.05] [--momentum 0.9]
       [--batch_size 64] [--cells 1] [--channels 8] [--affine] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import wpl.nas.nb201 as nb
from wpl.data.augment import augment, normalise
from wpl.data.images import load_cifar10
from wpl.data.nb201 import NUM_CELLS, OPS, all_archs, ground_truth
from wpl.nas.rank import kendall_tau, sample_cells, spearman


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True, help="holds cifar10/")
    ap.add_argument("--steps", type=int, default=4500)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--affine", action="store_true", help="batch norms with a learned scale and shift")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.affine:
        nb.SupernetBN = lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=False)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    d = load_cifar10(Path(a.data_dir).expanduser() / "cifar10", 5000, 0)
    model = nb.SharedNB201(3, 10, a.channels, a.cells)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.momentum > 0,
                          weight_decay=5e-4)
    gen = torch.Generator().manual_seed(a.seed)
    strings = all_archs()
    idx = sample_cells(200, 0, NUM_CELLS)
    cells = [nb.Nb201Arch.from_string(strings[i]) for i in idx]
    truth = ground_truth().test_acc[idx]
    vx, vy = normalise(d.valid_x[:512], d.mean, d.std), d.valid_y[:512]
    t0 = time.time()
    order, pos = torch.randperm(len(d.train_x), generator=gen), 0
    for step in range(a.steps):
        for group in opt.param_groups:
            group["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        if pos + a.batch_size > len(order):
            order, pos = torch.randperm(len(d.train_x), generator=gen), 0
        ix = order[pos:pos + a.batch_size]
        pos += a.batch_size
        x, y = augment(d.train_x[ix], d.mean, d.std, gen), d.train_y[ix]
        arch = nb.Nb201Arch.from_string(random.choice(strings))
        loss = F.cross_entropy(model(x, arch), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
        opt.step()
    train_s = time.time() - t0
    model.eval()
    with torch.no_grad():
        scores = np.array([sum(int((model(vx[b:b + 256], c).argmax(1) == vy[b:b + 256]).sum()) for b in (0, 256))
                           / 512 for c in cells])
    prefers = {op: [round(spearman([c.ops.count(op) for c in cells], v), 3) for v in (scores, truth)] for op in OPS}
    print(json.dumps({"args": vars(a), "images": a.steps * a.batch_size, "train_s": round(train_s, 1),
                      "kendall_tau": round(kendall_tau(scores, truth), 3),
                      "spearman": round(spearman(scores, truth), 3),
                      "best_score": float(scores.max()), "op_rho_score_truth": prefers}))


if __name__ == "__main__":
    main()
