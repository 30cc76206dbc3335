"""Soak: a long search at a tiny size — 2,000 shared steps and 2,000 controller steps, with the
forgetting telemetry, derives, logs and mid-epoch checkpoints of a real run — sampling resident memory
and each step's time, to show neither grows. Writes OUT/soak.json and OUT/soak.png.

Usage: python -m benchmarks.stress.soak [--out benchmarks/results] [--steps 2000] [--data_dir DIR]
(the embedded PTB slice without --data_dir). Growth is measured after a warm-up of the first 10%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from wpl.nas.search import progress as progress_mod
from wpl.nas.search.run import run_search


def rss_mb() -> float:
    """This process's resident memory (MB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    ap.add_argument("--steps", type=int, default=2000, help="shared steps, and controller steps")
    ap.add_argument("--per_epoch", type=int, default=100)
    ap.add_argument("--data_dir", default="embedded")
    args = ap.parse_args()
    torch.set_num_threads(1)
    samples: list[tuple[str, float, float]] = []  # (phase, seconds since the previous step, rss MB)
    real = progress_mod.Checkpointing.boundary
    last = [time.perf_counter()]

    def boundary(self, phase, step, acc):
        now = time.perf_counter()
        samples.append((phase, now - last[0], rss_mb()))
        real(self, phase, step, acc)
        last[0] = time.perf_counter()  # a checkpoint written at this boundary is not the next step's time

    progress_mod.Checkpointing.boundary = boundary
    epochs = args.steps // args.per_epoch
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        run_search([f"--data_dir={args.data_dir}", "--dataset=ptb", "--shared_embed=16", "--shared_hid=16",
                    "--num_blocks=4", "--batch_size=8", "--test_batch_size=8", "--shared_rnn_max_length=10",
                    f"--shared_max_step={args.per_epoch}", "--num_batch_per_iter=1", "--train_controller=True",
                    f"--controller_max_step={args.per_epoch}", f"--max_epoch={epochs}", "--save_epoch=5",
                    "--derive_num_sample=4", "--forgetting_batches=1", "--start_using_fisher=1",
                    "--alpha_fisher=60", "--fisher_clip_by_norm=10", "--checkpoint_every_steps=50",
                    "--use_tensorboard=True", "--log_level=WARNING", f"--log_dir={tmp}", "--num_gpu=0"])
        seconds = time.time() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": "python " + " ".join(sys.argv), "seconds": round(seconds, 1), "epochs": epochs}
    for phase in ("shared", "controller"):
        rows = [(t, m) for p, t, m in samples if p == phase]
        warm = len(rows) // 10
        t_first, t_last = ([t for t, _ in rows[a:b]] for a, b in ((warm, 2 * warm), (-warm, None)))
        m_warm, m_end = rows[warm][1], rows[-1][1]
        result[phase] = {"steps": len(rows), "rss_after_warmup_mb": round(m_warm, 1), "rss_end_mb": round(m_end, 1),
                         "rss_growth": round(m_end / m_warm - 1, 4),
                         "step_ms_median_early": round(1e3 * statistics.median(t_first), 2),
                         "step_ms_median_late": round(1e3 * statistics.median(t_last), 2)}
    rss_all = [m for _, _, m in samples]
    result["rss_growth_all"] = round(rss_all[-1] / rss_all[len(rss_all) // 10] - 1, 4)
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    figure(samples, out / "soak.png")
    print(json.dumps(result, indent=2))


def figure(samples: list[tuple[str, float, float]], path: Path) -> None:
    """Resident memory over all steps, and each phase's step time (rolling median of 50)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    a.plot([m for _, _, m in samples], lw=1)
    a.set_xlabel("step (shared, controller and derive, in run order)")
    a.set_ylabel("resident memory (MB)")
    a.set_title("memory")
    top = 0.0
    for phase, color in (("shared", "tab:blue"), ("controller", "tab:orange")):
        t = [1e3 * s for p, s, _ in samples if p == phase]
        roll = [statistics.median(t[max(0, i - 49): i + 1]) for i in range(len(t))]
        b.plot(roll, color=color, lw=1.2, label=phase)
        top = max(top, 2.5 * statistics.median(roll[len(roll) // 10:]))
    b.set_ylim(0, top)  # the first steps (start-up, the first checkpoint) run off the top
    b.axvspan(0, len([1 for p, _, _ in samples if p == "shared"]) // 10, color="0.9", label="warm-up (10%)")
    b.set_xlabel("step of the phase")
    b.set_ylabel("step time, rolling median of 50 (ms)")
    b.set_title("step time")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
