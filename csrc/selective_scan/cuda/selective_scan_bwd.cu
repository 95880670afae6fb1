// CUDA backward of the selective scan and of the fused MS2D half-resolution scan (kernels in scan_kernels.cuh,
// glue in scan_host.h). Registers the *_bwd ops for the CUDA dispatch key.
#include <torch/library.h>

#include "cuda_device.h"
#include "scan_host.h"

TORCH_LIBRARY_IMPL(mmmsvmamba, CUDA, m) {
  using mmmsvmamba::cuda_scan::CudaDevice;
  m.impl("selective_scan_bwd", &mmmsvmamba::cuda_scan::selective_scan_bwd<CudaDevice>);
  m.impl("ms2d_half_res_scan_bwd", &mmmsvmamba::cuda_scan::ms2d_half_res_scan_bwd<CudaDevice>);
}
