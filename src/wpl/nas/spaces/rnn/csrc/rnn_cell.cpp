// The ENAS recurrent cell unrolled over a sequence, forward and hand-written backward, on the CPU
// in float32: the same buffers and arithmetic as wpl/nas/rnn_cell.py's Python fast path, with the
// per-node elementwise work fused into one vectorised loop and the loop over time and nodes in C++.
// Built on first use by wpl/nas/cpp_ops.py (torch.utils.cpp_extension); registered as
// torch.ops.wpl.rnn_cell_forward / rnn_cell_backward.
//
// Layouts (T steps, N rows, H hidden, a parent with k children):
//   hs [T+1, N, H]   hidden states (hs[0] = h0), after the norm clip
//   p0 [T, N, 2, H]  node 0's gate (sigmoid applied) and candidate (activation applied)
//   o0 [T, N, H]     node 0's output
//   ps[g] [T, N, k, 2, H], outs[g] [T, N, k, H]   the same for the children of group g's parent
//   scale [T, N, 1]  the clip factor min(1, 25 / (|out| + 1e-12))
// Activation codes: 0 tanh, 1 relu, 2 identity, 3 sigmoid.
// plan = [num_groups, then per group: parent, k, child_1..child_k], leaves = the loose ends.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

// glibc's vector math library (libmvec) holds SIMD variants of tanhf; declaring them lets the
// compiler vectorise the loops below without -ffast-math.
extern "C" float tanhf(float) noexcept __attribute__((simd("notinbranch")));

namespace {

using at::Tensor;
constexpr float kClip = 25.0f;
constexpr float kEps = 1e-12f;
constexpr int64_t kGrain = 16;  // rows per thread chunk of the elementwise loops

inline float sigm(float x) { return 0.5f + 0.5f * tanhf(0.5f * x); }

struct Plan {
  std::vector<int64_t> acts;
  std::vector<int64_t> parent;                 // per group
  std::vector<std::vector<int64_t>> children;  // per group
  std::vector<std::pair<int64_t, int64_t>> where;  // node -> (group, slot); node 0 -> (-1, 0)
  std::vector<int64_t> leaves;

  Plan(const std::vector<int64_t>& a, const std::vector<int64_t>& flat, const std::vector<int64_t>& lv)
      : acts(a), where(a.size(), {-1, 0}), leaves(lv) {
    TORCH_CHECK(!flat.empty(), "empty plan");
    size_t pos = 1;
    for (int64_t g = 0; g < flat[0]; ++g) {
      parent.push_back(flat[pos]);
      int64_t k = flat[pos + 1];
      std::vector<int64_t> ch(flat.begin() + pos + 2, flat.begin() + pos + 2 + k);
      for (int64_t s = 0; s < k; ++s) where[ch[s]] = {g, s};
      children.push_back(ch);
      pos += 2 + k;
    }
    TORCH_CHECK(!leaves.empty(), "a cell needs at least one loose end");
  }
  int64_t groups() const { return static_cast<int64_t>(parent.size()); }
};

// ---- fused elementwise kernels (one row of H values) --------------------------------------

template <int A>
inline float act(float x) {
  if constexpr (A == 0) return tanhf(x);
  else if constexpr (A == 1) return x > 0.f ? x : 0.f;
  else if constexpr (A == 2) return x;
  else return sigm(x);
}

template <int A>
inline float act_grad(float y) {  // f'(x) from y = f(x)
  if constexpr (A == 0) return 1.f - y * y;
  else if constexpr (A == 1) return y > 0.f ? 1.f : 0.f;
  else if constexpr (A == 2) return 1.f;
  else return y * (1.f - y);
}

// gate/cand hold pre-activations in, post-activations out; out = hi + gate * (cand - hi)
template <int A>
void node_fwd(float* __restrict gate, float* __restrict cand, const float* __restrict hi,
              float* __restrict out, int64_t H) {
  for (int64_t h = 0; h < H; ++h) {
    const float c = sigm(gate[h]);
    const float g = act<A>(cand[h]);
    gate[h] = c;
    cand[h] = g;
    out[h] = hi[h] + c * (g - hi[h]);
  }
}

// d: gradient of the node's output; writes the gradients of its gate and candidate
// pre-activations, and writes (First) or adds d * (1 - gate) into dhi
template <int A, bool First>
void node_bwd(const float* __restrict d, const float* __restrict gate, const float* __restrict cand,
              const float* __restrict hi, float* __restrict dgate, float* __restrict dcand,
              float* __restrict dhi, int64_t H) {
  for (int64_t h = 0; h < H; ++h) {
    const float c = gate[h], g = cand[h], dh = d[h];
    const float dc = dh * c;
    dcand[h] = dc * act_grad<A>(g);
    dgate[h] = dh * (g - hi[h]) * c * (1.f - c);
    if constexpr (First) dhi[h] = dh - dc;
    else dhi[h] += dh - dc;
  }
}

void fwd_row(int64_t a, float* gate, float* cand, const float* hi, float* out, int64_t H) {
  switch (a) {
    case 0: node_fwd<0>(gate, cand, hi, out, H); break;
    case 1: node_fwd<1>(gate, cand, hi, out, H); break;
    case 2: node_fwd<2>(gate, cand, hi, out, H); break;
    default: node_fwd<3>(gate, cand, hi, out, H);
  }
}

template <bool First>
void bwd_row_(int64_t a, const float* d, const float* gate, const float* cand, const float* hi, float* dgate,
              float* dcand, float* dhi, int64_t H) {
  switch (a) {
    case 0: node_bwd<0, First>(d, gate, cand, hi, dgate, dcand, dhi, H); break;
    case 1: node_bwd<1, First>(d, gate, cand, hi, dgate, dcand, dhi, H); break;
    case 2: node_bwd<2, First>(d, gate, cand, hi, dgate, dcand, dhi, H); break;
    default: node_bwd<3, First>(d, gate, cand, hi, dgate, dcand, dhi, H);
  }
}

// first = true: dhi is written (the first contribution to it), else accumulated
void bwd_row(bool first, int64_t a, const float* d, const float* gate, const float* cand, const float* hi,
             float* dgate, float* dcand, float* dhi, int64_t H) {
  if (first) bwd_row_<true>(a, d, gate, cand, hi, dgate, dcand, dhi, H);
  else bwd_row_<false>(a, d, gate, cand, hi, dgate, dcand, dhi, H);
}

// a node's output at step t: base pointer and row stride
struct Rows {
  float* ptr;
  int64_t stride;
};

Rows node_rows(const Plan& p, int64_t j, int64_t t, const Tensor& o0, const std::vector<Tensor>& outs,
               int64_t N, int64_t H) {
  if (j == 0) return {o0.data_ptr<float>() + t * N * H, H};
  auto [g, s] = p.where[j];
  const int64_t k = static_cast<int64_t>(p.children[g].size());
  return {outs[g].data_ptr<float>() + t * N * k * H + s * H, k * H};
}

Tensor rows_tensor(const Tensor& like, Rows r, int64_t N, int64_t H) {
  return at::from_blob(r.ptr, {N, H}, {r.stride, 1}, like.options());
}

void check_float(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(), name,
              " must be a contiguous float32 CPU tensor");
}

// ---- forward ------------------------------------------------------------------------------

std::vector<Tensor> cell_forward(const Tensor& x_proj, const Tensor& h0, const Tensor& w_h0,
                                 std::vector<Tensor> weights, std::vector<int64_t> acts,
                                 std::vector<int64_t> plan_flat, std::vector<int64_t> leaves, bool keep) {
  check_float(x_proj, "x_proj");
  check_float(h0, "h0");
  check_float(w_h0, "w_h0");
  for (auto& w : weights) check_float(w, "an edge weight");
  const Plan p(acts, plan_flat, leaves);
  const int64_t T = x_proj.size(0), N = x_proj.size(1), H = h0.size(1);
  auto opt = x_proj.options();
  Tensor hs = at::empty({T + 1, N, H}, opt);
  hs[0].copy_(h0);
  // keep = false (no backward will follow): one step of scratch, reused, instead of T steps kept
  // for the backward (tens of MB written to memory per call)
  const int64_t Tk = keep ? T : 1;
  Tensor p0 = at::empty({Tk, N, 2, H}, opt), o0 = at::empty({Tk, N, H}, opt), scale = at::empty({T, N, 1}, opt);
  std::vector<Tensor> ps, outs, wts;
  for (int64_t g = 0; g < p.groups(); ++g) {
    const int64_t k = static_cast<int64_t>(p.children[g].size());
    ps.push_back(at::empty({Tk, N, k, 2, H}, opt));
    outs.push_back(at::empty({Tk, N, k, H}, opt));
    wts.push_back(weights[g].t());
  }
  const Tensor wt0 = w_h0.t();
  const float inv_leaves = 1.0f / static_cast<float>(p.leaves.size());
  for (int64_t t = 0; t < T; ++t) {
    const int64_t tt = keep ? t : 0;  // where step t's intermediates live
    Tensor h = hs[t];
    Tensor pt = p0[tt].view({N, 2 * H});
    at::addmm_out(pt, x_proj[t], h, wt0);
    {
      float* base = pt.data_ptr<float>();
      const float* hp = h.data_ptr<float>();
      float* op = o0.data_ptr<float>() + tt * N * H;
      const int64_t a0 = p.acts[0];
      at::parallel_for(0, N, kGrain, [&](int64_t lo, int64_t hi_) {
        for (int64_t n = lo; n < hi_; ++n)
          fwd_row(a0, base + n * 2 * H, base + n * 2 * H + H, hp + n * H, op + n * H, H);
      });
    }
    for (int64_t g = 0; g < p.groups(); ++g) {
      const auto& ch = p.children[g];
      const int64_t k = static_cast<int64_t>(ch.size());
      Rows hi = node_rows(p, p.parent[g], tt, o0, outs, N, H);
      Tensor pg = ps[g][tt].view({N, k * 2 * H});
      at::mm_out(pg, rows_tensor(o0, hi, N, H), wts[g]);
      float* base = pg.data_ptr<float>();
      float* ob = outs[g].data_ptr<float>() + tt * N * k * H;
      at::parallel_for(0, N, kGrain, [&](int64_t lo, int64_t hi_) {
        for (int64_t n = lo; n < hi_; ++n)
          for (int64_t s = 0; s < k; ++s) {
            float* gate = base + (n * k + s) * 2 * H;
            fwd_row(p.acts[ch[s]], gate, gate + H, hi.ptr + n * hi.stride, ob + (n * k + s) * H, H);
          }
      });
    }
    // mean of the loose ends, then the norm clip
    float* out = hs.data_ptr<float>() + (t + 1) * N * H;
    float* sc = scale.data_ptr<float>() + t * N;
    std::vector<Rows> lv;
    for (int64_t j : p.leaves) lv.push_back(node_rows(p, j, tt, o0, outs, N, H));
    for (int64_t n = 0; n < N; ++n) {
      float* o = out + n * H;
      const float* first = lv[0].ptr + n * lv[0].stride;
      for (int64_t h = 0; h < H; ++h) o[h] = first[h];
      for (size_t l = 1; l < lv.size(); ++l) {
        const float* r = lv[l].ptr + n * lv[l].stride;
        for (int64_t h = 0; h < H; ++h) o[h] += r[h];
      }
      double sq = 0.0;
      for (int64_t h = 0; h < H; ++h) {
        if (lv.size() > 1) o[h] *= inv_leaves;
        sq += static_cast<double>(o[h]) * o[h];
      }
      const float s = std::min(1.0f, kClip / (static_cast<float>(std::sqrt(sq)) + kEps));
      sc[n] = s;
      if (s < 1.0f)
        for (int64_t h = 0; h < H; ++h) o[h] *= s;
    }
  }
  std::vector<Tensor> result{hs, p0, o0, scale};
  result.insert(result.end(), ps.begin(), ps.end());
  result.insert(result.end(), outs.begin(), outs.end());
  return result;
}

// ---- backward -----------------------------------------------------------------------------

// returns [grad x_proj, grad h0, grad w_h0, grad weight per group...]
std::vector<Tensor> cell_backward(const Tensor& grad_raw, const Tensor& hs, const Tensor& p0, const Tensor& o0,
                                  const Tensor& scale, std::vector<Tensor> ps, std::vector<Tensor> outs,
                                  const Tensor& w_h0, std::vector<Tensor> weights, std::vector<int64_t> acts,
                                  std::vector<int64_t> plan_flat, std::vector<int64_t> leaves) {
  check_float(grad_raw, "grad_raw");
  const Plan p(acts, plan_flat, leaves);
  const int64_t T = grad_raw.size(0), N = grad_raw.size(1), H = grad_raw.size(2);
  const int64_t B = static_cast<int64_t>(p.acts.size());
  auto opt = grad_raw.options();
  Tensor dp0 = at::empty_like(p0);
  std::vector<Tensor> dps;
  for (auto& b : ps) dps.push_back(at::empty_like(b));
  Tensor carry = at::zeros({N, H}, opt);
  Tensor dnode = at::empty({B, N, H}, opt);
  Tensor dh = at::empty({N, H}, opt);
  const float inv_leaves = 1.0f / static_cast<float>(p.leaves.size());
  float* dn = dnode.data_ptr<float>();
  for (int64_t t = T - 1; t >= 0; --t) {
    // every node's gradient has one source: the output (a loose end) or its children (one group),
    // so each is written by its first contribution and dnode needs no zeroing
    // gradient of this step's clipped output: from the loss and from step t + 1
    const float* gr = grad_raw.data_ptr<float>() + t * N * H;
    const float* cr = carry.data_ptr<float>();
    const float* hrow = hs.data_ptr<float>() + (t + 1) * N * H;
    const float* sc = scale.data_ptr<float>() + t * N;
    float* d = dh.data_ptr<float>();
    for (int64_t n = 0; n < N; ++n) {
      float* dr = d + n * H;
      for (int64_t h = 0; h < H; ++h) dr[h] = gr[n * H + h] + cr[n * H + h];
      const float s = sc[n];
      if (s < 1.0f) {  // h = out·s, s = c/|out|:  d out = s·(dh − (dh·h) h / |h|²)
        const float* hr = hrow + n * H;
        double dot = 0.0, hh = 0.0;
        for (int64_t h = 0; h < H; ++h) {
          dot += static_cast<double>(dr[h]) * hr[h];
          hh += static_cast<double>(hr[h]) * hr[h];
        }
        const float coef = static_cast<float>(dot / std::max(hh, 1e-12));
        for (int64_t h = 0; h < H; ++h) dr[h] = s * (dr[h] - coef * hr[h]);
      }
    }
    const float lw = p.leaves.size() > 1 ? inv_leaves : 1.0f;
    for (int64_t j : p.leaves) {
      float* dj = dn + j * N * H;
      for (int64_t i = 0; i < N * H; ++i) dj[i] = lw * d[i];
    }
    for (int64_t g = p.groups() - 1; g >= 0; --g) {
      const auto& ch = p.children[g];
      const int64_t k = static_cast<int64_t>(ch.size());
      const int64_t i = p.parent[g];
      Rows hi = node_rows(p, i, t, o0, outs, N, H);
      const float* base = ps[g].data_ptr<float>() + t * N * k * 2 * H;
      float* dbase = dps[g].data_ptr<float>() + t * N * k * 2 * H;
      float* di = dn + i * N * H;
      at::parallel_for(0, N, kGrain, [&](int64_t lo, int64_t hi_) {
        for (int64_t n = lo; n < hi_; ++n)
          for (int64_t s = 0; s < k; ++s) {
            const int64_t off = (n * k + s) * 2 * H;
            bwd_row(s == 0, p.acts[ch[s]], dn + ch[s] * N * H + n * H, base + off, base + off + H,
                    hi.ptr + n * hi.stride, dbase + off, dbase + off + H, di + n * H, H);
          }
      });
      Tensor dig = dnode[i];
      dig.addmm_(dps[g][t].view({N, k * 2 * H}), weights[g]);
    }
    // node 0: its input is h[t-1]; what reaches h[t-1] is the next carry
    {
      const float* base = p0.data_ptr<float>() + t * N * 2 * H;
      float* dbase = dp0.data_ptr<float>() + t * N * 2 * H;
      const float* hp = hs.data_ptr<float>() + t * N * H;
      Tensor next = at::empty({N, H}, opt);
      float* nx = next.data_ptr<float>();
      const int64_t a0 = p.acts[0];
      at::parallel_for(0, N, kGrain, [&](int64_t lo, int64_t hi_) {
        for (int64_t n = lo; n < hi_; ++n)
          bwd_row(true, a0, dn + n * H, base + n * 2 * H, base + n * 2 * H + H, hp + n * H, dbase + n * 2 * H,
                  dbase + n * 2 * H + H, nx + n * H, H);
      });
      next.addmm_(dp0[t].view({N, 2 * H}), w_h0);
      carry = next;
    }
  }
  Tensor flat0 = dp0.view({T * N, 2 * H});
  std::vector<Tensor> result{dp0.view({T, N, 2 * H}), carry, at::mm(flat0.t(), hs.narrow(0, 0, T).reshape({T * N, H}))};
  for (int64_t g = 0; g < p.groups(); ++g) {
    const int64_t k = static_cast<int64_t>(p.children[g].size());
    const int64_t i = p.parent[g];
    Tensor hi_all;
    if (i == 0) {
      hi_all = o0.view({T * N, H});
    } else {
      auto [pg, s] = p.where[i];
      hi_all = outs[pg].select(2, s).reshape({T * N, H});
    }
    result.push_back(at::mm(dps[g].view({T * N, k * 2 * H}).t(), hi_all));
  }
  return result;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(wpl, m) {
  m.def("rnn_cell_forward(Tensor x_proj, Tensor h0, Tensor w_h0, Tensor[] weights, int[] acts, int[] plan, int[] leaves, bool keep) -> Tensor[]",
        &cell_forward);
  m.def("rnn_cell_backward(Tensor grad_raw, Tensor hs, Tensor p0, Tensor o0, Tensor scale, Tensor[] ps, Tensor[] outs, "
        "Tensor w_h0, Tensor[] weights, int[] acts, int[] plan, int[] leaves) -> Tensor[]",
        &cell_backward);
}
