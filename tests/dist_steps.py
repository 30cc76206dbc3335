"""Worker for tests/test_dist.py (run by torchrun, or alone): in each space, a few shared, Fisher and
controller steps of a tiny search at a per-rank batch of ``B``; writes what each rank saw to
``OUT/<space>_rank<r>.pt``, and the threads left once it has left the job to ``OUT/threads<r>.txt``.

Usage: [torchrun --nproc_per_node=N] python tests/dist_steps.py TEXT CIFAR OUT B [CRASH_RANK]
(TEXT: a folder with the text corpus ``tiny``; CIFAR: a CIFAR-10 folder; CRASH_RANK: that rank dies after its
first step in the first space, as a crashed process would, -1: none)
"""

import dataclasses
import sys
from pathlib import Path

import torch

from wpl import WplConfig
from wpl.data.text import load_corpus
from wpl.dist import joined
from wpl.nas.config import ControllerConfig, SearchConfig
from wpl.nas.search.loop import Search
from wpl.nas.spaces.micro_cnn.config import CnnConfig
from wpl.nas.spaces.nb201.config import Nb201Config
from wpl.nas.spaces.rnn.config import RnnConfig
from wpl.nas.spaces.rnn.task import RnnTask

SPACES = ("rnn", "cnn", "nb201")


def build_task(space: str, data: str, batch: int, device: torch.device, dist):
    """A tiny task of ``space`` at a per-rank batch of ``batch`` (dropout off: its masks differ per rank)."""
    if space == "rnn":
        cfg = RnnConfig(shared_embed=8, shared_hid=8, num_blocks=3, batch_size=batch, test_batch_size=batch,
                        shared_rnn_max_length=6, forgetting_batches=2, shared_dropout=0.0, shared_dropouti=0.0,
                        shared_dropoute=0.0, shared_wdrop=0.0, rnn_cell="python")
        return RnnTask(load_corpus(data, "tiny"), cfg, device, dist)
    from wpl.data.images import load_images
    from wpl.nas.spaces.micro_cnn.task import CnnTask
    from wpl.nas.spaces.nb201.task import Nb201Task

    images = load_images(data, "cifar10", valid_size=2 * 2 * 4, seed=0, size=(16, 16), channels=3)
    sizes = {"batch_size": batch, "test_batch_size": batch, "forgetting_batches": 2}
    if space == "nb201":
        return Nb201Task(images, Nb201Config(nb201_channels=4, nb201_cells=1, **sizes), device, dist)
    cfg = CnnConfig(num_blocks=2, cnn_final_filter_size=8, cnn_num_modules=2, cnn_num_repeat_normal=1, **sizes)
    return CnnTask(images, cfg, device, dist)


def steps(space: str, data: str, batch: int, device: torch.device, dist, crash_rank: int) -> dict:
    """Three shared + Fisher steps and two controller steps of a fresh tiny search; what this rank saw."""
    torch.manual_seed(0)
    task = build_task(space, data, batch, device, dist)
    lr = {"shared_lr": 20.0 if space == "rnn" else 0.1}
    search = Search(task, SearchConfig(shared_max_step=3, num_batch_per_iter=2, train_controller=True,
                                       controller_max_step=2, start_using_fisher=0, shared_grad_clip=0.25, **lr),
                    WplConfig(alpha=60.0, fisher_clip_by_norm=10.0, legacy_compound_alpha=True),
                    ControllerConfig(controller_hid=8), run_dir=None)
    search.wpl.set_epoch(0)
    seen = {"archs": [], "ce": [], "rewards": [], "scores": []}
    for _ in range(3):
        arch = search.sample_archs(1)[0]
        seen["archs"].append(arch.to_json())
        seen["ce"] += [ce for ce, _ in search.shared_step(arch, wpl=True)]
        search.fisher_step(arch)
        seen["scores"].append(search.score(arch))
        if dist.rank == crash_rank:
            raise SystemExit(f"rank {crash_rank} crashed on purpose")
        if "weights_1" not in seen:  # after the first step: where float rounding has not compounded yet
            seen["weights_1"] = {n: p.detach().clone() for n, p in search.supernet.named_parameters()}
            seen["fisher_1"] = {n: f.clone() for n, f in search.wpl.fisher.items()}
    for _ in range(2):
        seen["rewards"].append(search.controller_step()["reward"])
    seen["weights"] = {n: p.detach().clone() for n, p in search.supernet.named_parameters()}
    seen["fisher"] = {n: f.clone() for n, f in search.wpl.fisher.items()}
    if space != "rnn":  # a per-sample Fisher step too: each sample normalised with the global batch's statistics
        search.cfg = dataclasses.replace(search.cfg, fisher_estimator="empirical")
        search.fisher_step(arch)
        seen["fisher_per_sample"] = {n: f.clone() for n, f in search.wpl.fisher.items()}
    return seen


def main(text: str, cifar: str, out: str, batch: int, crash_rank: int = -1) -> None:
    torch.set_num_threads(1)
    device = torch.device("cpu")
    Path(out).mkdir(parents=True, exist_ok=True)
    with joined(device) as dist:
        for space in SPACES:
            seen = steps(space, text if space == "rnn" else cifar, batch, device, dist, crash_rank)
            torch.save(seen, Path(out) / f"{space}_rank{dist.rank}.pt")
    # once it has left the job: the threads still running (Gloo's must be gone, or the process can abort
    # in its shutdown: "terminate called without an active exception")
    threads = [(t / "comm").read_text().strip() for t in Path("/proc/self/task").iterdir()]
    (Path(out) / f"threads{dist.rank}.txt").write_text("\n".join(threads))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), *map(int, sys.argv[5:6]))
