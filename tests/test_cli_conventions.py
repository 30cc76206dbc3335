"""What users expect of a command line: runs as arguments, --version, a list of the runs in a folder."""

from pathlib import Path

import pytest

from conftest import TOY
from wpl import __version__
from wpl.cli import main
from wpl.nas.search.run import run_search


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"wpl {__version__}"


def test_runs_lists_each_run_with_its_state_and_compare_takes_runs_as_arguments(toy, tmp_path: Path, capsys) -> None:
    logs = tmp_path / "logs"
    run_search([*TOY, f"--log_dir={logs}", "--comment=done", "--max_epoch=2"])
    run_search([*TOY, f"--log_dir={logs}", "--comment=cut", "--max_epoch=1"])
    (logs / "synthetic_cut" / "summary.json").unlink()  # as a run killed before its end leaves it
    capsys.readouterr()
    assert main(["runs", f"--log_dir={logs}"]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "| toy_mlp | 2/2 | error " in rows["synthetic_done"] and rows["synthetic_done"].endswith("| finished |")
    assert rows["synthetic_cut"].endswith("| interrupted |")
    assert main(["compare", "synthetic_done", "synthetic_cut", f"--log_dir={logs}"]) == 0
    table = capsys.readouterr().out
    assert "synthetic_done" in table and "synthetic_cut" in table
    assert main(["compare", "synthetic_done", "--model_name=synthetic_cut", f"--log_dir={logs}"]) == 1
    assert "name the runs once" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["runs", "--log_dir=nowhere"]])
def test_runs_in_an_empty_folder_says_so(argv, capsys) -> None:
    assert main(argv) == 0
    assert "no search runs under nowhere" in capsys.readouterr().out
