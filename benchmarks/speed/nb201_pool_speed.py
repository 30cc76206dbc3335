"""NAS-Bench-201's 3×3 average pool: PyTorch's ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` against wpl's
``AvgPool3x3`` (separable sums), in the two places it costs: a shared training step (batch 64) and scoring cells for
a ranking (eval, batches of 250). Variants interleaved in one process, same cells and data; one JSON line.

Usage: python -m benchmarks.speed.nb201_pool_speed [--channels 8] [--cells 1] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
import torch.nn.functional as F

from wpl.data.nb201 import OPS, all_archs
from wpl.nas.spaces.nb201.supernet import AvgPool3x3, Nb201Arch, SharedNB201


def swap_pools(net: torch.nn.Module, make) -> None:
    """Replace every 3×3 average pool of ``net``'s cells by ``make()``."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, AvgPool3x3 | torch.nn.AvgPool2d) and name.endswith("avg_pool_3x3"):
                setattr(module, name, make())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    net = SharedNB201(3, 10, args.channels, args.cells, list(OPS))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    archs = [Nb201Arch.from_string(a) for a in random.Random(0).sample(all_archs(), 60)]
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    xs = torch.randn(1000, 3, 32, 32)
    variants = {"torch": lambda: torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False), "wpl": AvgPool3x3}

    def train() -> float:
        t = time.perf_counter()
        for a in archs:
            loss = F.cross_entropy(net(x, a), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t) / len(archs) * 1e3

    @torch.no_grad()
    def score() -> float:
        net.eval()
        t = time.perf_counter()
        for a in archs[:20]:
            for i in range(0, 1000, 250):
                net(xs[i:i + 250], a)
        net.train()
        return (time.perf_counter() - t) / 20 * 1e3

    times: dict[str, dict[str, list[float]]] = {v: {"train_ms": [], "score_ms": []} for v in variants}
    for rep in range(args.reps + 1):  # the first round warms up
        for v, make in variants.items():
            swap_pools(net, make)
            tr, sc = train(), score()
            if rep:
                times[v]["train_ms"].append(tr)
                times[v]["score_ms"].append(sc)
    med = {v: {k: statistics.median(x) for k, x in t.items()} for v, t in times.items()}
    print(json.dumps({"channels": args.channels, "cells": args.cells, "threads": torch.get_num_threads(),
                      "median_ms": med,
                      "train_step_ratio": med["torch"]["train_ms"] / med["wpl"]["train_ms"],
                      "score_cell_ratio": med["torch"]["score_ms"] / med["wpl"]["score_ms"]}))


if __name__ == "__main__":
    main()
