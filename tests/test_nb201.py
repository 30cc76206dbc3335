"""The NAS-Bench-201 space: architectures in the benchmark's strings, the supernet's shapes, ``none``
edges, the parameters an architecture uses."""

from __future__ import annotations

import json
import random

import pytest
import torch

from wpl.data.nb201 import OPS, all_archs, ground_truth
from wpl.errors import WplError
from wpl.nas.spaces.nb201.supernet import (
    CellMemo,
    Nb201Arch,
    ResBlock,
    SharedCell,
    SharedNB201,
    SupernetBN,
    decode_nb201,
    encode_nb201,
    nb201_decisions,
    nb201_graph,
    recalibrated,
)


def test_arch_round_trips_and_is_the_benchmark_key() -> None:
    rng = random.Random(0)
    for text in rng.sample(all_archs(), 50):
        arch = Nb201Arch.from_string(text)
        assert arch.string == text and Nb201Arch.from_json(arch.to_json()) == arch
        assert decode_nb201(encode_nb201(arch)) == arch
        assert ground_truth().lookup(arch.string) > 0
    assert nb201_decisions() == [5] * 6
    with pytest.raises(WplError, match="unknown op"):
        Nb201Arch.from_string("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="6 edges"):
        Nb201Arch(("none",) * 5)


def test_supernet_shapes_and_stages() -> None:
    net = SharedNB201(3, 10, channels=4, cells=1)
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["SharedCell", "ResBlock", "SharedCell", "ResBlock", "SharedCell"]
    x = torch.randn(2, 3, 16, 16)
    arch = Nb201Arch(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"))
    assert net(x, arch).shape == (2, 10)
    assert ResBlock(4, 8)(torch.randn(2, 4, 16, 16)).shape == (2, 8, 8, 8)


def test_none_edges_add_nothing_and_an_all_none_cell_outputs_zeros() -> None:
    cell = SharedCell(3, OPS)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(cell(x, Nb201Arch(("none",) * 6)), torch.zeros_like(x))
    # node 3 = skip(node 0) only: the cell is the identity
    only_skip = Nb201Arch(("none", "none", "none", "skip_connect", "none", "none"))
    assert torch.equal(cell(x, only_skip), x)
    net = SharedNB201(3, 10, channels=4, cells=1)
    assert torch.isfinite(net(torch.randn(2, 3, 8, 8), Nb201Arch(("none",) * 6))).all()


def test_an_architecture_uses_and_protects_only_its_ops() -> None:
    net = SharedNB201(3, 10, channels=4, cells=2)
    arch = Nb201Arch(("nor_conv_3x3", "none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none"))
    names = net.op_names(arch)
    assert names and all(".ops.0_nor_conv_3x3." in n or ".ops.3_nor_conv_1x1." in n for n in names)
    net(torch.randn(2, 3, 8, 8), arch).sum().backward()
    with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
    assert with_grad == set(net.parameters_for(arch))


def test_drawing_has_one_box_per_present_edge() -> None:
    nodes, edges = nb201_graph(Nb201Arch(("nor_conv_3x3", "none", "skip_connect", "none", "none", "avg_pool_3x3")))
    assert sum(k.startswith("e") for k in nodes) == 3 and len(edges) == 6


TINY_NB201 = ["--network_type=nb201", "--nb201_channels=2", "--nb201_cells=1", "--batch_size=4",
              "--test_batch_size=8", "--shared_max_step=2", "--num_batch_per_iter=2", "--controller_max_step=2",
              "--nb_batch_reward_controller=1", "--derive_num_sample=2", "--forgetting_batches=1",
              "--valid_size=8", "--save_epoch=1", "--controller_hid=8", "--use_tensorboard=False",
              "--log_level=WARNING", "--num_gpu=0", "--train_controller=True", "--start_training_controller=0",
              "--start_using_fisher=1", "--fisher_clip_by_norm=10", "--alpha_fisher=60", "--comment=nb",
              "--dataset=cifar10"]


def test_tiny_nb201_search_end_to_end(tmp_path, monkeypatch) -> None:
    import json

    from conftest import assert_drawn, assert_schema, make_cifar, run_interrupted
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    argv = [*TINY_NB201, f"--data_dir={data}", "--max_epoch=2"]
    summary = run_search([*argv, f"--log_dir={tmp_path / 'full' / 'logs'}"])
    run = tmp_path / "full" / "logs" / "cifar10_nb"
    assert_schema(run, summary, "error", top_k=5)
    best = Nb201Arch.from_dict(summary["best_arch"])
    assert ground_truth().lookup(best.string) > 0  # a derived cell is a benchmark cell
    assert_drawn(run / "networks" / "epoch_000.png")
    drawn = Nb201Arch.from_dict(json.loads((run / "networks" / "epoch_000.json").read_text())["arch"])
    assert ground_truth().lookup(drawn.string) > 0  # the drawing's cell, saved beside it, is a benchmark cell
    # exact resume
    part = [*argv, f"--log_dir={tmp_path / 'part' / 'logs'}"]
    run_interrupted(part, 1, monkeypatch)
    run_search([*part, "--resume=True"])
    for name in ("forgetting.csv", "metrics.jsonl"):
        a = (run / name).read_text()
        b = (tmp_path / "part" / "logs" / "cifar10_nb" / name).read_text()
        assert a == b, name
    assert json.loads((tmp_path / "part" / "logs" / "cifar10_nb" / "summary.json").read_text())["test"] == \
        summary["test"]


def test_final_training_of_an_nb201_cell_points_to_the_ground_truth(tmp_path, capsys) -> None:
    import json

    from wpl.cli import main

    cell = tmp_path / "cell.json"
    cell.write_text(json.dumps({"type": "nb201", "arch": all_archs()[3]}))
    assert main(["train-final", f"--arch={cell}", f"--log_dir={tmp_path / 'o'}"]) == 1
    assert "its CIFAR-10 test accuracy is 80.08%" in capsys.readouterr().err
    cell.write_text(json.dumps({"type": "nb201", "arch": "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"}))
    assert main(["train-final", f"--arch={cell}", f"--log_dir={tmp_path / 'o'}"]) == 1
    assert "unknown op 'conv'" in capsys.readouterr().err


def test_a_cell_without_weights_trains_and_folds_its_fisher(tmp_path) -> None:
    """Pools, skips and none edges only: nothing to protect, and the WPL steps still run."""
    from conftest import make_cifar
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    data = make_cifar(tmp_path / "data")
    args = parse_search_args([*TINY_NB201, f"--data_dir={data}", "--max_epoch=2"])
    search = build_search(args, run_dir=None, device=torch.device("cpu"))
    arch = Nb201Arch(("avg_pool_3x3", "skip_connect", "none", "avg_pool_3x3", "none", "skip_connect"))
    assert search.task.protected_names(arch) == []
    search.shared_step(arch, wpl=True)
    search.fisher_step(arch)


def test_shared_momentum_is_nesterov_sgd(tmp_path) -> None:
    from conftest import make_cifar
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    data = make_cifar(tmp_path / "data")
    for m in (0.0, 0.9):
        args = parse_search_args([*TINY_NB201, f"--data_dir={data}", f"--shared_momentum={m}"])
        group = build_search(args, run_dir=None, device=torch.device("cpu")).shared_opt.param_groups[0]
        assert (group["momentum"], group["nesterov"]) == (m, m > 0)


@pytest.mark.slow
def test_rank_a_tiny_nb201_run(tmp_path, capsys) -> None:
    import json

    from conftest import assert_drawn, make_cifar
    from wpl.cli import main
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    run_search([*TINY_NB201, f"--data_dir={data}", "--max_epoch=1", f"--log_dir={tmp_path / 'logs'}"])
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'logs'}", "--num_archs=12",
                 "--rank_batches=1"]) == 0
    out = capsys.readouterr().out
    assert "| cifar10_nb (epoch 1) | 12 |" in out and "| one-shot supernet | 12 |" in out
    run = tmp_path / "logs" / "cifar10_nb"
    rank = json.loads((run / "rank.json").read_text())
    keys = {"kendall_tau", "spearman", "sparse_kendall_tau", "tau_top10", "p_at_top5", "p_at_top10",
            "top1_true_acc", "top1_true_rank", "num_archs", "archs", "reference"}
    assert keys <= rank.keys() and len(rank["archs"]) == 12
    assert_drawn(run / "rank.png")
    assert all(a["true_acc"] == ground_truth().lookup(a["arch"]) for a in rank["archs"])
    assert rank["reference"]["one_shot"]["all_cells"]["kendall_tau"] == pytest.approx(0.485, abs=5e-4)
    assert "| parameter count (no training) | 12 |" in out and "parameter count τ" in out
    assert rank["reference"]["parameter_count"]["same_cells"]["num_archs"] == 12
    assert "| jacob_cov at initialisation (no training) | 12 |" in out and "| FLOPs (no training) | 12 |" in out
    assert rank["reference"]["flops"]["same_cells"]["num_archs"] == 12
    assert rank["reference"]["jacob_cov"]["same_cells"]["num_archs"] == 12
    # the same seed scores the same cells
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'logs'}", "--num_archs=12",
                 "--rank_batches=1"]) == 0
    assert json.loads((run / "rank.json").read_text())["archs"] == rank["archs"]
    # each cell is scored on --rank_batches × --rank_batch_size images: 2 × 4 = 8, so in steps of 12.5%
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'logs'}", "--num_archs=12",
                 "--rank_batches=2", "--rank_batch_size=4"]) == 0
    small = json.loads((run / "rank.json").read_text())
    assert (small["batches"], small["batch_size"]) == (2, 4)
    assert all(a["score"] * 8 / 100 == pytest.approx(round(a["score"] * 8 / 100)) for a in small["archs"])
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'logs'}", "--rank_batch_size=0"]) == 1
    # --score=loss ranks the same cells by their negated mean cross-entropy, in its own file
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'logs'}", "--num_archs=12",
                 "--rank_batches=2", "--rank_batch_size=4", "--score=loss"]) == 0
    by_loss = json.loads((run / "rank_loss.json").read_text())
    assert by_loss["score"] == "loss" and small["score"] == "accuracy"
    assert [a["arch"] for a in by_loss["archs"]] == [a["arch"] for a in small["archs"]]
    assert all(a["score"] < 0 for a in by_loss["archs"]) and json.loads((run / "rank.json").read_text()) == small
    assert_drawn(run / "rank_loss.png")


def test_rank_refuses_a_run_of_another_space(tmp_path, capsys) -> None:
    from conftest import make_text, rnn_argv
    from wpl.cli import main
    from wpl.nas.search.run import run_search

    run_search(rnn_argv(make_text(tmp_path / "data"), tmp_path, "--max_epoch=1"))
    assert main(["rank", "--model_name=tiny_rnn-train", f"--log_dir={tmp_path / 'logs'}", "--num_archs=5"]) == 1
    assert "needs a --network_type=nb201 search" in capsys.readouterr().err


@pytest.mark.parametrize("space", ["nb201", "rnn"])
def test_random_search_with_weight_sharing(space, tmp_path, monkeypatch) -> None:
    import json

    from conftest import events_of, make_cifar, make_text, rnn_argv, run_interrupted
    from wpl.nas.search.run import run_search

    if space == "nb201":
        argv = [*TINY_NB201, f"--data_dir={make_cifar(tmp_path / 'data')}", "--max_epoch=2"]
        name = "cifar10_nb"
    else:
        argv = rnn_argv(make_text(tmp_path / "data"), tmp_path)
        argv = [a for a in argv if not a.startswith("--log_dir")]
        name = "tiny_rnn-train"
    argv += ["--search_strategy=random"]
    run_search([*argv, f"--log_dir={tmp_path / 'full'}"])
    events = events_of(tmp_path / "full" / name)
    assert not [e for e in events if e["event"] == "controller"]  # no controller phase
    assert all(e["reward"] is None for e in events if e["event"] == "epoch")
    assert [e for e in events if e["event"] == "derive"]
    part = [*argv, f"--log_dir={tmp_path / 'part'}"]
    run_interrupted(part, 1, monkeypatch)
    run_search([*part, "--resume=True"])
    a = json.loads((tmp_path / "full" / name / "summary.json").read_text())
    b = json.loads((tmp_path / "part" / name / "summary.json").read_text())
    assert a["best_arch"] == b["best_arch"] and a["test"] == b["test"]
    assert (tmp_path / "full" / name / "forgetting.csv").read_text() == \
        (tmp_path / "part" / name / "forgetting.csv").read_text()


def test_random_strategy_samples_uniformly(tmp_path) -> None:
    from collections import Counter

    from conftest import make_cifar
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    data = make_cifar(tmp_path / "data")
    args = parse_search_args([*TINY_NB201, f"--data_dir={data}", "--search_strategy=random"])
    search = build_search(args, run_dir=None, device=torch.device("cpu"))
    counts = Counter(op for a in search.sample_archs(2000) for op in a.ops)
    assert set(counts) == set(OPS) and all(abs(c / 12000 - 0.2) < 0.02 for c in counts.values())


def summary_seed(run) -> int:
    """The search's --random_seed, from its config.json."""
    return json.loads((run / "config.json").read_text())["random_seed"]


def test_rank_every_logs_ranking_fidelity_during_the_search(tmp_path, capsys) -> None:
    from conftest import events_of, make_cifar
    from wpl.cli import main
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    summary = run_search([*TINY_NB201, f"--data_dir={data}", "--max_epoch=3", "--rank_every=2", "--rank_archs=6",
                          f"--log_dir={tmp_path / 'logs'}"])
    ranks = [e for e in events_of(tmp_path / "logs" / "cifar10_nb") if e["event"] == "rank"]
    assert [e["epoch"] for e in ranks] == [0, 2] and all(e["num_archs"] == 6 for e in ranks)
    assert summary["seconds"]["rank"] > 0
    # the last epoch's ranking is what `wpl rank` reports from the run's final checkpoint: the same seeded
    # cells, scored on the same batches with the same weights
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'logs'}", "--num_archs=6",
                 f"--seed={summary_seed(tmp_path / 'logs' / 'cifar10_nb')}"]) == 0
    rank = json.loads((tmp_path / "logs" / "cifar10_nb" / "rank.json").read_text())
    assert {k: rank[k] for k in ranks[-1] if k not in ("event", "epoch")} == \
        {k: v for k, v in ranks[-1].items() if k not in ("event", "epoch")}
    with pytest.raises(SystemExit):
        parse_search_args(["--rank_every=1"])  # an RNN search has no ground truth
    assert "--rank_every is a flag of --network_type=nb201; this search is --network_type=rnn" in \
        capsys.readouterr().err


def test_image_spaces_evaluate_in_batches_by_default() -> None:
    """Batch-statistics BN: an evaluation batch of one image would put every cell at chance."""
    from wpl.nas.search.flags import parse_search_args

    assert parse_search_args(["--network_type=nb201"]).space.test_batch_size == 100
    assert parse_search_args(["--network_type=micro_cnn"]).space.test_batch_size == 100
    assert parse_search_args(["--network_type=micro_cnn", "--test_batch_size=16"]).space.test_batch_size == 16
    assert parse_search_args([]).space.test_batch_size == 1  # the RNN's


def test_bn_recalibration_fixes_each_layers_statistics_for_one_architecture() -> None:
    torch.manual_seed(0)
    net = SharedNB201(channels=4, cells=1).eval()
    arch = Nb201Arch.from_string(all_archs()[1234])
    x, y = torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32) * 2 + 1
    with torch.no_grad():
        batch_x, batch_y = net(x, arch), net(y, arch)
        with recalibrated(net, arch, [x]):  # one batch: its statistics are the batch's own, layer by layer
            assert torch.allclose(net(x, arch), batch_x, atol=1e-4)
            assert not torch.allclose(net(y, arch), batch_y, atol=1e-2)  # y is normalised with x's statistics
            assert torch.allclose(net(y[:1], arch), net(y, arch)[:1], atol=1e-4)  # fixed: one image scores alone
        with recalibrated(net, arch, [x[:8], x[8:]]):  # two batches pool to the statistics of both
            stem = net.stem[0](x)
            mean, var = net.stem[1].fixed
            assert torch.allclose(mean, stem.mean((0, 2, 3)), atol=1e-5)
            assert torch.allclose(var, stem.var((0, 2, 3), unbiased=False), atol=1e-4)
        assert torch.allclose(net(y, arch), batch_y)  # outside: batch statistics again
        with pytest.raises(RuntimeError), recalibrated(net, arch, [x]):
            raise RuntimeError("scoring failed")
        assert all(getattr(m, "fixed", None) is None for m in net.modules())
        assert torch.allclose(net(y, arch), batch_y)


@pytest.mark.slow
def test_bn_recalibrated_search_and_rank(tmp_path, capsys) -> None:
    import json

    from conftest import make_cifar
    from wpl.cli import main
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import load_search, run_search

    data = make_cifar(tmp_path / "data")
    logs = tmp_path / "logs"
    run_search([*TINY_NB201, f"--data_dir={data}", "--max_epoch=1", "--nb201_bn_recal=2", f"--log_dir={logs}"])
    for k in ("-1", "0", "2"):
        assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={logs}", "--num_archs=8", "--rank_batches=1",
                     f"--nb201_bn_recal={k}"]) == 0
        rank = json.loads((logs / "cifar10_nb" / "rank.json").read_text())
        assert rank["bn_recal"] == (2 if k == "-1" else int(k))  # -1: the run's own choice
    run = logs / "cifar10_nb"
    search = load_search(parse_search_args([f"--load_path={run}", "--mode=test"]), run, run / "checkpoint.pt")
    task, arch = search.task, Nb201Arch.from_string(all_archs()[4321])
    assert task.bn_recal == 2
    recal = task._stats(task.valid_x, task.valid_y, arch, 0, 1, 4)
    task.bn_recal = 0
    assert task._stats(task.valid_x, task.valid_y, arch, 0, 1, 4)[0] != pytest.approx(recal[0], abs=1e-6)
    search.runlog.close()


@pytest.mark.slow
@pytest.mark.parametrize("update, anchor, sampling",
                         [("proximal", "snapshot", "epoch"), ("after_clip", "ema", "replace")])
def test_wpl_variants_search_and_resume_exactly(update, anchor, sampling, tmp_path, monkeypatch) -> None:
    from conftest import make_cifar, run_interrupted
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    argv = [*TINY_NB201, f"--data_dir={data}", "--max_epoch=3", f"--wpl_update={update}", f"--wpl_anchor={anchor}",
            "--wpl_anchor_every=3", "--wpl_anchor_rate=0.5", "--legacy_compound_alpha=False",
            "--fisher_normalise=mean", "--alpha_fisher=0.5", f"--train_sampling={sampling}"]
    full = run_search([*argv, f"--log_dir={tmp_path / 'full'}"])
    assert full["wpl_active"] and any(e["wpl"] > 0 for e in full["epochs"][1:])
    part = [*argv, f"--log_dir={tmp_path / 'part'}"]
    run_interrupted(part, 2, monkeypatch)
    run_search([*part, "--resume=True"])
    for name in ("forgetting.csv", "metrics.jsonl"):
        assert (tmp_path / "full" / "cifar10_nb" / name).read_text() == \
            (tmp_path / "part" / "cifar10_nb" / name).read_text(), name


def test_snapshot_anchors_move_every_n_shared_steps(tmp_path) -> None:
    from conftest import make_cifar
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    data = make_cifar(tmp_path / "data")
    args = parse_search_args([*TINY_NB201, f"--data_dir={data}", "--wpl_anchor=snapshot", "--wpl_anchor_every=4"])
    search = build_search(args, run_dir=None, device=torch.device("cpu"))
    params = dict(search.supernet.named_parameters())

    def nudge() -> None:
        with torch.no_grad():
            for p in params.values():
                p.add_(0.01)

    def anchored() -> bool:
        return all(torch.equal(search.wpl.anchor[n], params[n]) for n in search.wpl.anchor)

    nudge()
    search.shared_steps = 5
    assert not anchored()
    search.snapshot_anchors(1, 0)  # WPL's first step (start_using_fisher=1): a snapshot
    assert anchored()
    nudge()
    search.snapshot_anchors(2, 1)  # shared step 5: not a multiple of 4
    assert not anchored()
    search.shared_steps = 8
    search.snapshot_anchors(2, 4)
    assert anchored()


def test_fisher_mass_per_edge_op_is_logged_and_drawn(tmp_path, capsys) -> None:
    from conftest import assert_drawn, events_of, make_cifar
    from wpl.cli import main
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    logs = tmp_path / "logs"
    run_search([*TINY_NB201, f"--data_dir={data}", "--max_epoch=3", f"--log_dir={logs}"])
    fisher = [e for e in events_of(logs / "cifar10_nb") if e["event"] == "fisher"]
    assert [e["epoch"] for e in fisher] == [1, 2]  # WPL from epoch 1
    labels = set(fisher[-1]["mass"])
    assert labels <= {f"{i}→{j} {op}" for i, j in ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
                      for op in ("nor_conv_1x1", "nor_conv_3x3")} and len(labels) == 12
    # the last epoch's masses add up to the Fisher the run ended with (no step after it changes the Fisher)
    held = torch.load(logs / "cifar10_nb" / "checkpoint.pt", weights_only=True)["wpl"]["fisher"]
    assert sum(fisher[-1]["mass"].values()) == pytest.approx(sum(float(f.double().sum()) for f in held.values()))
    assert sum(fisher[-1]["mass"].values()) > 0
    assert main(["plot", "--fisher=true", "--model_name=cifar10_nb", f"--log_dir={logs}"]) == 0
    assert "holds" in capsys.readouterr().out
    assert_drawn(logs / "cifar10_nb" / "fisher.png")
    run_search([*TINY_NB201, f"--data_dir={data}", "--max_epoch=1", "--use_wpl=False", "--comment=plain",
                f"--log_dir={logs}"])
    assert main(["plot", "--fisher=true", "--model_name=cifar10_plain", f"--log_dir={logs}"]) == 1
    assert "no Fisher mass logged" in capsys.readouterr().err


def test_own_arch_stream_trains_the_same_architectures_whatever_wpl_does(tmp_path, monkeypatch, capsys) -> None:
    import csv
    import json

    from conftest import make_text, rnn_argv, run_interrupted
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import run_search

    base = [a for a in rnn_argv(make_text(tmp_path / "data"), tmp_path) if not a.startswith("--log_dir")]
    base += ["--search_strategy=random", "--arch_stream=own", "--max_epoch=2", "--start_using_fisher=0"]
    variants = {"plain": ["--use_wpl=False"], "prox": ["--legacy_compound_alpha=False", "--fisher_normalise=mean",
                                                       "--fisher_clip_by_norm=0", "--wpl_update=proximal",
                                                       "--alpha_fisher=0.5"]}

    def archs(log: str) -> list[str]:
        rows = csv.DictReader((tmp_path / log / "tiny_rnn-train" / "forgetting.csv").open())
        return [r["arch"] for r in rows]

    for name, extra in variants.items():
        run_search([*base, *extra, f"--log_dir={tmp_path / name}"])
    assert archs("plain") == archs("prox") and len(set(archs("plain"))) > 1
    # and the stream resumes exactly
    part = [*base, *variants["prox"], f"--log_dir={tmp_path / 'part'}"]
    run_interrupted(part, 1, monkeypatch)
    run_search([*part, "--resume=True"])
    assert (tmp_path / "part" / "tiny_rnn-train" / "forgetting.csv").read_text() == \
        (tmp_path / "prox" / "tiny_rnn-train" / "forgetting.csv").read_text()
    a, b = (json.loads((tmp_path / d / "tiny_rnn-train" / "summary.json").read_text()) for d in ("prox", "part"))
    assert a["best_arch"] == b["best_arch"]
    with pytest.raises(SystemExit):
        parse_search_args([*base[:-4], "--arch_stream=own"])
    assert "arch_stream" in capsys.readouterr().err


def test_resume_with_another_wpl_scope_only_before_wpl_has_run(tmp_path, capsys) -> None:
    from conftest import make_text, rnn_argv
    from wpl.errors import WplError
    from wpl.nas.search.run import run_search

    argv = [a for a in rnn_argv(make_text(tmp_path / "data"), tmp_path) if not a.startswith("--max_epoch")]
    new = ["--resume=True", "--resume_with_new_params=True", "--max_epoch=2", "--start_using_fisher=1"]
    run_search([*argv, "--max_epoch=1", "--use_wpl=False"])  # WPL never ran: its Fisher is all zero
    summary = run_search([*argv, *new, "--wpl_scope=used"])
    assert summary["wpl_active"] and "starts fresh" in capsys.readouterr().err
    # once WPL has run, its state cannot be dropped silently
    with pytest.raises(WplError, match="wpl_scope"):
        run_search([*argv, "--resume=True", "--resume_with_new_params=True", "--max_epoch=3",
                    "--start_using_fisher=1", "--wpl_scope=edges"])


def test_parameter_count_and_flops_of_a_cell_are_hand_counts() -> None:
    from wpl.nas.spaces.nb201.ranking import mac_counts, parameter_counts

    c, n = 2, 1  # channels and cells per stage: stages of 2, 4 and 8 channels
    net = SharedNB201(channels=c, cells=n)
    cells = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
             "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
             "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|skip_connect~2|"]
    none, conv3, mixed = parameter_counts(net, [Nb201Arch.from_string(s) for s in cells])
    # a k×k conv on an edge of a stage with w channels holds w·w·k² weights (no bias, no affine BN)
    stages = sum((c * 2**s) ** 2 for s in range(3)) * n  # Σ w² = 4 + 16 + 64
    assert conv3 - none == 6 * 9 * stages == 4536
    assert mixed - none == (1 + 9) * stages
    # multiply-accumulates on a 32×32 image: a k×k conv of a stage at resolution r and w channels does r²·w²·k²
    none, conv3, mixed = mac_counts(net, [Nb201Arch.from_string(s) for s in cells], (3, 32, 32))
    per_stage = sum((32 // 2**s) ** 2 * (c * 2**s) ** 2 for s in range(3)) * n  # 3 stages × 4096
    assert conv3 - none == 6 * 9 * per_stage == 663_552
    assert mixed - none == (1 + 9) * per_stage


def test_jacob_cov_by_hand() -> None:
    import math

    from wpl.nas.spaces.nb201.ranking import jacob_cov

    n, k = 6, 1e-5
    x = torch.randn(n, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    # a linear map: every image's input gradient is the same row, so the correlations are all 1 and the
    # eigenvalues n (once) and 0 (n - 1 times)
    w = torch.randn(3 * 16, 5, generator=torch.Generator().manual_seed(1))
    linear = jacob_cov(lambda t: t.flatten(1) @ w, x)
    assert linear == pytest.approx(-(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k)), rel=1e-6)
    # squares: each image's gradient is its own (2x), nearly uncorrelated rows: a far higher score
    assert jacob_cov(lambda t: (t * t).flatten(1), x) > linear / 1000
    assert jacob_cov(lambda t: torch.zeros(n, 2) + 0 * t.sum(), x) == float("-inf")  # no dependence on the input


def test_a_cell_and_its_isomorph_are_one_canonical_cell() -> None:
    from wpl.data.nb201 import arch_index, isomorphism_key, parse_arch, unique_cells
    from wpl.nas.spaces.nb201.ranking import sample_benchmark_cells

    pool = unique_cells()
    assert len(pool) == 6466  # NAS-Bench-201's non-isomorphic cells, as the literature counts them
    # node 1 is a copy of x (skip), so conv3 from x plus conv1 from node 1 is conv1 from x plus conv3 from
    # node 1: one network, and one of the two cells is kept
    e = parse_arch("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    f = parse_arch("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    assert e != f and isomorphism_key(e) == isomorphism_key(f)
    kept = [isomorphism_key(parse_arch(all_archs()[i])) for i in pool]
    assert len(set(kept)) == len(kept) and isomorphism_key(e) in kept  # one cell per class, every class
    assert arch_index(e) not in pool or arch_index(f) not in pool
    # c: node 3 = conv3(x) + conv1(conv3(x)); d: node 3 = conv1(x) + conv3(conv1(x)): not the same network
    c = parse_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    d = parse_arch("|nor_conv_1x1~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    assert isomorphism_key(c) != isomorphism_key(d)
    # a cell whose output is always zero is one class, whatever its dead edges hold
    dead = [parse_arch("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"),
            parse_arch("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")]
    assert isomorphism_key(dead[0]) == isomorphism_key(dead[1]) == "#+#+#"
    sample = sample_benchmark_cells(50, seed=0, unique=True)
    assert len(sample) == 50 and set(sample.tolist()) <= set(pool.tolist())


def test_outer_affine_batch_norms_learn_outside_the_cells_only() -> None:
    net = SharedNB201(3, 10, channels=4, cells=1, outer_affine=True)
    affine = {f"{m}.{p}" for m, mod in net.named_modules() if isinstance(mod, SupernetBN)
              for p, _ in mod.named_parameters()}
    assert affine and not any(".ops." in n for n in affine)  # the cells' ops stay non-affine
    assert {"stem.1.weight", "stem.1.bias", "head_bn.weight", "head_bn.bias", "layers.1.a.2.weight"} <= affine
    plain = SharedNB201(3, 10, channels=4, cells=1, outer_affine=False)
    assert len(list(net.parameters())) - len(list(plain.parameters())) == len(affine)
    # a fresh affine BN is the identity map, so both nets compute the same function from the same weights
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k not in affine})
    x, arch = torch.randn(4, 3, 8, 8), Nb201Arch(("nor_conv_3x3",) * 6)
    assert torch.allclose(net(x, arch), plain(x, arch), atol=1e-6)
    with pytest.raises(ValueError, match="unknown init 'he'"):
        SharedNB201(channels=4, cells=1, init="he")


def test_a_run_named_by_load_path_judges_its_space_flags_on_resume(tmp_path, capsys) -> None:
    """Without --network_type, a run named by --load_path is of the space its checkpoint says: its own flags are
    not refused as another space's (a learned one is ignored with a warning, as any other)."""
    from conftest import make_cifar
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    run_search([*TINY_NB201, f"--data_dir={data}", f"--log_dir={tmp_path / 'logs'}", "--comment=nb", "--max_epoch=1"])
    run = tmp_path / "logs" / "cifar10_nb"
    summary = run_search([f"--load_path={run}", f"--data_dir={data}", "--max_epoch=2", "--nb201_bn_recal=2",
                          "--log_level=WARNING"])
    assert summary["epochs_done"] == 2 and summary["configs"]["space"]["nb201_bn_recal"] == 0
    assert "ignoring --nb201_bn_recal from the command line" in capsys.readouterr().err


def test_a_run_saved_before_the_recipe_flags_keeps_its_old_supernet() -> None:
    from wpl.nas.configs import Configs
    from wpl.nas.search.flags import parse_search_args

    cli = parse_search_args(["--network_type=nb201", "--load_path=x"])
    new = ("nb201_init", "augment_scope", "train_sampling")
    saved = {k: v for k, v in cli.flags().items() if k not in new}  # the flat flags such runs saved
    merged = cli.resumed(Configs.from_saved(saved))
    assert [getattr(merged.space, k) for k in new] == ["kaiming", "image", "epoch"]  # what those runs did
    assert [getattr(cli.space, k) for k in new] == ["default", "batch", "replace"]  # a new nb201 run's defaults


def test_random_search_can_sample_only_non_isomorphic_cells(tmp_path) -> None:
    from conftest import make_cifar
    from wpl.data.nb201 import all_archs, unique_cells
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    data = make_cifar(tmp_path / "data")
    base = [*TINY_NB201, f"--data_dir={data}", "--search_strategy=random", "--arch_stream=own"]
    canonical = {all_archs()[k] for k in unique_cells()}
    unique = build_search(parse_search_args([*base, "--nb201_unique=True"]), None, torch.device("cpu"))
    drawn = [a.string for a in unique.sample_archs(300)]
    assert set(drawn) <= canonical and len(set(drawn)) > 250  # only class representatives, and many of them
    anyone = build_search(parse_search_args(base), None, torch.device("cpu"))
    assert not set(a.string for a in anyone.sample_archs(300)) <= canonical  # without it: any cell
    with pytest.raises(SystemExit):
        parse_search_args([*TINY_NB201, "--search_strategy=enas", "--nb201_unique=True"])


def test_a_zero_penalty_trains_the_same_weights_as_plain(tmp_path) -> None:
    """One batch per cell and anchors moved after every step: the original's penalty is exactly 0, so its
    supernet must be plain's, bit for bit (a zero ``.grad`` on a dead-path op once let momentum move it)."""
    from conftest import make_cifar
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    argv = [*TINY_NB201, f"--data_dir={data}", "--max_epoch=2", "--shared_max_step=12", "--num_batch_per_iter=1",
            "--search_strategy=random", "--shared_momentum=0.9", "--shared_l2_reg=5e-4", "--random_seed=3"]
    weights = {}
    for name, extra in (("plain", "--use_wpl=False"), ("original", "--use_wpl=True")):
        run_search([*argv, extra, f"--log_dir={tmp_path / name}"])
        ck = torch.load(tmp_path / name / "cifar10_nb" / "checkpoint.pt", weights_only=False)
        weights[name] = ck["supernet"]
    ops = [k for k in weights["plain"] if ".ops." in k]
    assert ops and all(torch.equal(weights["plain"][k], weights["original"][k]) for k in weights["plain"])


@pytest.mark.slow
def test_the_originals_zero_penalty_under_enas_is_plain_with_its_reward_batches(tmp_path) -> None:
    """Under ENAS the original's validation Fisher pass (penalty exactly 0) changes only which validation batches the
    controller's rewards read: plain with ``--valid_skip_every`` at its ``fisher_every`` trains the same supernet and
    controller bit for bit, and plain without it does not."""
    from conftest import make_cifar
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data", per_batch=40)
    argv = [*TINY_NB201, f"--data_dir={data}", "--max_epoch=2", "--shared_max_step=9", "--num_batch_per_iter=1",
            "--controller_max_step=3", "--valid_size=40", "--shared_momentum=0.9", "--random_seed=5"]
    states = {}
    for name, extra in (("plain", ["--use_wpl=False"]), ("skip", ["--use_wpl=False", "--valid_skip_every=4"]),
                        ("original", ["--use_wpl=True", "--fisher_every=4"])):
        # the skip starts where the original's WPL does, at --start_using_fisher=1
        first = [*argv, *extra[:1], "--max_epoch=1", f"--log_dir={tmp_path / name}"]
        run_search(first)
        run_search([*argv, *extra, f"--log_dir={tmp_path / name}", "--resume=True", "--resume_with_new_params=True"])
        ck = torch.load(tmp_path / name / "cifar10_nb" / "checkpoint.pt", weights_only=False)
        states[name] = (ck["supernet"], ck["controller"])

    def same(a: str, b: str) -> bool:
        return all(torch.equal(x[k], y[k]) for x, y in zip(states[a], states[b]) for k in x)

    assert same("skip", "original")
    assert not same("plain", "original")


def test_zero_grad_semantics_keep_stepping_a_weight_used_before(tmp_path) -> None:
    """``--shared_zero_grad=zero`` (PyTorch 0.4.1's): the 3x3 convs one cell used keep moving (momentum, weight
    decay) while the next cell, all skips, does not use them; with ``none`` they stay where that cell left them."""
    from conftest import make_cifar
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search

    data = make_cifar(tmp_path / "data")
    convs = Nb201Arch.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|"
                                  "nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    skips = Nb201Arch.from_string("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|"
                                  "skip_connect~0|skip_connect~1|skip_connect~2|")
    moved = {}
    for how in ("none", "zero"):
        torch.manual_seed(0)
        args = parse_search_args([*TINY_NB201, f"--data_dir={data}", "--use_wpl=False", "--shared_momentum=0.9",
                                  "--shared_l2_reg=5e-4", f"--shared_zero_grad={how}"])
        search = build_search(args, run_dir=None, device=torch.device("cpu"))
        search.shared_batch(convs, [], wpl=False)
        before = {n: p.detach().clone() for n, p in search.supernet.named_parameters()}
        search.shared_batch(skips, [], wpl=False)
        moved[how] = {n for n, p in search.supernet.named_parameters() if not torch.equal(before[n], p)}
        search.runlog.close()
    cell_convs = {n for n in moved["zero"] if "nor_conv_3x3" in n}
    assert len(cell_convs) == 18, "every 3x3 conv of the first cell (6 edges, 3 stages) moves with zero gradients"
    assert not any("nor_conv" in n for n in moved["none"]), "and none of them without"
    assert moved["none"] and moved["none"] < moved["zero"]  # stem, reductions and head move either way


def test_zero_grad_semantics_resume_exactly(tmp_path, monkeypatch) -> None:
    """With ``--shared_zero_grad=zero`` which weights hold a gradient is part of the state: a run stopped and
    resumed ends with the same weights as one that was not."""
    from conftest import make_cifar, run_interrupted
    from wpl.nas.search.run import run_search

    data = make_cifar(tmp_path / "data")
    argv = [*TINY_NB201, f"--data_dir={data}", "--max_epoch=3", "--num_batch_per_iter=1", "--shared_max_step=4",
            "--search_strategy=random", "--shared_momentum=0.9", "--shared_l2_reg=5e-4", "--shared_zero_grad=zero",
            "--use_wpl=False"]
    run_search([*argv, f"--log_dir={tmp_path / 'full'}"])
    part = [*argv, f"--log_dir={tmp_path / 'part'}"]
    run_interrupted(part, 2, monkeypatch)
    run_search([*part, "--resume=True"])
    full, resumed = (torch.load(tmp_path / d / "cifar10_nb" / "checkpoint.pt", weights_only=False)["supernet"]
                     for d in ("full", "part"))
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_the_fast_average_pool_is_pytorchs_to_rounding() -> None:
    """``AvgPool3x3`` (separable sums) = ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)``, forward and backward,
    on every size the supernet meets and a non-square one."""
    from wpl.nas.spaces.nb201.supernet import AvgPool3x3

    torch.manual_seed(0)
    ref = torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    for shape in ((4, 3, 32, 32), (2, 5, 8, 8), (3, 2, 1, 1), (2, 2, 5, 7)):
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        g = torch.randn(*shape, dtype=torch.float64)
        ours, theirs = AvgPool3x3()(x), ref(x)
        assert torch.allclose(ours, theirs, atol=1e-12)
        (a,) = torch.autograd.grad(ours, x, g)
        (b,) = torch.autograd.grad(theirs, x, g)
        assert torch.allclose(a, b, atol=1e-12)


def test_a_weight_average_leaves_training_alone_is_the_average_resumes_and_ranks(tmp_path, capsys) -> None:
    """``--weight_ema=d``: the trained weights are bit for bit those of a run without it; the average is
    θ̄ ← d·θ̄ + (1 − d)·θ after every shared step from the initial weights (checked by hand over the run's
    steps); a run stopped and resumed keeps it exactly; ``wpl rank --weights=ema`` scores it (rank_ema.json),
    and on a run without one it is one line naming the flag."""
    from conftest import make_cifar
    from wpl.cli import main
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search, run_search

    data = make_cifar(tmp_path / "data")
    argv = [*TINY_NB201, f"--data_dir={data}", "--max_epoch=2", "--use_wpl=False", "--random_seed=4"]
    states = {}
    for name, extra in (("plain", []), ("ema", ["--weight_ema=0.5"])):
        run_search([*argv, *extra, f"--log_dir={tmp_path / name}"])
        states[name] = torch.load(tmp_path / name / "cifar10_nb" / "checkpoint.pt", weights_only=False)
    plain, ema = states["plain"], states["ema"]
    assert all(torch.equal(plain["supernet"][k], ema["supernet"][k]) for k in plain["supernet"])
    assert plain["weight_ema"] is None and set(ema["weight_ema"]) == set(dict(
        build_search(parse_search_args([*argv, f"--log_dir={tmp_path}"]), None, torch.device("cpu"))
        .supernet.named_parameters()))
    # by hand: the same search, stepped one shared step at a time, the average folded after each
    torch.manual_seed(0)
    search = build_search(parse_search_args([*argv, "--weight_ema=0.75", f"--log_dir={tmp_path}"]), None,
                          torch.device("cpu"))
    avg = {n: p.detach().clone() for n, p in search.supernet.named_parameters()}
    for arch in search.sample_archs(3):
        search.shared_step(arch, wpl=False)
        for n, p in search.supernet.named_parameters():
            avg[n] = 0.75 * avg[n] + 0.25 * p.detach()
    assert all(torch.allclose(search.weight_ema[n], avg[n], atol=1e-7) for n in avg)
    search.runlog.close()
    # stopped after the first epoch and resumed: the same average
    run_search([*argv, "--weight_ema=0.5", "--max_epoch=1", f"--log_dir={tmp_path / 'stop'}"])
    run_search([*argv, "--weight_ema=0.5", f"--log_dir={tmp_path / 'stop'}", "--resume=True"])
    resumed = torch.load(tmp_path / "stop" / "cifar10_nb" / "checkpoint.pt", weights_only=False)["weight_ema"]
    assert all(torch.equal(resumed[k], ema["weight_ema"][k]) for k in resumed)
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'ema'}", "--num_archs=6",
                 "--rank_batches=1", "--weights=ema"]) == 0
    assert (tmp_path / "ema" / "cifar10_nb" / "rank_ema.json").is_file()
    capsys.readouterr()
    assert main(["rank", "--model_name=cifar10_nb", f"--log_dir={tmp_path / 'plain'}", "--num_archs=6",
                 "--weights=ema"]) != 0
    assert "search with --weight_ema=DECAY" in capsys.readouterr().err


def test_a_memo_reuses_shared_parts_and_gives_the_same_logits_bit_for_bit() -> None:
    """Scoring many cells on one input with a CellMemo: identical logits, in sorted or any order, N = 1 or 2."""
    rng = random.Random(3)
    archs = [Nb201Arch(tuple(rng.choice(OPS) for _ in range(6))) for _ in range(60)]
    archs.append(Nb201Arch(("none",) * 6))
    for cells in (1, 2):
        torch.manual_seed(cells)
        net = SharedNB201(channels=4, cells=cells).eval()
        x = torch.randn(6, 3, 8, 8)
        with torch.no_grad():
            plain = [net(x, a) for a in archs]
            for order in (sorted(range(len(archs)), key=lambda i: archs[i].ops), list(range(len(archs)))):
                memo = CellMemo()
                for i in order:
                    assert torch.equal(net(x, archs[i], memo), plain[i]), archs[i].string
                # it holds one group's parts at most: the stem, 3 edges from the input, then 2 + 2 + 4 + 1 more
                assert len(memo.entries) <= 1 + 3 * 4 + 2 * 4 + 2 + 4 + 1


def test_scoring_cells_together_equals_scoring_them_one_at_a_time(tmp_path) -> None:
    """The ranking's shared-prefix scorer gives every cell the score the one-cell evaluation gives."""
    from conftest import make_cifar
    from wpl.nas.search.flags import parse_search_args
    from wpl.nas.search.run import build_search
    from wpl.nas.spaces.nb201.ranking import score_cells, score_each

    data = make_cifar(tmp_path / "data", per_batch=40)
    args = parse_search_args([*TINY_NB201, f"--data_dir={data}", "--valid_size=24"])
    search = build_search(args, run_dir=None, device=torch.device("cpu"))
    rng = random.Random(0)
    archs = [Nb201Arch(tuple(rng.choice(OPS) for _ in range(6))) for _ in range(23)]
    for a in archs[:5]:
        search.shared_step(a, wpl=False)
    calls = []
    fast = score_cells(search.task, archs, 3, 8, lambda: calls.append(1), chunk=7)
    slow = score_each(search.task, archs, 3, 8)
    assert fast == slow["accuracy"] and len(calls) == len(archs)
    assert len(set(fast)) > 1  # the cells are told apart: the test can fail
    by_loss = score_cells(search.task, archs, 3, 8, chunk=7, measure="loss")
    assert by_loss == slow["loss"]
    # evaluation builds no autograd graph, even when its caller has gradients on
    seen = []
    hook = search.task.supernet.register_forward_hook(lambda m, a, out: seen.append(out.requires_grad))
    with torch.enable_grad():
        search.task.valid_stats(archs[0], 3, 8)
    hook.remove()
    assert seen and not any(seen)
    assert by_loss == [-search.task.valid_stats(a, 3, 8)[0] for a in archs] and len(set(by_loss)) > 1
