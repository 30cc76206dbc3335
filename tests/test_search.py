"""The search command end to end on a tiny generated corpus: outputs, flags, resume, errors."""

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import README_RNN, assert_drawn, rnn_argv, run_interrupted
from wpl.nas.search.flags import parse_search_args
from wpl.nas.search.run import run_search


class Flags:
    """Parsed configs read by flag name (as the command line spells them)."""

    def __init__(self, configs) -> None:
        self.__dict__.update(configs.flags())


def _argv(text_root: Path, tmp_path: Path, *extra: str) -> list[str]:
    return rnn_argv(text_root, tmp_path, *extra)


def test_readme_command_flags_parse() -> None:
    args = Flags(parse_search_args(README_RNN))
    assert args.comment == "rnn-train" and args.train_controller is True
    assert args.alpha_decay == 1.0 and args.alpha_small_scale == pytest.approx(1e-4)
    assert args.reward_c == 80.0 and args.controller_max_step == 2000 and args.num_blocks == 12
    assert args.shared_lr == 20.0 and args.momentum is True  # untouched defaults are the original's


def test_last_repeated_flag_wins_and_reward_c_is_float() -> None:
    args = Flags(parse_search_args(["--controller_max_step=100", "--controller_max_step=1000", "--reward_c=1."]))
    assert args.controller_max_step == 1000 and args.reward_c == 1.0


@pytest.mark.parametrize("argv, message", [
    (["--alpha_fishr=3"], "unknown flag --alpha_fishr; did you mean --alpha_fisher?"),
    (["--train_controller=maybe"], "--train_controller"),
    (["--shared_num_sample=2"], "--shared_num_sample"),
    (["--shared_momentum=1"], "--shared_momentum=1.0: must be in [0, 1)"),
    (["--shared_optim=adam", "--shared_momentum=0.9"], "it needs --shared_optim=sgd"),
    (["--fisher_source=train", "--fisher_estimator=empirical"], "use --fisher_source=valid for the others"),
    (["--network_type=nb201", "--nb201_bn_recal=-2"], "--nb201_bn_recal"),
])
def test_bad_flags_are_one_line_errors(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_search_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_warns_when_wpl_never_activates() -> None:
    with pytest.warns(UserWarning, match="WPL will never activate"):
        parse_search_args(["--start_using_fisher=50000", "--max_epoch=310"])


def test_tiny_search_writes_every_output(text_root: Path, tmp_path: Path) -> None:
    summary = run_search(_argv(text_root, tmp_path))
    run = tmp_path / "logs" / "tiny_rnn-train"
    for name in ("config.json", "checkpoint.pt", "checkpoint_epoch_000.pt", "checkpoint_epoch_001.pt",
                 "metrics.jsonl", "forgetting.csv", "summary.json", "networks/epoch_001.json",
                 "networks/epoch_001.dot"):
        assert (run / name).is_file(), name
    assert_drawn(run / "networks/epoch_001.png")
    assert summary["epochs_done"] == 2 and summary["wpl_active"] is True
    assert summary["best_valid_ppl"] > 1 and summary["test_ppl"] > 1
    assert set(summary["seconds"]) >= {"shared", "controller", "derive", "eval"}
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"shared", "controller", "forgetting", "derive", "epoch", "done"} <= kinds
    wpl_by_epoch = {e["epoch"]: e["wpl"] for e in events if e["event"] == "epoch"}
    assert wpl_by_epoch[0] == 0.0 and wpl_by_epoch[1] > 0.0  # WPL from --start_using_fisher=1
    rows = list(csv.DictReader((run / "forgetting.csv").open()))
    assert len(rows) == 2 * 3  # every architecture of every epoch
    r = rows[0]
    assert float(r["diff"]) == pytest.approx(float(r["err2"]) - float(r["err1"]), rel=1e-4, abs=1e-3)
    assert json.loads(r["arch"])["type"] == "rnn"


def test_resume_is_bit_identical(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    full = tmp_path / "full"
    run_search(_argv(text_root, full, "--max_epoch=3"))
    part = tmp_path / "part"
    run_interrupted(_argv(text_root, part, "--max_epoch=3"), 2, monkeypatch)
    assert not (part / "logs" / "tiny_rnn-train" / "summary.json").exists()
    run_search(_argv(text_root, part, "--max_epoch=3", "--resume=True"))
    a = torch.load(full / "logs/tiny_rnn-train/checkpoint.pt", weights_only=False)
    b = torch.load(part / "logs/tiny_rnn-train/checkpoint.pt", weights_only=False)
    for key in ("supernet", "controller"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), (key, name)
    for name, t in a["wpl"]["fisher"].items():
        assert torch.equal(t, b["wpl"]["fisher"][name])
    for name in ("metrics.jsonl", "forgetting.csv"):
        assert (full / "logs/tiny_rnn-train" / name).read_text() == (part / "logs/tiny_rnn-train" / name).read_text()


def test_existing_run_is_not_overwritten(text_root: Path, tmp_path: Path) -> None:
    run_search(_argv(text_root, tmp_path, "--max_epoch=1"))
    from wpl.errors import WplError

    with pytest.raises(WplError, match="--resume=True"):
        run_search(_argv(text_root, tmp_path, "--max_epoch=1"))


def test_corrupt_checkpoint_is_a_clear_error(text_root: Path, tmp_path: Path) -> None:
    run_search(_argv(text_root, tmp_path, "--max_epoch=1"))
    ckpt = tmp_path / "logs" / "tiny_rnn-train" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    from wpl.errors import WplError

    with pytest.raises(WplError, match="checkpoint.pt: corrupt or truncated"):
        run_search(_argv(text_root, tmp_path, "--max_epoch=2", "--resume=True"))


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(text_root: Path, tmp_path: Path, capsys) -> None:
    """A flipped byte (which torch's zip format does not notice) fails the digest; the previous checkpoint,
    kept until the next save, resumes the run, which ends as an uninterrupted one."""
    from wpl.checkpoint import CorruptCheckpoint, load_checkpoint

    whole = run_search(_argv(text_root, tmp_path / "a", "--max_epoch=3"))
    run_search(_argv(text_root, tmp_path / "b", "--max_epoch=2"))
    run_dir = tmp_path / "b" / "logs" / "tiny_rnn-train"
    ckpt, prev = run_dir / "checkpoint.pt", run_dir / "checkpoint.prev.pt"
    assert load_checkpoint(prev)["epoch"] == 1 and load_checkpoint(ckpt)["epoch"] == 2
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0x10
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match="does not match the digest"):
        load_checkpoint(ckpt)
    resumed = run_search(_argv(text_root, tmp_path / "b", "--max_epoch=3", "--resume=True"))
    err = capsys.readouterr().err
    assert "resuming from the previous checkpoint" in err and "checkpoint.prev.pt" in err
    assert resumed["best_valid"] == whole["best_valid"] and resumed["epochs"] == whole["epochs"]
    metrics = [(tmp_path / d / "logs" / "tiny_rnn-train" / "metrics.jsonl").read_text().splitlines() for d in "ab"]
    rows = [[{k: v for k, v in json.loads(ln).items() if k not in ("time", "seconds")} for ln in m] for m in metrics]
    assert rows[0] == rows[1]


def test_a_second_process_on_the_same_run_folder_is_refused(text_root: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from wpl.errors import WplError

    run_dir = tmp_path / "logs" / "tiny_rnn-train"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from wpl.runlock import run_lock\n"
                               "with run_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(60)",
                               str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WplError, match=rf"in use by process {holder.pid} on .*wait for it to finish"):
            run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--resume=True"))
        assert sorted(p.name for p in run_dir.iterdir()) == [".wpl.lock"]  # nothing written beside it
    finally:
        holder.kill()
        holder.wait()
    assert run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--resume=True"))["epochs_done"] == 1


def test_resume_with_nothing_to_resume_starts_new_run(text_root: Path, tmp_path: Path, caplog) -> None:
    summary = run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--resume=True"))
    assert summary["epochs_done"] == 1


def test_use_wpl_false_is_the_plain_baseline(text_root: Path, tmp_path: Path) -> None:
    summary = run_search(_argv(text_root, tmp_path, "--use_wpl=False", "--max_epoch=2"))
    assert summary["wpl_active"] is False and summary["use_wpl"] is False
    assert all(e["wpl"] == 0.0 for e in summary["epochs"])
    state = torch.load(tmp_path / "logs/tiny_rnn-train/checkpoint.pt", weights_only=False)
    assert all(not f.any() for f in state["wpl"]["fisher"].values())  # no Fisher was ever estimated


def test_legacy_alpha_without_clip_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_search_args(["--alpha_fisher=60", "--fisher_clip_by_norm=0"])
    assert "grows without bound" in capsys.readouterr().err
    configs = parse_search_args(["--alpha_fisher=60", "--fisher_clip_by_norm=0", "--legacy_compound_alpha=False"])
    assert configs.wpl.legacy_compound_alpha is False


def test_demo_table_puts_the_runs_side_by_side() -> None:
    from wpl.demo import forgetting_table

    epoch = {"forgetting_loss_diff_mean": 0.5, "forgetting_loss_diff_median": -0.25,
             "forgetting_loss_diff_best_mean": None, "forgetting_diff_median": 12.0, "shared_ppl": 300.0}
    runs = {n: {"epochs": [epoch], "best_valid": 100.0, "test": None} for n in ("no_wpl", "wpl")}
    lines = forgetting_table(runs).splitlines()
    assert lines[2] == "| 0 | no_wpl | 300.0 | +0.500 / -0.250 / — | +12.0 |"
    assert lines[3].startswith("| 0 | wpl | 300.0 |")
    assert lines[-1] == "| wpl | 100.0 | — |"


def test_recommended_recipe_sets_its_flags_where_it_stands_on_the_command_line() -> None:
    # appended to the README's command, it replaces the original's WPL flags given before it
    args = Flags(parse_search_args([*README_RNN, "--wpl_recipe=recommended"]))
    assert (args.legacy_compound_alpha, args.fisher_normalise, args.fisher_clip_by_norm, args.wpl_update,
            args.wpl_scope) == (False, "mean", 0.0, "proximal", "used")
    assert args.alpha_fisher == pytest.approx(1 / args.shared_lr)  # 0.05 at the RNN's lr 20
    # a flag after it wins; α follows the space's learning rate
    args = Flags(parse_search_args(["--network_type=micro_cnn", "--wpl_recipe", "recommended", "--wpl_scope=edges"]))
    assert args.wpl_scope == "edges" and args.alpha_fisher == pytest.approx(10.0)
    args = Flags(parse_search_args(["--wpl_recipe=recommended", "--shared_lr=2"]))
    assert args.alpha_fisher == pytest.approx(0.5)
    # the default is the original: the README's command computes what it computed
    plain = Flags(parse_search_args(README_RNN))
    assert plain.wpl_recipe == "original" and plain.alpha_fisher == 60.0 and plain.wpl_update == "gradient"


def test_shared_valid_fisher_false_also_folds_the_training_batch(text_root: Path, tmp_path: Path) -> None:
    fishers = {}
    for flag in ("True", "False"):
        out = tmp_path / flag
        run_search(_argv(text_root, out, "--max_epoch=1", "--start_using_fisher=0", f"--shared_valid_fisher={flag}"))
        state = torch.load(out / "logs/tiny_rnn-train/checkpoint.pt", weights_only=False)
        fishers[flag] = state["wpl"]["fisher"]
    assert any(not torch.equal(fishers["True"][n], fishers["False"][n]) for n in fishers["True"])


def test_wpl_scope_used_also_protects_the_shared_embedding(text_root: Path, tmp_path: Path) -> None:
    run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--start_using_fisher=0", "--wpl_scope=used"))
    state = torch.load(tmp_path / "logs/tiny_rnn-train/checkpoint.pt", weights_only=False)
    fisher = state["wpl"]["fisher"]
    assert "encoder.weight" in fisher and fisher["encoder.weight"].any()
    assert any(n.startswith("edges.") and f.any() for n, f in fisher.items())


def test_derive_and_test_modes_read_a_finished_run(text_root: Path, tmp_path: Path) -> None:
    from wpl.errors import WplError

    with pytest.raises(WplError, match="does not exist"):
        run_search(_argv(text_root, tmp_path, "--mode=test"))
    summary = run_search(_argv(text_root, tmp_path, "--max_epoch=2"))
    run = tmp_path / "logs" / "tiny_rnn-train"
    before = (run / "checkpoint.pt").read_bytes(), (run / "metrics.jsonl").read_text()
    rec = run_search(_argv(text_root, tmp_path, "--mode=derive"))
    assert json.loads((run / "networks/derived.json").read_text())["arch"] == json.loads(rec["arch"])
    assert_drawn(run / "networks/derived.png")
    assert rec["valid"] > 1 and rec["metric"] == "ppl"
    out = run_search(_argv(text_root, tmp_path, "--mode=test"))
    assert out["test"] == pytest.approx(summary["test"])  # same weights, same cell, same split
    assert json.loads((run / "test.json").read_text())["arch"] == summary["best_arch"]
    assert (run / "checkpoint.pt").read_bytes() == before[0]  # the run itself is untouched
    assert (run / "metrics.jsonl").read_text().startswith(before[1])


def _count_fisher_batches(monkeypatch) -> dict[str, int]:
    """Count the validation batches drawn for the Fisher (RnnTask.fisher_batch calls)."""
    from wpl.nas.spaces.rnn.task import RnnTask

    calls = {"fisher_batch": 0}
    real = RnnTask.fisher_batch

    def counted(self, arch):
        calls["fisher_batch"] += 1
        return real(self, arch)

    monkeypatch.setattr(RnnTask, "fisher_batch", counted)
    return calls


def test_fisher_source_train_folds_the_training_gradient_without_a_validation_pass(text_root: Path, tmp_path: Path,
                                                                                    monkeypatch) -> None:
    calls = _count_fisher_batches(monkeypatch)
    run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--start_using_fisher=0", "--fisher_source=train"))
    state = torch.load(tmp_path / "logs/tiny_rnn-train/checkpoint.pt", weights_only=True)
    assert calls["fisher_batch"] == 0  # no validation batch was drawn for the Fisher
    assert any(f.any() for n, f in state["wpl"]["fisher"].items() if n.startswith("edges."))


def test_fisher_every_and_forgetting_every_thin_the_extra_passes(text_root: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    calls = _count_fisher_batches(monkeypatch)
    run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--start_using_fisher=0", "--shared_max_step=7",
                     "--fisher_every=3", "--forgetting_every=2"))
    assert calls["fisher_batch"] == 3  # shared steps 0, 3 and 6 of 7
    with open(tmp_path / "logs/tiny_rnn-train/forgetting.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [0, 2, 4, 6]


def test_fisher_source_train_needs_the_batch_sq_estimator(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_search_args(["--network_type=micro_cnn", "--fisher_source=train", "--fisher_estimator=empirical"])
    assert "--fisher_estimator=empirical: --fisher_source=train folds" in capsys.readouterr().err


def test_num_threads_sets_torch_threads(text_root: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        run_search(_argv(text_root, tmp_path, "--max_epoch=1", "--num_threads=1"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_benchmarks_recommended_flags_are_the_recipe() -> None:
    from benchmarks.lib.search_repro import recommended

    for lr in (20.0, 0.1, 0.05):
        a = parse_search_args(["--wpl_recipe=recommended", f"--shared_lr={lr}"]).flags()
        b = parse_search_args([*recommended(lr), f"--shared_lr={lr}"]).flags()
        a.pop("wpl_recipe"), b.pop("wpl_recipe")
        assert a == b, lr


def _resume_fixture(name: str, tmp_path: Path) -> list[dict]:
    """Copy the committed run ``tests/fixtures/<name>``, continue it to a third epoch; its epoch events."""
    import shutil

    from conftest import events_of, make_text

    run = tmp_path / name / "logs" / "tiny_rnn-train"
    shutil.copytree(Path(__file__).parent / "fixtures" / name, run)
    data = make_text(tmp_path / name / "data")  # the same generated corpus the run was made on (same seed)
    summary = run_search(["--resume=True", f"--load_path={run}", f"--data_dir={data}", "--max_epoch=3",
                          "--log_level=WARNING"])
    assert summary["epochs_done"] == 3 and summary["test_ppl"] > 1
    epochs = [e for e in events_of(run) if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    return epochs


def test_runs_saved_in_the_2026_12_06_formats_still_resume_to_the_same_epoch(tmp_path: Path) -> None:
    """Two committed tiny RNN runs of the same command (2 of its epochs), one saved with its flat flags
    (checkpoint version 3), one with its typed configs (version 4), each continue to a third epoch, the same
    one: a later change of the checkpoint or the configs must keep reading both (or say in one line why not)."""
    flat = _resume_fixture("run_2026-12-06_rnn", tmp_path)
    typed = _resume_fixture("run_2026-12-06_typed_rnn", tmp_path)
    assert flat == typed
