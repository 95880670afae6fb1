// The CUDA kernels of ../cuda/ run on the emulated CUDA device (csrc/emulated_cuda/), for tests: the library
// mmmsvmamba_emulated with the four scan ops of ../schemas.h, registered for CPU tensors. The device code
// (scan_kernels.cuh) and the host launch code (plan_chunks, grids, chunk carries, scan_host.h) are those of the
// real CUDA build; only the runtime header differs (MMMSVMAMBA_EMULATED_CUDA). Built by setup.py as
// mmmsvmamba._C_emulated when MMMSVMAMBA_WITH_EMULATED=1; mmmsvmamba/ops/testing.py routes test calls here.
//
// Two test-only ops come with it:
//   _chunk_ranges(batch, dim, seqlen, multiprocessors, backward=False) -> int64 (n_chunks, 2): [begin, end) of each
//       chunk as plan_chunks (the forward's plan, or the backward's) and chunk_range give them (the kernels' chunk
//       arithmetic at any seqlen, without the tensors).
//   _set_multiprocessors(count) -> previous override: the multiprocessor count the device reports (0: default).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "../schemas.h"
#include "../cuda/scan_host.h"

namespace mmmsvmamba {
namespace cuda_scan {
namespace {

// The Device traits of scan_host.h for the emulated device: CPU tensors, no streams, errors as c10::Error.
struct EmulatedDevice {
  struct Guard {
    explicit Guard(const at::Device&) {}
  };
  static cudaStream_t stream() { return nullptr; }
  static int multiprocessors(const at::Tensor&) {
    int count = 0;
    TORCH_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess);
    return count;
  }
  static void check(cudaError_t err, const char* op) {
    TORCH_CHECK(err == cudaSuccess, op, ": ", cudaGetErrorString(err));
  }
};

at::Tensor chunk_ranges(int64_t batch, int64_t dim, int64_t seqlen, int64_t multiprocessors, bool backward) {
  TORCH_CHECK(batch > 0 && dim > 0 && seqlen > 0 && seqlen <= std::numeric_limits<int>::max() - kChunkAlign,
              "_chunk_ranges: batch, dim and seqlen must be positive and seqlen <= 2^31 - 129");
  Params k{};
  k.batch = static_cast<int>(batch);
  k.dim = static_cast<int>(dim);
  k.slices = static_cast<int>((dim + kSlice - 1) / kSlice);
  k.seqlen = static_cast<int>(seqlen);
  plan_chunks(k, static_cast<int>(multiprocessors), backward ? kMaxBwdChunk : kMaxFwdChunk);
  at::Tensor ranges = at::empty({k.n_chunks, 2}, at::kLong);
  auto r = ranges.accessor<int64_t, 2>();
  for (int c = 0; c < k.n_chunks; ++c) {
    const ChunkRange range = chunk_range(k, c);
    r[c][0] = range.begin;
    r[c][1] = range.end;
  }
  return ranges;
}

int64_t set_multiprocessors(int64_t count) { return emulated_cuda::set_multiprocessors(static_cast<int>(count)); }

}  // namespace
}  // namespace cuda_scan
}  // namespace mmmsvmamba

TORCH_LIBRARY(mmmsvmamba_emulated, m) {
  mmmsvmamba::define_scan_ops(m);
  m.def("_chunk_ranges(int batch, int dim, int seqlen, int multiprocessors, bool backward=False) -> Tensor",
        &mmmsvmamba::cuda_scan::chunk_ranges);
  m.def("_set_multiprocessors(int count) -> int", &mmmsvmamba::cuda_scan::set_multiprocessors);
}

TORCH_LIBRARY_IMPL(mmmsvmamba_emulated, CPU, m) {
  using Ops = mmmsvmamba::ScanOps<mmmsvmamba::cuda_scan::CudaBackend<mmmsvmamba::cuda_scan::EmulatedDevice>>;
  m.impl("selective_scan_fwd", &Ops::selective_scan_fwd);
  m.impl("selective_scan_bwd", &Ops::selective_scan_bwd);
  m.impl("ms2d_half_res_scan_fwd", &Ops::ms2d_half_res_scan_fwd);
  m.impl("ms2d_half_res_scan_bwd", &Ops::ms2d_half_res_scan_bwd);
}
