"""A study's results from its records: every run's metrics recomputed from its scores and the cells' truth, per
arm mean ± sd, each declared comparison with its interval, Holm-adjusted p, detectable effect and verdict, the
no-training references on the same cells; ``study.json``, ``report.md`` and two figures."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path

import numpy as np

from wpl.fileio import write_json, write_text
from wpl.nas.rank import METRIC_COLUMNS, kendall_components, rank_metrics
from wpl.stats import PAIRS_MOST, compare_family, paired, t_ppf

from .robustness import robustness
from .runs import read_gz_json, record_path, samples
from .spec import Spec

NAMES = {"kendall_tau": "Kendall τ", "spearman": "Spearman ρ", "sparse_kendall_tau": "sparse τ",
         "tau_top10": "τ top-10%", "p_at_top5": "P@5%", "p_at_top10": "P@10%", "top1_true_acc": "top-1 true acc"}
INTERIM = "**Interim:"  # how an interim report's status line begins (tools/quotes.py refuses to quote one)
REFERENCES = ("parameter_count", "flops", "jacob_cov", "one_shot", "few_shot")


def _ms(values: list) -> dict:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return {"mean": statistics.fmean(vals) if vals else None,
            "sd": statistics.stdev(vals) if len(vals) > 1 else None, "n": len(vals)}


def with_cells_variance(c: dict, d: np.ndarray | None) -> dict:
    """``c`` (a paired comparison over seeds on fixed cells) with ``cells_se`` — the standard error its mean
    difference owes to which cells were drawn, from ``d`` (per cell, the seeds' mean difference of their τ
    components; :func:`~wpl.nas.rank.kendall_components`) — and the interval over seeds and cells, ``lo_cells``
    / ``hi_cells``: mean ± t·sqrt(sd²/n + cells_se²)."""
    c = {**c, "cells_se": None, "lo_cells": None, "hi_cells": None}
    if d is None or c["lo"] is None or len(d) < 2:
        return c
    se_cells = math.sqrt(4.0 * float(np.var(d, ddof=1)) / len(d))
    half = t_ppf(0.975, c["n"] - 1) * math.sqrt(c["sd"] ** 2 / c["n"] + se_cells ** 2)
    return {**c, "cells_se": se_cells, "lo_cells": c["mean"] - half, "hi_cells": c["mean"] + half}


def run_metrics(spec: Spec, out: Path) -> tuple[dict, dict]:
    """``({(seed, arm): {sample: metrics}}, cells file)`` for every record present."""
    cells_path = out / "cells.json.gz"
    if not cells_path.exists():
        return {}, {}
    cells = read_gz_json(cells_path)
    runs = {}
    for seed in spec.seeds:
        for arm in spec.arms:
            p = record_path(out, seed, arm.name)
            if p.exists():
                rec = read_gz_json(p)
                runs[(seed, arm.name)] = {name: (dict.fromkeys(METRIC_COLUMNS) if rec.get("failed") else
                                                 rank_metrics(rec["scores"][name], cells[name]["truth"]))
                                          for name in samples(spec)}
                runs[(seed, arm.name)]["machine"] = machine_label(rec.get("machine"))
                if rec.get("failed"):
                    runs[(seed, arm.name)]["failed"] = rec["failed"]
                elif spec.primary == "kendall_tau":  # each cell's share of τ: the cells' sampling variance
                    runs[(seed, arm.name)]["h"] = kendall_components(rec["scores"]["cells"],
                                                                     cells["cells"]["truth"])
    return runs, cells


def machine_label(m: dict | None) -> str:
    """A record's machine in one phrase (records written before 2026-12-07 do not name theirs)."""
    if not m:
        return "not recorded"
    extra = [m[k] for k in ("capability", "gpu") if m.get(k)]
    extra += [f"torch {m['torch']}"] if "torch" in m else []
    extra += [f"{m['threads']} threads"] if "threads" in m else []
    return f"{m.get('cpu', '?')}" + (f" ({', '.join(extra)})" if extra else "")


def analyse(spec: Spec, out: Path) -> dict:
    """Everything ``study.json`` holds."""
    runs, cells = run_metrics(spec, out)
    expected = len(spec.seeds) * len(spec.arms)
    seeds_done = [s for s in spec.seeds if all((s, a.name) in runs for a in spec.arms)]

    def values(arm: str, metric: str, sample: str = "cells") -> list:
        return [runs[(s, arm)][sample][metric] for s in seeds_done]

    result: dict = {"name": spec.name, "complete": len(runs) == expected, "runs_done": len(runs),
                    "runs_expected": expected, "seeds_done": seeds_done, "alpha": spec.alpha, "power": spec.power,
                    "delta": spec.delta, "primary": spec.primary, "secondary": list(spec.secondary)}
    if not seeds_done:
        return result
    refs = {name: {r: rank_metrics(cells[name]["reference"][r], cells[name]["truth"]) for r in REFERENCES}
            for name in samples(spec)}
    result["references"] = refs
    result["arms"] = {a.name: {name: {m: _ms(values(a.name, m, name)) for m in METRIC_COLUMNS}
                               for name in samples(spec)} for a in spec.arms}

    def components(a: str, b: str | np.ndarray) -> np.ndarray | None:
        """Per cell, the seeds' mean of arm a's τ components minus b's (an arm, or fixed components)."""
        pairs = [(runs[(s, a)].get("h"), runs[(s, b)].get("h") if isinstance(b, str) else b) for s in seeds_done]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        return np.mean([x - y for x, y in pairs], axis=0) if pairs else None

    families = {}
    for metric in (spec.primary, *spec.secondary):
        rows = [(c.name, values(c.a, metric), values(c.b, metric)) for c in spec.comparisons]
        fam = compare_family(rows, spec.alpha, spec.power, spec.delta if metric == spec.primary else None)
        for k, (c, row) in enumerate(zip(spec.comparisons, fam, strict=True)):
            row.update(a=c.a, b=c.b, note=c.note)
            if metric == "kendall_tau" == spec.primary:
                fam[k] = with_cells_variance(row, components(c.a, c.b))
        families[metric] = fam
        if metric == spec.primary:
            result["robustness"] = robustness(rows, fam, spec.alpha, spec.power, spec.delta)
    result["comparisons"] = families
    base = refs["cells"]["parameter_count"][spec.primary]
    counted = (kendall_components(cells["cells"]["reference"]["parameter_count"], cells["cells"]["truth"])
               if spec.primary == "kendall_tau" else None)
    result["vs_parameter_count"] = {
        a.name: with_cells_variance({**paired(values(a.name, spec.primary), [base] * len(seeds_done)),
                                     "parameter_count": base}, None if counted is None else components(a.name, counted))
        for a in spec.arms}
    for v in result["vs_parameter_count"].values():
        v["above"] = v["lo"] is not None and v["lo"] > 0
        v["above_with_cells"] = v["lo_cells"] is not None and v["lo_cells"] > 0
    result["runs"] = [{"seed": s, "arm": a, **{k: v for k, v in per.items() if k != "h"}}
                      for (s, a), per in runs.items()]
    result["failed"] = [{"seed": s, "arm": a, "why": per["failed"]} for (s, a), per in runs.items() if "failed" in per]
    result["machines"] = dict(Counter(per["machine"] for per in runs.values()).most_common())
    return result


def _f(x, digits: int = 3, sign: bool = False) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:{'+' if sign else ''}.{digits}f}"


def _pm(ms: dict, digits: int = 3) -> str:
    return "n/a" if ms["mean"] is None else f"{ms['mean']:.{digits}f} ± {_f(ms['sd'], digits)}"


def markdown(spec: Spec, r: dict, command: str) -> str:
    """``report.md``: what was run, the tables, the verdicts (all from ``r``)."""
    c = spec.cells
    lines = [f"# Study {spec.name}", "", spec.description.strip(), "",
             f"Command: `{command}`", "",
             f"Cells: {c.num} {'non-isomorphic ' if c.unique else ''}NAS-Bench-201 cells, sample seed {c.seed}, each "
             f"scored on {c.images} validation images (batches of {c.batch_size}). Seeds: {len(spec.seeds)} "
             f"({spec.seeds[0]}…{spec.seeds[-1]}). Primary endpoint: {NAMES[spec.primary]}; α = {spec.alpha}, "
             f"Holm over the {len(spec.comparisons)} declared comparisons; power {spec.power:.0%}, effect of interest "
             f"{spec.delta}.", ""]
    if not r["complete"]:
        lines += [f"{INTERIM} {r['runs_done']} of {r['runs_expected']} runs, {len(r['seeds_done'])} complete "
                  "seed(s); the verdicts below are not final.**", ""]
    if not r.get("seeds_done"):
        return "\n".join(lines + ["No seed is complete yet."]) + "\n"
    if r.get("failed"):
        lines += ["Runs that diverged (their pairs are left out of the comparisons they enter): "
                  + "; ".join(f"seed {f['seed']} {f['arm']}: {f['why']}" for f in r["failed"]), ""]
    n = len(r["seeds_done"])
    lines += [f"## Arms ({n} seeds)", "", "| arm | " + " | ".join(NAMES[m] for m in METRIC_COLUMNS) + " |",
              "|---" * (len(METRIC_COLUMNS) + 1) + "|"]
    for a in spec.arms:
        s = r["arms"][a.name]["cells"]
        lines.append(f"| {a.name} | " + " | ".join(_pm(s[m], 2 if m == "top1_true_acc" else 3)
                                                  for m in METRIC_COLUMNS) + " |")
    lines += ["", "No training, the same cells:", "", "| reference | " + " | ".join(NAMES[m] for m in METRIC_COLUMNS)
              + " |", "|---" * (len(METRIC_COLUMNS) + 1) + "|"]
    for ref, m in r["references"]["cells"].items():
        lines.append(f"| {ref.replace('_', ' ')} | " + " | ".join(_f(m[k], 2 if k == "top1_true_acc" else 3)
                                                                   for k in METRIC_COLUMNS) + " |")
    for metric, fam in r["comparisons"].items():
        head = "primary" if metric == spec.primary else "secondary"
        cells_col = "lo_cells" in fam[0]
        lines += ["", f"## Comparisons: {NAMES[metric]} ({head}; Holm over this family)", "",
                  "| comparison | Δ mean [95%, seeds] | " + ("[95%, seeds + cells] | " if cells_col else "")
                  + f"sd | up/down | p | Holm p | detectable ({spec.power:.0%}) | "
                  + (f"power at ±{spec.delta} | pairs for {spec.power:.0%} at ±{spec.delta} | "
                     if metric == spec.primary else "") + "verdict |",
                  "|---" * (8 + cells_col + 2 * (metric == spec.primary)) + "|"]
        for c in fam:
            need = c.get("pairs_needed")
            pw = (f"{_f(c.get('power_at_delta'), 2)} | {need if need is not None else '—'} | "
                  if metric == spec.primary else "")
            both = f"[{_f(c['lo_cells'], 3, True)}, {_f(c['hi_cells'], 3, True)}] | " if cells_col else ""
            lines.append(f"| {c['name']}: {c['a']} − {c['b']} | {_f(c['mean'], 3, True)} [{_f(c['lo'], 3, True)}, "
                         f"{_f(c['hi'], 3, True)}] | {both}{_f(c['sd'])} | {c['up']}/{c['down']} | {_f(c['p'])} | "
                         f"{_f(c['p_holm'])} | {_f(c['detectable'])} | {pw}{c['verdict_text']} |")
        if metric == spec.primary:
            lines += ["", f"\"Pairs for {spec.power:.0%}\": the seeds a study would need for {spec.power:.0%} power at "
                      f"±{spec.delta} under this family's strictest level (α/{len(fam)}), if its differences had the "
                      "sd observed here: the size of a follow-up, not a result (— where that sd is 0 or unknown, or "
                      f"more than {PAIRS_MOST:,} seeds would be needed)."]
        if cells_col:
            lines += ["", "The test and its verdict are over seeds, on these cells; \"seeds + cells\" adds the "
                      "variance τ owes to which cells were drawn (Kendall τ's U-statistic variance), for reading "
                      "the result as one about the benchmark's cells at large."]
    lines += robustness_lines(spec, r.get("robustness") or [])
    base = r["references"]["cells"]["parameter_count"][spec.primary]
    lines += ["", f"## Against counting parameters ({NAMES[spec.primary]} {_f(base)} on the same cells)", "",
              "| arm | arm − parameter count [95%, seeds] | above it? | [95%, seeds + cells] | above it? |",
              "|---|---|---|---|---|"]
    for name, v in r["vs_parameter_count"].items():
        lines.append(f"| {name} | {_f(v['mean'], 3, True)} [{_f(v['lo'], 3, True)}, {_f(v['hi'], 3, True)}] | "
                     f"{'yes' if v['above'] else 'no'} | [{_f(v['lo_cells'], 3, True)}, {_f(v['hi_cells'], 3, True)}]"
                     f" | {'yes' if v['above_with_cells'] else 'no'} |")
    if spec.continuity:
        k = spec.continuity
        lines += ["", f"## Continuity: {k.num} cells, sample seed {k.seed} (reported, not tested)", "",
                  "| arm | Kendall τ | top-1 true acc |", "|---|---|---|"]
        for a in spec.arms:
            s = r["arms"][a.name]["continuity"]
            lines.append(f"| {a.name} | {_pm(s['kendall_tau'])} | {_pm(s['top1_true_acc'], 2)} |")
        ref = r["references"]["continuity"]["parameter_count"]
        lines.append(f"| parameter count | {_f(ref['kendall_tau'])} | {_f(ref['top1_true_acc'], 2)} |")
    lines += ["", "Every number here is recomputed from `runs/seed*/ARM.json.gz` (each cell's score) and "
              "`cells.json.gz` (the cells, their truth, the no-training scores) by `wpl study SPEC --report_only`."]
    if r.get("machines"):
        lines += ["", "Machines (a seed trains another supernet on another CPU; a seed's arms keep their pairing): "
                  + "; ".join(f"{m}: {n} run{'s' * (n != 1)}" for m, n in r["machines"].items()) + "."]
    return "\n".join(lines) + "\n"


def robustness_lines(spec: Spec, rob: list[dict]) -> list[str]:
    """The primary verdicts' robustness section (reported beside the declared verdicts, never replacing them)."""
    if not rob:
        return []
    m, level = len(rob), rob[0]["level"]
    lines = ["", "## Robustness of the primary verdicts (reported, not tested)", "",
             f"| comparison | [{level:.2%}, seeds] | inside ±{spec.delta}? | verdict kept, one seed left out | "
             "verdicts then | Holm p then |", "|---|---|---|---|---|---|"]
    for d, c in zip(spec.comparisons, rob, strict=True):
        then = ", ".join(f"{v} {k}" for v, k in c["loo_verdicts"].items())
        lines.append(f"| {c['name']}: {d.a} − {d.b} | [{_f(c['lo_family'], 3, True)}, {_f(c['hi_family'], 3, True)}] | "
                     f"{'yes' if c['equivalent_family'] else 'no'} | {c['loo_kept']} of {c['loo_n']} | {then} | "
                     f"{_f(c['loo_p_holm_min'])}–{_f(c['loo_p_holm_max'])} |")
    return lines + ["", f"The interval at {level:.2%} (1 − α/{m}, Bonferroni over the family) reads \"equivalent\" "
                    "family-wise; the declared verdict reads the 95% interval. \"One seed left out\": the whole "
                    "family recomputed, Holm included, without each seed in turn."]


def figures(spec: Spec, r: dict, out: Path) -> list[Path]:
    """``arms.png`` (each seed's primary endpoint per arm, seeds joined, parameter count dashed) and
    ``comparisons.png`` (each primary comparison's paired interval, ±delta shaded)."""
    from wpl.plots import pyplot, save_figure

    if not r.get("seeds_done"):
        return []
    plt = pyplot()
    seeds = r["seeds_done"]
    per = {(x["seed"], x["arm"]): x["cells"][spec.primary] for x in r["runs"]}
    arms = [a.name for a in spec.arms]
    fig, ax = plt.subplots(figsize=(1.4 + 1.3 * len(arms), 4))
    for s in seeds:
        ax.plot(range(len(arms)), [np.nan if per[(s, a)] is None else per[(s, a)] for a in arms], color="0.75",
                lw=0.7, zorder=1)
    for i, a in enumerate(arms):
        v = np.array([np.nan if per[(s, a)] is None else per[(s, a)] for s in seeds], dtype=float)
        ax.scatter(np.full(len(v), i), v, s=14, zorder=2)
        ok = v[~np.isnan(v)]
        if len(ok):
            ax.errorbar(i + 0.15, ok.mean(), yerr=ok.std(ddof=1) if len(ok) > 1 else 0, fmt="o", color="k",
                        capsize=3, zorder=3, label="mean ± sd over seeds" if i == 0 else None)
    base = r["references"]["cells"]["parameter_count"][spec.primary]
    ax.axhline(base, color="tab:red", ls="--", lw=1, label=f"parameter count {base:.3f}")
    ax.set_xticks(range(len(arms)), arms, rotation=20, fontsize=8)
    ax.set_ylabel(NAMES[spec.primary])
    ax.set_title(f"{spec.name}: {len(seeds)} seeds, {spec.cells.num} cells", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    paths = [save_figure(fig, out / "arms.png")]
    fam = r["comparisons"][spec.primary]
    fig, ax = plt.subplots(figsize=(9.5, 1.2 + 0.7 * len(fam)))
    ax.axvspan(-spec.delta, spec.delta, color="0.9", label=f"±{spec.delta}")
    ax.axvline(0, color="k", lw=0.8)
    colours = {"higher": "tab:green", "lower": "tab:red"}
    jitter = np.random.default_rng(0)
    for i, c in enumerate(fam):
        d = np.asarray(c.get("diffs") or [], dtype=float)
        ax.scatter(d, i + 0.22 + jitter.uniform(-0.06, 0.06, len(d)), s=9, color="0.55", zorder=2,
                   label="one seed's difference" if i == 0 and len(d) else None)
        if c["lo"] is not None:
            ax.errorbar(c["mean"], i, xerr=[[c["mean"] - c["lo"]], [c["hi"] - c["mean"]]], fmt="o", capsize=3,
                        color=colours.get(c["verdict"], "tab:blue"), zorder=3)
    for verdict, colour in (*colours.items(), ("neither, after Holm", "tab:blue")):
        ax.plot([], [], "o", color=colour, label=f"mean, 95% interval: {verdict}")
    ax.set_yticks(range(len(fam)), [f"{c['name']}: {c['a']} − {c['b']}" for c in fam], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"Δ {NAMES[spec.primary]}, paired by seed ({fam[0]['n']} pairs; verdicts after Holm)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="x")
    paths.append(save_figure(fig, out / "comparisons.png"))
    return paths


def write_report(spec: Spec, out: Path, command: str) -> tuple[dict, str]:
    """Write ``study.json``, ``report.md`` and the figures; the result and the markdown."""
    r = analyse(spec, out)
    r["command"] = command
    md = markdown(spec, r, command)
    r["figures"] = [p.name for p in figures(spec, r, out)]
    write_json(out / "study.json", r)
    write_text(out / "report.md", md)
    return r, md
