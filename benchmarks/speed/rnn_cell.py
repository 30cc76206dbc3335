"""A/B of the RNN cell's implementations in one process: a shared batch (forward + backward) and an
evaluation forward of the supernet at the benchmark's sizes, on random tokens.

Variants: ``reference`` (plain autograd), ``python`` (hand-written BPTT in torch ops), ``cpp`` (the
C++ loop) with the decoder's softmax cross-entropy in torch ops (``cpp, torch CE``) and in C++
(``cpp``, the default). Interleaved, order rotated per round, 4 architectures in turn; medians.

Usage: python -m benchmarks.speed.rnn_cell [--rounds 12] [--hid 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from wpl.nas.spaces.rnn import cpp_ops, linear_ce
from wpl.nas.spaces.rnn.supernet import ACTIVATIONS, RnnArch, SharedRNN


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--hid", type=int, default=200)
    ap.add_argument("--num_blocks", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(2)
    if cpp_ops.load() is None:
        raise SystemExit(f"the C++ kernels are unavailable here: {cpp_ops.STATUS.get('reason')}")
    torch.manual_seed(0)
    rng = random.Random(1)
    acts, b = list(ACTIVATIONS), a.num_blocks
    model = SharedRNN(10000, a.hid, a.hid, b).train()
    archs = [RnnArch(tuple(rng.choice(acts) for _ in range(b)), tuple(rng.randrange(j) for j in range(1, b)))
             for _ in range(4)]
    x, y = torch.randint(0, 10000, (35, 64)), torch.randint(0, 10000, (35, 64))
    h = torch.zeros(64, a.hid)
    cpp_ce = linear_ce.applies

    def setup(variant: str) -> None:
        model.cell_impl = "cpp" if variant.startswith("cpp") else variant
        linear_ce.applies = (lambda *t: False) if variant == "cpp, torch CE" else cpp_ce

    def step(variant: str, arch: RnnArch) -> None:
        setup(variant)
        model.zero_grad(set_to_none=True)
        model.loss(x, y, h, arch)[0].backward()

    @torch.no_grad()
    def forward(variant: str, arch: RnnArch) -> None:
        setup(variant)
        model.eval()
        model.loss(x, y, h, arch)
        model.train()

    variants = ["reference", "python", "cpp, torch CE", "cpp"]
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(-1, a.rounds):
        arch = archs[r % len(archs)]
        for v in variants[r % 4:] + variants[:r % 4]:
            for kind, fn in (("shared batch", step), ("eval forward", forward)):
                t0 = time.perf_counter()
                fn(v, arch)
                if r >= 0:  # round -1 warms up
                    times.setdefault((kind, v), []).append(time.perf_counter() - t0)
    linear_ce.applies = cpp_ce
    print(f"embed = hid = {a.hid}, B = {b}, batch 64, BPTT 35, vocabulary 10000, 2 threads, medians of {a.rounds}")
    print("| variant | shared batch | eval forward |\n|---|---|---|")
    for v in variants:
        print(f"| {v} | {statistics.median(times[('shared batch', v)]) * 1e3:.0f} ms | "
              f"{statistics.median(times[('eval forward', v)]) * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
