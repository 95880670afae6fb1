// Torch glue of the CUDA kernels (scan_kernels.cuh), shared by the real CUDA build (selective_scan_{fwd,bwd}.cu)
// and the emulated one (../emulated/selective_scan_emulated.cpp): the checks only the CUDA kernels need, Params,
// allocation of outputs and chunk buffers, dtype dispatch, and CudaBackend, the backend of ScanOps (../scan_ops.h,
// which holds the four op functions and the checks shared with the CPU). What differs between the two builds is a
// small Device traits struct:
//   Device::Guard               RAII device guard, constructed from the inputs' at::Device
//   Device::stream()            the stream the kernels are queued on
//   Device::multiprocessors(t)  multiprocessors of the device holding tensor t (plan_chunks plans for them)
//   Device::check(err, op)      turns a cudaError_t of a launch into a c10::Error naming the op
//
// Shapes as in ../schemas.h: u, delta (B, D, L) or (B, D, Hb, Wb); the forward returns (B, D, L), (B, D, Hb, Wb)
// summed or (B, 3, D, Hb, Wb) stacked; the backward returns the 7 gradients in their inputs' shapes. Outputs, du and
// ddelta have the channel axis innermost in memory, like the inputs the kernels read (see scan_kernels.cuh).
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

#include "../../common/dispatch.h"
#include "../scan_ops.h"
#include "scan_kernels.cuh"

namespace mmmsvmamba {
namespace cuda_scan {

// The fields of Params shared by both directions, after the checks only the CUDA kernels need, with the chunk
// plan of the forward or the backward. Call with a non-empty problem (batch * dim * seqlen > 0).
inline Params make_params(const char* op, const ScanProblem& p, int multiprocessors, bool backward) {
  TORCH_CHECK(p.u.scalar_type() != at::kDouble, op,
              ": the CUDA kernels take float32, float16 or bfloat16 inputs, got float64; use backend='torch' "
              "(selective_scan_fn does so by itself)");
  TORCH_CHECK(p.seqlen <= std::numeric_limits<int>::max() - kChunkAlign, op, ": ", p.seqlen,
              " scanned positions are more than the CUDA kernels index (2^31 - 129)");
  TORCH_CHECK(p.batch <= 65535 && p.dim <= std::numeric_limits<int>::max(), op, ": batch ", p.batch, " and dim ",
              p.dim, " exceed the CUDA grid (batch <= 65535)");
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
  k.slices = static_cast<int>((p.dim + kSlice - 1) / kSlice);
  k.plane = static_cast<int>(p.plane);
  k.seqlen = static_cast<int>(p.seqlen);
  k.height = static_cast<int>(p.height);
  k.width = static_cast<int>(p.width);
  k.softplus = p.delta_softplus;
  k.sum_routes = p.sum_routes;
  k.out_batch = p.half_res && p.sum_routes ? p.plane : p.seqlen;
  plan_chunks(k, multiprocessors, backward ? kMaxBwdChunk : kMaxFwdChunk);
  TORCH_CHECK(scan_blocks(k) <= std::numeric_limits<int>::max(), op, ": dim ", p.dim, " x ", p.seqlen,
              " scanned positions exceed the CUDA grid");
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

// The backend of ScanOps on a CUDA device (real or emulated).
template <typename Device>
struct CudaBackend {
  static at::Tensor fwd(const char* op, const ScanProblem& p, bool out_float) {
    const typename Device::Guard guard(p.u.device());
    // Summed routes accumulate in float32 (atomicAdd), then round once if the input dtype was asked for.
    const bool accumulate = p.half_res && p.sum_routes;
    const auto out_dtype = out_float || accumulate ? at::kFloat : p.u.scalar_type();
    at::Tensor out = p.empty_output(p.u.options().dtype(out_dtype), accumulate);
    if (out.numel() > 0) {
      FwdParams k;
      static_cast<Params&>(k) = make_params(op, p, Device::multiprocessors(p.u), false);
      k.out = out.data_ptr();
      k.out_float = out_dtype == at::kFloat;
      const at::Tensor scratch = chunk_buffers(k, p.u, false);
      const cudaStream_t stream = Device::stream();
      MMMSVMAMBA_DISPATCH_CUDA_TYPES(p.u.scalar_type(), "scan_fwd_cuda", [&] {
        Device::check(p.half_res ? launch_fwd<scalar_t, true>(k, stream) : launch_fwd<scalar_t, false>(k, stream),
                      op);
      });
    }
    return out_float ? out : out.to(p.u.scalar_type());
  }

  static ScanGrads bwd(const char* op, const ScanProblem& p, const at::Tensor& dout) {
    const typename Device::Guard guard(p.u.device());
    const at::Tensor dy = p.dout_channels_last(dout, at::kFloat);
    const auto f32 = p.u.options().dtype(at::kFloat);
    // Half-res routes read each map element three times: its du / ddelta accumulate in float32.
    at::Tensor du = p.half_res ? at::zeros({p.batch, p.plane, p.dim}, f32)
                               : at::empty({p.batch, p.plane, p.dim}, p.u.options());
    at::Tensor ddelta = p.half_res ? at::zeros_like(du) : at::empty_like(du);
    at::Tensor dB = at::zeros({p.batch, p.plane, p.groups}, f32), dC = at::zeros_like(dB);
    at::Tensor dA = at::zeros({p.dim}, f32), dD = at::zeros_like(dA), ddelta_bias = at::zeros_like(dA);
    if (p.batch * p.dim * p.seqlen > 0) {
      BwdParams k;
      static_cast<Params&>(k) = make_params(op, p, Device::multiprocessors(p.u), true);
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
        Device::check(p.half_res ? launch_bwd<scalar_t, true>(k, stream) : launch_bwd<scalar_t, false>(k, stream),
                      op);
      });
    }
    ScanGrads g;
    g.du = p.like_input(du);
    g.ddelta = p.like_input(ddelta);
    g.dA = dA.view({p.dim, 1});
    g.dB = dB.transpose(1, 2).contiguous();  // (batch, groups, plane); no copy for one group
    g.dC = dC.transpose(1, 2).contiguous();
    g.dD = dD;
    g.ddelta_bias = ddelta_bias;
    return g;
  }
};

}  // namespace cuda_scan
}  // namespace mmmsvmamba
