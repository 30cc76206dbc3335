"""The micro-CNN search space and the CNN search end to end on tiny generated images."""

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import assert_drawn, assert_schema, make_cifar, make_image_folder, run_interrupted
from wpl.nas.search.run import run_search
from wpl.nas.spaces.micro_cnn.supernet import (
    OPS,
    MicroArch,
    SharedCNN,
    canonical_op,
    decode_micro,
    encode_micro,
    micro_decisions,
)

ARCH = MicroArch(
    normal=((0, "sep_conv_3x3", 1, "identity"), (2, "max_pool_3x3", 0, "sep_conv_5x5")),
    reduce=((1, "identity", 0, "avg_pool_3x3"), (1, "sep_conv_3x3", 2, "sep_conv_3x3")),
)


def test_micro_arch_json_round_trip_and_actions() -> None:
    text = ARCH.to_json()
    assert MicroArch.from_json(text) == ARCH and json.loads(text)["type"] == "micro_cnn"
    ops = list(OPS)
    actions = encode_micro(ARCH, ops, ops)
    assert len(actions) == len(micro_decisions(2, 5, 5)) == 16
    assert decode_micro(actions, ops, ops) == ARCH
    assert MicroArch.loose_ends(ARCH.normal) == [1] and MicroArch.loose_ends(ARCH.reduce) == [1]
    # the original's op names are accepted and mapped
    assert canonical_op("depthwise_3x3") == "sep_conv_3x3" and canonical_op("max3x3") == "max_pool_3x3"
    with pytest.raises(ValueError, match="unknown CNN op"):
        canonical_op("conv_7x7")


def test_invalid_micro_arch_is_rejected() -> None:
    with pytest.raises(ValueError, match="input must be in 0..1"):
        MicroArch(((2, "identity", 0, "identity"),), ((0, "identity", 0, "identity"),))


def test_gradients_and_wpl_only_on_the_active_ops() -> None:
    torch.manual_seed(0)
    net = SharedCNN(3, 10, final_filters=8, num_modules=2, num_repeat_normal=1, num_blocks=2)
    assert net.kinds == ["normal", "reduce", "normal"]
    net(torch.randn(4, 3, 8, 8), ARCH).sum().backward()
    used = set(net.parameters_for(ARCH))
    got = {n for n, p in net.named_parameters() if p.grad is not None}
    assert got == used
    ops = set(net.op_names(ARCH))
    assert ops <= used and all(".ops." in n for n in ops)
    assert "cells.0.ops.0_0_sep_conv_3x3.dw.weight" in ops  # normal cell 0, block 0, input 0, sep 3×3
    assert not any(n.startswith("cells.0.ops.0_1_sep_conv_3x3") for n in ops)  # not chosen: not protected
    assert "cells.1.ops.0_1_identity.a.weight" in ops  # a stride-2 identity has weights (factorized reduce)


def test_bad_channel_config_is_a_clear_error(capsys) -> None:
    with pytest.raises(ValueError, match="final_filters=12"):  # the library names its argument
        SharedCNN(final_filters=12, num_modules=3)
    from wpl.nas.search.flags import parse_search_args

    with pytest.raises(SystemExit):  # the command line refuses it before any data loads, naming the flag
        parse_search_args(["--network_type=micro_cnn", "--cnn_final_filter_size=12"])
    assert "--cnn_final_filter_size=12: must be a multiple of 2^cnn_num_modules = 8" in capsys.readouterr().err


TINY_CNN = ["--network_type=micro_cnn", "--num_blocks=2", "--cnn_final_filter_size=8", "--cnn_num_modules=2",
            "--cnn_num_repeat_normal=1", "--batch_size=4", "--test_batch_size=8", "--shared_max_step=2",
            "--num_batch_per_iter=2", "--controller_max_step=2", "--nb_batch_reward_controller=1",
            "--derive_num_sample=2", "--forgetting_batches=1", "--valid_size=8", "--save_epoch=1",
            "--controller_hid=8", "--use_tensorboard=False", "--log_level=WARNING", "--num_gpu=0",
            "--train_controller=True", "--start_training_controller=0", "--start_using_fisher=1",
            "--fisher_clip_by_norm=10", "--alpha_fisher=60", "--comment=cnn"]


def _cnn_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return [*TINY_CNN, "--dataset=cifar10", f"--data_dir={data}", f"--log_dir={out / 'logs'}", "--max_epoch=2",
            *extra]


def test_tiny_cnn_search_writes_every_output(tmp_path: Path) -> None:
    data = make_cifar(tmp_path / "data")
    summary = run_search(_cnn_argv(data, tmp_path))
    run = tmp_path / "logs" / "cifar10_cnn"
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl", "forgetting.csv", "summary.json"):
        assert (run / name).is_file(), name
    # the last epoch's derived cell, drawn: its JSON, its Graphviz source, its picture
    drawn = MicroArch.from_dict(json.loads((run / "networks/epoch_001.json").read_text())["arch"])
    assert (run / "networks/epoch_001.dot").read_text().count("(block ") == 2 * len(drawn.normal)
    assert_drawn(run / "networks/epoch_001.png")
    assert summary["network_type"] == "micro_cnn" and summary["wpl_active"] is True
    # error rates are counts over the split: 8 held-out validation images, 20 test images
    assert summary["best_valid"] * 8 == pytest.approx(round(summary["best_valid"] * 8))
    assert summary["test"] * 20 == pytest.approx(round(summary["test"] * 20))
    assert summary["test_metrics"]["acc"] == pytest.approx(1 - summary["test_err"])
    assert_schema(run, summary, "error", top_k=5)
    derived = json.loads((run / "networks/epoch_001.json").read_text())
    assert set(derived["arch"]) == {"type", "normal", "reduce"}  # both cells
    rows = list(csv.DictReader((run / "forgetting.csv").open()))
    assert len(rows) == 2 * 2
    for r in rows:  # error rates on the 4-image forgetting slice
        assert float(r["diff"]) * 4 == pytest.approx(round(float(r["diff"]) * 4), abs=1e-4)
        assert float(r["diff"]) == pytest.approx(float(r["err2"]) - float(r["err1"]), abs=1e-5)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["shared_lr"] == 0.1 and cfg["shared_grad_clip"] == 5.0  # the CNN's defaults


@pytest.mark.slow
def test_cnn_resume_is_bit_identical(tmp_path: Path, monkeypatch) -> None:
    data = make_cifar(tmp_path / "data")
    run_search(_cnn_argv(data, tmp_path / "full", "--max_epoch=3"))
    run_interrupted(_cnn_argv(data, tmp_path / "part", "--max_epoch=3"), 2, monkeypatch)
    run_search(_cnn_argv(data, tmp_path / "part", "--max_epoch=3", "--resume=True"))
    a = torch.load(tmp_path / "full/logs/cifar10_cnn/checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "part/logs/cifar10_cnn/checkpoint.pt", weights_only=False)
    for name, t in a["supernet"].items():
        assert torch.equal(t, b["supernet"][name]), name
    for name in ("metrics.jsonl", "forgetting.csv"):
        assert (tmp_path / "full/logs/cifar10_cnn" / name).read_text() == \
            (tmp_path / "part/logs/cifar10_cnn" / name).read_text()


def test_cnn_search_on_an_image_folder(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "data", per_class=6, size=12)
    argv = [a for a in _cnn_argv(data, tmp_path) if not a.startswith("--dataset")]
    summary = run_search([*argv, "--dataset=shapes", "--cnn_height=8", "--cnn_width=8", "--max_epoch=1"])
    assert summary["dataset"] == "shapes" and summary["test"] * 12 == pytest.approx(round(summary["test"] * 12))


def test_generate_gif_of_the_derived_cells(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from wpl.cli import main
    from wpl.gif import pick_frames

    data = make_cifar(tmp_path / "data")
    run_search(_cnn_argv(data, tmp_path, "--max_epoch=3"))
    assert main(["gif", "--model_name=cifar10_cnn", f"--log_dir={tmp_path / 'logs'}",
                 f"--output={tmp_path / 'out' / 'sample.gif'}"]) == 0
    with Image.open(tmp_path / "out" / "sample.gif") as gif:
        assert gif.n_frames == 3  # epochs 0, 1, 2
    assert main(["gif", "--model_name=missing", f"--log_dir={tmp_path / 'logs'}"]) == 1
    assert "no networks/ folder" in capsys.readouterr().err
    paths = [Path(f"epoch_{i:03d}.png") for i in range(120)]
    picked = pick_frames(paths, 50)
    assert len(picked) == 50 and picked[0] == paths[0] and picked[-1] == paths[-1]
    assert pick_frames(paths[:7], 50) == paths[:7]  # fewer than max_frame: all (the original raised)


def test_cnn_derive_and_test_modes(tmp_path: Path) -> None:
    data = make_cifar(tmp_path / "data")
    summary = run_search(_cnn_argv(data, tmp_path))
    run = tmp_path / "logs" / "cifar10_cnn"
    rec = run_search(_cnn_argv(data, tmp_path, "--mode=derive"))
    assert rec["metric"] == "error"
    assert_drawn(run / "networks/derived.png")
    out = run_search(_cnn_argv(data, tmp_path, "--mode=test"))
    assert out["test"] == pytest.approx(summary["test"]) and out["test_acc"] == pytest.approx(1 - out["test"])
    assert json.loads((run / "test.json").read_text())["arch"] == summary["best_arch"]


def test_per_sample_fisher_estimators_in_the_cnn_search(tmp_path: Path) -> None:
    data = make_cifar(tmp_path / "data")
    fishers = {}
    for estimator in ("empirical", "true"):
        out = tmp_path / estimator
        run_search(_cnn_argv(data, out, "--max_epoch=1", "--start_using_fisher=0", "--legacy_compound_alpha=False",
                             f"--fisher_estimator={estimator}", "--fisher_mode=eval", "--search_strategy=random",
                             "--arch_stream=own"))
        fishers[estimator] = torch.load(out / "logs/cifar10_cnn/checkpoint.pt", weights_only=True)["wpl"]["fisher"]
    emp, true = fishers["empirical"], fishers["true"]
    # the same architectures (their own stream) used the same weights: the same tensors hold Fisher mass ...
    support = {n for n, f in emp.items() if f.any()}
    assert support and support == {n for n, f in true.items() if f.any()}
    # ... but the estimators differ (squared gradients of the labels' loss vs of labels sampled from the model)
    assert any(not torch.allclose(emp[n], true[n]) for n in support)
    assert all(bool((f >= 0).all()) for f in (*emp.values(), *true.values()))  # means of squares


def test_per_sample_fisher_normalises_each_sample_with_its_batchs_statistics() -> None:
    from torch import nn

    from wpl.fisher import estimate
    from wpl.nas.batchnorm import BatchStatNorm, batch_statistics

    torch.manual_seed(0)
    # a micro-CNN's ending: batch norm, then the global pool
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), BatchStatNorm(4), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randn(6, 3, 5, 5), torch.randint(0, 3, (6,))
    params = {"conv": net[0].weight}
    # one image normalised by its own statistics pools to 0: no gradient reaches the conv
    assert float(estimate("empirical", net, params, [(x, y)], mode="train")["conv"].abs().max()) < 1e-10
    with torch.no_grad():
        whole = net(x)
    with batch_statistics(net, lambda: net(x)):
        with torch.no_grad():
            torch.testing.assert_close(net(x), whole)  # the batch's own statistics: the same forward
        emp = estimate("empirical", net, params, [(x, y)], mode="train")["conv"]
        sq = estimate("batch_sq", net, params, [(x, y)], mode="train")["conv"]
        loop = torch.zeros_like(emp)
        for i in range(6):
            (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x[i:i + 1]), y[i:i + 1]), [net[0].weight])
            loop += g * g / 6
    torch.testing.assert_close(emp, loop)
    # statistics held fixed, the batch gradient is the samples' mean: its square is at most their squares' mean
    assert float(emp.sum()) > 0 and bool((emp >= sq - 1e-7).all())


def test_depthwise_sep_conv_is_the_original_op(tmp_path: Path) -> None:
    sep = SharedCNN(final_filters=8, num_modules=2, num_repeat_normal=1, num_blocks=2)
    dw = SharedCNN(final_filters=8, num_modules=2, num_repeat_normal=1, num_blocks=2, sep_conv="depthwise")
    pw = {n for n, _ in sep.named_parameters() if ".pw." in n}
    assert pw and not any(".pw." in n for n, _ in dw.named_parameters())
    assert sum(p.numel() for p in sep.parameters()) - sum(p.numel() for p in dw.parameters()) == \
        sum(p.numel() for n, p in sep.named_parameters() if n in pw)
    data = make_cifar(tmp_path / "data")
    summary = run_search(_cnn_argv(data, tmp_path, "--max_epoch=1", "--cnn_sep_conv=depthwise"))
    assert summary["epochs_done"] == 1


@pytest.mark.parametrize("kind, stride", [("avg", 1), ("avg", 2), ("max", 1), ("max", 2)])
def test_channels_last_pool_matches_the_plain_one(kind: str, stride: int) -> None:
    from wpl.nas.spaces.micro_cnn.supernet import Pool

    torch.manual_seed(0)
    x = torch.randn(4, 6, 9, 9, requires_grad=True)
    y = Pool(kind, stride)(x)
    if kind == "avg":
        ref = torch.nn.functional.avg_pool2d(x, 3, stride, 1, count_include_pad=False)
    else:
        ref = torch.nn.functional.max_pool2d(x, 3, stride, 1)
    assert y.is_contiguous() and torch.allclose(y, ref, atol=1e-6)
    g = torch.randn_like(ref)
    (gy,) = torch.autograd.grad(y, x, g)
    (gr,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(gy, gr, atol=1e-5)
