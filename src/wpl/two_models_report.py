"""Run the two-model experiment end to end, without argparse: load MNIST, run the settings, write
``two_models.json`` and ``two_models.png``, print a table (what ``wpl two-models`` and the first half
of ``wpl demo`` do)."""

from __future__ import annotations

import time
from pathlib import Path

from .errors import ConfigError
from .two_models import SETTINGS, TwoModelsConfig, run_two_models


def run_experiment(cfg: TwoModelsConfig, output_dir: str | Path, *, data_dir: str | None = None,
                   valid_size: int | None = None, settings: tuple[str, ...] = SETTINGS,
                   device: str = "auto") -> dict:
    """The experiment on MNIST in ``data_dir`` (the embedded subset when None); returns the result."""
    from .data.mnist import load_mnist
    from .fileio import ensure_writable_dir, write_json
    from .plots import plot_two_models
    from .runtime import resolve_device, seed_everything

    dev = resolve_device(device)
    out = ensure_writable_dir(output_dir)
    valid_size = valid_size if valid_size is not None else (5000 if data_dir else 1000)
    data = load_mnist(data_dir, valid_size=valid_size, seed=cfg.seed)
    if cfg.fisher_samples > len(data.valid_y):
        raise ConfigError("fisher_samples", cfg.fisher_samples,
                          f"exceeds the {len(data.valid_y)} validation images (lower it, or raise valid_size)")
    for name in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y"):
        setattr(data, name, getattr(data, name).to(dev))
    seed_everything(cfg.seed)
    start = time.time()
    result = run_two_models(cfg, data, settings)
    result["device"] = str(dev)
    result["seconds"] = round(time.time() - start, 1)
    png = plot_two_models(result, out / "two_models.png")
    js = write_json(out / "two_models.json", result)
    print(format_table(result))
    print(f"wrote {js} and {png} ({result['seconds']:.0f} s on {dev})")
    return result


def format_table(result: dict) -> str:
    """A short text table of the runs."""
    head = (f"{'setting':<8} {'A before':>8} {'A plain':>8} {'A WPL':>8} {'B plain':>8} {'B WPL':>8} "
            f"{'forget plain':>12} {'forget WPL':>10} {'cut':>6}")
    lines = [f"dataset: {result['dataset']}", head]
    for r in result["runs"]:
        red = r.get("forgetting_reduction")
        lines.append(
            f"{r['convergence']:<8} {r['a_acc_before']:>8.3f} {r['plain']['a_acc_after']:>8.3f} "
            f"{r['wpl']['a_acc_after']:>8.3f} {r['plain']['b_acc']:>8.3f} {r['wpl']['b_acc']:>8.3f} "
            f"{r['forgetting_plain']:>12.3f} {r['forgetting_wpl']:>10.3f} "
            f"{'n/a' if red is None else f'{100 * red:.0f}%':>6}"
        )
        if "l2" in r:
            lines.append(f"{'':<8} L2-to-anchor baseline: A {r['l2']['a_acc_after']:.3f}, B {r['l2']['b_acc']:.3f}")
    return "\n".join(lines)
