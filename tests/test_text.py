"""Text corpora: vocabulary from train, <unk> mapping, clear errors, batching."""

from pathlib import Path

import pytest
import torch

from wpl.data.text import batchify, get_batch, load_corpus
from wpl.errors import WplError


def _corpus(root: Path, train: str, valid: str, test: str) -> Path:
    """Write ``root/c/{train,valid,test}.txt``; return ``root``."""
    d = root / "c"
    d.mkdir()
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (d / f"{name}.txt").write_text(text)
    return root


def test_vocabulary_from_train_and_unk(tmp_path: Path) -> None:
    corpus = load_corpus(_corpus(tmp_path, "a b <unk>\nb c\n", "a zz\n", "c\n"), "c")
    assert corpus.words == ["a", "b", "<unk>", "<eos>", "c"]
    assert corpus.train.tolist() == [0, 1, 2, 3, 1, 4, 3]
    assert corpus.valid.tolist() == [0, 2, 3]  # zz is unseen in train -> <unk>


def test_unseen_word_without_unk_names_it(tmp_path: Path) -> None:
    with pytest.raises(WplError, match="'zz'.*valid.txt|valid.txt.*'zz'"):
        load_corpus(_corpus(tmp_path, "a b\n", "a zz\n", "a\n"), "c")


@pytest.mark.parametrize("problem", ["missing", "empty", "binary"])
def test_bad_split_files(tmp_path: Path, problem: str) -> None:
    d = tmp_path / "c"
    d.mkdir()
    (d / "train.txt").write_text("a b\n")
    (d / "valid.txt").write_text("a\n")
    if problem == "empty":
        (d / "test.txt").write_text("\n  \n")
    elif problem == "binary":
        (d / "test.txt").write_bytes(b"a \xff\xfe b\n")
    with pytest.raises(WplError, match="test.txt"):
        load_corpus(tmp_path, "c")


def test_missing_dataset_folder_mentions_layout_and_demo(tmp_path: Path) -> None:
    with pytest.raises(WplError, match="train.txt.*wpl demo"):
        load_corpus(tmp_path, "ptb")


def test_embedded_ptb_slice_loads() -> None:
    corpus = load_corpus(None)
    assert corpus.source == "ptb-embedded"
    assert corpus.vocab_size > 5000 and corpus.train.numel() > 200_000
    assert "<unk>" in corpus.index


def test_batchify_and_get_batch() -> None:
    data = torch.arange(23)
    b = batchify(data, 4)
    assert b.shape == (5, 4) and b[:, 1].tolist() == [5, 6, 7, 8, 9]
    x, y = get_batch(b, 3, bptt=35)
    assert x.shape == (1, 4) and torch.equal(y, b[4:5])
