// CPU kernels of the d_state = 1 selective scan and of the fused MS2D half-resolution scan, forward and backward.
//
// Work split: at::parallel_for over the (batch, channel) rows. The forward scans kRows rows at once in tiles of
// kTile positions: a vectorised pass computes dt and exp(dt A) for the tile, then one SIMD step per position
// advances the kRows recurrences together. The backward scans one row at a time in blocks of kBlock positions.
// The half-resolution op reads its plane through a table of route offsets (half_res_offset) and adds the three
// routes into one output plane (or writes them to three), so no permuted copies are made. Inputs of any floating
// dtype are computed in float32 (float64 for float64).
//
// Backward, per row: a forward pass recomputes and keeps h_t (seqlen + 1 values per thread), then a reverse pass
// runs g_t = C_t dy_t + a_{t+1} g_{t+1} (dL/dh_t) and forms every gradient from g, h_{t-1} and the inputs:
//   du = D dy + g dt B     dB = g dt u     dC = dy h     dD = sum dy u
//   d(dt) = g (B u + A a h_{t-1})   dA = sum g dt a h_{t-1}   ddelta = d(dt) softplus'   ddelta_bias = sum ddelta
// dB and dC are summed over the channels of a group afterwards (per-row buffers: no write races).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <vector>

#include "../selective_scan.h"
#include "vec_math.h"

namespace mmmsvmamba {
namespace {

constexpr int64_t kBlock = 256;  // positions per block (backward): the block's buffers stay in L1
// The forward scans kRows rows together, in blocks of kTile positions stored position-major ([kTile][kRows]):
// each step of the recurrence then advances all kRows rows with one SIMD operation, instead of waiting for the
// latency of one row's multiply-add chain.
constexpr int kRows = 8;
constexpr int64_t kTile = 64;

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
// An AVX2+FMA copy of the transcendental pass, picked at load time on CPUs that have it (8 lanes instead of 4).
#define MMMSVMAMBA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MMMSVMAMBA_CPU_CLONES
#endif

// For n positions of kLanes interleaved rows ([n][kLanes], row r has bias[r] and A[r]):
// dt = softplus(delta + bias) (or delta + bias), a = exp(dt A) and, if dsoftplus is given, softplus'(delta + bias).
template <int kLanes, typename acc_t>
inline __attribute__((always_inline)) void discretize_impl(const acc_t* delta, const acc_t* bias, const acc_t* A,
                                                           bool softplus, int64_t n, acc_t* dt, acc_t* a,
                                                           acc_t* dsoftplus) {
  for (int64_t i = 0; i < n; ++i) {
    for (int r = 0; r < kLanes; ++r) dt[i * kLanes + r] = delta[i * kLanes + r] + bias[r];
  }
  if (dsoftplus) {
    for (int64_t i = 0; i < n * kLanes; ++i) dsoftplus[i] = softplus ? cpu_math::softplus_grad(dt[i]) : acc_t(1);
  }
  if (softplus) {
    for (int64_t i = 0; i < n * kLanes; ++i) dt[i] = cpu_math::softplus(dt[i]);
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int r = 0; r < kLanes; ++r) a[i * kLanes + r] = cpu_math::exp(dt[i * kLanes + r] * A[r]);
  }
}

MMMSVMAMBA_CPU_CLONES void discretize_rows(const float* delta, const float* bias, const float* A, bool softplus,
                                           int64_t n, float* dt, float* a) {
  discretize_impl<kRows>(delta, bias, A, softplus, n, dt, a, static_cast<float*>(nullptr));
}

void discretize_rows(const double* delta, const double* bias, const double* A, bool softplus, int64_t n, double* dt,
                     double* a) {
  discretize_impl<kRows>(delta, bias, A, softplus, n, dt, a, static_cast<double*>(nullptr));
}

MMMSVMAMBA_CPU_CLONES void discretize(const float* delta, float bias, float A, bool softplus, int64_t n, float* dt,
                                      float* a, float* dsoftplus) {
  discretize_impl<1>(delta, &bias, &A, softplus, n, dt, a, dsoftplus);
}

void discretize(const double* delta, double bias, double A, bool softplus, int64_t n, double* dt, double* a,
                double* dsoftplus) {
  discretize_impl<1>(delta, &bias, &A, softplus, n, dt, a, dsoftplus);
}

// Sum of n values with eight independent partial sums (vectorisable without reassociation flags).
template <typename acc_t>
double block_sum(const acc_t* v, int64_t n) {
  acc_t lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) lanes[j] += v[i + j];
  }
  double total = 0;
  for (; i < n; ++i) total += v[i];
  for (int j = 0; j < 8; ++j) total += lanes[j];
  return total;
}

// Where the scanned positions of a row are read from and written to. Offsets are relative to a row base;
// a null table means position t is element t.
struct RowMap {
  const int64_t* in = nullptr;   // into a (b, d) plane of u / delta and a (b, g) plane of B / C
  const int64_t* out = nullptr;  // into the output (and dout) row
  bool accumulate_in = false;    // several positions read one plane element (routes): their gradients add up
  bool accumulate_out = false;   // several positions write one output element (summed routes)
  int64_t out_row_stride = 0;    // output row base = b * out_batch_stride + d * out_row_stride
  int64_t out_batch_stride = 0;
};

// Positions [t0, t0 + n) of a row into dst[i * stride], as acc_t.
template <typename src_t, typename acc_t>
inline void gather(const src_t* src, const int64_t* offset, int64_t t0, int64_t n, acc_t* dst, int stride = 1) {
  if (offset) {
    for (int64_t i = 0; i < n; ++i) dst[i * stride] = static_cast<acc_t>(src[offset[t0 + i]]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * stride] = static_cast<acc_t>(src[t0 + i]);
  }
}

template <typename acc_t>
inline void scatter(acc_t* dst, const int64_t* offset, bool accumulate, int64_t t0, int64_t n, const acc_t* src,
                    int stride = 1) {
  if (!offset) {
    for (int64_t i = 0; i < n; ++i) dst[t0 + i] = src[i * stride];
  } else if (accumulate) {
    for (int64_t i = 0; i < n; ++i) dst[offset[t0 + i]] += src[i * stride];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[offset[t0 + i]] = src[i * stride];
  }
}

template <typename in_t, typename acc_t>
struct Rows {
  const in_t *u, *delta, *B, *C;
  const acc_t *A, *D, *bias;  // D and bias may be null
  int64_t dim, groups, plane, seqlen;
  bool softplus;

  int64_t bc_base(int64_t row) const {  // start of the (b, g) plane of B and C for row (b, d)
    const int64_t b = row / dim, d = row % dim;
    return (b * groups + d / (dim / groups)) * plane;
  }
  int64_t out_base(const RowMap& map, int64_t row) const {
    return (row / dim) * map.out_batch_stride + (row % dim) * map.out_row_stride;
  }
};

// kRows values of acc_t as one SIMD value (GCC / Clang vector extension; the attribute needs a concrete type).
template <typename acc_t>
struct RowLanesOf;
template <>
struct RowLanesOf<float> {
  typedef float type __attribute__((vector_size(kRows * sizeof(float))));
};
template <>
struct RowLanesOf<double> {
  typedef double type __attribute__((vector_size(kRows * sizeof(double))));
};
template <typename acc_t>
using RowLanes = typename RowLanesOf<acc_t>::type;

template <typename in_t, typename acc_t>
void scan_fwd_rows(const Rows<in_t, acc_t>& r, const RowMap& map, acc_t* out, int64_t row_begin, int64_t row_end) {
  alignas(64) acc_t ub[kTile * kRows], db[kTile * kRows], bb[kTile * kRows], cb[kTile * kRows], dt[kTile * kRows],
      a[kTile * kRows], y[kTile * kRows];
  for (int64_t row0 = row_begin; row0 < row_end; row0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, row_end - row0));
    // lanes past the last row repeat it; their results are dropped
    const in_t *u[kRows], *delta[kRows], *B[kRows], *C[kRows];
    acc_t A[kRows], Dv[kRows], bias[kRows], h[kRows];
    acc_t* out_row[kRows];
    for (int k = 0; k < kRows; ++k) {
      const int64_t row = row0 + std::min(k, rows - 1), d = row % r.dim;
      u[k] = r.u + row * r.plane;
      delta[k] = r.delta + row * r.plane;
      B[k] = r.B + r.bc_base(row);
      C[k] = r.C + r.bc_base(row);
      A[k] = r.A[d];
      Dv[k] = r.D ? r.D[d] : acc_t(0);
      bias[k] = r.bias ? r.bias[d] : acc_t(0);
      out_row[k] = out + r.out_base(map, row);
      h[k] = 0;
    }
    for (int64_t t0 = 0; t0 < r.seqlen; t0 += kTile) {
      const int64_t n = std::min(kTile, r.seqlen - t0);
      for (int k = 0; k < kRows; ++k) {
        gather(u[k], map.in, t0, n, ub + k, kRows);
        gather(delta[k], map.in, t0, n, db + k, kRows);
        gather(B[k], map.in, t0, n, bb + k, kRows);
        gather(C[k], map.in, t0, n, cb + k, kRows);
      }
      discretize_rows(db, bias, A, r.softplus, n, dt, a);
      // one step for all rows at once (vector extension: GCC/Clang lower it to the widest SIMD available)
      RowLanes<acc_t> hv, Dl, av, dtv, bv, uv, cv, yv;
      std::memcpy(&hv, h, sizeof(hv));
      std::memcpy(&Dl, Dv, sizeof(Dl));
      for (int64_t i = 0; i < n; ++i) {
        const int64_t at = i * kRows;
        std::memcpy(&av, a + at, sizeof(av));
        std::memcpy(&dtv, dt + at, sizeof(dtv));
        std::memcpy(&bv, bb + at, sizeof(bv));
        std::memcpy(&uv, ub + at, sizeof(uv));
        std::memcpy(&cv, cb + at, sizeof(cv));
        hv = av * hv + dtv * bv * uv;
        yv = cv * hv + Dl * uv;
        std::memcpy(y + at, &yv, sizeof(yv));
      }
      std::memcpy(h, &hv, sizeof(hv));
      for (int k = 0; k < rows; ++k) scatter(out_row[k], map.out, map.accumulate_out, t0, n, y + k, kRows);
    }
  }
}

// Gradient buffers in the compute dtype: du, ddelta, dB_rows, dC_rows are (batch, dim, plane) (per-channel
// contributions to dB / dC, summed over the group later); dA, dD, dbias_rows are (batch, dim).
template <typename acc_t>
struct GradRows {
  acc_t *du, *ddelta, *dB, *dC, *dA, *dD, *dbias;
};

template <typename in_t, typename acc_t>
void scan_bwd_rows(const Rows<in_t, acc_t>& r, const RowMap& map, const acc_t* dout, const GradRows<acc_t>& gr,
                   int64_t row_begin, int64_t row_end) {
  acc_t ub[kBlock], db[kBlock], bb[kBlock], cb[kBlock], dyb[kBlock], dt[kBlock], a[kBlock], dsp[kBlock], g[kBlock];
  acc_t du[kBlock], ddelta[kBlock], dBv[kBlock], dCv[kBlock], pA[kBlock], pD[kBlock];
  std::vector<acc_t> hs(r.seqlen + 1);  // hs[t + 1] = h_t, hs[0] = h_{-1} = 0
  hs[0] = 0;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t d = row % r.dim;
    const in_t* u = r.u + row * r.plane;
    const in_t* delta = r.delta + row * r.plane;
    const in_t* B = r.B + r.bc_base(row);
    const in_t* C = r.C + r.bc_base(row);
    const acc_t* dy_row = dout + r.out_base(map, row);
    const acc_t A = r.A[d], Dv = r.D ? r.D[d] : acc_t(0), bias = r.bias ? r.bias[d] : acc_t(0);

    acc_t h = 0;
    for (int64_t t0 = 0; t0 < r.seqlen; t0 += kBlock) {
      const int64_t n = std::min(kBlock, r.seqlen - t0);
      gather(u, map.in, t0, n, ub);
      gather(delta, map.in, t0, n, db);
      gather(B, map.in, t0, n, bb);
      discretize(db, bias, A, r.softplus, n, dt, a, nullptr);
      for (int64_t i = 0; i < n; ++i) {
        h = a[i] * h + dt[i] * bb[i] * ub[i];
        hs[t0 + i + 1] = h;
      }
    }

    acc_t q = 0;  // a_{t+1} g_{t+1}: what flows back into position t from the later ones
    double sum_dA = 0, sum_dD = 0, sum_dbias = 0;
    const int64_t last_block = r.seqlen == 0 ? 0 : (r.seqlen - 1) / kBlock * kBlock;
    for (int64_t t0 = last_block; t0 >= 0 && r.seqlen > 0; t0 -= kBlock) {
      const int64_t n = std::min(kBlock, r.seqlen - t0);
      gather(u, map.in, t0, n, ub);
      gather(delta, map.in, t0, n, db);
      gather(B, map.in, t0, n, bb);
      gather(C, map.in, t0, n, cb);
      gather(dy_row, map.out, t0, n, dyb);
      discretize(db, bias, A, r.softplus, n, dt, a, dsp);
      for (int64_t i = n - 1; i >= 0; --i) {
        g[i] = cb[i] * dyb[i] + q;
        q = a[i] * g[i];
      }
      const acc_t* h_prev = hs.data() + t0;
      for (int64_t i = 0; i < n; ++i) {
        const acc_t gdt = g[i] * dt[i];
        const acc_t a_hprev = a[i] * h_prev[i];
        du[i] = dyb[i] * Dv + gdt * bb[i];
        dBv[i] = gdt * ub[i];
        dCv[i] = dyb[i] * h_prev[i + 1];
        pA[i] = gdt * a_hprev;
        pD[i] = dyb[i] * ub[i];
        ddelta[i] = g[i] * (bb[i] * ub[i] + A * a_hprev) * dsp[i];
      }
      sum_dA += block_sum(pA, n);
      sum_dD += block_sum(pD, n);
      sum_dbias += block_sum(ddelta, n);
      const int64_t base = row * r.plane;
      scatter(gr.du + base, map.in, map.accumulate_in, t0, n, du);
      scatter(gr.ddelta + base, map.in, map.accumulate_in, t0, n, ddelta);
      scatter(gr.dB + base, map.in, map.accumulate_in, t0, n, dBv);
      scatter(gr.dC + base, map.in, map.accumulate_in, t0, n, dCv);
    }
    gr.dA[row] = static_cast<acc_t>(sum_dA);
    gr.dD[row] = static_cast<acc_t>(sum_dD);
    gr.dbias[row] = static_cast<acc_t>(sum_dbias);
  }
}

// Route offset tables of the half-resolution layout (see selective_scan.h): `in` into the (Hb, Wb) plane, and
// for stacked output `out` into a (3, dim, Hb, Wb) batch slice relative to channel d's route-0 plane.
struct HalfResTables {
  std::vector<int64_t> in, out;
};

HalfResTables half_res_tables(const ScanProblem& p) {
  HalfResTables tables;
  tables.in.resize(p.seqlen);
  for (int64_t t = 0; t < p.seqlen; ++t) tables.in[t] = half_res_offset(t, p.height, p.width);
  if (!p.sum_routes) {
    tables.out.resize(p.seqlen);
    for (int64_t t = 0; t < p.seqlen; ++t) tables.out[t] = (t / p.plane) * p.dim * p.plane + tables.in[t];
  }
  return tables;
}

RowMap row_map(const ScanProblem& p, const HalfResTables& tables) {
  RowMap map;
  if (!p.half_res) {
    map.out_row_stride = p.seqlen;
    map.out_batch_stride = p.dim * p.seqlen;
    return map;
  }
  map.in = tables.in.data();
  map.accumulate_in = true;
  map.accumulate_out = p.sum_routes;
  map.out_row_stride = p.plane;
  if (p.sum_routes) {
    map.out = tables.in.data();
    map.out_batch_stride = p.dim * p.plane;
  } else {
    map.out = tables.out.data();
    map.out_batch_stride = kNumRoutes * p.dim * p.plane;
  }
  return map;
}

template <typename in_t, typename acc_t>
Rows<in_t, acc_t> make_rows(const ScanProblem& p) {
  return {p.u.data_ptr<in_t>(),
          p.delta.data_ptr<in_t>(),
          p.B.data_ptr<in_t>(),
          p.C.data_ptr<in_t>(),
          p.A.data_ptr<acc_t>(),
          p.D.defined() ? p.D.data_ptr<acc_t>() : nullptr,
          p.delta_bias.defined() ? p.delta_bias.data_ptr<acc_t>() : nullptr,
          p.dim,
          p.groups,
          p.plane,
          p.seqlen,
          p.delta_softplus};
}

// Rows per parallel task: enough positions that a task outweighs its scheduling. A scanned position costs tens
// of times an elementwise op, so the grain is far below at::internal::GRAIN_SIZE (which would leave, e.g., the
// 768 rows of 49 positions of a 7x7 stage in one task out of two).
constexpr int64_t kGrainPositions = 2048;

int64_t rows_per_task(const ScanProblem& p) {
  return std::max<int64_t>(1, kGrainPositions / std::max<int64_t>(1, p.seqlen));
}

at::Tensor scan_fwd(const ScanProblem& p, bool out_float) {
  const auto tables = p.half_res ? half_res_tables(p) : HalfResTables{};
  const RowMap map = row_map(p, tables);
  // Summed routes accumulate into the output, so it starts at zero; every other layout writes each element once.
  auto options = p.u.options().dtype(p.compute_dtype());
  at::Tensor out = map.accumulate_out ? at::zeros(p.output_sizes(), options) : at::empty(p.output_sizes(), options);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.u.scalar_type(), "selective_scan_fwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto rows = make_rows<scalar_t, acc_t>(p);
    acc_t* out_ptr = out.data_ptr<acc_t>();
    const int64_t n_rows = p.batch * p.dim, n_groups = (n_rows + kRows - 1) / kRows;  // tasks take whole groups
    at::parallel_for(0, n_groups, (rows_per_task(p) + kRows - 1) / kRows, [&](int64_t begin, int64_t end) {
      scan_fwd_rows(rows, map, out_ptr, begin * kRows, std::min(end * kRows, n_rows));
    });
  });
  return out_float ? out : out.to(p.u.scalar_type());
}

ScanGrads scan_bwd(const ScanProblem& p, const at::Tensor& dout) {
  const auto tables = p.half_res ? half_res_tables(p) : HalfResTables{};
  const RowMap map = row_map(p, tables);
  auto options = p.u.options().dtype(p.compute_dtype());
  const at::Tensor dy = dout.to(p.compute_dtype()).contiguous();
  // The routes of a half-res row add into the same plane elements, so those buffers start at zero.
  auto plane_buffer = [&] {
    return map.accumulate_in ? at::zeros({p.batch, p.dim, p.plane}, options)
                          : at::empty({p.batch, p.dim, p.plane}, options);
  };
  at::Tensor du = plane_buffer(), ddelta = plane_buffer(), dB_rows = plane_buffer(), dC_rows = plane_buffer();
  at::Tensor dA_rows = at::empty({p.batch, p.dim}, options), dD_rows = at::empty({p.batch, p.dim}, options),
             dbias_rows = at::empty({p.batch, p.dim}, options);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.u.scalar_type(), "selective_scan_bwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto rows = make_rows<scalar_t, acc_t>(p);
    const GradRows<acc_t> grads{du.data_ptr<acc_t>(),      ddelta.data_ptr<acc_t>(),  dB_rows.data_ptr<acc_t>(),
                                dC_rows.data_ptr<acc_t>(), dA_rows.data_ptr<acc_t>(), dD_rows.data_ptr<acc_t>(),
                                dbias_rows.data_ptr<acc_t>()};
    const acc_t* dy_ptr = dy.data_ptr<acc_t>();
    at::parallel_for(0, p.batch * p.dim, rows_per_task(p), [&](int64_t begin, int64_t end) {
      scan_bwd_rows(rows, map, dy_ptr, grads, begin, end);
    });
  });
  const int64_t group_size = p.dim / p.groups;
  ScanGrads g;
  g.du = du.view(p.u.sizes());
  g.ddelta = ddelta.view(p.u.sizes());
  g.dA = dA_rows.sum(0).view({p.dim, 1});
  g.dB = dB_rows.view({p.batch, p.groups, group_size, p.plane}).sum(2);
  g.dC = dC_rows.view({p.batch, p.groups, group_size, p.plane}).sum(2);
  g.dD = dD_rows.sum(0);
  g.ddelta_bias = dbias_rows.sum(0);
  return g;
}

at::Tensor selective_scan_fwd_cpu(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                  const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                  const std::optional<at::Tensor>& delta_bias, bool delta_softplus, bool out_float) {
  return scan_fwd(make_problem("selective_scan_fwd", false, u, delta, A, B, C, D, delta_bias, delta_softplus, true),
                  out_float);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
selective_scan_bwd_cpu(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                       const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                       const std::optional<at::Tensor>& delta_bias, bool delta_softplus) {
  const auto p = make_problem("selective_scan_bwd", false, u, delta, A, B, C, D, delta_bias, delta_softplus, true);
  check_dout("selective_scan_bwd", p, dout);
  return scan_bwd(p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
}

at::Tensor ms2d_half_res_scan_fwd_cpu(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                      const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                      const std::optional<at::Tensor>& delta_bias, bool delta_softplus,
                                      bool sum_routes, bool out_float) {
  return scan_fwd(
      make_problem("ms2d_half_res_scan_fwd", true, u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes),
      out_float);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
ms2d_half_res_scan_bwd_cpu(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                           const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                           const std::optional<at::Tensor>& delta_bias, bool delta_softplus, bool sum_routes) {
  const auto p =
      make_problem("ms2d_half_res_scan_bwd", true, u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes);
  check_dout("ms2d_half_res_scan_bwd", p, dout);
  return scan_bwd(p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
}

}  // namespace
}  // namespace mmmsvmamba

TORCH_LIBRARY_IMPL(mmmsvmamba, CPU, m) {
  m.impl("selective_scan_fwd", &mmmsvmamba::selective_scan_fwd_cpu);
  m.impl("selective_scan_bwd", &mmmsvmamba::selective_scan_bwd_cpu);
  m.impl("ms2d_half_res_scan_fwd", &mmmsvmamba::ms2d_half_res_scan_fwd_cpu);
  m.impl("ms2d_half_res_scan_bwd", &mmmsvmamba::ms2d_half_res_scan_bwd_cpu);
}
