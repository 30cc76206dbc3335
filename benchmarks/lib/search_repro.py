"""What ``reproduce_rnn.py`` and ``reproduce_cnn.py`` share: branched plain / original / recommended ENAS
searches per seed, each variant's last derived cell trained from scratch and tested once, the paper's
four panels (mean / best-5 / max forgetting diff and reward per epoch) and the targets."""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from benchmarks.lib.branching import Branches, branch_means, events, run
from benchmarks.lib.common import (
    finish,
    fmt,
    kept,
    mean_std,
    out_path,
    parser,
    same_setup,
    seeds,
    step,
    table_head,
    target,
    work_dir,
)
from wpl.plots import pyplot, save_figure


def recommended(lr: float) -> list[str]:
    """The mechanism study's best setting (BENCHMARKS.md; seeds 0–1), what ``--wpl_recipe=recommended`` sets:
    every weight an architecture uses protected, a per-tensor normalised Fisher, the exact proximal step
    after the optimizer's, anchors moved after each architecture, α·lr = 1 (a weight of mean Fisher moves
    half as far as the task gradient alone would take it). Spelled out, so a work folder's setup stays
    readable whatever the recipe becomes."""
    return ["--legacy_compound_alpha=False", "--fisher_normalise=mean", "--fisher_clip_by_norm=0",
            "--wpl_update=proximal", "--wpl_scope=used", f"--alpha_fisher={1.0 / lr:g}"]
COLORS = {"plain": "tab:purple", "original": "tab:gray", "recommended": "tab:orange"}
# a variant's forgetting after the branch: key → the per-epoch ``forgetting`` summary it averages
FORGETTING = {"loss_forgetting": "loss_diff_mean", "loss_forgetting_best5": "loss_diff_best_mean",
              "forgetting": "diff_mean"}


@dataclass
class Spec:
    """One space's reproduction: flags, schedule per mode, final-training recipe, the paper's numbers."""

    name: str  # rnn | cnn
    dataset: str
    unit: str  # the task's metric: ppl | error
    flags: list[str]  # every search's flags (the README command and its CPU example)
    quick_flags: list[str]
    final_flags: list[str]
    quick_final_flags: list[str]
    modes: dict  # mode -> {"branch", "epochs", "final_epochs"}
    paper: dict
    scale: str
    lr: float = 20.0  # the shared learning rate (the recommended α is 1 / lr)

    @property
    def variants(self) -> dict[str, list[str]]:
        """plain (no WPL), original (the README's WPL flags as written), recommended."""
        return {"plain": ["--use_wpl=False"], "original": [], "recommended": recommended(self.lr)}


def final_train(study: Branches, seed: int, name: str, spec: Spec, epochs: int, quick: bool) -> dict:
    """Train variant ``name``'s last derived cell from scratch (same seed, same recipe); its summary."""
    d = study.run_dir(seed, name)
    out = d / "final" / "summary.json"
    if not out.exists():
        last = study.branch + study.epochs - 1
        run([sys.executable, "-m", "wpl", "train-final", f"--model_name={d.name}", f"--log_dir={d.parent}",
             f"--arch_from=epoch_{last:03d}", *spec.final_flags, *(spec.quick_final_flags if quick else []),
             f"--max_epoch={epochs}", f"--random_seed={seed}", "--resume=True", "--use_tensorboard=False"],
            d.parent / f"{name}-final.log")
    return json.loads(out.read_text())


def per_epoch(d: Path) -> dict[str, list]:
    """Per epoch: the forgetting summaries (the task's unit and nats) and the controller's mean reward."""
    forg = {e["epoch"]: e for e in events(d, "forgetting")}
    reward = {e["epoch"]: e.get("reward") for e in events(d, "epoch")}
    epochs = sorted(forg)
    out = {"epoch": epochs, "reward": [reward.get(ep) for ep in epochs]}
    for k in ("diff_mean", "diff_best_mean", "diff_max", "loss_diff_mean", "loss_diff_best_mean"):
        out[k] = [forg[ep][k] for ep in epochs]
    return out


def run_seed(study: Branches, seed: int, spec: Spec, final_epochs: int, quick: bool) -> dict:
    """One seed: the base, every variant, every final training; the numbers the summary needs."""
    out = {}
    for name, flags in spec.variants.items():
        study.variant(seed, name, flags)
        if why := study.failed(seed, name):  # e.g. diverged: reported, not retried
            out[name] = {"failed": why, "curves": per_epoch(study.run_dir(seed, name)), "search_seconds": 0.0,
                         "final_seconds": 0.0, **dict.fromkeys(("loss_forgetting", "loss_forgetting_best5",
                                                                *FORGETTING, "final_valid", "final_test"))}
            continue
        fin = final_train(study, seed, name, spec, final_epochs, quick)
        d = study.run_dir(seed, name)
        out[name] = {
            "curves": per_epoch(d), **branch_means(d, study.branch, FORGETTING),
            "final_valid": fin["best_valid"], "final_test": fin["test"], "final_arch": fin.get("arch"),
            "search_seconds": study.seconds(seed, name), "final_seconds": fin.get("seconds") or 0.0,
        }
    out["base_seconds"] = study.seconds(seed, "base")
    return out


def band(ax, x: list, runs: list[list], color: str, label: str) -> None:
    """The mean over runs (one list per seed; None = no value there) and, with several, the min–max band."""
    import numpy as np

    vals = np.array([[np.nan if v is None else v for v in r] for r in runs], dtype=float)
    if np.isnan(vals).all():
        return
    with warnings.catch_warnings():  # an all-None column is a gap, not an error
        warnings.simplefilter("ignore", RuntimeWarning)
        ax.plot(x, np.nanmean(vals, 0), color=color, lw=1.6, marker="o", ms=3, label=label)
        if len(runs) > 1:
            ax.fill_between(x, np.nanmin(vals, 0), np.nanmax(vals, 0), color=color, alpha=0.15)


def figure(per_seed: list[dict], spec: Spec, branch: int, path: Path) -> Path:
    """The paper's four panels, mean and min–max band over seeds, WPL from the dotted line."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator


    panels = [("diff_mean", f"mean forgetting diff ({spec.unit})"),
              ("diff_best_mean", f"best-5 forgetting diff ({spec.unit})"),
              ("diff_max", f"max forgetting diff ({spec.unit})"), ("reward", "controller reward")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for ax, (key, title) in zip(axes, panels):
        for name, color in COLORS.items():
            runs = [r[name]["curves"] for r in per_seed if name in r]
            if not runs:
                continue
            ep = runs[0]["epoch"]
            band(ax, ep, [c[key] for c in runs], color, name)  # epochs without a controller phase: no reward
        ax.axvline(branch - 0.5, color="k", ls=":", lw=0.8)
        if key != "reward":
            ax.axhline(0, color="k", lw=0.5)
            if spec.unit == "ppl":  # one diverged cell's ppl (e^loss) would flatten a linear axis
                ax.set_yscale("symlog", linthresh=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch (WPL from the dotted line)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    n = len(per_seed)
    fig.suptitle(f"ENAS {spec.name.upper()} search on {spec.dataset} (CPU scale): mean and min–max band over "
                 f"{n} seed{'s' if n > 1 else ''}")
    return save_figure(fig, path)


def main(spec: Spec, doc: str) -> None:
    """The whole script: parse, run (resuming), summarise, figure, targets, JSON."""
    args = parser(doc.splitlines()[0]).parse_args()
    mode = "quick" if args.quick else "full"
    cfg = spec.modes[mode]
    work = work_dir(args, spec.name)
    data_dir = Path(args.data_dir)
    flags = [*spec.flags, *(spec.quick_flags if args.quick else []), f"--data_dir={data_dir}",
             "--use_tensorboard=False"]
    setup = {"flags": flags, "variants": spec.variants, "final": spec.final_flags, "mode": cfg}
    same_setup(work, setup)
    keep = kept(args, spec.name, setup)
    study = Branches(flags, work, cfg["branch"], cfg["epochs"], dataset=spec.dataset)
    seed_list = seeds(args, "0,1,2")
    per_seed = [step(keep / f"seed{s}.json", lambda s=s: run_seed(study, s, spec, cfg["final_epochs"], args.quick))
                for s in seed_list]
    png = figure(per_seed, spec, cfg["branch"], out_path(args, spec.name, "png"))
    keys = ("forgetting", "loss_forgetting", "loss_forgetting_best5", "final_valid", "final_test", "search_seconds")
    summary = {name: {k: mean_std([r[name][k] for r in per_seed]) for k in keys} for name in spec.variants}
    plain, best, orig = summary["plain"], summary["recommended"], summary["original"]

    def ratio(s: dict, key: str = "loss_forgetting") -> float | None:
        a, b = s[key]["mean"], plain[key]["mean"]
        return None if a is None or b is None or b <= 0 else round(a / b, 3)

    def test_of(s: dict) -> float | None:
        return None if s["final_test"]["mean"] is None else round(s["final_test"]["mean"], 4)

    u = spec.unit
    r, bt, pt = ratio(best), test_of(best), test_of(plain)
    targets = [
        target("mean loss forgetting over the WPL epochs (nats): recommended / plain, recommended, plain",
               [r, best["loss_forgetting"]["mean"], plain["loss_forgetting"]["mean"]],
               "ratio <= 0.5 (needs plain's > 0)", None if r is None else r <= 0.5),
        target(f"final test {u} of the derived cells, recommended vs plain", [bt, pt], "recommended <= plain",
               None if bt is None or pt is None else bt <= pt),
        target("best-5 loss forgetting (nats; not an issue target, the paper's best-5 panel): recommended / plain, "
               "recommended, plain", [ratio(best, "loss_forgetting_best5"), best["loss_forgetting_best5"]["mean"],
                                      plain["loss_forgetting_best5"]["mean"]], "reported", None),
        target(f"the README's original WPL: loss forgetting ratio, final test {u} vs plain",
               [ratio(orig), test_of(orig), pt], "reported as its own row", None),
    ]
    digits = 1 if u == "ppl" else 3
    lines = table_head("variant", f"forgetting, WPL epochs ({u})", "loss forgetting (nats)", "best-5 (nats)",
                       f"final valid {u}", f"final test {u}", "search min")
    for name, s in summary.items():
        lines.append(f"| {name} | {fmt(s['forgetting'], digits + 1)} | {fmt(s['loss_forgetting'], 4)} | "
                     f"{fmt(s['loss_forgetting_best5'], 4)} | {fmt(s['final_valid'], digits)} | "
                     f"{fmt(s['final_test'], digits)} | {fmt(s['search_seconds'], 1, 1 / 60)} |")
    md = "\n".join(lines)
    print(md)
    payload = {
        "command": "python " + " ".join(sys.argv), "seeds": seed_list,
        "scale": f"{spec.scale}; plain to epoch {cfg['branch']}, then {cfg['epochs']} epochs per variant, "
                 f"final training {cfg['final_epochs']} epochs" + (" (quick: shrunk)" if args.quick else ""),
        "paper": spec.paper, "variants": spec.variants, "summary": summary, "per_seed": per_seed,
        "targets": targets, "markdown": md, "figure": png.name,
    }
    seconds = sum(r["base_seconds"] for r in per_seed) + sum(
        r[name]["search_seconds"] + r[name]["final_seconds"] for r in per_seed for name in spec.variants)
    finish(args, spec.name, payload, seconds)
