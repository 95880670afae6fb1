// The Device traits of scan_host.h for a real CUDA device: c10's device guard and current stream, the device's
// multiprocessor count, and C10_CUDA_CHECK for launch errors.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

namespace mmmsvmamba {
namespace cuda_scan {

struct CudaDevice {
  using Guard = c10::cuda::CUDAGuard;
  static cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream(); }
  static int multiprocessors(const at::Tensor& t) {
    int count = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, t.get_device()));
    return count;
  }
  static void check(cudaError_t err, const char* /*op*/) { C10_CUDA_CHECK(err); }
};

}  // namespace cuda_scan
}  // namespace mmmsvmamba
