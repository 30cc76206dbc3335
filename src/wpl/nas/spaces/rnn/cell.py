"""The recurrent cell unrolled over a sequence with a hand-written backward (BPTT) — the fast path.

Autograd records ≈6 nodes per cell node per time step (≈420 per step of a 12-node cell) and runs
them one by one; here the forward writes every intermediate the backward needs into a few flat
buffers (no graph), and the backward walks time in reverse with a handful of fused in-place ops per
node. Weight gradients are not summed step by step: every edge's input and output gradient is kept
for all steps and its weight gradient is one ``[2H, T·N]·[T·N, H]`` product at the end.

The children of one parent share one matrix product; their gates and candidate values are laid out
``[N, k, 2, H]`` (gate first, as in :class:`~wpl.nas.spaces.rnn.supernet.SharedRNN`'s ``[2H, H]`` edge weights), so
the sigmoid and the highway mix of all ``k`` children are one op each.

:func:`unroll_reference` is the plain autograd version of the same cell (the definition; tests
compare the two); :func:`unroll` picks the fast path unless a caller needs what it cannot give
(double backward, ``torch.func`` transforms).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from . import cpp_ops
from .arch import ACTIVATIONS, HIDDEN_NORM_CLIP, RnnArch

_EPS = 1e-12


def _act_(name: str, t: Tensor) -> None:
    """Apply activation ``name`` in place."""
    if name == "tanh":
        t.tanh_()
    elif name == "relu":
        t.relu_()
    elif name == "sigmoid":
        t.sigmoid_()


def _act_backward(name: str, grad: Tensor, out: Tensor, dest: Tensor) -> None:
    """``dest = grad · f'(x)`` written from the activation's output ``out``."""
    if name == "tanh":
        torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=dest)
    elif name == "sigmoid":
        torch.ops.aten.sigmoid_backward.grad_input(grad, out, grad_input=dest)
    elif name == "relu":
        torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=dest)
    else:
        dest.copy_(grad)


_CODES = {"tanh": 0, "relu": 1, "identity": 2, "sigmoid": 3}  # the C++ build's activation codes


class _Plan:
    """The wiring of one architecture: per parent its children, and where each node's output lives."""

    def __init__(self, arch: RnnArch) -> None:
        self.acts = arch.activations
        self.groups = [(i, ch) for i, ch in enumerate(arch.children()) if ch]
        self.where: dict[int, tuple[int, int]] = {}  # node j -> (group index, slot in the group)
        for g, (_, ch) in enumerate(self.groups):
            for k, j in enumerate(ch):
                self.where[j] = (g, k)
        self.leaves = arch.leaves()
        # the same plan as flat integer lists, for the C++ build
        self.codes = [_CODES[a] for a in self.acts]
        self.flat = [len(self.groups)]
        for i, ch in self.groups:
            self.flat += [i, len(ch), *ch]


@functools.lru_cache(maxsize=4096)
def _plan(arch: RnnArch) -> _Plan:
    return _Plan(arch)


def _node_output(plan: _Plan, outs: list[Tensor], o0: Tensor, j: int) -> Tensor:
    """Node ``j``'s output over the buffer's leading dims (``o0`` holds node 0's)."""
    if j == 0:
        return o0
    g, k = plan.where[j]
    return outs[g].select(-2, k)


def _forward(plan: _Plan, x_proj: Tensor, h0: Tensor, w_h0: Tensor, weights: list[Tensor]):
    """Run the cell over ``x_proj [T, N, 2H]``; returns hidden states ``[T+1, N, H]`` and the buffers."""
    T, N, H = x_proj.size(0), x_proj.size(1), h0.size(1)
    new = x_proj.new_empty
    hs = new(T + 1, N, H)
    hs[0] = h0
    p0 = new(T, N, 2, H)  # node 0's gate and candidate
    o0 = new(T, N, H)
    ps = [new(T, N, len(ch), 2, H) for _, ch in plan.groups]
    outs = [new(T, N, len(ch), H) for _, ch in plan.groups]
    scale = new(T, N, 1)
    wt0 = w_h0.t()
    wts = [w.t() for w in weights]
    inv_leaves = 1.0 / len(plan.leaves)
    for t in range(T):
        h = hs[t]
        pt = p0[t]
        torch.addmm(x_proj[t], h, wt0, out=pt.view(N, 2 * H))
        pt[:, 0].sigmoid_()
        _act_(plan.acts[0], pt[:, 1])
        torch.lerp(h, pt[:, 1], pt[:, 0], out=o0[t])
        outs_t = [o[t] for o in outs]  # views of this step's node outputs (filled in below)
        for g, (i, ch) in enumerate(plan.groups):
            hi = _node_output(plan, outs_t, o0[t], i)
            pg = ps[g][t]
            torch.mm(hi, wts[g], out=pg.view(N, -1))
            pg[:, :, 0].sigmoid_()
            for k, j in enumerate(ch):
                _act_(plan.acts[j], pg[:, k, 1])
            torch.lerp(hi.unsqueeze(1), pg[:, :, 1], pg[:, :, 0], out=outs[g][t])
        leaves = [_node_output(plan, outs_t, o0[t], j) for j in plan.leaves]
        out = hs[t + 1]
        if len(leaves) == 1:
            out.copy_(leaves[0])
        else:
            torch.add(leaves[0], leaves[1], out=out)
            for leaf in leaves[2:]:
                out.add_(leaf)
            out.mul_(inv_leaves)
        s = scale[t]
        torch.linalg.vector_norm(out, dim=1, keepdim=True, out=s)
        s.add_(_EPS).reciprocal_().mul_(HIDDEN_NORM_CLIP).clamp_(max=1.0)
        out.mul_(s)
    return hs, (p0, o0, ps, outs, scale)


def _backward(plan: _Plan, grad_raw: Tensor, hs: Tensor, bufs, w_h0: Tensor, weights: list[Tensor],
              needs: Sequence[bool]):
    """Gradients for ``(x_proj, h0, w_h0, *weights)`` given the gradient of the hidden states ``[T, N, H]``."""
    p0, o0, ps, outs, scale = bufs
    T, N, H = grad_raw.size(0), grad_raw.size(1), grad_raw.size(2)
    dp0 = torch.empty_like(p0)
    dps = [torch.empty_like(p) for p in ps]
    carry = grad_raw.new_zeros(N, H)
    inv_leaves = 1.0 / len(plan.leaves)
    leaf_set = set(plan.leaves)
    tmp = grad_raw.new_empty(N, H)
    clipped = (scale < 1.0).reshape(T, N).any(1).tolist()  # one device read for all steps, not one per step
    for t in range(T - 1, -1, -1):
        dh = carry.add_(grad_raw[t])
        s = scale[t]
        # clipped rows: h = out·s with s = c/|out|; d out = s·dh − s·(dh·h)/|h|²·h (h = the clipped output)
        if clipped[t]:
            h = hs[t + 1]
            dot = (dh * h).sum(1, keepdim=True)
            coef = torch.where(s < 1.0, dot / (h * h).sum(1, keepdim=True).clamp_min(_EPS), 0.0)
            dh = (dh - coef * h) * s
        d_leaf = dh * inv_leaves if len(plan.leaves) > 1 else dh
        dnode: dict[int, Tensor] = {}
        outs_t = [o[t] for o in outs]
        for g in range(len(plan.groups) - 1, -1, -1):
            i, ch = plan.groups[g]
            k = len(ch)
            pg, dpg = ps[g][t], dps[g][t]
            if k == 1:
                d = dnode.pop(ch[0], None) if ch[0] not in leaf_set else _plus(dnode.pop(ch[0], None), d_leaf)
                dk = d.unsqueeze(1)
            else:
                dk = torch.stack([_plus(dnode.pop(j, None), d_leaf if j in leaf_set else None) for j in ch], 1)
            hi = _node_output(plan, outs_t, o0[t], i)
            gate, cand = pg[:, :, 0], pg[:, :, 1]
            dcand = dk * gate  # d/d candidate output
            for kk, j in enumerate(ch):
                _act_backward(plan.acts[j], dcand[:, kk], cand[:, kk], dpg[:, kk, 1])
            torch.sub(cand, hi.unsqueeze(1), out=dpg[:, :, 0])
            dpg[:, :, 0].mul_(dk)
            torch.ops.aten.sigmoid_backward.grad_input(dpg[:, :, 0], gate, grad_input=dpg[:, :, 0])
            # d hi = Σ_k dk·(1 − gate) + dP·W
            direct = (dk - dcand).sum(1) if k > 1 else torch.sub(dk[:, 0], dcand[:, 0], out=tmp)
            d_hi = torch.addmm(direct, dpg.view(N, -1), weights[g])
            dnode[i] = d_hi if i not in dnode else dnode[i].add_(d_hi)
        d0 = _plus(dnode.pop(0, None), d_leaf if 0 in leaf_set else None)
        pt, dpt = p0[t], dp0[t]
        h = hs[t]
        dcand0 = d0 * pt[:, 0]
        _act_backward(plan.acts[0], dcand0, pt[:, 1], dpt[:, 1])
        torch.sub(pt[:, 1], h, out=dpt[:, 0])
        dpt[:, 0].mul_(d0)
        torch.ops.aten.sigmoid_backward.grad_input(dpt[:, 0], pt[:, 0], grad_input=dpt[:, 0])
        carry = torch.addmm(d0.sub_(dcand0), dpt.view(N, 2 * H), w_h0)
    g_x = dp0.view(T, N, 2 * H) if needs[0] else None
    g_h0 = carry if needs[1] else None
    flat0 = dp0.view(T * N, 2 * H)
    g_w0 = flat0.t() @ hs[:-1].reshape(T * N, H) if needs[2] else None
    g_ws: list[Tensor | None] = []
    for g, (i, _) in enumerate(plan.groups):
        if not needs[3 + g]:
            g_ws.append(None)
            continue
        hi = _node_output(plan, outs, o0, i).reshape(T * N, H)
        g_ws.append(dps[g].view(T * N, -1).t() @ hi)
    return g_x, g_h0, g_w0, g_ws


def _plus(a: Tensor | None, b: Tensor | None) -> Tensor:
    """``a + b`` where either may be missing (a node's gradient from its children and from the output)."""
    if a is None:
        return b
    return a if b is None else a + b


class _Unroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan: _Plan, x_proj: Tensor, h0: Tensor, w_h0: Tensor, *weights: Tensor) -> Tensor:  # noqa: D102
        hs, bufs = _forward(plan, x_proj, h0, w_h0, list(weights))
        ctx.plan, ctx.bufs = plan, bufs
        ctx.save_for_backward(hs, w_h0, *weights)
        return hs[1:]

    @staticmethod
    def backward(ctx, grad_raw: Tensor):  # noqa: D102
        hs, w_h0, *weights = ctx.saved_tensors
        g_x, g_h0, g_w0, g_ws = _backward(ctx.plan, grad_raw.contiguous(), hs, ctx.bufs, w_h0, weights,
                                          ctx.needs_input_grad[1:])
        ctx.bufs = None
        return (None, g_x, g_h0, g_w0, *g_ws)


class _UnrollCpp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan: _Plan, x_proj: Tensor, h0: Tensor, w_h0: Tensor, *weights: Tensor) -> Tensor:  # noqa: D102
        ops = cpp_ops.load()
        keep = any(ctx.needs_input_grad)  # False: no backward follows, the C++ loop keeps no intermediates
        bufs = ops.rnn_cell_forward(x_proj, h0, w_h0, list(weights), plan.codes, plan.flat, plan.leaves, keep)
        ctx.plan, ctx.bufs = plan, bufs
        ctx.save_for_backward(w_h0, *weights)
        return bufs[0][1:]

    @staticmethod
    def backward(ctx, grad_raw: Tensor):  # noqa: D102
        w_h0, *weights = ctx.saved_tensors
        plan, (hs, p0, o0, scale, *rest) = ctx.plan, ctx.bufs
        n = len(plan.groups)
        grads = cpp_ops.load().rnn_cell_backward(grad_raw.contiguous(), hs, p0, o0, scale, rest[:n], rest[n:], w_h0,
                                             list(weights), plan.codes, plan.flat, plan.leaves)
        ctx.bufs = None
        return (None, *grads)


IMPLS = ("auto", "cpp", "python", "reference")



def group_weights(arch: RnnArch, edge: Callable[[int, int], Tensor]) -> list[Tensor]:
    """One weight per parent (its children's ``[2H, H]`` edges stacked, in child order)."""
    out = []
    for i, ch in enumerate(arch.children()):
        if ch:
            out.append(torch.cat([edge(i, j) for j in ch], 0) if len(ch) > 1 else edge(i, ch[0]))
    return out


def unroll(x_proj: Tensor, h0: Tensor, w_h0: Tensor, arch: RnnArch, edge: Callable[[int, int], Tensor],
           impl: str = "auto") -> Tensor:
    """Hidden states ``[T, N, H]`` of the cell over ``x_proj [T, N, 2H]`` from ``h0 [N, H]``.

    ``impl``: ``cpp`` (the compiled loop; float32 on the CPU), ``python`` (the same hand-written
    backward in torch ops, any device and dtype), ``reference`` (plain autograd), or ``auto`` — the C++
    build where it applies and could be built, else the Python one.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r}: must be one of {', '.join(IMPLS)}")
    if impl == "reference":
        return unroll_reference(x_proj, h0, w_h0, arch, edge)
    weights = group_weights(arch, edge)
    x_proj, h0, w_h0 = x_proj.contiguous(), h0.contiguous(), w_h0.contiguous()
    use_cpp = impl == "cpp" or (impl == "auto" and cpp_ops.applies(x_proj, h0, w_h0) and cpp_ops.load() is not None)
    if use_cpp:
        if not cpp_ops.applies(x_proj, h0, w_h0) or cpp_ops.load() is None:
            raise RuntimeError(f"impl='cpp' needs float32 CPU tensors and the C++ build "
                               f"({cpp_ops.STATUS.get('reason', 'not built')})")
        weights = [w.contiguous() for w in weights]
        return _UnrollCpp.apply(_plan(arch), x_proj, h0, w_h0, *weights)
    return _Unroll.apply(_plan(arch), x_proj, h0, w_h0, *weights)


def unroll_reference(x_proj: Tensor, h: Tensor, w_h0: Tensor, arch: RnnArch,
                     edge: Callable[[int, int], Tensor]) -> Tensor:
    """The same cell in plain autograd ops: the definition the fast path is tested against."""
    H = h.size(1)
    acts = [ACTIVATIONS[a] for a in arch.activations]
    children = arch.children()
    grouped = dict(zip([i for i, ch in enumerate(children) if ch], group_weights(arch, edge), strict=True))
    leaves = arch.leaves()
    outs = []
    # unbind/chunk/split (not indexing) so backward stacks the pieces instead of zero-filling
    # a full-size gradient for every slice
    for x_t in x_proj.unbind(0):
        c_pre, h_pre = torch.addmm(x_t, h, w_h0.t()).chunk(2, dim=1)
        c = torch.sigmoid(c_pre)
        nodes: list[Tensor | None] = [None] * arch.num_blocks
        nodes[0] = h + c * (acts[0](h_pre) - h)
        for i, ch in enumerate(children):
            if not ch:
                continue
            hi = nodes[i]
            parts = (hi @ grouped[i].t()).split(H, dim=1)
            for k, j in enumerate(ch):
                cj = torch.sigmoid(parts[2 * k])
                nodes[j] = hi + cj * (acts[j](parts[2 * k + 1]) - hi)
        out = nodes[leaves[0]] if len(leaves) == 1 else torch.stack([nodes[i] for i in leaves]).mean(0)
        norm = out.norm(dim=1, keepdim=True)
        h = out * torch.clamp(HIDDEN_NORM_CLIP / (norm + _EPS), max=1.0)
        outs.append(h)
    return torch.stack(outs)
