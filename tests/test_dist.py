"""Data parallelism with torchrun (CPU, Gloo, 2 processes): the same architectures on every rank, and a
2-rank step at batch b equal to a 1-process step at batch 2b, in every space (the image spaces' batch
norms span the ranks); runs written once that resume exactly; ranks that leave the job cleanly.

Each torchrun launch costs seconds, so one launch checks several properties where it can."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_cifar, make_text, rnn_argv, signal_when
from test_resume_anywhere import RUN, assert_same_run

WORKER = Path(__file__).with_name("dist_steps.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(n: int, *args: str) -> list[str]:
    """The command that runs ``args`` (a script, or ``-m module ...``) in ``n`` processes (plain Python for 1)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *args] \
        if n > 1 else [sys.executable, *args]


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert not check or proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _wpl(n: int, command: str, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return _run(_torchrun(n, "-m", "wpl", command, *argv), check)


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> Path:
    """Every space's steps, once at 2 ranks × batch 4 (``two/``) and once in one process at batch 8 (``one/``)."""
    tmp = tmp_path_factory.mktemp("dist_steps")
    text, cifar = make_text(tmp / "text", lines=(600, 80, 80)), make_cifar(tmp / "cifar")
    _run(_torchrun(2, str(WORKER), str(text), str(cifar), str(tmp / "two"), "4"))
    _run(_torchrun(1, str(WORKER), str(text), str(cifar), str(tmp / "one"), "8"))
    return tmp


SPACES = ["rnn", "cnn", "nb201"]


def _ranks(steps: Path, space: str) -> tuple[list[dict], dict]:
    two = [torch.load(steps / "two" / f"{space}_rank{r}.pt", weights_only=True) for r in range(2)]
    return two, torch.load(steps / "one" / f"{space}_rank0.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("space", SPACES)
def test_every_rank_trains_the_same_architectures_and_ends_with_the_same_weights(steps, space) -> None:
    (a, b), _ = _ranks(steps, space)
    assert a["archs"] == b["archs"] and len(set(a["archs"])) > 1
    assert all(torch.equal(t, b["weights"][n]) for n, t in a["weights"].items())
    assert a["rewards"] == b["rewards"] and a["scores"] == b["scores"]


@pytest.mark.slow
@pytest.mark.parametrize("space", SPACES)
def test_two_ranks_at_batch_b_equal_one_process_at_2b(steps, space) -> None:
    (a, _), one = _ranks(steps, space)
    assert a["archs"] == one["archs"]
    for n, t in one["weights_1"].items():  # one shared step (2 batches) and its Fisher step
        torch.testing.assert_close(a["weights_1"][n], t, rtol=1e-5, atol=1e-6, msg=n)
    # squared gradients: entries near zero carry the sums' rounding, so the bound is on the tensor's scale
    fishers = ["fisher_1"] + (["fisher_per_sample"] if space != "rnn" else [])
    for key, (n, f) in ((k, item) for k in fishers for item in one[k].items()):
        torch.testing.assert_close(a[key][n], f, rtol=1e-4, atol=1e-4 * float(f.abs().max()) + 1e-12, msg=f"{key} {n}")
    # three steps on, at lr 20, the sums' different rounding has grown a little
    for n, t in one["weights"].items():
        torch.testing.assert_close(a["weights"][n], t, rtol=1e-4, atol=1e-5, msg=n)
    assert a["ce"] == pytest.approx(one["ce"], rel=1e-5)
    assert a["rewards"] == pytest.approx(one["rewards"], rel=1e-4)
    assert [s[1] for s in a["scores"]] == pytest.approx([s[1] for s in one["scores"]], rel=1e-5)


@pytest.mark.slow
def test_leaving_the_job_ends_the_process_groupʼs_threads(steps) -> None:
    # Gloo's threads alive at exit can abort a finished rank ("terminate called without an active exception")
    for r in range(2):
        threads = (steps / "two" / f"threads{r}.txt").read_text().split()
        assert threads and not [t for t in threads if "gloo" in t], threads


@pytest.mark.slow
def test_a_two_rank_search_writes_once_and_resumes_exactly_after_a_stop_or_a_sigterm(tmp_path: Path) -> None:
    data = make_text(tmp_path / "data", lines=(600, 80, 80))
    extra = ["--rnn_cell=python", "--checkpoint_every_steps=3", "--max_epoch=6"]
    _wpl(2, "search", rnn_argv(data, tmp_path / "whole", *extra))
    run = tmp_path / "whole" / "logs" / RUN
    assert (run / "summary.json").is_file() and not list(run.glob(".*.tmp"))
    assert len(torch.load(run / "checkpoint.pt", weights_only=True)["ranks"]) == 2
    # stopped at an epoch's end (--max_epoch=1), then continued
    _wpl(2, "search", rnn_argv(data, tmp_path / "part", *extra, "--max_epoch=1"))
    _wpl(2, "search", rnn_argv(data, tmp_path / "part", *extra, "--resume=True"))
    assert_same_run(tmp_path / "whole" / "logs", tmp_path / "part" / "logs")
    # SIGTERM to torchrun: every rank stops at the same step, with a checkpoint, and it continues exactly
    cut = lambda attempt: tmp_path / f"cut{attempt}"  # noqa: E731

    def job(attempt: int) -> tuple[list[str], Path]:
        return _torchrun(2, "-m", "wpl", "search", *rnn_argv(data, cut(attempt), *extra)), \
            cut(attempt) / "logs" / RUN / "metrics.jsonl"

    code, err, attempt = signal_when(job, signal.SIGTERM, env=ENV)
    assert "stopped by SIGTERM" in err, err[-2000:]
    _wpl(2, "search", rnn_argv(data, cut(attempt), *extra, "--resume=True"))
    assert_same_run(tmp_path / "whole" / "logs", cut(attempt) / "logs")
    # resuming with another number of processes is refused, in one line
    proc = _wpl(1, "search", rnn_argv(data, tmp_path / "part", *extra, "--max_epoch=7", "--resume=True"), check=False)
    assert proc.returncode != 0 and "resume it with as many" in proc.stderr


@pytest.mark.slow
def test_a_rank_that_crashes_stops_the_job_instead_of_hanging(tmp_path: Path) -> None:
    text, cifar = make_text(tmp_path / "text", lines=(600, 80, 80)), make_cifar(tmp_path / "cifar")
    env = {**ENV, "WPL_DIST_TIMEOUT_S": "30"}
    # a hang would outlast the collectives' 30 s timeout and then subprocess's timeout: that fails the test
    proc = subprocess.run(_torchrun(2, str(WORKER), str(text), str(cifar), str(tmp_path / "out"), "4", "1"),
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode != 0 and "crashed on purpose" in proc.stderr
    assert not list((tmp_path / "out").glob("*.pt"))


@pytest.mark.slow
@pytest.mark.parametrize("space", ["micro_cnn", "nb201"])
def test_a_two_rank_image_search_resumes_exactly(space: str, tmp_path: Path) -> None:
    from test_nas_cnn import TINY_CNN
    from test_nb201 import TINY_NB201

    data = make_cifar(tmp_path / "data")
    # nb201: the in-search ranking; micro_cnn: a per-sample Fisher (batch norms local inside it)
    if space == "nb201":
        tiny = [*TINY_NB201, "--rank_every=1", "--rank_archs=4"]
    else:
        tiny = [*TINY_CNN, "--dataset=cifar10", "--fisher_estimator=empirical"]

    def argv(out: str, *extra: str) -> list[str]:
        return [*tiny, f"--data_dir={data}", f"--log_dir={tmp_path / out}", "--checkpoint_every_steps=1", *extra]

    _wpl(2, "search", argv("whole", "--max_epoch=2"))
    _wpl(2, "search", argv("part", "--max_epoch=1"))
    _wpl(2, "search", argv("part", "--max_epoch=2", "--resume=True"))
    (run,) = (tmp_path / "whole").iterdir()
    again = tmp_path / "part" / run.name
    ca, cb = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (run, again))
    assert len(ca["ranks"]) == 2
    for key in ("supernet", "controller"):
        assert all(torch.equal(t, cb[key][n]) for n, t in ca[key].items()), key
    for name in ("metrics.jsonl", "forgetting.csv"):
        assert (run / name).read_text() == (again / name).read_text(), name
    from test_resume_anywhere import assert_same_summary

    assert assert_same_summary(run / "summary.json", again / "summary.json")["network_type"] == space
    if space == "nb201":
        assert any(json.loads(ln).get("event") == "rank" for ln in (run / "metrics.jsonl").read_text().splitlines())


def test_wpl_rank_under_torchrun_is_refused_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from wpl.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["rank", "--model_name=x", f"--log_dir={tmp_path}"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without torchrun" in err[0]


def _final_argv(space: str, data: Path, out: Path, batch: int, *extra: str) -> list[str]:
    from test_final import CNN_RECIPE, RNN_RECIPE

    if space == "rnn":
        return ["--arch=random:1", "--dataset=tiny", f"--data_dir={data}", *RNN_RECIPE, f"--log_dir={out}",
                f"--final_batch_size={batch}", *extra]
    return ["--arch=enas-cifar10", f"--data_dir={data}", *CNN_RECIPE, f"--log_dir={out}",
            f"--final_batch_size={batch}", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("space", ["rnn", "micro_cnn"])
def test_a_two_rank_final_training_equals_one_process_at_the_global_batch(space: str, tmp_path: Path) -> None:
    if space == "rnn":
        data = make_text(tmp_path / "data", lines=(600, 80, 80))
        # lr 2, not 20: at 20 the float rounding of the two sums compounds chaotically over an epoch
        off = ["--final_dropout=0", "--final_dropoute=0", "--final_dropouti=0", "--final_wdrop=0", "--final_lr=2"]
    else:
        # one epoch of 4 steps: this 2-channel net's batch norms see near-zero variances within a few more,
        # and from there the sums' float rounding grows a hundredfold per step
        data = make_cifar(tmp_path / "data", per_batch=8)
        off = ["--final_drop_path=0", "--max_epoch=1"]
    _wpl(2, "train-final", _final_argv(space, data, tmp_path / "two", 4, "--max_epoch=2", *off))
    _wpl(1, "train-final", _final_argv(space, data, tmp_path / "one", 8, "--max_epoch=2", *off))
    (two,), (one,) = (tmp_path / "two").iterdir(), (tmp_path / "one").iterdir()
    wa, wb = (torch.load(d / "best.pt", weights_only=True)["weights"] for d in (two, one))
    for n, t in wb.items():
        torch.testing.assert_close(wa[n].float(), t.float(), rtol=1e-4, atol=1e-5, msg=n)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (two, one))
    assert sa["test"] == pytest.approx(sb["test"], rel=1e-4) and sa["best_epoch"] == sb["best_epoch"]
    assert [e["train_loss"] for e in sa["epochs"]] == pytest.approx([e["train_loss"] for e in sb["epochs"]], rel=1e-4)


@pytest.mark.slow
def test_a_two_rank_final_training_resumes_exactly(tmp_path: Path) -> None:
    data = make_text(tmp_path / "data", lines=(600, 80, 80))
    _wpl(2, "train-final", _final_argv("rnn", data, tmp_path / "whole", 4, "--max_epoch=2"))
    _wpl(2, "train-final", _final_argv("rnn", data, tmp_path / "part", 4, "--max_epoch=1"))
    _wpl(2, "train-final", _final_argv("rnn", data, tmp_path / "part", 4, "--max_epoch=2", "--resume=True"))
    (whole,), (part,) = (tmp_path / "whole").iterdir(), (tmp_path / "part").iterdir()
    wa, wb = (torch.load(d / "best.pt", weights_only=True)["weights"] for d in (whole, part))
    assert all(torch.equal(t, wb[n]) for n, t in wa.items())
    ea, eb = ([{k: v for k, v in json.loads(ln).items() if k != "seconds"} for ln in
               (d / "metrics.jsonl").read_text().splitlines()] for d in (whole, part))
    assert ea == eb and len(ea) == 3
    assert len(torch.load(whole / "checkpoint.pt", weights_only=True)["ranks"]) == 2
    # one process cannot continue it: its columns of the corpus differ
    proc = _wpl(1, "train-final", _final_argv("rnn", data, tmp_path / "part", 4, "--max_epoch=3", "--resume=True"),
                check=False)
    assert proc.returncode != 0 and "resume it with as many" in proc.stderr
