// CUDA kernels of the d_state = 1 selective scan (sequence) and of the fused MS2D half-resolution scan, reading and
// writing channels-last memory.
//
// Layout. u, delta, the output, dout, du and ddelta are (batch, position, channel) in memory and B, C (batch,
// position, group): the memory of the model's channels-last activations, which make_problem passes through
// without a copy (other inputs are made so once). Positions of the half-res route sequence map to positions of
// the Hb x Wb map by half_res_offset (index arithmetic, no permuted copies).
//
// Work split. A warp owns 32 consecutive channels (a "slice") of one batch element over one chunk of the
// sequence; lane l scans channel 32 * slice + l sequentially over the chunk's positions. At each position the
// warp's loads of u, delta (and stores of the output, du, ddelta) are 32 neighbouring elements, one coalesced
// transaction; B_t and C_t are one value per position and group, the same address for the lanes of a group (a
// broadcast). A lane loads kItems positions before it uses them, so that their loads are in flight together.
// The warps of a block take consecutive (slice, chunk) pairs; blockIdx.y is the batch element. Lanes past the
// last channel compute on a clamped channel and store nothing; they still join the warp's shuffles.
//
// Chunks. A lane scans sequentially, so the parallelism along the sequence comes from chunks. Each step of the
// recurrence is the affine map h -> a h + x, and maps compose associatively, so a chunk is summarised by one map
// (A_c, X_c). When batch x slices do not fill the GPU, the sequence is split: a summary kernel writes each chunk's
// map, chunk_carry_kernel turns them into the state entering each chunk (sequentially over the chunks of a row),
// and the main kernel rescans each chunk from its carried state. With one chunk only the main kernel runs.
//
// Backward. g_t = dL/dh_t obeys g_t = C_t dy_t + a_{t+1} g_{t+1}; with q_t = a_t g_t this is the reverse affine
// recurrence q_t = a_t q_{t+1} + a_t C_t dy_t, summarised and carried like the forward one (Q_c, from the end).
// The main backward kernel sweeps its chunk forward once and keeps the state entering each group of kItems
// positions in shared memory (each thread only its own slots, so no barrier is needed), then walks the groups
// in reverse: it recomputes h inside the group from the kept state, runs q backwards, and forms every gradient
// (formulas in cpu/selective_scan_cpu.cpp). dB and dC sum over the channels of a group: a warp sum (shuffles) and
// one atomicAdd per position when the warp's channels are in one group (every MSVMamba), else one atomicAdd per
// lane. dA, dD and ddelta_bias are per-lane sums added atomically per channel at the end.
//
// Half-res: summed routes add into a float32 output with atomicAdd (three adds per element, from the three
// positions that read it), and so do du / ddelta.
//
// This header is torch-free: the device code, the chunk plan and the launch functions. The real build compiles it
// with nvcc against the CUDA runtime; the emulated build (csrc/selective_scan/emulated/) compiles the same code
// with the host compiler against csrc/emulated_cuda/cuda_emulator.h, which runs the kernels on the CPU. Element
// types are template parameters: the glue (scan_host.h) instantiates them with float, c10::Half and c10::BFloat16.
// Tensor checks and allocation live in scan_host.h.
#pragma once

#if defined(MMMSVMAMBA_EMULATED_CUDA)
#include "../../emulated_cuda/cuda_emulator.h"
// MMMSVMAMBA_LAUNCH(grid, block, smem, stream, kernel)(args...) is kernel<<<grid, block, smem, stream>>>(args...);
// the kernel comes last so that the commas of its template arguments need no parentheses.
#define MMMSVMAMBA_LAUNCH(grid, block, smem, stream, ...) \
  ::emulated_cuda::launch<__VA_ARGS__>(grid, block, smem, stream)
#else
#include <cuda_runtime.h>
#define MMMSVMAMBA_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../route_order.h"
#include "../scan_math.h"

namespace mmmsvmamba {
namespace cuda_scan {

constexpr int kSlice = 32;                        // channels per warp, one per lane
constexpr int kWarps = 4;                         // (slice, chunk) pairs per block
constexpr int kThreads = 32 * kWarps;
constexpr int kItems = 4;                         // positions a lane loads before it scans them
constexpr int kChunkAlign = 128;                  // every chunk but the last is a multiple of this many positions
constexpr int kMaxFwdChunk = 64 * kChunkAlign;    // forward: positions per chunk at most
constexpr int kMaxSteps = kChunkAlign / kItems;   // backward: groups of kItems positions per chunk at most
constexpr int kMaxBwdChunk = kMaxSteps * kItems;  // backward: positions per chunk at most (their entry states fit)
constexpr int kWarpsPerMultiprocessor = 32;       // resident warps plan_chunks aims for
constexpr unsigned kFullMask = 0xffffffffu;
constexpr size_t kStaticSharedLimit = 48 * 1024;  // bytes of static __shared__ memory a block may declare

// Fields shared by the forward and backward kernels. Pointers to u, delta, B, C are in the input dtype.
struct Params {
  const void *u, *delta, *B, *C;
  const float *A, *D, *delta_bias;  // D and delta_bias may be null
  int batch, dim, groups, group_size;
  int slices;  // warps across the channels: ceil(dim / kSlice)
  int plane;   // positions of a batch element's map (or sequence); B and C have `groups` values per position
  int seqlen;  // scanned positions per row
  int height, width;
  bool softplus;
  bool sum_routes;
  // output positions per batch element: seqlen (sequence, stacked half-res routes) or plane (summed routes)
  int64_t out_batch;
  int chunk_len, n_chunks;
  // (batch * dim, n_chunks) chunk maps and carried states; chunk_q / carry_q only in the backward
  float *chunk_a, *chunk_x, *chunk_q, *carry_h, *carry_q;
};

struct FwdParams : Params {
  void* out;  // float32 when out_float or summed half-res routes (accumulated), else the input dtype
  bool out_float;
};

struct BwdParams : Params {
  const float* dout;
  void* du;      // input dtype for the sequence op, float32 accumulators for the half-res op
  void* ddelta;  // as du
  float *dB, *dC;                // (batch, plane, groups), zero-initialised, accumulated
  float *dA, *dD, *ddelta_bias;  // (dim,), zero-initialised, accumulated
};

// [begin, end) of chunk `chunk`. The end is computed in 64 bits: begin + chunk_len overflows int for the last
// chunk when seqlen > INT_MAX - chunk_len (make_params admits seqlen up to INT_MAX - kChunkAlign).
struct ChunkRange {
  int begin, end;
};
MMMSVMAMBA_HOST_DEVICE inline ChunkRange chunk_range(const Params& p, int chunk) {
  const int64_t begin = static_cast<int64_t>(chunk) * p.chunk_len;
  const int64_t end = begin + p.chunk_len < p.seqlen ? begin + p.chunk_len : p.seqlen;
  return {static_cast<int>(begin), static_cast<int>(end)};
}

// What a lane works on: batch element b, channel d of chunk `chunk`, with its row pointers and parameters.
// Element offsets are 64-bit: position * dim exceeds int for long sequences of wide maps.
template <typename in_t>
struct Lane {
  int lane, b, d, chunk;
  bool valid;      // d is a channel; lanes past the last one read channel dim - 1 and store nothing
  bool one_group;  // all valid channels of the warp are in group g (dB / dC: one warp sum per position)
  int g;
  int64_t row;       // b * dim + d: index of the lane's (b, d) row in the chunk buffers
  int64_t in_base;   // element (b, position 0, d) of u, delta, du, ddelta
  int64_t bc_base;   // element (b, position 0, g) of B, C, dB, dC
  int64_t out_base;  // element (b, output position 0, d) of the output and dout
  const in_t *u, *delta, *B, *C;
  float A, D, bias;

  __device__ int64_t chunk_index(const Params& p) const { return row * p.n_chunks + chunk; }
};

// Fills `l` for this thread; false for a warp past the last (slice, chunk) pair (the whole warp returns).
template <typename in_t>
__device__ __forceinline__ bool lane_of(const Params& p, Lane<in_t>& l) {
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (warp >= static_cast<int64_t>(p.slices) * p.n_chunks) return false;
  l.lane = threadIdx.x % 32;
  l.b = blockIdx.y;
  l.chunk = static_cast<int>(warp % p.n_chunks);
  const int first = static_cast<int>(warp / p.n_chunks) * kSlice;
  l.valid = first + l.lane < p.dim;
  l.d = min(first + l.lane, p.dim - 1);
  l.g = l.d / p.group_size;
  l.one_group = first / p.group_size == (min(first + kSlice, p.dim) - 1) / p.group_size;
  l.row = static_cast<int64_t>(l.b) * p.dim + l.d;
  l.in_base = static_cast<int64_t>(l.b) * p.plane * p.dim + l.d;
  l.bc_base = static_cast<int64_t>(l.b) * p.plane * p.groups + l.g;
  l.out_base = l.b * p.out_batch * p.dim + l.d;
  l.u = static_cast<const in_t*>(p.u) + l.in_base;
  l.delta = static_cast<const in_t*>(p.delta) + l.in_base;
  l.B = static_cast<const in_t*>(p.B) + l.bc_base;
  l.C = static_cast<const in_t*>(p.C) + l.bc_base;
  l.A = p.A[l.d];
  l.D = p.D ? p.D[l.d] : 0.f;
  l.bias = p.delta_bias ? p.delta_bias[l.d] : 0.f;
  return true;
}

// The lane's kItems steps from position t0 (positions at or past `end` are the identity map).
struct Steps {
  int n;                  // valid steps: min(kItems, end - t0), the same for all lanes of the warp
  int pos[kItems];        // map (or sequence) position of each step
  int64_t out[kItems];    // output position of each step
  float u[kItems], pre[kItems], B[kItems];  // pre = delta + bias (the softplus derivative needs it)
  float dt[kItems], a[kItems], x[kItems];   // dt = softplus(pre) or pre, a = exp(dt A), x = dt B u
};

template <bool kHalfRes>
__device__ __forceinline__ int map_position(const Params& p, int t) {
  return kHalfRes ? half_res_offset<int>(t, p.height, p.width) : t;
}

// Output position of scan step t at map position pos: t for the sequence and for stacked routes (route-major,
// route t / plane), pos for summed routes.
template <bool kHalfRes>
__device__ __forceinline__ int64_t output_position(const Params& p, int t, int pos) {
  if (!kHalfRes) return t;
  return p.sum_routes ? pos : static_cast<int64_t>(t / p.plane) * p.plane + pos;
}

template <typename in_t, bool kHalfRes>
__device__ __forceinline__ void load_steps(const Params& p, const Lane<in_t>& l, int t0, int end, Steps& s) {
  s.n = min(kItems, end - t0);
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int t = min(t0 + i, end - 1);  // clamped: steps past the end read a valid address and are ignored
    s.pos[i] = map_position<kHalfRes>(p, t);
    s.out[i] = output_position<kHalfRes>(p, t, s.pos[i]);
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    s.u[i] = static_cast<float>(l.u[static_cast<int64_t>(s.pos[i]) * p.dim]);
    s.pre[i] = static_cast<float>(l.delta[static_cast<int64_t>(s.pos[i]) * p.dim]);
    s.B[i] = static_cast<float>(l.B[static_cast<int64_t>(s.pos[i]) * p.groups]);
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    s.pre[i] += l.bias;
    float dt = s.pre[i];
    if (p.softplus) dt = dt <= kSoftplusThreshold ? log1pf(expf(dt)) : dt;
    const bool valid = i < s.n;
    s.dt[i] = dt;
    s.a[i] = valid ? expf(dt * l.A) : 1.f;
    s.x[i] = valid ? dt * s.B[i] * s.u[i] : 0.f;
  }
}

// C at the steps' positions.
template <typename in_t>
__device__ __forceinline__ void load_C(const Params& p, const Lane<in_t>& l, const Steps& s, float (&C)[kItems]) {
#pragma unroll
  for (int i = 0; i < kItems; ++i) C[i] = static_cast<float>(l.C[static_cast<int64_t>(s.pos[i]) * p.groups]);
}

// dout at the steps' output positions, zero past the end.
template <typename in_t>
__device__ __forceinline__ void load_dout(const BwdParams& p, const Lane<in_t>& l, const Steps& s,
                                          float (&dy)[kItems]) {
#pragma unroll
  for (int i = 0; i < kItems; ++i) dy[i] = i < s.n ? p.dout[l.out_base + s.out[i] * p.dim] : 0.f;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Forward. kSummary: write the chunk's map (chunk_a, chunk_x). Otherwise: scan from the carried state and write y.
template <typename in_t, bool kHalfRes, bool kSummary>
__global__ void __launch_bounds__(kThreads) scan_fwd_kernel(FwdParams p) {
  Lane<in_t> l;
  if (!lane_of(p, l)) return;
  const auto [begin, end] = chunk_range(p, l.chunk);
  float h = (!kSummary && p.n_chunks > 1) ? p.carry_h[l.chunk_index(p)] : 0.f;
  float chunk_a = 1.f;
  for (int t0 = begin; t0 < end; t0 += kItems) {
    Steps s;
    load_steps<in_t, kHalfRes>(p, l, t0, end, s);
    if constexpr (kSummary) {
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        h = s.a[i] * h + s.x[i];
        chunk_a *= s.a[i];
      }
    } else {
      float C[kItems], y[kItems];
      load_C(p, l, s, C);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        h = s.a[i] * h + s.x[i];
        y[i] = C[i] * h + l.D * s.u[i];
      }
      if (!l.valid) continue;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        if (i >= s.n) break;
        const int64_t at = l.out_base + s.out[i] * p.dim;
        if (kHalfRes && p.sum_routes) {
          atomicAdd(static_cast<float*>(p.out) + at, y[i]);
        } else if (p.out_float) {
          static_cast<float*>(p.out)[at] = y[i];
        } else {
          static_cast<in_t*>(p.out)[at] = static_cast<in_t>(y[i]);
        }
      }
    }
  }
  if (kSummary && l.valid) {
    p.chunk_a[l.chunk_index(p)] = chunk_a;
    p.chunk_x[l.chunk_index(p)] = h;
  }
}

// Backward chunk summary: the forward map (chunk_a, chunk_x) and the reverse one (chunk_a, chunk_q) of a chunk.
template <typename in_t, bool kHalfRes>
__global__ void __launch_bounds__(kThreads) scan_bwd_summary_kernel(BwdParams p) {
  Lane<in_t> l;
  if (!lane_of(p, l)) return;
  const auto [begin, end] = chunk_range(p, l.chunk);
  float chunk_a = 1.f, chunk_x = 0.f, chunk_q = 0.f;
  for (int t0 = begin; t0 < end; t0 += kItems) {
    Steps s;
    float C[kItems], dy[kItems];
    load_steps<in_t, kHalfRes>(p, l, t0, end, s);
    load_C(p, l, s, C);
    load_dout(p, l, s, dy);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      chunk_x = s.a[i] * chunk_x + s.x[i];
      chunk_q += chunk_a * s.a[i] * C[i] * dy[i];  // step i comes after what the chunk holds so far
      chunk_a *= s.a[i];
    }
  }
  if (l.valid) {
    const int64_t at = l.chunk_index(p);
    p.chunk_a[at] = chunk_a;
    p.chunk_x[at] = chunk_x;
    p.chunk_q[at] = chunk_q;
  }
}

// Turns chunk maps into carried states, one thread per row: carry_h[c] = h entering chunk c, and (backward)
// carry_q[c] = q flowing into the end of chunk c from the chunks after it.
static __global__ void chunk_carry_kernel(int64_t rows, int n_chunks, const float* chunk_a, const float* chunk_x,
                                          const float* chunk_q, float* carry_h, float* carry_q) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  const int64_t first = row * n_chunks;
  float h = 0.f;
  for (int c = 0; c < n_chunks; ++c) {
    carry_h[first + c] = h;
    h = chunk_a[first + c] * h + chunk_x[first + c];
  }
  if (chunk_q == nullptr) return;
  float q = 0.f;
  for (int c = n_chunks - 1; c >= 0; --c) {
    carry_q[first + c] = q;
    q = chunk_a[first + c] * q + chunk_q[first + c];
  }
}

// dB / dC of one position, summed over the warp's channels of a group (lanes past the last channel pass zeros).
template <typename in_t>
__device__ __forceinline__ void add_group_grads(const BwdParams& p, const Lane<in_t>& l, int pos, float dB,
                                                float dC) {
  const int64_t at = l.bc_base + static_cast<int64_t>(pos) * p.groups;
  if (l.one_group) {  // warp-uniform, so all lanes shuffle
    dB = warp_sum(dB);
    dC = warp_sum(dC);
    if (l.lane == 0) {
      atomicAdd(p.dB + at, dB);
      atomicAdd(p.dC + at, dC);
    }
  } else if (l.valid) {
    atomicAdd(p.dB + at, dB);
    atomicAdd(p.dC + at, dC);
  }
}

template <typename in_t, bool kHalfRes>
__global__ void __launch_bounds__(kThreads) scan_bwd_kernel(BwdParams p) {
  // h entering each group of kItems positions of the chunk; thread threadIdx.x reads and writes only column
  // threadIdx.x, so no barrier orders these accesses
  __shared__ float step_h[kMaxSteps][kThreads];
  static_assert(sizeof(step_h) <= kStaticSharedLimit);
  Lane<in_t> l;
  if (!lane_of(p, l)) return;  // whole warps: the shuffles below stay converged
  const auto [begin, end] = chunk_range(p, l.chunk);
  const int steps = (end - begin + kItems - 1) / kItems;  // <= kMaxSteps (plan_chunks with kMaxBwdChunk)
  float h = p.n_chunks > 1 ? p.carry_h[l.chunk_index(p)] : 0.f;
  for (int k = 0; k < steps; ++k) {  // forward sweep: the state entering each group
    step_h[k][threadIdx.x] = h;
    Steps s;
    load_steps<in_t, kHalfRes>(p, l, begin + k * kItems, end, s);
#pragma unroll
    for (int i = 0; i < kItems; ++i) h = s.a[i] * h + s.x[i];
  }

  float q = p.n_chunks > 1 ? p.carry_q[l.chunk_index(p)] : 0.f;  // q entering the chunk from its end
  float sum_dA = 0.f, sum_dD = 0.f, sum_dbias = 0.f;
  for (int k = steps - 1; k >= 0; --k) {
    Steps s;
    float C[kItems], dy[kItems];
    load_steps<in_t, kHalfRes>(p, l, begin + k * kItems, end, s);
    load_C(p, l, s, C);
    load_dout(p, l, s, dy);
    float h_prev[kItems];
    float state = step_h[k][threadIdx.x];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      h_prev[i] = state;
      state = s.a[i] * state + s.x[i];
    }
    float du[kItems], ddelta[kItems], dB[kItems], dC[kItems];
#pragma unroll
    for (int i = kItems - 1; i >= 0; --i) {  // steps past the end: dy = 0, a = 1, so g = q passes through
      const bool valid = i < s.n && l.valid;
      const float g = C[i] * dy[i] + q;  // dL/dh at this step
      q = s.a[i] * g;
      const float h_cur = s.a[i] * h_prev[i] + s.x[i];
      const float g_dt = g * s.dt[i];
      const float a_hprev = s.a[i] * h_prev[i];
      float dsoftplus = 1.f;
      if (p.softplus) dsoftplus = s.pre[i] <= kSoftplusThreshold ? 1.f / (1.f + expf(-s.pre[i])) : 1.f;
      du[i] = dy[i] * l.D + g_dt * s.B[i];
      ddelta[i] = g * (s.B[i] * s.u[i] + l.A * a_hprev) * dsoftplus;
      dB[i] = valid ? g_dt * s.u[i] : 0.f;
      dC[i] = valid ? dy[i] * h_cur : 0.f;
      if (valid) {
        sum_dA += g_dt * a_hprev;
        sum_dD += dy[i] * s.u[i];
        sum_dbias += ddelta[i];
      }
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (i >= s.n) break;  // warp-uniform
      add_group_grads(p, l, s.pos[i], dB[i], dC[i]);
      if (!l.valid) continue;
      const int64_t at = l.in_base + static_cast<int64_t>(s.pos[i]) * p.dim;
      if constexpr (kHalfRes) {  // three route positions read each map element
        atomicAdd(static_cast<float*>(p.du) + at, du[i]);
        atomicAdd(static_cast<float*>(p.ddelta) + at, ddelta[i]);
      } else {
        static_cast<in_t*>(p.du)[at] = static_cast<in_t>(du[i]);
        static_cast<in_t*>(p.ddelta)[at] = static_cast<in_t>(ddelta[i]);
      }
    }
  }
  if (l.valid) {
    atomicAdd(p.dA + l.d, sum_dA);
    atomicAdd(p.dD + l.d, sum_dD);
    atomicAdd(p.ddelta_bias + l.d, sum_dbias);
  }
}

// ---- host side ----

// Chunks per row: one when batch x slices fill the GPU (kWarpsPerMultiprocessor warps per multiprocessor), else
// enough to do so, but none shorter than kChunkAlign positions; never longer than max_chunk (kMaxFwdChunk or
// kMaxBwdChunk). Sets chunk_len (a multiple of kChunkAlign) and n_chunks. Needs batch, slices and seqlen > 0.
inline void plan_chunks(Params& k, int multiprocessors, int max_chunk) {
  const int64_t row_warps = static_cast<int64_t>(k.batch) * k.slices;
  const int64_t wanted_warps = static_cast<int64_t>(kWarpsPerMultiprocessor) * multiprocessors;
  const int64_t units = (static_cast<int64_t>(k.seqlen) + kChunkAlign - 1) / kChunkAlign;
  int64_t chunks = row_warps >= wanted_warps ? 1 : (wanted_warps + row_warps - 1) / row_warps;
  chunks = std::min(chunks, units);
  const int64_t max_units = max_chunk / kChunkAlign;
  chunks = std::max(chunks, (units + max_units - 1) / max_units);
  const int64_t units_per_chunk = (units + chunks - 1) / chunks;
  k.chunk_len = static_cast<int>(units_per_chunk * kChunkAlign);
  k.n_chunks = static_cast<int>((units + units_per_chunk - 1) / units_per_chunk);
}

// Blocks along x: the (slice, chunk) pairs, kWarps per block.
inline int64_t scan_blocks(const Params& k) {
  return (static_cast<int64_t>(k.slices) * k.n_chunks + kWarps - 1) / kWarps;
}

inline dim3 scan_grid(const Params& k) { return dim3(static_cast<unsigned>(scan_blocks(k)), k.batch); }

inline cudaError_t launch_chunk_carry(const Params& k, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(k.batch) * k.dim;
  constexpr int threads = 256;
  MMMSVMAMBA_LAUNCH(static_cast<unsigned>((rows + threads - 1) / threads), threads, 0, stream, chunk_carry_kernel)(
      rows, k.n_chunks, k.chunk_a, k.chunk_x, k.chunk_q, k.carry_h, k.carry_q);
  return cudaGetLastError();
}

// The kernels of one forward: with several chunks the summaries and carries first, then the scan. Call with a
// non-empty problem (the grid has no zero dimension) and, for n_chunks > 1, the buffers of chunk_buffers().
template <typename in_t, bool kHalfRes>
cudaError_t launch_fwd(const FwdParams& k, cudaStream_t stream) {
  const dim3 grid = scan_grid(k);
  if (k.n_chunks > 1) {
    MMMSVMAMBA_LAUNCH(grid, kThreads, 0, stream, scan_fwd_kernel<in_t, kHalfRes, true>)(k);
    if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
    if (const cudaError_t err = launch_chunk_carry(k, stream); err != cudaSuccess) return err;
  }
  MMMSVMAMBA_LAUNCH(grid, kThreads, 0, stream, scan_fwd_kernel<in_t, kHalfRes, false>)(k);
  return cudaGetLastError();
}

// The kernels of one backward, as launch_fwd.
template <typename in_t, bool kHalfRes>
cudaError_t launch_bwd(const BwdParams& k, cudaStream_t stream) {
  const dim3 grid = scan_grid(k);
  if (k.n_chunks > 1) {
    MMMSVMAMBA_LAUNCH(grid, kThreads, 0, stream, scan_bwd_summary_kernel<in_t, kHalfRes>)(k);
    if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
    if (const cudaError_t err = launch_chunk_carry(k, stream); err != cudaSuccess) return err;
  }
  MMMSVMAMBA_LAUNCH(grid, kThreads, 0, stream, scan_bwd_kernel<in_t, kHalfRes>)(k);
  return cudaGetLastError();
}

}  // namespace cuda_scan
}  // namespace mmmsvmamba
