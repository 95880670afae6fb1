// CUDA forward of the selective scan and of the fused MS2D half-resolution scan (kernels in scan_kernels.cuh,
// glue in scan_host.h, op functions in ../scan_ops.h). Registers the *_fwd ops for the CUDA dispatch key.
#include <torch/library.h>

#include "cuda_device.h"
#include "scan_host.h"

TORCH_LIBRARY_IMPL(mmmsvmamba, CUDA, m) {
  using Ops = mmmsvmamba::ScanOps<mmmsvmamba::cuda_scan::CudaBackend<mmmsvmamba::cuda_scan::CudaDevice>>;
  m.impl("selective_scan_fwd", &Ops::selective_scan_fwd);
  m.impl("ms2d_half_res_scan_fwd", &Ops::ms2d_half_res_scan_fwd);
}
