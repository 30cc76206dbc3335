"""The fast recurrent cells (hand-written BPTT in torch ops, and the C++ build) against the plain
autograd reference, and the fallback when the C++ kernels cannot be built."""

from __future__ import annotations

import logging
import random

import pytest
import torch
import torch.nn.functional as F

from wpl.nas.spaces.rnn import cell as rnn_cell
from wpl.nas.spaces.rnn import cpp_ops
from wpl.nas.spaces.rnn.linear_ce import linear_cross_entropy
from wpl.nas.spaces.rnn.supernet import ACTIVATIONS, RnnArch, SharedRNN

HAS_CPP = cpp_ops.load() is not None
IMPLS = ["python"] + (["cpp"] if HAS_CPP else [])


def _archs() -> list[RnnArch]:
    """Every activation on every kind of node: chains, a parent with many children, many loose ends."""
    rng = random.Random(0)
    acts = list(ACTIVATIONS)
    out = [RnnArch((a,), ()) for a in acts]  # node 0 alone, each activation
    out += [RnnArch(("identity", a, a, "tanh"), (0, 0, 1)) for a in acts]  # two children of node 0
    out += [RnnArch(tuple(acts * 2), (0, 0, 1, 0, 2, 2, 3)), RnnArch(("relu",) * 6, (0, 1, 2, 3, 4))]
    for _ in range(6):
        b = rng.randint(2, 8)
        out.append(RnnArch(tuple(rng.choice(acts) for _ in range(b)), tuple(rng.randrange(j) for j in range(1, b))))
    return out


def _run(model: SharedRNN, impl: str, arch: RnnArch, x, y, h0, dtype):
    model = model.to(dtype)
    model.cell_impl = impl
    model.zero_grad(set_to_none=True)
    h = h0.to(dtype).clone().requires_grad_()
    ce, _, raw = model.loss(x, y, h, arch)
    (ce + raw.pow(2).mean()).backward()  # a gradient into every step's output, as the regularizers give
    grads = {n: p.grad.double().clone() for n, p in model.named_parameters() if p.grad is not None}
    return ce.double().item(), raw.detach().double(), h.grad.double(), grads


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: hidden states above the norm clip
def test_fast_cell_matches_reference(impl: str, scale: float) -> None:
    torch.manual_seed(0)
    for arch in _archs():
        model = SharedRNN(40, 12, 12, 8, dropout=0, dropoute=0, dropouti=0, wdrop=0, init_range=0.3)
        x, y = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3))
        h0 = torch.randn(3, 12) * scale
        ref = _run(model, "reference", arch, x, y, h0, torch.float64)
        got = _run(model, impl, arch, x, y, h0, torch.float32)
        assert got[0] == pytest.approx(ref[0], rel=1e-5), arch
        assert _rel(got[1], ref[1]) < 1e-5, arch
        assert _rel(got[2], ref[2]) < 1e-4, arch
        assert got[3].keys() == ref[3].keys(), arch
        for name in ref[3]:
            assert _rel(got[3][name], ref[3][name]) < 1e-4, (arch, name)


def test_clip_is_exercised() -> None:
    """The scale-30 case above really runs rows through the norm clip (else its backward is untested)."""
    torch.manual_seed(0)
    model = SharedRNN(40, 12, 12, 8, dropout=0, dropoute=0, dropouti=0, wdrop=0, init_range=0.3)
    h0 = torch.randn(3, 12) * 30.0
    _, hidden, raw = model(torch.randint(0, 40, (6, 3)), h0, RnnArch(("identity",), ()))
    assert raw.norm(dim=-1).max().item() == pytest.approx(25.0, rel=1e-5)


def test_python_cell_is_exact_in_float64() -> None:
    torch.manual_seed(1)
    model = SharedRNN(40, 12, 12, 8, dropout=0, dropoute=0, dropouti=0, wdrop=0, init_range=0.3)
    x, y, h0 = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3)), torch.randn(3, 12) * 30
    for arch in _archs():
        ref = _run(model, "reference", arch, x, y, h0, torch.float64)
        got = _run(model, "python", arch, x, y, h0, torch.float64)
        assert got[0] == pytest.approx(ref[0], rel=1e-12)
        for name in ref[3]:
            assert _rel(got[3][name], ref[3][name]) < 1e-10, (arch, name)


@pytest.mark.parametrize("impl", IMPLS)
def test_eval_forward_matches_reference(impl: str) -> None:
    torch.manual_seed(2)
    model = SharedRNN(40, 12, 12, 8).eval()
    x, y, h0 = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3)), torch.zeros(3, 12)
    arch = _archs()[-1]
    with torch.no_grad():
        model.cell_impl = "reference"
        ref, ref_h, _ = model.loss(x, y, h0, arch)
        model.cell_impl = impl
        got, got_h, _ = model.loss(x, y, h0, arch)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(got_h, ref_h, atol=1e-6)


def test_cpp_impl_refuses_what_it_cannot_run() -> None:
    model = SharedRNN(40, 12, 12, 4).double()
    model.cell_impl = "cpp"
    with pytest.raises(RuntimeError, match="float32 CPU"):
        model(torch.randint(0, 40, (3, 2)), torch.zeros(2, 12, dtype=torch.float64), RnnArch(("tanh",), ()))
    with pytest.raises(ValueError, match="impl='fast'"):
        rnn_cell.unroll(torch.zeros(2, 1, 8), torch.zeros(1, 4), torch.zeros(8, 4), RnnArch(("tanh",), ()),
                        lambda i, j: None, impl="fast")


def test_falls_back_when_the_build_fails(monkeypatch, caplog) -> None:
    """No compiler (or WPL_CPP=0): one warning, the Python cell, the same numbers."""
    def broken():
        raise RuntimeError("g++: command not found")

    monkeypatch.setattr(cpp_ops, "_build", broken)
    monkeypatch.setattr(cpp_ops, "_ops", None)
    monkeypatch.setattr(cpp_ops, "STATUS", {"state": "not tried"})
    torch.manual_seed(3)
    model = SharedRNN(40, 12, 12, 8, dropout=0, dropoute=0, dropouti=0, wdrop=0)
    x, y, h0 = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3)), torch.zeros(3, 12)
    arch = _archs()[-2]
    with caplog.at_level(logging.WARNING, logger="wpl"):
        auto = _run(model, "auto", arch, x, y, h0, torch.float32)
        _run(model, "auto", arch, x, y, h0, torch.float32)
    assert cpp_ops.STATUS["state"] == "unavailable" and "g++" in cpp_ops.STATUS["reason"]
    assert sum("could not be built" in r.message for r in caplog.records) == 1
    ref = _run(model, "python", arch, x, y, h0, torch.float32)
    assert auto[0] == ref[0] and all(torch.equal(auto[3][n], ref[3][n]) for n in ref[3])
    # the fused cross-entropy falls back too
    h, w, b = torch.randn(7, 5), torch.randn(11, 5), torch.randn(11)
    t = torch.randint(0, 11, (7,))
    assert linear_cross_entropy(h, w, b, t).item() == pytest.approx(F.cross_entropy(F.linear(h, w, b), t).item())


def test_env_switch_turns_the_build_off(monkeypatch) -> None:
    monkeypatch.setenv("WPL_CPP", "0")
    monkeypatch.setattr(cpp_ops, "_ops", None)
    monkeypatch.setattr(cpp_ops, "STATUS", {"state": "not tried"})
    assert cpp_ops.load() is None and cpp_ops.STATUS["reason"] == "WPL_CPP=0"


def test_a_killed_build_never_leaves_later_runs_waiting(tmp_path, caplog) -> None:
    """torch's lock file left by a dead build is removed; a live holder is waited for, then given up on."""
    import subprocess
    import sys

    (tmp_path / "lock").write_text("")  # what a build killed half-way leaves behind
    with caplog.at_level(logging.WARNING, logger="wpl"), cpp_ops._build_lock(tmp_path, wait_s=5):
        assert not (tmp_path / "lock").exists()
    assert any("did not finish" in r.message for r in caplog.records)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                               str(tmp_path / "wpl.flock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TimeoutError, match="delete that folder"), cpp_ops._build_lock(tmp_path, wait_s=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()
    with cpp_ops._build_lock(tmp_path, wait_s=5):  # the OS released the dead holder's lock
        pass


@pytest.mark.skipif(not HAS_CPP, reason=f"C++ kernels unavailable: {cpp_ops.STATUS.get('reason')}")
def test_cpp_cross_entropy_matches_torch_and_keeps_nan() -> None:
    torch.manual_seed(4)
    h = torch.randn(33, 6, requires_grad=True)
    w = (torch.randn(50, 6) * 3).requires_grad_()
    b = torch.randn(50, requires_grad=True)
    t = torch.randint(0, 50, (33,))
    loss = linear_cross_entropy(h, w, b, t)
    loss.backward()
    mine = [p.grad.clone() for p in (h, w, b)]
    for p in (h, w, b):
        p.grad = None
    ref = F.cross_entropy(F.linear(h, w, b), t)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    for a, p in zip(mine, (h, w, b), strict=True):
        assert _rel(a, p.grad) < 1e-5
    bad = h.detach().clone()
    bad[3, 2] = float("nan")
    assert torch.isnan(linear_cross_entropy(bad, w.detach(), b.detach(), t))
