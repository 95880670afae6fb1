// The runtime of the emulated CUDA device (cuda_emulator.h): launch checks, worker threads, the fibers of a
// block and their scheduler, warp-synchronous operations and the block barrier, error reports.
//
// Fibers are stacks with a saved stack pointer, switched by a dozen instructions of x86-64 assembly (the callee-saved
// registers, MXCSR and the x87 control word; see switch_context). glibc's swapcontext also saves and restores the
// signal mask, a system call per switch: about 1 us, five times the whole cost of a switch here, and the scans
// switch fibers at every warp shuffle. Other architectures use ucontext. A fiber that must wait switches directly
// to the next runnable fiber of its block (round robin, or seeded random: MMMSVMAMBA_EMULATED_SEED); a fiber that
// finds none switches back to the worker's own context, which then reports a deadlock (or moves to the next block
// when all fibers have finished). In the race-checking build the worker also checks each memory access a kernel
// makes (on_access, race_check.h) and lets another fiber run first at some of them (seeded schedules). Errors
// cannot unwind across fibers: a failing fiber records its message, marks the launch failed and switches back to
// the worker, which abandons the block (fibers hold nothing but their stacks).
#include "cuda_emulator.h"
#include "race_check.h"

#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
// emulated_cuda_switch(void** save_sp, void* load_sp): pushes the callee-saved state on the current stack, stores
// the stack pointer in *save_sp, loads load_sp and pops the state saved there (System V ABI: rbx, rbp, r12-r15,
// MXCSR control bits, x87 control word are callee-saved).
asm(R"(
  .text
  .p2align 4
  .globl emulated_cuda_switch
  .hidden emulated_cuda_switch
  .type emulated_cuda_switch, @function
emulated_cuda_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emulated_cuda_switch, .-emulated_cuda_switch
)");
extern "C" void emulated_cuda_switch(void** save_sp, void* load_sp);
#endif

namespace emulated_cuda {
namespace {

#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};

inline void switch_context(Context& from, const Context& to) { emulated_cuda_switch(&from.sp, to.sp); }

// A context that starts `entry` (which must never return) on the stack [base, base + bytes).
void make_context(Context& c, char* base, size_t bytes, void (*entry)()) {
  auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(base + bytes) & ~uintptr_t{15});
  // As emulated_cuda_switch leaves a stack: the return address (entry; rsp = 8 mod 16 after `ret`, as after a
  // call), six registers, then MXCSR and the x87 control word of the current thread.
  *--top = 0;  // a null return address above entry's frame ends stack walks
  *--top = reinterpret_cast<uint64_t>(entry);
  for (int i = 0; i < 6; ++i) *--top = 0;
  uint32_t control[2] = {0, 0};
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
  *--top = static_cast<uint64_t>(control[0]) | static_cast<uint64_t>(control[1] & 0xffff) << 32;
  c.sp = top;
}
#else
struct Context {
  ucontext_t context;
};

inline void switch_context(Context& from, const Context& to) { swapcontext(&from.context, &to.context); }

void make_context(Context& c, char* base, size_t bytes, void (*entry)()) {
  getcontext(&c.context);
  c.context.uc_stack.ss_sp = base;
  c.context.uc_stack.ss_size = bytes;
  c.context.uc_link = nullptr;
  makecontext(&c.context, entry, 0);
}
#endif

constexpr size_t kStackBytes = 256 * 1024;  // per fiber; the kernels' frames are a few KiB, sanitizer builds more
constexpr unsigned kMaxGridX = 2147483647u, kMaxGridYZ = 65535u;
constexpr unsigned kMaxBlockXY = 1024u, kMaxBlockZ = 64u;

std::atomic<int> multiprocessor_override{0};

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  const int value = std::atoi(text);
  return value > 0 ? value : fallback;
}

std::string str(const dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}
std::string str(const uint3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}
std::string str(const std::source_location& at) {
  std::string file = at.file_name();
  const size_t slash = file.rfind('/');
  if (slash != std::string::npos) file = file.substr(slash + 1);
  return file + ":" + std::to_string(at.line());
}

const char* op_name(detail::WarpOp op) {
  switch (op) {
    case detail::WarpOp::kSync: return "__syncwarp";
    case detail::WarpOp::kIdx: return "__shfl_sync";
    case detail::WarpOp::kUp: return "__shfl_up_sync";
    case detail::WarpOp::kDown: return "__shfl_down_sync";
    case detail::WarpOp::kXor: return "__shfl_xor_sync";
  }
  return "?";
}

// The error of the last failed launch of this host thread.
struct LastError {
  cudaError_t code = cudaSuccess;  // cleared by cudaGetLastError
  cudaError_t message_code = cudaSuccess;
  std::string message;  // kept after cudaGetLastError, for cudaGetErrorString
};
thread_local LastError last_error;

void set_last_error(cudaError_t code, std::string message) {
  last_error.code = code;
  last_error.message_code = code;
  last_error.message = "emulated CUDA device: " + message;
}

// What a launch shares between its workers.
struct Launch {
  std::string_view kernel;
  dim3 grid, block;
  detail::Invoke invoke;
  const void* call;
  uint64_t blocks;
  std::atomic<uint64_t> next_block{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::string error;  // the first failure
  cudaError_t code = cudaSuccess;
  uint64_t seed = 0;  // MMMSVMAMBA_EMULATED_SEED: 0 runs the fibers round robin, else in a seeded random order
  // race checking (the instrumented build only): the kernel's __shared__ variables and the global shadow
  std::vector<race::SharedVariable> shared;
  std::unique_ptr<race::GlobalShadow> global;
};

// splitmix64: the schedule's random numbers (one stream per block, so a block's schedule depends on the seed only)
inline uint64_t mix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

enum class Wait { kNone, kWarp, kBlock };

struct Fiber {
  Context context;
  uint3 index;
  int linear = 0;
  bool done = false, runnable = true;
  Wait wait = Wait::kNone;
  // the operation the fiber waits in, and its operands
  detail::WarpOp op = detail::WarpOp::kSync;
  unsigned mask = 0;
  int arg = 0, width = 32;
  uint64_t value = 0, result = 0;
  std::source_location at;
};

// One OS thread that runs blocks of a launch, one at a time, on its fibers.
class Worker {
 public:
  explicit Worker(Launch& launch) : launch_(launch) {
    threads_ = launch.block.x * launch.block.y * launch.block.z;
    fibers_.resize(threads_);
    for (int i = 0; i < threads_; ++i) {
      fibers_[i].linear = i;
      fibers_[i].index = {i % launch.block.x, (i / launch.block.x) % launch.block.y,
                          i / (launch.block.x * launch.block.y)};
    }
    // One mapping for all stacks, a guard page below each, so that an overflow faults instead of corrupting.
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    stride_ = kStackBytes + page_;
    stacks_bytes_ = stride_ * threads_;
    void* base =
        mmap(nullptr, stacks_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      std::fprintf(stderr, "emulated CUDA device: cannot map %zu bytes of fiber stacks\n", stacks_bytes_);
      std::abort();
    }
    stacks_ = static_cast<char*>(base);
    for (int i = 0; i < threads_; ++i) mprotect(stacks_ + i * stride_, page_, PROT_NONE);
    if (launch.global) {
      tls_block_ = race::tls_block();
      tls_bytes_ = race::tls_bytes();
      shared_.resize(tls_bytes_);
    }
  }
  ~Worker() { munmap(stacks_, stacks_bytes_); }

  void run() {
    current_worker = this;
    for (;;) {
      if (launch_.failed.load(std::memory_order_relaxed)) break;
      const uint64_t linear = launch_.next_block.fetch_add(1, std::memory_order_relaxed);
      if (linear >= launch_.blocks) break;
      const dim3& g = launch_.grid;
      block_ = {static_cast<unsigned>(linear % g.x), static_cast<unsigned>((linear / g.x) % g.y),
                static_cast<unsigned>(linear / (static_cast<uint64_t>(g.x) * g.y))};
      block_linear_ = linear;
      run_block();
    }
    current_worker = nullptr;
  }

  static Worker* current() { return current_worker; }
  Fiber& fiber() { return *current_; }
  const uint3& block_index() const { return block_; }
  const Launch& launch() const { return launch_; }

  // Records the failure of the current fiber and leaves it for good.
  // (The caller's temporaries on the fiber's stack are never destroyed: a small leak per failed launch.)
  [[noreturn]] void fail(cudaError_t code, const std::string& what, const std::source_location& at) {
    fail_at(code, what, str(at));
  }
  [[noreturn]] void fail_at(cudaError_t code, const std::string& what, const std::string& where) {
    in_runtime_ = true;
    {
      std::ostringstream message;
      message << "kernel " << launch_.kernel << ", block " << str(block_) << ", thread " << str(current_->index)
              << ": " << what << " (at " << where << ")";
      record(code, message.str());
    }
    switch_context(current_->context, worker_context_);
    std::abort();  // a failed fiber is never resumed
  }

  uint64_t warp_exchange(detail::WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                         const std::source_location& at);
  void block_barrier(const std::source_location& at);
  void on_access(uintptr_t address, size_t bytes, bool write, const void* pc);

 private:
  // Marks the emulator's own code on a fiber, whose accesses the race checker ignores: inline library code that
  // both the emulator and the instrumented kernels use exists once in the module, instrumented.
  struct RuntimeScope {
    explicit RuntimeScope(Worker& w) : worker(w) { w.in_runtime_ = true; }
    ~RuntimeScope() { worker.in_runtime_ = false; }
    Worker& worker;
  };

  static void fiber_main();
  void run_block();
  void record(cudaError_t code, const std::string& message) {
    std::lock_guard<std::mutex> lock(launch_.mutex);
    if (launch_.error.empty()) {
      launch_.error = message;
      launch_.code = code;
    }
    launch_.failed.store(true, std::memory_order_relaxed);
  }
  void wait_here();  // the current fiber blocks; runs others until it is runnable again
  void yield_now();  // the current fiber lets another runnable one run first (seeded schedules)
  Fiber* next_runnable(int after);
  void shared_access(size_t offset, size_t bytes, bool write, const void* pc);
  void global_access(uintptr_t address, size_t bytes, bool write, const void* pc);
  std::string thread_name(uint32_t linear) const;
  void finish_current();
  std::string describe_waits() const;
  int warp_lanes(int warp) const { return std::min(32, threads_ - warp * 32); }

  Launch& launch_;
  int threads_ = 0;
  std::vector<Fiber> fibers_;
  char* stacks_ = nullptr;
  size_t page_ = 0, stride_ = 0, stacks_bytes_ = 0;
  uint3 block_{0, 0, 0};
  Context worker_context_;
  Fiber* current_ = nullptr;
  int finished_ = 0, at_barrier_ = 0;
  bool block_failed_ = false;
  uint64_t block_linear_ = 0, rng_ = 0;
  // race checking: this worker's shared memory (the module's TLS block) and its shadow
  char* tls_block_ = nullptr;
  size_t tls_bytes_ = 0;
  race::SharedShadow shared_;
  bool in_runtime_ = true;  // false while kernel code runs

  static thread_local Worker* current_worker;
};

thread_local Worker* Worker::current_worker = nullptr;

void Worker::fiber_main() {
  Worker* self = current_worker;
  self->in_runtime_ = false;
  self->launch_.invoke(self->launch_.call);
  self->finish_current();
  std::abort();  // finish_current switches away for good
}

void Worker::run_block() {
  for (Fiber& f : fibers_) {
    f.done = false;
    f.runnable = true;
    f.wait = Wait::kNone;
    make_context(f.context, stacks_ + f.linear * stride_ + page_, kStackBytes, &Worker::fiber_main);
  }
  finished_ = at_barrier_ = 0;
  rng_ = launch_.seed ^ (block_linear_ * 0x2545f4914f6cdd1dull);
  if (launch_.global) shared_.begin_block((threads_ + 31) / 32);
  current_ = launch_.seed != 0 ? &fibers_[mix(rng_) % threads_] : &fibers_[0];
  switch_context(worker_context_, current_->context);
  in_runtime_ = true;
  // Back here when the block failed, all fibers finished, or none could run.
  if (launch_.failed.load(std::memory_order_relaxed) || finished_ == threads_) return;
  std::ostringstream message;
  message << "kernel " << launch_.kernel << ", block " << str(block_) << ": deadlock, no thread can run; "
          << describe_waits();
  record(cudaErrorLaunchFailure, message.str());
}

Fiber* Worker::next_runnable(int after) {
  if (launch_.seed != 0) after = static_cast<int>(mix(rng_) % threads_);  // scan on from a random fiber
  for (int step = 1; step <= threads_; ++step) {
    Fiber& f = fibers_[(after + step) % threads_];
    if (f.runnable && !f.done) return &f;
  }
  return nullptr;
}

void Worker::wait_here() {
  Fiber* self = current_;
  self->runnable = false;
  Fiber* next = next_runnable(self->linear);
  if (next == nullptr) {  // deadlock: the worker reports it
    switch_context(self->context, worker_context_);
    std::abort();
  }
  current_ = next;
  switch_context(self->context, next->context);
  // resumed: someone made this fiber runnable and switched to it
  in_runtime_ = true;
  if (launch_.failed.load(std::memory_order_relaxed)) {  // another worker failed meanwhile: stop here too
    switch_context(self->context, worker_context_);
    std::abort();
  }
}

void Worker::yield_now() {
  Fiber* self = current_;
  self->runnable = false;  // so that another fiber is chosen
  Fiber* next = next_runnable(self->linear);
  self->runnable = true;
  if (next == nullptr) return;
  current_ = next;
  switch_context(self->context, next->context);
  in_runtime_ = true;
  if (launch_.failed.load(std::memory_order_relaxed)) {
    switch_context(self->context, worker_context_);
    std::abort();
  }
}

std::string Worker::thread_name(uint32_t linear) const {
  return "thread " + str(fibers_[linear].index) + " (warp " + std::to_string(linear / 32) + ", lane " +
         std::to_string(linear % 32) + ")";
}

void Worker::on_access(uintptr_t address, size_t bytes, bool write, const void* pc) {
  if (in_runtime_) return;
  RuntimeScope scope(*this);
  if (address - reinterpret_cast<uintptr_t>(stacks_) < stacks_bytes_) return;  // a thread's own locals
  if (address - reinterpret_cast<uintptr_t>(tls_block_) < tls_bytes_) {
    shared_access(address - reinterpret_cast<uintptr_t>(tls_block_), bytes, write, pc);
  } else {
    global_access(address, bytes, write, pc);
  }
  // seeded schedules also interleave threads between barriers: at one access in eight, another thread runs first
  if (launch_.seed != 0 && (mix(rng_) & 7) == 0) yield_now();
}

void Worker::shared_access(size_t offset, size_t bytes, bool write, const void* pc) {
  const race::SharedVariable* variable = nullptr;
  for (const race::SharedVariable& v : launch_.shared) {
    if (offset >= v.offset && offset < v.offset + v.size) variable = &v;
  }
  std::ostringstream what;
  if (variable == nullptr || offset + bytes > variable->offset + variable->size) {
    what << "shared-memory access of " << bytes << " bytes outside the __shared__ variables the kernel declares (";
    for (size_t i = 0; i < launch_.shared.size(); ++i) {
      what << (i ? ", " : "") << launch_.shared[i].name.substr(launch_.shared[i].name.rfind("::") + 2) << " "
           << launch_.shared[i].size << " bytes";
    }
    what << (launch_.shared.empty() ? "none" : "") << ")";
    fail_at(cudaErrorLaunchFailure, what.str(), race::source_line(pc));
  }
  const uint32_t self = static_cast<uint32_t>(current_->linear);
  const race::Conflict c = shared_.access(offset, bytes, write, self, pc);
  if (c.hazard == race::Hazard::kNone) return;
  const std::string name = variable->name.substr(variable->name.rfind("::") + 2);
  what << "shared-memory " << race::hazard_name(c.hazard) << " at " << name << " + "
       << offset + c.byte - variable->offset << " bytes: " << (write ? "writes" : "reads");
  if (c.hazard == race::Hazard::kUninitialised) {
    what << " a byte that no thread of the block has written";
  } else {
    what << " what " << thread_name(c.other) << (c.hazard == race::Hazard::kWriteAfterRead ? " read" : " wrote")
         << " at " << race::source_line(c.other_pc) << ", with no __syncthreads between"
         << (c.other / 32 == self / 32 ? " and no __syncwarp" : " (another warp: __syncwarp does not order it)");
  }
  fail_at(cudaErrorLaunchFailure, what.str(), race::source_line(pc));
}

void Worker::global_access(uintptr_t address, size_t bytes, bool write, const void* pc) {
  const uint32_t id = static_cast<uint32_t>(block_linear_ * threads_ + current_->linear + 1);
  const race::Conflict c = launch_.global->access(address, bytes, write, id, pc);
  if (c.hazard == race::Hazard::kNone) return;
  const uint64_t other_block = (c.other - 1) / threads_;
  const dim3& g = launch_.grid;
  const uint3 block = {static_cast<unsigned>(other_block % g.x), static_cast<unsigned>((other_block / g.x) % g.y),
                       static_cast<unsigned>(other_block / (static_cast<uint64_t>(g.x) * g.y))};
  std::ostringstream what;
  char hex[32];
  std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(address + c.byte));
  what << "global-memory " << race::hazard_name(c.hazard) << " at " << hex << ": " << (write ? "writes" : "reads")
       << " non-atomically what block " << str(block) << ", thread "
       << str(uint3{static_cast<unsigned>((c.other - 1) % threads_ % launch_.block.x),
                    static_cast<unsigned>((c.other - 1) % threads_ / launch_.block.x % launch_.block.y),
                    static_cast<unsigned>((c.other - 1) % threads_ / (launch_.block.x * launch_.block.y))})
       << (c.hazard == race::Hazard::kWriteAfterRead ? " read" : " wrote") << " at "
       << race::source_line(c.other_pc) << " in the same launch"
       << (c.hazard == race::Hazard::kWriteWrite ? " (use atomics, or one writer per address)"
                                                 : " (blocks of a launch are not ordered)");
  fail_at(cudaErrorLaunchFailure, what.str(), race::source_line(pc));
}

void Worker::finish_current() {
  in_runtime_ = true;
  Fiber* self = current_;
  self->done = true;
  ++finished_;
  if (at_barrier_ > 0) {
    for (const Fiber& f : fibers_) {
      if (f.wait == Wait::kBlock) {
        fail(cudaErrorLaunchFailure,
             "exited while thread " + str(f.index) + " waits at __syncthreads (" + str(f.at) +
                 "): every thread of the block must reach it",
             std::source_location::current());
      }
    }
  }
  const int warp = self->linear / 32;
  for (int lane = 0; lane < warp_lanes(warp); ++lane) {
    const Fiber& f = fibers_[warp * 32 + lane];
    if (f.wait == Wait::kWarp && (f.mask >> (self->linear % 32) & 1u)) {
      fail(cudaErrorLaunchFailure,
           "exited while lane " + std::to_string(lane) + " waits for it in " + op_name(f.op) + " (" + str(f.at) + ")",
           std::source_location::current());
    }
  }
  Fiber* next = finished_ == threads_ ? nullptr : next_runnable(self->linear);
  // nobody left to run: back to the worker, which moves on (all finished) or reports the deadlock
  current_ = next;
  switch_context(self->context, next != nullptr ? next->context : worker_context_);
}

std::string Worker::describe_waits() const {
  std::ostringstream out;
  int listed = 0;
  for (const Fiber& f : fibers_) {
    if (f.done || f.wait == Wait::kNone) continue;
    if (listed == 4) {
      out << "; ...";
      break;
    }
    out << (listed++ ? "; " : "") << "thread " << str(f.index) << " waits in "
        << (f.wait == Wait::kBlock ? "__syncthreads" : op_name(f.op)) << " at " << str(f.at);
  }
  return out.str();
}

uint64_t Worker::warp_exchange(detail::WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                               const std::source_location& at) {
  using detail::WarpOp;
  RuntimeScope scope(*this);
  Fiber& self = *current_;
  const int warp = self.linear / 32, lane = self.linear % 32, lanes = warp_lanes(warp);
  if (!(mask >> lane & 1u)) {
    fail(cudaErrorLaunchFailure, std::string(op_name(op)) + " with mask 0x" + [&] {
      char hex[9];
      std::snprintf(hex, sizeof(hex), "%08x", mask);
      return std::string(hex);
    }() + " that does not name the calling lane " + std::to_string(lane), at);
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    fail(cudaErrorLaunchFailure, std::string(op_name(op)) + " with width " + std::to_string(width) +
                                     ": it must be a power of two <= 32", at);
  }
  self.wait = Wait::kWarp;
  self.op = op;
  self.mask = mask;
  self.arg = arg;
  self.width = width;
  self.value = value;
  self.at = at;
  auto same_point = [&](const Fiber& f) {
    return f.op == op && f.mask == mask && f.width == width && f.at.line() == at.line() &&
           f.at.column() == at.column() && std::strcmp(f.at.file_name(), at.file_name()) == 0;
  };
  bool all_here = true;
  for (int j = 0; j < 32; ++j) {
    if (!(mask >> j & 1u) || j == lane) continue;
    if (j >= lanes) {
      fail(cudaErrorLaunchFailure, std::string(op_name(op)) + " names lane " + std::to_string(j) +
                                       ", which this block (" + std::to_string(threads_) + " threads) does not have",
           at);
    }
    const Fiber& other = fibers_[warp * 32 + j];
    if (other.done) {
      fail(cudaErrorLaunchFailure, std::string(op_name(op)) + " names lane " + std::to_string(j) +
                                       ", which has exited", at);
    }
    if (other.wait == Wait::kBlock) {
      fail(cudaErrorLaunchFailure, std::string(op_name(op)) + " names lane " + std::to_string(j) +
                                       ", which waits at __syncthreads (" + str(other.at) + ")", at);
    }
    if (other.wait == Wait::kWarp && !same_point(other) && (other.mask >> lane & 1u)) {
      fail(cudaErrorLaunchFailure, "lanes of one mask at different sync points: lane " + std::to_string(j) +
                                       " waits in " + op_name(other.op) + " at " + str(other.at) + " with mask " +
                                       std::to_string(other.mask),
           at);
    }
    all_here = all_here && other.wait == Wait::kWarp && same_point(other);
  }
  if (!all_here) {
    wait_here();
    return self.result;
  }
  // Everyone is here: give each lane the value it reads (PTX shfl.sync semantics, per lane's own operand).
  for (int j = 0; j < 32; ++j) {
    if (!(mask >> j & 1u)) continue;
    Fiber& f = fibers_[warp * 32 + j];
    if (op != WarpOp::kSync) {
      const int segment = j & ~(width - 1), last = segment + width - 1;
      int src = j;
      switch (op) {
        case WarpOp::kIdx: src = segment + (f.arg & (width - 1)); break;
        case WarpOp::kUp: src = j - f.arg >= segment ? j - f.arg : j; break;
        case WarpOp::kDown: src = j + f.arg <= last ? j + f.arg : j; break;
        case WarpOp::kXor: src = (j ^ f.arg) <= last ? j ^ f.arg : j; break;
        case WarpOp::kSync: break;
      }
      if (src < 0 || src > 31 || !(mask >> src & 1u)) {
        fail(cudaErrorLaunchFailure, std::string(op_name(op)) + ": lane " + std::to_string(j) + " reads lane " +
                                         std::to_string(src) + ", which the mask does not name", at);
      }
      f.result = fibers_[warp * 32 + src].value;
    }
  }
  for (int j = 0; j < 32; ++j) {
    if (!(mask >> j & 1u)) continue;
    Fiber& f = fibers_[warp * 32 + j];
    f.wait = Wait::kNone;
    f.runnable = true;
  }
  if (op == WarpOp::kSync && launch_.global) shared_.warp_sync(warp);  // orders the memory of the warp's lanes
  return self.result;
}

void Worker::block_barrier(const std::source_location& at) {
  RuntimeScope scope(*this);
  Fiber& self = *current_;
  if (finished_ > 0) {
    for (const Fiber& f : fibers_) {
      if (f.done) {
        fail(cudaErrorLaunchFailure,
             "__syncthreads after thread " + str(f.index) + " of the block has exited: every thread must reach it",
             at);
      }
    }
  }
  // Lanes of this warp that wait in a warp operation naming this lane can never complete it now.
  const int warp = self.linear / 32;
  for (int j = 0; j < warp_lanes(warp); ++j) {
    const Fiber& f = fibers_[warp * 32 + j];
    if (f.wait == Wait::kWarp && (f.mask >> (self.linear % 32) & 1u)) {
      fail(cudaErrorLaunchFailure, "__syncthreads while lane " + std::to_string(j) + " waits for this lane in " +
                                       op_name(f.op) + " (" + str(f.at) + ")", at);
    }
  }
  self.wait = Wait::kBlock;
  self.at = at;
  if (++at_barrier_ < threads_) {
    wait_here();
    return;
  }
  for (const Fiber& f : fibers_) {
    if (f.at.line() != at.line() || std::strcmp(f.at.file_name(), at.file_name()) != 0) {
      fail(cudaErrorLaunchFailure, "threads of the block at different __syncthreads: thread " + str(f.index) +
                                       " at " + str(f.at), at);
    }
  }
  at_barrier_ = 0;
  if (launch_.global) shared_.barrier();
  for (Fiber& f : fibers_) {
    f.wait = Wait::kNone;
    f.runnable = true;
  }
}

std::string check_launch(std::string_view kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaError_t& code) {
  std::ostringstream what;
  code = cudaErrorInvalidConfiguration;
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) {
    what << "grid " << str(grid) << " has a zero dimension";
  } else if (grid.x > kMaxGridX || grid.y > kMaxGridYZ || grid.z > kMaxGridYZ) {
    what << "grid " << str(grid) << " exceeds the limits (2^31 - 1, 65535, 65535)";
  } else if (block.x == 0 || block.y == 0 || block.z == 0) {
    what << "block " << str(block) << " has a zero dimension";
  } else if (block.x > kMaxBlockXY || block.y > kMaxBlockXY || block.z > kMaxBlockZ) {
    what << "block " << str(block) << " exceeds the limits (1024, 1024, 64)";
  } else if (threads > static_cast<uint64_t>(kMaxThreadsPerBlock)) {
    what << "block " << str(block) << " has " << threads << " threads, more than " << kMaxThreadsPerBlock;
  } else if (shared_bytes > kMaxDynamicShared) {
    what << shared_bytes << " bytes of dynamic shared memory, more than " << kMaxDynamicShared;
  } else if (shared_bytes > 0) {
    code = cudaErrorNotSupported;
    what << "dynamic shared memory (extern __shared__) is not supported by the emulator yet";
  } else {
    code = cudaSuccess;
    return {};
  }
  return "kernel " + std::string(kernel) + ": invalid launch: " + what.str();
}

}  // namespace

int set_multiprocessors(int count) { return multiprocessor_override.exchange(count > 0 ? count : 0); }

int multiprocessors() {
  const int chosen = multiprocessor_override.load();
  return chosen > 0 ? chosen : env_int("MMMSVMAMBA_EMULATED_SMS", kDefaultMultiprocessors);
}

namespace detail {

namespace {
Worker& worker_or_die(const char* what) {
  Worker* w = Worker::current();
  if (w == nullptr) {
    std::fprintf(stderr, "emulated CUDA device: %s called outside a kernel\n", what);
    std::abort();
  }
  return *w;
}
}  // namespace

const uint3& thread_index() { return worker_or_die("threadIdx").fiber().index; }
const uint3& block_index() { return worker_or_die("blockIdx").block_index(); }
const dim3& block_dim() { return worker_or_die("blockDim").launch().block; }
const dim3& grid_dim() { return worker_or_die("gridDim").launch().grid; }

uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& at) {
  return worker_or_die(op_name(op)).warp_exchange(op, mask, value, arg, width, at);
}

void block_barrier(const std::source_location& at) { worker_or_die("__syncthreads").block_barrier(at); }

void on_access(const void* address, size_t bytes, bool write, const void* pc) {
  Worker* w = Worker::current();
  if (w != nullptr) w->on_access(reinterpret_cast<uintptr_t>(address), bytes, write, pc);
}

void run_launch(std::string_view kernel, dim3 grid, dim3 block, size_t shared_bytes, Invoke invoke,
                const void* call) {
  cudaError_t code = cudaSuccess;
  const std::string invalid = check_launch(kernel, grid, block, shared_bytes, code);
  if (code != cudaSuccess) {
    set_last_error(code, invalid);
    return;
  }
  Launch launch;
  launch.kernel = kernel;
  launch.grid = grid;
  launch.block = block;
  launch.invoke = invoke;
  launch.call = call;
  launch.blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  launch.seed = static_cast<uint64_t>(env_int("MMMSVMAMBA_EMULATED_SEED", 0));
  if (race::instrumented()) {
    if (race::tls_bytes() == 0) {
      set_last_error(cudaErrorLaunchFailure, "kernel " + std::string(kernel) + ": race checking: " +
                                                 race::module_error());
      return;
    }
    launch.shared = race::shared_variables(kernel);
    launch.global = std::make_unique<race::GlobalShadow>(block.x * block.y * block.z);
  }
  const int workers = static_cast<int>(
      std::min<uint64_t>(launch.blocks, static_cast<uint64_t>(env_int("MMMSVMAMBA_EMULATED_WORKERS", 2))));
  std::vector<std::thread> helpers;
  for (int i = 1; i < workers; ++i) {
    helpers.emplace_back([&launch] { Worker(launch).run(); });
  }
  Worker(launch).run();
  for (std::thread& t : helpers) t.join();
  if (launch.failed.load()) set_last_error(launch.code, launch.error);
}

}  // namespace detail
}  // namespace emulated_cuda

cudaError_t cudaGetLastError() {
  const cudaError_t code = emulated_cuda::last_error.code;
  emulated_cuda::last_error.code = cudaSuccess;
  return code;
}

cudaError_t cudaPeekAtLastError() { return emulated_cuda::last_error.code; }

const char* cudaGetErrorString(cudaError_t error) {
  if (error != cudaSuccess && error == emulated_cuda::last_error.message_code) {
    return emulated_cuda::last_error.message.c_str();
  }
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int /*device*/) {
  if (attr != cudaDevAttrMultiProcessorCount) return cudaErrorInvalidValue;
  *value = emulated_cuda::multiprocessors();
  return cudaSuccess;
}
