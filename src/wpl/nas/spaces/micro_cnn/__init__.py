"""The micro-CNN space (ENAS's CIFAR-10 micro cells): ``SPACE`` and what it is made of.

``supernet`` (cells, ops and the shared network), ``task`` (the search task on images), ``config`` (its
flags), ``presets`` (named cells), ``final`` (training a cell from scratch).
"""

from __future__ import annotations

import logging
import re

from wpl.fisher import ESTIMATORS
from wpl.nas.config import IMAGE_DEFAULTS
from wpl.nas.space import FinalTraining, Space

from .config import CnnConfig
from .supernet import MicroArch, micro_graph

log = logging.getLogger("wpl")
_OP = re.compile(r"cells\.(\d+)\.ops\.(\d+)_(\d+)_(\d+)\.")


def _task(configs, data_dir, device, dist):
    from wpl.nas.image_task import load_image_data

    from .task import CnnTask

    return CnnTask(load_image_data(configs, data_dir), configs.space, device, dist)


def _group(task, name: str) -> str | None:
    if not (m := _OP.match(name)):
        return None
    k, b, i, o = map(int, m.groups())
    kind = task.supernet.kinds[k]
    ops = task.normal_ops if kind == "normal" else task.reduce_ops
    return f"{kind} node {b} ← {i}: {ops[o]}"


def _presets():
    from .presets import PRESETS

    return PRESETS


def _random(seed: int, blocks: int | None) -> MicroArch:
    from .presets import random_arch

    return random_arch(seed, blocks)


def _final_build(job, device, dist):
    from wpl.data.images import load_images

    from .final import CnnFinal

    data = load_images(job.data_dir, job.dataset, valid_size=job.valid_size,
                       seed=job.seed if job.split_seed is None else job.split_seed)
    log.info("images %s: %d/%d/%d train/valid/test, %d classes", data.source, len(data.train_x),
             len(data.valid_x), len(data.test_x), len(data.classes))
    return CnnFinal(job.arch, data, job.recipe, device, job.seed, job.max_epoch, dist)


def _final() -> FinalTraining:
    from .final import CnnFinalConfig

    flags = {"final_channels": "channels", "final_num_cells": "num_cells", "final_cutout": "cutout",
             "final_drop_path": "drop_path", "final_auxiliary": "auxiliary",
             "final_auxiliary_weight": "auxiliary_weight", "final_train_on": "train_on",
             "final_momentum": "momentum", "cnn_sep_conv": "sep_conv"}
    return FinalTraining(CnnFinalConfig, _final_build, flags, validates=lambda r: r.train_on != "train+valid")


SPACE = Space(
    kind="micro_cnn", metric="error", dataset="cifar10", arch=MicroArch, config=CnnConfig, build_task=_task,
    graph=micro_graph, estimators=tuple(ESTIMATORS), short="cnn", aliases=("micro", "cnn"), random_arch=_random,
    presets=_presets, flag_defaults=IMAGE_DEFAULTS, fisher_group=_group, final=_final(),
)
