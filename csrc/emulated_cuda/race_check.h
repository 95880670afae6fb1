// Race checking of the emulated CUDA device (docs/ops.md, "The emulated CUDA device"): the shadow memories that
// decide whether two accesses of a launch conflict, and the module facts the checker needs (where this thread's
// __shared__ variables lie, which source line a code address is).
//
// How accesses reach it. The race-checking build (mmmsvmamba._C_emulated_racecheck) compiles the kernels' translation
// units with GCC's ThreadSanitizer instrumentation but links no ThreadSanitizer runtime: the compiler's calls
// (__tsan_read4(addr), __tsan_write16(addr), the atomics, ...) land in race_check.cpp, which performs the atomics
// and hands every plain access made inside a kernel to the worker that runs it (detail::on_access). The emulator's
// own translation units are not instrumented. `__shared__` is `static thread_local`, so a worker's shared memory is
// this module's TLS block on that worker; the variables a kernel declares are its TLS symbols whose demangled name
// is the kernel's ("ns::kernel<T>(params)::tile_h"), read from the module's ELF symbol table.
//
// The rules (what CUDA guarantees, what compute-sanitizer's racecheck / initcheck report):
//   shared memory, per block: two accesses to one byte by different threads, at least one a write, conflict unless a
//   __syncthreads lies between them, or they are lanes of one warp and a __syncwarp lies between them (a shuffle
//   orders registers, not memory). A read of a byte no thread of the block has written is uninitialised.
//   global memory, per launch: non-atomic writes to one byte by two threads conflict; so do a non-atomic write and a
//   read of the byte by threads of different blocks (blocks are not ordered within a launch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace emulated_cuda {
namespace race {

enum class Hazard { kNone, kWriteWrite, kReadAfterWrite, kWriteAfterRead, kUninitialised };

const char* hazard_name(Hazard hazard);

// The conflicting earlier access of a hazard.
struct Conflict {
  Hazard hazard = Hazard::kNone;
  uint32_t other = 0;  // the other thread (shared: linear index in the block; global: launch-wide id)
  const void* other_pc = nullptr;  // where it accessed (a code address; nullptr when unknown)
  size_t byte = 0;  // the byte of the access where the conflict is (offset from its start)
};

// Shared memory of one worker: per byte, the last writer and up to two readers since, with the barrier interval
// ("epoch") and, for lanes of one warp, the __syncwarp count of the access.
class SharedShadow {
 public:
  void resize(size_t bytes) { bytes_.assign(bytes, Byte{}); }
  void begin_block(int warps);
  void barrier() { ++epoch_; }
  void warp_sync(int warp) { ++warp_syncs_[warp]; }
  // Records an access of n bytes at `offset` by thread `thread` (linear in the block); the first conflict, if any.
  Conflict access(size_t offset, size_t n, bool write, uint32_t thread, const void* pc);

 private:
  struct Byte {
    const void* writer_pc = nullptr;
    const void* reader_pc[2] = {nullptr, nullptr};
    uint32_t writer_epoch = 0, writer_syncs = 0;
    uint32_t reader_epoch[2] = {0, 0}, reader_syncs[2] = {0, 0};
    uint16_t writer = 0, reader[2] = {0, 0};
  };
  // Whether an access by `other` in (epoch, syncs) happens before the current access of `thread`.
  bool ordered(uint32_t epoch, uint32_t syncs, uint32_t other, uint32_t thread) const {
    return epoch < epoch_ || (other / 32 == thread / 32 && syncs < warp_syncs_[thread / 32]);
  }
  void add_reader(Byte& b, uint32_t thread, const void* pc);

  std::vector<Byte> bytes_;
  std::vector<uint32_t> warp_syncs_;
  uint32_t epoch_ = 0, block_start_ = 0;  // epochs count on over blocks; 0 is "never"
};

// Global memory of one launch, shared by its workers: per byte, the first non-atomic writer and readers of two
// different blocks. Thread ids are launch-wide (block * threads per block + thread) plus one; 0 is "none".
class GlobalShadow {
 public:
  explicit GlobalShadow(uint32_t threads_per_block) : threads_per_block_(threads_per_block) {}
  Conflict access(uintptr_t address, size_t n, bool write, uint32_t id, const void* pc);

 private:
  struct Granule {  // 8 bytes of memory
    uint32_t writer[8] = {}, reader[8] = {}, reader2[8] = {};
    const void* writer_pc[8] = {};
    const void* reader_pc[8] = {};
    const void* reader2_pc[8] = {};
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<uintptr_t, Granule> granules;
  };
  uint32_t block_of(uint32_t id) const { return (id - 1) / threads_per_block_; }

  uint32_t threads_per_block_;
  Shard shards_[16];
};

// A __shared__ variable of a kernel: its offset in the module's TLS block, size and demangled name.
struct SharedVariable {
  size_t offset, size;
  std::string name;
};

// True in the race-checking build (its instrumented code calls __tsan_init when the module loads).
bool instrumented();
// The calling thread's TLS block of this module and its size (0 when the symbol table cannot be read; then
// error() says why).
char* tls_block();
size_t tls_bytes();
const std::string& module_error();
// The __shared__ variables that `kernel` (as emulated_cuda::detail::kernel_name prints it) declares.
std::vector<SharedVariable> shared_variables(std::string_view kernel);
// "file.cuh:123 (inlined at file.cuh:456)" for a code address of this module, by addr2line; "?" when unknown.
std::string source_line(const void* pc);

}  // namespace race

namespace detail {
// Called for each plain memory access of instrumented code (race_check.cpp's __tsan_* hooks); returns at once
// outside kernels. Defined in cuda_emulator.cpp.
void on_access(const void* address, size_t bytes, bool write, const void* pc);
}  // namespace detail
}  // namespace emulated_cuda
