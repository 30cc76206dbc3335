"""Figures: the one way every figure is made and written (:func:`pyplot`, :func:`save_figure`), and the
two-model accuracy curves (like the paper's MNIST figure)."""

from __future__ import annotations

from pathlib import Path

from .fileio import atomic_write

COLORS = {"plain": "tab:purple", "wpl": "tab:orange", "l2": "tab:gray", "ewc": "tab:blue"}
LABELS = {"plain": "plain", "wpl": "WPL", "l2": "L2-to-anchor", "ewc": "EWC-style"}


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Lay ``fig`` out, write it as a PNG (110 dpi) atomically, close it; the path."""
    path = Path(path)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    pyplot().close(fig)
    return path


def plot_two_models(result: dict, path: str | Path) -> Path:
    """A's (dashed) and B's (solid) test accuracy vs B's iterations; one panel per setting."""
    plt = pyplot()

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
    return save_figure(fig, path)
