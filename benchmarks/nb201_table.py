"""The table and figure of issue #12's comparison from the runs ``nb201_compare.sh`` wrote.

Per variant (strategy × plain/WPL): mean ± std over seeds of the final ranking metrics (``rank.json``:
200 cells, 8 validation batches each) and of the forgetting summaries over epochs 1+ (the epochs WPL
is on in the WPL variants); the published estimates and zero-cost proxies as anchors; and Kendall τ
over the search's epochs (the ``rank`` events: 100 fixed cells), plain against WPL, as a figure.

Usage: python benchmarks/nb201_table.py OUT_DIR [--figure OUT_DIR/tau_epochs.png]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

VARIANTS = ("enas-plain", "enas-wpl", "random-plain", "random-wpl")
METRICS = ("kendall_tau", "spearman", "tau_top10", "p_at_top5", "top1_true_acc")
FORGETTING = ("diff_mean", "diff_best_mean", "loss_diff_mean")
# zero-cost proxies on NAS-Bench-201 CIFAR-10 (Abdelfattah et al., ICLR 2021): Spearman ρ over all cells
PROXIES = {"synflow (zero-cost, no training)": 0.737, "jacob_cov (zero-cost)": 0.731, "snip (zero-cost)": 0.596}


def _runs(out: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {v: [] for v in VARIANTS}
    for d in sorted(out.glob("cifar10_*-s*")):
        m = re.fullmatch(r"cifar10_(.+)-s(\d+)", d.name)
        if m and m.group(1) in found and (d / "rank.json").is_file() and (d / "summary.json").is_file():
            found[m.group(1)].append(d)
    return found


def _events(run: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == kind]


def _ms(values: list[float]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def table(out: Path) -> str:
    runs = _runs(out)
    head = ("| variant | seeds | Kendall τ | Spearman ρ | τ top-10% | P@5% | top-1 true acc | forgetting mean (error) "
            "| best-5 | mean (loss) |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    ref = None
    for v, dirs in runs.items():
        if not dirs:
            continue
        ranks = [json.loads((d / "rank.json").read_text()) for d in dirs]
        ref = ranks[0]["reference"]
        fg = {k: [statistics.mean([e[k] for e in _events(d, "forgetting") if e["epoch"] >= 1 and e.get(k) is not None]
                                  or [float("nan")]) for d in dirs] for k in FORGETTING}
        lines.append(f"| {v} | {len(dirs)} | " + " | ".join(_ms([r[k] for r in ranks]) for k in METRICS) + " | "
                     + " | ".join(_ms(fg[k]) for k in FORGETTING) + " |")
    if ref is not None:
        for name, key in (("one-shot supernet (published; 200 cells / all)", "one_shot"),
                          ("few-shot supernet (published)", "few_shot")):
            same, every = ref[key]["same_cells"], ref[key]["all_cells"]
            lines.append(f"| {name} | — | {same['kendall_tau']:.3f} / {every['kendall_tau']:.3f} | "
                         f"{same['spearman']:.3f} / {every['spearman']:.3f} | {same['tau_top10']:.3f} | "
                         f"{same['p_at_top5']:.3f} | {same['top1_true_acc']:.2f} | | | |")
    for name, rho in PROXIES.items():
        lines.append(f"| {name} | — | | {rho:.3f} | | | | | | |")
    return "\n".join(lines) + "\n"


def figure(out: Path, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (v, dirs) in enumerate(_runs(out).items()):
        for n, d in enumerate(dirs):
            ev = _events(d, "rank")
            ax.plot([e["epoch"] for e in ev], [e["kendall_tau"] for e in ev], color=f"C{k}", alpha=0.7, lw=1.2,
                    marker="o", ms=3, label=v if n == 0 else None)
    ax.set_xlabel("search epoch")
    ax.set_ylabel("Kendall τ (100 fixed cells)")
    ax.set_title("ranking fidelity during the search, NAS-Bench-201 on CIFAR-10")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--figure", default="")
    a = ap.parse_args()
    out = Path(a.out)
    print(table(out), end="")
    print(f"wrote {figure(out, Path(a.figure) if a.figure else out / 'tau_epochs.png')}")


if __name__ == "__main__":
    main()
