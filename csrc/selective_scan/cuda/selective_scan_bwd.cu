// CUDA backward of the selective scan and of the fused MS2D half-resolution scan (kernels in
// selective_scan_kernel.cuh). Registers the *_bwd ops for the CUDA dispatch key at the bottom.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../../common/dispatch.h"
#include "selective_scan_kernel.cuh"

namespace mmmsvmamba {
namespace cuda_scan {
namespace {

template <typename in_t, bool kHalfRes>
void launch_bwd(const BwdParams& k, cudaStream_t stream) {
  const dim3 grid = scan_grid(k);
  if (k.n_chunks > 1) {
    scan_bwd_summary_kernel<in_t, kHalfRes><<<grid, kThreads, 0, stream>>>(k);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    launch_chunk_carry(k, stream);
  }
  scan_bwd_kernel<in_t, kHalfRes><<<grid, kThreads, 0, stream>>>(k);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

ScanGrads scan_bwd(const char* op, const ScanProblem& p, const at::Tensor& dout) {
  check_dout(op, p, dout);
  const c10::cuda::CUDAGuard guard(p.u.device());
  const at::Tensor dy = dout.to(at::kFloat).contiguous();
  const auto f32 = p.u.options().dtype(at::kFloat);
  // Half-res routes read each plane element three times: its du / ddelta accumulate in float32.
  at::Tensor du = p.half_res ? at::zeros({p.batch, p.dim, p.plane}, f32) : at::empty({p.batch, p.dim, p.plane},
                                                                                     p.u.options());
  at::Tensor ddelta = p.half_res ? at::zeros_like(du) : at::empty_like(du);
  at::Tensor dB = at::zeros({p.batch, p.groups, p.plane}, f32), dC = at::zeros_like(dB);
  at::Tensor dA = at::zeros({p.dim}, f32), dD = at::zeros_like(dA), ddelta_bias = at::zeros_like(dA);
  if (p.batch * p.dim * p.seqlen > 0) {
    BwdParams k;
    static_cast<Params&>(k) = make_params(op, p);
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
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    MMMSVMAMBA_DISPATCH_CUDA_TYPES(p.u.scalar_type(), "selective_scan_bwd_cuda", [&] {
      if (p.half_res) {
        launch_bwd<scalar_t, true>(k, stream);
      } else {
        launch_bwd<scalar_t, false>(k, stream);
      }
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

GradTuple selective_scan_bwd_cuda(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta,
                                  const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                  const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& delta_bias,
                                  bool delta_softplus) {
  constexpr const char* op = "selective_scan_bwd";
  const auto p = make_problem(op, false, u, delta, A, B, C, D, delta_bias, delta_softplus, true);
  return scan_bwd(op, p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
}

GradTuple ms2d_half_res_scan_bwd_cuda(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta,
                                      const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                      const std::optional<at::Tensor>& D,
                                      const std::optional<at::Tensor>& delta_bias, bool delta_softplus,
                                      bool sum_routes) {
  constexpr const char* op = "ms2d_half_res_scan_bwd";
  const auto p = make_problem(op, true, u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes);
  return scan_bwd(op, p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
}

}  // namespace
}  // namespace cuda_scan
}  // namespace mmmsvmamba

TORCH_LIBRARY_IMPL(mmmsvmamba, CUDA, m) {
  m.impl("selective_scan_bwd", &mmmsvmamba::cuda_scan::selective_scan_bwd_cuda);
  m.impl("ms2d_half_res_scan_bwd", &mmmsvmamba::cuda_scan::ms2d_half_res_scan_bwd_cuda);
}
