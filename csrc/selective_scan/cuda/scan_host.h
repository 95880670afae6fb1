// Torch glue of the CUDA kernels (scan_kernels.cuh), shared by the real CUDA build (selective_scan_{fwd,bwd}.cu)
// and the emulated one (../emulated/selective_scan_emulated.cpp): tensor checks, Params, allocation of outputs
// and chunk buffers, dtype dispatch, and the four op functions. What differs between the two builds is a small
// Device traits struct:
//   Device::Guard               RAII device guard, constructed from the inputs' at::Device
//   Device::stream()            the stream the kernels are queued on
//   Device::multiprocessors(t)  multiprocessors of the device holding tensor t (plan_chunks plans for them)
//   Device::check(err, op)      turns a cudaError_t of a launch into a c10::Error naming the op
//
// Shapes as in ../selective_scan.cpp: u, delta (B, D, L) or (B, D, Hb, Wb); the forward returns (B, D, L),
// (B, D, Hb, Wb) summed or (B, 3, D, Hb, Wb) stacked; the backward returns the 7 gradients in their inputs' shapes.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <limits>
#include <optional>
#include <tuple>

#include "../../common/dispatch.h"
#include "../selective_scan.h"
#include "scan_kernels.cuh"

namespace mmmsvmamba {
namespace cuda_scan {

// The fields of Params shared by both directions, after the checks only the CUDA kernels need.
// Call with a non-empty problem (batch * dim * seqlen > 0).
inline Params make_params(const char* op, const ScanProblem& p, int multiprocessors) {
  TORCH_CHECK(p.u.scalar_type() != at::kDouble, op,
              ": the CUDA kernels take float32, float16 or bfloat16 inputs, got float64; use backend='torch' "
              "(selective_scan_fn does so by itself)");
  TORCH_CHECK(p.seqlen <= std::numeric_limits<int>::max() - kTile, op, ": ", p.seqlen,
              " scanned positions are more than the CUDA kernels index (2^31 - 129)");
  TORCH_CHECK(p.batch <= 65535 && (p.dim + kWarps - 1) / kWarps <= 65535, op, ": batch ", p.batch, " and dim ",
              p.dim, " exceed the CUDA grid (batch <= 65535, dim <= ", 65535 * kWarps, ")");
  Params k{};
  k.u = p.u.data_ptr();
  k.delta = p.delta.data_ptr();
  k.B = p.B.data_ptr();
  k.C = p.C.data_ptr();
  k.A = p.A.data_ptr<float>();
  k.D = p.D.defined() ? p.D.data_ptr<float>() : nullptr;
  k.delta_bias = p.delta_bias.defined() ? p.delta_bias.data_ptr<float>() : nullptr;
  k.batch = static_cast<int>(p.batch);
  k.dim = static_cast<int>(p.dim);
  k.groups = static_cast<int>(p.groups);
  k.group_size = static_cast<int>(p.dim / p.groups);
  k.plane = static_cast<int>(p.plane);
  k.seqlen = static_cast<int>(p.seqlen);
  k.height = static_cast<int>(p.height);
  k.width = static_cast<int>(p.width);
  k.softplus = p.delta_softplus;
  const size_t vector_bytes = kItems * p.u.element_size();
  k.vectorized = !p.half_res && p.plane % kItems == 0 && aligned(k.u, vector_bytes) &&
                 aligned(k.delta, vector_bytes) && aligned(k.B, vector_bytes) && aligned(k.C, vector_bytes);
  k.sum_routes = p.sum_routes;
  k.out_row_stride = p.plane;
  k.out_batch_stride = p.dim * p.plane;
  if (p.half_res && !p.sum_routes) {
    k.out_route_stride = p.dim * p.plane;
    k.out_batch_stride = kNumRoutes * p.dim * p.plane;
  }
  plan_chunks(k, multiprocessors);
  return k;
}

// Float32 scratch for the chunk maps and carried states (none with a single chunk). Keep the returned tensor
// alive until the kernels are queued; the caching allocator orders its reuse on the stream.
inline at::Tensor chunk_buffers(Params& k, const at::Tensor& like, bool backward) {
  if (k.n_chunks == 1) return {};
  const int64_t n = static_cast<int64_t>(k.batch) * k.dim * k.n_chunks;
  at::Tensor buffer = at::empty({backward ? 5 : 3, n}, like.options().dtype(at::kFloat));
  float* base = buffer.data_ptr<float>();
  k.chunk_a = base;
  k.chunk_x = base + n;
  k.carry_h = base + 2 * n;
  if (backward) {
    k.chunk_q = base + 3 * n;
    k.carry_q = base + 4 * n;
  }
  return buffer;
}

template <typename Device>
at::Tensor scan_fwd(const char* op, const ScanProblem& p, bool out_float) {
  const typename Device::Guard guard(p.u.device());
  // Summed routes accumulate in float32 (atomicAdd), then round once if the input dtype was asked for.
  const bool accumulate = p.half_res && p.sum_routes;
  const auto out_dtype = out_float || accumulate ? at::kFloat : p.u.scalar_type();
  at::Tensor out = accumulate ? at::zeros(p.output_sizes(), p.u.options().dtype(out_dtype))
                              : at::empty(p.output_sizes(), p.u.options().dtype(out_dtype));
  if (out.numel() > 0) {
    FwdParams k;
    static_cast<Params&>(k) = make_params(op, p, Device::multiprocessors(p.u));
    k.out = out.data_ptr();
    k.out_float = out_dtype == at::kFloat;
    const at::Tensor scratch = chunk_buffers(k, p.u, false);
    const cudaStream_t stream = Device::stream();
    MMMSVMAMBA_DISPATCH_CUDA_TYPES(p.u.scalar_type(), "scan_fwd_cuda", [&] {
      Device::check(p.half_res ? launch_fwd<scalar_t, true>(k, stream) : launch_fwd<scalar_t, false>(k, stream), op);
    });
  }
  return out_float ? out : out.to(p.u.scalar_type());
}

template <typename Device>
ScanGrads scan_bwd(const char* op, const ScanProblem& p, const at::Tensor& dout) {
  check_dout(op, p, dout);
  const typename Device::Guard guard(p.u.device());
  const at::Tensor dy = dout.to(at::kFloat).contiguous();
  const auto f32 = p.u.options().dtype(at::kFloat);
  // Half-res routes read each plane element three times: its du / ddelta accumulate in float32.
  at::Tensor du = p.half_res ? at::zeros({p.batch, p.dim, p.plane}, f32)
                             : at::empty({p.batch, p.dim, p.plane}, p.u.options());
  at::Tensor ddelta = p.half_res ? at::zeros_like(du) : at::empty_like(du);
  at::Tensor dB = at::zeros({p.batch, p.groups, p.plane}, f32), dC = at::zeros_like(dB);
  at::Tensor dA = at::zeros({p.dim}, f32), dD = at::zeros_like(dA), ddelta_bias = at::zeros_like(dA);
  if (p.batch * p.dim * p.seqlen > 0) {
    BwdParams k;
    static_cast<Params&>(k) = make_params(op, p, Device::multiprocessors(p.u));
    k.vectorized = k.vectorized && aligned(dy.data_ptr(), kItems * sizeof(float));
    k.dout = dy.data_ptr<float>();
    k.du = du.data_ptr();
    k.ddelta = ddelta.data_ptr();
    k.dB = dB.data_ptr<float>();
    k.dC = dC.data_ptr<float>();
    k.dA = dA.data_ptr<float>();
    k.dD = dD.data_ptr<float>();
    k.ddelta_bias = ddelta_bias.data_ptr<float>();
    const at::Tensor scratch = chunk_buffers(k, p.u, true);
    const cudaStream_t stream = Device::stream();
    MMMSVMAMBA_DISPATCH_CUDA_TYPES(p.u.scalar_type(), "scan_bwd_cuda", [&] {
      Device::check(p.half_res ? launch_bwd<scalar_t, true>(k, stream) : launch_bwd<scalar_t, false>(k, stream), op);
    });
  }
  ScanGrads g;
  g.du = du.view(p.u.sizes());
  g.ddelta = ddelta.view(p.u.sizes());
  g.dA = dA.view({p.dim, 1});
  g.dB = dB;
  g.dC = dC;
  g.dD = dD;
  g.ddelta_bias = ddelta_bias;
  return g;
}

using GradTuple = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// The four ops, in the signatures of the schemas (../schemas.h).
template <typename Device>
at::Tensor selective_scan_fwd(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B,
                              const at::Tensor& C, const std::optional<at::Tensor>& D,
                              const std::optional<at::Tensor>& delta_bias, bool delta_softplus, bool out_float) {
  constexpr const char* op = "selective_scan_fwd";
  const auto p = make_problem(op, ScanKind::kSequence, ScanLayout::kChannelsFirst, u, delta, A, B, C, D, delta_bias,
                              {.delta_softplus = delta_softplus});
  return scan_fwd<Device>(op, p, out_float);
}

template <typename Device>
at::Tensor ms2d_half_res_scan_fwd(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                  const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                  const std::optional<at::Tensor>& delta_bias, bool delta_softplus, bool sum_routes,
                                  bool out_float) {
  constexpr const char* op = "ms2d_half_res_scan_fwd";
  const auto p = make_problem(op, ScanKind::kHalfRes, ScanLayout::kChannelsFirst, u, delta, A, B, C, D, delta_bias,
                              {.delta_softplus = delta_softplus, .sum_routes = sum_routes});
  return scan_fwd<Device>(op, p, out_float);
}

template <typename Device>
GradTuple selective_scan_bwd(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta,
                             const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                             const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& delta_bias,
                             bool delta_softplus) {
  constexpr const char* op = "selective_scan_bwd";
  const auto p = make_problem(op, ScanKind::kSequence, ScanLayout::kChannelsFirst, u, delta, A, B, C, D, delta_bias,
                              {.delta_softplus = delta_softplus});
  return scan_bwd<Device>(op, p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
}

template <typename Device>
GradTuple ms2d_half_res_scan_bwd(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta,
                                 const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                 const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& delta_bias,
                                 bool delta_softplus, bool sum_routes) {
  constexpr const char* op = "ms2d_half_res_scan_bwd";
  const auto p = make_problem(op, ScanKind::kHalfRes, ScanLayout::kChannelsFirst, u, delta, A, B, C, D, delta_bias,
                              {.delta_softplus = delta_softplus, .sum_routes = sum_routes});
  return scan_bwd<Device>(op, p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
}

}  // namespace cuda_scan
}  // namespace mmmsvmamba
