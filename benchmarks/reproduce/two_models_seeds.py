"""Two-model experiment on full MNIST over several seeds: mean ± std of every headline number.

Usage: python -m benchmarks.reproduce.two_models_seeds --data_dir ../shared/data/mnist [--seeds 0,1,2]
       [two-models flags]
Writes benchmarks/out/two_models_seeds.json and prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "out"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    args, extra = ap.parse_known_args()
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        out = OUT / f"two_models_seed{seed}"
        cmd = [sys.executable, "-m", "wpl", "two-models", "--data_dir", args.data_dir, "--seed", str(seed),
               "--output_dir", str(out), *extra]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        runs.append(json.loads((out / "two_models.json").read_text()))
    rows = {}
    for res in runs:
        for r in res["runs"]:
            row = rows.setdefault(r["convergence"], {k: [] for k in
                                  ("a_before", "a_plain", "a_wpl", "b_plain", "b_wpl", "f_plain", "f_wpl", "cut")})
            row["a_before"].append(r["a_acc_before"])
            row["a_plain"].append(r["plain"]["a_acc_after"])
            row["a_wpl"].append(r["wpl"]["a_acc_after"])
            row["b_plain"].append(r["plain"]["b_acc"])
            row["b_wpl"].append(r["wpl"]["b_acc"])
            row["f_plain"].append(r["forgetting_plain"])
            row["f_wpl"].append(r["forgetting_wpl"])
            row["cut"].append(r["forgetting_reduction"])

    def ms(v: list) -> str:
        return f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}"

    lines = ["| setting | A before | A after, plain | A after, WPL | B plain | B WPL | forgetting plain | "
             "forgetting WPL | reduction |", "|" + "---|" * 9]
    for setting, row in rows.items():
        lines.append(f"| {setting} | " + " | ".join(ms(row[k]) for k in row) + " |")
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(exist_ok=True)
    (OUT / "two_models_seeds.json").write_text(json.dumps({"rows": rows, "table": table}, indent=2))


if __name__ == "__main__":
    main()
