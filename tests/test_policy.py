"""WplPolicy: the README's example as written on a two-task problem, each preset in a plain loop, the one-time
warning of an overshooting explicit gradient, state that refuses other options, the search's use of it."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wpl import PRESETS, ConfigError, PolicyConfig, WeightPlasticity, WplConfig, WplPolicy

README = Path(__file__).resolve().parents[1] / "README.md"


class Net(nn.Module):
    """A backbone shared between tasks and a head of its own."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def task(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """512 points in 20 dimensions labelled by the side of a random hyperplane."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 20, generator=g)
    return x, (x @ torch.randn(20, generator=g) > 0).long()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def batches(x: torch.Tensor, y: torch.Tensor, epochs: int, size: int = 32) -> list:
    return [(x[i:i + size], y[i:i + size]) for _ in range(epochs) for i in range(0, len(y), size)]


def trained_a(lr: float = 0.1) -> tuple[Net, Net, tuple, tuple]:
    """Model A trained on task A (backbone 20→32 and its head); model B shares the backbone, its own head."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
    model_a, model_b = Net(backbone, nn.Linear(32, 2)), Net(backbone, nn.Linear(32, 2))
    a, b = task(1), task(2)
    opt = torch.optim.SGD(model_a.parameters(), lr=lr)
    for x, y in batches(*a, epochs=50):
        opt.zero_grad()
        F.cross_entropy(model_a(x), y).backward()
        opt.step()
    return model_a, model_b, a, b


def train_b(policy: WplPolicy, model_b: nn.Module, xb, yb, epochs: int, after_step=None) -> None:
    """Model B trained on task B through ``policy`` as a plain loop drives it; ``after_step(k)`` after step k."""
    opt = torch.optim.SGD(model_b.parameters(), lr=0.1)
    for k, (x, y) in enumerate(batches(xb, yb, epochs)):
        opt.zero_grad()
        F.cross_entropy(model_b(x), y).backward()
        policy.before_step()
        opt.step()
        policy.after_step(opt)
        if after_step is not None:
            after_step(k)


def readme_example() -> str:
    """The README's Python API example, as written."""
    text = README.read_text(encoding="utf-8")
    return re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)


def test_the_readmes_example_as_written_keeps_a_and_learns_b() -> None:
    model_a, model_b, (xa, ya), (xb, yb) = trained_a(lr=0.1)
    before = accuracy(model_a, xa, ya)
    assert before > 0.98
    env = {"model_a": model_a, "model_b": model_b, "x_valid": xa, "y_valid": ya, "loader": batches(xb, yb, 50)}
    exec(readme_example(), env)  # noqa: S102 - the documented code, run as a user would
    assert accuracy(model_a, xa, ya) >= before - 0.02  # A keeps what it knew
    assert accuracy(model_b, xb, yb) > 0.95  # and B learns
    assert isinstance(env["policy"], WplPolicy) and env["policy"].steps == len(env["loader"])


def test_without_wpl_the_same_loop_forgets_a() -> None:
    """The problem the example solves is there: B's training alone costs A its accuracy."""
    model_a, model_b, (xa, ya), (xb, yb) = trained_a()
    opt = torch.optim.SGD(model_b.parameters(), lr=0.1)
    for x, y in batches(xb, yb, 50):
        opt.zero_grad()
        F.cross_entropy(model_b(x), y).backward()
        opt.step()
    assert accuracy(model_a, xa, ya) < 0.9


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_in_a_plain_loop(name: str) -> None:
    model_a, model_b, (xa, ya), (xb, yb) = trained_a()
    policy = WplPolicy.preset(name, model_a.backbone, lr=0.1, **({"anchor_every": 10} if name == "persistent" else {}))
    wcfg, pcfg = PRESETS[name]
    assert policy.config.update == pcfg.update and policy.wpl.config()["fisher_normalise"] == wcfg.fisher_normalise
    policy.consolidate(model_a, [(xa, ya)])
    anchors = {n: t.clone() for n, t in policy.wpl.anchor.items()}
    moved_at = []

    def note_moves(k: int) -> None:
        nonlocal anchors
        if not all(torch.equal(anchors[n], t) for n, t in policy.wpl.anchor.items()):
            moved_at.append(k + 1)
            anchors = {n: t.clone() for n, t in policy.wpl.anchor.items()}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the original's explicit gradient may warn: its own test
        train_b(policy, model_b, xb, yb, 2, note_moves)
    assert all(torch.isfinite(p).all() for p in model_b.parameters())
    if pcfg.anchor == "snapshot":  # every anchor_every steps, and only then
        assert moved_at == list(range(10, 33, 10))
    else:  # anchored at A's weights, moved only by consolidate()
        assert moved_at == []
    if pcfg.source == "train":  # the Fisher came from the training steps (consolidate estimated nothing)
        assert any(f.abs().sum() > 0 for f in policy.wpl.fisher.values())
    assert policy.penalty().item() >= 0.0


def test_an_overshooting_explicit_gradient_warns_once_naming_the_fix() -> None:
    model_a, model_b, (xa, ya), (xb, yb) = trained_a()
    policy = WplPolicy(model_a.backbone, WplConfig(alpha=3000.0), PolicyConfig(update="gradient"))
    policy.consolidate(model_a, [(xa, ya)])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # after each step the Fisher changes: the check is due again
        train_b(policy, model_b, xb, yb, 1, lambda k: policy.consolidate(model_a, [(xa[:64], ya[:64])]))
    mine = [w for w in seen if issubclass(w.category, RuntimeWarning) and "overshoots" in str(w.message)]
    assert len(mine) == 1 and "update='proximal'" in str(mine[0].message)


def test_the_proximal_preset_does_not_warn_at_any_alpha() -> None:
    model_a, model_b, (xa, ya), (xb, yb) = trained_a()
    policy = WplPolicy.preset("recommended", model_a.backbone, alpha=1e6)
    policy.consolidate(model_a, [(xa, ya)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_b(policy, model_b, xb, yb, 1)
    assert accuracy(model_a, xa, ya) > 0.98


def test_presets_and_options_are_checked_in_one_line() -> None:
    net = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="lr=<your optimizer's learning rate>"):
        WplPolicy.preset("recommended", net)
    with pytest.raises(ConfigError, match="preset=.*original, recommended, persistent"):
        WplPolicy.preset("best", net, lr=0.1)
    with pytest.raises(ConfigError, match="anchor_evry"):
        WplPolicy.preset("persistent", net, anchor_evry=3)
    with pytest.raises(ConfigError, match="estimator='batch_sq'"):
        PolicyConfig(source="train", estimator="empirical")
    assert WplPolicy.preset("recommended", net, lr=0.05).wpl.alpha == pytest.approx(20.0)


def test_state_round_trips_and_refuses_other_options() -> None:
    net = nn.Linear(3, 2)
    policy = WplPolicy.preset("persistent", net, anchor_every=5)
    with torch.no_grad():
        for f in policy.wpl.fisher.values():
            f.uniform_()
    policy.steps = 7
    state = policy.state_dict()
    same = WplPolicy.preset("persistent", nn.Linear(3, 2), anchor_every=5)
    same.load_state_dict(state)
    assert same.steps == 7 and all(torch.equal(same.wpl.fisher[n], f) for n, f in policy.wpl.fisher.items())
    other = WplPolicy.preset("persistent", nn.Linear(3, 2), anchor_every=6)
    with pytest.raises(ValueError, match="anchor_every=5, this one 6"):
        other.load_state_dict(state)
    plain = WeightPlasticity(nn.Linear(3, 2), alpha=2.0)
    with pytest.raises(ValueError, match=r"alpha=0\.005, this one 2\.0.*check_config=False"):
        plain.load_state_dict(state["wpl"])
    plain.load_state_dict(state["wpl"], check_config=False)  # on purpose: the tensors only


def test_the_search_acts_through_the_policy(monkeypatch, tmp_path: Path) -> None:
    from conftest import make_text, rnn_argv
    from wpl.nas.search.run import run_search

    calls: dict[str, int] = {}
    for name in ("push", "pull", "estimate", "move_anchors", "snapshot_due"):
        real = getattr(WplPolicy, name)

        def counted(self, *a, _real=real, _name=name, **kw):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(self, *a, **kw)

        monkeypatch.setattr(WplPolicy, name, counted)
    run_search(rnn_argv(make_text(tmp_path / "data"), tmp_path, "--wpl_anchor=snapshot", "--wpl_anchor_every=2"))
    assert calls.get("push", 0) > 0 and calls.get("pull", 0) == calls["push"]
    assert calls.get("estimate", 0) > 0 and calls.get("snapshot_due", 0) > 0


def test_the_api_pages_loop_runs_each_preset() -> None:
    """docs/api.md's 20-line loop, as written, with each preset: two models in sequence on a shared backbone."""
    page = (README.parent / "docs" / "api.md").read_text(encoding="utf-8")
    env: dict = {}
    exec(re.search(r"## WPL in your loop: `WplPolicy`\n\n```python\n(.*?)```", page, re.S).group(1), env)  # noqa: S102
    for name in PRESETS:
        torch.manual_seed(0)
        backbone = nn.Sequential(nn.Linear(20, 32), nn.ReLU())
        models = [Net(backbone, nn.Linear(32, 2)), Net(backbone, nn.Linear(32, 2))]
        a, b = task(1), task(2)
        tasks = [(batches(*a, epochs=1), [a]), (batches(*b, epochs=1), [b])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            policy = env["train_in_sequence"](models, backbone, tasks, preset=name, epochs=20)
        assert policy.consolidations == 2 and policy.steps == 2 * 20 * 16, name
        if name == "recommended":
            assert accuracy(models[0], *a) > 0.9 and accuracy(models[1], *b) > 0.9
