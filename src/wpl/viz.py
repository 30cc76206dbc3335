"""Cell drawings from a node/edge list (each space builds its own, see ``rnn_graph`` and
``micro_graph``): Graphviz ``.dot`` text, and a PNG — rendered by Graphviz when ``dot`` is
installed, else drawn with Pillow (top-down by depth, connected parts side by side, a legend)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .fileio import atomic_write

INPUT_COLOR, STATE_COLOR, JOIN_COLOR = "#ffffff", "#87ceeb", "#43cd80"
Graph = tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]  # nodes {id: (label, colour)}, edges


def to_dot(nodes: dict[str, tuple[str, str]], edges: list[tuple[str, str]], name: str = "cell",
           title: str = "") -> str:
    """Graphviz source for a node/edge list (``title`` as the graph's label)."""
    lines = [f'digraph "{name}" {{', "  rankdir=TB;", '  node [shape=box, style=filled, fontname="Helvetica"];']
    if title:
        lines.append(f'  labelloc=t; label="{title}";')
    for nid, (label, color) in nodes.items():
        text = label.replace("\n", "\\n")
        lines.append(f'  {nid} [label="{text}", fillcolor="{color}"];')
    lines += [f"  {a} -> {b};" for a, b in edges]
    legend = _legend(nodes)
    if legend:  # one swatch per op / activation, in a box of its own
        lines.append('  subgraph cluster_legend { label="legend"; fontname="Helvetica";')
        lines += [f'    legend_{k} [label="{label}", fillcolor="{color}"];' for k, (label, color) in
                  enumerate(legend.items())]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _depths(nodes: dict, edges: list[tuple[str, str]]) -> dict[str, int]:
    depth = {n: 0 for n in nodes}
    for _ in range(len(nodes)):
        changed = False
        for a, b in edges:
            if depth[b] < depth[a] + 1:
                depth[b], changed = depth[a] + 1, True
        if not changed:
            break
    return depth


def _components(nodes: dict, edges: list[tuple[str, str]]) -> list[list[str]]:
    """Weakly connected components, in the nodes' order (the CNN's normal and reduction cells)."""
    comp = {n: n for n in nodes}

    def root(n: str) -> str:
        while comp[n] != n:
            comp[n] = comp[comp[n]]
            n = comp[n]
        return n

    for a, b in edges:
        comp[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _render_component(nodes: dict, edges: list[tuple[str, str]], font) -> Image.Image:
    """One connected graph top-down, one row per depth, each row ordered by its parents' positions."""
    depth = _depths(nodes, edges)
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(depth[n], []).append(n)
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
    bw, bh, gx, gy = 90, 36, 24, 46
    width = max(len(r) for r in rows.values()) * (bw + gx) + gx
    img = Image.new("RGB", (max(width, 120), len(rows) * (bh + gy) + 10), "white")
    draw = ImageDraw.Draw(img)
    pos: dict[str, tuple[int, int]] = {}
    for d, names in sorted(rows.items()):
        if d > 0:  # barycentre ordering: fewer crossings
            names.sort(key=lambda n: sum(pos[p][0] for p in parents[n]) / max(len(parents[n]), 1))
        x0 = (img.width - len(names) * (bw + gx) + gx) // 2
        for k, n in enumerate(names):
            pos[n] = (x0 + k * (bw + gx), d * (bh + gy) + 4)
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        start, end = (xa + bw // 2, ya + bh), (xb + bw // 2, yb)
        draw.line([start, end], fill="black", width=1)
        draw.polygon([(end[0], end[1]), (end[0] - 4, end[1] - 8), (end[0] + 4, end[1] - 8)], fill="black")
    for n, (x, y) in pos.items():
        label, color = nodes[n]
        draw.rectangle([x, y, x + bw, y + bh], fill=color, outline="black")
        draw.multiline_text((x + bw // 2, y + bh // 2), label, fill="black", font=font, anchor="mm", align="center")
    return img


STRUCTURE = {"add", "avg", "normal", "reduce"}  # first label lines of the nodes that are not ops/activations


def _legend(nodes: dict[str, tuple[str, str]]) -> dict[str, str]:
    """``{op or activation: colour}`` of the nodes that are ops or activations."""
    legend: dict[str, str] = {}
    for label, color in nodes.values():
        first = label.split("\n")[0]
        if first not in STRUCTURE and not first.startswith(("x[", "h[")):
            legend.setdefault(first, color)
    return legend


def render_png(nodes: dict[str, tuple[str, str]], edges: list[tuple[str, str]], title: str = "") -> Image.Image:
    """Draw the graph with Pillow: each connected part (a CNN's normal and reduction cell) top-down,
    side by side, and a legend of the ops / activations used."""
    font = ImageFont.load_default()
    parts = []
    for names in _components(nodes, edges):
        keep = set(names)
        parts.append(_render_component({n: nodes[n] for n in names}, [(a, b) for a, b in edges if a in keep],
                                       font))
    legend = _legend(nodes)
    top = 24 if title else 6
    gap, legend_h = 30, 26 if legend else 0
    width = sum(p.width for p in parts) + gap * (len(parts) - 1) + 16
    img = Image.new("RGB", (max(width, 200), top + max(p.height for p in parts) + legend_h + 6), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((8, 6), title, fill="black", font=font)
    x = 8
    for p in parts:
        img.paste(p, (x, top))
        x += p.width + gap
    x, y = 8, img.height - legend_h
    for label, color in legend.items():
        draw.rectangle([x, y + 4, x + 14, y + 18], fill=color, outline="black")
        draw.text((x + 18, y + 5), label, fill="black", font=font)
        x += 26 + int(draw.textlength(label, font=font)) + 12
    return img


def _render_dot(dot: Path, png: Path) -> bool:
    """Render ``dot`` with Graphviz when it is installed; False when it is not or fails."""
    exe = shutil.which("dot")
    if exe is None:
        return False
    try:
        atomic_write(png, lambda tmp: subprocess.run([exe, "-Tpng", str(dot), "-o", tmp], check=True,
                                                     capture_output=True, timeout=60))
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def save_cell_drawing(nodes: dict, edges: list, stem: str | Path, title: str = "") -> tuple[Path, Path]:
    """Write ``stem.dot`` and ``stem.png`` atomically (the PNG by Graphviz ``dot`` when it is installed, else
    by :func:`render_png`); return both paths."""
    stem = Path(stem)
    dot = stem.with_suffix(".dot")
    png = stem.with_suffix(".png")
    text = to_dot(nodes, edges, stem.name, title.replace('"', "'"))
    atomic_write(dot, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    if not _render_dot(dot, png):
        img = render_png(nodes, edges, title)
        atomic_write(png, lambda tmp: img.save(tmp, format="PNG"))
    return dot, png
