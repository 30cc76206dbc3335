"""WeightPlasticity: penalty, gradient, Fisher folding, schedule, state."""

import math

import pytest
import torch
from torch import nn

from wpl import AlphaSchedule, WeightPlasticity


def make_net(seed: int = 0, dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).to(dtype)


def perturb(net: nn.Module, scale: float = 0.3, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def random_fisher(wpl: WeightPlasticity, seed: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
    for f in wpl.fisher.values():
        f.copy_(torch.rand(f.shape, generator=g, dtype=f.dtype))


def test_penalty_is_exactly_zero_at_anchor():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=5.0)
    random_fisher(wpl)
    assert wpl.penalty().item() == 0.0
    perturb(net)
    assert wpl.penalty().item() > 0
    wpl.update_anchors()
    assert wpl.penalty().item() == 0.0


def test_penalty_value_and_gradient_match_formula():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=3.0)
    random_fisher(wpl)
    perturb(net)
    value = wpl.penalty()
    expected = sum(
        0.5 * 3.0 * (wpl.fisher[n] * (p.detach() - wpl.anchor[n]) ** 2).sum() for n, p in net.named_parameters()
    )
    assert torch.allclose(value, expected)
    value.backward()
    for n, p in net.named_parameters():
        assert torch.allclose(p.grad, 3.0 * wpl.fisher[n] * (p.detach() - wpl.anchor[n]))


def test_penalty_touches_only_the_named_parameters():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=2.0)
    random_fisher(wpl)
    perturb(net)
    active = ["0.weight", "2.bias"]
    wpl.penalty(active).backward()
    for n, p in net.named_parameters():
        if n in active:
            assert p.grad is not None and p.grad.abs().sum() > 0
        else:
            assert p.grad is None


def test_closed_form_grad_equals_autograd():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=7.0)
    random_fisher(wpl)
    perturb(net)
    names = ["0.weight", "0.bias"]
    wpl.penalty(names).backward()
    auto = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    auto_value = wpl.penalty(names).item()
    net.zero_grad(set_to_none=True)
    value = wpl.add_penalty_grad_(names, with_value=True)
    assert value.item() == pytest.approx(auto_value, rel=1e-6)
    for n, p in net.named_parameters():
        if n in names:
            assert torch.allclose(p.grad, auto[n])
        else:
            assert p.grad is None
    # adds to an existing gradient
    before = net[0].weight.grad.clone()
    assert wpl.add_penalty_grad_(["0.weight"]) is None
    assert torch.allclose(net[0].weight.grad, 2 * before)


def test_zero_penalty_leaves_an_unused_weight_to_the_optimizer_untouched():
    """A weight the loss did not use and the penalty does not pull keeps ``.grad`` None, so SGD's momentum
    and weight decay skip it, exactly as without WPL; a pulled one gets the pull."""
    net = make_net()
    wpl = WeightPlasticity(net, alpha=3.0)
    random_fisher(wpl)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    net(torch.randn(2, 5)).sum().backward()
    opt.step()  # every weight now has a momentum buffer
    wpl.update_anchors()
    frozen = net[2].weight.detach().clone()
    net.zero_grad(set_to_none=True)
    net[0](torch.randn(2, 5)).sum().backward()  # uses the first layer only
    wpl.add_penalty_grad_()
    assert net[2].weight.grad is None and net[2].bias.grad is None
    opt.step()
    assert torch.equal(net[2].weight, frozen)
    with torch.no_grad():
        net[2].weight.add_(0.5)
    net.zero_grad(set_to_none=True)
    wpl.add_penalty_grad_()
    expected = 3.0 * wpl.fisher["2.weight"] * 0.5
    assert torch.allclose(net[2].weight.grad, expected) and net[2].bias.grad is None


def test_unknown_name_is_a_clear_error():
    wpl = WeightPlasticity(make_net())
    with pytest.raises(KeyError, match="does not track 'nope'"):
        wpl.penalty(["nope"])


def test_constructor_validates_input():
    with pytest.raises(TypeError):
        WeightPlasticity([("a", 3.0)])
    with pytest.raises(ValueError):
        WeightPlasticity([])
    with pytest.raises(ValueError, match="lambda_fisher"):
        WeightPlasticity(make_net(), lambda_fisher=0.0)
    with pytest.raises(TypeError):
        WeightPlasticity(make_net(), alpha_fisher=2.0)  # one spelling of α: alpha
    with pytest.raises(ValueError, match="alpha=-1"):
        WeightPlasticity(make_net(), alpha=-1.0)


def test_from_config_is_the_constructor_with_its_options():
    from wpl import WplConfig

    cfg = WplConfig(alpha=4.0, lambda_fisher=0.5, momentum=False, alpha_decay=1.0, alpha_decay_after=2)
    wpl = WeightPlasticity.from_config(make_net(), cfg)
    assert wpl.alpha == 4.0 and wpl.lambda_fisher == 0.5 and wpl.momentum is False
    assert wpl.set_epoch(3) == 2.0  # linear decay by 1 per epoch from epoch 2
    with pytest.raises(ValueError, match="alpha_decay=2.0: with alpha_decay_mode=2"):
        WplConfig(alpha_decay=2.0, alpha_decay_mode=2)


def set_grads(net: nn.Module, value_seed: int) -> dict:
    g = torch.Generator().manual_seed(value_seed)
    out = {}
    for n, p in net.named_parameters():
        p.grad = torch.randn(p.shape, generator=g)
        out[n] = p.grad.clone()
    return out


def test_update_fisher_ema_arithmetic():
    net = make_net()
    wpl = WeightPlasticity(net, lambda_fisher=0.9, momentum=True)
    g1 = set_grads(net, 1)
    wpl.update_fisher()
    for n in g1:
        assert torch.allclose(wpl.fisher[n], 0.9 * g1[n] ** 2)
    g2 = set_grads(net, 2)
    wpl.update_fisher()
    for n in g1:
        assert torch.allclose(wpl.fisher[n], 0.1 * 0.9 * g1[n] ** 2 + 0.9 * g2[n] ** 2)


def test_update_fisher_accumulate_and_missing_grads():
    net = make_net()
    wpl = WeightPlasticity(net, lambda_fisher=0.5, momentum=False)
    g1 = set_grads(net, 1)
    wpl.update_fisher()
    g2 = set_grads(net, 2)
    net[2].bias.grad = None
    wpl.update_fisher()
    for n in g1:
        expected = 0.5 * g1[n] ** 2 + (0 if n == "2.bias" else 0.5 * g2[n] ** 2)
        assert torch.allclose(wpl.fisher[n], expected)


def test_fisher_clip_by_norm_is_per_tensor():
    net = make_net()
    wpl = WeightPlasticity(net, lambda_fisher=1.0, fisher_clip_by_norm=0.5)
    grads = set_grads(net, 3)
    for p in net.parameters():
        p.grad.mul_(10)
    wpl.update_fisher()
    for n, g in grads.items():
        raw = (10 * g) ** 2
        assert wpl.fisher[n].norm().item() == pytest.approx(min(0.5, raw.norm().item()), rel=1e-5)
        assert torch.allclose(wpl.fisher[n] / wpl.fisher[n].norm(), raw / raw.norm(), atol=1e-6)


def test_reset_and_set_epoch_cadence():
    net = make_net()
    wpl = WeightPlasticity(net, set_fisher_zero_per_iter=2)
    random_fisher(wpl)
    wpl.set_epoch(1)
    assert all(f.abs().sum() > 0 for f in wpl.fisher.values())
    wpl.set_epoch(2)
    assert all(f.abs().sum() == 0 for f in wpl.fisher.values())
    random_fisher(wpl)
    wpl.set_epoch(2)  # same epoch again: no second reset
    assert all(f.abs().sum() > 0 for f in wpl.fisher.values())
    wpl.reset_fisher(["0.bias"])
    assert wpl.fisher["0.bias"].abs().sum() == 0 and wpl.fisher["0.weight"].abs().sum() > 0


def test_alpha_schedule_linear_exponential_and_floor():
    lin = AlphaSchedule(alpha=60, alpha_decay=1, alpha_decay_after=15, alpha_decay_mode=1)
    assert [lin(e) for e in (0, 14, 15, 16, 74, 100)] == [60, 60, 59, 58, 0, 0]
    floor = AlphaSchedule(alpha=60, alpha_decay=1, alpha_decay_after=15, alpha_small_scale=1e-4)
    assert floor(100) == 1e-4
    exp = AlphaSchedule(alpha=8, alpha_decay=0.5, alpha_decay_after=2, alpha_decay_mode=2)
    assert [exp(e) for e in (1, 2, 3)] == [8, 4, 2]
    with pytest.raises(ValueError, match="alpha_decay_mode"):
        AlphaSchedule(alpha_decay_mode=3)
    wpl = WeightPlasticity(make_net(), alpha=60, alpha_decay=1, alpha_decay_after=15)
    assert wpl.set_epoch(20) == 54 and wpl.penalty_scale == 27


def test_alpha_applies_in_penalty_not_in_fisher():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=60, lambda_fisher=1.0)
    grads = set_grads(net, 4)
    wpl.update_fisher()
    for n, g in grads.items():
        assert torch.allclose(wpl.fisher[n], g**2)


def test_legacy_compound_alpha_reproduces_original_code():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=6.0, lambda_fisher=0.9, legacy_compound_alpha=True)
    g = set_grads(net, 5)
    wpl.update_fisher()
    wpl.update_fisher()
    for n in g:
        first = 6.0 * 0.9 * g[n] ** 2
        assert torch.allclose(wpl.fisher[n], 6.0 * (0.1 * first + 0.9 * g[n] ** 2))
    assert wpl.penalty_scale == 0.5


def test_uniform_importance_is_l2_to_anchor():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=2.0, importance="uniform")
    set_grads(net, 6)
    wpl.update_fisher()
    perturb(net)
    expected = sum((p.detach() - wpl.anchor[n]).pow(2).sum() for n, p in net.named_parameters())
    assert wpl.penalty().item() == pytest.approx(expected.item(), rel=1e-6)


def test_state_dict_round_trip_is_exact():
    net = make_net()
    wpl = WeightPlasticity(net, alpha=60, alpha_decay=1, alpha_decay_after=1, set_fisher_zero_per_iter=3)
    random_fisher(wpl)
    perturb(net)
    wpl.update_anchors(["0.weight"])
    wpl.set_epoch(4)
    state = wpl.state_dict()
    perturb(net, seed=9)
    fresh = WeightPlasticity(net, alpha=60, alpha_decay=1, alpha_decay_after=1, set_fisher_zero_per_iter=3)
    fresh.load_state_dict(state)
    assert fresh.alpha == wpl.alpha and fresh.epoch == 4
    for n in wpl.params:
        assert torch.equal(fresh.fisher[n], wpl.fisher[n])
        assert torch.equal(fresh.anchor[n], wpl.anchor[n])
    assert torch.equal(fresh.penalty(), wpl.penalty())
    # the saved state is a copy, not a view of the live tensors
    wpl.reset_fisher()
    assert state["fisher"]["0.weight"].abs().sum() > 0


def test_load_state_dict_rejects_mismatch():
    wpl = WeightPlasticity(make_net())
    state = wpl.state_dict()
    other = WeightPlasticity([("0.weight", nn.Parameter(torch.zeros(2, 2)))])
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict(state)
    state["fisher"]["0.weight"] = torch.zeros(9)
    with pytest.raises(ValueError, match="shape"):
        WeightPlasticity(make_net()).load_state_dict(state)
    with pytest.raises(ValueError, match="missing 'anchor'"):
        WeightPlasticity(make_net()).load_state_dict({"fisher": {}})


def test_state_lives_on_the_parameter_device_and_dtype():
    net = make_net(dtype=torch.float64)
    wpl = WeightPlasticity(net, alpha=1.0)
    for n, p in net.named_parameters():
        assert wpl.fisher[n].device == p.device and wpl.fisher[n].dtype == torch.float64
        assert wpl.anchor[n].device == p.device and wpl.anchor[n].dtype == torch.float64
    perturb(net)
    assert wpl.penalty().dtype == torch.float64
    assert not math.isnan(wpl.penalty().item())


def test_estimating_the_fisher_of_no_weights_is_a_no_op() -> None:
    """An architecture can use no protected weights (a NAS-Bench-201 cell of pools and skips)."""
    import torch

    from wpl.plasticity import WeightPlasticity

    model = torch.nn.Linear(3, 2)
    wpl = WeightPlasticity(model, alpha=1.0)
    before = {n: f.clone() for n, f in wpl.fisher.items()}
    batch = [(torch.randn(4, 3), torch.randint(0, 2, (4,)))]
    assert wpl.estimate_fisher(model, batch, names=[], estimator="batch_sq") == {}
    wpl.update_anchors([])
    wpl.update_fisher([])
    wpl.reset_fisher([])
    assert wpl.add_penalty_grad_([], with_value=True).item() == 0.0 and wpl.penalty([]).item() == 0.0
    assert all(torch.equal(before[n], wpl.fisher[n]) for n in before)


def test_proximal_step_is_the_exact_minimiser_and_never_overshoots():
    net = make_net(dtype=torch.float64)
    wpl = WeightPlasticity(net, alpha=7.0)
    random_fisher(wpl)
    perturb(net)
    lr = 0.3
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    wpl.proximal_(lr)
    for n, p in net.named_parameters():
        # the gradient of ‖θ − θ₀‖²/(2·lr) + (α/2)·F·(θ − θ̂)² is zero at the result
        grad = (p.detach() - start[n]) / lr + 7.0 * wpl.fisher[n] * (p.detach() - wpl.anchor[n])
        assert torch.allclose(grad, torch.zeros_like(grad), atol=1e-12)
    # stiff: lr·α·F ≫ 2. The explicit step overshoots the anchor; the proximal one lands between
    net2 = make_net(dtype=torch.float64)
    stiff = WeightPlasticity(net2, alpha=1e4)
    for f in stiff.fisher.values():
        f.fill_(1.0)
    perturb(net2)
    before = {n: (p.detach() - stiff.anchor[n]).abs() for n, p in net2.named_parameters()}
    stiff.proximal_(0.1)
    for n, p in net2.named_parameters():
        after = (p.detach() - stiff.anchor[n]).abs()
        assert (after <= before[n] / 999).all()
    explicit = {n: (1 - 0.1 * 1e4) * before[n] for n in before}  # θ − lr·α·F·(θ − θ̂), relative to θ̂
    assert all((e.abs() > b).all() for e, b in zip(explicit.values(), before.values()))
    with pytest.raises(ValueError, match="lr"):
        stiff.proximal_(-1.0)


def test_ema_anchors_follow_the_weights_part_way():
    net = make_net()
    wpl = WeightPlasticity(net)
    old = {n: a.clone() for n, a in wpl.anchor.items()}
    perturb(net)
    wpl.ema_anchors_(0.25, ["0.weight"])
    p = dict(net.named_parameters())
    assert torch.allclose(wpl.anchor["0.weight"], old["0.weight"] + 0.25 * (p["0.weight"].detach() - old["0.weight"]))
    assert torch.equal(wpl.anchor["2.weight"], old["2.weight"])  # not named: not moved
    wpl.ema_anchors_(1.0)
    assert all(torch.equal(wpl.anchor[n], q.detach()) for n, q in p.items())
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="rate"):
            wpl.ema_anchors_(bad)


def test_mean_normalised_fisher_makes_alpha_scale_free():
    from wpl import WplConfig
    from wpl.errors import ConfigError

    values = []
    for scale in (1.0, 1e-6):  # the same gradients, a million times smaller
        net = make_net()
        wpl = WeightPlasticity(net, alpha=2.0, fisher_normalise="mean", lambda_fisher=1.0)
        grads = set_grads(net, 3)
        for p in net.parameters():
            p.grad.mul_(scale)
        wpl.update_fisher()
        perturb(net)
        values.append(wpl.penalty().item())
        expected = sum(0.5 * 2.0 * ((g * scale) ** 2 / ((g * scale) ** 2).mean() * (p.detach() - wpl.anchor[n]) ** 2)
                       .sum() for (n, p), g in zip(net.named_parameters(), grads.values()))
        assert values[-1] == pytest.approx(float(expected), rel=1e-5)
        for p in net.parameters():
            p.grad = None
        value = wpl.add_penalty_grad_(with_value=True)
        assert float(value) == pytest.approx(values[-1], rel=1e-5)
        state = wpl.state_dict()
        again = WeightPlasticity(net, alpha=2.0, fisher_normalise="mean", lambda_fisher=1.0)  # the saved options
        again.load_state_dict(state)
        assert again.penalty().item() == pytest.approx(values[-1], rel=1e-6)
    assert values[0] == pytest.approx(values[1], rel=1e-4)
    with pytest.raises(ConfigError, match="legacy_compound_alpha=False"):
        WplConfig(fisher_normalise="mean", legacy_compound_alpha=True)
