// An emulated CUDA device for tests: compiles CUDA device code, unchanged, for the host and runs its kernels on the
// CPU. Include it instead of <cuda_runtime.h> (after any torch header: it defines macros such as threadIdx).
//
// What it provides is what the kernels of csrc/selective_scan/cuda/ use:
//   __global__ / __device__ / __host__ / __forceinline__ / __launch_bounds__ / __shared__ (static only)
//   threadIdx, blockIdx, blockDim, gridDim, warpSize (32), dim3, uint3, cudaStream_t, cudaError_t
//   __syncthreads, __syncwarp, __shfl_sync / __shfl_up_sync / __shfl_down_sync / __shfl_xor_sync (masks, widths)
//   atomicAdd (float, double, int, unsigned, unsigned long long), __ldg, min / max, expf / log1pf (<math.h>)
//   cudaGetLastError, cudaPeekAtLastError, cudaGetErrorString, cudaDeviceGetAttribute (multiprocessor count)
//   emulated_cuda::launch<kernel>(grid, block, smem, stream)(args...)   in place of kernel<<<...>>>(args...)
//
// Execution model. A launch runs its blocks on a few OS worker threads (MMMSVMAMBA_EMULATED_WORKERS, default 2),
// one block at a time per worker, blocks taken in a shared order so that different blocks really run at the
// same time (cross-block races and atomics are real). The CUDA threads of a block are cooperative fibers on
// their worker: a fiber runs until it must wait (a warp shuffle or __syncwarp whose lanes have not all arrived,
// or __syncthreads), then the next runnable fiber of the block runs. __shared__ is `static thread_local`, which
// makes it shared by exactly the fibers of the block on that worker.
//
// What it enforces (each a loud error: the launch fails, cudaGetLastError() returns it and cudaGetErrorString()
// names the kernel, block, thread and source line): the launch limits (grid x <= 2^31 - 1, y, z <= 65535; block
// <= 1024 threads, x, y <= 1024, z <= 64; no zero dimension; dynamic shared memory <= 48 KiB, and none at all
// yet, see below), a lane not named in its own mask, lanes of one mask at different sync points, a shuffle
// reading a lane outside its mask or an exited lane, a width that is not a power of two <= 32, __syncthreads in
// a block one of whose threads has exited or that some thread never reaches, and deadlock (no fiber can run).
//
// Schedules: round robin, or with MMMSVMAMBA_EMULATED_SEED=n a seeded random order of the fibers between barriers.
// Race checking (the build mmmsvmamba._C_emulated_racecheck, race_check.h): shared-memory hazards between barriers
// (and __syncwarp for lanes of one warp), uninitialised shared reads, shared accesses outside the kernel's
// __shared__ variables, and conflicting non-atomic global accesses within a launch, each a failed launch.
//
// What it cannot see: memory ordering beyond those rules (a fiber's writes are visible at once to the next fiber;
// without race checking a missing barrier shows only where the schedule happens to expose it), timing and
// performance, misaligned vector accesses that the host tolerates, out-of-bounds global accesses that stay inside
// host allocations. docs/ops.md, "The emulated CUDA device", says more and how to add a kernel.
#pragma once

#include <math.h>  // expf, log1pf, ... in the global namespace, as device code calls them

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// Shared by the fibers of one block: they all run on one worker thread, and a worker runs one block at a time.
#define __shared__ static thread_local

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct emulated_cuda_stream;
typedef emulated_cuda_stream* cudaStream_t;

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNotSupported = 801,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };

constexpr int warpSize = 32;

// Returns and clears the error of the last failed launch on this host thread.
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
// For the error of the last failed launch: the full message (kernel, block, thread, what, where).
const char* cudaGetErrorString(cudaError_t error);
// cudaDevAttrMultiProcessorCount: 132 (an H100), or MMMSVMAMBA_EMULATED_SMS, or emulated_cuda::set_multiprocessors.
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);

namespace emulated_cuda {

constexpr int kDefaultMultiprocessors = 132;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxDynamicShared = 48 * 1024;

// Overrides the multiprocessor count the device reports (0: back to the default / MMMSVMAMBA_EMULATED_SMS).
// Returns the previous override.
int set_multiprocessors(int count);
int multiprocessors();

namespace detail {

const uint3& thread_index();
const uint3& block_index();
const dim3& block_dim();
const dim3& grid_dim();

enum class WarpOp { kSync, kIdx, kUp, kDown, kXor };

// One lane's part of a warp-synchronous operation: waits until every lane of `mask` has arrived at the same
// operation, then returns the value of the lane that the operation reads for this lane (kSync: 0).
uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& at);
void block_barrier(const std::source_location& at);

using Invoke = void (*)(const void* call);
// Runs a launch on the emulated device; the error (if any) becomes the host thread's last error.
void run_launch(std::string_view kernel, dim3 grid, dim3 block, size_t shared_bytes, Invoke invoke,
                const void* call);

template <typename T>
uint64_t to_bits(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t), "shuffle of an unsupported type");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}

template <typename T>
T from_bits(uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

// A shuffle of any trivially copyable value of at most 8 bytes, through warp_exchange.
template <typename T>
T shuffle(WarpOp op, unsigned mask, T var, unsigned arg, int width, const std::source_location& at) {
  return from_bits<T>(warp_exchange(op, mask, to_bits(var), static_cast<int>(arg), width, at));
}

// "ns::kernel<args>" from the signature of kernel_name<kernel>() as GCC and Clang print it.
template <auto Kernel>
std::string_view kernel_name() {
  std::string_view name = __PRETTY_FUNCTION__;
  const size_t start = name.find("Kernel = ");
  if (start == std::string_view::npos) return name;
  name.remove_prefix(start + 9);
  return name.substr(0, name.find_first_of(";]"));  // GCC appends "; std::string_view = ..."
}

}  // namespace detail

// The object `kernel<<<grid, block, smem, stream>>>` stands for: call it with the kernel's arguments. Each CUDA
// thread gets its own copy of the arguments, as on the device.
template <auto Kernel, typename... Params>
class Launcher {
 public:
  Launcher(dim3 grid, dim3 block, size_t shared_bytes) : grid_(grid), block_(block), shared_bytes_(shared_bytes) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    using Call = std::tuple<std::decay_t<Params>...>;
    const Call call(std::forward<Args>(args)...);
    detail::run_launch(detail::kernel_name<Kernel>(), grid_, block_, shared_bytes_,
                       [](const void* c) { std::apply(Kernel, *static_cast<const Call*>(c)); }, &call);
  }

 private:
  dim3 grid_, block_;
  size_t shared_bytes_;
};

template <auto Kernel, typename... Params>
Launcher<Kernel, Params...> make_launcher(void (*)(Params...), dim3 grid, dim3 block, size_t shared_bytes) {
  return Launcher<Kernel, Params...>(grid, block, shared_bytes);
}

// emulated_cuda::launch<kernel>(grid, block, smem, stream)(args...) == kernel<<<grid, block, smem, stream>>>(args...)
template <auto Kernel>
auto launch(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t = nullptr) {
  return make_launcher<Kernel>(Kernel, grid, block, shared_bytes);
}

}  // namespace emulated_cuda

#define threadIdx (::emulated_cuda::detail::thread_index())
#define blockIdx (::emulated_cuda::detail::block_index())
#define blockDim (::emulated_cuda::detail::block_dim())
#define gridDim (::emulated_cuda::detail::grid_dim())

inline void __syncthreads(const std::source_location& at = std::source_location::current()) {
  emulated_cuda::detail::block_barrier(at);
}

inline void __syncwarp(unsigned mask = 0xffffffffu,
                       const std::source_location& at = std::source_location::current()) {
  emulated_cuda::detail::warp_exchange(emulated_cuda::detail::WarpOp::kSync, mask, 0, 0, warpSize, at);
}

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              const std::source_location& at = std::source_location::current()) {
  return emulated_cuda::detail::shuffle(emulated_cuda::detail::WarpOp::kIdx, mask, var, src_lane, width, at);
}

template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 const std::source_location& at = std::source_location::current()) {
  return emulated_cuda::detail::shuffle(emulated_cuda::detail::WarpOp::kUp, mask, var, delta, width, at);
}

template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   const std::source_location& at = std::source_location::current()) {
  return emulated_cuda::detail::shuffle(emulated_cuda::detail::WarpOp::kDown, mask, var, delta, width, at);
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  const std::source_location& at = std::source_location::current()) {
  return emulated_cuda::detail::shuffle(emulated_cuda::detail::WarpOp::kXor, mask, var, lane_mask, width, at);
}

// Device-wide atomics; relaxed, as CUDA's atomicAdd.
template <typename T>
T emulated_atomic_add(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
inline float atomicAdd(float* address, float value) { return emulated_atomic_add(address, value); }
inline double atomicAdd(double* address, double value) { return emulated_atomic_add(address, value); }
inline int atomicAdd(int* address, int value) { return emulated_atomic_add(address, value); }
inline unsigned atomicAdd(unsigned* address, unsigned value) { return emulated_atomic_add(address, value); }
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  return emulated_atomic_add(address, value);
}

template <typename T>
T __ldg(const T* address) {
  return *address;
}

// CUDA's min / max overloads of the integer and floating types (device code calls them unqualified).
#define EMULATED_CUDA_MIN_MAX(T)                          \
  inline T min(T a, T b) { return b < a ? b : a; }        \
  inline T max(T a, T b) { return a < b ? b : a; }
EMULATED_CUDA_MIN_MAX(int)
EMULATED_CUDA_MIN_MAX(unsigned)
EMULATED_CUDA_MIN_MAX(long)
EMULATED_CUDA_MIN_MAX(long long)
EMULATED_CUDA_MIN_MAX(unsigned long long)
#undef EMULATED_CUDA_MIN_MAX
// as fminf / fmaxf: a NaN argument yields the other one
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
