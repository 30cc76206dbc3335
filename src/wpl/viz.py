"""Cell drawings: Graphviz ``.dot`` text (render it anywhere) and a PNG drawn with Pillow
(no Graphviz needed), laid out top-down by depth."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .fileio import atomic_write

COLORS = {"tanh": "#ffff66", "relu": "#ffc0cb", "identity": "#ffa500", "sigmoid": "#adff2f",
          "avg": "#43cd80", "input": "#ffffff", "hidden": "#87ceeb"}


def rnn_graph(arch) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """Nodes ``{id: (label, color)}`` and edges of an RNN cell, inputs first."""
    nodes = {"x": ("x[t]", COLORS["input"]), "hprev": ("h[t-1]", COLORS["hidden"])}
    edges = [("x", "n0"), ("hprev", "n0")]
    for j, act in enumerate(arch.activations):
        nodes[f"n{j}"] = (f"{act}\n({j})", COLORS.get(act, "#ffffff"))
    edges += [(f"n{p}", f"n{j}") for p, j in arch.edges()]
    nodes["avg"] = ("avg", COLORS["avg"])
    nodes["h"] = ("h[t]", COLORS["hidden"])
    edges += [(f"n{i}", "avg") for i in arch.leaves()] + [("avg", "h")]
    return nodes, edges


OP_STYLE = {"identity": ("identity", "#ffa500"), "sep_conv_3x3": ("sep 3x3", "#ffc0cb"),
            "sep_conv_5x5": ("sep 5x5", "#ff8fa3"), "avg_pool_3x3": ("avg 3x3", "#43cd80"),
            "max_pool_3x3": ("max 3x3", "#87ceeb")}


def micro_graph(arch) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """Both cells of a micro-CNN architecture: inputs, one node per op, the blocks' sums, the concat."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []
    for tag, cell in (("normal", arch.normal), ("reduce", arch.reduce)):
        p = tag[0]
        nodes[f"{p}in0"] = (f"{tag}\nx[t-1]", COLORS["input"])
        nodes[f"{p}in1"] = (f"{tag}\nx[t]", COLORS["input"])
        src = {0: f"{p}in0", 1: f"{p}in1"}
        for b, (i1, o1, i2, o2) in enumerate(cell):
            add = f"{p}b{b}"
            nodes[add] = (f"add\n(block {b})", "#e8e8e8")
            for slot, (i, op) in enumerate(((i1, o1), (i2, o2))):
                op_id = f"{p}b{b}op{slot}"
                nodes[op_id] = OP_STYLE.get(op, (op, "#ffffff"))
                edges += [(src[i], op_id), (op_id, add)]
            src[b + 2] = add
        nodes[f"{p}out"] = (f"{tag}\nconcat", COLORS["avg"])
        edges += [(f"{p}b{b}", f"{p}out") for b in type(arch).loose_ends(cell)]
    return nodes, edges


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
