"""Data-parallel scaling, 1 → N processes (torchrun, Gloo): the same search at the same global batch,
one process at batch N·b against N processes at batch b each, interleaved; the ratio of their shared
phases' time per step. On a 2-core machine the processes share the cores, so this measures the
overhead of the collectives and of splitting the work, not a speed-up a machine with more cores or
GPUs would show.

Usage: python -m benchmarks.speed.dist_scaling --data_dir DIR [--procs 2] [--repeats 3] [--batch 32]
DIR holds ptb/. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ("--dataset=ptb --shared_embed=200 --shared_hid=200 --num_blocks=8 --shared_max_step=20 "
         "--num_batch_per_iter=5 --train_controller=False --max_epoch=1 --derive_num_sample=1 "
         "--forgetting_batches=1 --start_evaluate_diff=5 --use_wpl=False --use_tensorboard=False "
         "--log_level=WARNING --checkpoint_every_steps=0 --num_gpu=0").split()


def shared_seconds(procs: int, batch: int, data_dir: str, threads: int) -> float:
    """The shared phase's seconds of one 1-epoch search (``procs`` processes at ``batch`` each)."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*FLAGS, f"--data_dir={data_dir}", f"--batch_size={batch}", f"--test_batch_size={batch}",
                f"--log_dir={tmp}", "--comment=scale", f"--num_threads={threads}"]
        launch = [sys.executable, "-m", "wpl"] if procs == 1 else \
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "wpl"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([*launch, "search", *argv], check=True, capture_output=True, env=env)
        return json.loads((Path(tmp) / "ptb_scale" / "summary.json").read_text())["seconds"]["shared"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32, help="per-process batch of the N-process run")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    one, many = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        one.append(shared_seconds(1, args.procs * args.batch, args.data_dir, cores))
        many.append(shared_seconds(args.procs, args.batch, args.data_dir, max(1, cores // args.procs)))
    m1, mn = statistics.median(one), statistics.median(many)
    print(json.dumps({"procs": args.procs, "global_batch": args.procs * args.batch, "cores": cores,
                      "one_process_s": one, "n_processes_s": many, "speedup": round(m1 / mn, 3),
                      "efficiency": round(m1 / mn / args.procs, 3), "command": "python " + " ".join(sys.argv)}))


if __name__ == "__main__":
    main()
