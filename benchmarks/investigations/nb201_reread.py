"""The 5-seed NAS-Bench-201 comparison (reproduce_nb201.json) read with the statistics its claims need: the four
comparisons of an acting WPL variant with plain as one family (Holm), the smallest effect 5 seeds detect, the
verdict computed from those; the six with the original's two beside; ENAS-recommended against ENAS-original.

Usage: python -m benchmarks.investigations.nb201_reread
  → results/reproduce_nb201_holm.json (no runs: the committed per-seed τ)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wpl.fileio import write_json
from wpl.stats import compare_family

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    per_seed = json.loads((RESULTS / "reproduce_nb201.json").read_text())["per_seed"]

    def tau(run: str) -> list[float]:
        return [s[run]["kendall_tau"] for s in per_seed]

    acting = [(f"{st}-{v} − {st}-plain", tau(f"{st}-{v}"), tau(f"{st}-plain"))
              for st in ("enas", "random") for v in ("recommended", "persistent")]
    six = [*acting, *((f"{st}-original − {st}-plain", tau(f"{st}-original"), tau(f"{st}-plain"))
                      for st in ("enas", "random"))]
    keep = ("name", "n", "mean", "sd", "lo", "hi", "p", "p_holm", "detectable", "power_at_delta", "up", "down",
            "verdict", "verdict_text")
    out = {"command": "python -m benchmarks.investigations.nb201_reread", "source": "reproduce_nb201.json",
           "seeds": len(per_seed),
           "endpoint": "kendall_tau (200 cells, sample seed 0)",
           "acting_family": [{k: c[k] for k in keep if k in c} for c in compare_family(acting, 0.05, 0.8, 0.04)],
           "six_family": [{k: c[k] for k in keep if k in c} for c in compare_family(six, 0.05, 0.8, 0.04)],
           "recommended_vs_original": {k: c[k] for c in compare_family(
               [("enas-recommended − enas-original", tau("enas-recommended"), tau("enas-original"))], 0.05, 0.8, 0.04)
               for k in keep if k in c}}
    path = write_json(RESULTS / "reproduce_nb201_holm.json", out)
    for fam in ("acting_family", "six_family"):
        for c in out[fam]:
            print(f"{fam}: {c['name']}: {c['mean']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}] p {c['p']:.3f} Holm "
                  f"{c['p_holm']:.3f}; {c['verdict_text']}")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
