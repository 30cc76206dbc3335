"""The library's contracts: WPL reduces forgetting, the REINFORCE updater's arithmetic, the configs'
checks, the task protocol, the activation regularizers and safe checkpoint loading."""

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import make_text
from wpl import ConfigError, WeightPlasticity, WplConfig
from wpl.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from wpl.errors import WplError
from wpl.nas import spaces
from wpl.nas.config import ControllerConfig, SearchConfig
from wpl.nas.search.controller import Controller, Reinforce, discounted
from wpl.nas.spaces.rnn.config import RnnConfig
from wpl.nas.task import Task


def _forgetting_of_a(seed: int, use_wpl: bool) -> float:
    """Train A (a shared layer + head A), then B (the same shared layer + head B) on other labels;
    return how much A's loss grew while B trained."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.randn(512, 10, generator=g)
    y_a = (x[:, :5].sum(1) > 0).long()
    y_b = (x[:, 5:].sum(1) > 0).long()
    shared = nn.Linear(10, 2)  # narrow: B must repurpose the units A uses
    model_a = nn.Sequential(shared, nn.Tanh(), nn.Linear(2, 2))
    model_b = nn.Sequential(shared, nn.Tanh(), nn.Linear(2, 2))

    def loss(model, y):
        return nn.functional.cross_entropy(model(x), y)

    opt = torch.optim.SGD(model_a.parameters(), lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        loss(model_a, y_a).backward()
        opt.step()
    before = float(loss(model_a, y_a).detach())
    wpl = WeightPlasticity(shared, alpha=5.0)
    wpl.estimate_fisher(model_a, [(x, y_a)], estimator="empirical")  # A's Fisher at A's weights
    wpl.update_anchors()
    opt = torch.optim.SGD(model_b.parameters(), lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        (loss(model_b, y_b) + (wpl.penalty() if use_wpl else 0.0)).backward()
        opt.step()
    return float(loss(model_a, y_a).detach()) - before


@pytest.mark.parametrize("seed", [0, 1])
def test_wpl_reduces_forgetting_of_the_first_model(seed: int) -> None:
    plain, with_wpl = _forgetting_of_a(seed, False), _forgetting_of_a(seed, True)
    assert plain > 0.1  # training B on the shared layer makes A forget
    assert with_wpl < 0.5 * plain  # WPL keeps most of what A needed


def test_discounted_returns_by_hand() -> None:
    r = torch.tensor([[1.0, 2.0, 3.0]])
    # out[t] = sum_k>=t gamma^(k-t) r[k], gamma = 0.5: [1 + 1 + 0.75, 2 + 1.5, 3]
    assert torch.allclose(discounted(r, 0.5), torch.tensor([[2.75, 3.5, 3.0]]))
    ctrl = Controller([3, 2, 4], hid=8)
    upd = Reinforce(ctrl, ControllerConfig(entropy_mode="reward", entropy_coeff=0.1, discount=0.5))
    ent = torch.tensor([[1.0, 0.0, 2.0]])
    # reward 1 plus 0.1 x entropy per decision, then discounted: [1.1, 1.0, 1.2] -> [1.1 + 0.5 + 0.3, 1.6, 1.2]
    assert torch.allclose(upd.returns(torch.tensor([1.0]), ent), torch.tensor([[1.9, 1.6, 1.2]]))


def test_reinforce_regularizer_mode_and_baseline() -> None:
    torch.manual_seed(0)
    ctrl = Controller([3, 2], hid=8)
    upd = Reinforce(ctrl, ControllerConfig(entropy_mode="regularizer", entropy_coeff=0.5, ema_baseline_decay=0.5))
    _, logp, ent = ctrl.sample(4)
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.equal(upd.returns(rewards, ent), rewards[:, None].expand(4, 2))  # no entropy in the reward
    stats = upd.update(logp, ent, rewards)
    assert torch.allclose(upd.baseline, torch.tensor([2.5, 2.5]))  # first call: the mean return
    # loss = -mean_n sum_d logp * (r - b) - coeff * mean_n sum_d ent
    expected = -(logp.detach() * (rewards[:, None] - 2.5)).sum(1).mean() - 0.5 * ent.detach().sum(1).mean()
    assert stats["loss"] == pytest.approx(float(expected), rel=1e-5)
    _, logp, ent = ctrl.sample(4)
    upd.update(logp, ent, torch.full((4,), 4.5))
    assert torch.allclose(upd.baseline, torch.tensor([3.5, 3.5]))  # EMA: 0.5 * 2.5 + 0.5 * 4.5


def test_configs_refuse_bad_values_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="alpha_decay=2.0: with alpha_decay_mode=2"):
        WplConfig(alpha_decay=2.0, alpha_decay_mode=2)
    with pytest.raises(ConfigError, match="alpha=-1"):
        WplConfig(alpha=-1)
    with pytest.raises(ConfigError, match="max_epoch=0: must be >= 1"):
        SearchConfig(max_epoch=0)
    with pytest.raises(ConfigError, match="discount=0"):
        ControllerConfig(discount=0)
    with pytest.raises(ConfigError, match="tie_weights"):
        RnnConfig(shared_embed=8, shared_hid=16)
    err = ConfigError("alpha", -1.0, "must be >= 0")
    assert str(err) == "alpha=-1.0: must be >= 0" and err.as_flag("alpha_fisher") == "--alpha_fisher=-1.0: must be >= 0"
    assert err.as_flag(flags={"alpha": "alpha_fisher"}) == "--alpha_fisher=-1.0: must be >= 0"
    err = ConfigError("alpha", 2.0, "with alpha_decay_mode=2 (not my_alpha=1) it is a factor")
    assert err.as_flag("alpha_fisher", flags={"alpha_decay_mode": "alpha_decay_mode"}) == (
        "--alpha_fisher=2.0: with --alpha_decay_mode=2 (not my_alpha=1) it is a factor")
    assert RnnConfig(shared_embed=8, shared_hid=8, shared_rnn_activations=("ReLU",)).shared_rnn_activations == ("relu",)


def _rnn_task(tmp_path: Path, **overrides):
    from wpl.data.text import load_corpus
    from wpl.nas.spaces.rnn.task import RnnTask

    corpus = load_corpus(str(make_text(tmp_path)), "tiny")
    cfg = RnnConfig(**{"shared_embed": 8, "shared_hid": 8, "num_blocks": 3, "batch_size": 4, "test_batch_size": 4,
                       "shared_rnn_max_length": 5, "forgetting_batches": 1, **overrides})
    return RnnTask(corpus, cfg, torch.device("cpu"))


def test_tasks_implement_the_protocol(tmp_path: Path) -> None:
    from conftest import make_cifar
    from wpl.data.images import load_images
    from wpl.nas.spaces.micro_cnn.config import CnnConfig
    from wpl.nas.spaces.micro_cnn.task import CnnTask

    rnn = _rnn_task(tmp_path)
    data = load_images(str(make_cifar(tmp_path)), "cifar10", valid_size=8, seed=0, size=(32, 32), channels=3)
    cnn = CnnTask(data, CnnConfig(num_blocks=2, cnn_final_filter_size=8, cnn_num_modules=2, cnn_num_repeat_normal=1,
                                  batch_size=4, test_batch_size=4, forgetting_batches=1), torch.device("cpu"))
    for task, metric in ((rnn, "ppl"), (cnn, "error")):
        assert isinstance(task, Task) and spaces.get(task.kind).metric == metric
        arch = task.decode([0] * len(task.decisions))
        assert task.arch_from_json(arch.to_json()) == arch and task.encode(arch) == [0] * len(task.decisions)
        pos = task.valid_pos
        task.reward(arch, 1)
        task.fisher_batch(arch)
        assert task.valid_pos == pos  # reading never moves the stream; the loop does
        task.advance_valid(1)
        assert task.valid_pos != pos
        assert set(task.protected_names(arch)) <= set(task.all_protected_names())
        assert metric in task.evaluate(arch, "valid")


def test_activation_regularizers_add_their_terms(tmp_path: Path) -> None:
    no_dropout = {"shared_wdrop": 0.0, "shared_dropout": 0.0, "shared_dropoute": 0.0, "shared_dropouti": 0.0}
    task = _rnn_task(tmp_path, activation_regularization=True, activation_regularization_amount=2.0,
                     temporal_activation_regularization=True, temporal_activation_regularization_amount=3.0,
                     norm_stabilizer_regularization=True, norm_stabilizer_regularization_amount=0.5,
                     norm_stabilizer_fixed_point=1.0, **no_dropout)
    arch = task.decode([1, 0, 0, 1, 2])
    task.supernet.train()
    x = task.train_data[:5]  # the first training batch (BPTT 5)
    hidden = task.supernet.init_hidden(task.train_data.size(1))
    with torch.no_grad():
        _, _, raw = task.supernet.features(x, hidden, arch)
    total, ce = task.train_loss(arch)
    expected = (2.0 * raw.pow(2).mean() + 3.0 * (raw[1:] - raw[:-1]).pow(2).mean()
                + 0.5 * (raw.norm(dim=-1) - 1.0).pow(2).mean())
    assert float((total - ce).detach()) == pytest.approx(float(expected), rel=1e-5)
    plain = _rnn_task(tmp_path / "plain", **no_dropout)
    total, ce = plain.train_loss(plain.decode([1, 0, 0, 1, 2]))
    assert float(total.detach()) == float(ce)


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    state = rng_state()
    save_checkpoint(tmp_path / "c.pt", {"rng": state})
    first = (random.random(), float(np.random.rand()), float(torch.rand(())))
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == first


class Payload:
    """Anything that is not a tensor or plain data."""

    def __reduce__(self):
        return (print, ("this would run on load",))


def test_checkpoint_carrying_a_pickled_object_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "wpl-search-checkpoint", "version": 2, "payload": Payload()}, path)
    with pytest.raises(WplError, match="refusing to load it: it holds Python objects"):
        load_checkpoint(path)
    assert "this would run on load" not in capsys.readouterr().out


def test_checkpoint_from_a_newer_wpl_says_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "wpl-search-checkpoint", "version": 99, "epoch": 0}, path)
    with pytest.raises(WplError, match="version 99 is not supported.*newer wpl: upgrade"):
        load_checkpoint(path)


def test_checkpoint_digest_covers_every_value(tmp_path: Path) -> None:
    from wpl.checkpoint import CorruptCheckpoint, save_checkpoint

    state = {"w": torch.arange(6.0).reshape(2, 3), "history": [{"epoch": 0, "loss": 1.5}], "rng": (1, 2)}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["w"], state["w"]) and loaded["history"] == state["history"] and "digest" not in loaded
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    raw["history"][0]["loss"] = 1.25  # a plain value changed after the fact
    torch.save(raw, tmp_path / "d.pt")
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(tmp_path / "d.pt")
