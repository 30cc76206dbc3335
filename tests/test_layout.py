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


def _own_fields() -> set[str]:
    """The config fields a space declares itself (not the ones every space, or every image space, shares)."""
    import dataclasses

    from wpl.nas import config, spaces

    shared = {f.name for f in dataclasses.fields(config.ImageConfig)}
    return {f.name for s in spaces.all_spaces() for f in dataclasses.fields(s.config)} - shared


def _docstrings(tree) -> set[int]:
    import ast

    return {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def _prose(tree) -> set[int]:
    """String constants that are user-facing prose: the help, description and epilog of a command's flags (and a
    config field's help, ``flag(default, help, ...)``'s second argument)."""
    import ast

    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg in ("help", "description",
                                                                                          "epilog")]
    texts += [n.args[1] for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "flag"
              and len(n.args) > 1]
    return {id(c) for t in texts for c in ast.walk(t) if isinstance(c, ast.Constant)}


def space_names_in(source: str, kinds: set[str], own: set[str]) -> list[str]:
    """Where ``source`` names a space: a string holding a space's name as a word (but docstrings, help text and
    docs/<page>.md links), an identifier containing one, a name of a field only a space declares, an import of a
    space's package."""
    import ast
    import re

    word = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(sorted(kinds)) + r")(?![A-Za-z0-9])")
    tree = ast.parse(source)
    skip = _docstrings(tree) | _prose(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if word.search(re.sub(r"docs/[\w-]+\.md", "", node.value)):
                found.append(f"{node.lineno} {node.value[:60]!r}")
        names = {ast.Attribute: "attr", ast.Name: "id", ast.keyword: "arg", ast.FunctionDef: "name",
                 ast.ClassDef: "name", ast.alias: "name", ast.arg: "arg"}
        name = getattr(node, names.get(type(node), ""), None) or ""
        if name in own or any(k in name.lower() for k in kinds):
            found.append(f"{getattr(node, 'lineno', '?')} {name}")
        if isinstance(node, ast.ImportFrom) and node.module and any(f"spaces.{k}" in node.module for k in kinds):
            found.append(f"{node.lineno} from {node.module}")
    return found


def test_outside_the_spaces_no_code_names_a_space() -> None:
    """Every switch on a space goes through the registry: outside ``nas/spaces/``, no code names a space by any
    means (a string, an identifier, a field only that space has, an import)."""
    from pathlib import Path

    import wpl
    from wpl.nas import spaces

    root = Path(wpl.__file__).parent
    kinds, own = set(spaces.kinds()) - {"toy_mlp"}, _own_fields()
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if not rel.startswith(("nas/spaces/", "data/")):
            found += [f"{rel}:{hit}" for hit in space_names_in(path.read_text(), kinds, own)]
    assert not found, found


@pytest.mark.parametrize("code", [
    'if kind == "nb201": pass', 'x = f"{a}/nb201_{b}"', "cfg.nb201_unique", "getattr(c, 'nb201_unique')",
    "import wpl.nas.spaces.rnn", "from wpl.nas.spaces.micro_cnn import CnnConfig", "def rnn_only(): pass",
    "check_rnn_cell(x)", 'REG = {"micro_cnn": 1}',
])
def test_the_layout_check_catches_a_space_named_any_way(code: str) -> None:
    from wpl.nas import spaces

    assert space_names_in(code, set(spaces.kinds()) - {"toy_mlp"}, _own_fields()), code


def test_imports_point_down_the_layers() -> None:
    """docs/architecture.md's layers: a module imports (at module level) only from its own layer or below."""
    import ast
    from pathlib import Path

    import wpl

    root = Path(wpl.__file__).parent
    layers = [  # top first; a module's layer is its longest matching prefix; the rest are foundations
        ("cli.py", "__main__.py", "demo.py", "gif.py", "two_models_report.py"),
        ("nas/search/run.py", "nas/final/"),
        ("nas/search/",),
        ("nas/configs.py", "nas/search/flags.py"),
        ("nas/spaces/rnn/", "nas/spaces/micro_cnn/", "nas/spaces/nb201/"),
        ("nas/config.py", "nas/image_task.py", "nas/presets.py", "nas/rank.py", "nas/batchnorm.py", "nas/metrics.py"),
        ("nas/space.py", "nas/task.py", "nas/spaces/__init__.py"),
        ("__init__.py", "policy.py", "plasticity.py", "fisher.py", "schedule.py", "forgetting.py", "runlog.py",
         "two_models.py", "stats.py", "plots.py", "viz.py"),
    ]

    def layer(rel: str) -> int:
        hits = [(len(p), i) for i, ps in enumerate(layers) for p in ps if rel == p or p.endswith("/") and
                rel.startswith(p)]
        return max(hits)[1] if hits else len(layers)

    def target(module: str) -> str | None:
        parts = module.split(".")
        if parts[0] != "wpl":
            return None
        p = root.joinpath(*parts[1:])
        return (p / "__init__.py" if p.is_dir() else p.with_suffix(".py")).relative_to(root).as_posix()

    up = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        package = ["wpl", *path.relative_to(root).parent.parts]
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                names = [module, *(f"{module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for t in filter(None, map(target, names)):
                if (root / t).exists() and layer(t) < layer(rel):
                    up.append(f"{rel} imports {t}")
    assert not up, up


def test_every_number_and_verdict_of_the_benchmarks_summary_comes_from_its_result_file(tmp_path) -> None:
    """BENCHMARKS.md's summary table quotes each number from its key in the committed result JSON, and each
    "met?" word is what the file computes: a changed number or a typed verdict is caught."""
    import importlib.util
    import json
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
    # a row may quote a study's computed verdict from its study.json, a path under benchmarks/
    study = json.loads((root / "benchmarks" / "studies" / "nb201_confirmatory" / "study.json").read_text())
    h1 = study["comparisons"]["kendall_tau"][0]
    (tmp_path / "keys.toml").write_text('[[row]]\nclaim = "study"\nnumbers = ["comparisons.kendall_tau.0.mean"]\n'
                                        '[row.met]\n"H1" = "comparisons.kendall_tau.0.verdict"\n')
    for word, problems in ((h1["verdict"], 0), ("wrong", 1)):
        (tmp_path / "S.md").write_text("## Summary\n\n| claim | paper | ours | met? | file |\n|---|---|---|---|---|\n"
                                       f"| study | - | Δ {h1['mean']:+.3f} | H1: {word} | "
                                       "`studies/nb201_confirmatory/study.json` |\n")
        assert len(mod.check(tmp_path / "S.md", tmp_path / "keys.toml")) == problems, word
