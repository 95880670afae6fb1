// Test-only ops that check the emulated CUDA device itself (tests/ops/test_emulated_cuda.py): what a warp shuffle
// returns, that barriers, static shared memory, atomics and the built-in indices behave as on a GPU, and that each
// fault the emulator claims to catch fails the launch with a message naming kernel, block and thread.
//   _emulator_shuffle(op, width, arg, mask) -> int64 (32,): lane l's result of the shuffle `op` ('idx', 'idx_lane',
//       'up', 'down', 'xor') of the value 100 + l, for the lanes of `mask` (-1 for the others)
//   _emulator_block_sum(block, blocks) -> int64 (2,): the sum of all thread indices by a shared-memory tree and
//       atomicAdd over `blocks` blocks of `block` threads, and the number of threads that saw the right indices
//   _emulator_layout(bx, by, bz) -> int64 (bz, by, bx): x + 100 y + 10000 z as threadIdx reports it
//   _emulator_fault(case): launches a kernel with the fault `case` (see kFaults) and raises the launch's error
//   _emulator_race(case, fixed): launches a kernel with the memory hazard `case` (see kRaces), or with the barrier
//       or atomic that removes it when `fixed`, and raises the launch's error (the race-checking build reports it)
//   _emulator_race_checking() -> bool: whether this is the race-checking build
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstring>
#include <string>

#include "../../emulated_cuda/cuda_emulator.h"
#include "../../emulated_cuda/race_check.h"

namespace mmmsvmamba {
namespace emulator_selftest {
namespace {

enum class Shuffle { kIdx, kIdxLane, kUp, kDown, kXor };

__global__ void shuffle_kernel(Shuffle op, int width, int arg, unsigned mask, int64_t* out) {
  const int lane = threadIdx.x;
  if (!(mask >> lane & 1u)) {
    out[lane] = -1;
    return;
  }
  const int value = 100 + lane;
  int got = 0;
  switch (op) {
    case Shuffle::kIdx: got = __shfl_sync(mask, value, arg, width); break;
    case Shuffle::kIdxLane: got = __shfl_sync(mask, value, lane + arg, width); break;
    case Shuffle::kUp: got = __shfl_up_sync(mask, value, arg, width); break;
    case Shuffle::kDown: got = __shfl_down_sync(mask, value, arg, width); break;
    case Shuffle::kXor: got = __shfl_xor_sync(mask, value, arg, width); break;
  }
  out[lane] = got;
}

at::Tensor shuffle(const std::string& op, int64_t width, int64_t arg, int64_t mask) {
  Shuffle kind;
  if (op == "idx") kind = Shuffle::kIdx;
  else if (op == "idx_lane") kind = Shuffle::kIdxLane;
  else if (op == "up") kind = Shuffle::kUp;
  else if (op == "down") kind = Shuffle::kDown;
  else if (op == "xor") kind = Shuffle::kXor;
  else TORCH_CHECK(false, "_emulator_shuffle: unknown op ", op);
  at::Tensor out = at::empty({32}, at::kLong);
  emulated_cuda::launch<shuffle_kernel>(1, 32)(kind, static_cast<int>(width), static_cast<int>(arg),
                                               static_cast<unsigned>(mask), out.data_ptr<int64_t>());
  const cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, cudaGetErrorString(err));
  return out;
}

constexpr int kMaxBlock = 1024;

__global__ void block_sum_kernel(int* sum, int* right_indices) {
  __shared__ int partial[kMaxBlock];
  const int t = threadIdx.x;
  partial[t] = t;
  __syncthreads();
  // tree over the next power of two; threads past blockDim.x add nothing
  int span = 1;
  while (span < static_cast<int>(blockDim.x)) span <<= 1;
  for (int half = span / 2; half > 0; half /= 2) {
    if (t < half && t + half < static_cast<int>(blockDim.x)) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) atomicAdd(sum, partial[0]);
  const bool right = blockIdx.x < gridDim.x && blockIdx.y == 0 && blockIdx.z == 0 && threadIdx.y == 0 &&
                     gridDim.y == 1 && blockDim.y == 1;
  if (right) atomicAdd(right_indices, 1);
}

at::Tensor block_sum(int64_t block, int64_t blocks) {
  int sum = 0, right = 0;
  emulated_cuda::launch<block_sum_kernel>(static_cast<unsigned>(blocks), static_cast<unsigned>(block))(&sum, &right);
  const cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, cudaGetErrorString(err));
  at::Tensor out = at::empty({2}, at::kLong);
  out.data_ptr<int64_t>()[0] = sum;
  out.data_ptr<int64_t>()[1] = right;
  return out;
}

__global__ void layout_kernel(int64_t* out) {
  const int64_t linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[linear] = threadIdx.x + 100 * threadIdx.y + 10000 * threadIdx.z;
}

at::Tensor layout(int64_t bx, int64_t by, int64_t bz) {
  at::Tensor out = at::full({bz, by, bx}, -1, at::kLong);
  emulated_cuda::launch<layout_kernel>(1, dim3(bx, by, bz))(out.data_ptr<int64_t>());
  const cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, cudaGetErrorString(err));
  return out;
}

enum class Fault {
  kLaneNotInMask,
  kReadsOutsideMask,
  kLaneExited,
  kDifferentSyncPoints,
  kBadWidth,
  kSyncthreadsAfterExit,
  kDivergentSyncthreads,
  kSyncthreadsInWarpOp,
  kDeadlock,
  kLaunch,  // the launch configuration itself is invalid
};

__global__ void fault_kernel(Fault fault, int* sink) {
  const int t = threadIdx.x, lane = t % 32;
  int v = t;
  switch (fault) {
    case Fault::kLaneNotInMask:
      if (lane == 0) v = __shfl_sync(0x2u, v, 1);
      break;
    case Fault::kReadsOutsideMask:
      if (lane < 2) v = __shfl_sync(0x3u, v, 5);
      break;
    case Fault::kLaneExited:
      if (lane >= 16) return;
      v = __shfl_sync(0xffffffffu, v, 0);
      break;
    case Fault::kDifferentSyncPoints:
      if (lane % 2 == 0) {
        v = __shfl_sync(0xffffffffu, v, 0);
      } else {
        v = __shfl_sync(0xffffffffu, v, 1);
      }
      break;
    case Fault::kBadWidth:
      v = __shfl_sync(0xffffffffu, v, 0, 12);
      break;
    case Fault::kSyncthreadsAfterExit:
      if (t >= 32) return;
      __syncthreads();
      break;
    case Fault::kDivergentSyncthreads:
      if (t < 32) {
        __syncthreads();
      } else {
        __syncthreads();
      }
      break;
    case Fault::kSyncthreadsInWarpOp:
      if (lane == 0) {
        __syncthreads();
      } else {
        __syncwarp();
      }
      break;
    case Fault::kDeadlock:  // lanes 0, 1, 2 wait for each other in a cycle of warp syncs
      if (lane == 0) __syncwarp(0x3u);
      if (lane == 1) __syncwarp(0x6u);
      if (lane == 2) __syncwarp(0x5u);
      break;
    case Fault::kLaunch:
      break;
  }
  sink[t] = v;
}

struct FaultCase {
  const char* name;
  Fault fault;
  dim3 grid, block;
  size_t shared_bytes;
};

const FaultCase kFaults[] = {
    {"lane_not_in_mask", Fault::kLaneNotInMask, 1, 32, 0},
    {"reads_outside_mask", Fault::kReadsOutsideMask, 1, 32, 0},
    {"lane_exited", Fault::kLaneExited, 1, 32, 0},
    {"different_sync_points", Fault::kDifferentSyncPoints, 1, 32, 0},
    {"bad_width", Fault::kBadWidth, 1, 32, 0},
    {"syncthreads_after_exit", Fault::kSyncthreadsAfterExit, 2, 64, 0},
    {"divergent_syncthreads", Fault::kDivergentSyncthreads, 1, 64, 0},
    {"syncthreads_in_warp_op", Fault::kSyncthreadsInWarpOp, 1, 64, 0},
    {"deadlock", Fault::kDeadlock, 1, 32, 0},
    {"grid_x", Fault::kLaunch, dim3(2147483648u), 32, 0},
    {"grid_y", Fault::kLaunch, dim3(1, 65536), 32, 0},
    {"grid_z", Fault::kLaunch, dim3(1, 1, 65536), 32, 0},
    {"zero_grid", Fault::kLaunch, dim3(0), 32, 0},
    {"block_threads", Fault::kLaunch, 1, dim3(32, 33), 0},
    {"block_x", Fault::kLaunch, 1, dim3(1025), 0},
    {"block_z", Fault::kLaunch, 1, dim3(1, 1, 65), 0},
    {"dynamic_shared", Fault::kLaunch, 1, 32, 48 * 1024 + 1},
};

void fault(const std::string& name) {
  for (const FaultCase& c : kFaults) {
    if (name != c.name) continue;
    std::vector<int> sink(static_cast<size_t>(c.block.x) * c.block.y * c.block.z);
    emulated_cuda::launch<fault_kernel>(c.grid, c.block, c.shared_bytes)(c.fault, sink.data());
    const cudaError_t err = cudaGetLastError();
    TORCH_CHECK(err == cudaSuccess, cudaGetErrorString(err));
    return;
  }
  TORCH_CHECK(false, "_emulator_fault: unknown case ", name);
}

enum class Race {
  kWarpsShareSlot,
  kLaneReadsWithoutSyncwarp,
  kWriteAfterRead,
  kUninitialisedRead,
  kSharedOutOfBounds,
  kGlobalWriteWrite,
  kGlobalReadOfOtherBlock,
};

constexpr int kRaceSlots = 64;

// Each case is a hazard unless `fixed` adds the barrier (or atomic, or bound) that removes it.
__global__ void race_kernel(Race race, bool fixed, int index, float* out) {
  __shared__ float slots[kRaceSlots];
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  switch (race) {
    case Race::kWarpsShareSlot:  // lane 0 of warps 0 and 1 write slot 0 in one barrier interval
      if (warp == 0 && lane == 0) slots[0] = 1.f;
      if (fixed) __syncthreads();
      if (warp == 1 && lane == 0) slots[0] = 2.f;
      __syncthreads();
      out[t] = slots[0];
      break;
    case Race::kLaneReadsWithoutSyncwarp:  // lane 1 reads what lane 0 writes; a shuffle would not order it
      slots[lane] = 0.f;
      __syncthreads();
      if (lane == 0) slots[0] = 1.f;
      out[t] = __shfl_sync(0xffffffffu, static_cast<float>(t), 0);
      if (fixed) __syncwarp();
      if (lane == 1) out[t] = slots[0];
      break;
    case Race::kWriteAfterRead: {  // each thread reads its neighbour's slot, then overwrites its own
      slots[t] = static_cast<float>(t);
      __syncthreads();
      const float next = slots[(t + 1) % blockDim.x];
      if (fixed) __syncthreads();
      slots[t] = 2.f * next;
      __syncthreads();
      out[t] = slots[t];
      break;
    }
    case Race::kUninitialisedRead:
      if (fixed) slots[t] = 1.f;
      __syncthreads();
      out[t] = slots[t];
      break;
    case Race::kSharedOutOfBounds:  // `index` comes from the host, so the compiler cannot see it is out of range
      if (t == 0) slots[index] = 1.f;
      break;
    case Race::kGlobalWriteWrite:  // thread 0 of every block adds to out[0]
      if (t == 0) {
        if (fixed) {
          atomicAdd(out, 1.f);
        } else {
          out[0] += 1.f;
        }
      }
      break;
    case Race::kGlobalReadOfOtherBlock:  // block 1 reads what block 0 writes (fixed: what itself writes)
      if (t == 0) {
        out[blockIdx.x] = 1.f;
        out[2 + blockIdx.x] = out[fixed ? blockIdx.x : 0];
      }
      break;
  }
}

struct RaceCase {
  const char* name;
  Race race;
  unsigned blocks, threads;
  int index, fixed_index;  // kSharedOutOfBounds: the slot written
};

const RaceCase kRaces[] = {
    {"warps_share_slot", Race::kWarpsShareSlot, 1, 64, 0, 0},
    {"lane_reads_without_syncwarp", Race::kLaneReadsWithoutSyncwarp, 1, 32, 0, 0},
    {"write_after_read", Race::kWriteAfterRead, 1, 64, 0, 0},
    {"uninitialised_read", Race::kUninitialisedRead, 1, 64, 0, 0},
    {"shared_out_of_bounds", Race::kSharedOutOfBounds, 1, 32, kRaceSlots, kRaceSlots - 1},
    {"global_write_write", Race::kGlobalWriteWrite, 2, 32, 0, 0},
    {"global_read_of_other_block", Race::kGlobalReadOfOtherBlock, 2, 32, 0, 0},
};

void race(const std::string& name, bool fixed) {
  for (const RaceCase& c : kRaces) {
    if (name != c.name) continue;
    std::vector<float> out(static_cast<size_t>(c.blocks) * c.threads + 4, 0.f);
    emulated_cuda::launch<race_kernel>(c.blocks, c.threads)(c.race, fixed, fixed ? c.fixed_index : c.index,
                                                            out.data());
    const cudaError_t err = cudaGetLastError();
    TORCH_CHECK(err == cudaSuccess, cudaGetErrorString(err));
    return;
  }
  TORCH_CHECK(false, "_emulator_race: unknown case ", name);
}

bool race_checking() { return emulated_cuda::race::instrumented(); }

}  // namespace
}  // namespace emulator_selftest
}  // namespace mmmsvmamba

TORCH_LIBRARY_FRAGMENT(mmmsvmamba_emulated, m) {
  m.def("_emulator_shuffle(str op, int width, int arg, int mask) -> Tensor",
        &mmmsvmamba::emulator_selftest::shuffle);
  m.def("_emulator_block_sum(int block, int blocks) -> Tensor", &mmmsvmamba::emulator_selftest::block_sum);
  m.def("_emulator_layout(int bx, int by, int bz) -> Tensor", &mmmsvmamba::emulator_selftest::layout);
  m.def("_emulator_fault(str case) -> ()", &mmmsvmamba::emulator_selftest::fault);
  m.def("_emulator_race(str case, bool fixed) -> ()", &mmmsvmamba::emulator_selftest::race);
  m.def("_emulator_race_checking() -> bool", &mmmsvmamba::emulator_selftest::race_checking);
}
