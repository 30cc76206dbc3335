"""Word-level text corpora in the PTB/WikiText format: ``<dataset>/{train,valid,test}.txt``.

Each line is split on whitespace and ends with ``<eos>``. The vocabulary comes from the training
split only; words of valid/test unseen in train map to ``<unk>`` when the corpus has it, and are an
error otherwise. Without a data folder, an embedded slice of Penn Treebank is used (``wpl demo``).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from ..errors import WplError

SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"
EMBEDDED_PACKAGE = "wpl.data.ptb_embedded"
EMBEDDED_NAME = "ptb-embedded"


@dataclass
class Corpus:
    """Token ids of the three splits (1-D int64) and the vocabulary (id → word)."""

    train: Tensor
    valid: Tensor
    test: Tensor
    words: list[str]
    source: str
    index: dict[str, int] = field(repr=False, default_factory=dict)

    @property
    def vocab_size(self) -> int:
        """Number of word types."""
        return len(self.words)


def _read_lines(path: Path, raw: bytes | None = None) -> list[str]:
    if raw is None:
        if not path.is_file():
            raise WplError(f"{path}: missing; a text dataset folder needs train.txt, valid.txt and test.txt")
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WplError(f"{path}: not UTF-8 text (byte {exc.start}); convert it with iconv -t utf-8") from exc
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise WplError(f"{path}: empty; each split needs at least one line of text")
    return lines


def _tokens(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        words = line.split()
        if words:
            out.extend(words)
            out.append(EOS)
    return out


def build_corpus(texts: dict[str, list[str]], paths: dict[str, Path], source: str) -> Corpus:
    """Vocabulary from ``texts['train']``; ids for all three splits (unseen words → ``<unk>`` or error)."""
    train_tokens = _tokens(texts["train"])
    index: dict[str, int] = {}
    for w in train_tokens:
        if w not in index:
            index[w] = len(index)
    ids = {"train": torch.tensor([index[w] for w in train_tokens], dtype=torch.long)}
    unk = index.get(UNK)
    for split in ("valid", "test"):
        toks = _tokens(texts[split])
        out = []
        for w in toks:
            i = index.get(w, unk)
            if i is None:
                raise WplError(
                    f"{paths[split]}: word {w!r} does not occur in {paths['train'].name} and the corpus has no "
                    f"{UNK} token; add {UNK} to the training text or map rare words to it"
                )
            out.append(i)
        ids[split] = torch.tensor(out, dtype=torch.long)
    return Corpus(ids["train"], ids["valid"], ids["test"], list(index), source, index)


def load_corpus(data_dir: str | Path | None, dataset: str = "ptb") -> Corpus:
    """Load ``data_dir/dataset/{train,valid,test}.txt``; ``data_dir=None`` loads the embedded PTB slice."""
    if data_dir is None:
        pkg = resources.files(EMBEDDED_PACKAGE)
        texts = {s: _read_lines(Path(f"<embedded>/{s}.txt"), gzip.decompress(pkg.joinpath(f"{s}.txt.gz").read_bytes()))
                 for s in SPLITS}
        return build_corpus(texts, {s: Path(f"<embedded>/{s}.txt") for s in SPLITS}, EMBEDDED_NAME)
    root = Path(data_dir) / dataset
    if not root.is_dir():
        raise WplError(
            f"--data_dir {data_dir}: no folder {root}; put the corpus as {root}/train.txt, valid.txt and "
            f"test.txt (one sentence per line, PTB format), or run `wpl demo` to try the embedded PTB slice"
        )
    paths = {s: root / f"{s}.txt" for s in SPLITS}
    texts = {s: _read_lines(p) for s, p in paths.items()}
    return build_corpus(texts, paths, dataset)


def batchify(data: Tensor, batch_size: int) -> Tensor:
    """Cut a 1-D token stream into ``batch_size`` parallel streams: ``[len // batch_size, batch_size]``."""
    n = data.numel() // batch_size
    if n < 2:
        raise WplError(f"a split of {data.numel()} tokens is too short for batch size {batch_size}")
    return data[: n * batch_size].view(batch_size, n).t().contiguous()


def get_batch(source: Tensor, i: int, bptt: int) -> tuple[Tensor, Tensor]:
    """Inputs ``source[i:i+L]`` and next-word targets ``source[i+1:i+1+L]``, ``L = min(bptt, len−1−i)``."""
    seq = min(bptt, source.size(0) - 1 - i)
    return source[i : i + seq], source[i + 1 : i + 1 + seq]
