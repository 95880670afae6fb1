// The half-resolution route order of the MS2D scan as index arithmetic, for every backend (CPU, CUDA, emulated
// CUDA). Torch-free: the CUDA kernel header includes it, so it must compile with nvcc and with a host compiler.
//
// A (b, d) plane of the half-res op is an Hb x Wb map; its scanned sequence is the map's three routes one after
// the other, scanned with one continuing state (docs/architecture.md, "The three half-res routes are one scan"),
// 3 * Hb * Wb positions:
//   route 0: row-major, reversed;  route 1: column-major (t = w * Hb + h);  route 2: column-major, reversed.
#pragma once

#if defined(__CUDACC__)
#define MMMSVMAMBA_HOST_DEVICE __host__ __device__
#else
#define MMMSVMAMBA_HOST_DEVICE
#endif

namespace mmmsvmamba {

constexpr int kNumRoutes = 3;

// Plane offset of the t-th position of the half-res route sequence, 0 <= t < 3 * height * width.
// index_t: int64_t on the CPU, int on the GPU (where 64-bit division is slow; the host checks the range).
template <typename index_t>
MMMSVMAMBA_HOST_DEVICE inline index_t half_res_offset(index_t t, index_t height, index_t width) {
  const index_t area = height * width;
  if (t < area) return area - 1 - t;
  const index_t s = t < 2 * area ? t - area : 3 * area - 1 - t;  // index into the column-major order
  const index_t w = s / height;
  return (s - w * height) * width + w;
}

}  // namespace mmmsvmamba
