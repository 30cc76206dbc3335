"""The recurrent search space: architectures, supernet gradients, controller, forgetting summary."""

import math

import pytest
import torch
import torch.nn.functional as F

from wpl.forgetting import ForgettingMonitor
from wpl.nas.search.controller import Controller
from wpl.nas.spaces.rnn.linear_ce import linear_cross_entropy
from wpl.nas.spaces.rnn.supernet import RnnArch, SharedRNN, decode_rnn, encode_rnn, rnn_decisions
from wpl.plasticity import WeightPlasticity

ACTS = ["tanh", "ReLU", "identity", "sigmoid"]


def test_arch_json_round_trip_and_canonical_form() -> None:
    arch = RnnArch(("tanh", "relu", "identity", "sigmoid"), (0, 0, 2))
    text = arch.to_json()
    assert RnnArch.from_json(text) == arch
    assert text == '{"activations":["tanh","relu","identity","sigmoid"],"parents":[0,0,2],"type":"rnn"}'
    assert arch.leaves() == [1, 3] and arch.children() == [[1, 2], [], [3], []]
    actions = encode_rnn(arch, ACTS)
    assert decode_rnn(actions, ACTS) == arch
    assert len(actions) == len(rnn_decisions(4, 4)) == 7


def test_invalid_arch_is_rejected() -> None:
    with pytest.raises(ValueError, match="parent"):
        RnnArch(("tanh", "tanh"), (1,))
    with pytest.raises(ValueError, match="activation 'elu'"):
        RnnArch(("tanh", "elu"), (0,))


def _net() -> SharedRNN:
    torch.manual_seed(0)
    return SharedRNN(vocab_size=20, embed=8, hid=8, num_blocks=4)


def test_gradients_only_on_the_architecture_parameters() -> None:
    net = _net()
    arch = RnnArch(("tanh", "relu", "identity", "sigmoid"), (0, 1, 1))
    x = torch.randint(0, 20, (5, 3))
    logits, hidden, _ = net(x, net.init_hidden(3), arch)
    assert logits.shape == (5, 3, 20) and hidden.shape == (3, 8)
    F.cross_entropy(logits.reshape(-1, 20), x.reshape(-1)).backward()
    used = set(net.parameters_for(arch))
    for name, p in net.named_parameters():
        if name in used:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    assert net.edge_names(arch) == ["edges.0_1", "edges.1_2", "edges.1_3"]


def test_cell_matches_a_hand_computed_step() -> None:
    net = _net().eval()
    arch = RnnArch(("tanh", "sigmoid", "identity", "relu"), (0, 0, 1))
    tok = torch.tensor([[3]])
    h = torch.randn(1, 8) * 0.1
    _, out, _ = net(tok, h, arch)
    H = 8
    x = net.encoder.weight[3:4]
    e = net.w_x(x) + h @ net.w_h0.t()
    c = torch.sigmoid(e[:, :H])
    n0 = c * torch.tanh(e[:, H:]) + (1 - c) * h

    def node(src, w, f):
        z = src @ w.t()
        g = torch.sigmoid(z[:, :H])
        return g * f(z[:, H:]) + (1 - g) * src

    n1 = node(n0, net.edges["0_1"], torch.sigmoid)
    n2 = node(n0, net.edges["0_2"], lambda t: t)
    n3 = node(n1, net.edges["1_3"], torch.relu)
    assert torch.allclose(out, (n2 + n3) / 2, atol=1e-6)


def test_wpl_penalises_only_the_active_edges() -> None:
    net = _net()
    names = net.edge_names()
    params = dict(net.named_parameters())
    wpl = WeightPlasticity([(n, params[n]) for n in names], alpha=2.0)
    for f in wpl.fisher.values():
        f.fill_(1.0)
    with torch.no_grad():
        for n in names:
            params[n].add_(0.5)
    arch = RnnArch(("tanh",) * 4, (0, 0, 0))
    active = net.edge_names(arch)
    wpl.add_penalty_grad_(active)
    for n in names:
        if n in active:
            assert torch.allclose(params[n].grad, torch.full_like(params[n], 1.0))
        else:
            assert params[n].grad is None


def test_controller_log_prob_and_entropy_by_hand() -> None:
    torch.manual_seed(0)
    ctrl = Controller([3, 2], hid=6, temperature=2.0, tanh_c=1.5)
    actions = torch.tensor([[2, 1]])
    logp, ent = ctrl.evaluate(actions)
    h, c = ctrl.lstm(torch.zeros(1, 6), (torch.zeros(1, 6), torch.zeros(1, 6)))
    l0 = 1.5 * torch.tanh(ctrl.decoders[0](h) / 2.0)
    p0 = F.softmax(l0, -1)
    h2, _ = ctrl.lstm(ctrl.embed(torch.tensor([2])), (h, c))  # decision 0's rows start at 0
    l1 = 1.5 * torch.tanh(ctrl.decoders[1](h2) / 2.0)
    p1 = F.softmax(l1, -1)
    expect_logp = torch.stack([p0[0, 2].log(), p1[0, 1].log()])
    expect_ent = torch.stack([-(p0 * p0.log()).sum(), -(p1 * p1.log()).sum()])
    assert torch.allclose(logp[0], expect_logp, atol=1e-6)
    assert torch.allclose(ent[0], expect_ent, atol=1e-6)


def test_controller_embeds_each_decision_in_its_own_rows() -> None:
    ctrl = Controller([3, 2, 4])
    assert ctrl.offsets == [0, 3, 5] and ctrl.embed.num_embeddings == 9
    actions, logp, ent = ctrl.sample(7)
    assert actions.shape == logp.shape == ent.shape == (7, 3)
    assert (actions[:, 0] < 3).all() and (actions[:, 1] < 2).all() and (actions[:, 2] < 4).all()
    # each decision's entropy is at most log(its choices); the first decision starts every sample from the
    # same state, so its entropy is one number, and its log-probability depends on the action only
    assert all(bool((ent[:, d] <= math.log(n) + 1e-6).all()) for d, n in enumerate([3, 2, 4]))
    assert torch.allclose(ent[:, 0], ent[0, 0].expand(7))
    for a in actions[:, 0].unique():
        assert torch.allclose(logp[actions[:, 0] == a, 0], logp[actions[:, 0] == a, 0][0])


def test_forgetting_summary_arithmetic() -> None:
    mon = ForgettingMonitor(top_k=2)
    errs = {"a": (10.0, 2.0), "b": (20.0, 3.0), "c": (30.0, 3.5)}
    for step, name in enumerate("abc"):
        mon.before(0, step, name, *errs[name])
    after = {"a": (16.0, 2.5), "b": (20.0, 3.0), "c": (27.0, 3.25)}
    recs = mon.after(lambda js: after[js])
    s = mon.summary(recs)
    diffs = [6.0, 0.0, -3.0]
    assert s["diff_mean"] == pytest.approx(1.0)
    assert s["diff_median"] == 0.0 and s["diff_max"] == 6.0
    assert s["diff_std"] == pytest.approx(math.sqrt(sum((d - 1) ** 2 for d in diffs) / 3))
    assert s["diff_best_mean"] == pytest.approx(3.0)  # a and b have the smallest err1
    assert s["loss_diff_mean"] == pytest.approx((0.5 + 0.0 - 0.25) / 3)
    assert mon.records == []


def test_fused_linear_cross_entropy_matches_autograd_and_reuses_its_buffer() -> None:
    torch.manual_seed(0)
    h = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    w = torch.randn(9, 4, dtype=torch.double, requires_grad=True)
    b = torch.randn(9, dtype=torch.double, requires_grad=True)
    t = torch.randint(0, 9, (6,))
    got_loss = linear_cross_entropy(h, w, b, t)
    got = torch.autograd.grad(got_loss * 3.0, (h, w, b))
    want_loss = F.cross_entropy(F.linear(h, w, b), t)
    want = torch.autograd.grad(want_loss * 3.0, (h, w, b))
    torch.testing.assert_close(got_loss, want_loss)
    for a, c in zip(got, want):
        torch.testing.assert_close(a, c)
    with torch.no_grad():  # a second call reuses the pooled buffer and must not see stale values
        for rows in (6, 2, 6):  # buffers of other sizes come back from the pool
            want_loss = F.cross_entropy(F.linear(h[:rows] * 2, w, b), t[:rows])
            torch.testing.assert_close(linear_cross_entropy(h[:rows] * 2, w, b, t[:rows]), want_loss)
    loss = linear_cross_entropy(h, w, b, t)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        loss.backward()


def test_fused_cross_entropy_never_stores_denormals() -> None:
    # denormal floats make the backward's matrix products ~100x slower on CPU
    torch.manual_seed(0)
    h = torch.randn(8, 4, requires_grad=True)
    w = torch.randn(50, 4) * 40  # logits hundreds apart: exp(logit - max) underflows
    loss = linear_cross_entropy(h, w, torch.zeros(50), torch.randint(0, 50, (8,)))
    probs = loss.grad_fn.saved_tensors[2]
    tiny = (probs != 0) & (probs.abs() < torch.finfo(torch.float32).tiny)
    assert not tiny.any()
    loss.backward()
