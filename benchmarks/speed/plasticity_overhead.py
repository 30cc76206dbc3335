"""Cost of WPL in a training step: time with / time without, for ~10M-parameter models, in one run.

Usage: python -m benchmarks.speed.plasticity_overhead [--steps 30] [--threads 2]

Three step variants run interleaved (plain, then WPL through autograd ``penalty()``, then WPL as
the closed-form gradient ``add_penalty_grad_``) so machine noise hits them alike; the ratio of
medians is reported. WPL covers *every* parameter, the worst case (in NAS only the active shared
subset is penalised). Models: an LSTM language model (PTB-like: vocab 10k, 2×512, batch 32×35)
and an MLP (3×2048 on 1024 inputs, batch 256), the latter being the least compute per weight.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from wpl import WeightPlasticity


class LSTMLM(nn.Module):
    def __init__(self, vocab: int = 10000, hid: int = 512) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hid)
        self.rnn = nn.LSTM(hid, hid, num_layers=2)
        self.dec = nn.Linear(hid, vocab)
        self.dec.weight = self.emb.weight

    def forward(self, x):
        out, _ = self.rnn(self.emb(x))
        return self.dec(out).flatten(0, 1)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                         nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))


def make_case(name: str):
    g = torch.Generator().manual_seed(0)
    if name == "lstm-lm":
        model = LSTMLM()
        x = torch.randint(0, 10000, (35, 32), generator=g)
        y = torch.randint(0, 10000, (35 * 32,), generator=g)
    else:
        model = mlp()
        x = torch.randn(256, 1024, generator=g)
        y = torch.randint(0, 10, (256,), generator=g)
    return model, x, y


def bench(name: str, steps: int) -> dict:
    torch.manual_seed(0)
    model, x, y = make_case(name)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    wpl = WeightPlasticity(model, alpha=60.0)
    for f in wpl.fisher.values():
        f.uniform_(0, 1e-3)

    def plain():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def autograd():
        opt.zero_grad(set_to_none=True)
        (F.cross_entropy(model(x), y) + wpl.penalty()).backward()
        opt.step()

    def closed_form():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        wpl.add_penalty_grad_()
        opt.step()

    variants = {"plain": plain, "penalty()": autograd, "add_penalty_grad_()": closed_form}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(3):
        for fn in variants.values():
            fn()
    for _ in range(steps):
        for k, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "params": params, "ms": {k: 1000 * v for k, v in med.items()},
            "ratio": {k: med[k] / med["plain"] for k in variants if k != "plain"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.steps} interleaved steps per variant")
    print("| model | params | plain step (ms) | + penalty() | + add_penalty_grad_() |")
    print("|---|---|---|---|---|")
    for name in ("lstm-lm", "mlp"):
        r = bench(name, args.steps)
        ms, ratio = r["ms"], r["ratio"]
        print(f"| {name} | {r['params'] / 1e6:.1f}M | {ms['plain']:.1f} | "
              f"{ms['penalty()']:.1f} (×{ratio['penalty()']:.3f}) | "
              f"{ms['add_penalty_grad_()']:.1f} (×{ratio['add_penalty_grad_()']:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
