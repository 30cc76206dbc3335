"""``wpl plot`` and ``wpl compare`` on tiny runs of both spaces."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import assert_drawn, make_cifar, make_text, rnn_argv
from test_final import RNN_RECIPE
from test_nas_cnn import TINY_CNN
from wpl.cli import main
from wpl.nas.search.run import run_search


def _three_rnn_runs(tmp_path: Path) -> Path:
    data = make_text(tmp_path / "data")
    run_search(rnn_argv(data, tmp_path, "--comment=a", "--max_epoch=3"))
    run_search(rnn_argv(data, tmp_path, "--comment=b", "--max_epoch=3", "--use_wpl=False"))
    run_search(rnn_argv(data, tmp_path, "--comment=c", "--max_epoch=3", "--alpha_fisher=6"))
    return tmp_path / "logs"


def test_plot_one_and_three_runs(tmp_path: Path, capsys) -> None:
    logs = _three_rnn_runs(tmp_path)
    assert main(["plot", "--model_name=tiny_a", f"--log_dir={logs}"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out
    assert_drawn(logs / "tiny_a" / "forgetting.png")
    assert main(["train-final", "--model_name=tiny_a", f"--log_dir={logs}", "--max_epoch=2", *RNN_RECIPE]) == 0
    png = tmp_path / "three.png"
    assert main(["plot", "--model_name=tiny_a", "--compare", "tiny_b", "tiny_c", "--labels", "WPL", "plain",
                 "small alpha", f"--log_dir={logs}", f"--output={png}", "--final=True", "--unit=loss"]) == 0
    out = capsys.readouterr().out
    assert "WPL: 3 epochs" in out and "plain: 3 epochs" in out
    with Image.open(png) as im:
        one = Image.open(logs / "tiny_a" / "forgetting.png")
        assert im.size[0] > one.size[0]  # five panels instead of four
    assert main(["plot", "--model_name=tiny_a", "--compare", "tiny_b", "--labels", "only-one",
                 f"--log_dir={logs}"]) == 1
    assert "--labels: 1 labels for 2 runs" in capsys.readouterr().err


def test_compare_rnn_runs(tmp_path: Path, capsys) -> None:
    logs = _three_rnn_runs(tmp_path)
    js = tmp_path / "cmp.json"
    assert main(["compare", "--model_name=tiny_a", "--compare", "tiny_b", "tiny_c", f"--log_dir={logs}",
                 f"--json={js}"]) == 0
    out = capsys.readouterr().out
    assert "| `use_wpl` | True | False | True |" in out and "| `alpha_fisher` |" in out
    assert "| `comment` |" not in out  # names and places are not settings
    cmp = json.loads(js.read_text())
    assert [r["run"] for r in cmp["runs"]] == ["tiny_a", "tiny_b", "tiny_c"]
    assert cmp["runs"][1]["wpl_epochs"].startswith("none") and cmp["runs"][0]["forgetting_mean"] is not None


def test_compare_and_plot_cnn_runs(tmp_path: Path, capsys) -> None:
    data = make_cifar(tmp_path / "data", per_batch=40)
    for extra in ([], ["--use_wpl=False", "--comment=cnn-plain"]):
        run_search([*TINY_CNN, "--dataset=cifar10", f"--data_dir={data}", f"--log_dir={tmp_path / 'logs'}",
                    "--max_epoch=2", *extra])
    logs = tmp_path / "logs"
    assert main(["compare", "--model_name=cifar10_cnn", "--compare", "cifar10_cnn-plain", f"--log_dir={logs}"]) == 0
    assert "forgetting mean (error)" in capsys.readouterr().out
    assert main(["plot", "--model_name=cifar10_cnn", "--compare", "cifar10_cnn-plain", f"--log_dir={logs}"]) == 0


def test_plot_names_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    (tmp_path / "x").mkdir()
    assert main(["plot", "--model_name=x", f"--log_dir={tmp_path}"]) == 1
    assert "no search run at" in capsys.readouterr().err


def test_fisher_groups_name_rnn_edges_and_cnn_ops() -> None:
    from types import SimpleNamespace

    from wpl.nas.search.fisher_map import group_label

    rnn = SimpleNamespace(kind="rnn")
    assert group_label(rnn, "edges.0_3") == "edge 0→3" and group_label(rnn, "encoder.weight") == "encoder"
    cnn = SimpleNamespace(kind="micro_cnn", supernet=SimpleNamespace(kinds=["normal", "reduce"]),
                          normal_ops=["identity", "sep_conv_3x3"], reduce_ops=["avg_pool", "max_pool"])
    assert group_label(cnn, "cells.1.ops.2_0_1.conv.weight") == "reduce node 2 ← 0: max_pool"
    assert group_label(cnn, "cells.0.ops.2_1_1.dw.weight") == "normal node 2 ← 1: sep_conv_3x3"
