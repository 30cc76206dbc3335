"""What one supernet of reproduce_nb201.py costs: seconds per shared step, by phase, for each variant.

Usage: python -m benchmarks.speed.nb201_budget --data_dir DIR [--steps 400] [--rounds 2] [--work_dir W]
Each variant runs ``--steps`` shared steps of one epoch with WPL on from the first step (the comparison's
flags, no controller, no ranking), ``--rounds`` times, variants interleaved so machine drift hits all alike.
Prints seconds per step of the shared phase (the step, the WPL penalty and Fisher included) and of the
forgetting telemetry, and the minutes a supernet of the full comparison's schedule costs at those rates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.lib.branching import run
from benchmarks.reproduce.nb201 import FLAGS, MODES, VARIANTS

NO_EXTRAS = ["--rank_every=0", "--train_controller=False", "--derive_num_sample=1", "--start_using_fisher=0"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True, help="folder holding cifar10/")
    ap.add_argument("--steps", type=int, default=400, help="shared steps per timed run")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the variants")
    ap.add_argument("--work_dir", default="", help="scratch folder (default: a temporary one, removed)")
    args = ap.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="nb201_budget_"))
    rates: dict[str, dict[str, list[float]]] = {v: {"shared": [], "forgetting": []} for v in VARIANTS}
    for r in range(args.rounds):
        for name, flags in VARIANTS.items():
            d = work / f"{name}{r}"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            run([sys.executable, "-m", "wpl", "search", *FLAGS, *flags, *NO_EXTRAS, f"--data_dir={args.data_dir}",
                 f"--log_dir={d}", f"--comment={name}", "--max_epoch=1", f"--shared_max_step={args.steps}"],
                d / "search.log")
            secs = json.loads((d / f"cifar10_{name}" / "summary.json").read_text())["seconds"]
            for phase in rates[name]:
                rates[name][phase].append(secs.get(phase, 0.0) / args.steps)
    full = MODES["full"]
    base = sum(statistics.fmean(v) for v in rates["plain"].values()) * full["steps"]  # the shared plain epoch
    print(f"| variant | shared s/step | forgetting s/step | steps' minutes of a full-mode supernet "
          f"({full['steps']} plain + {full['epochs']}×{full['steps']} variant steps) |")
    print("|---|---|---|---|")
    for name, r in rates.items():
        sh, fg = statistics.fmean(r["shared"]), statistics.fmean(r["forgetting"])
        print(f"| {name} | {sh:.4f} | {fg:.4f} | {(base + (sh + fg) * full['steps'] * full['epochs']) / 60:.2f} |")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
