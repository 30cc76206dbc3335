"""MNIST idx loading: the happy path, the held-out validation split, and every bad-input error."""

import gzip

import pytest
import torch

from wpl import WplError
from wpl.data.mnist import load_mnist


def test_loads_and_holds_validation_out_of_train(mnist_dir):
    d = load_mnist(mnist_dir, valid_size=50, seed=1)
    assert d.source == "mnist"
    assert d.train_x.shape == (250, 1, 28, 28) and d.valid_x.shape == (50, 1, 28, 28)
    assert d.test_x.shape == (100, 1, 28, 28)
    assert d.train_x.dtype == torch.float32 and 0.0 <= d.train_x.min() and d.train_x.max() <= 1.0
    assert d.train_y.dtype == torch.int64
    # validation images come from the training file, disjoint from the training split
    train_rows = {tuple(r.tolist()) for r in d.train_x.flatten(1)[:, ::7]}
    assert not any(tuple(r.tolist()) in train_rows for r in d.valid_x.flatten(1)[:, ::7])
    # the held-out split depends on the seed, deterministically
    assert torch.equal(load_mnist(mnist_dir, valid_size=50, seed=1).valid_y, d.valid_y)


def test_finds_files_one_level_down(mnist_dir):
    assert len(load_mnist(mnist_dir.parent, valid_size=10).test_y) == 100


def test_embedded_subset_is_real_mnist():
    d = load_mnist(None, valid_size=1000)
    assert d.source == "mnist-embedded"
    assert len(d.train_y) + len(d.valid_y) >= 5000 and len(d.test_y) >= 1000
    assert set(d.test_y.tolist()) == set(range(10))


def test_missing_file_names_it(mnist_dir):
    (mnist_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(WplError, match="t10k-labels-idx1-ubyte.gz: file not found"):
        load_mnist(mnist_dir, valid_size=10)


def test_missing_directory(tmp_path):
    with pytest.raises(WplError, match="no such directory"):
        load_mnist(tmp_path / "nope", valid_size=10)


def test_truncated_file(mnist_dir):
    path = mnist_dir / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(WplError, match="train-images-idx3-ubyte.gz: truncated"):
        load_mnist(mnist_dir, valid_size=10)


def test_truncated_gzip_stream(mnist_dir):
    path = mnist_dir / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(WplError, match="train-labels-idx1-ubyte.gz: not a valid gzip"):
        load_mnist(mnist_dir, valid_size=10)


def test_wrong_magic(mnist_dir):
    # labels where images are expected
    (mnist_dir / "train-images-idx3-ubyte.gz").write_bytes((mnist_dir / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(WplError, match="wrong magic number 2049 \\(expected 2051"):
        load_mnist(mnist_dir, valid_size=10)


def test_bad_valid_size(mnist_dir):
    with pytest.raises(WplError, match="valid_size="):
        load_mnist(mnist_dir, valid_size=300)
