// CUDA forward of the selective scan and of the fused MS2D half-resolution scan (kernels in
// selective_scan_kernel.cuh). Registers the *_fwd ops for the CUDA dispatch key at the bottom.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../../common/dispatch.h"
#include "selective_scan_kernel.cuh"

namespace mmmsvmamba {
namespace cuda_scan {
namespace {

template <typename in_t, bool kHalfRes>
void launch_fwd(const FwdParams& k, cudaStream_t stream) {
  const dim3 grid = scan_grid(k);
  if (k.n_chunks > 1) {
    scan_fwd_kernel<in_t, kHalfRes, true><<<grid, kThreads, 0, stream>>>(k);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    launch_chunk_carry(k, stream);
  }
  scan_fwd_kernel<in_t, kHalfRes, false><<<grid, kThreads, 0, stream>>>(k);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor scan_fwd(const char* op, const ScanProblem& p, bool out_float) {
  const c10::cuda::CUDAGuard guard(p.u.device());
  // Summed routes accumulate in float32 (atomicAdd), then round once if the input dtype was asked for.
  const bool accumulate = p.half_res && p.sum_routes;
  const auto out_dtype = out_float || accumulate ? at::kFloat : p.u.scalar_type();
  at::Tensor out = accumulate ? at::zeros(p.output_sizes(), p.u.options().dtype(out_dtype))
                              : at::empty(p.output_sizes(), p.u.options().dtype(out_dtype));
  if (out.numel() > 0) {
    FwdParams k;
    static_cast<Params&>(k) = make_params(op, p);
    k.out = out.data_ptr();
    k.out_float = out_dtype == at::kFloat;
    const at::Tensor scratch = chunk_buffers(k, p.u, false);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    MMMSVMAMBA_DISPATCH_CUDA_TYPES(p.u.scalar_type(), "selective_scan_fwd_cuda", [&] {
      if (p.half_res) {
        launch_fwd<scalar_t, true>(k, stream);
      } else {
        launch_fwd<scalar_t, false>(k, stream);
      }
    });
  }
  return out_float ? out : out.to(p.u.scalar_type());
}

at::Tensor selective_scan_fwd_cuda(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                   const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                   const std::optional<at::Tensor>& delta_bias, bool delta_softplus, bool out_float) {
  constexpr const char* op = "selective_scan_fwd";
  return scan_fwd(op, make_problem(op, false, u, delta, A, B, C, D, delta_bias, delta_softplus, true), out_float);
}

at::Tensor ms2d_half_res_scan_fwd_cuda(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                       const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                       const std::optional<at::Tensor>& delta_bias, bool delta_softplus,
                                       bool sum_routes, bool out_float) {
  constexpr const char* op = "ms2d_half_res_scan_fwd";
  return scan_fwd(op, make_problem(op, true, u, delta, A, B, C, D, delta_bias, delta_softplus, sum_routes),
                  out_float);
}

}  // namespace
}  // namespace cuda_scan
}  // namespace mmmsvmamba

TORCH_LIBRARY_IMPL(mmmsvmamba, CUDA, m) {
  m.impl("selective_scan_fwd", &mmmsvmamba::cuda_scan::selective_scan_fwd_cuda);
  m.impl("ms2d_half_res_scan_fwd", &mmmsvmamba::cuda_scan::ms2d_half_res_scan_fwd_cuda);
}
