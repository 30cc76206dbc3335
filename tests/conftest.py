"""Shared fixtures: tiny data written on the fly; the device the ``gpu`` tests take (``WPL_TEST_DEVICE``)."""

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

# The device of the tests marked ``gpu`` (tests/test_device.py): cpu here and in CI; on a GPU machine
# ``WPL_TEST_DEVICE=cuda pytest -m gpu`` runs the same tests there.
TEST_DEVICE = os.environ.get("WPL_TEST_DEVICE", "cpu") or "cpu"


def pytest_configure(config) -> None:
    """Refuse a ``WPL_TEST_DEVICE`` this machine cannot run, in one line, before any test starts."""
    import torch

    try:
        dev = torch.device(TEST_DEVICE)
    except RuntimeError:
        raise pytest.UsageError(f"WPL_TEST_DEVICE={TEST_DEVICE!r} is not a device name; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"WPL_TEST_DEVICE={TEST_DEVICE}: CUDA is not available here; unset it to test on cpu")
    if dev.type not in ("cpu", "cuda"):
        raise pytest.UsageError(f"WPL_TEST_DEVICE={TEST_DEVICE}: only cpu and cuda are supported")


@pytest.fixture
def device():
    """The device under test (``WPL_TEST_DEVICE``, default cpu)."""
    import torch

    return torch.device(TEST_DEVICE)


def write_idx(path: Path, array: np.ndarray, kind: str) -> None:
    """Write ``array`` (uint8) as a gzipped idx file of ``kind`` 'images' or 'labels'."""
    if kind == "images":
        header = struct.pack(">IIII", 2051, *array.shape)
    else:
        header = struct.pack(">II", 2049, array.shape[0])
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def make_mnist(root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """Separable 10-class 28x28 images: class k lights up row band k, plus noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 + 2 * k : 4 + 2 * k, :] = 255
        write_idx(root / f"{split}-images-idx3-ubyte.gz", images, "images")
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels, "labels")
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return make_mnist(tmp_path / "mnist")


def make_text(root: Path, name: str = "tiny", lines: tuple[int, int, int] = (300, 40, 40), seed: int = 0) -> Path:
    """A tiny PTB-format corpus ``root/name/{train,valid,test}.txt`` from a 30-word grammar."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(29)] + ["<unk>"]
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        out = []
        for _ in range(n):
            start = int(rng.integers(0, 29))
            out.append(" " + " ".join(words[(start + 3 * k) % 30] for k in range(int(rng.integers(4, 12)))) + " ")
        (folder / f"{split}.txt").write_text("\n".join(out) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def text_root(tmp_path: Path) -> Path:
    return make_text(tmp_path / "data")


def make_cifar(root: Path, per_batch: int = 20, str_keys: bool = False, seed: int = 0) -> Path:
    """Tiny CIFAR-10-format pickles ``root/cifar10/cifar-10-batches-py/`` (bytes keys like the real files)."""
    import pickle

    rng = np.random.default_rng(seed)
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        d = {"data": data, "labels": labels.tolist()}
        if not str_keys:
            d = {k.encode(): v for k, v in d.items()}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
    return root


def make_image_folder(root: Path, name: str = "shapes", per_class: int = 12, size: int = 20, valid: bool = True,
                      seed: int = 0) -> Path:
    """``root/name/{train,valid,test}/<class>/*.png``: two classes (bright top vs bright bottom)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "valid", "test") if valid else ("train", "test"):
        for cls in ("top", "bottom"):
            folder = root / name / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
                half = slice(0, size // 2) if cls == "top" else slice(size // 2, size)
                img[half] = 230
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


README_RNN = (
    "--comment='rnn-train' --train_controller=True --start_training_controller=1 --start_using_fisher=5 "
    "--max_epoch=150 --shared_max_step=60 --save_epoch=30 --fisher_clip_by_norm=10.0 --alpha_fisher=60.0 "
    "--alpha_decay=1. --alpha_decay_after=15 --set_fisher_zero_per_iter=2 --policy_batch_size=1 "
    "--controller_max_step=2000 --num_blocks=12 --num_batch_per_iter=7 --alpha_decay=1. --alpha_decay_after=15 "
    "--alpha_small_scale=.0001 --reward_c=80"
).replace("'", "").split()

TINY = ["--shared_embed=8", "--shared_hid=8", "--num_blocks=3", "--batch_size=4", "--test_batch_size=4",
        "--shared_max_step=3", "--num_batch_per_iter=2", "--controller_max_step=3", "--derive_num_sample=3",
        "--shared_rnn_max_length=6", "--forgetting_batches=2", "--log_step=2", "--save_epoch=1",
        "--controller_hid=8", "--use_tensorboard=False", "--log_level=WARNING", "--num_gpu=0"]


def rnn_argv(text_root: Path, tmp_path: Path, *extra: str) -> list[str]:
    """The README's RNN command at a tiny size on the corpus in ``text_root``, logging under ``tmp_path/logs``."""
    return [*README_RNN, "--dataset=tiny", f"--data_dir={text_root}", f"--log_dir={tmp_path / 'logs'}",
            *TINY, "--max_epoch=2", "--start_using_fisher=1", "--start_training_controller=0", *extra]


def run_interrupted(argv: list[str], epoch: int, monkeypatch) -> None:
    """Run the search command and interrupt it (KeyboardInterrupt) as ``epoch`` starts."""
    from wpl.nas.search import loop as search_mod
    from wpl.nas.search.run import run_search

    real = search_mod.Search.run_epoch

    def crash(self, e):
        if e == epoch:
            raise KeyboardInterrupt
        return real(self, e)

    monkeypatch.setattr(search_mod.Search, "run_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        run_search(argv)
    monkeypatch.setattr(search_mod.Search, "run_epoch", real)


def events_of(run: Path) -> list[dict]:
    """The run's metrics.jsonl events."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_schema(run: Path, summary: dict, metric: str, top_k: int) -> None:
    """The documented keys of summary.json and metrics.jsonl (README, "Outputs")."""
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["metric"] == summary["metric"] == metric
    for key in ("best_valid", "test", "best_arch", "epochs_done", "seconds"):
        assert key in on_disk, key
    assert isinstance(on_disk["test"], float) and on_disk["best_arch"]["type"] in ("rnn", "micro_cnn", "nb201")
    alias = {"ppl": "ppl", "error": "err"}[metric]
    assert on_disk[f"test_{alias}"] == on_disk["test"] and on_disk[f"best_valid_{alias}"] == on_disk["best_valid"]
    events = events_of(run)
    derives = [e for e in events if e["event"] == "derive"]
    assert {e["metric"] for e in derives} == {metric}
    assert min(derives, key=lambda e: e["valid_loss"])["valid"] == on_disk["best_valid"]
    forgetting = [e for e in events if e["event"] == "forgetting"]
    assert forgetting and all(e["top_k"] == top_k and "diff_best_mean" in e for e in forgetting)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert all(("shared_ppl" in e) == (metric == "ppl") for e in epochs)  # no perplexity for image tasks
    assert all(("ppl" in e) == (metric == "ppl") for e in events if e["event"] == "shared")
    done = events[-1]
    assert done["event"] == "done" and done["test"] == on_disk["test"] and done["metric"] == metric


def wait_for(path: Path, proc, timeout: float) -> bool:
    """Poll until ``path`` exists, the process ``proc`` has ended, or ``timeout`` seconds have passed;
    whether ``path`` exists."""
    import time

    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def signal_when(make_cmd, sig: int, env: dict | None = None, attempts: int = 3,
                timeout: float = 300.0) -> tuple[int, str, int]:
    """Start the job ``make_cmd(attempt) -> (argv, marker)`` and send it ``sig`` once ``marker`` exists;
    ``(returncode, stderr, attempt)`` of the first attempt the signal reached while the job was still running.
    A job that ended first (a loaded machine can stall this process past the job's end) is started again,
    in the folder ``make_cmd`` gives for the next attempt; a marker that never shows up fails the test."""
    import subprocess

    for attempt in range(attempts):
        argv, marker = make_cmd(attempt)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        if not wait_for(marker, proc, timeout) and proc.poll() is None:
            proc.kill()
            proc.communicate()
            pytest.fail(f"{marker} did not appear within {timeout:.0f} s")
        ended_first = proc.poll() is not None
        if not ended_first:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=timeout)
        if ended_first and proc.returncode != 0:
            pytest.fail(f"the job failed before its signal (exit {proc.returncode}):\n{err[-3000:]}")
        if proc.returncode != 0:
            return proc.returncode, err, attempt
    pytest.fail(f"the job ended before its signal in all {attempts} attempts: give it more to do")


def assert_drawn(path: Path, min_side: int = 100) -> None:
    """``path`` is a PNG image of at least ``min_side`` pixels a side with something drawn on it."""
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) >= min_side, (path, im.format, im.size)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16)  # None: more colours than that
        assert colours is None or len(colours) >= 3, f"{path}: {len(colours)} colour(s), nothing drawn"


# the test-only space (tests/toyspace): a tiny search on it takes seconds
TOY = ["--network_type=toy_mlp", "--batch_size=16", "--shared_max_step=4", "--num_batch_per_iter=1",
       "--controller_max_step=2", "--derive_num_sample=3", "--forgetting_batches=2", "--log_step=2", "--save_epoch=1",
       "--controller_hid=8", "--use_tensorboard=False", "--log_level=WARNING", "--train_controller=True",
       "--start_training_controller=0", "--start_using_fisher=1", "--data_dir=embedded", "--dataset=synthetic"]


@pytest.fixture
def toy():
    """The test-only space, registered by its one line (and unregistered after)."""
    from wpl.nas import spaces

    spaces.register("toy_mlp", "toyspace")
    yield
    spaces.REGISTRY.pop("toy_mlp")
    spaces._LOADED.pop("toy_mlp", None)
