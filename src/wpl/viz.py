"""Cell drawings from a node/edge list (each space builds its own, see ``rnn_graph`` and
``micro_graph``): Graphviz ``.dot`` text (render it anywhere) and a PNG drawn with Pillow (no
Graphviz needed), laid out top-down by depth."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .fileio import atomic_write

INPUT_COLOR, STATE_COLOR, JOIN_COLOR = "#ffffff", "#87ceeb", "#43cd80"
Graph = tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]  # nodes {id: (label, colour)}, edges


def to_dot(nodes: dict[str, tuple[str, str]], edges: list[tuple[str, str]], name: str = "cell") -> str:
    """Graphviz source for a node/edge list."""
    lines = [f'digraph "{name}" {{', "  rankdir=TB;", '  node [shape=box, style=filled, fontname="Helvetica"];']
    for nid, (label, color) in nodes.items():
        text = label.replace("\n", "\\n")
        lines.append(f'  {nid} [label="{text}", fillcolor="{color}"];')
    lines += [f"  {a} -> {b};" for a, b in edges]
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


def render_png(nodes: dict[str, tuple[str, str]], edges: list[tuple[str, str]], title: str = "") -> Image.Image:
    """Draw the graph top-down (one row per depth) with Pillow."""
    depth = _depths(nodes, edges)
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(depth[n], []).append(n)
    font = ImageFont.load_default()
    bw, bh, gx, gy, top = 90, 36, 24, 46, 30 if title else 12
    width = max(len(r) for r in rows.values()) * (bw + gx) + gx
    height = top + len(rows) * (bh + gy) + 10
    img = Image.new("RGB", (max(width, 200), height), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((8, 8), title, fill="black", font=font)
    pos = {}
    for d, names in sorted(rows.items()):
        x0 = (img.width - len(names) * (bw + gx) + gx) // 2
        for k, n in enumerate(names):
            pos[n] = (x0 + k * (bw + gx), top + d * (bh + gy))
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


def save_cell_drawing(nodes: dict, edges: list, stem: str | Path, title: str = "") -> tuple[Path, Path]:
    """Write ``stem.dot`` and ``stem.png`` atomically; return both paths."""
    stem = Path(stem)
    dot = stem.with_suffix(".dot")
    png = stem.with_suffix(".png")
    text = to_dot(nodes, edges, stem.name)
    atomic_write(dot, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    img = render_png(nodes, edges, title)
    atomic_write(png, lambda tmp: img.save(tmp, format="PNG"))
    return dot, png
