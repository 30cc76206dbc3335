"""The two-model experiment's Python API: variants at their own α, the EWC-style baseline, validation numbers."""

import pytest
import torch

from wpl.data.mnist import load_mnist
from wpl.two_models import TwoModelsConfig, _penalty, build_models, run_two_models, shared_names

TINY = dict(a_iters={"strict": 30, "loose": 10}, b_iters=30, fisher_samples=20, eval_every=10, width=16, b_width=16)


def test_variants_run_each_method_at_its_own_alpha(mnist_dir):
    data = load_mnist(mnist_dir, valid_size=60, seed=0)
    cfg = TwoModelsConfig(**TINY)
    variants = [("plain", "plain", 0.0), ("wpl@10", "wpl", 10.0), ("wpl@1e5", "wpl", 1e5), ("l2@1", "l2", 1.0),
                ("ewc@1e5", "ewc", 1e5)]
    result = run_two_models(cfg, data, settings=("strict",), variants=variants)
    run = result["runs"][0]
    held_out = 60 - TINY["fisher_samples"]  # validation images the Fisher did not see: accuracies count them
    for label, method, alpha in variants:
        assert run[label]["method"] == method and run[label]["alpha"] == alpha
        for key in ("a_acc_after_valid", "b_acc_valid"):
            assert run[label][key] * held_out == pytest.approx(round(run[label][key] * held_out)), (label, key)
        assert run[f"forgetting_{label}"] == pytest.approx(run["a_acc_before"] - run[label]["a_acc_after"])
    assert run["a_acc_before_valid"] > 0.3  # A learned the separable classes (chance: 0.1)
    # plain training of B overwrites A's shared layers; a penalty of 1e5 holds them (A keeps its accuracy)
    assert run["forgetting_plain"] > 0.1
    assert abs(run["forgetting_wpl@1e5"]) <= 0.02 and abs(run["forgetting_ewc@1e5"]) <= 0.02
    # a strong penalty holds A's shared weights, so A moves less than under a weak one
    assert run["forgetting_wpl@1e5"] <= run["forgetting_wpl@10"] + 1e-9
    red = run["forgetting_reduction_wpl@10"]
    plain = run["forgetting_plain"]
    assert red is None if plain <= 0 else red == pytest.approx(1 - run["forgetting_wpl@10"] / plain)


def test_ewc_penalises_all_of_a_and_wpl_only_the_shared_blocks(mnist_dir):
    data = load_mnist(mnist_dir, valid_size=60, seed=0)
    cfg = TwoModelsConfig(**TINY)
    model_a, _ = build_models(cfg, 28 * 28, 10, 0)
    batch = [(data.valid_x[:20], data.valid_y[:20])]
    ewc, wpl = _penalty("ewc", 1.0, cfg, model_a, batch), _penalty("wpl", 1.0, cfg, model_a, batch)
    assert _penalty("plain", 1.0, cfg, model_a, batch) is None
    with torch.no_grad():
        model_a.blocks[3].weight.add_(1.0)  # a private block of A: only EWC-style sees it move
        assert wpl().item() == 0.0 and ewc().item() > 0.0
        model_a.blocks[0].weight.add_(1.0)  # a shared block: both do
        assert wpl().item() > 0.0
    assert {n for n in shared_names(cfg)} < {n for n, _ in model_a.named_parameters()}
