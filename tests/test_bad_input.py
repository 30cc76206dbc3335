"""The bad-input matrix: every data format, flag type, architecture file and run folder a user can get
wrong. Each case runs the real command and must exit non-zero with one error line that names the file
or flag and says what to do, and leave no output that looks complete. The README's "Errors" table is
this list (``python -m pytest tests/test_bad_input.py -q`` checks it, row by row)."""

from __future__ import annotations

import gzip
import json
import pickle
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_cifar, make_image_folder, make_mnist, make_text, rnn_argv
from wpl.cli import main

Case = Callable[[Path], list[str]]  # builds the bad input under tmp_path; returns the command's argv
CNN = ["--network_type=micro_cnn", "--num_blocks=2", "--cnn_final_filter_size=8", "--cnn_num_modules=2",
       "--cnn_num_repeat_normal=1", "--batch_size=4", "--test_batch_size=8", "--shared_max_step=1",
       "--controller_max_step=1", "--derive_num_sample=1", "--valid_size=4", "--max_epoch=1",
       "--use_tensorboard=False", "--log_level=WARNING", "--num_gpu=0"]


def _search(data: Path, tmp: Path, *extra: str) -> list[str]:
    return ["search", *rnn_argv(data, tmp, *extra)]


def _corpus(tmp: Path, **files: bytes | None) -> Path:
    """A tiny corpus with some of its split files replaced (``None``: removed)."""
    root = make_text(tmp / "data")
    for split, content in files.items():
        path = root / "tiny" / f"{split}.txt"
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)
    return root


def _cifar(tmp: Path, name: str, obj: object) -> list[str]:
    root = make_cifar(tmp / "data")
    (root / "cifar10" / "cifar-10-batches-py" / name).write_bytes(pickle.dumps(obj, protocol=2))
    return ["search", *CNN, "--dataset=cifar10", f"--data_dir={root}", f"--log_dir={tmp / 'logs'}"]


class Evil:
    """A pickle that would run code when loaded."""

    def __reduce__(self):
        return (print, ("pwned",))


def _folder(tmp: Path, change: Callable[[Path], None]) -> list[str]:
    root = make_image_folder(tmp / "data", per_class=4, size=8)
    change(root / "shapes")
    return ["search", *CNN, "--dataset=shapes", f"--data_dir={root}", f"--log_dir={tmp / 'logs'}"]


def _mnist(tmp: Path, change: Callable[[Path], None]) -> list[str]:
    root = make_mnist(tmp / "data" / "mnist", n_train=50, n_test=20)
    change(root)
    return ["two-models", f"--data_dir={root}", f"--output_dir={tmp / 'out'}", "--b_iters=5"]


def _arch_file(tmp: Path, content: str | dict) -> list[str]:
    path = tmp / "cell.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    data = make_text(tmp / "data")
    return ["train-final", f"--arch={path}", "--dataset=tiny", f"--data_dir={data}", f"--log_dir={tmp / 'out'}",
            "--max_epoch=1", "--device=cpu"]


def _run(tmp: Path, *extra: str) -> Path:
    """A finished tiny RNN search (its folder)."""
    data = make_text(tmp / "data")
    assert main(["search", *rnn_argv(data, tmp, "--max_epoch=1", *extra)]) == 0
    return tmp / "logs" / "tiny_rnn-train"


def _newer_checkpoint(tmp: Path) -> list[str]:
    run = _run(tmp)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["version"] = 99
    torch.save(state, run / "checkpoint.pt")
    return _search(tmp / "data", tmp, "--max_epoch=2", "--resume=True")


def _other_size(tmp: Path) -> list[str]:
    _run(tmp)
    return ["search", *rnn_argv(tmp / "data", tmp, "--max_epoch=2", "--resume=True", "--shared_hid=12",
                                "--shared_embed=12", "--resume_with_new_params=True")]


def _no_checkpoint(tmp: Path) -> list[str]:
    run = _run(tmp)
    (run / "checkpoint.pt").unlink()
    return ["search", *rnn_argv(tmp / "data", tmp, "--mode=derive", f"--load_path={run}")]


def _other_space(tmp: Path) -> list[str]:
    run = _run(tmp)
    return ["rank", f"--model_name={run.name}", f"--log_dir={run.parent}"]


def _truncated_idx(root: Path) -> None:
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:5000]))


def _bad_magic(root: Path) -> None:
    path = root / "train-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(struct.pack(">I", 1234) + raw[4:]))


def _corrupt_image(root: Path) -> None:
    (root / "train" / "top" / "0.png").write_bytes(b"not a png at all")


def _no_classes(root: Path) -> None:
    import shutil

    for cls in ("top", "bottom"):
        shutil.rmtree(root / "train" / cls)


def _class_missing_from_test(root: Path) -> None:
    import shutil

    shutil.rmtree(root / "test" / "bottom")
    (root / "test" / "left").mkdir()
    shutil.copy(root / "train" / "top" / "0.png", root / "test" / "left" / "0.png")


def _folder_missing_cifar(tmp: Path) -> list[str]:
    root = make_cifar(tmp / "data")
    (root / "cifar10" / "cifar-10-batches-py" / "data_batch_3").unlink()
    return ["search", *CNN, "--dataset=cifar10", f"--data_dir={root}", f"--log_dir={tmp / 'logs'}"]


ok_cell = {"type": "rnn", "activations": ["tanh", "relu", "sigmoid"], "parents": [0, 1]}  # node k's parent < k
STUDY = """name = "s"
seeds = [1, 2]
flags = ["--max_epoch=1"]
[cells]
seed = 5
num = 10
[arms.a]
strategy = "random"
[arms.b]
strategy = "random"
flags = ["--shared_lr=0.1"]
[[comparisons]]
name = "H1"
a = "b"
b = "a"
"""


def _study(tmp: Path, text: str, *extra: str) -> list[str]:
    (tmp / "spec.toml").write_text(text)
    return ["study", str(tmp / "spec.toml"), *extra]


CASES: dict[str, tuple[Case, list[str]]] = {
    # data: text
    "ptb split missing": (lambda t: _search(_corpus(t, valid=None), t), ["valid.txt: missing"]),
    "ptb split empty": (lambda t: _search(_corpus(t, test=b"\n \n"), t), ["test.txt: empty"]),
    "ptb split not UTF-8": (lambda t: _search(_corpus(t, train=b"a \xff\xfe b\n"), t), ["train.txt: not UTF-8",
                                                                                        "iconv"]),
    "ptb unseen word, no <unk>": (lambda t: _search(_corpus(t, train=b"w1 w2\nw3\n", valid=b"w1 zz\n",
                                                            test=b"w1\n"), t), ["valid.txt", "'zz'"]),
    "ptb folder missing": (lambda t: ["search", *rnn_argv(t / "nowhere", t)], ["train.txt", "wpl demo"]),
    # data: images
    "cifar batch of the wrong shape": (lambda t: _cifar(t, "data_batch_2", {b"data": np.zeros((5, 100), np.uint8),
                                                                           b"labels": [0] * 5}),
                                       ["data_batch_2", "extract cifar-10-python.tar.gz again"]),
    "cifar malicious pickle": (lambda t: _cifar(t, "test_batch", Evil()), ["test_batch", "refusing to load"]),
    "cifar batch missing": (_folder_missing_cifar, ["data_batch_3"]),
    "image folder without classes": (lambda t: _folder(t, _no_classes), ["train", "one sub-folder per class"]),
    "corrupt image": (lambda t: _folder(t, _corrupt_image), ["0.png: not a readable image"]),
    "class missing from train": (lambda t: _folder(t, _class_missing_from_test), ["'left'",
                                                                                 "not among the training classes"]),
    "mnist wrong magic": (lambda t: _mnist(t, _bad_magic), ["train-labels-idx1-ubyte.gz"]),
    "mnist truncated": (lambda t: _mnist(t, _truncated_idx), ["train-images-idx3-ubyte.gz"]),
    "mnist file missing": (lambda t: _mnist(t, lambda r: (r / "t10k-labels-idx1-ubyte.gz").unlink()),
                           ["t10k-labels-idx1-ubyte.gz"]),
    # flags
    "unknown flag": (lambda t: ["search", "--alpha_fishr=1"], ["--alpha_fishr", "--alpha_fisher"]),
    "malformed bool": (lambda t: ["search", "--use_wpl=maybe"], ["--use_wpl", "maybe"]),
    "malformed int": (lambda t: ["search", "--max_epoch=ten"], ["--max_epoch", "ten"]),
    "malformed float": (lambda t: ["search", "--alpha_fisher=1,5"], ["--alpha_fisher", "1,5"]),
    "out of range": (lambda t: ["search", "--alpha_fisher=-1"], ["--alpha_fisher=-1.0: must be >= 0"]),
    "not a choice": (lambda t: ["search", "--wpl_update=sideways"], ["--wpl_update", "sideways"]),
    "contradictory flags": (lambda t: ["search", "--fisher_normalise=mean"], ["fisher_normalise",
                                                                              "legacy_compound_alpha"]),
    "legacy α without a clip": (lambda t: ["search", "--alpha_fisher=60", "--fisher_clip_by_norm=0"],
                                ["--alpha_fisher=60", "grows without bound", "--fisher_clip_by_norm=10"]),
    "random strategy with arch_stream on enas": (lambda t: ["search", "--arch_stream=own"], ["arch_stream"]),
    "a flag of another space": (lambda t: ["search", "--rank_every=1"], ["--rank_every", "--network_type=nb201"]),
    "train-final flag typo": (lambda t: ["train-final", "--arch=enas-rnn", "--final_hidd=5"], ["--final_hidd"]),
    # architecture files
    "cell of another space": (lambda t: _arch_file(t, {"type": "nb201", "arch": "|none~0|"}), ["cell.json"]),
    "cell with an unknown op": (lambda t: _arch_file(t, {**ok_cell, "activations": ["tanh", "gelu", "relu"]}),
                                ["cell.json", "gelu"]),
    "cell of the wrong length": (lambda t: _arch_file(t, {**ok_cell, "parents": [0]}), ["cell.json", "parents"]),
    "cell with a cycle": (lambda t: _arch_file(t, {**ok_cell, "parents": [0, 2]}), ["cell.json"]),
    "malformed cell JSON": (lambda t: _arch_file(t, "{'type': rnn"), ["cell.json", "JSON"]),
    # run folders
    "unknown run name": (lambda t: ["train-final", "--model_name=nope", f"--log_dir={t}"], ["nope"]),
    "run without a checkpoint": (_no_checkpoint, ["checkpoint.pt does not exist", "--load_path"]),
    "checkpoint from a newer wpl": (_newer_checkpoint, ["checkpoint.pt", "newer wpl: upgrade"]),
    "checkpoint of another size": (_other_size, ["checkpoint.pt", "run's own sizes"]),
    "ranking a run of another space": (_other_space, ["--network_type=rnn run", "needs a --network_type=nb201"]),
    # studies
    "study spec missing": (lambda t: ["study", str(t / "nothing.toml")], ["nothing.toml", "no such spec file"]),
    "study comparing an unknown arm": (lambda t: _study(t, STUDY.replace('a = "b"', 'a = "c"')),
                                       ["spec.toml [[comparisons]] #1 (H1)", "no arm 'c'"]),
    "study arm setting the seed": (lambda t: _study(t, STUDY.replace('"--max_epoch=1"', '"--random_seed=3"')),
                                   ["spec.toml flags", "--random_seed is set by the study"]),
    "study without its data": (lambda t: _study(t, STUDY), ["--data_dir", "4 run(s) remain"]),
    "study arm with an unknown measure": (lambda t: _study(t, STUDY.replace('[arms.b]', '[arms.b]\nmeasure = "f1"')),
                                          ["spec.toml [arms.b] measure = 'f1'", "accuracy or loss"]),
    "study follow-up before any run": (lambda t: _study(t, STUDY, f"--follow_up={t / 'next.toml'}"),
                                       ["no records of study s there", "spec.toml first"]),
}


COMPLETE = ("summary.json", "rank.json", "two_models.json", "test.json")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_naming_it(name: str, tmp_path: Path, capsys) -> None:
    build, expected = CASES[name]
    argv = build(tmp_path)
    before = {p for p in tmp_path.rglob("*") if p.name in COMPLETE}
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own exit
        rc = exc.code
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln.lower()]
    assert rc not in (0, None), name
    assert len(err) == 1, err
    for text in expected:
        assert text in err[0], (text, err[0])
    after = {p for p in tmp_path.rglob("*") if p.name in COMPLETE}
    assert after == before, sorted(after - before)
    # docs/errors.md shows this very line (python tools/error_table.py regenerates the table)
    row = f"| {name} | `{shown(err[0], str(tmp_path))}` |"
    assert row in DOCS_ROWS, f"docs/errors.md is out of date: run python tools/error_table.py ({row})"


DOCS_ROWS = set((Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text().splitlines())


def shown(line: str, tmp: str) -> str:
    """An error line as docs/errors.md shows it: the temporary folder cut from its paths, ``|`` escaped."""
    short = re.sub(re.escape(tmp) + r"/[\w/.-]*?([\w.-]+/[\w.-]+)\b", r"…/\1", line).replace(tmp, "…")
    return short.replace("|", "\\|")


def test_the_matrix_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30  # the README's "Errors" table lists them (tools/error_table.py)
