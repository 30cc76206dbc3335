"""What the machine can do to a run: a full disk during a checkpoint or a log write, a read-only or
vanished log folder, the data deleted underneath it. Each stops with one line naming the file and the
fix (exit status 1), leaves the last checkpoint and the logs up to it intact, and resumes to the run
it would have been."""

import errno
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import rnn_argv
from test_resume_anywhere import RUN, assert_same_run
from wpl import fileio
from wpl.checkpoint import load_checkpoint
from wpl.cli import main
from wpl.nas.search import progress as progress_mod


def _fail_nth(monkeypatch, target, name: str, n: int, err: int, create: bool = False) -> None:
    """``target.name`` raises OSError(``err``) on its ``n``-th call (``create``: a module global shadowing the
    builtin of that name)."""
    import builtins

    real = getattr(builtins, name) if create else getattr(target, name)
    calls = {"k": 0}

    def failing(*a, **kw):
        calls["k"] += 1
        if calls["k"] == n:
            raise OSError(err, os.strerror(err))
        return real(*a, **kw)

    monkeypatch.setattr(target, name, failing, raising=not create)


def _last_error(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]


@pytest.mark.parametrize("where", ["checkpoint", "log"])
def test_a_full_disk_stops_cleanly_and_resumes(text_root: Path, tmp_path: Path, monkeypatch, capsys, where) -> None:
    extra = ["--max_epoch=3", "--checkpoint_every_steps=4"]
    assert main(["search", *rnn_argv(text_root, tmp_path / "whole", *extra)]) == 0
    argv = rnn_argv(text_root, tmp_path / "full", *extra)
    if where == "checkpoint":
        _fail_nth(monkeypatch, torch, "save", 4, errno.ENOSPC)
    else:
        _fail_nth(monkeypatch, fileio, "open", 30, errno.ENOSPC, create=True)  # the log appends: fileio's open
    assert main(["search", *argv]) == 1
    err = _last_error(capsys)
    name = r"checkpoint[_\w]*\.pt" if where == "checkpoint" else r"(metrics\.jsonl|forgetting\.csv)"
    assert len(err) == 1 and "no space left on the device (it needed about" in err[0] and "free there" in err[0]
    assert re.search(rf"/{name}: no space", err[0]), err[0]
    assert "--resume=True" in err[0]
    run = tmp_path / "full" / "logs" / RUN
    load_checkpoint(run / "checkpoint.pt")  # the last one is whole
    assert not list(run.glob(".*.tmp")) and not (run / "summary.json").exists()
    monkeypatch.undo()
    assert main(["search", *argv, "--resume=True"]) == 0
    assert_same_run(tmp_path / "whole" / "logs", tmp_path / "full" / "logs")


def test_a_read_only_log_folder_is_one_line(text_root: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    _fail_nth(monkeypatch, fileio, "open", 3, errno.EROFS, create=True)
    assert main(["search", *rnn_argv(text_root, tmp_path, "--max_epoch=1")]) == 1
    err = _last_error(capsys)
    assert len(err) == 1 and "cannot write it (Read-only file system)" in err[0] and "--log_dir" in err[0]


def test_a_vanished_run_folder_is_one_line(text_root: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    real = progress_mod.Checkpointing.boundary

    def boundary(self, phase, step, acc):
        if self.boundaries == 2:
            shutil.rmtree(self.dir)
        real(self, phase, step, acc)

    monkeypatch.setattr(progress_mod.Checkpointing, "boundary", boundary)
    assert main(["search", *rnn_argv(text_root, tmp_path, "--max_epoch=1")]) == 1
    err = _last_error(capsys)
    assert len(err) == 1 and "its folder no longer exists" in err[0], err


def test_the_data_deleted_mid_run_does_not_matter(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    """The corpus is read once, into memory: removing it under a running search changes nothing."""
    data = tmp_path / "copy"
    shutil.copytree(text_root, data)
    real = progress_mod.Checkpointing.boundary

    def boundary(self, phase, step, acc):
        shutil.rmtree(data, ignore_errors=True)
        real(self, phase, step, acc)

    monkeypatch.setattr(progress_mod.Checkpointing, "boundary", boundary)
    assert main(["search", *rnn_argv(data, tmp_path, "--max_epoch=1")]) == 0
    assert (tmp_path / "logs" / RUN / "summary.json").is_file()
