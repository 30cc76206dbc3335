"""``wpl demo``, the main job on embedded data: the two-model experiment on the embedded real-MNIST
subset, then a tiny ENAS RNN search on the embedded PTB slice without WPL, with the original's WPL and
with the recommended recipe (same seed, so the runs are identical until WPL switches on), and their
training perplexity and forgetting side by side."""

from __future__ import annotations

import shutil
from pathlib import Path

from .nas.search.run import run_search
from .two_models import TwoModelsConfig
from .two_models_report import run_experiment

# a few minutes on 2 CPU cores; WPL settings are the original README's (α 60, clip 10, reset every 2)
DEMO_FLAGS = [
    "--data_dir=embedded", "--dataset=ptb", "--shared_embed=64", "--shared_hid=64", "--num_blocks=8",
    "--batch_size=32", "--test_batch_size=32", "--shared_max_step=20", "--num_batch_per_iter=5",
    "--train_controller=True", "--controller_max_step=30", "--max_epoch=3", "--save_epoch=3",
    "--derive_num_sample=4", "--start_using_fisher=1", "--alpha_fisher=60", "--fisher_clip_by_norm=10",
    "--set_fisher_zero_per_iter=2", "--log_level=WARNING",
]
# plain ENAS, WPL as the original README sets it, and the recommended recipe (docs/rnn.md, "Which WPL setting")
RUNS = (("no_wpl", ["--use_wpl=False"]), ("wpl", []), ("wpl_recommended", ["--wpl_recipe=recommended"]))
# --size tiny: a smoke run of both halves in seconds (the numbers mean nothing at this size)
TINY_FLAGS = ["--shared_embed=16", "--shared_hid=16", "--num_blocks=4", "--shared_max_step=3", "--num_batch_per_iter=2",
              "--controller_max_step=2", "--max_epoch=2", "--save_epoch=2", "--derive_num_sample=2",
              "--forgetting_batches=1", "--test_batch_size=64"]
TINY_TWO_MODELS = {"a_iters": {"strict": 60, "loose": 20}, "b_iters": 40, "eval_every": 20, "fisher_samples": 50}
SIZES = ("full", "tiny")


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def forgetting_table(summaries: dict[str, dict]) -> str:
    """Per-epoch training perplexity and forgetting (err2 − err1, in nats and perplexity) of the runs,
    one row per epoch and run, then each run's best cell."""
    lines = ["| epoch | run | train ppl | forgetting: loss diff mean / median / best-5 | ppl diff median |",
             "|---|---|---|---|---|"]
    names = list(summaries)
    for i, _ in enumerate(summaries[names[0]]["epochs"]):
        for n in names:
            e = summaries[n]["epochs"][i]
            diffs = " / ".join(_fmt(e.get(k), "+.3f") for k in (
                "forgetting_loss_diff_mean", "forgetting_loss_diff_median", "forgetting_loss_diff_best_mean"))
            lines.append(f"| {i} | {n} | {_fmt(e.get('shared_ppl'), '.1f')} | {diffs} | "
                         f"{_fmt(e.get('forgetting_diff_median'), '+.1f')} |")
    lines += ["", "| run | best cell: valid ppl | test ppl |", "|---|---|---|"]
    lines += [f"| {n} | {_fmt(summaries[n]['best_valid'], '.1f')} | {_fmt(summaries[n]['test'], '.1f')} |"
              for n in names]
    return "\n".join(lines)


def run_search_demo(output_dir: Path, seed: int, device: str, size: str = "full") -> dict[str, dict]:
    """Both runs under ``output_dir`` (earlier demo runs there are replaced); print the comparison."""
    output_dir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for name, extra in RUNS:
        run_dir = output_dir / f"ptb_{name}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        print(f"-- search {name.replace('_', ' ')} --")
        summaries[name] = run_search(DEMO_FLAGS + (TINY_FLAGS if size == "tiny" else []) + extra + [
            f"--log_dir={output_dir}", f"--comment={name}", f"--random_seed={seed}", f"--device={device}"])
    print("forgetting = err2 − err1 of each architecture trained in an epoch (positive = it got worse while "
          "the others trained); WPL is on from epoch 1. wpl = the original README's WPL (α 60 compounded into "
          "F, clip 10); wpl_recommended = --wpl_recipe=recommended. At this size the supernet is still "
          "improving, so err2 − err1 is near 0 or below for every run and a setting that learns less scores "
          "better on it: read the train ppl beside it (BENCHMARKS.md, the mechanism study)")
    print(forgetting_table(summaries))
    return summaries


def run_demo(output_dir: str | Path = "demo_out", seed: int = 0, device: str = "auto", size: str = "full") -> dict:
    """Both halves of the demo under ``output_dir``; returns their results."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    out = Path(output_dir)
    cfg = TwoModelsConfig(seed=seed, **(TINY_TWO_MODELS if size == "tiny" else {}))
    print("== wpl demo: two models sharing 3 blocks, on the embedded real-MNIST subset ==")
    two = run_experiment(cfg, out / "two_models", device=device)
    print("== wpl demo: ENAS recurrent-cell search without and with WPL, on the embedded PTB slice ==")
    search = run_search_demo(out / "search", seed, device, size)
    print(f"demo outputs are in {out.resolve()}")
    return {"two_models": two, "search": search}
