"""Where WPL holds: the Fisher mass of the protected weights, grouped by edge (and op), per epoch.

A search with WPL on logs one ``fisher`` event per epoch (``metrics.jsonl``): ``mass`` maps a group
label — an RNN edge ``edge i→j``, a micro-CNN op ``normal node b ← i: op``, a NAS-Bench-201 edge-op
``i→j op`` summed over the cells — to the sum of its Fisher. ``wpl plot --fisher RUN`` draws each
group's share of the epoch's total as a map (:func:`plot_fisher`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from wpl.plots import pyplot, save_figure

from .. import spaces


def group_label(task, name: str) -> str:
    """The group of parameter ``name`` in ``task``'s supernet: its space's label (an edge, an op), else its own
    top module."""
    return spaces.get(task.kind).fisher_group(task, name) or name.split(".")[0]


def fisher_groups(task) -> dict[str, list[str]]:
    """Group label → the protected parameter names in it, in first-seen order."""
    out: dict[str, list[str]] = {}
    for name in task.all_protected_names():
        out.setdefault(group_label(task, name), []).append(name)
    return out


@torch.no_grad()
def fisher_mass(fisher: dict[str, torch.Tensor], groups: dict[str, list[str]]) -> dict[str, float]:
    """The summed Fisher of each group (one device sync for all of them)."""
    if not groups:
        return {}
    sums = torch.stack([torch.stack([fisher[n].sum().double() for n in names]).sum() for names in groups.values()])
    return {g: (v if math.isfinite(v) else None) for g, v in zip(groups, sums.cpu().tolist(), strict=True)}


def _natural(label: str) -> list:
    """Sort key reading numbers as numbers: edge 2→10 after edge 2→9."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label)]


def plot_fisher(events: list[dict], output: Path, title: str = "") -> Path:
    """Each group's share of the Fisher mass per epoch, as a map (groups × epochs)."""
    plt = pyplot()
    import numpy as np

    if not events:
        raise ValueError("no 'fisher' events: the run had WPL on in no finished epoch")
    labels = sorted(events[0]["mass"], key=_natural)
    epochs = [e["epoch"] for e in events]
    mass = np.array([[e["mass"].get(g) or 0.0 for e in events] for g in labels], dtype=float)
    total = mass.sum(0, keepdims=True)
    share = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(epochs) + 2.5), max(2.5, 0.22 * len(labels) + 1.2)))
    im = ax.imshow(share, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    step = max(1, len(epochs) // 12)
    ax.set_xticks(range(0, len(epochs), step), [str(e) for e in epochs[::step]], fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_title(title or "share of the Fisher mass per epoch", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the epoch's total")
    return save_figure(fig, output)
