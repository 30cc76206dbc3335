"""Cell drawings: Graphviz when ``dot`` is installed (else Pillow), both CNN cells side by side, a legend."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from PIL import Image

from wpl.nas.presets import PRESETS
from wpl.nas.spaces.micro_cnn.supernet import micro_graph
from wpl.nas.spaces.rnn.supernet import rnn_graph
from wpl.viz import _components, render_png, save_cell_drawing


def test_cnn_cells_are_drawn_side_by_side_with_a_legend() -> None:
    nodes, edges = micro_graph(PRESETS["enas-cifar10"].arch)
    parts = _components(nodes, edges)
    assert len(parts) == 2 and all(any(n.startswith(p) for n in part) for p, part in zip("nr", parts))
    img = render_png(nodes, edges, "t")
    one = render_png({n: nodes[n] for n in parts[0]}, [(a, b) for a, b in edges if a in set(parts[0])])
    assert img.width > 1.8 * one.width and img.height < 1.5 * one.height  # beside, not below
    # the legend row (bottom) holds a swatch of every op colour used
    legend = img.crop((0, img.height - 24, img.width, img.height)).convert("RGB")
    colours = {c for _, c in legend.getcolors(1 << 16)}
    for op in ("#43cd80", "#87ceeb", "#ffa500", "#ffc0cb", "#ff8fa3"):
        assert tuple(int(op[i:i + 2], 16) for i in (1, 3, 5)) in colours, op


def _fake_dot(folder: Path, ok: bool) -> None:
    """A `dot` on PATH that writes a 7×5 PNG (or fails)."""
    script = folder / "dot"
    body = ("from PIL import Image; import sys; Image.new('RGB', (7, 5)).save(sys.argv[sys.argv.index('-o') + 1], "
            "format='PNG')") if ok else "import sys; sys.exit(3)"
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_graphviz_renders_when_installed_and_pillow_otherwise(tmp_path: Path, monkeypatch) -> None:
    nodes, edges = rnn_graph(PRESETS["enas-ptb"].arch)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _fake_dot(bin_dir, ok=True)
    _, png = save_cell_drawing(nodes, edges, tmp_path / "a", "title")
    assert Image.open(png).size == (7, 5)
    _fake_dot(bin_dir, ok=False)  # a failing Graphviz: the Pillow drawing instead
    _, png = save_cell_drawing(nodes, edges, tmp_path / "b", "title")
    assert Image.open(png).size[1] > 100
    assert 'label="title"' in (tmp_path / "b.dot").read_text()
