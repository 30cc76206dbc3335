"""The `wpl` command: a tiny end-to-end run and every bad-input path, as a user meets them."""

import json
import os

import pytest

from wpl.cli import commands, main

TINY = ["--b_iters", "30", "--a_iters_strict", "40", "--a_iters_loose", "10", "--fisher_samples", "20",
        "--valid_size", "50", "--device", "cpu"]


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_two_models_end_to_end(mnist_dir, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, _ = run(["two-models", "--data_dir", str(mnist_dir), "--output_dir", str(out_dir), "--with_l2", "yes",
                        *TINY], capsys)
    assert code == 0
    result = json.loads((out_dir / "two_models.json").read_text())
    assert (out_dir / "two_models.png").stat().st_size > 10_000
    assert result["dataset"] == "mnist"
    assert [r["convergence"] for r in result["runs"]] == ["strict", "loose"]
    for r in result["runs"]:
        assert r["shared_blocks"] == 3
        for key in ("plain", "wpl", "l2"):
            curve = r[key]["curve"]
            assert len(curve["iter"]) == len(curve["a_acc"]) and curve["iter"][-1] == 30  # --b_iters
            assert r[key]["a_acc_after"] == curve["a_acc"][-1] and r[key]["b_acc"] == curve["b_acc"][-1]
            assert r[key]["b_acc"] > curve["b_acc"][0] + 0.2  # B learns its (separable) task
            assert r[key]["a_acc_after"] * 100 == pytest.approx(round(r[key]["a_acc_after"] * 100))  # 100 test images
        assert r["forgetting_plain"] == pytest.approx(r["a_acc_before"] - r["plain"]["a_acc_after"])
        if r["forgetting_plain"] > 0:
            assert r["forgetting_reduction"] == pytest.approx(1 - r["forgetting_wpl"] / r["forgetting_plain"])
    assert "strict" in out and "wrote" in out
    # same seed, same numbers
    code, _, _ = run(["two-models", "--data_dir", str(mnist_dir), "--output_dir", str(tmp_path / "again"),
                      "--with_l2", "yes", *TINY], capsys)
    again = json.loads((tmp_path / "again" / "two_models.json").read_text())
    assert [r["wpl"]["curve"] for r in again["runs"]] == [r["wpl"]["curve"] for r in result["runs"]]


def test_single_setting_and_original_seed_alias(mnist_dir, tmp_path, capsys):
    code, _, _ = run(["two-models", "--data_dir", str(mnist_dir), "--output_dir", str(tmp_path),
                      "--convergence", "loose", "--random_seed", "3", *TINY], capsys)
    assert code == 0
    result = json.loads((tmp_path / "two_models.json").read_text())
    assert [r["convergence"] for r in result["runs"]] == ["loose"] and result["config"]["seed"] == 3


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_flag_names_the_closest(capsys, tmp_path):
    code, _, err = run(["two-models", "--shared_block", "2", "--output_dir", str(tmp_path)], capsys)
    assert code == 2 and "unknown flag --shared_block; did you mean --shared_blocks?" in one_line_error(err)


def test_malformed_boolean(capsys, tmp_path):
    code, _, err = run(["two-models", "--with_l2=maybe", "--output_dir", str(tmp_path)], capsys)
    assert code == 2 and "--with_l2" in one_line_error(err) and "expected a boolean" in err


def test_missing_data_dir(capsys, tmp_path):
    code, _, err = run(["two-models", "--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "o")],
                       capsys)
    assert code == 1 and "missing: no such directory" in one_line_error(err)


def test_corrupt_file_leaves_no_json(mnist_dir, capsys, tmp_path):
    (mnist_dir / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    code, _, err = run(["two-models", "--data_dir", str(mnist_dir), "--output_dir", str(tmp_path / "o"), *TINY], capsys)
    assert code == 1 and "t10k-images-idx3-ubyte.gz" in one_line_error(err)
    assert not (tmp_path / "o" / "two_models.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir_nonroot(capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code, _, err = run(["two-models", "--output_dir", str(ro / "x")], capsys)
    assert code == 1 and "--output_dir" in one_line_error(err)


def test_unwritable_output_dir(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(["two-models", "--output_dir", str(blocker / "out")], capsys)
    assert code == 1 and f"--output_dir={blocker / 'out'}: cannot write there" in one_line_error(err)


def test_bad_values_and_unknown_command(capsys, tmp_path):
    code, _, err = run(["two-models", "--shared_blocks", "9", "--output_dir", str(tmp_path)], capsys)
    assert code == 1 and "--shared_blocks=9: must be between 1 and 4" in one_line_error(err)
    code, _, err = run(["two-model"], capsys)
    assert code == 2 and "did you mean two-models?" in one_line_error(err)
    code, _, err = run(["two-models", "--device", "cuda:7", "--output_dir", str(tmp_path)], capsys)
    assert code == 1 and "--device=cuda:7: " in one_line_error(err)


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_prints_its_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and f"example: wpl {command}" in " ".join(out.split())
