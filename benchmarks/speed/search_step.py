"""Speed of the search's step-level methods — a shared batch with and without WPL, the Fisher
step, the controller step (``Search.shared_batch``, ``fisher_step``, ``controller_step``) — and

- RNN space (real PTB): the step time as a multiple of the bare matrix products one shared batch
  must do (the floor);
- CNN space (real CIFAR-10): images/s and the data path's (indexing + augmentation) share;
- NAS-Bench-201 space (real CIFAR-10, the benchmark's own size C = 16, N = 5 unless --flags say otherwise):
  images/s.

Usage: python -m benchmarks.speed.search_step --space rnn --data_dir ../shared/data [--steps 20] [--hid 200] [--archs 4]
       python -m benchmarks.speed.search_step --space cnn --data_dir ~/data   (holding cifar10/)
       python -m benchmarks.speed.search_step --space nb201 --data_dir ~/data --device cuda --threads 16 --json out.json
Variants are interleaved in one run, their order rotated each round (these machines are noisy, and
whatever runs first after another variant pays its cache misses); medians are reported, and the
run ends with one JSON line (space, shared_over_floor or images_per_s, wpl_overhead, wpl_options,
controller_steps_per_s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from wpl.nas.search.flags import parse_search_args
from wpl.nas.search.run import build_search

DEVICE = torch.device("cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _time(fn: Callable[[], object]) -> float:
    """Seconds one call takes (the device synchronised before each clock read)."""
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def floor_fn(T: int, N: int, E: int, H: int, V: int, B: int) -> Callable[[], None]:
    """Bare matmuls of one RNN shared batch (decoder and cell, forward and backward), outputs preallocated."""
    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=DEVICE)

    x, wx, h, w, out, dec = r(T * N, E), r(E, 2 * H), r(N, H), r(H, 2 * H), r(T * N, H), r(H, V)
    g_logits, g2, g_x = r(T * N, V), r(N, 2 * H), r(T * N, 2 * H)
    logits, g_out, g_dec = r(T * N, V), r(T * N, H), r(H, V)

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


def measure(argv: list[str], steps: int, extra: Callable[[object], dict[str, Callable]] | None = None,
            num_archs: int = 4):
    """Build the search from ``argv``; time its step-level methods (plus ``extra(task)``) interleaved.

    Round ``i`` uses the ``i % num_archs``-th of ``num_archs`` sampled architectures for every variant
    (one architecture's cost is not a run's: a CNN cell full of pools costs less than one of convs)."""
    args = parse_search_args(argv)
    torch.manual_seed(0)
    search = build_search(args, run_dir=None, device=DEVICE)
    task = search.task
    for f in search.wpl.fisher.values():
        f.uniform_(0, 1e-3)
    archs = search.sample_archs(num_archs)
    protects = [task.protected_names(a) for a in archs]
    cur = [0]
    task.supernet.train()

    def arch():
        return archs[cur[0]]

    def protect():
        return protects[cur[0]]

    variants = {"plain": lambda: search.shared_batch(arch(), protect(), wpl=False),
                "wpl": lambda: search.shared_batch(arch(), protect(), wpl=True),
                "wpl_fold": lambda: search.shared_batch(arch(), protect(), wpl=True, fold_fisher=True),
                "anchors": lambda: search.wpl.update_anchors(protect()),
                "controller": search.controller_step, "fisher": lambda: search.fisher_step(arch()),
                **(extra(task) if extra else {})}
    for cur[0] in range(num_archs):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for i in range(steps):
        cur[0] = i % num_archs
        for name in order[i % len(order):] + order[:i % len(order)]:
            times[name].append(_time(variants[name]))
    med = {k: statistics.median(v) for k, v in times.items()}
    q = statistics.quantiles(times["plain"], n=4)
    med["plain_iqr"] = q[2] - q[0]
    return med, args, task


def wpl_options(med: dict[str, float], npb: int) -> dict[str, float]:
    """Shared step with WPL over a plain one, per --fisher_source: ``valid`` (the default: one validation
    batch after the step) and ``train`` (the step's last training-batch gradient is folded)."""
    plain = npb * med["plain"]
    return {"valid": (npb * med["wpl"] + med["fisher"]) / plain,
            "train": ((npb - 1) * med["wpl"] + med["wpl_fold"] + med["anchors"]) / plain}


JSON_OUT: str = ""  # --json: also append the line to this file


def json_line(space: str, med: dict[str, float], npb: int, **extra: float) -> str:
    """The benchmark's one machine-readable line (appended to ``--json``'s file too)."""
    opts = wpl_options(med, npb)
    line = json.dumps({"space": space, "device": str(DEVICE), "threads": torch.get_num_threads(), **extra,
                       "wpl_overhead": round(opts["valid"], 4),
                       "controller_steps_per_s": round(1 / med["controller"], 3),
                       "wpl_options": {k: round(v, 4) for k, v in opts.items()},
                       "plain_batch_ms": round(med["plain"] * 1e3, 1),
                       "plain_batch_iqr_ms": round(med["plain_iqr"] * 1e3, 1)})
    if JSON_OUT:
        with open(JSON_OUT, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return line


def _common_rows(med: dict[str, float], npb: int, unit: str, per_batch: int) -> None:
    opts = wpl_options(med, npb)
    print("| measure | value |\n|---|---|")
    print(f"| shared batch, plain | {med['plain'] * 1e3:.0f} ms ({per_batch / med['plain']:.1f} {unit}/s) |")
    print(f"| shared batch, with WPL (closed-form grad) | {med['wpl'] * 1e3:.0f} ms "
          f"(×{med['wpl'] / med['plain']:.3f}) |")
    print(f"| Fisher update + anchors (one validation batch) | {med['fisher'] * 1e3:.0f} ms |")
    print(f"| shared step with WPL ({npb} batches + Fisher) vs plain | ×{opts['valid']:.3f} |")
    print(f"| the same with --fisher_source=train (last training batch folded, anchors) | ×{opts['train']:.3f} |")
    print(f"| controller step (1 sample, reward batches as configured) | {med['controller'] * 1e3:.0f} ms "
          f"({1 / med['controller']:.2f} steps/s) |")


def bench_rnn(data_dir: str, steps: int, hid: int, num_blocks: int, flags: list[str], num_archs: int) -> None:
    """RNN space on PTB at embed = hid = ``hid``."""
    argv = [f"--shared_embed={hid}", f"--shared_hid={hid}", f"--num_blocks={num_blocks}", "--log_level=WARNING",
            f"--num_gpu={int(DEVICE.type == 'cuda')}", "--nb_batch_reward_controller=1", "--policy_batch_size=1",
            f"--data_dir={data_dir}",
            "--dataset=ptb", *flags]
    def floor(task) -> dict[str, Callable]:
        a = task.config
        return {"floor": floor_fn(a.shared_rnn_max_length, a.batch_size, hid, hid, task.supernet.vocab_size,
                                  num_blocks)}

    med, c, _ = measure(argv, steps, floor, num_archs)
    print(f"PTB, embed = hid = {hid}, B = {num_blocks}, batch {c.space.batch_size}, "
          f"BPTT {c.space.shared_rnn_max_length}, "
          f"{torch.get_num_threads()} threads on {DEVICE}, medians of {steps}, {num_archs} architectures in turn")
    _common_rows(med, c.search.num_batch_per_iter, "batches", 1)
    print(f"| matmul floor of one shared batch | {med['floor'] * 1e3:.0f} ms |")
    print(f"| shared batch / floor | ×{med['plain'] / med['floor']:.2f} |")
    print(json_line("rnn", med, c.search.num_batch_per_iter, shared_over_floor=round(med["plain"] / med["floor"], 3)))


def bench_cnn(data_dir: str, steps: int, flags: list[str], num_archs: int) -> None:
    """CNN space on CIFAR-10 at the README's CPU configuration."""
    argv = ["--network_type=micro_cnn", "--dataset=cifar10", f"--data_dir={data_dir}", "--num_blocks=5",
            "--cnn_final_filter_size=32", "--cnn_num_repeat_normal=1", "--batch_size=32", "--num_batch_per_iter=7",
            "--nb_batch_reward_controller=5", "--policy_batch_size=1", "--log_level=WARNING",
            f"--num_gpu={int(DEVICE.type == 'cuda')}", *flags]
    med, c, _ = measure(argv, steps, lambda task: {"data": task._next_train}, num_archs)
    print(f"CIFAR-10, micro cells B = 5, final filters 32, 1 normal cell per stage, batch {c.space.batch_size}, "
          f"{torch.get_num_threads()} threads on {DEVICE}, medians of {steps}, {num_archs} architectures in turn")
    _common_rows(med, c.search.num_batch_per_iter, "images", c.space.batch_size)
    print(f"| data path of one training batch (index + augment) | {med['data'] * 1e3:.1f} ms "
          f"({med['data'] / med['plain'] * 100:.1f}% of a plain shared batch) |")
    print(json_line("cnn", med, c.search.num_batch_per_iter, images_per_s=round(c.space.batch_size / med["plain"], 1)))


def bench_nb201(data_dir: str, steps: int, flags: list[str], num_archs: int) -> None:
    """NAS-Bench-201 space on CIFAR-10 at the benchmark's size, with the comparison's training recipe."""
    argv = ["--network_type=nb201", "--dataset=cifar10", f"--data_dir={data_dir}", "--nb201_channels=16",
            "--nb201_cells=5", "--nb201_outer_affine=False", "--augment_scope=batch", "--train_sampling=replace",
            "--batch_size=64", "--num_batch_per_iter=1", "--shared_momentum=0.9", "--shared_lr=0.05",
            "--nb_batch_reward_controller=2", "--policy_batch_size=1", "--valid_size=1000", "--log_level=WARNING",
            f"--num_gpu={int(DEVICE.type == 'cuda')}", *flags]
    med, c, _ = measure(argv, steps, lambda task: {"data": task._next_train}, num_archs)
    print(f"NAS-Bench-201, C = {c.space.nb201_channels}, N = {c.space.nb201_cells}, batch {c.space.batch_size}, "
          f"{torch.get_num_threads()} threads on {DEVICE}, medians of {steps}, {num_archs} sampled cells in turn")
    _common_rows(med, c.search.num_batch_per_iter, "images", c.space.batch_size)
    print(json_line("nb201", med, c.search.num_batch_per_iter,
                    images_per_s=round(c.space.batch_size / med["plain"], 1)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", choices=["rnn", "cnn", "nb201"], default="rnn")
    ap.add_argument("--data_dir", required=True, help="holds ptb/ (rnn) or cifar10/ (cnn)")
    ap.add_argument("--steps", type=int, default=20, help="timed rounds (every variant once per round)")
    ap.add_argument("--hid", type=int, default=200, help="rnn: embedding and hidden size")
    ap.add_argument("--num_blocks", type=int, default=12, help="rnn: nodes per cell")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i] (on a GPU use e.g. --hid 1000, the "
                    "README's full size; the floor is then bare cuBLAS products)")
    ap.add_argument("--archs", type=int, default=4, help="sampled architectures, used in turn round by round")
    ap.add_argument("--flags", default="", help="search flags appended to the configuration, e.g. "
                    "'--cnn_sep_conv=depthwise'")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (2: this project's machines)")
    ap.add_argument("--json", default="", help="also append the machine-readable line to this file")
    a = ap.parse_args()
    global DEVICE, JSON_OUT
    DEVICE, JSON_OUT = torch.device(a.device), a.json
    torch.set_num_threads(a.threads)
    if a.space == "rnn":
        bench_rnn(a.data_dir, a.steps, a.hid, a.num_blocks, a.flags.split(), a.archs)
    elif a.space == "cnn":
        bench_cnn(a.data_dir, a.steps, a.flags.split(), a.archs)
    else:
        bench_nb201(a.data_dir, a.steps, a.flags.split(), a.archs)


if __name__ == "__main__":
    main()
