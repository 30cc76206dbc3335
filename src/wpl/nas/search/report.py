"""The paper's ENAS figure and a comparison table, drawn from search runs' own logs.

``load_run`` reads a run folder (``config.json``, ``metrics.jsonl``, ``summary.json`` and, when it
exists, ``final/``); ``plot_runs`` draws the four panels — mean forgetting, mean forgetting of the
``top_k`` best, max forgetting per epoch (in the task's unit, or in loss with ``unit="loss"``) and
the controller's mean reward — for runs overlaid (``final=True`` adds the final-training curves);
``compare_runs`` tabulates the settings that differ, forgetting over the WPL epochs, the best
derived cell and the final-training score.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from wpl.errors import WplError
from wpl.plots import pyplot, save_figure
from wpl.rundir import RunDir

from ..configs import saved_flags


@dataclass
class RunData:
    """What one search run logged."""

    path: Path
    config: dict  # its flags, by flag name (config.json, flattened)
    epochs: list[dict]  # the "epoch" events
    forgetting: list[dict]  # the "forgetting" events
    summary: dict | None
    final: dict | None = None  # final/summary.json
    final_epochs: list[dict] = field(default_factory=list)
    fisher: list[dict] = field(default_factory=list)  # the "fisher" events (Fisher mass per group)

    @property
    def metric(self) -> str:
        """The unit of the run's scores (``ppl`` or ``error``): the summary's, else its space's."""
        from .. import spaces
        from ..config import RunConfig

        kind = self.config.get("network_type", RunConfig.network_type)
        return (self.summary or {}).get("metric") or spaces.get(kind).metric

    @property
    def wpl_from(self) -> int:
        """The first epoch WPL is (or, with ``--use_wpl=False``, would be) on."""
        return int(self.config.get("start_using_fisher", 0))


def _events(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise WplError(f"{path}:{n}: not a JSON line ({exc.msg})") from exc
    return out


def load_run(path: Path) -> RunData:
    """A search run's logs; WplError when ``path`` is not a run folder."""
    run = RunDir(path)
    if not run.config.is_file() or not run.metrics.is_file():
        raise WplError(f"{path}: not a search run (it needs config.json and metrics.jsonl); name a folder under "
                       "--log_dir that `wpl search` wrote")
    events = _events(run.metrics)
    return RunData(path, saved_flags(run.read_config()),
                   [e for e in events if e.get("event") == "epoch"],
                   [e for e in events if e.get("event") == "forgetting"], run.read_summary(), run.final.read_summary(),
                   [e for e in _events(run.final.metrics) if e.get("event") == "final_epoch"],
                   [e for e in events if e.get("event") == "fisher"])


def run_status(path: Path) -> dict:
    """One line of ``wpl runs``: the run's space, epochs done of its max, best derived score, and state —
    running (a process holds it), finished (all its epochs done) or interrupted."""
    from wpl.runlock import is_locked

    run = load_run(path)
    s = run.summary or {}
    done = int(s.get("epochs_done", len(run.epochs)))
    total = int(run.config.get("max_epoch", s.get("max_epoch", 0)))
    best = s.get("best_valid")
    if best is None:  # no summary yet: the best derived cell of the finished epochs (their epoch events)
        best = min((e["valid"] for e in run.epochs if isinstance(e.get("valid"), (int, float))), default=None)
    state = "running" if is_locked(path) else "finished" if run.summary and done >= total else "interrupted"
    return {"run": path.name, "space": run.config.get("network_type"), "epochs": f"{done}/{total}",
            "best": best, "metric": run.metric, "state": state}


def _series(run: RunData, key: str) -> tuple[list[int], list[float]]:
    pts = [(e["epoch"], e.get(key)) for e in run.forgetting]
    pts = [(x, y) for x, y in pts if isinstance(y, (int, float)) and math.isfinite(y)]
    return [x for x, _ in pts], [y for _, y in pts]


def plot_runs(runs: list[RunData], labels: list[str], output: Path, unit: str = "metric",
              final: bool = False) -> Path:
    """The four panels (five with ``final``) of the runs overlaid; returns the PNG written."""
    plt = pyplot()

    prefix = "loss_" if unit == "loss" else ""
    unit_name = "loss (nats)" if unit == "loss" else runs[0].metric
    panels = [(f"{prefix}diff_mean", "mean forgetting"), (f"{prefix}diff_best_mean", "mean forgetting, best {k}"),
              (f"{prefix}diff_max", "max forgetting")]
    n = 5 if final else 4
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    axes = axes[0]
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        color = f"C{i}"
        k = run.forgetting[0].get("top_k", 5) if run.forgetting else 5
        for ax, (key, title) in zip(axes, panels):
            xs, ys = _series(run, key)
            ax.plot(xs, ys, color=color, lw=1.5, marker="o", ms=3, label=label)
            ax.set_title(title.format(k=k))
        xs = [e["epoch"] for e in run.epochs if e.get("reward") is not None]
        axes[3].plot(xs, [e["reward"] for e in run.epochs if e.get("reward") is not None], color=color, lw=1.5,
                     marker="o", ms=3, label=label)
        last = max((e["epoch"] for e in run.epochs), default=-1)
        if run.config.get("use_wpl", True) and run.wpl_from <= last:
            for ax in axes[:4]:
                ax.axvline(run.wpl_from, color=color, lw=0.8, ls=":", alpha=0.7)
        if final and run.final_epochs:
            axes[4].plot([e["epoch"] for e in run.final_epochs], [e["valid"] for e in run.final_epochs],
                         color=color, lw=1.5, label=f"{label}: test {run.final['test']:.4g}" if run.final else label)
    for ax in axes[:3]:
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_ylabel(f"err2 − err1, {unit_name}")
    axes[3].set_title("controller's mean reward")
    axes[3].set_ylabel("reward")
    if final:
        axes[4].set_title("final training: validation")
        axes[4].set_ylabel(runs[0].metric)
        axes[4].set_xlabel("final-training epoch")
    for ax in axes[:4]:
        ax.set_xlabel("search epoch")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    if final:
        axes[4].legend(fontsize=8)
    fig.suptitle("forgetting during the search (positive: an architecture got worse while the others trained; "
                 "dotted: WPL on)", fontsize=10)
    return save_figure(fig, output)


def _ignored() -> set[str]:
    """Settings that never say anything about the method: the run's name and the flags a resumed run takes from
    its command line (where it runs, logging, this command's own), but for how long it trains and derives."""
    from ..configs import flag_fields

    resumable = {name for name, f in flag_fields().items() if f.metadata["on_resume"] != "saved"}
    return (resumable - {"max_epoch", "save_epoch"}) | {"model_name", "comment"}


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def compare_runs(runs: list[RunData], labels: list[str]) -> dict:
    """The comparison as data: differing settings and, per run, its forgetting and scores."""
    keys = sorted({k for r in runs for k in r.config} - _ignored())
    differ = {k: [r.config.get(k) for r in runs] for k in keys
              if len({json.dumps(r.config.get(k), sort_keys=True) for r in runs}) > 1}
    rows = []
    for run, label in zip(runs, labels, strict=True):
        active = [e for e in run.forgetting if e["epoch"] >= run.wpl_from]
        s = run.summary or {}
        rows.append({
            "run": label, "path": str(run.path), "metric": run.metric, "epochs": len(run.epochs),
            "wpl_epochs": (f"{run.wpl_from}+" if run.config.get("use_wpl", True)
                           else f"none (compared from {run.wpl_from})"),
            "forgetting_mean": _mean([e.get("diff_mean") for e in active]),
            "forgetting_best_mean": _mean([e.get("diff_best_mean") for e in active]),
            "forgetting_max": _mean([e.get("diff_max") for e in active]),
            "loss_forgetting_mean": _mean([e.get("loss_diff_mean") for e in active]),
            "best_valid": s.get("best_valid"), "supernet_test": s.get("test"),
            "final_test": (run.final or {}).get("test"), "final_params": (run.final or {}).get("params"),
        })
    return {"settings_that_differ": differ, "runs": rows}


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def compare_markdown(cmp: dict, labels: list[str]) -> str:
    """The comparison as two markdown tables."""
    lines = []
    if cmp["settings_that_differ"]:
        lines += ["| setting | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        lines += [f"| `{k}` | " + " | ".join(_fmt(v) for v in vals) + " |"
                  for k, vals in cmp["settings_that_differ"].items()]
    else:
        lines.append("(every learning setting is the same)")
    m = cmp["runs"][0]["metric"]
    lines += ["", f"| run | epochs | WPL epochs | forgetting mean ({m}) | mean of best 5 | max | mean (loss) | "
              f"best derived: valid | supernet test | final test | final params |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in cmp["runs"]:
        lines.append(f"| {r['run']} | {r['epochs']} | {r['wpl_epochs']} | {_fmt(r['forgetting_mean'])} | "
                     f"{_fmt(r['forgetting_best_mean'])} | {_fmt(r['forgetting_max'])} | "
                     f"{_fmt(r['loss_forgetting_mean'])} | {_fmt(r['best_valid'])} | {_fmt(r['supernet_test'])} | "
                     f"{_fmt(r['final_test'])} | {_fmt(r['final_params'])} |")
    return "\n".join(lines) + "\n"
