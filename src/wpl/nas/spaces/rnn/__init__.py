"""The recurrent-cell space (ENAS's RNN cell on Penn Treebank): ``SPACE`` and what it is made of.

``arch`` (cells and their drawing), ``cell`` and ``cpp_ops``/``csrc`` (the unrolled cell, Python and C++),
``supernet`` (the shared language model), ``linear_ce`` (the fused decoder and loss), ``task`` (the search
task), ``config`` (its flags), ``presets`` (named cells), ``final`` (training a cell from scratch).
"""

from __future__ import annotations

import logging
import re

import torch

from wpl.errors import WplError
from wpl.nas.space import FinalTraining, Space

from .arch import RnnArch, rnn_graph
from .config import RnnConfig

log = logging.getLogger("wpl")
_EDGE = re.compile(r"edges\.(\d+)_(\d+)$")


def _corpus(data_dir, dataset: str):
    """The corpus of ``dataset`` under ``data_dir`` (None: the embedded PTB slice), its sizes logged."""
    from wpl.data.text import load_corpus

    corpus = load_corpus(data_dir, dataset)
    log.info("corpus %s: %d/%d/%d tokens, vocabulary %d", corpus.source, corpus.train.numel(),
             corpus.valid.numel(), corpus.test.numel(), corpus.vocab_size)
    return corpus


def _task(configs, data_dir, device, dist):
    from .task import RnnTask

    return RnnTask(_corpus(data_dir, configs.run.dataset), configs.space, device, dist)


def check_rnn_cell(cell: str, device) -> None:
    """Say which RNN cell runs and what building the C++ kernels cost (once per machine); a WplError
    when ``--rnn_cell=cpp`` cannot run here."""
    on_cpu = torch.device(device).type == "cpu"
    if cell == "cpp" and not on_cpu:
        raise WplError(f"--rnn_cell=cpp: the C++ kernels run on the CPU only, not on {device}; use --rnn_cell=auto")
    if cell not in ("auto", "cpp") or not on_cpu:
        log.info("RNN cell: %s", "python" if cell == "auto" else cell)
        return
    from . import cpp_ops

    ops, st = cpp_ops.load(), cpp_ops.STATUS
    if ops is None and cell == "cpp":
        raise WplError(f"--rnn_cell=cpp: the C++ kernels could not be built here ({st.get('reason')}); install a "
                       "C++ compiler and ninja, or use --rnn_cell=auto (falls back to the Python cell)")
    if ops is None:
        log.info("RNN cell: python (C++ kernels unavailable: %s)", st.get("reason"))
    else:
        log.info("RNN cell: C++ kernels (ready in %.1f s; built once per machine, then cached)", st["seconds"])


def _group(task, name: str) -> str | None:
    m = _EDGE.match(name)
    return f"edge {m.group(1)}→{m.group(2)}" if m else None


def _presets():
    from .presets import PRESETS

    return PRESETS


def _random(seed: int, blocks: int | None) -> RnnArch:
    from .presets import random_arch

    return random_arch(seed, blocks)


def _final_build(job, device, dist):
    from .final import RnnFinal

    return RnnFinal(job.arch, _corpus(job.data_dir, job.dataset), job.recipe, device, job.seed, dist)


def _final() -> FinalTraining:
    from .final import RnnFinalConfig

    flags = {"final_embed": "embed", "final_hid": "hid", "final_dropout": "dropout", "final_dropoute": "dropoute",
             "final_dropouti": "dropouti", "final_wdrop": "wdrop", "final_test_batch_size": "test_batch_size",
             "final_bptt": "bptt", "final_variable_bptt": "variable_bptt", "final_asgd": "asgd",
             "final_nonmono": "nonmono", "rnn_cell": "cell_impl"}
    return FinalTraining(RnnFinalConfig, _final_build, flags)


SPACE = Space(
    kind="rnn", metric="ppl", dataset="ptb", arch=RnnArch, config=RnnConfig, build_task=_task, graph=rnn_graph,
    estimators=("batch_sq",),  # a language-model batch has no per-sample class logits
    random_arch=_random, presets=_presets, fisher_group=_group, final=_final(),
    check_run=lambda configs, device: check_rnn_cell(configs.space.rnn_cell, device),
)
