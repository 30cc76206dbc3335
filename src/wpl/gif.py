"""An animated GIF of how the derived cell evolved over a search: ``generate_gif.py`` / ``wpl gif``.

Frames are the run's ``networks/epoch_XXX.png`` drawings in epoch order (at most ``max_frame``,
evenly spaced, always keeping the last), each centred on a white canvas of the largest frame's
size, with a caption naming the epoch.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .errors import WplError
from .fileio import atomic_write, ensure_writable_dir
from .rundir import RunDir


def pick_frames(paths: list[Path], max_frame: int) -> list[Path]:
    """At most ``max_frame`` of ``paths``, evenly spaced, first and last included."""
    if max_frame < 1:
        raise WplError(f"--max_frame must be >= 1, got {max_frame}")
    if len(paths) <= max_frame:
        return list(paths)
    if max_frame == 1:
        return [paths[-1]]
    step = (len(paths) - 1) / (max_frame - 1)
    return [paths[round(k * step)] for k in range(max_frame)]


def make_gif(run_dir: str | Path, output: str | Path, max_frame: int = 50, title: str = "",
             frame_ms: int = 500) -> Path:
    """Write the GIF of ``run_dir``'s derived cells to ``output``; return its path."""
    run_dir, output = Path(run_dir), Path(output)
    if output.suffix.lower() != ".gif":
        raise WplError(f"--output={output}: the file name must end in .gif")
    nets = RunDir(run_dir).networks
    if not nets.is_dir():
        raise WplError(f"{run_dir}: no networks/ folder; is it a search run folder (logs/<model_name>)?")
    paths = sorted(nets.glob("epoch_*.png"))
    if not paths:
        raise WplError(f"{nets}: no epoch_XXX.png drawings yet (they are written every --save_epoch)")
    names = pick_frames(paths, max_frame)
    frames = [Image.open(p).convert("RGB") for p in names]
    width = max(f.width for f in frames)
    height = max(f.height for f in frames) + 40
    font = ImageFont.load_default()
    canvas = []
    for path, frame in zip(names, frames):
        img = Image.new("RGB", (width, height), "white")
        img.paste(frame, ((width - frame.width) // 2, 40 + (height - 40 - frame.height) // 2))
        match = re.search(r"epoch_(\d+)", path.name)
        caption = f"{title}  epoch {int(match.group(1))}" if match else f"{title}  {path.stem}"
        ImageDraw.Draw(img).text((10, 12), caption.strip(), fill="black", font=font)
        canvas.append(img.convert("P", palette=Image.ADAPTIVE))
    ensure_writable_dir(output.parent if str(output.parent) else ".", "output")
    atomic_write(output, lambda tmp: canvas[0].save(tmp, format="GIF", save_all=True, append_images=canvas[1:],
                                                    duration=frame_ms, loop=0))
    return output
