"""Real processes: SIGTERM stops a search cleanly (a checkpoint, exit 143, one line), and `kill -9` at
random moments — including during a checkpoint write — never costs more than a resume."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import rnn_argv, signal_when, wait_for
from test_resume_anywhere import RUN, assert_same_run


def _cmd(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "wpl", "search", *argv]


@pytest.mark.slow
def test_sigterm_stops_at_a_step_with_a_checkpoint_and_resumes_identically(text_root: Path, tmp_path: Path) -> None:
    extra = ["--max_epoch=12", "--checkpoint_every_steps=5"]
    subprocess.run(_cmd(rnn_argv(text_root, tmp_path / "whole", *extra)), check=True, capture_output=True)
    out = lambda attempt: tmp_path / f"stopped{attempt}"  # noqa: E731
    code, err, attempt = signal_when(lambda a: (_cmd(rnn_argv(text_root, out(a), *extra)),
                                                out(a) / "logs" / RUN / "metrics.jsonl"), signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("wpl search: error: stopped by SIGTERM") and "--resume=True" in last
    assert not (out(attempt) / "logs" / RUN / "summary.json").exists()
    subprocess.run(_cmd([*rnn_argv(text_root, out(attempt), *extra), "--resume=True"]), check=True, capture_output=True)
    assert_same_run(tmp_path / "whole" / "logs", out(attempt) / "logs")


@pytest.mark.slow
def test_kill_9_at_random_moments_resumes_identically(text_root: Path, tmp_path: Path) -> None:
    extra = ["--max_epoch=6", "--checkpoint_every_steps=1"]
    subprocess.run(_cmd(rnn_argv(text_root, tmp_path / "whole", *extra)), check=True, capture_output=True)
    argv = rnn_argv(text_root, tmp_path / "killed", *extra)
    ckpt = tmp_path / "killed" / "logs" / RUN / "checkpoint.pt"
    rng = random.Random(0)
    kills = 0
    for attempt in range(12):
        proc = subprocess.Popen(_cmd([*argv, *(["--resume=True"] if attempt else [])]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 3:
            wait_for(ckpt, proc, 60.0)  # once it is working: then a random moment
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err.decode()
    assert proc.returncode == 0 and kills >= 1
    assert not list(ckpt.parent.glob(".*.tmp"))  # a write cut short by a kill is cleared on resume
    assert_same_run(tmp_path / "whole" / "logs", tmp_path / "killed" / "logs")


@pytest.mark.slow
def test_sigterm_stops_a_final_training_and_it_resumes_identically(tmp_path: Path) -> None:
    import json

    from conftest import make_text
    from test_final import RNN_RECIPE

    data = make_text(tmp_path / "data", lines=(1000, 40, 40))
    common = ["--arch=random:1", "--dataset=tiny", f"--data_dir={data}", *RNN_RECIPE, "--max_epoch=5"]
    cmd = [sys.executable, "-m", "wpl", "train-final", *common]
    subprocess.run([*cmd, f"--log_dir={tmp_path / 'whole'}"], check=True, capture_output=True)
    log_dir = lambda attempt: tmp_path / f"stopped{attempt}"  # noqa: E731
    code, err, attempt = signal_when(lambda a: ([*cmd, f"--log_dir={log_dir(a)}"],
                                                log_dir(a) / "random-rnn-1" / "checkpoint.pt"), signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("wpl train-final: error: stopped by SIGTERM; the last checkpoint is "), last
    subprocess.run([*cmd, f"--log_dir={log_dir(attempt)}", "--resume=True"], check=True, capture_output=True)
    whole, out = tmp_path / "whole" / "random-rnn-1", log_dir(attempt) / "random-rnn-1"
    ea, eb = ([{k: v for k, v in json.loads(ln).items() if k != "seconds"} for ln in
               (d / "metrics.jsonl").read_text().splitlines()] for d in (whole, out))
    assert ea == eb and len(ea) == 6  # five epochs and the test
    a, b = (json.loads((d / "summary.json").read_text()) for d in (whole, out))
    assert a["test"] == b["test"] and [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
