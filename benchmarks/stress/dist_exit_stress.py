"""Two-rank searches beside a busy loop on every core: do the ranks exit cleanly? The check behind issue
#23's fix (BENCHMARKS.md, "Two-rank tests under load").

``--mode exit``: each run is a tiny two-rank RNN search on real PTB; a failure is any non-zero exit
(before the fix: a rank aborting after its work, "terminate called without an active exception").
``--mode sigterm``: each run is sent SIGTERM (to torchrun) at its first metrics event; a failure is a job
whose ranks do not all stop with "stopped by SIGTERM" within ``--hang_s`` seconds.

Usage: python -m benchmarks.stress.dist_exit_stress --data_dir DIR [--mode exit|sigterm] [--runs 40] [--keep DIR]
DIR holds ptb/. Prints one JSON line; with --keep, each failed run's stderr is kept there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ("--dataset=ptb --shared_embed=8 --shared_hid=8 --num_blocks=3 --batch_size=4 --test_batch_size=4 "
        "--shared_max_step=3 --num_batch_per_iter=2 --controller_max_step=3 --derive_num_sample=3 "
        "--shared_rnn_max_length=6 --forgetting_batches=2 --log_step=2 --save_epoch=1 --controller_hid=8 "
        "--use_tensorboard=False --log_level=WARNING --num_gpu=0 --max_epoch=3 --start_using_fisher=1 "
        "--train_controller=True --start_training_controller=0 --rnn_cell=python --checkpoint_every_steps=3 "
        "--comment=stress").split()


def one_run(mode: str, data_dir: str, out: Path, hang_s: float) -> tuple[bool | None, float, str]:
    """(clean, seconds from start or from the signal to the exit, stderr) of one two-rank search; clean is
    None for a sigterm run that ended before its signal (not a run of that check)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "wpl",
           "search", *TINY, f"--data_dir={data_dir}", f"--log_dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if mode == "sigterm":
        marker = out / "ptb_stress" / "metrics.jsonl"
        while not marker.exists() and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is not None:
            return None, time.monotonic() - t0, proc.communicate()[1]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=hang_s if mode == "sigterm" else 600)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return False, time.monotonic() - t0, err
    seconds = time.monotonic() - t0
    clean = proc.returncode == 0 if mode == "exit" else err.count("stopped by SIGTERM") >= 1 and \
        "Unable to shutdown" not in err and "terminate called" not in err
    return clean, seconds, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--mode", choices=("exit", "sigterm"), default="exit")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--hang_s", type=float, default=20.0, help="sigterm: a job still running this long is hung")
    ap.add_argument("--keep", default="", help="keep failed runs' stderr in this folder")
    args = ap.parse_args()
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 1)]
    failed, seconds, aborts, unsignalled = [], [], 0, 0
    try:
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                clean, s, err = one_run(args.mode, args.data_dir, Path(tmp), args.hang_s)
            seconds.append(round(s, 1))
            aborts += "terminate called" in err
            unsignalled += clean is None
            if clean is False:
                failed.append(i)
                if args.keep:
                    Path(args.keep).mkdir(parents=True, exist_ok=True)
                    (Path(args.keep) / f"run{i}.err").write_text(err)
            verdict = {True: "clean", False: "FAILED", None: "ended before its signal"}[clean]
            print(f"run {i + 1}/{args.runs}: {verdict} ({s:.1f} s)", file=sys.stderr, flush=True)
    finally:
        for h in hogs:
            h.kill()
    print(json.dumps({"mode": args.mode, "runs": args.runs, "failed": len(failed), "failed_runs": failed,
                      "ended_before_signal": unsignalled,
                      "aborts": aborts, "busy_loops": len(hogs), "max_seconds": max(seconds),
                      "command": " ".join(["python", "-m", "benchmarks.stress.dist_exit_stress", *sys.argv[1:]])}))


if __name__ == "__main__":
    main()
