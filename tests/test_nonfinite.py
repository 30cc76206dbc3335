"""NaN / inf in each phase of a search: one line naming what and where, the last good checkpoint,
the fix, exit status 1, and no summary that looks complete."""

import math
from pathlib import Path

import pytest

from conftest import rnn_argv
from wpl.cli import main
from wpl.nas.spaces.rnn.task import RnnTask

RUN = "tiny_rnn-train"


def _poison(monkeypatch, method: str, after: int, index: int | None = None) -> None:
    """Make ``RnnTask.method`` return NaN (in element ``index`` of its tuple) from its ``after``-th call on."""
    real = getattr(RnnTask, method)
    calls = {"n": 0}

    def poisoned(self, *a, **kw):
        out = real(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] <= after:
            return out
        if isinstance(out, dict):
            return {**out, "loss": math.nan}
        return tuple(math.nan if i == index else v for i, v in enumerate(out))

    monkeypatch.setattr(RnnTask, method, poisoned)


@pytest.mark.parametrize("method, after, index, what, where", [
    ("score", 2, 1, "validation loss", "shared step 2 (forgetting telemetry)"),
    ("score", 3, 1, "validation loss", "at epoch 0 (forgetting, err2)"),  # 3 err1, then err2
    ("score", 7, 1, "validation loss", "at epoch 0 (derive)"),  # 3 err1, 3 err2, then the derive's candidates
    ("reward", 1, 1, "validation loss of a reward", "at controller step 1"),
    ("evaluate", 0, None, "validation loss of the derived cell", "at epoch 0 (derive)"),
])
def test_non_finite_values_in_each_phase_are_one_line(text_root: Path, tmp_path: Path, monkeypatch, capsys,
                                                       method, after, index, what, where) -> None:
    _poison(monkeypatch, method, after, index)
    argv = rnn_argv(text_root, tmp_path, "--max_epoch=2", "--forgetting_batches=1")
    assert main(["search", *argv]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and f"non-finite {what} (nan)" in err[0] and where in err[0], err
    assert "lower the shared learning rate (--shared_lr=20)" in err[0]
    assert not (tmp_path / "logs" / RUN / "summary.json").exists()


def test_a_non_finite_fisher_is_caught(text_root: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from wpl.plasticity import WeightPlasticity

    real = WeightPlasticity.estimate_fisher

    def poisoned(self, *a, **kw):
        out = real(self, *a, **kw)
        next(iter(self.fisher.values())).fill_(math.inf)
        return out

    monkeypatch.setattr(WeightPlasticity, "estimate_fisher", poisoned)
    assert main(["search", *rnn_argv(text_root, tmp_path, "--max_epoch=2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "non-finite Fisher" in err and "the last good checkpoint is" in err and "checkpoint.pt" in err


def test_an_overflowing_perplexity_is_logged_not_a_crash(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    """A finite loss above ≈709 nats has an infinite perplexity: a measurement (null in JSON), not an error."""
    real = RnnTask.score

    def huge(self, arch):
        err, loss = real(self, arch)
        return math.inf, loss + 1000.0

    monkeypatch.setattr(RnnTask, "score", huge)
    assert main(["search", *rnn_argv(text_root, tmp_path, "--max_epoch=1")]) == 0
    assert (tmp_path / "logs" / RUN / "summary.json").is_file()
