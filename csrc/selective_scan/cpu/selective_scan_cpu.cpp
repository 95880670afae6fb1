// CPU kernels of the d_state = 1 selective scan and of the fused MS2D half-resolution scan, forward and backward.
//
// Layout: channels-last. The kernels read u, delta as (batch, position, channel) and B, C as (batch, position,
// group) (make_problem moves the channel axis last; a no-op for the channels-last maps the model produces), and
// return outputs and gradients in that memory layout, viewed with the logical shapes. A task owns kLanes neighbouring channels of one batch element: every load of a position is kLanes
// contiguous values, one SIMD register wide, so the recurrence advances kLanes channels per step with no
// transposition.
//
// Work split: at::parallel_for over the (batch, channel block) tasks. Each scan step loads its position's lanes,
// computes dt and exp(dt A) in SIMD registers and advances the recurrence; only h carries from step to step, so
// the out-of-order core overlaps the transcendentals of later steps with it. The half-resolution op reads positions
// through a table of route offsets (half_res_offset) and adds the three routes into one output plane (or writes
// them to three), so no permuted copies are made. Inputs of any floating dtype are computed in float32 (float64 for
// float64).
//
// Backward, per task: a forward pass recomputes and keeps h_t ((seqlen + 1) * kLanes values), then a reverse pass
// runs g_t = C_t dy_t + a_{t+1} g_{t+1} (dL/dh_t) and forms every gradient from g, h_{t-1} and the inputs:
//   du = D dy + g dt B     dB = g dt u     dC = dy h     dD = sum dy u
//   d(dt) = g (B u + A a h_{t-1})   dA = sum g dt a h_{t-1}   ddelta = d(dt) softplus'   ddelta_bias = sum ddelta
// dB and dC are written per channel and summed over the channels of a group afterwards (no write races).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../scan_ops.h"
#include "vec_math.h"

namespace mmmsvmamba {
namespace {

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
// An AVX2+FMA copy of each task function (MMMSVMAMBA_TASK_ENTRIES below), picked at load time on CPUs that have
// it. Everything a task calls is forced inline, so the whole task is compiled for the picked target.
#define MMMSVMAMBA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MMMSVMAMBA_CPU_CLONES
#endif
#define MMMSVMAMBA_INLINE inline __attribute__((always_inline))

// Gradient sums (dA, dD, ddelta_bias) are added up in SIMD lanes of acc_t for this many steps, then in double.
constexpr int64_t kSumBlock = 256;

template <typename acc_t>
struct LanesOf;
template <>
struct LanesOf<float> {
  using type = FloatLanes;
};
template <>
struct LanesOf<double> {
  using type = DoubleLanes;
};
template <typename acc_t>
using Lanes = typename LanesOf<acc_t>::type;

// The first n of kLanes values at src as acc_t lanes (zeros after them).
template <typename acc_t, typename src_t>
MMMSVMAMBA_INLINE Lanes<acc_t> load_lanes(const src_t* src, int n) {
  Lanes<acc_t> v = {};
  if constexpr (std::is_same_v<src_t, acc_t>) {
    if (n == kLanes) {
      std::memcpy(&v, src, sizeof(v));
      return v;
    }
  }
  for (int k = 0; k < n; ++k) v[k] = static_cast<acc_t>(src[k]);
  return v;
}

// Writes (or adds) the first n lanes of v to dst.
template <typename acc_t>
MMMSVMAMBA_INLINE void store_lanes(acc_t* dst, int n, Lanes<acc_t> v, bool accumulate) {
  if (n == kLanes) {
    if (accumulate) v += load_lanes<acc_t>(dst, kLanes);
    std::memcpy(dst, &v, sizeof(v));
    return;
  }
  for (int k = 0; k < n; ++k) dst[k] = accumulate ? dst[k] + v[k] : v[k];
}

// Where scan step t of a batch element reads and writes, in positions (multiples of dim elements):
// input position b * plane + in_pos(t) and output position b * out_batch + out_pos(t).
struct StepMap {
  const int64_t* in = nullptr;   // null: t itself
  const int64_t* out = nullptr;  // null: in_pos(t)
  bool accumulate_in = false;    // several steps read one position (routes): their gradients add up
  bool accumulate_out = false;   // several steps write one output position (summed routes)
  int64_t out_batch = 0;
  int64_t in_pos(int64_t t) const { return in ? in[t] : t; }
  int64_t out_pos(int64_t t) const { return out ? out[t] : in_pos(t); }
};

// One task: channels [d0, d0 + n) of batch element b, n <= kLanes. Lanes past n repeat channel d0 + n - 1's
// parameters (their inputs are zero); their results are dropped.
template <typename acc_t>
struct Task {
  int64_t b, d0;
  int n;
  Lanes<acc_t> A, D, bias;
  int64_t group[kLanes];
  bool one_group;  // all lanes in one group of B / C (always, for MSVMamba's single group)
};

// The discretised inputs of one step: u, x = delta + bias, dt = softplus(x) (or x), a = exp(dt A), B and C.
template <typename acc_t>
struct Step {
  Lanes<acc_t> u, x, dt, a, B, C;
};

template <typename in_t, typename acc_t>
struct ScanData {
  const in_t *u, *delta, *B, *C;  // channels-last: u[(b * plane + p) * dim + d], B[(b * plane + p) * groups + g]
  const acc_t *A, *D, *bias;      // D and bias may be null
  int64_t batch, dim, groups, plane, seqlen;
  bool softplus;

  int64_t blocks() const { return (dim + kLanes - 1) / kLanes; }

  MMMSVMAMBA_INLINE Task<acc_t> task(int64_t index) const {
    Task<acc_t> t;
    t.b = index / blocks();
    t.d0 = index % blocks() * kLanes;
    t.n = static_cast<int>(std::min<int64_t>(kLanes, dim - t.d0));
    const int64_t group_size = dim / groups;
    for (int k = 0; k < kLanes; ++k) {
      const int64_t d = t.d0 + std::min(k, t.n - 1);
      t.A[k] = A[d];
      t.D[k] = D ? D[d] : acc_t(0);
      t.bias[k] = bias ? bias[d] : acc_t(0);
      t.group[k] = d / group_size;
    }
    t.one_group = t.group[0] == t.group[kLanes - 1];
    return t;
  }

  // The step reading plane position `pos` (C only if with_C).
  MMMSVMAMBA_INLINE Step<acc_t> step(const Task<acc_t>& task, int64_t pos, bool with_C) const {
    const int64_t at = task.b * plane + pos;
    Step<acc_t> s;
    s.u = load_lanes<acc_t>(u + at * dim + task.d0, task.n);
    s.x = load_lanes<acc_t>(delta + at * dim + task.d0, task.n) + task.bias;
    s.dt = softplus ? cpu_math::softplus(s.x) : s.x;
    s.a = cpu_math::exp(s.dt * task.A);
    s.B = group_lanes(B + at * groups, task);
    if (with_C) s.C = group_lanes(C + at * groups, task);
    return s;
  }

  MMMSVMAMBA_INLINE Lanes<acc_t> group_lanes(const in_t* src, const Task<acc_t>& task) const {
    Lanes<acc_t> v = {};
    if (task.one_group) return v + static_cast<acc_t>(src[task.group[0]]);
    for (int k = 0; k < kLanes; ++k) v[k] = static_cast<acc_t>(src[task.group[k]]);
    return v;
  }
};

template <typename in_t, typename acc_t>
MMMSVMAMBA_INLINE void scan_fwd_task(const ScanData<in_t, acc_t>& s, const StepMap& map, acc_t* out, int64_t index) {
  const auto task = s.task(index);
  Lanes<acc_t> h = {};
  for (int64_t t = 0; t < s.seqlen; ++t) {
    const auto in = s.step(task, map.in_pos(t), true);
    h = in.a * h + in.dt * in.B * in.u;
    const int64_t pos = task.b * map.out_batch + map.out_pos(t);
    store_lanes(out + pos * s.dim + task.d0, task.n, in.C * h + task.D * in.u, map.accumulate_out);
  }
}

// Gradient buffers in the compute dtype, channels-last like the inputs: du, ddelta, dB, dC are (batch, plane, dim)
// (dB, dC per channel, summed over each group afterwards); dA, dD, dbias are (batch, dim).
template <typename acc_t>
struct GradBuffers {
  acc_t *du, *ddelta, *dB, *dC, *dA, *dD, *dbias;
};

template <typename in_t, typename acc_t>
MMMSVMAMBA_INLINE void scan_bwd_task(const ScanData<in_t, acc_t>& s, const StepMap& map, const acc_t* dout,
                                     const GradBuffers<acc_t>& gb, std::vector<acc_t>& hs, int64_t index) {
  const auto task = s.task(index);
  // hs[(t + 1) * kLanes + k] = h_t of lane k; hs[k] = h_{-1} = 0
  hs.resize((s.seqlen + 1) * kLanes);
  Lanes<acc_t> h = {};
  std::memcpy(hs.data(), &h, sizeof(h));
  for (int64_t t = 0; t < s.seqlen; ++t) {
    const auto in = s.step(task, map.in_pos(t), false);
    h = in.a * h + in.dt * in.B * in.u;
    std::memcpy(hs.data() + (t + 1) * kLanes, &h, sizeof(h));
  }

  Lanes<acc_t> q = {};  // a_{t+1} g_{t+1}: what flows back into step t from the later ones
  Lanes<acc_t> block_dA = {}, block_dD = {}, block_dbias = {};
  double sum_dA[kLanes] = {}, sum_dD[kLanes] = {}, sum_dbias[kLanes] = {};
  for (int64_t t = s.seqlen - 1; t >= 0; --t) {
    const int64_t pos = map.in_pos(t);
    const auto in = s.step(task, pos, true);
    const Lanes<acc_t> dsoftplus = s.softplus ? cpu_math::softplus_grad(in.x) : Lanes<acc_t>{} + acc_t(1);
    const Lanes<acc_t> dy =
        load_lanes<acc_t>(dout + (task.b * map.out_batch + map.out_pos(t)) * s.dim + task.d0, task.n);
    const Lanes<acc_t> g = in.C * dy + q;
    q = in.a * g;
    const Lanes<acc_t> h_prev = load_lanes<acc_t>(hs.data() + t * kLanes, kLanes);
    const Lanes<acc_t> h_t = load_lanes<acc_t>(hs.data() + (t + 1) * kLanes, kLanes);
    const Lanes<acc_t> gdt = g * in.dt, a_hprev = in.a * h_prev;
    const Lanes<acc_t> ddelta = g * (in.B * in.u + task.A * a_hprev) * dsoftplus;
    block_dA += gdt * a_hprev;
    block_dD += dy * in.u;
    block_dbias += ddelta;
    const int64_t offset = (task.b * s.plane + pos) * s.dim + task.d0;
    store_lanes(gb.du + offset, task.n, dy * task.D + gdt * in.B, map.accumulate_in);
    store_lanes(gb.ddelta + offset, task.n, ddelta, map.accumulate_in);
    store_lanes(gb.dB + offset, task.n, gdt * in.u, map.accumulate_in);
    store_lanes(gb.dC + offset, task.n, dy * h_t, map.accumulate_in);
    if (t % kSumBlock == 0) {
      for (int k = 0; k < kLanes; ++k) {
        sum_dA[k] += block_dA[k];
        sum_dD[k] += block_dD[k];
        sum_dbias[k] += block_dbias[k];
      }
      block_dA = block_dD = block_dbias = Lanes<acc_t>{};
    }
  }
  for (int k = 0; k < task.n; ++k) {
    const int64_t row = task.b * s.dim + task.d0 + k;
    gb.dA[row] = static_cast<acc_t>(sum_dA[k]);
    gb.dD[row] = static_cast<acc_t>(sum_dD[k]);
    gb.dbias[row] = static_cast<acc_t>(sum_dbias[k]);
  }
}

// The task entry points: one per input dtype, each cloned for AVX2 (float compute) so that the inlined task body is
// vectorised for the CPU it runs on. float64 is for gradcheck, not for speed: no clones.
#define MMMSVMAMBA_TASK_ENTRIES(in_t, acc_t, clones)                                                              \
  clones void fwd_task(const ScanData<in_t, acc_t>& s, const StepMap& map, acc_t* out, int64_t index) {           \
    scan_fwd_task(s, map, out, index);                                                                            \
  }                                                                                                               \
  clones void bwd_task(const ScanData<in_t, acc_t>& s, const StepMap& map, const acc_t* dout,                     \
                       const GradBuffers<acc_t>& gb, std::vector<acc_t>& hs, int64_t index) {                     \
    scan_bwd_task(s, map, dout, gb, hs, index);                                                                   \
  }
MMMSVMAMBA_TASK_ENTRIES(float, float, MMMSVMAMBA_CPU_CLONES)
MMMSVMAMBA_TASK_ENTRIES(at::Half, float, MMMSVMAMBA_CPU_CLONES)
MMMSVMAMBA_TASK_ENTRIES(at::BFloat16, float, MMMSVMAMBA_CPU_CLONES)
MMMSVMAMBA_TASK_ENTRIES(double, double, )
#undef MMMSVMAMBA_TASK_ENTRIES

// Route tables of the half-resolution layout (see selective_scan.h): `in` the plane position of each step, and for
// stacked output `out` its position in the (3, Hb, Wb) output of a batch element.
struct HalfResTables {
  std::vector<int64_t> in, out;
};

HalfResTables half_res_tables(const ScanProblem& p) {
  HalfResTables tables;
  tables.in.resize(p.seqlen);
  for (int64_t t = 0; t < p.seqlen; ++t) tables.in[t] = half_res_offset(t, p.height, p.width);
  if (!p.sum_routes) {
    tables.out.resize(p.seqlen);
    for (int64_t t = 0; t < p.seqlen; ++t) tables.out[t] = (t / p.plane) * p.plane + tables.in[t];
  }
  return tables;
}

StepMap step_map(const ScanProblem& p, const HalfResTables& tables) {
  StepMap map;
  map.out_batch = p.seqlen;  // sequence: one output per step; stacked routes: 3 planes
  if (!p.half_res) return map;
  map.in = tables.in.data();
  map.accumulate_in = true;
  if (p.sum_routes) {
    map.accumulate_out = true;
    map.out_batch = p.plane;
  } else {
    map.out = tables.out.data();
  }
  return map;
}

template <typename in_t, typename acc_t>
ScanData<in_t, acc_t> scan_data(const ScanProblem& p) {
  return {p.u.data_ptr<in_t>(),
          p.delta.data_ptr<in_t>(),
          p.B.data_ptr<in_t>(),
          p.C.data_ptr<in_t>(),
          p.A.data_ptr<acc_t>(),
          p.D.defined() ? p.D.data_ptr<acc_t>() : nullptr,
          p.delta_bias.defined() ? p.delta_bias.data_ptr<acc_t>() : nullptr,
          p.batch,
          p.dim,
          p.groups,
          p.plane,
          p.seqlen,
          p.delta_softplus};
}

// Tasks per parallel chunk: enough scanned values that a chunk outweighs its scheduling. A scanned value costs
// several times an elementwise op, so the grain is far below at::internal::GRAIN_SIZE (which would leave, e.g.,
// the 768 channels x 49 positions of a 7x7 stage in one chunk for two threads).
constexpr int64_t kGrainValues = 16384;

int64_t tasks_per_chunk(const ScanProblem& p) {
  return std::max<int64_t>(1, kGrainValues / std::max<int64_t>(1, p.seqlen * kLanes));
}

at::Tensor scan_fwd(const ScanProblem& p, bool out_float) {
  const auto tables = p.half_res ? half_res_tables(p) : HalfResTables{};
  const StepMap map = step_map(p, tables);
  // Summed routes accumulate into the output, so it starts at zero; every other layout writes each element once.
  at::Tensor out = p.empty_output(p.u.options().dtype(p.compute_dtype()), map.accumulate_out);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.u.scalar_type(), "selective_scan_fwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto data = scan_data<scalar_t, acc_t>(p);
    acc_t* out_ptr = out.data_ptr<acc_t>();
    at::parallel_for(0, p.batch * data.blocks(), tasks_per_chunk(p), [&](int64_t begin, int64_t end) {
      for (int64_t index = begin; index < end; ++index) fwd_task(data, map, out_ptr, index);
    });
  });
  return out_float ? out : out.to(p.u.scalar_type());
}

ScanGrads scan_bwd(const ScanProblem& p, const at::Tensor& dout) {
  const auto tables = p.half_res ? half_res_tables(p) : HalfResTables{};
  const StepMap map = step_map(p, tables);
  auto options = p.u.options().dtype(p.compute_dtype());
  const at::Tensor dy = p.dout_channels_last(dout, p.compute_dtype());
  // The routes of a half-res step add into the same plane positions, so those buffers start at zero.
  auto plane_buffer = [&] {
    return map.accumulate_in ? at::zeros({p.batch, p.plane, p.dim}, options)
                             : at::empty({p.batch, p.plane, p.dim}, options);
  };
  at::Tensor du = plane_buffer(), ddelta = plane_buffer(), dB_channels = plane_buffer(), dC_channels = plane_buffer();
  at::Tensor dA_rows = at::empty({p.batch, p.dim}, options), dD_rows = at::empty({p.batch, p.dim}, options),
             dbias_rows = at::empty({p.batch, p.dim}, options);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.u.scalar_type(), "selective_scan_bwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto data = scan_data<scalar_t, acc_t>(p);
    const GradBuffers<acc_t> buffers{du.data_ptr<acc_t>(),          ddelta.data_ptr<acc_t>(),
                                     dB_channels.data_ptr<acc_t>(), dC_channels.data_ptr<acc_t>(),
                                     dA_rows.data_ptr<acc_t>(),     dD_rows.data_ptr<acc_t>(),
                                     dbias_rows.data_ptr<acc_t>()};
    const acc_t* dy_ptr = dy.data_ptr<acc_t>();
    at::parallel_for(0, p.batch * data.blocks(), tasks_per_chunk(p), [&](int64_t begin, int64_t end) {
      std::vector<acc_t> hs;
      for (int64_t index = begin; index < end; ++index) bwd_task(data, map, dy_ptr, buffers, hs, index);
    });
  });
  // per-channel dB / dC -> per group: (batch, plane, groups, group_size) summed -> (batch, groups, plane)
  auto per_group = [&](const at::Tensor& channels) {
    return channels.view({p.batch, p.plane, p.groups, p.dim / p.groups}).sum(3).transpose(1, 2).contiguous();
  };
  ScanGrads g;
  g.du = p.like_input(du);
  g.ddelta = p.like_input(ddelta);
  g.dA = dA_rows.sum(0).view({p.dim, 1});
  g.dB = per_group(dB_channels);
  g.dC = per_group(dC_channels);
  g.dD = dD_rows.sum(0);
  g.ddelta_bias = dbias_rows.sum(0);
  return g;
}

// The backend of ScanOps (../scan_ops.h) on the CPU.
struct CpuBackend {
  static at::Tensor fwd(const char* /*op*/, const ScanProblem& p, bool out_float) { return scan_fwd(p, out_float); }
  static ScanGrads bwd(const char* /*op*/, const ScanProblem& p, const at::Tensor& dout) { return scan_bwd(p, dout); }
};

}  // namespace
}  // namespace mmmsvmamba

TORCH_LIBRARY_IMPL(mmmsvmamba, CPU, m) {
  using Ops = mmmsvmamba::ScanOps<mmmsvmamba::CpuBackend>;
  m.impl("selective_scan_fwd", &Ops::selective_scan_fwd);
  m.impl("selective_scan_bwd", &Ops::selective_scan_bwd);
  m.impl("ms2d_half_res_scan_fwd", &Ops::ms2d_half_res_scan_fwd);
  m.impl("ms2d_half_res_scan_bwd", &Ops::ms2d_half_res_scan_bwd);
}
