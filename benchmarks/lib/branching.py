"""Variants branched off one plain supernet: a plain search to epoch B, then each variant continues
from that checkpoint with its own flags, so variants differ only after the branch (what the original's
``--start_using_fisher`` does anyway: runs with and without WPL agree until it). Resumable."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class RunFailed(RuntimeError):
    """A command exited non-zero; the message is its last error line."""


def run(cmd: list[str], log: Path) -> None:
    """Run one command, its output appended to ``log``; RunFailed (its last error line) on failure."""
    print("$", " ".join(cmd), flush=True)
    with log.open("a") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        lines = [ln for ln in log.read_text(errors="replace").replace("\r", "\n").splitlines() if "error" in ln.lower()]
        raise RunFailed(f"exit code {rc}: {lines[-1].strip() if lines else 'see ' + str(log)}")


def events(run_dir: Path, kind: str | None = None) -> list[dict]:
    """The run's ``metrics.jsonl`` events (of one ``kind`` when given)."""
    out = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [e for e in out if kind is None or e["event"] == kind]


def branch_means(run_dir: Path, branch: int, fields: dict[str, str]) -> dict[str, float | None]:
    """Per ``fields`` entry (output key → ``forgetting`` event field): its mean over the run's epochs from
    ``branch`` on, where the variants differ (None when there are none)."""
    forg = {e["epoch"]: e for e in events(run_dir, "forgetting") if e["epoch"] >= branch}
    return {k: statistics.fmean(e[src] for e in forg.values()) if forg else None for k, src in fields.items()}


@dataclass
class Branches:
    """Runs of one study: ``out/seed<S>/<dataset>_<name>``; the base is ``base``."""

    flags: list[str]  # every run's search flags (data, size, schedule)
    out: Path
    branch: int  # the first epoch that differs between variants
    epochs: int  # epochs each variant runs after the branch
    base_epochs: int = 0  # epochs of the plain base run (default: branch)
    dataset: str = "ptb"
    paired: bool = False  # random strategy: every variant draws the same architectures after the branch

    def seed_dir(self, seed: int) -> Path:
        """The folder of one seed's runs."""
        d = Path(self.out) / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def run_dir(self, seed: int, name: str) -> Path:
        """Where run ``name`` of ``seed`` lives."""
        return self.seed_dir(seed) / f"{self.dataset}_{name}"

    def cmd(self, seed: int, name: str, extra: list[str], max_epoch: int, save_epoch: int) -> list[str]:
        """The ``wpl search`` command of one run (WPL, where on, from the branch epoch)."""
        return [sys.executable, "-m", "wpl", "search", *self.flags, f"--log_dir={self.seed_dir(seed)}",
                f"--comment={name}", f"--random_seed={seed}", f"--start_using_fisher={self.branch}",
                f"--max_epoch={max_epoch}", f"--save_epoch={save_epoch}", "--max_save_num=1000", *extra]

    def base(self, seed: int) -> Path:
        """The plain supernet, a checkpoint copy after every epoch."""
        d = self.run_dir(seed, "base")
        if not (d / "summary.json").exists():
            n = max(self.base_epochs, self.branch)
            self._timed(seed, "base", lambda: run(self.cmd(seed, "base", ["--use_wpl=False", "--resume=True"], n, 1),
                                                  self.seed_dir(seed) / "base.log"))
        return d

    def _timed(self, seed: int, name: str, job) -> None:
        """Run ``job()``, adding its wall-clock to ``<run>/branch_seconds.json`` (kept across resumed attempts)."""
        start = time.time()
        try:
            job()
        finally:
            d = self.run_dir(seed, name)
            d.mkdir(parents=True, exist_ok=True)
            spent = time.time() - start + self.seconds(seed, name, default=0.0)
            (d / "branch_seconds.json").write_text(json.dumps({"seconds": round(spent, 1)}))

    def variant(self, seed: int, name: str, flags: list[str]) -> Path:
        """Variant ``name``: the base's checkpoint after epoch ``branch − 1``, continued ``epochs`` epochs."""
        base = self.base(seed)
        d = self.run_dir(seed, name)
        if (d / "summary.json").exists() or self.failed(seed, name):
            return d
        if not (d / "checkpoint.pt").exists():
            d.mkdir(parents=True, exist_ok=True)
            for f in ("metrics.jsonl", "forgetting.csv", "config.json"):
                shutil.copy2(base / f, d / f)  # the resume cuts them back to the checkpoint's point
            shutil.copy2(base / f"checkpoint_epoch_{self.branch - 1:03d}.pt", d / "checkpoint.pt.tmp")
            (d / "checkpoint.pt.tmp").replace(d / "checkpoint.pt")
        last = self.branch + self.epochs
        own = ["--arch_stream=own"] if self.paired else []  # a fresh stream from the seed at the branch
        try:
            self._timed(seed, name, lambda: run(
                self.cmd(seed, name, [*flags, *own, "--resume=True", "--resume_with_new_params=True"], last, last),
                self.seed_dir(seed) / f"{name}.log"))
        except RunFailed as exc:  # e.g. a variant that diverges: a result, kept, not retried
            print(f"   {name} failed: {exc}", flush=True)
            (d / "failed.txt").write_text(str(exc) + "\n")
        return d

    def failed(self, seed: int, name: str) -> str | None:
        """Why run ``name`` failed (its last error line), or None."""
        f = self.run_dir(seed, name) / "failed.txt"
        return f.read_text().strip() if f.exists() else None

    def seconds(self, seed: int, name: str, default: float = float("nan")) -> float:
        """Wall-clock seconds run ``name`` took (a variant: after the branch), summed over resumed attempts."""
        f = self.run_dir(seed, name) / "branch_seconds.json"
        return json.loads(f.read_text())["seconds"] if f.exists() else default
