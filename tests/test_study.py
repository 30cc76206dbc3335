"""``wpl study``: its statistics against values computed by hand (and SciPy, once, written down here), its spec
checks, and a toy study end to end: the report's numbers recomputed from the records, a changed spec refused, a
study continued after a stop giving the same records."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from wpl.errors import WplError
from wpl.stats import compare_family, detectable, holm, paired, pairs_needed, power_two_sided, t_ppf, t_sf


def test_t_quantiles_tails_and_the_noncentral_t_match_tabled_values() -> None:
    assert t_ppf(0.975, 4) == pytest.approx(2.7764451051977934, abs=1e-9)
    assert t_ppf(0.975, 19) == pytest.approx(2.0930240544083087, abs=1e-9)
    assert t_ppf(0.025, 4) == pytest.approx(-2.7764451051977934, abs=1e-9)
    assert t_ppf(0.975, 1) == pytest.approx(12.706204736174694, rel=1e-4)  # Cauchy: the heaviest tail
    assert 2 * t_sf(2.5, 7) == pytest.approx(0.04099221858575289, abs=1e-9)
    assert t_sf(2.0, 5, nc=1.5) == pytest.approx(0.36855075274432825, abs=1e-9)
    assert t_sf(-1.0, 3, nc=0.5) == pytest.approx(0.9078787901856405, abs=1e-9)


def test_power_and_the_smallest_detectable_effect() -> None:
    # n = 20 pairs of sd 0.05 at the strictest Holm level of 4 tests: 0.04 is detected with 78% power...
    assert power_two_sided(0.04, 0.05, 20, 0.0125) == pytest.approx(0.7829434001580278, abs=1e-6)
    # ...so 80% needs 0.0407; five pairs at 0.05 need 0.084 (issue #34's "≈ 0.09")
    assert detectable(0.05, 20, 0.0125) == pytest.approx(0.040729570819489115, abs=1e-7)
    assert detectable(0.05, 5, 0.05) == pytest.approx(0.0840998482977778, abs=1e-7)
    assert power_two_sided(detectable(0.05, 8, 0.05), 0.05, 8, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert math.isnan(detectable(0.05, 1, 0.05))


def test_pairs_needed_is_the_first_n_with_the_power() -> None:
    # 20 pairs of sd 0.05 give 78% at 0.04 (above), so 80% needs 21; at sd 0.049, the spec's bound, 20 suffice
    assert pairs_needed(0.04, 0.05, 0.0125) == 21
    assert pairs_needed(0.04, 0.049, 0.0125) == 20
    for sd in (0.02, 0.078, 0.15):
        n = pairs_needed(0.04, sd, 0.0125)
        assert power_two_sided(0.04, sd, n, 0.0125) >= 0.8 > power_two_sided(0.04, sd, n - 1, 0.0125)
    # a t with many degrees of freedom is the normal (the chi grid in logs: no overflow)
    assert t_sf(1.96, 5000) == pytest.approx(0.0249979, abs=1e-4)
    assert pairs_needed(0.04, 0.0, 0.05) is None and pairs_needed(0.001, 1.0, 0.05) is None


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 → ×3, ×2, ×1 = 0.03, 0.06, 0.04 → monotone: 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.04, 0.03, 0.5]) == pytest.approx([0.09, 0.09, 0.5])  # 0.04 × 2 = 0.08 lifted to 0.09
    out = holm([0.02, float("nan")])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1])
    assert holm([0.02, float("nan")], m=2)[0] == pytest.approx(0.04)  # a declared family counts every test


def test_paired_interval_by_hand() -> None:
    d = [0.03, 0.05, -0.01, 0.04, 0.02]  # mean 0.026, sd 0.0230217, se 0.0102956, t(4) 2.5253
    c = paired(d, [0.0] * 5)
    assert c["mean"] == pytest.approx(0.026)
    assert c["sd"] == pytest.approx(0.02302172886644268)
    assert c["t"] == pytest.approx(2.5253432421288866)
    assert c["p"] == pytest.approx(0.06498591034212063, abs=1e-9)
    assert (c["lo"], c["hi"]) == pytest.approx((-0.0025852519098702245, 0.05458525190987023))
    assert (c["up"], c["down"]) == (4, 1)
    assert paired([1.0, None, 3.0], [0.5, 2.0, float("nan")])["n"] == 1  # missing pairs dropped


def test_verdicts_are_computed_from_the_numbers() -> None:
    strong = [0.05 + 0.01 * (i % 3) for i in range(12)]
    rows = [("up", strong, [0.0] * 12), ("noise", [0.01, -0.02, 0.03, -0.01, 0.0, 0.02] * 2, [0.0] * 12),
            ("tight", [0.001, -0.001] * 6, [0.0] * 12), ("same", [0.3] * 12, [0.3] * 12)]
    fam = {c["name"]: c for c in compare_family(rows, 0.05, 0.8, 0.04)}
    assert fam["up"]["verdict"] == "higher" and fam["up"]["p_holm"] < 0.05
    assert fam["tight"]["verdict"] == "equivalent"  # interval inside ±0.04
    assert fam["same"]["verdict"] == "identical"
    assert fam["noise"]["verdict"] in ("unresolved", "equivalent")
    assert fam["up"]["detectable"] == pytest.approx(detectable(fam["up"]["sd"], 12, 0.05 / 4), rel=1e-9)
    down = compare_family([("d", [0.0] * 6, [0.1, 0.11, 0.12, 0.1, 0.11, 0.12])], 0.05)[0]
    assert down["verdict"] == "lower"
    # p 0.021 alone, 0.063 after Holm over three: nominal only
    nominal = compare_family([("a", [0.02, 0.03, 0.01, 0.04, 0.02, 0.03, -0.01, 0.0], [0.0] * 8),
                              ("b", [0.0] * 8, [0.0] * 8), ("c", [0.1, -0.1] * 4, [0.0] * 8)], 0.05)
    assert nominal[0]["p"] == pytest.approx(0.020937570206924622, abs=1e-9)
    assert nominal[0]["p_holm"] == pytest.approx(3 * nominal[0]["p"]) and nominal[0]["verdict"] == "nominal"
    # an unresolved verdict names the power the family was declared with
    wide = compare_family([("w", [0.2, -0.1, 0.15, -0.2, 0.05, -0.05], [0.0] * 6)], 0.05, 0.9, 0.04)[0]
    assert wide["verdict"] == "unresolved" and wide["verdict_text"].endswith(
        f"detects ≥ {detectable(wide['sd'], 6, 0.05, 0.9):.3f} (90% power)")


TOY = """
name = "toy"
description = "a toy study"
flags = ["--nb201_channels=2", "--nb201_cells=1", "--batch_size=4", "--test_batch_size=8", "--shared_max_step=3",
         "--num_batch_per_iter=1", "--derive_num_sample=2", "--forgetting_batches=1", "--valid_size=16",
         "--save_epoch=1", "--controller_hid=8", "--num_gpu=0", "--max_epoch=1"]
seeds = "3-4"
[cells]
seed = 11
num = 10
images = 8
batch_size = 4
[continuity]
seed = 0
num = 5
unique = false
images = 8
batch_size = 8
[arms.plain]
strategy = "random"
flags = ["--use_wpl=False", "--weight_ema=0.5"]
[arms.ema]
score = "plain"
weights = "ema"
[arms.lr]
strategy = "random"
flags = ["--use_wpl=False", "--shared_lr=0.2"]
[[comparisons]]
name = "H1"
a = "lr"
b = "plain"
[[comparisons]]
name = "H2"
a = "ema"
b = "plain"
[endpoints]
secondary = ["top1_true_acc"]
"""


@pytest.mark.parametrize("old, new", [
    ('name = "toy"', 'name = "a b"'), ('seeds = "3-4"', 'seeds = [3]'), ('a = "lr"', 'a = "nope"'),
    ('"--max_epoch=1"]', '"--max_epoch=1", "--random_seed=2"]'), ('score = "plain"', 'score = "ema"'),
    ('secondary = ["top1_true_acc"]', 'secondary = ["accuracy"]'), ("num = 10", "num = 7000"),
    ('weights = "ema"', 'weights = "ema"\nmeasure = "rank"')],
    ids=["name", "one seed", "unknown arm", "study's own flag", "score an untrained arm", "endpoint", "cells",
         "measure"])
def test_a_bad_spec_is_one_line_naming_the_file_and_key(old, new) -> None:
    from wpl.nas.spaces.nb201.study.spec import parse_spec

    parse_spec(TOY, "toy.toml")  # the toy spec itself is fine
    with pytest.raises(WplError) as exc:
        parse_spec(TOY.replace(old, new, 1), "toy.toml")
    assert str(exc.value).startswith("toy.toml") and "\n" not in str(exc.value)


def test_time_left_is_each_arms_recent_median(tmp_path) -> None:
    """The study's time left: per remaining run, its arm's median over its last recorded runs (a scoring-only arm
    counts its scoring alone), else every run's; nothing before any record."""
    from wpl.nas.spaces.nb201.study.runs import record_path, time_left, write_gz_json
    from wpl.nas.spaces.nb201.study.spec import parse_spec

    spec = parse_spec(TOY.replace('seeds = "3-4"', 'seeds = "3-9"'), "toy.toml")
    arms = {a.name: a for a in spec.arms}
    todo = [(9, arms["plain"]), (9, arms["ema"]), (9, arms["lr"])]
    assert time_left(spec, tmp_path, todo) is None
    for seed, (train, sc) in zip(range(3, 9), [(900, 99), (100, 10), (200, 20), (300, 30), (400, 40), (500, 50)]):
        write_gz_json(record_path(tmp_path, seed, "plain"), {"train_seconds": train, "score_seconds": sc})
        write_gz_json(record_path(tmp_path, seed, "ema"), {"train_seconds": train, "score_seconds": sc / 2})
    write_gz_json(record_path(tmp_path, 3, "lr"), {"failed": "diverged", "scores": {}})
    # plain: the last 5 (seeds 4-8) → median 330; ema: scoring only → 15; lr: no record of its own → all 12 → 79.75
    every = sorted([110, 220, 330, 440, 550, 999, 5, 10, 15, 20, 25, 49.5])
    assert time_left(spec, tmp_path, todo) == pytest.approx(330 + 15 + (every[5] + every[6]) / 2)


def test_an_arm_whose_flags_the_search_refuses_stops_the_study_before_any_run(tmp_path, capsys) -> None:
    (tmp_path / "toy.toml").write_text(TOY.replace('"--shared_lr=0.2"', '"--shared_lr=0.2", "--no_such_flag=1"'))
    with pytest.raises(WplError, match=r"\[arms.lr\]: its flags are refused"):
        _study(tmp_path)
    assert "no_such_flag" in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()


@pytest.mark.slow
def test_a_run_that_diverges_is_recorded_and_left_out_of_its_pairs(tmp_path) -> None:
    from conftest import make_cifar
    from wpl.nas.spaces.nb201.study.runs import read_gz_json

    make_cifar(tmp_path / "data", per_batch=40)
    spec = (TOY.replace('seeds = "3-4"', 'seeds = [3, 4]')
            .replace('"--shared_lr=0.2"', '"--shared_lr=1e30", "--shared_grad_clip=1e30", "--shared_max_step=3"'))
    (tmp_path / "toy.toml").write_text(spec)
    assert _study(tmp_path) == 0  # the study goes on past the diverged runs
    out = tmp_path / "toy"
    rec = read_gz_json(out / "runs" / "seed3" / "lr.json.gz")
    assert "non-finite" in rec["failed"] and rec["scores"]["cells"] is None
    r = json.loads((out / "study.json").read_text())
    assert r["complete"] and {(f["seed"], f["arm"]) for f in r["failed"]} == {(3, "lr"), (4, "lr")}
    h1, h2 = r["comparisons"]["kendall_tau"]
    assert h1["n"] == 0 and h1["verdict"] == "undefined"
    assert h2["name"] == "H2" and h2["n"] == sum(x["cells"]["kendall_tau"] is not None for x in r["runs"]
                                                 if x["arm"] == "ema")  # ema − plain: every defined pair
    assert "diverged" in (out / "report.md").read_text()


def _study(tmp_path: Path, *extra: str) -> int:
    from wpl.nas.spaces.nb201.study.command import cmd_study

    return cmd_study([str(tmp_path / "toy.toml"), f"--data_dir={tmp_path / 'data'}", *extra])


@pytest.mark.slow
def test_a_toy_study_end_to_end(tmp_path, capsys) -> None:
    from conftest import make_cifar
    from wpl.data.nb201 import ground_truth
    from wpl.nas.rank import kendall_tau
    from wpl.nas.spaces.nb201.study.command import cmd_study
    from wpl.nas.spaces.nb201.study.runs import read_gz_json

    make_cifar(tmp_path / "data", per_batch=40)
    (tmp_path / "toy.toml").write_text(TOY)
    assert _study(tmp_path, "--max_runs=2") == 0  # a stop after two runs: an interim report
    out = tmp_path / "toy"
    assert "Interim: 2 of 6 runs" in (out / "report.md").read_text()
    assert not json.loads((out / "study.json").read_text())["complete"]
    assert _study(tmp_path) == 0
    r = json.loads((out / "study.json").read_text())
    assert r["complete"] and r["seeds_done"] == [3, 4]
    # a complete study's follow-up: the comparisons its report left unresolved and underpowered, on fresh seeds
    from wpl.nas.spaces.nb201.study.follow_up import why_not
    from wpl.nas.spaces.nb201.study.spec import read_spec

    assert cmd_study([str(tmp_path / "toy.toml"), f"--follow_up={tmp_path / 'next.toml'}"]) == 0
    fam = r["comparisons"]["kendall_tau"]
    again = [c for c in fam if not why_not(c, 0.8)]
    assert (tmp_path / "next.toml").exists() == bool(again)
    if again:
        follow = read_spec(tmp_path / "next.toml")
        assert [c.name for c in follow.comparisons] == [c["name"] for c in again]
        assert follow.seeds[0] == 5 and len(follow.seeds) == max(c["pairs_needed"] for c in again)
    from wpl.nas.spaces.nb201.study.report import machine_label
    from wpl.runtime import machine

    assert r["machines"] == {machine_label(machine()): 6} and f"{machine_label(machine())}: 6 runs" in (
        out / "report.md").read_text()
    assert machine_label(None) == "not recorded" and machine_label({"cpu": "elsewhere"}) == "elsewhere"
    assert (out / "arms.png").stat().st_size > 0 and (out / "comparisons.png").stat().st_size > 0
    assert (out / ".gitignore").read_text() == "work/\n"
    # every τ recomputed from the committed records: each cell's score against the benchmark's truth
    cells = read_gz_json(out / "cells.json.gz")
    truth = ground_truth().test_acc[cells["cells"]["index"]]
    assert cells["cells"]["truth"] == pytest.approx(truth.tolist())
    for row in r["runs"]:
        rec = read_gz_json(out / "runs" / f"seed{row['seed']}" / f"{row['arm']}.json.gz")
        tau = kendall_tau(rec["scores"]["cells"], truth)
        assert (math.isnan(tau) and row["cells"]["kendall_tau"] is None) or row["cells"]["kendall_tau"] == tau
    # the EMA arm scores the run's weight average, not its trained weights
    import torch

    from wpl.nas.spaces.nb201.ranking import use_weights
    from wpl.nas.spaces.nb201.study.runs import load_run

    run = out / "work" / "seed3" / "cifar10_plain"
    search = load_run(run, str(tmp_path / "data"))
    saved = torch.load(run / "checkpoint.pt", weights_only=False)["weight_ema"]
    trained = {n: p.detach().clone() for n, p in search.supernet.named_parameters()}
    use_weights(search, "ema", run / "checkpoint.pt")
    search.runlog.close()
    now = dict(search.supernet.named_parameters())
    assert all(torch.equal(now[n], saved[n]) for n in saved)
    assert any(not torch.equal(trained[n], saved[n]) for n in saved)
    h1 = r["comparisons"]["kendall_tau"][0]
    assert {"cells_se", "lo_cells", "hi_cells"} <= h1.keys()
    assert all("above_with_cells" in v for v in r["vs_parameter_count"].values())
    taus = {(x["seed"], x["arm"]): x["cells"]["kendall_tau"] for x in r["runs"]}
    assert h1["name"] == "H1" and h1["diffs"] == pytest.approx(
        [taus[(s, "lr")] - taus[(s, "plain")] for s in (3, 4) if None not in (taus[(s, "lr")], taus[(s, "plain")])])
    # a changed spec is refused in one line, and nothing is run
    (tmp_path / "toy.toml").write_text(TOY.replace('seeds = "3-4"', 'seeds = "3-5"'))
    with pytest.raises(WplError, match="another spec \\(changed: seeds"):
        _study(tmp_path)
    (tmp_path / "toy.toml").write_text(TOY)
    # a run lost (its folder and record) is trained again to the same scores, bit for bit
    before = (out / "runs" / "seed4" / "lr.json.gz").read_bytes()
    shutil.rmtree(out / "work" / "seed4" / "cifar10_lr")
    (out / "runs" / "seed4" / "lr.json.gz").unlink()
    assert _study(tmp_path) == 0
    after = read_gz_json(out / "runs" / "seed4" / "lr.json.gz")
    assert after["scores"] == json.loads(__import__("gzip").decompress(before))["scores"]
    assert json.loads((out / "study.json").read_text())["comparisons"] == r["comparisons"]
    # a second study sharing the trained runs (--work_dir): its loss-scored arm scores them by the negated mean
    # cross-entropy, nothing is trained again; a run trained with other flags is refused in one line
    second = TOY.replace('name = "toy"', 'name = "toy2"\ntrains = false').replace("seed = 11", "seed = 12").replace(
        '[arms.lr]', '[arms.plain-loss]\nscore = "plain"\nmeasure = "loss"\n[arms.lr]').replace(
        'a = "ema"', 'a = "plain-loss"')
    (tmp_path / "toy2.toml").write_text(second)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "work").rglob("checkpoint.pt")}
    shared = [f"--data_dir={tmp_path / 'data'}", f"--work_dir={out / 'work'}"]
    assert cmd_study([str(tmp_path / "toy2.toml"), *shared]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "work").rglob("checkpoint.pt")}
    loss_rec = read_gz_json(tmp_path / "toy2" / "runs" / "seed3" / "plain-loss.json.gz")
    assert loss_rec["measure"] == "loss" and all(v < 0 for v in loss_rec["scores"]["cells"])
    # one pass scored both: the accuracy arm's record kept the loss, which its sibling took
    acc_rec = read_gz_json(tmp_path / "toy2" / "runs" / "seed3" / "plain.json.gz")
    assert loss_rec["scored_with"] == "plain" and acc_rec["other_measures"]["loss"] == loss_rec["scores"]
    assert all(v >= 0 for v in acc_rec["scores"]["cells"])
    # each record names the machine whose arithmetic gave its scores; a sibling's kept scores keep its machine
    from wpl.nas.spaces.nb201.study.runs import write_gz_json

    assert acc_rec["machine"] == machine() and {"cpu", "capability", "torch", "threads"} <= machine().keys()
    write_gz_json(tmp_path / "toy2" / "runs" / "seed3" / "plain.json.gz", {**acc_rec, "machine": {"cpu": "elsewhere"}})
    (tmp_path / "toy2" / "runs" / "seed3" / "plain-loss.json.gz").unlink()
    assert cmd_study([str(tmp_path / "toy2.toml"), *shared]) == 0
    again = read_gz_json(tmp_path / "toy2" / "runs" / "seed3" / "plain-loss.json.gz")
    assert again["machine"] == {"cpu": "elsewhere"} and again["scores"] == loss_rec["scores"]
    assert "other_measures" not in read_gz_json(tmp_path / "toy2" / "runs" / "seed3" / "lr.json.gz")
    (tmp_path / "toy3.toml").write_text(second.replace('name = "toy2"', 'name = "toy3"').replace(
        '"--shared_lr=0.2"', '"--shared_lr=0.3"'))
    with pytest.raises(WplError, match="trained with other flags \\(--shared_lr=0.2 there, 0.3 in the spec"):
        cmd_study([str(tmp_path / "toy3.toml"), *shared])
    (tmp_path / "toy4.toml").write_text(second.replace('name = "toy2"', 'name = "toy4"').replace('"3-4"', '"3-5"'))
    with pytest.raises(WplError, match="no finished run of arm plain, seed 5, and this spec trains nothing"):
        cmd_study([str(tmp_path / "toy4.toml"), *shared])
    assert not (out / "work" / "seed5").exists()


def test_the_cells_sampling_variance_of_tau_matches_resampling() -> None:
    """Kendall τ's components average to τ (no ties), and 4·var(h)/n is the variance of τ over samples of cells:
    checked against 300 samples of 200 cells drawn from a population of 20,000."""
    import numpy as np

    from wpl.nas.rank import kendall_components, kendall_tau

    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    y = 0.6 * x + rng.normal(size=20000)
    idx = rng.choice(20000, 200, replace=False)
    assert kendall_components(x[idx], y[idx]).mean() == pytest.approx(kendall_tau(x[idx], y[idx]))
    taus, predicted = [], []
    for _ in range(300):
        idx = rng.choice(20000, 200, replace=False)
        taus.append(kendall_tau(x[idx], y[idx]))
        h = kendall_components(x[idx], y[idx])
        predicted.append(4 * h.var(ddof=1) / len(h))
    assert np.std(taus, ddof=1) == pytest.approx(np.sqrt(np.mean(predicted)), rel=0.15)


def test_a_spec_written_as_toml_reads_back_the_same() -> None:
    from wpl.nas.spaces.nb201.study.spec import parse_spec, spec_toml

    spec = parse_spec(TOY.replace('description = "a toy study"', 'description = """quoted "x", a \\\\ back\nslash"""')
                      .replace('[arms.lr]', '[arms."lr.v2"]').replace('a = "lr"', 'a = "lr.v2"'), "toy.toml")
    assert spec.description == 'quoted "x", a \\ back\nslash' and spec.arm("lr.v2").trains
    text = spec_toml(spec, "first line\nsecond")
    assert text.startswith("# first line\n# second\n") and 'seeds = "3-4"' in text
    assert parse_spec(text, "again.toml") == spec


def _followed(diffs: dict[str, list[float]], seeds: str = "3-22"):
    """The follow-up of the toy spec over ``seeds`` whose comparisons' differences are ``diffs``."""
    from wpl.nas.spaces.nb201.study.follow_up import follow_up
    from wpl.nas.spaces.nb201.study.spec import parse_spec

    spec = parse_spec(TOY.replace('seeds = "3-4"', f'seeds = "{seeds}"'), "toy.toml")
    fam = compare_family([(c.name, diffs[c.name], [0.0] * len(diffs[c.name])) for c in spec.comparisons],
                         spec.alpha, spec.power, spec.delta)
    return spec, fam, follow_up(spec, {"complete": True, "comparisons": {"kendall_tau": fam}})


def test_a_follow_up_repeats_the_unresolved_underpowered_comparisons_on_as_many_fresh_seeds_as_they_need() -> None:
    from wpl.nas.spaces.nb201.study.follow_up import follow_up
    from wpl.nas.spaces.nb201.study.spec import parse_spec, spec_toml

    noisy = [0.01 + 0.07 * (-1) ** i * (1 + i % 3) / 2 for i in range(20)]  # sd ≈ 0.07, mean ≈ 0.01
    strong = [0.1 + 0.01 * (i % 4) for i in range(20)]
    spec, fam, (new, lines) = _followed({"H1": noisy, "H2": strong})
    h1, h2 = fam
    assert h1["verdict"] == "unresolved" and h1["power_at_delta"] < 0.8 and h2["verdict"] == "higher"
    need = pairs_needed(0.04, h1["sd"], 0.05 / 2, 0.8)
    assert h1["pairs_needed"] == need and need > 20
    assert new.seeds == tuple(range(23, 23 + need)) and new.name == "toy_replication" and new.trains
    assert [c.name for c in new.comparisons] == ["H1"] and [a.name for a in new.arms] == ["plain", "lr"]
    assert (new.flags, new.cells, new.continuity, new.secondary) == (spec.flags, spec.cells, spec.continuity,
                                                                     spec.secondary)
    assert f"{need} fresh seeds (23-{22 + need})" in new.description and "never pooled with toy" in new.description
    assert lines[0].startswith(f"H1 (lr − plain): unresolved, power {h1['power_at_delta']:.2f}")
    assert lines[1] == "H2 (ema − plain): resolved (higher); not repeated"
    assert parse_spec(spec_toml(new), "new.toml") == new
    # the arm a repeated comparison scores again keeps the arm whose supernet it scores
    _, _, (new, _) = _followed({"H1": strong, "H2": noisy})
    assert [a.name for a in new.arms] == ["plain", "ema"]
    # nothing to repeat: every answer resolved, or powered
    tight = [0.001 * (-1) ** i for i in range(20)]
    _, fam, (new, lines) = _followed({"H1": strong, "H2": tight})
    assert new is None and fam[1]["verdict"] == "equivalent" and len(lines) == 2
    # out of reach: at sd ≈ 7 no feasible replication has the power, so none is declared
    _, fam, (new, lines) = _followed({"H1": strong, "H2": [100 * d for d in noisy]})
    assert new is None and fam[1]["pairs_needed"] is None
    assert lines[1].startswith("H2 (ema − plain): power 0.") and "more than 10,000 pairs" in lines[1]
    with pytest.raises(WplError, match="interim \\(7 of 60 runs\\)"):
        follow_up(spec, {"complete": False, "runs_done": 7, "runs_expected": 60})


def test_a_follow_up_never_overwrites_a_spec(tmp_path) -> None:
    from wpl.nas.spaces.nb201.study.command import cmd_study

    (tmp_path / "toy.toml").write_text(TOY)
    (tmp_path / "next.toml").write_text("declared")
    with pytest.raises(WplError, match="--follow_up=.*next.toml: exists"):
        cmd_study([str(tmp_path / "toy.toml"), f"--follow_up={tmp_path / 'next.toml'}"])
    assert (tmp_path / "next.toml").read_text() == "declared"
