"""The package layout's promises: the search and final-training packages, and no space named outside its own
package."""

import importlib

import pytest


@pytest.mark.parametrize("gone", ["wpl.nas.rnn_task", "wpl.nas.search_flags", "wpl.nas.cells"])
def test_the_pre_release_module_paths_are_gone(gone) -> None:
    """No release shipped the old layout, so its paths are not kept (one place per module)."""
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(gone)


def test_the_search_and_final_packages_keep_their_old_names() -> None:
    from wpl.nas.final import FinalJob, train_final
    from wpl.nas.search import Search

    assert Search.__module__ == "wpl.nas.search.loop" and FinalJob.__module__ == "wpl.nas.final.loop"
    assert callable(train_final)


def test_outside_the_spaces_no_code_names_a_space() -> None:
    """Every switch on a space goes through the registry: outside ``nas/spaces/``, no
    string literal is a space's name and nothing imports a space's package."""
    import ast
    from pathlib import Path

    import wpl
    from wpl.nas import spaces

    root = Path(wpl.__file__).parent
    kinds = set(spaces.kinds())
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("nas/spaces/", "data/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in kinds:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.ImportFrom) and node.module and any(
                    f"spaces.{k}" in node.module for k in kinds):
                found.append(f"{rel}:{node.lineno} from {node.module}")
    assert not found, found


def test_every_number_and_verdict_of_the_benchmarks_summary_comes_from_its_result_file(tmp_path) -> None:
    """BENCHMARKS.md's summary table quotes each number from its key in the committed result JSON, and each
    "met?" word is what the file computes: a changed number or a typed verdict is caught."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("check_benchmarks", root / "tools" / "check_benchmarks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.check(root / "BENCHMARKS.md") == []
    assert mod.numbers("98.2% at α = 3000, −0.18") == [("98.2%", 98.2, 1, True), ("3000", 3000.0, 0, False),
                                                       ("−0.18", -0.18, 2, False)]
    assert mod.found(98.2, 1, True, [0.98213]) and not mod.found(98.3, 1, True, [0.98213])
    assert mod.numbers("99.1% from α = 10⁴; P@5% +0.2, best-5 −0.004, top-1") == [
        ("99.1%", 99.1, 1, True), ("10⁴", 10000.0, 0, False), ("+0.2", 0.2, 1, False), ("−0.004", -0.004, 3, False)]
    text = (root / "BENCHMARKS.md").read_text()
    for old, new in (("| yes | `reproduce_cnn.json`", "| no | `reproduce_cnn.json`"),
                     ("random WPL after Holm: nominal", "random WPL after Holm: higher"),
                     ("plain τ 0.565", "plain τ 0.566")):
        assert old in text
        (tmp_path / "B.md").write_text(text.replace(old, new, 1))
        assert len(mod.check(tmp_path / "B.md")) == 1, new
