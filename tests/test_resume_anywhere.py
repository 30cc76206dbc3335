"""A search killed at any step — inside the shared, controller or derive phase, or between them —
resumes with the same command to exactly the run it would have been."""

import json
from pathlib import Path

import pytest
import torch

from conftest import rnn_argv
from wpl.nas.search import loop as search_mod
from wpl.nas.search import progress as progress_mod
from wpl.nas.search.run import run_search

RUN = "tiny_rnn-train"


class Killed(BaseException):
    """What a kill looks like from inside: nothing after it runs."""


def run_killed_at(argv: list[str], kills: list[int], monkeypatch, after_save: bool) -> int:
    """Run ``argv`` again and again (with --resume=True after the first), each time dying at the next
    step boundary of ``kills`` (counted from that process's start); return how many runs it took."""
    real = progress_mod.Checkpointing.boundary
    runs = 0
    for k in [*kills, None]:
        seen = {"n": 0}

        def boundary(self, phase, step, acc, k=k, seen=seen):
            seen["n"] += 1
            if seen["n"] == k and not after_save:
                raise Killed
            real(self, phase, step, acc)
            if seen["n"] == k:
                raise Killed

        monkeypatch.setattr(progress_mod.Checkpointing, "boundary", boundary)
        try:
            run_search([*argv, *(["--resume=True"] if runs else [])])
        except Killed:
            assert k is not None
        runs += 1
    monkeypatch.setattr(progress_mod.Checkpointing, "boundary", real)
    return runs


def assert_same_run(a: Path, b: Path) -> None:
    """Same weights, Fisher, logs and summary (but for wall-clock times, and the run group of its configs: where
    each ran and whether it resumed)."""
    ca, cb = (torch.load(d / RUN / "checkpoint.pt", weights_only=True) for d in (a, b))
    for key in ("supernet", "controller"):
        assert all(torch.equal(t, cb[key][n]) for n, t in ca[key].items()), key
    assert all(torch.equal(t, cb["wpl"]["fisher"][n]) for n, t in ca["wpl"]["fisher"].items())
    for name in ("metrics.jsonl", "forgetting.csv"):
        assert (a / RUN / name).read_text() == (b / RUN / name).read_text(), name
    assert_same_summary(a / RUN / "summary.json", b / RUN / "summary.json")


RUN_ONLY = ("data_dir", "log_dir", "resume", "load_path")  # where a run ran and how it was started


def assert_same_summary(a: Path, b: Path) -> dict:
    """Two runs' ``summary.json`` agree but for wall-clock times and where each ran and how it was started; the
    first."""
    sa, sb = (json.loads(p.read_text()) for p in (a, b))
    sa.pop("seconds"), sb.pop("seconds")
    ra, rb = ({k: v for k, v in s["configs"].pop("run").items() if k not in RUN_ONLY} for s in (sa, sb))
    assert ra == rb and sa == sb
    return sa


@pytest.mark.slow
@pytest.mark.parametrize("every, after_save, kills", [
    (1, True, [2, 5, 4, 7]),   # killed right after a checkpoint: nothing to redo
    (1, False, [3, 6, 1, 9]),  # killed just before one: one step redone
    (4, False, [7, 5, 6]),     # between sparse checkpoints: up to 3 steps redone
])
def test_killed_anywhere_resumes_identically(text_root: Path, tmp_path: Path, monkeypatch, every, after_save,
                                             kills) -> None:
    extra = ["--max_epoch=3", f"--checkpoint_every_steps={every}", "--start_training_controller=1"]
    run_search(rnn_argv(text_root, tmp_path / "whole", *extra))
    runs = run_killed_at(rnn_argv(text_root, tmp_path / "killed", *extra), kills, monkeypatch, after_save)
    assert runs == len(kills) + 1
    assert_same_run(tmp_path / "whole" / "logs", tmp_path / "killed" / "logs")


def test_a_mid_phase_checkpoint_says_where_it_stands(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    from wpl.checkpoint import load_checkpoint
    from wpl.nas.search.run import _where

    argv = rnn_argv(text_root, tmp_path, "--max_epoch=2", "--checkpoint_every_steps=1")
    real = progress_mod.Checkpointing.boundary

    def boundary(self, phase, step, acc):
        real(self, phase, step, acc)
        if self.boundaries == 5:  # epoch 0: 3 shared steps, then the controller's second
            raise Killed

    monkeypatch.setattr(progress_mod.Checkpointing, "boundary", boundary)
    with pytest.raises(Killed):
        run_search(argv)
    state = load_checkpoint(tmp_path / "logs" / RUN / "checkpoint.pt")
    assert _where(state) == "epoch 0, controller step 2" and set(state["progress"]["done"]) == {"shared", "forgetting"}
    assert not (tmp_path / "logs" / RUN / "summary.json").exists()


def test_auto_checkpoints_follow_the_clock(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    """-1 (the default) writes once enough time has passed since the last write, whatever the step."""
    from wpl.checkpoint import load_checkpoint

    saves = []
    real_save = search_mod.Search.save

    def save(self, copy, epoch=None):
        saves.append((self.progress or {}).get("step"))
        return real_save(self, copy, epoch)

    monkeypatch.setattr(search_mod.Search, "save", save)
    monkeypatch.setattr(progress_mod, "AUTO_CHECKPOINT_MIN_S", 1e9)  # never due: epoch ends only
    run_search(rnn_argv(text_root, tmp_path / "a", "--max_epoch=1"))
    assert saves == [None]
    saves.clear()
    monkeypatch.setattr(progress_mod, "AUTO_CHECKPOINT_MIN_S", 0.0)  # always due: every step
    monkeypatch.setattr(progress_mod, "AUTO_CHECKPOINT_RATIO", 0.0)
    run_search(rnn_argv(text_root, tmp_path / "b", "--max_epoch=1"))
    assert saves[:3] == [1, 2, 3] and saves[-1] is None  # the shared phase's steps, ..., the epoch's end
    assert load_checkpoint(tmp_path / "b" / "logs" / RUN / "checkpoint.pt")["progress"] is None


def test_killed_during_a_checkpoint_write(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    """Half a file written, then the kill: the temporary is dropped, checkpoint.pt is the previous one, and
    the resumed run is the uninterrupted one."""
    extra = ["--max_epoch=3", "--checkpoint_every_steps=2"]
    run_search(rnn_argv(text_root, tmp_path / "whole", *extra))
    real = torch.save
    calls = {"n": 0}

    def half_then_die(obj, f, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            Path(f).write_bytes(b"PK\x03\x04 half a zip")
            raise Killed
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", half_then_die)
    argv = rnn_argv(text_root, tmp_path / "killed", *extra)
    with pytest.raises(Killed):
        run_search(argv)
    monkeypatch.setattr(torch, "save", real)
    run_search([*argv, "--resume=True"])
    assert_same_run(tmp_path / "whole" / "logs", tmp_path / "killed" / "logs")
