"""What the ``reproduce_*.py`` scripts share: flags, resumable steps, mean ± std, targets, the JSON."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from wpl.fileio import kept_or_changed, write_json

RESULTS = Path(__file__).resolve().parents[1] / "results"


def parser(description: str) -> argparse.ArgumentParser:
    """``--data_dir``, ``--output_dir``, ``--quick``, ``--seeds``, ``--work_dir`` (every script has them)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data_dir", required=True, help="one folder holding ptb/, mnist/ and cifar10/")
    ap.add_argument("--output_dir", default=str(RESULTS), help="where reproduce_<name>.json and figures go")
    ap.add_argument("--quick", action="store_true", help="the same comparison in <= 10 minutes, 1 seed")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: 0 quick, 0-2 or more full)")
    ap.add_argument("--work_dir", default=None,
                    help="where runs and per-step results are kept for resuming (default OUTPUT_DIR/work_<name>)")
    return ap


def seeds(args: argparse.Namespace, full: str) -> list[int]:
    """The seeds to run: ``--seeds``, else 0 in quick mode, else ``full``."""
    text = args.seeds or ("0" if args.quick else full)
    return [int(s) for s in text.split(",")]


def work_dir(args: argparse.Namespace, name: str) -> Path:
    """The folder for this script's resumable state (one per mode, so quick never reuses full)."""
    root = Path(args.work_dir) if args.work_dir else Path(args.output_dir) / f"work_{name}"
    path = root / ("quick" if args.quick else "full")
    path.mkdir(parents=True, exist_ok=True)
    return path


def same_setup(work: Path, setup: dict) -> None:
    """Resuming only continues the same comparison: ``setup`` (flags, variants, grids) is kept in the work
    folder on first use, and a later run with another setup is refused instead of mixing results."""
    if changed := kept_or_changed(work / "setup.json", setup):
        raise SystemExit(f"{work} holds results of another setup (changed: {', '.join(changed)}); delete that "
                         "folder to start over, or pass another --work_dir")


def kept(args: argparse.Namespace, name: str, setup: dict) -> Path:
    """The folder of finished per-seed results, ``OUTPUT_DIR/reproduce_<name>[_quick]_seeds``: small JSON
    files meant to be committed, so a comparison that spans sessions or machines continues from a fresh
    clone (the run folders under ``--work_dir`` are scratch). Tied to ``setup`` like the work folder."""
    path = Path(args.output_dir) / f"reproduce_{name}{'_quick' if args.quick else ''}_seeds"
    path.mkdir(parents=True, exist_ok=True)
    same_setup(path, setup)
    return path


def step(path: Path, compute: Callable[[], dict]) -> dict:
    """``compute()``'s result, kept in ``path``: a rerun reads it back instead of computing it again. Its
    ``seconds`` is this call's wall time: a computation that resumed from an earlier call counts only its end."""
    if path.exists():
        return json.loads(path.read_text())
    start = time.time()
    result = compute()
    result["seconds"] = round(time.time() - start, 1)
    write_json(path, result)
    return result


def mean_std(values: list[float]) -> dict:
    """``{"mean", "std", "n", "values"}`` (std 0 for one value; NaNs dropped and counted out)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return {"mean": None, "std": None, "n": 0, "values": []}
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals), "values": vals}


def fmt(ms: dict, digits: int = 3, scale: float = 1.0, sign: bool = False) -> str:
    """A mean ± std dict as text (``sign``: the mean with its + or −)."""
    if ms["mean"] is None:
        return "n/a"
    return f"{ms['mean'] * scale:{'+' if sign else ''}.{digits}f} ± {ms['std'] * scale:.{digits}f}"


def target(name: str, value: object, goal: str, met: bool | None) -> dict:
    """One entry of the JSON's ``targets`` list."""
    return {"name": name, "value": value, "target": goal, "met": met}


def out_path(args: argparse.Namespace, name: str, ext: str) -> Path:
    """``OUTPUT_DIR/reproduce_<name>[_quick].<ext>`` (the folder made if need be): a quick run never
    overwrites the full results."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out / f"reproduce_{name}{'_quick' if args.quick else ''}.{ext}"


def command_line(module: str, args: argparse.Namespace) -> str:
    """``python -m MODULE --flag value ...`` as ``args`` ran it, the home folder written ``~``: the command a result
    file records."""
    flags = " ".join(f"--{k} {v}" for k, v in vars(args).items())
    return f"python -m {module} {flags}".replace(str(Path.home()), "~")


def finish(args: argparse.Namespace, name: str, payload: dict, seconds: float) -> Path:
    """Write ``reproduce_<name>.json`` (mode, and ``seconds``: the compute time the caller counted)."""
    payload = {"name": name, "mode": "quick" if args.quick else "full", **payload, "seconds": round(seconds, 1)}
    path = write_json(out_path(args, name, "json"), payload)
    for t in payload.get("targets", []):
        mark = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        print(f"[{mark}] {t['name']}: {t['value']} (target {t['target']})")
    print(f"wrote {path} ({payload['seconds']:.0f} s)")
    return path


# two-sided 95% quantiles of Student's t by degrees of freedom (1–30; beyond, the normal's 1.96)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def table_head(*columns: str) -> list[str]:
    """A markdown table's header line and its separator."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def paired_diff(a: list, b: list) -> dict:
    """``a − b`` paired by position (pairs with a missing value dropped): mean, std, n, the 95% t-interval
    ``[lo, hi]`` of the mean difference (None for fewer than 2 pairs) and the differences."""
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)
         if x is not None and y is not None and not math.isnan(float(x)) and not math.isnan(float(y))]
    out = {**mean_std(d), "lo": None, "hi": None}
    if len(d) > 1:
        half = (T975[len(d) - 2] if len(d) - 1 <= len(T975) else 1.96) * out["std"] / math.sqrt(len(d))
        out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    return out


def fmt_diff(pd: dict, digits: int = 3) -> str:
    """A paired difference as ``+0.012 [−0.004, +0.028]``."""
    if pd["lo"] is None:
        return "n/a" if pd["mean"] is None else f"{pd['mean']:+.{digits}f}"
    return f"{pd['mean']:+.{digits}f} [{pd['lo']:+.{digits}f}, {pd['hi']:+.{digits}f}]"
