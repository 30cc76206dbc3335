"""Spaces come from the registry: a new one is its package plus one registry line, and every command
works on it; the spaces' own members answer what the rest of the tool asks (drawing, metric, presets)."""

import json
from pathlib import Path

import pytest

from conftest import TOY, assert_drawn
from wpl.cli import main
from wpl.errors import WplError
from wpl.nas import spaces
from wpl.nas.search.run import run_search


def test_a_new_space_searches_derives_resumes_draws_and_compares(toy, tmp_path: Path, capsys) -> None:
    logs = tmp_path / "logs"
    full = run_search([*TOY, f"--log_dir={logs}", "--comment=full", "--max_epoch=3"])
    run_search([*TOY, f"--log_dir={logs}", "--comment=part", "--max_epoch=2"])
    part = run_search([*TOY, f"--log_dir={logs}", "--comment=part", "--max_epoch=3", "--resume=True"])
    assert full["metric"] == "error" and part["best_arch"] == full["best_arch"]
    csv = [(logs / f"synthetic_{n}" / "forgetting.csv").read_text() for n in ("full", "part")]
    assert csv[0] == csv[1] and csv[0].count("\n") > 4  # resumed exactly, with WPL on from epoch 1
    derived = run_search([*TOY, f"--log_dir={logs}", "--comment=full", "--mode=derive"])
    assert json.loads(derived["arch"])["type"] == "toy_mlp"
    assert main(["draw", f"--arch={logs / 'synthetic_full' / 'networks' / 'epoch_002.json'}",
                 f"--output={tmp_path / 'cell.png'}"]) == 0
    assert_drawn(tmp_path / "cell.png")
    assert main(["compare", "--model_name=synthetic_full", "--compare=synthetic_part", f"--log_dir={logs}"]) == 0
    assert "synthetic_full" in capsys.readouterr().out
    # the rest of the verbs, with no edit outside the space's package and its registry line
    tested = run_search([*TOY, f"--log_dir={logs}", "--comment=full", "--mode=test", "--arch=random:0"])
    assert tested["metric"] == "error" and 0.0 <= tested["test"] <= 1.0
    assert main(["runs", f"--log_dir={logs}"]) == 0
    listed = capsys.readouterr().out
    assert "synthetic_full" in listed and "toy_mlp" in listed
    assert main(["plot", "synthetic_full", f"--log_dir={logs}", "--fisher=true",
                 f"--output={tmp_path / 'fisher.png'}"]) == 0
    assert_drawn(tmp_path / "fisher.png")
    capsys.readouterr()
    assert main(["train-final", "--model_name=synthetic_full", f"--log_dir={logs}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no from-scratch training" in err[0]


def test_an_nb201_architecture_is_drawn(tmp_path: Path) -> None:
    cell = tmp_path / "cell.json"
    cell.write_text(json.dumps({"type": "nb201", "arch": "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|"
                                                         "none~0|nor_conv_1x1~1|nor_conv_3x3~2|"}))
    assert main(["draw", f"--arch={cell}", f"--output={tmp_path / 'nb.png'}"]) == 0
    assert_drawn(tmp_path / "nb.png")


def test_a_run_without_summary_is_labelled_by_its_space_metric(tmp_path: Path) -> None:
    from wpl.nas.search.report import load_run

    for kind, metric in (("nb201", "error"), ("micro_cnn", "error"), ("rnn", "ppl")):
        run = tmp_path / kind
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"network_type": kind}))
        (run / "metrics.jsonl").write_text("")
        assert load_run(run).metric == metric


def test_every_space_has_a_random_cell_of_its_own_type() -> None:
    from wpl.nas.presets import resolve_arch

    for space in spaces.all_spaces():
        arch, name = resolve_arch(f"random:3:{space.name}")
        assert spaces.of_arch(arch) is space and arch.to_dict()["type"] == space.kind
        assert name == f"random-{space.name}-3" and resolve_arch(f"random:3:{space.name}")[0] == arch


def test_unknown_spaces_and_architectures_are_one_line_errors() -> None:
    with pytest.raises(WplError, match="unknown space 'mlp'; the spaces are rnn, micro_cnn, nb201"):
        spaces.get("mlp")
    with pytest.raises(WplError, match="x.json: an architecture needs \"type\": one of 'rnn', 'micro_cnn', 'nb201'"):
        spaces.arch_from_dict({"type": "mlp"}, "x.json")


def test_every_flag_default_is_its_config_field_default() -> None:
    """What the command line gives without flags is what the search's config classes say (each space's own
    defaults where it sets them, the original's where a field names one), so a config built in Python and one
    built from flags agree. (The library's WplConfig keeps WPL's plain defaults; the search's flags reproduce the
    original's α schedule.)"""
    import dataclasses

    from wpl.fields import cli_default, flag_name
    from wpl.nas.search.flags import parse_search_args

    for space in spaces.all_spaces():
        configs = parse_search_args([f"--network_type={space.kind}"])
        for name, cfg in configs.groups():
            plain = type(cfg)()  # its fields' defaults, checked and canonicalised as a flag's value is
            for f in dataclasses.fields(cfg):
                default = cli_default(f) if "cli_default" in f.metadata else getattr(plain, f.name)
                want = space.flag_defaults.get(flag_name(f), default)
                if name == "run" and f.name in ("network_type", "dataset"):
                    want = getattr(space, {"network_type": "kind"}.get(f.name, f.name))
                assert getattr(cfg, f.name) == want, (space.kind, type(cfg).__name__, f.name)


def test_every_flag_is_a_config_field_and_every_field_a_flag() -> None:
    """One source of flags: the parser's options are exactly the configs' flag fields (and their aliases)."""
    import dataclasses

    from wpl.fields import flag_name, is_flag
    from wpl.nas.configs import config_classes, flag_fields
    from wpl.nas.search.flags import build_parser

    options = {a.dest for a in build_parser()._actions if a.dest != "help"}
    assert options == set(flag_fields()) == {flag_name(f) for cls in config_classes() for f in dataclasses.fields(cls)
                                            if is_flag(f)}
    not_flags = {(cls.__name__, f.name) for cls in config_classes() for f in dataclasses.fields(cls) if not is_flag(f)}
    assert not_flags == {("WplConfig", "importance")}  # the library's uniform-importance baseline only


def test_each_space_reads_its_own_dataset_unless_told() -> None:
    from wpl.nas.search.flags import parse_search_args

    for kind in ("rnn", "micro_cnn", "nb201"):
        assert parse_search_args([f"--network_type={kind}"]).run.dataset == spaces.get(kind).dataset
    assert parse_search_args(["--network_type=micro_cnn", "--dataset=mnist"]).run.dataset == "mnist"


def test_the_run_folder_holds_only_what_rundir_names(toy, tmp_path: Path) -> None:
    """RunDir is the one place that knows a run's files: a search's folder has nothing it does not name."""
    from wpl.rundir import RunDir

    logs = tmp_path / "logs"
    run_search([*TOY, f"--log_dir={logs}", "--comment=r", "--max_epoch=2"])
    rd = RunDir(logs / "synthetic_r")
    assert main(["gif", "--model_name=synthetic_r", f"--log_dir={logs}"]) == 0
    named = {rd.config, rd.checkpoint, rd.summary, rd.metrics, rd.forgetting, rd.figure("cells.gif"),
             *rd.epoch_checkpoints(), rd.checkpoint.with_suffix(".prev.pt"), rd.path / ".wpl.lock"}
    for f in rd.path.rglob("*"):
        if f.is_file() and f.parent != rd.networks:
            assert f in named, f"{f.relative_to(rd.path)} is written but RunDir does not name it"
    assert rd.is_search() and rd.read_summary()["epochs_done"] == 2 and rd.network("epoch_001").is_file()
