"""kill -9 at random moments, on real data: a search (RNN on PTB), a final training (on PTB) and a
NAS-Bench-201 ranking (on CIFAR-10) are each killed again and again — at random times, and some on
purpose while a checkpoint is being written — and resumed with the same command until they finish.
Each must end identical to an uninterrupted run of the same command: weights, ``metrics.jsonl``,
``forgetting.csv``, ``summary.json`` (but for wall-clock times) or ``rank.json``.

Usage: python -m benchmarks.stress.kill_resume --data_dir DIR --out DIR [--kills 20] [--seed 0]
DIR holds ptb/ and cifar10/. Writes OUT/kill_resume.json and prints a table (BENCHMARKS.md).

Work lost per kill: for the search, steps (shared + controller) done after the last checkpoint, read
from the events the killed process had logged (``--log_step=1``) against the checkpoint's counters;
for the final training, seconds since its last checkpoint (start-up included); the ranking keeps no checkpoint
(it starts again, by design: it is read-only scoring).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.lib.common import mean_std

PY = [sys.executable, "-m", "wpl"]
START_S = 2.0  # a process's start-up (imports, data) before it does any work
SEARCH = ("search --dataset=ptb --shared_embed=64 --shared_hid=64 --num_blocks=6 --batch_size=32 "
          "--test_batch_size=32 --shared_max_step=20 --num_batch_per_iter=3 --train_controller=True "
          "--controller_max_step=20 --max_epoch=3 --save_epoch=1 --derive_num_sample=5 --start_using_fisher=1 "
          "--alpha_fisher=60 --fisher_clip_by_norm=10 --forgetting_batches=2 --log_step=1 "
          "--checkpoint_every_steps=5 --use_tensorboard=False --log_level=WARNING --num_gpu=0").split()
FINAL_EPOCHS = 4
FINAL = ("train-final --arch=random:1 --dataset=ptb --final_embed=32 --final_hid=32 --final_batch_size=128 "
         f"--max_epoch={FINAL_EPOCHS} --use_tensorboard=False --log_level=WARNING --device=cpu").split()
NB201 = ("search --network_type=nb201 --dataset=cifar10 --nb201_channels=8 --nb201_cells=1 --batch_size=64 "
         "--shared_max_step=20 --controller_max_step=5 --max_epoch=1 --derive_num_sample=3 --use_tensorboard=False "
         "--log_level=WARNING --num_gpu=0 --comment=rank").split()
RANK = "rank --model_name=cifar10_rank --num_archs=100 --rank_batches=2 --seed=0".split()


def run_to_end(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` uninterrupted; its wall-clock seconds."""
    t0 = time.time()
    with log.open("a") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True)
    return time.time() - t0


def kill_loop(cmd: list[str], resume: list[str], log: Path, kills: int, spread: float, rng: random.Random,
              watch: Path | None, lost, again: bool = False) -> list[dict]:
    """Start ``cmd`` (then ``cmd + resume``) and kill -9 it ``kills`` times: at a uniform random moment up to
    ``spread`` seconds after its start-up, or — every fourth kill, when ``watch`` is a folder — as soon as a
    new checkpoint write starts there (a temporary file the killed writes left behind does not count);
    ``lost()`` measures the work lost after each kill. Then let it finish. A run that finishes before its
    kill ends the loop, unless ``again`` (a job without resume, run whole each time: its output is judged by
    ``lost()`` and it is started again)."""
    out: list[dict] = []
    while True:
        landed = sum(not k.get("missed") for k in out)
        before = set(watch.glob(".checkpoint.pt.*.tmp")) if watch is not None and watch.exists() else set()
        with log.open("a") as fh:
            proc = subprocess.Popen([*cmd, *(resume if out else [])], stdout=fh, stderr=subprocess.STDOUT)
        if landed == kills:
            if proc.wait() != 0:
                raise RuntimeError(f"the last resume failed: see {log}")
            return out
        during_write = watch is not None and landed % 4 == 3
        t0 = time.time()
        if during_write:
            while proc.poll() is None and not set(watch.glob(".checkpoint.pt.*.tmp")) - before:
                time.sleep(0.001)
        else:
            deadline = t0 + rng.uniform(START_S, START_S + spread)
            while proc.poll() is None and time.time() < deadline:
                time.sleep(0.01)
        if proc.poll() is not None:  # it finished (or died) before the kill
            out.append({"kill": len(out), "missed": True, "returncode": proc.returncode,
                        **(lost(t0) if again else {})})
            if proc.returncode == 0 and not again:  # the job is done: no more to kill
                return out
            if sum(bool(k.get("missed")) for k in out) > 2 * kills:
                raise RuntimeError(f"the job keeps ending before its kill (last exit {proc.returncode}): see {log}")
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out.append({"kill": len(out), "after_s": round(time.time() - t0, 3), "during_write": during_write,
                    **lost(t0)})


def search_lost(run: Path) -> dict:
    """Steps the killed search had logged beyond its checkpoint."""
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True) if (run / "checkpoint.pt").exists() else None
    saved = 0 if ckpt is None else ckpt["shared_step"] + ckpt["controller_step"]
    done = saved
    if (run / "metrics.jsonl").exists():
        shared = ctrl = 0
        for line in (run / "metrics.jsonl").read_text().splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:  # the line the kill cut short
                continue
            shared = e.get("shared_step", shared)
            ctrl = e.get("controller_step", ctrl)
        done = max(saved, shared + ctrl)
    return {"steps_lost": done - saved}


def final_lost(run: Path, started: float) -> dict:
    """The killed final training's work since its last checkpoint (or since it started, when it wrote none):
    seconds, start-up included, and the checkpoint's epoch."""
    path = run / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True) if path.exists() else None
    since = max(started, path.stat().st_mtime) if path.exists() else started
    return {"checkpoint_epoch": None if ckpt is None else ckpt["epoch"], "seconds_lost": round(time.time() - since, 2)}


def rank_output(rank: Path, whole: dict) -> dict:
    """After a killed ranking: did it leave a rank.json, and is it anything but the complete one (atomic
    writes: it must not be)? The file is removed, so the next attempt is judged on its own."""
    if not rank.exists():
        return {"output": False, "partial_output": False}
    try:
        partial = json.loads(rank.read_text()) != whole
    except json.JSONDecodeError:
        partial = True
    rank.unlink()
    return {"output": True, "partial_output": partial}


def same_search(a: Path, b: Path) -> list[str]:
    """What differs between two finished searches (empty: identical)."""
    bad = []
    ca, cb = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (a, b))
    for key in ("supernet", "controller"):
        if not all(torch.equal(t, cb[key][n]) for n, t in ca[key].items()):
            bad.append(key)
    for name in ("metrics.jsonl", "forgetting.csv"):
        if (a / name).read_text() != (b / name).read_text():
            bad.append(name)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    sa.pop("seconds"), sb.pop("seconds")
    if sa != sb:
        bad.append("summary.json")
    return bad


def same_final(a: Path, b: Path) -> list[str]:
    """What differs between two finished final trainings."""
    bad = []
    wa, wb = (torch.load(d / "best.pt", weights_only=True)["weights"] for d in (a, b))
    if not all(torch.equal(t, wb[n]) for n, t in wa.items()):
        bad.append("best.pt")
    ea, eb = ([{k: v for k, v in json.loads(ln).items() if k != "seconds"} for ln in
               (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b))
    if ea != eb:
        bad.append("metrics.jsonl")
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    if sa["test"] != sb["test"] or sa["best_epoch"] != sb["best_epoch"]:
        bad.append("summary.json")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", default="search,final,rank")
    args = ap.parse_args()
    out = Path(args.out)
    rng = random.Random(args.seed)
    jobs = args.jobs.split(",")
    saved = out / "kill_resume.json"  # a run of some --jobs updates those jobs' entries
    result: dict = json.loads(saved.read_text()) if saved.exists() and len(jobs) < 3 else {}
    result["kills_per_job"] = args.kills
    result.setdefault("commands", {}).update({job: "python " + " ".join(sys.argv) for job in jobs})
    if "search" in jobs:
        base = [*PY, *SEARCH, f"--data_dir={args.data_dir}", f"--random_seed={args.seed}", "--comment=train"]
        for d in ("whole", "killed"):
            shutil.rmtree(out / "search" / d, ignore_errors=True)
            (out / "search" / d).mkdir(parents=True)
        span = run_to_end([*base, f"--log_dir={out / 'search' / 'whole'}"], out / "search" / "whole.log")
        run = out / "search" / "killed" / "ptb_train"
        kills = kill_loop([*base, f"--log_dir={out / 'search' / 'killed'}"], ["--resume=True"],
                          out / "search" / "killed.log", args.kills, 2 * span / args.kills, rng, run,
                          lambda t0: search_lost(run))
        result["search"] = {"seconds_uninterrupted": round(span, 1), "kills": kills,
                            "differs": same_search(out / "search" / "whole" / "ptb_train", run)}
    if "final" in jobs:
        base = [*PY, *FINAL, f"--data_dir={args.data_dir}", f"--random_seed={args.seed}"]
        for d in ("whole", "killed"):
            shutil.rmtree(out / "final" / d, ignore_errors=True)
            (out / "final" / d).mkdir(parents=True)
        span = run_to_end([*base, f"--log_dir={out / 'final' / 'whole'}"], out / "final" / "whole.log")
        run = out / "final" / "killed" / "random-rnn-1"
        kills = kill_loop([*base, f"--log_dir={out / 'final' / 'killed'}"], ["--resume=True"], out / "final" /
                          "killed.log", args.kills, 1.25 * span / FINAL_EPOCHS, rng, run,
                          lambda t0: final_lost(run, t0))
        result["final"] = {"seconds_uninterrupted": round(span, 1), "kills": kills,
                           "differs": same_final(out / "final" / "whole" / "random-rnn-1", run)}
    if "rank" in jobs:
        logs = out / "rank"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        run_to_end([*PY, *NB201, f"--data_dir={args.data_dir}", f"--log_dir={logs}"], logs / "search.log")
        rank = logs / "cifar10_rank" / "rank.json"
        span = run_to_end([*PY, *RANK, f"--log_dir={logs}"], logs / "rank.log")
        whole = json.loads(rank.read_text())
        rank.unlink()
        kills = kill_loop([*PY, *RANK, f"--log_dir={logs}"], [], logs / "killed.log", args.kills, 0.9 * span, rng,
                          None, lambda t0: rank_output(rank, whole), again=True)
        again = json.loads(rank.read_text())
        result["rank"] = {"seconds_uninterrupted": round(span, 1), "kills": kills,
                          "differs": [] if again == whole else ["rank.json"]}
    (out / "kill_resume.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| job | kills landed (during a checkpoint write) | runs identical to an uninterrupted one | work lost per "
          "kill |")
    print("|---|---|---|---|")
    for job in ("search", "final", "rank"):
        if job not in result:
            continue
        r = result[job]
        landed = [k for k in r["kills"] if not k.get("missed")]
        writes = sum(bool(k.get("during_write")) for k in landed)
        if job == "search":
            m = mean_std([k["steps_lost"] for k in landed])
            lost = f"{m['mean']:.1f} ± {m['std']:.1f} steps (max {max(m['values'], default=0):.0f}; a checkpoint " \
                   "every 5 steps)"
        elif job == "final":
            m = mean_std([k["seconds_lost"] for k in landed])
            lost = f"{m['mean']:.1f} ± {m['std']:.1f} s (max {max(m['values'], default=0):.0f}; a checkpoint per " \
                   f"epoch of ≈{r['seconds_uninterrupted'] / FINAL_EPOCHS:.0f} s)"
        else:
            done = sum(bool(k.get("output")) for k in landed)
            lost = f"the whole ranking ({r['seconds_uninterrupted']} s; a partial rank.json: " \
                   f"{'yes' if any(k.get('partial_output') for k in landed) else 'never'}; {done} kills came " \
                   "after rank.json was complete)"
        print(f"| {job} | {len(landed)} ({writes}) | {'yes' if not r['differs'] else 'NO: ' + ', '.join(r['differs'])}"
              f" | {lost} |")


if __name__ == "__main__":
    main()
