"""The table and figure of issue #12's comparison from the runs ``nb201_compare.sh`` wrote.

Per variant (strategy × plain/WPL): mean ± std over seeds of the final ranking metrics (``rank.json``:
200 cells, 8 validation batches each, batch-statistics BN) and of the forgetting summaries over epochs
1+ (the epochs WPL is on in the WPL variants); the published estimates and zero-cost proxies as
anchors. Then the BN choice (the same supernets scored with BN recalibrated per cell,
``rank_recal.json``), what the supernets prefer (Spearman ρ of each op's count in a cell with the
supernet's score and with the truth), and Kendall τ over the search's epochs (the ``rank`` events: 100
fixed cells), mean ± std per variant, as a figure.

Usage: python benchmarks/nb201_table.py OUT_DIR [--figure OUT_DIR/tau_epochs.png]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

import numpy as np

from wpl.data.nb201 import OPS, parse_arch
from wpl.nas.rank import spearman

VARIANTS = ("enas-plain", "enas-wpl", "random-plain", "random-wpl")
METRICS = ("kendall_tau", "spearman", "tau_top10", "p_at_top5", "top1_true_acc")
FORGETTING = ("diff_mean", "diff_best_mean", "loss_diff_mean")
# zero-cost proxies on NAS-Bench-201 CIFAR-10 (Abdelfattah et al., ICLR 2021): Spearman ρ over all cells
PROXIES = {"synflow (zero-cost, no training)": 0.737, "jacob_cov (zero-cost)": 0.731, "snip (zero-cost)": 0.596}


def _runs(out: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {v: [] for v in VARIANTS}
    for d in sorted(out.glob("cifar10_*-s*")):
        m = re.fullmatch(r"cifar10_(.+)-s(\d+)", d.name)
        done = all((d / f).is_file() for f in ("rank.json", "rank_recal.json", "summary.json"))
        if m and m.group(1) in found and done:
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


def bn_table(out: Path) -> str:
    """Kendall τ and Spearman ρ of the same supernets with batch-statistics BN and with recalibrated BN."""
    lines = ["| variant | τ, batch-stat BN | τ, recalibrated BN | ρ, batch-stat BN | ρ, recalibrated BN |",
             "|---|---|---|---|---|"]
    for v, dirs in _runs(out).items():
        if dirs:
            a = [json.loads((d / "rank.json").read_text()) for d in dirs]
            b = [json.loads((d / "rank_recal.json").read_text()) for d in dirs]
            lines.append(f"| {v} | " + " | ".join(_ms([r[k] for r in rs]) for k in ("kendall_tau", "spearman")
                                                   for rs in (a, b)) + " |")
    return "\n".join(lines) + "\n"


def preference_table(out: Path) -> str:
    """Spearman ρ of each op's count in a cell with the supernet's score (mean ± std over runs) and the truth."""
    scores: dict[str, list[float]] = {op: [] for op in OPS}
    truth: dict[str, float] = {}
    for dirs in _runs(out).values():
        for d in dirs:
            cells = json.loads((d / "rank.json").read_text())["archs"]
            counts = {op: np.array([parse_arch(c["arch"]).count(op) for c in cells]) for op in OPS}
            for op in OPS:
                scores[op].append(spearman(counts[op], [c["score"] for c in cells]))
                truth[op] = spearman(counts[op], [c["true_acc"] for c in cells])
    if not truth:
        return ""
    lines = ["| op | ρ(count, supernet score) | ρ(count, true accuracy) |", "|---|---|---|"]
    lines += [f"| {op} | {_ms(scores[op])} | {truth[op]:.3f} |" for op in OPS]
    return "\n".join(lines) + "\n"


def figure(out: Path, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, (v, dirs) in enumerate(_runs(out).items()):
        curves = [[e["kendall_tau"] for e in _events(d, "rank")] for d in dirs]
        if not curves:
            continue
        n = min(map(len, curves))
        tau = np.array([c[:n] for c in curves], dtype=float)
        epochs = [e["epoch"] for e in _events(dirs[0], "rank")][:n]
        mean, std = tau.mean(0), tau.std(0, ddof=1) if len(tau) > 1 else np.zeros(n)
        style = "-" if v.endswith("wpl") else "--"
        ax.plot(epochs, mean, style, color=f"C{k // 2}", marker="o", ms=3, label=f"{v} ({len(tau)} seeds)")
        ax.fill_between(epochs, mean - std, mean + std, color=f"C{k // 2}", alpha=0.12 if style == "-" else 0.06)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("search epoch")
    ax.set_ylabel("Kendall τ (100 fixed cells; mean ± std)")
    ax.set_title("ranking fidelity during the search, NAS-Bench-201 on CIFAR-10", fontsize=10)
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
    print(table(out))
    print(bn_table(out))
    print(preference_table(out), end="")
    print(f"wrote {figure(out, Path(a.figure) if a.figure else out / 'tau_epochs.png')}")


if __name__ == "__main__":
    main()
