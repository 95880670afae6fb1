// CUDA kernels of the d_state = 1 selective scan (sequence layout) and of the fused MS2D half-resolution scan.
//
// Work split. A block has kWarps warps; warp w scans channel d = blockIdx.y * kWarps + w of batch blockIdx.z over
// chunk blockIdx.x of the sequence. A warp walks its chunk in tiles of kTile = 32 * kItems positions: lane l
// holds positions [l * kItems, (l + 1) * kItems) of the tile in registers, composes them serially, and a warp
// scan (shuffles) combines the lanes. The state entering a tile is carried from the previous tile.
//
// Chunks. Each step of the recurrence is the affine map h -> a h + x, and maps compose associatively, so a chunk
// is summarised by one map (A_c, X_c). When batch x channels alone do not fill the GPU (detection, batch 2),
// the sequence is split into chunks: a summary kernel writes each chunk's map, chunk_carry_kernel turns them into
// the state entering each chunk (sequentially over the few chunks of a row), and the main kernel rescans each
// chunk from its carried state. With one chunk (classification shapes) only the main kernel runs.
//
// Backward. g_t = dL/dh_t obeys g_t = C_t dy_t + a_{t+1} g_{t+1}; with q_t = a_t g_t this is the reverse affine
// recurrence q_t = a_t q_{t+1} + a_t C_t dy_t, summarised and carried like the forward one (Q_c, from the end).
// The main backward kernel first sweeps its chunk forward to store the state entering each tile (shared
// memory), then sweeps the tiles in reverse: it recomputes h inside the tile, runs q backwards, and forms every
// gradient (formulas in cpu/selective_scan_cpu.cpp). dB and dC sum over the channels of a group: the block adds
// its warps' contributions in shared memory first, then one atomicAdd per position and group goes to global
// memory. dA, dD and ddelta_bias are warp sums added atomically per channel.
//
// Half-resolution layout: positions are mapped to plane offsets by half_res_offset (index arithmetic, no
// permuted copies). Summed routes add into a float32 output with atomicAdd (three adds per element, from
// different blocks), and so do du / ddelta (each plane element is read by three route positions).
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

namespace mmmsvmamba {
namespace cuda_scan {

constexpr int kWarps = 4;             // channels per block
constexpr int kThreads = 32 * kWarps;
constexpr int kItems = 4;             // consecutive positions per lane
constexpr int kTile = 32 * kItems;    // positions per warp step
constexpr int kMaxTiles = 64;         // tiles per chunk (the backward keeps one state per tile in shared memory)
constexpr unsigned kFullMask = 0xffffffffu;
constexpr size_t kStaticSharedLimit = 48 * 1024;  // bytes of static __shared__ memory a block may declare

// Fields shared by the forward and backward kernels. Pointers to u, delta, B, C are in the input dtype.
struct Params {
  const void *u, *delta, *B, *C;
  const float *A, *D, *delta_bias;  // D and delta_bias may be null
  int batch, dim, groups, group_size;
  int plane;   // elements of a (b, d) plane of u; B and C have one plane per (b, g)
  int seqlen;  // scanned positions per row
  int height, width;
  bool softplus;
  bool vectorized;  // sequence layout with aligned rows: kItems positions per lane move as one load / store
  int chunk_len, n_chunks;
  // output (and dout) element of row (b, d), position t, plane offset p:
  //   b * out_batch_stride + d * out_row_stride + (stacked half-res ? route(t) * out_route_stride : 0) + p
  int64_t out_batch_stride, out_row_stride, out_route_stride;
  bool sum_routes;
  // (rows, n_chunks) chunk maps and carried states; chunk_q / carry_q only in the backward
  float *chunk_a, *chunk_x, *chunk_q, *carry_h, *carry_q;
};

struct FwdParams : Params {
  void* out;       // float32 when out_float or summed half-res routes (accumulated), else the input dtype
  bool out_float;
};

struct BwdParams : Params {
  const float* dout;
  void* du;      // input dtype for the sequence layout, float32 accumulators for the half-res layout
  void* ddelta;  // as du
  float *dB, *dC;               // (batch, groups, plane), zero-initialised, accumulated
  float *dA, *dD, *ddelta_bias;  // (dim,), zero-initialised, accumulated
};

// [begin, end) of chunk `chunk`. The end is computed in 64 bits: begin + chunk_len overflows int for the last
// chunk when seqlen > INT_MAX - chunk_len (make_params admits seqlen up to INT_MAX - kTile).
struct ChunkRange {
  int begin, end;
};
MMMSVMAMBA_HOST_DEVICE inline ChunkRange chunk_range(const Params& p, int chunk) {
  const int64_t begin = static_cast<int64_t>(chunk) * p.chunk_len;
  const int64_t end = begin + p.chunk_len < p.seqlen ? begin + p.chunk_len : p.seqlen;
  return {static_cast<int>(begin), static_cast<int>(end)};
}

template <typename T>
struct alignas(sizeof(T) * kItems) Vec {
  T v[kItems];
};

template <bool kHalfRes>
__device__ __forceinline__ int plane_offset(const Params& p, int t) {
  return kHalfRes ? half_res_offset<int>(t, p.height, p.width) : t;
}

template <bool kHalfRes>
__device__ __forceinline__ int64_t out_offset(const Params& p, int t, int pos) {
  if (!kHalfRes || p.sum_routes) return pos;
  return (t / p.plane) * p.out_route_stride + pos;
}

// Loads the lane's n valid items (zeros beyond) from `row` at plane offsets pos[], as float.
template <typename T>
__device__ __forceinline__ void load_items(const T* row, const int (&pos)[kItems], int n, bool vector,
                                           float (&out)[kItems]) {
  if (vector && n == kItems) {
    const Vec<T> v = *reinterpret_cast<const Vec<T>*>(row + pos[0]);
#pragma unroll
    for (int i = 0; i < kItems; ++i) out[i] = static_cast<float>(v.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < kItems; ++i) out[i] = i < n ? static_cast<float>(row[pos[i]]) : 0.f;
  }
}

template <typename T>
__device__ __forceinline__ void store_items(T* row, const int64_t (&offset)[kItems], int n, bool vector,
                                            const float (&val)[kItems]) {
  if (vector && n == kItems) {
    Vec<T> v;
#pragma unroll
    for (int i = 0; i < kItems; ++i) v.v[i] = static_cast<T>(val[i]);
    *reinterpret_cast<Vec<T>*>(row + offset[0]) = v;
  } else {
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (i < n) row[offset[i]] = static_cast<T>(val[i]);
    }
  }
}

__device__ __forceinline__ void add_items(float* row, const int64_t (&offset)[kItems], int n,
                                          const float (&val)[kItems]) {
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    if (i < n) atomicAdd(row + offset[i], val[i]);
  }
}

// The row pointers and per-channel constants of warp's (b, d), and the lane's items in the current tile.
template <typename in_t>
struct Row {
  const in_t *u, *delta, *B, *C;
  float A, D, bias;
  int64_t index;     // b * dim + d
  int64_t bc_index;  // b * groups + g
  int64_t out_base;

  __device__ Row(const Params& p, int b, int d) {
    index = static_cast<int64_t>(b) * p.dim + d;
    bc_index = static_cast<int64_t>(b) * p.groups + d / p.group_size;
    u = static_cast<const in_t*>(p.u) + index * p.plane;
    delta = static_cast<const in_t*>(p.delta) + index * p.plane;
    B = static_cast<const in_t*>(p.B) + bc_index * p.plane;
    C = static_cast<const in_t*>(p.C) + bc_index * p.plane;
    A = p.A[d];
    D = p.D ? p.D[d] : 0.f;
    bias = p.delta_bias ? p.delta_bias[d] : 0.f;
    out_base = b * p.out_batch_stride + d * p.out_row_stride;
  }
};

struct Items {
  int t0;  // position of item 0
  int n;   // valid items (the tile may end inside this lane)
  int pos[kItems];
  int64_t out[kItems];
  float u[kItems], dt[kItems], a[kItems], x[kItems];
};

// Positions, inputs u / B, and the step maps (a, x) of the lane's items; invalid items are the identity map.
// Also returns delta + bias in pre[] (needed for the softplus derivative) and B in Bv[].
template <typename in_t, bool kHalfRes>
__device__ __forceinline__ void load_steps(const Params& p, const Row<in_t>& r, int t0, int end, Items& it,
                                           float (&pre)[kItems], float (&Bv)[kItems]) {
  it.t0 = t0;
  it.n = max(0, min(kItems, end - t0));
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int t = min(t0 + i, p.seqlen - 1);  // clamped: invalid items read a valid address and are ignored
    it.pos[i] = plane_offset<kHalfRes>(p, t);
    it.out[i] = out_offset<kHalfRes>(p, t, it.pos[i]);
  }
  const bool vector = !kHalfRes && p.vectorized;
  load_items(r.u, it.pos, it.n, vector, it.u);
  load_items(r.delta, it.pos, it.n, vector, pre);
  load_items(r.B, it.pos, it.n, vector, Bv);
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    pre[i] += r.bias;
    float dt = pre[i];
    if (p.softplus) dt = dt <= 20.f ? log1pf(expf(dt)) : dt;  // torch's softplus threshold
    const bool valid = i < it.n;
    it.dt[i] = dt;
    it.a[i] = valid ? expf(dt * r.A) : 1.f;
    it.x[i] = valid ? dt * Bv[i] * it.u[i] : 0.f;
  }
}

// dout at the lane's items (same layout as the forward output).
template <bool kHalfRes, typename in_t>
__device__ __forceinline__ void load_dout(const BwdParams& p, const Row<in_t>& r, const Items& it,
                                          float (&dy)[kItems]) {
  if constexpr (kHalfRes) {
#pragma unroll
    for (int i = 0; i < kItems; ++i) dy[i] = i < it.n ? p.dout[r.out_base + it.out[i]] : 0.f;
  } else {
    load_items(p.dout + r.out_base, it.pos, it.n, p.vectorized, dy);
  }
}

// The composition of the lane's step maps, in order: h -> a h + x.
__device__ __forceinline__ void lane_map(const Items& it, float& a, float& x) {
  a = 1.f;
  x = 0.f;
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    x = it.a[i] * x + it.x[i];
    a *= it.a[i];
  }
}

// Inclusive scan of maps over lanes in order (lane 0 first): on return (a, x) composes lanes 0..lane.
__device__ __forceinline__ void warp_scan_forward(float& a, float& x, int lane) {
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const float a_prev = __shfl_up_sync(kFullMask, a, offset);
    const float x_prev = __shfl_up_sync(kFullMask, x, offset);
    if (lane >= offset) {
      x = a * x_prev + x;
      a = a * a_prev;
    }
  }
}

// Inclusive scan of reverse maps q -> a q + c over lanes from the last: on return it composes lanes lane..31.
__device__ __forceinline__ void warp_scan_reverse(float& a, float& c, int lane) {
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const float a_next = __shfl_down_sync(kFullMask, a, offset);
    const float c_next = __shfl_down_sync(kFullMask, c, offset);
    if (lane + offset < 32) {
      c = a * c_next + c;
      a = a * a_next;
    }
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Forward. kSummary: write the chunk's map (chunk_a, chunk_x). Otherwise: scan from the carried state and write y.
template <typename in_t, bool kHalfRes, bool kSummary>
__global__ void __launch_bounds__(kThreads) scan_fwd_kernel(FwdParams p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int b = blockIdx.z, d = blockIdx.y * kWarps + warp, chunk = blockIdx.x;
  if (d >= p.dim) return;  // whole warps only: the shuffles below stay converged
  const Row<in_t> r(p, b, d);
  const auto [begin, end] = chunk_range(p, chunk);
  const int64_t chunk_index = r.index * p.n_chunks + chunk;
  float h = (!kSummary && p.n_chunks > 1) ? p.carry_h[chunk_index] : 0.f;
  float chunk_a = 1.f;
  for (int base = begin; base < end; base += kTile) {
    Items it;
    float pre[kItems], Bv[kItems];
    load_steps<in_t, kHalfRes>(p, r, base + lane * kItems, end, it, pre, Bv);
    float a, x;
    lane_map(it, a, x);
    warp_scan_forward(a, x, lane);
    const float tile_a = __shfl_sync(kFullMask, a, 31), tile_x = __shfl_sync(kFullMask, x, 31);
    if constexpr (kSummary) {
      chunk_a *= tile_a;
      h = tile_a * h + tile_x;
    } else {
      float before_a = __shfl_up_sync(kFullMask, a, 1), before_x = __shfl_up_sync(kFullMask, x, 1);
      if (lane == 0) before_a = 1.f, before_x = 0.f;
      float state = before_a * h + before_x;  // h entering the lane's first item
      float Cv[kItems], y[kItems];
      load_items(r.C, it.pos, it.n, !kHalfRes && p.vectorized, Cv);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        state = it.a[i] * state + it.x[i];
        y[i] = Cv[i] * state + r.D * it.u[i];
      }
      const bool vector = !kHalfRes && p.vectorized;
      if (kHalfRes && p.sum_routes) {
        add_items(static_cast<float*>(p.out) + r.out_base, it.out, it.n, y);
      } else if (p.out_float) {
        store_items(static_cast<float*>(p.out) + r.out_base, it.out, it.n, vector, y);
      } else {
        store_items(static_cast<in_t*>(p.out) + r.out_base, it.out, it.n, vector, y);
      }
      h = tile_a * h + tile_x;
    }
  }
  if (kSummary && lane == 0) {
    p.chunk_a[chunk_index] = chunk_a;
    p.chunk_x[chunk_index] = h;
  }
}

// Backward chunk summary: the forward map (chunk_a, chunk_x) and the reverse one (chunk_a, chunk_q) of a chunk.
template <typename in_t, bool kHalfRes>
__global__ void __launch_bounds__(kThreads) scan_bwd_summary_kernel(BwdParams p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int b = blockIdx.z, d = blockIdx.y * kWarps + warp, chunk = blockIdx.x;
  if (d >= p.dim) return;
  const Row<in_t> r(p, b, d);
  const auto [begin, end] = chunk_range(p, chunk);
  float chunk_a = 1.f, chunk_x = 0.f, chunk_q = 0.f;
  for (int base = begin; base < end; base += kTile) {
    Items it;
    float pre[kItems], Bv[kItems], Cv[kItems], dy[kItems];
    load_steps<in_t, kHalfRes>(p, r, base + lane * kItems, end, it, pre, Bv);
    load_items(r.C, it.pos, it.n, !kHalfRes && p.vectorized, Cv);
    load_dout<kHalfRes>(p, r, it, dy);
    float a, x, q = 0.f;
    lane_map(it, a, x);
#pragma unroll
    for (int i = kItems - 1; i >= 0; --i) q = it.a[i] * (q + Cv[i] * dy[i]);
    float ra = a;
    warp_scan_forward(a, x, lane);
    warp_scan_reverse(ra, q, lane);
    const float tile_a = __shfl_sync(kFullMask, a, 31), tile_x = __shfl_sync(kFullMask, x, 31);
    const float tile_q = __shfl_sync(kFullMask, q, 0);
    chunk_x = tile_a * chunk_x + tile_x;
    chunk_q = chunk_a * tile_q + chunk_q;  // the tile comes after what the chunk holds so far
    chunk_a *= tile_a;
  }
  if (lane == 0) {
    const int64_t chunk_index = r.index * p.n_chunks + chunk;
    p.chunk_a[chunk_index] = chunk_a;
    p.chunk_x[chunk_index] = chunk_x;
    p.chunk_q[chunk_index] = chunk_q;
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

template <typename in_t, bool kHalfRes>
__global__ void __launch_bounds__(kThreads) scan_bwd_kernel(BwdParams p) {
  __shared__ float tile_h[kWarps][kMaxTiles];        // h entering each tile of the chunk, per warp
  __shared__ float part_B[kWarps][kTile], part_C[kWarps][kTile];  // per-warp dB / dC of the current tile
  static_assert(sizeof(tile_h) + sizeof(part_B) + sizeof(part_C) <= kStaticSharedLimit);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int b = blockIdx.z, d0 = blockIdx.y * kWarps, chunk = blockIdx.x;
  const bool active = d0 + warp < p.dim;  // inactive warps still join the block-wide reduction below
  const Row<in_t> r(p, b, active ? d0 + warp : d0);
  const auto [begin, end] = chunk_range(p, chunk);
  const int tiles = (end - begin + kTile - 1) / kTile;
  const int64_t chunk_index = r.index * p.n_chunks + chunk;
  const bool vector = !kHalfRes && p.vectorized;

  if (active) {  // forward sweep: the state entering each tile
    float h = p.n_chunks > 1 ? p.carry_h[chunk_index] : 0.f;
    for (int k = 0; k < tiles; ++k) {
      Items it;
      float pre[kItems], Bv[kItems];
      load_steps<in_t, kHalfRes>(p, r, begin + k * kTile + lane * kItems, end, it, pre, Bv);
      float a, x;
      lane_map(it, a, x);
      warp_scan_forward(a, x, lane);
      if (lane == 0) tile_h[warp][k] = h;
      h = __shfl_sync(kFullMask, a, 31) * h + __shfl_sync(kFullMask, x, 31);
    }
    __syncwarp();
  }

  float q = active && p.n_chunks > 1 ? p.carry_q[chunk_index] : 0.f;  // q entering the chunk from its end
  float sum_dA = 0.f, sum_dD = 0.f, sum_dbias = 0.f;
  for (int k = tiles - 1; k >= 0; --k) {
    const int base = begin + k * kTile;
    if (active) {
      Items it;
      float pre[kItems], Bv[kItems], Cv[kItems], dy[kItems];
      load_steps<in_t, kHalfRes>(p, r, base + lane * kItems, end, it, pre, Bv);
      load_items(r.C, it.pos, it.n, vector, Cv);
      load_dout<kHalfRes>(p, r, it, dy);
      // h before each item: forward scan of the tile from its stored entry state
      float a, x;
      lane_map(it, a, x);
      float ra = a, rq = 0.f;
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) rq = it.a[i] * (rq + Cv[i] * dy[i]);
      warp_scan_forward(a, x, lane);
      float before_a = __shfl_up_sync(kFullMask, a, 1), before_x = __shfl_up_sync(kFullMask, x, 1);
      if (lane == 0) before_a = 1.f, before_x = 0.f;
      float h_prev[kItems];
      float state = before_a * tile_h[warp][k] + before_x;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        h_prev[i] = state;
        state = it.a[i] * state + it.x[i];
      }
      // q after the lane's last item: reverse scan of the tile from the q entering its end
      warp_scan_reverse(ra, rq, lane);
      float after_a = __shfl_down_sync(kFullMask, ra, 1), after_q = __shfl_down_sync(kFullMask, rq, 1);
      if (lane == 31) after_a = 1.f, after_q = 0.f;
      float next_q = after_a * q + after_q;
      q = __shfl_sync(kFullMask, ra, 0) * q + __shfl_sync(kFullMask, rq, 0);  // q entering the tile's start

      float du[kItems], ddelta[kItems];
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) {
        const bool valid = i < it.n;
        const float g = Cv[i] * dy[i] + next_q;  // dL/dh at this item
        next_q = it.a[i] * g;
        const float h_cur = it.a[i] * h_prev[i] + it.x[i];
        const float g_dt = g * it.dt[i];
        const float a_hprev = it.a[i] * h_prev[i];
        float dsoftplus = 1.f;
        if (p.softplus) dsoftplus = pre[i] <= 20.f ? 1.f / (1.f + expf(-pre[i])) : 1.f;
        du[i] = dy[i] * r.D + g_dt * Bv[i];
        ddelta[i] = g * (Bv[i] * it.u[i] + r.A * a_hprev) * dsoftplus;
        part_B[warp][lane * kItems + i] = valid ? g_dt * it.u[i] : 0.f;
        part_C[warp][lane * kItems + i] = valid ? dy[i] * h_cur : 0.f;
        if (valid) {
          sum_dA += g_dt * a_hprev;
          sum_dD += dy[i] * it.u[i];
          sum_dbias += ddelta[i];
        }
      }
      const int64_t plane_base = r.index * p.plane;
      int64_t offsets[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) offsets[i] = it.pos[i];
      if constexpr (kHalfRes) {
        add_items(static_cast<float*>(p.du) + plane_base, offsets, it.n, du);
        add_items(static_cast<float*>(p.ddelta) + plane_base, offsets, it.n, ddelta);
      } else {
        store_items(static_cast<in_t*>(p.du) + plane_base, offsets, it.n, vector, du);
        store_items(static_cast<in_t*>(p.ddelta) + plane_base, offsets, it.n, vector, ddelta);
      }
    } else {
#pragma unroll
      for (int i = 0; i < kItems; ++i) part_B[warp][lane * kItems + i] = part_C[warp][lane * kItems + i] = 0.f;
    }
    __syncthreads();
    // dB / dC of position base + j: sum the block's channels per group, one atomicAdd per group
    for (int j = threadIdx.x; j < kTile; j += kThreads) {
      const int t = base + j;
      if (t < end) {
        const int pos = plane_offset<kHalfRes>(p, t);
        int group = d0 / p.group_size;
        float sB = 0.f, sC = 0.f;
        for (int w = 0; w < kWarps && d0 + w < p.dim; ++w) {
          const int g = (d0 + w) / p.group_size;
          if (g != group) {
            const int64_t at = (static_cast<int64_t>(b) * p.groups + group) * p.plane + pos;
            atomicAdd(p.dB + at, sB);
            atomicAdd(p.dC + at, sC);
            sB = sC = 0.f;
            group = g;
          }
          sB += part_B[w][j];
          sC += part_C[w][j];
        }
        const int64_t at = (static_cast<int64_t>(b) * p.groups + group) * p.plane + pos;
        atomicAdd(p.dB + at, sB);
        atomicAdd(p.dC + at, sC);
      }
    }
    __syncthreads();
  }
  if (active) {
    sum_dA = warp_sum(sum_dA);
    sum_dD = warp_sum(sum_dD);
    sum_dbias = warp_sum(sum_dbias);
    if (lane == 0) {
      const int d = d0 + warp;
      atomicAdd(p.dA + d, sum_dA);
      atomicAdd(p.dD + d, sum_dD);
      atomicAdd(p.ddelta_bias + d, sum_dbias);
    }
  }
}

// ---- host side ----

constexpr int kMinTiles = 4;  // a split sequence gets chunks of at least this many tiles (the summary pass costs)

inline bool aligned(const void* ptr, size_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

// Chunks per row: one when batch x channel blocks fill the GPU (8 per multiprocessor), else enough to do so;
// never more than kMaxTiles tiles per chunk, nor fewer than kMinTiles. Sets chunk_len and n_chunks.
inline void plan_chunks(Params& k, int multiprocessors) {
  const int64_t row_blocks = static_cast<int64_t>(k.batch) * ((k.dim + kWarps - 1) / kWarps);
  const int64_t wanted_blocks = 8LL * multiprocessors;
  const int tiles = static_cast<int>((static_cast<int64_t>(k.seqlen) + kTile - 1) / kTile);
  int64_t chunks = row_blocks >= wanted_blocks ? 1 : (wanted_blocks + row_blocks - 1) / row_blocks;
  chunks = std::min<int64_t>(chunks, std::max(1, tiles / kMinTiles));
  chunks = std::max<int64_t>(chunks, (tiles + kMaxTiles - 1) / kMaxTiles);
  const int tiles_per_chunk = static_cast<int>((tiles + chunks - 1) / chunks);
  k.chunk_len = tiles_per_chunk * kTile;
  k.n_chunks = (tiles + tiles_per_chunk - 1) / tiles_per_chunk;
}

inline dim3 scan_grid(const Params& k) {
  return dim3(k.n_chunks, (k.dim + kWarps - 1) / kWarps, k.batch);
}

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
