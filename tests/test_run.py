"""Run folders as a user drives them: extending and resuming runs, --load_path forms, checkpoint
rotation, a NaN loss, the metrics schema, the root scripts and the demo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import assert_schema, events_of, rnn_argv
from wpl.cli import main
from wpl.nas.search.flags import parse_search_args
from wpl.nas.search.run import run_dir_for, run_search

ROOT = Path(__file__).resolve().parent.parent
RUN = "tiny_rnn-train"


def test_resume_with_a_larger_max_epoch_extends_the_run(text_root: Path, tmp_path: Path) -> None:
    run_search(rnn_argv(text_root, tmp_path, "--max_epoch=2"))
    run = tmp_path / "logs" / RUN
    summary = run_search(rnn_argv(text_root, tmp_path, "--max_epoch=3", "--resume=True"))
    assert summary["epochs_done"] == 3 and summary["max_epoch"] == 3
    assert [e["epoch"] for e in events_of(run) if e["event"] == "epoch"] == [0, 1, 2]
    assert json.loads((run / "config.json").read_text())["max_epoch"] == 3
    # resuming with the same command after it finished runs nothing more
    assert run_search(rnn_argv(text_root, tmp_path, "--max_epoch=3", "--resume=True"))["epochs_done"] == 3


def test_resume_keeps_learned_flags_unless_asked(text_root: Path, tmp_path: Path, capsys) -> None:
    run_search(rnn_argv(text_root, tmp_path, "--max_epoch=1", "--start_using_fisher=0"))
    run = tmp_path / "logs" / RUN
    capsys.readouterr()
    run_search(rnn_argv(text_root, tmp_path, "--max_epoch=2", "--start_using_fisher=0", "--resume=True",
                        "--shared_lr=1.0"))
    warned = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warned) == 1 and "ignoring --shared_lr from the command line" in warned[0]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["shared_lr"] == 20.0 and cfg["max_epoch"] == 2
    lr = [e["lr"] for e in events_of(run) if e["event"] == "epoch"]
    assert lr == [20.0, 20.0]
    run_search(rnn_argv(text_root, tmp_path, "--max_epoch=3", "--resume=True", "--shared_lr=1.0",
                        "--resume_with_new_params=True"))
    assert [e["lr"] for e in events_of(run) if e["event"] == "epoch"] == [20.0, 20.0, 1.0]


def test_load_path_forms_name_the_same_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / RUN).mkdir(parents=True)
    for form in (str(logs / RUN), RUN, "rnn-train"):
        args = parse_search_args(["--dataset=tiny", f"--log_dir={logs}", f"--load_path={form}"])
        assert run_dir_for(args.run) == logs / RUN, form
    args = parse_search_args(["--dataset=tiny", f"--log_dir={logs}", "--comment=rnn-train"])
    assert run_dir_for(args.run) == logs / RUN


def test_load_path_resumes_without_the_original_flags(text_root: Path, tmp_path: Path) -> None:
    run_search(rnn_argv(text_root, tmp_path, "--max_epoch=1"))
    summary = run_search(["--dataset=tiny", f"--log_dir={tmp_path / 'logs'}", f"--load_path={RUN}",
                          f"--data_dir={text_root}", "--max_epoch=2", "--use_tensorboard=False"])
    assert summary["epochs_done"] == 2
    cfg = json.loads((tmp_path / "logs" / RUN / "config.json").read_text())
    assert cfg["shared_hid"] == 8 and cfg["num_blocks"] == 3  # the run's own sizes, not the defaults


def test_checkpoint_copies_rotate(text_root: Path, tmp_path: Path) -> None:
    run_search(rnn_argv(text_root, tmp_path, "--max_epoch=4", "--max_save_num=2"))
    copies = sorted(p.name for p in (tmp_path / "logs" / RUN).glob("checkpoint_epoch_*.pt"))
    assert copies == ["checkpoint_epoch_002.pt", "checkpoint_epoch_003.pt"]


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint(text_root: Path, tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    from wpl.nas.spaces.rnn.task import RnnTask

    real = RnnTask.train_loss
    calls = {"n": 0}

    def poisoned(self, arch):
        total, ce = real(self, arch)
        calls["n"] += 1
        return (total * float("nan"), ce) if calls["n"] > 3 * 2 else (total, ce)  # epoch 1, step 0

    monkeypatch.setattr(RnnTask, "train_loss", poisoned)
    assert main(["search", *rnn_argv(text_root, tmp_path, "--max_epoch=3")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith("wpl search: error: non-finite training loss (nan) at epoch 1, "
                                               "shared step 0; the last good checkpoint is ")
    run = tmp_path / "logs" / RUN
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and not (run / "summary.json").exists()


def test_entropy_regularizer_and_discount_run_end_to_end(text_root: Path, tmp_path: Path) -> None:
    summary = run_search(rnn_argv(text_root, tmp_path, "--max_epoch=1", "--entropy_mode=regularizer",
                                  "--discount=0.9", "--policy_batch_size=2"))
    ctrl = [e for e in events_of(tmp_path / "logs" / RUN) if e["event"] == "controller"]
    assert ctrl and all(e["entropy"] > 0 for e in ctrl) and summary["epochs_done"] == 1


def test_metrics_schema_of_the_rnn_space(text_root: Path, tmp_path: Path) -> None:
    summary = run_search(rnn_argv(text_root, tmp_path, "--forgetting_top_k=2"))
    assert_schema(tmp_path / "logs" / RUN, summary, "ppl", top_k=2)


@pytest.mark.slow
@pytest.mark.parametrize("flags, message", [
    (["--alpha_decay_mode=2"], "--alpha_decay=2.0 (the default): with --alpha_decay_mode=2 it is a factor"),
    (["--alpha_fisher=-1"], "--alpha_fisher=-1.0: must be >= 0"),
    (["--alpha_decay=-1"], "--alpha_decay=-1.0: must be >= 0"),
])
def test_bad_alpha_is_refused_before_any_data_loads(flags, message, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *flags, f"--data_dir={tmp_path / 'none'}",
                           f"--log_dir={tmp_path / 'logs'}"], capture_output=True, text=True, cwd=tmp_path)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and message in err[0], proc.stderr
    assert not (tmp_path / "logs").exists()


def test_unavailable_cpp_cell_is_one_line_and_writes_nothing(text_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "WPL_CPP": "0"}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *rnn_argv(text_root, tmp_path, "--rnn_cell=cpp")],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    err = [ln for ln in proc.stderr.strip().splitlines() if "error" in ln]
    assert proc.returncode != 0 and len(err) == 1 and "--rnn_cell=cpp" in err[0] and "--rnn_cell=auto" in err[0]
    assert not (tmp_path / "logs").exists()


@pytest.mark.slow
def test_root_scripts_run_as_subprocesses(text_root: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *rnn_argv(text_root, tmp_path, "--max_epoch=2")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "logs" / RUN / "summary.json").read_text())["epochs_done"] == 2
    proc = subprocess.run([sys.executable, str(ROOT / "generate_gif.py"), f"--model_name={RUN}",
                           f"--log_dir={tmp_path / 'logs'}", "--output=cells.gif"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and "wrote cells.gif" in proc.stdout, proc.stderr[-2000:]
    from PIL import Image

    with Image.open(tmp_path / "cells.gif") as gif:
        assert gif.n_frames == 2


@pytest.mark.slow
def test_demo_at_a_tiny_size(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--size=tiny", f"--output_dir={tmp_path / 'demo'}", "--device=cpu"]) == 0
    out = capsys.readouterr().out
    assert "| epoch |" in out and "strict" in out
    two = json.loads((tmp_path / "demo/two_models/two_models.json").read_text())
    assert [r["convergence"] for r in two["runs"]] == ["strict", "loose"]
    for name in ("no_wpl", "wpl", "wpl_recommended"):
        summary = json.loads((tmp_path / f"demo/search/ptb_{name}/summary.json").read_text())
        assert summary["epochs_done"] == 2 and summary["wpl_active"] == (name != "no_wpl")
    config = json.loads((tmp_path / "demo/search/ptb_wpl_recommended/config.json").read_text())
    assert config["wpl_update"] == "proximal" and config["wpl_scope"] == "used"
    assert "| 1 | wpl_recommended |" in out


def test_search_from_python_with_configs_only(text_root: Path, tmp_path: Path) -> None:
    from wpl import WplConfig
    from wpl.data.text import load_corpus
    from wpl.nas.config import ControllerConfig, SearchConfig
    from wpl.nas.search.loop import Search
    from wpl.nas.spaces.rnn.config import RnnConfig
    from wpl.nas.spaces.rnn.task import RnnTask

    task = RnnTask(load_corpus(str(text_root), "tiny"),
                   RnnConfig(shared_embed=8, shared_hid=8, num_blocks=3, batch_size=4, test_batch_size=4,
                             shared_rnn_max_length=6, forgetting_batches=2), torch.device("cpu"))
    search = Search(task, SearchConfig(max_epoch=2, shared_max_step=2, num_batch_per_iter=2, train_controller=True,
                                       controller_max_step=2, derive_num_sample=2, save_epoch=1, start_using_fisher=1),
                    WplConfig(alpha=100.0), ControllerConfig(controller_hid=8), tmp_path / "run")
    summary = search.run()
    assert summary["epochs_done"] == 2 and summary["wpl_active"] and summary["metric"] == "ppl"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test"] == summary["test"]
    assert (tmp_path / "run" / "forgetting.csv").read_text().count("\n") == 1 + 2 * 2
