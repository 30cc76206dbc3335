"""What has to hold on a GPU, run on ``WPL_TEST_DEVICE`` (cpu here and in CI; ``WPL_TEST_DEVICE=cuda pytest -m
gpu`` on a GPU machine): the regularizer and the Fisher estimators on the device, a WPL step that never waits on
the device, the RNN's non-C++ cell, each space's search and its exact resume, final training, and runs saved on
one device and read on another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import make_cifar, make_text, rnn_argv, run_interrupted
from test_nas_cnn import TINY_CNN
from test_nb201 import TINY_NB201
from wpl import WeightPlasticity
from wpl.fisher import estimate
from wpl.nas.search.run import run_search

pytestmark = pytest.mark.gpu



@pytest.fixture(autouse=True)
def _deterministic_only_here():
    """``--deterministic=True`` switches a process-wide setting: put it back for the tests after these."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])


HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


def _net(device: torch.device, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).to(device)


def _moved(net: nn.Module, wpl: WeightPlasticity, seed: int = 1) -> None:
    """A random Fisher and weights moved off their anchors (drawn on the CPU: the same numbers on any device)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for f in wpl.fisher.values():
            f.copy_(torch.rand(f.shape, generator=g))
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g).to(p.device) * 0.3)


class _HostReads:
    """Counts the calls that copy a tensor's value to the host (each one a wait for the device on CUDA)."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[str] = []
        for name in HOST_READS:
            real = getattr(torch.Tensor, name)

            def counted(t, *a, _real=real, _name=name, **kw):
                self.calls.append(_name)
                return _real(t, *a, **kw)

            monkeypatch.setattr(torch.Tensor, name, counted)


def test_the_penalty_and_its_gradient_on_the_device(device) -> None:
    net = _net(device)
    wpl = WeightPlasticity(net, alpha=7.0)
    assert all(wpl.fisher[n].device == p.device and wpl.anchor[n].device == p.device for n, p in wpl.params.items())
    _moved(net, wpl)
    want = sum(0.5 * 7.0 * (wpl.fisher[n].cpu() * (p.detach().cpu() - wpl.anchor[n].cpu()) ** 2).sum()
               for n, p in net.named_parameters())
    value = wpl.penalty()
    assert value.device.type == device.type and value.item() == pytest.approx(want.item(), rel=1e-5)
    value.backward()
    auto = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    fast = wpl.add_penalty_grad_(with_value=True)
    assert fast.device.type == device.type and fast.item() == pytest.approx(want.item(), rel=1e-5)
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, auto[n])
    empty = wpl.add_penalty_grad_([], with_value=True)  # nothing protected: a zero on the parameters' device
    assert empty.device.type == device.type and empty.item() == 0.0


def test_a_wpl_step_never_waits_on_the_device(device, monkeypatch) -> None:
    net = _net(device)
    wpl = WeightPlasticity(net, alpha=3.0, fisher_normalise="none")
    _moved(net, wpl)
    x, y = torch.randn(8, 5, device=device), torch.randint(0, 3, (8,), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    reads = _HostReads(monkeypatch)
    for update in ("gradient", "proximal"):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        wpl.update_fisher()
        if update == "gradient":
            wpl.add_penalty_grad_()
            value = wpl.add_penalty_grad_([], with_value=True)
        else:
            value = wpl.penalty()
        opt.step()
        if update == "proximal":
            wpl.proximal_(0.1)
        wpl.update_anchors(["0.weight"])
        wpl.ema_anchors_(0.5, ["2.weight"])
        assert reads.calls == [], (update, reads.calls)  # no read back in the whole step
    assert torch.isfinite(value)
    # weights without a gradient: whether the pull moves them is read once for all of them, not once each
    reads.calls.clear()
    opt.zero_grad(set_to_none=True)
    wpl.add_penalty_grad_()
    assert reads.calls == ["tolist"]
    # pulled: the weights off their anchors; 0.weight's anchor was just moved to it, so nothing pulls it
    assert {n for n, p in net.named_parameters() if p.grad is not None} == {"0.bias", "2.weight", "2.bias"}


@pytest.mark.parametrize("estimator", ["batch_sq", "empirical", "true"])
def test_fisher_estimators_on_the_device_agree_with_the_cpu(device, estimator: str) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 5, generator=g), torch.randint(0, 3, (12,), generator=g)
    batches = [(x[:6], y[:6]), (x[6:], y[6:])]
    out = {}
    for where in (torch.device("cpu"), device):
        net = _net(where)
        on = [(a.to(where), b.to(where)) for a, b in batches]
        out[where.type] = estimate(estimator, net, dict(net.named_parameters()), on,
                                   generator=torch.Generator().manual_seed(1))
        assert all(t.device.type == where.type for t in out[where.type].values())
    for name, t in out["cpu"].items():
        torch.testing.assert_close(out[device.type][name].cpu(), t, rtol=1e-4, atol=1e-7)


def test_the_wpl_state_moves_between_devices(device) -> None:
    net = _net(device)
    wpl = WeightPlasticity(net, alpha=2.0)
    _moved(net, wpl)
    cpu_net = _net(torch.device("cpu"), seed=5)
    cpu_wpl = WeightPlasticity(cpu_net, alpha=2.0)
    cpu_wpl.load_state_dict(wpl.state_dict())  # saved on the device, resumed on a machine without one
    for n in wpl.fisher:
        assert torch.equal(cpu_wpl.fisher[n], wpl.fisher[n].cpu()) and cpu_wpl.fisher[n].device.type == "cpu"
    back = WeightPlasticity(_net(device, seed=6), alpha=2.0)
    back.load_state_dict(cpu_wpl.state_dict())
    assert all(torch.equal(back.anchor[n], wpl.anchor[n]) for n in wpl.anchor)


def test_the_rnn_cell_without_the_cpp_kernels_on_the_device(device) -> None:
    """On CUDA the C++ kernels cannot run: the hand-written BPTT in torch ops does, against plain autograd."""
    from test_rnn_cell import _archs, _rel
    from wpl.nas.spaces.rnn.supernet import SharedRNN

    torch.manual_seed(0)
    for arch in _archs()[::3]:
        model = SharedRNN(40, 12, 12, 8, dropout=0, dropoute=0, dropouti=0, wdrop=0, init_range=0.3).to(device)
        x, y = torch.randint(0, 40, (6, 3), device=device), torch.randint(0, 40, (6, 3), device=device)
        h0 = torch.randn(3, 12, device=device) * 30.0  # rows above the norm clip: its backward runs too
        grads = {}
        for impl, dtype in (("reference", torch.float64), ("auto", torch.float32)):
            m = model.to(dtype)
            m.cell_impl = impl
            m.zero_grad(set_to_none=True)
            ce, _, raw = m.loss(x, y, h0.to(dtype), arch)
            (ce + raw.pow(2).mean()).backward()
            grads[impl] = {n: p.grad.double() for n, p in m.named_parameters() if p.grad is not None}
        assert grads["auto"].keys() == grads["reference"].keys()
        for n, ref in grads["reference"].items():
            assert _rel(grads["auto"][n], ref) < 1e-4, (arch, n)


def _space_argv(space: str, root: Path, device: torch.device) -> tuple[list[str], str]:
    """A tiny search of ``space`` on ``device`` (its data made under ``root``) and its run folder's name."""
    on = [f"--device={device}", "--deterministic=True"]
    if space == "rnn":
        argv = [a for a in rnn_argv(make_text(root / "data"), root) if not a.startswith("--log_dir")]
        return [*argv, *on], "tiny_rnn-train"
    data = make_cifar(root / "data")
    if space == "micro_cnn":
        return [*TINY_CNN, "--dataset=cifar10", f"--data_dir={data}", *on], "cifar10_cnn"
    return [*TINY_NB201, f"--data_dir={data}", *on], "cifar10_nb"


@pytest.mark.slow
@pytest.mark.parametrize("space", ["rnn", "micro_cnn", "nb201"])
def test_each_space_searches_on_the_device_and_resumes_exactly(space: str, device, tmp_path: Path,
                                                              monkeypatch) -> None:
    argv, name = _space_argv(space, tmp_path, device)
    argv += ["--max_epoch=3"]
    full = run_search([*argv, f"--log_dir={tmp_path / 'full'}"])
    run_interrupted([*argv, f"--log_dir={tmp_path / 'part'}"], 2, monkeypatch)
    part = run_search([*argv, f"--log_dir={tmp_path / 'part'}", "--resume=True"])
    assert full["wpl_active"] and full["best_arch"] == part["best_arch"] and full["test"] == part["test"]
    a = torch.load(tmp_path / "full" / name / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / name / "checkpoint.pt", weights_only=False)
    for key in ("supernet", "controller"):
        for n, t in a[key].items():
            assert torch.equal(t, b[key][n]), (key, n)
    for n, t in a["wpl"]["fisher"].items():
        assert torch.equal(t, b["wpl"]["fisher"][n]), n
    for f in ("metrics.jsonl", "forgetting.csv"):
        assert (tmp_path / "full" / name / f).read_text() == (tmp_path / "part" / name / f).read_text(), f


def test_a_run_saved_on_the_device_resumes_and_tests_on_the_cpu(device, tmp_path: Path) -> None:
    argv, name = _space_argv("nb201", tmp_path, device)
    logs = f"--log_dir={tmp_path / 'logs'}"
    run_search([*argv, logs, "--max_epoch=1"])
    on_cpu = [a for a in argv if not a.startswith("--device")] + [logs, "--device=cpu"]
    summary = run_search([*on_cpu, "--max_epoch=2", "--resume=True"])
    assert summary["epochs_done"] == 2
    tested = run_search([*on_cpu, "--mode=test", f"--load_path={tmp_path / 'logs' / name}"])
    assert tested["test"] == pytest.approx(summary["test"])


@pytest.mark.slow
def test_final_training_on_the_device_resumes_exactly(device, tmp_path: Path, monkeypatch) -> None:
    from test_final import CNN_RECIPE, interrupted_final
    from wpl.cli import main

    data = make_cifar(tmp_path / "data", per_batch=40)
    recipe = [a for a in CNN_RECIPE if not a.startswith("--device")]
    common = ["--arch=enas-cifar10", f"--data_dir={data}", *recipe, f"--device={device}", "--deterministic=True"]
    assert main(["train-final", *common, f"--log_dir={tmp_path / 'full'}", "--max_epoch=3"]) == 0
    interrupted_final(monkeypatch, common, tmp_path / "part", 3, after=1)  # dies after its first epoch
    assert main(["train-final", *common, f"--log_dir={tmp_path / 'part'}", "--max_epoch=3", "--resume=True"]) == 0
    a, b = (json.loads((tmp_path / d / "enas-cifar10" / "summary.json").read_text()) for d in ("full", "part"))
    strip = [[{k: v for k, v in e.items() if k != "seconds"} for e in s["epochs"]] for s in (a, b)]
    assert strip[0] == strip[1] and a["test"] == b["test"] and len(strip[0]) == 3
