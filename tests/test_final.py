"""``wpl train-final`` on tiny runs of both spaces: search → train-final → --mode=test, identical
training from a run and from the same cell's JSON, exact resume, named cells, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import make_cifar, make_text, rnn_argv
from test_nas_cnn import TINY_CNN
from wpl.cli import main
from wpl.nas.presets import PRESETS, resolve_arch
from wpl.nas.search.run import run_search
from wpl.nas.spaces.micro_cnn.final import CnnFinalConfig, FixedCNN

RNN_RECIPE = ["--final_embed=8", "--final_hid=8", "--final_batch_size=4", "--final_eval_batch_size=4",
              "--final_test_batch_size=2", "--final_bptt=6", "--use_tensorboard=False", "--log_level=WARNING",
              "--device=cpu"]
CNN_RECIPE = ["--final_channels=2", "--final_num_cells=3", "--final_batch_size=8", "--final_eval_batch_size=16",
              "--final_cutout=4", "--final_auxiliary=True", "--valid_size=8", "--use_tensorboard=False",
              "--log_level=WARNING", "--device=cpu"]
SUMMARY_KEYS = {"metric", "best_valid", "test", "best_epoch", "test_metrics", "params", "epochs_done", "max_epoch",
                "stopped_early", "arch", "source", "network_type", "dataset", "seconds", "epochs"}


def _final(*argv: str) -> None:
    assert main(["train-final", *argv]) == 0


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.fixture
def rnn_run(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny finished RNN search: (data root, log_dir)."""
    data = make_text(tmp_path / "data")
    run_search(rnn_argv(data, tmp_path))
    return data, tmp_path / "logs"


def test_rnn_search_then_final_then_test(rnn_run, capsys) -> None:
    data, logs = rnn_run
    _final("--model_name=tiny_rnn-train", f"--log_dir={logs}", "--max_epoch=3", *RNN_RECIPE)
    out = capsys.readouterr().out
    final = logs / "tiny_rnn-train" / "final"
    s = _summary(final)
    assert SUMMARY_KEYS <= s.keys() and s["metric"] == "ppl" and s["epochs_done"] == 3
    assert s["arch"] == json.loads((logs / "tiny_rnn-train" / "summary.json").read_text())["best_arch"]
    assert s["params"] > 0 and s["test"] > 1 and len(s["epochs"]) == 3
    assert "test ppl" in out and str(final) in out
    events = [json.loads(ln) for ln in (final / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["final_epoch"] * 3 + ["done"]
    assert torch.load(final / "best.pt", weights_only=True)["epoch"] == s["best_epoch"]
    assert torch.load(final / "checkpoint.pt", weights_only=True)["epoch"] == 3  # epochs done
    # --mode=test now reports the final model's number
    res = run_search(["--mode=test", f"--load_path={logs / 'tiny_rnn-train'}", f"--data_dir={data}",
                      "--log_level=WARNING"])
    assert res["model"] == "final" and res["test"] == s["test"]


def test_main_py_mode_train_final_is_train_final(rnn_run, tmp_path: Path) -> None:
    _, logs = rnn_run
    assert main(["search", "--mode=train_final", f"--load_path={logs / 'tiny_rnn-train'}", "--max_epoch=1",
                 *RNN_RECIPE]) == 0
    assert _summary(logs / "tiny_rnn-train" / "final")["epochs_done"] == 1


def test_a_cell_from_json_trains_as_the_same_cell_from_its_run(rnn_run, tmp_path: Path) -> None:
    data, logs = rnn_run
    _final("--model_name=tiny_rnn-train", f"--log_dir={logs}", "--max_epoch=2", *RNN_RECIPE)
    from_run = _summary(logs / "tiny_rnn-train" / "final")
    cell = tmp_path / "cell.json"
    cell.write_text(json.dumps(from_run["arch"]))
    _final(f"--arch={cell}", f"--log_dir={tmp_path / 'alone'}", "--dataset=tiny", f"--data_dir={data}",
           "--max_epoch=2", *RNN_RECIPE)
    alone = _summary(tmp_path / "alone" / "cell")
    assert alone["test"] == from_run["test"] and alone["best_valid"] == from_run["best_valid"]
    assert [e["train_loss"] for e in alone["epochs"]] == [e["train_loss"] for e in from_run["epochs"]]


def test_final_training_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    data = make_text(tmp_path / "data")
    common = ["--arch=random:1", "--dataset=tiny", f"--data_dir={data}", *RNN_RECIPE, "--final_asgd=True",
              "--final_nonmono=1"]
    _final(*common, f"--log_dir={tmp_path / 'full'}", "--max_epoch=4")
    interrupted_final(monkeypatch, common, tmp_path / "part", 4, after=2)
    _final(*common, f"--log_dir={tmp_path / 'part'}", "--max_epoch=4", "--resume=True")
    a, b = _summary(tmp_path / "full" / "random-rnn-1"), _summary(tmp_path / "part" / "random-rnn-1")
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in a["epochs"]]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in b["epochs"]]
    assert a["test"] == b["test"] and a["best_epoch"] == b["best_epoch"]
    full_events = (tmp_path / "full" / "random-rnn-1" / "metrics.jsonl").read_text().splitlines()
    part_events = (tmp_path / "part" / "random-rnn-1" / "metrics.jsonl").read_text().splitlines()
    assert len(full_events) == len(part_events) == 5


def interrupted_final(monkeypatch, argv: list[str], log_dir: Path, max_epoch: int, after: int) -> None:
    """``wpl train-final`` with ``argv`` dying (KeyboardInterrupt) right after its ``after``-th epoch checkpoint."""
    from wpl.nas.final import loop as final_mod

    real = final_mod.save_checkpoint
    calls = {"n": 0}

    def interrupt(path, state, **kw):
        out = real(path, state, **kw)
        if Path(path).name == "checkpoint.pt":
            calls["n"] += 1
            if calls["n"] == after:
                raise KeyboardInterrupt
        return out

    monkeypatch.setattr(final_mod, "save_checkpoint", interrupt)
    with pytest.raises(KeyboardInterrupt):
        final_mod.train_final(_job(argv, log_dir, max_epoch))
    monkeypatch.setattr(final_mod, "save_checkpoint", real)


def _job(argv: list[str], log_dir: Path, max_epoch: int):
    from wpl.nas.final.flags import build_job, parse_final_args

    return build_job(parse_final_args([*argv, f"--log_dir={log_dir}", f"--max_epoch={max_epoch}"]))


def test_cnn_search_then_final(tmp_path: Path) -> None:
    data = make_cifar(tmp_path / "data", per_batch=40)
    run_search([*TINY_CNN, "--dataset=cifar10", f"--data_dir={data}", f"--log_dir={tmp_path / 'logs'}",
                "--max_epoch=1"])
    _final("--model_name=cifar10_cnn", f"--log_dir={tmp_path / 'logs'}", "--max_epoch=2", *CNN_RECIPE)
    s = _summary(tmp_path / "logs" / "cifar10_cnn" / "final")
    assert s["metric"] == "error" and s["network_type"] == "micro_cnn"
    assert s["test"] * 40 == pytest.approx(round(s["test"] * 40))  # an error rate over the 40 test images


@pytest.mark.slow
def test_cnn_train_plus_valid_tests_the_last_epoch(tmp_path: Path) -> None:
    data = make_cifar(tmp_path / "data", per_batch=40)
    _final("--arch=enas-cifar10", f"--data_dir={data}", f"--log_dir={tmp_path / 'logs'}", "--max_epoch=2",
           "--final_train_on=train+valid", *CNN_RECIPE)
    s = _summary(tmp_path / "logs" / "enas-cifar10")
    assert s["best_valid"] is None and s["best_epoch"] == 1
    assert s["test"] * 40 == pytest.approx(round(s["test"] * 40))  # an error rate over the 40 test images


@pytest.mark.parametrize("name", list(PRESETS))
def test_named_cells_parse_and_build(name: str) -> None:
    arch, _ = resolve_arch(name)
    assert resolve_arch(name)[0] == arch and type(arch).from_json(arch.to_json()) == arch
    if PRESETS[name].space == "rnn":
        from wpl.nas.spaces.rnn.supernet import SharedRNN

        model = SharedRNN(20, 8, 8, arch.num_blocks, only=arch)
        assert len(model.edges) == arch.num_blocks - 1
        logits, _, _ = model(torch.randint(0, 20, (3, 2)), torch.zeros(2, 8), arch)
    else:
        model = FixedCNN(arch, 3, 10, CnnFinalConfig(channels=2, num_cells=3)).eval()
        logits, _ = model(torch.randn(2, 3, 16, 16))
    assert torch.isfinite(logits).all()


def test_enas_ptb_cell_is_the_published_one() -> None:
    arch = PRESETS["enas-ptb"].arch
    assert arch.num_blocks == 12 and arch.leaves() == [2, 5, 6, 9, 10, 11]


@pytest.mark.parametrize("argv, message", [
    (["--model_name=nope"], "no search run at"),
    (["--arch=no-such-cell"], "unknown cell 'no-such-cell'; the named cells are enas-ptb"),
    ([], "name the cell to train"),
    (["--arch=random:x"], "write random:SEED"),
    (["--arch=enas-ptb", "--final_channels=4"], "--final_channels: not a setting of the rnn recipe"),
    (["--arch=enas-ptb", "--final_dropout=1.5"], "--final_dropout=1.5: must be in [0, 1)"),
])
def test_bad_input_is_one_line(argv, message, tmp_path: Path, capsys) -> None:
    assert main(["train-final", f"--log_dir={tmp_path}", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not any(tmp_path.iterdir())


def test_bad_cell_files_and_runs_without_cells(rnn_run, tmp_path: Path, capsys) -> None:
    _, logs = rnn_run
    cases = {"wrong_space.json": {"type": "nb201", "ops": []}, "bad_op.json": {
        "type": "micro_cnn", "normal": [[0, "conv_7x7", 1, "identity"]], "reduce": [[0, "identity", 1, "identity"]]}}
    for fname, body in cases.items():
        (tmp_path / fname).write_text(json.dumps(body))
        assert main(["train-final", f"--arch={tmp_path / fname}", f"--log_dir={tmp_path / 'o'}"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fname in err[0], err
    assert main(["train-final", "--model_name=nope", f"--log_dir={logs}"]) == 1
    assert "tiny_rnn-train" in capsys.readouterr().err  # the runs that exist are listed
    bare = logs / "empty_run"
    (bare / "networks").mkdir(parents=True)
    (bare / "config.json").write_text("{}")
    assert main(["train-final", "--model_name=empty_run", f"--log_dir={logs}"]) == 1
    assert "no derived cell yet" in capsys.readouterr().err


def test_mode_test_scores_a_named_cell_with_the_supernet(rnn_run, tmp_path: Path) -> None:
    data, logs = rnn_run
    run = logs / "tiny_rnn-train"
    res = run_search(["--mode=test", f"--load_path={run}", f"--data_dir={data}", "--arch=random:5",
                      "--log_level=WARNING"])
    assert res["model"] == "supernet" and res["name"] == "random-rnn-5" and res["test"] > 1
    assert json.loads((run / "test_random-rnn-5.json").read_text()) == res
    assert main(["search", "--mode=test", f"--load_path={run}", f"--data_dir={data}", "--arch=enas-cifar10",
                 "--log_level=WARNING"]) == 1  # a CNN cell for an RNN run


def test_draw_a_named_cell(tmp_path: Path, capsys) -> None:
    import re
    from collections import Counter

    from conftest import assert_drawn
    from wpl.nas.spaces.micro_cnn.supernet import OPS

    assert main(["draw", "--arch=enas-cifar10", f"--output={tmp_path / 'c.png'}"]) == 0
    assert_drawn(tmp_path / "c.png")
    dot = (tmp_path / "c.dot").read_text()
    arch = PRESETS["enas-cifar10"].arch
    ops = Counter(OPS[b[k]].label for cell in (arch.normal, arch.reduce) for b in cell for k in (1, 3))
    assert dot.count("(block ") == 10 and Counter(re.findall(r'op[01] \[label="([^"]+)"', dot)) == ops
    assert "wrote" in capsys.readouterr().out


def test_mode_test_refuses_a_cell_the_supernet_cannot_run(rnn_run, capsys) -> None:
    data, logs = rnn_run  # the tiny run's cells have 3 nodes; the ENAS cell 12
    assert main(["search", "--mode=test", f"--load_path={logs / 'tiny_rnn-train'}", f"--data_dir={data}",
                 "--arch=enas-ptb", "--log_level=WARNING"]) == 1
    assert "cannot run that cell" in capsys.readouterr().err
