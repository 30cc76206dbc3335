"""Speed of the RNN search: shared-phase batches/s with and without WPL, controller steps/s, and the
step time as a multiple of the bare matrix products one shared step must do (the floor).

Usage: python benchmarks/search_step.py --data_dir ../shared/data [--steps 20] [--hid 200]
Variants are interleaved in one run (these machines are noisy); medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from wpl.config import parse_search_args
from wpl.data.text import load_corpus
from wpl.nas.lm_task import LanguageModelTask
from wpl.nas.search import Search


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def floor_fn(T: int, N: int, E: int, H: int, V: int, B: int):
    """Bare matmuls of one shared batch (decoder and cell, forward and backward), outputs preallocated."""
    x = torch.randn(T * N, E)
    wx = torch.randn(E, 2 * H)
    h = torch.randn(N, H)
    w = torch.randn(H, 2 * H)
    out = torch.randn(T * N, H)
    dec = torch.randn(H, V)
    g_logits = torch.randn(T * N, V)
    g2 = torch.randn(N, 2 * H)
    g_x = torch.randn(T * N, 2 * H)
    logits, g_out, g_dec = torch.empty(T * N, V), torch.empty(T * N, H), torch.empty(H, V)

    def run() -> None:
        torch.mm(out, dec, out=logits)  # decoder forward
        torch.mm(g_logits, dec.t(), out=g_out)  # decoder backward: input grad
        torch.mm(out.t(), g_logits, out=g_dec)  # decoder backward: weight grad
        x @ wx
        x.t() @ g_x
        for _ in range(T * B):  # one [N,H]x[H,2H] product per node per time step (node 0's recurrent one too)
            h @ w
            g2 @ w.t()
            h.t() @ g2

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--steps", type=int, default=20, help="timed shared batches per variant")
    ap.add_argument("--hid", type=int, default=200)
    ap.add_argument("--num_blocks", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(2)
    args = parse_search_args([f"--shared_embed={a.hid}", f"--shared_hid={a.hid}", f"--num_blocks={a.num_blocks}",
                              "--log_level=WARNING", "--num_gpu=0", "--nb_batch_reward_controller=1"])
    corpus = load_corpus(a.data_dir, "ptb")
    torch.manual_seed(0)
    task = LanguageModelTask(corpus, args, torch.device("cpu"))
    search = Search(args, task, run_dir=None)
    for f in search.wpl.fisher.values():
        f.uniform_(0, 1e-3)
    opt = search.shared_opt
    arch = search.sample_archs(1)[0]
    protect = task.protected_names(arch)

    def shared_batch(wpl: bool) -> None:
        total, _ = task.train_loss(arch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if wpl:
            search.wpl.add_penalty_grad_(protect, with_value=True)
        torch.nn.utils.clip_grad_norm_([p for p in task.supernet.parameters() if p.grad is not None], 0.25)
        opt.step()

    def controller_step() -> None:
        actions, logp, ent = search.controller.sample(1)
        r = task.reward(task.decode(actions[0].tolist()))[0]
        task.advance_valid(1)
        loss = -(logp.sum() * (r - 0.05))
        search.ctrl_opt.zero_grad()
        loss.backward()
        search.ctrl_opt.step()

    def fisher_update() -> None:
        model_fn, batches, loss_fn = task.fisher_batch(arch)
        search.wpl.estimate_fisher(model_fn, batches, names=protect, estimator="batch_sq",
                                    loss_fn=loss_fn, mode="keep")
        search.wpl.update_anchors(protect)

    for _ in range(2):
        shared_batch(False)
        shared_batch(True)
    floor = floor_fn(args.shared_rnn_max_length, args.batch_size, a.hid, a.hid, corpus.vocab_size, a.num_blocks)
    floor()
    times = {"plain": [], "wpl": [], "controller": [], "fisher": [], "floor": []}
    variants = {"floor": floor, "plain": lambda: shared_batch(False), "wpl": lambda: shared_batch(True),
                "controller": controller_step, "fisher": fisher_update}
    order = list(variants)
    for i in range(a.steps):  # rotate the order: whatever runs first after another variant pays its cache misses
        for name in order[i % len(order):] + order[:i % len(order)]:
            times[name].append(_time(variants[name]))
    med = {k: statistics.median(v) for k, v in times.items()}
    npb = args.num_batch_per_iter
    step_wpl = npb * med["wpl"] + med["fisher"]
    print(f"PTB, embed = hid = {a.hid}, B = {a.num_blocks}, batch {args.batch_size}, "
          f"BPTT {args.shared_rnn_max_length}, 2 threads, medians of {a.steps}")
    print("| measure | value |\n|---|---|")
    print(f"| shared batch, plain | {med['plain'] * 1e3:.0f} ms ({1 / med['plain']:.2f} batches/s) |")
    ratio = med["wpl"] / med["plain"]
    print(f"| shared batch, with WPL (closed-form grad) | {med['wpl'] * 1e3:.0f} ms (×{ratio:.3f}) |")
    print(f"| Fisher update + anchors (one validation batch) | {med['fisher'] * 1e3:.0f} ms |")
    print(f"| shared step with WPL ({npb} batches + Fisher) vs plain | ×{step_wpl / (npb * med['plain']):.3f} |")
    print(f"| controller step (1 sample, 1 reward batch) | {med['controller'] * 1e3:.0f} ms "
          f"({1 / med['controller']:.2f} steps/s) |")
    print(f"| matmul floor of one shared batch | {med['floor'] * 1e3:.0f} ms |")
    print(f"| shared batch / floor | ×{med['plain'] / med['floor']:.2f} |")


if __name__ == "__main__":
    main()
