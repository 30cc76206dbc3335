"""Figures: the two-model accuracy curves (like the paper's MNIST figure)."""

from __future__ import annotations

from pathlib import Path

from .fileio import atomic_write

COLORS = {"plain": "tab:purple", "wpl": "tab:orange", "l2": "tab:gray", "ewc": "tab:blue"}
LABELS = {"plain": "plain", "wpl": "WPL", "l2": "L2-to-anchor", "ewc": "EWC-style"}


def plot_two_models(result: dict, path: str | Path) -> Path:
    """A's (dashed) and B's (solid) test accuracy vs B's iterations; one panel per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4.0), squeeze=False, sharey=True)
    for ax, run in zip(axes[0], runs):
        methods = [m for m in COLORS if m in run]
        for m in methods:
            c = run[m]["curve"]
            ax.plot(c["iter"], c["b_acc"], color=COLORS[m], lw=1.6, label=f"B, {LABELS[m]}")
            ax.plot(c["iter"], c["a_acc"], color=COLORS[m], lw=1.6, ls="--", label=f"A, {LABELS[m]}")
        ax.axhline(run["a_acc_before"], color="tab:green", lw=1.0, ls=":", label="A before B")
        red = run.get("forgetting_reduction")
        red_txt = "n/a" if red is None else f"{100 * red:.0f}%"
        ax.set_title(f"{run['convergence']} (A at {run['a_acc_before']:.2f}); forgetting cut {red_txt}")
        ax.set_xlabel("training iterations of model B")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 test accuracy")
    axes[0][0].set_ylim(0.0, 1.0)
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Multi-model forgetting on {result['dataset']}: {runs[0]['shared_blocks']} shared blocks")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
