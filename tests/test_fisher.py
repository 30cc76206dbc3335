"""Fisher estimators against hand computations."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wpl import WeightPlasticity
from wpl.fisher import batch_sq_fisher, empirical_fisher, estimate, true_fisher


def data(n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))


def per_sample_loop(net: nn.Module, x, y) -> dict:
    out = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for i in range(len(y)):
        net.zero_grad()
        F.cross_entropy(net(x[i : i + 1]), y[i : i + 1]).backward()
        for n, p in net.named_parameters():
            out[n] += p.grad**2
    return {n: v / len(y) for n, v in out.items()}


def test_linear_softmax_closed_form_batch_sq():
    # For logits = W x, dCE/dW = (softmax - onehot) x^T: a closed form to check against.
    torch.manual_seed(0)
    lin = nn.Linear(4, 3, bias=False)
    x, y = data(8)
    p = torch.softmax(lin(x), dim=1).detach()
    grad = ((p - F.one_hot(y, 3).float()).T @ x) / len(y)
    est = batch_sq_fisher(lin, {"w": lin.weight}, [(x, y)])
    assert torch.allclose(est["w"], grad**2, atol=1e-6)


def test_batch_sq_averages_over_batches():
    net = model()
    x, y = data(12)
    params = dict(net.named_parameters())
    b1 = batch_sq_fisher(net, params, [(x[:6], y[:6])])
    b2 = batch_sq_fisher(net, params, [(x[6:], y[6:])])
    both = batch_sq_fisher(net, params, [(x[:6], y[:6]), (x[6:], y[6:])])
    for n in params:
        assert torch.allclose(both[n], (b1[n] + b2[n]) / 2)
    assert all(p.grad is None for p in net.parameters()), ".grad must stay untouched"


def test_empirical_equals_per_sample_loop():
    net = model()
    x, y = data(10)
    est = empirical_fisher(net, dict(net.named_parameters()), [(x[:4], y[:4]), (x[4:], y[4:])])
    ref = per_sample_loop(net, x, y)
    for n in ref:
        assert torch.allclose(est[n], ref[n], atol=1e-6)


def test_true_fisher_uses_labels_sampled_from_the_model():
    net = model()
    x, _ = data(10)
    est = true_fisher(net, dict(net.named_parameters()), [(x, torch.zeros(10, dtype=torch.long))],
                      generator=torch.Generator().manual_seed(3))
    probs = torch.softmax(net(x), dim=1).detach()
    sampled = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3)).squeeze(1)
    ref = per_sample_loop(net, x, sampled)
    for n in ref:
        assert torch.allclose(est[n], ref[n], atol=1e-6)


def test_subset_of_parameters_and_tracked_names_differ_from_module_names():
    net = model()
    x, y = data(6)
    wpl = WeightPlasticity([("first", net[0].weight)], alpha=1.0, lambda_fisher=1.0)
    est = wpl.estimate_fisher(net, [(x, y)], estimator="empirical")
    ref = per_sample_loop(net, x, y)
    assert set(est) == {"first"}
    assert torch.allclose(wpl.fisher["first"], ref["0.weight"], atol=1e-6)
    # an estimate of a subset is plain data: no graph through the parameters left out (it would pile up
    # in the running Fisher, step after step)
    assert not est["first"].requires_grad and not wpl.fisher["first"].requires_grad


def test_estimator_restores_train_mode_and_rejects_bad_input():
    net = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    net.train()
    x, y = data(4)
    estimate("empirical", net, dict(net.named_parameters()), [(x, y)])
    assert net.training
    with pytest.raises(ValueError, match="unknown Fisher estimator"):
        estimate("nope", net, dict(net.named_parameters()), [(x, y)])
    lin = nn.Linear(4, 3)
    with pytest.raises(TypeError, match="needs an nn.Module"):
        estimate("empirical", lambda t: lin(t), dict(lin.named_parameters()), [(x, y)])
    other = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="not a parameter of the model"):
        estimate("empirical", net, {"w": other.weight}, [(x, y)])


def test_estimate_fisher_folds_with_ema():
    net = model()
    x, y = data(6)
    wpl = WeightPlasticity(net, lambda_fisher=0.9)
    first = wpl.estimate_fisher(net, [(x, y)], estimator="batch_sq")
    wpl.estimate_fisher(net, [(x, y)], estimator="batch_sq")
    for n, f in first.items():
        assert torch.allclose(wpl.fisher[n], 0.1 * 0.9 * f + 0.9 * f)
