"""A/B in one process: the CNN shared batch with pooling in NCHW (the plain layout) against pooling
in channels-last memory (what ``wpl.nas.spaces.micro_cnn.supernet.Pool`` does), interleaved, at the README's
CPU example.

Usage: python -m benchmarks.speed.pool_layout --data_dir ~/data   (holding cifar10/)
"""

import argparse
import statistics
import time

import torch

from wpl.nas.search.flags import parse_search_args
from wpl.nas.search.run import build_search
from wpl.nas.spaces.micro_cnn import supernet as cnn


def nchw_forward(self, x):
    """The pool as it was: NCHW in, NCHW out."""
    return self._pool(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--rounds", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(2)
    argv = ["--network_type=micro_cnn", "--dataset=cifar10", f"--data_dir={a.data_dir}", "--num_blocks=5",
            "--cnn_final_filter_size=32", "--cnn_num_repeat_normal=1", "--batch_size=32", "--log_level=WARNING",
            "--num_gpu=0"]
    torch.manual_seed(0)
    search = build_search(parse_search_args(argv), None, torch.device("cpu"))
    arch = search.sample_archs(1)[0]
    protect = search.task.protected_names(arch)
    search.supernet.train()
    variants = {"nchw": nchw_forward, "channels_last": cnn.Pool.forward}

    def run(fwd) -> float:
        cnn.Pool.forward = fwd
        t0 = time.perf_counter()
        search.shared_batch(arch, protect, wpl=False)
        return time.perf_counter() - t0

    for fwd in variants.values():
        run(fwd)
    times = {k: [] for k in variants}
    for i in range(a.rounds):
        for name in list(variants)[:: 1 if i % 2 else -1]:
            times[name].append(run(variants[name]))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"shared batch: NCHW pools {med['nchw']:.1f} ms, channels-last pools {med['channels_last']:.1f} ms "
          f"(×{med['nchw'] / med['channels_last']:.2f}); medians of {a.rounds} interleaved rounds")
    x = torch.randn(32, 8, 32, 32)
    for kind in ("avg", "max"):
        p = cnn.Pool(kind, 1)
        assert torch.equal(nchw_forward(p, x), variants["channels_last"](p, x)), kind
    print("forward values identical for avg and max pooling")



if __name__ == "__main__":
    main()
