"""The NAS-Bench-201 space (one cell of 6 edges × 5 ops, the benchmark's ground truth): ``SPACE``.

``supernet`` (cells in the benchmark's strings, the single-path supernet, their drawing), ``task`` (the
search task on images), ``config`` (its flags), ``ranking`` (how well a supernet ranks cells against the
truth: in the search every ``--rank_every`` epochs, and ``wpl rank``). Its cells need no final training:
the benchmark trained every one.
"""

from __future__ import annotations

import random
import re

from wpl.data.nb201 import EDGES, NUM_CELLS, all_archs
from wpl.errors import ConfigError
from wpl.fisher import ESTIMATORS
from wpl.nas.config import IMAGE_DEFAULTS
from wpl.nas.space import Space

from .config import Nb201Config
from .supernet import Nb201Arch, nb201_graph

_OP = re.compile(r"layers\.\d+\.ops\.(\d+)_(.+?)\.")
# the recipe that ranks cells (BENCHMARKS.md, "NAS-Bench-201: why the supernet ranked backwards"): Nesterov
# SGD at a constant lr 0.05, weight decay 5e-4, a new architecture every batch, batches drawn with
# replacement, one crop and flip per batch. A decaying lr (×0.6 per epoch, cosine), the RNN's optimiser
# (no momentum, weight decay 1e-7) or kaiming init rank far worse here.
NB201_DEFAULTS = {**IMAGE_DEFAULTS, "shared_lr": 0.05, "shared_momentum": 0.9, "shared_l2_reg": 5e-4,
                  "shared_decay": 1.0, "num_batch_per_iter": 1, "augment_scope": "batch",
                  "train_sampling": "replace"}
# flags added after runs were saved whose new default differs from what those runs did: a saved run without
# them keeps the old behaviour (its supernet has the same parameters, so its checkpoints still load)
LEGACY = {"nb201_init": "kaiming", "augment_scope": "image", "train_sampling": "epoch"}


def _check(configs) -> None:
    if configs.space.nb201_unique and configs.search.search_strategy != "random":
        raise ConfigError("nb201_unique", True, f"needs search_strategy=random (got {configs.search.search_strategy}): "
                          "the ENAS controller samples every cell")


def _task(configs, data_dir, device, dist):
    from wpl.nas.image_task import load_image_data

    from .task import Nb201Task

    return Nb201Task(load_image_data(configs, data_dir), configs.space, device, dist)


def _group(task, name: str) -> str | None:
    if not (m := _OP.match(name)):
        return None
    i, j = EDGES[int(m.group(1))]
    return f"{i}→{j} {m.group(2)}"


def _random(seed: int, blocks: int | None) -> Nb201Arch:
    """A uniformly sampled cell of the benchmark (its size is fixed: ``blocks`` is ignored)."""
    return Nb201Arch.from_string(all_archs()[random.Random(seed).randrange(NUM_CELLS)])


def _no_final(arch: Nb201Arch) -> str:
    from wpl.data.nb201 import ground_truth

    return (f"{arch.string}: a NAS-Bench-201 cell needs no final training here: the benchmark trained every cell "
            f"(its CIFAR-10 test accuracy is {ground_truth().lookup(arch.string):.2f}%)")


def _rank(search) -> dict:
    from .ranking import rank_in_search

    return rank_in_search(search)


def _study_command(argv) -> int:
    from .study.command import cmd_study

    return cmd_study(argv)


def _rank_command(argv) -> int:
    from .rank_command import cmd_rank

    return cmd_rank(argv)


SPACE = Space(
    kind="nb201", metric="error", dataset="cifar10", arch=Nb201Arch, config=Nb201Config, build_task=_task,
    graph=nb201_graph, estimators=tuple(ESTIMATORS), random_arch=_random, flag_defaults=NB201_DEFAULTS,
    legacy_flags=LEGACY, check=_check, fisher_group=_group, no_final=_no_final, rank=_rank,
    rank_period=lambda config: config.rank_every,
    commands={"rank": (_rank_command, "ranking fidelity of a NAS-Bench-201 run's supernet (or the published "
                                      "estimates)"),
              "study": (_study_command, "a paired study of search settings against NAS-Bench-201's truth, its "
                                        "comparisons declared first (docs/study.md)")},
)
