// The race checker's shadow memories, the module facts it reads (TLS symbols, source lines), and the
// ThreadSanitizer entry points that the instrumented kernels call (see race_check.h). Never itself instrumented.
#include "race_check.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// The anchor of this module's TLS block: its address minus its symbol's offset is the block's start.
static thread_local char emulated_cuda_tls_anchor;

namespace emulated_cuda {
namespace race {

const char* hazard_name(Hazard hazard) {
  switch (hazard) {
    case Hazard::kNone: return "none";
    case Hazard::kWriteWrite: return "write-after-write";
    case Hazard::kReadAfterWrite: return "read-after-write";
    case Hazard::kWriteAfterRead: return "write-after-read";
    case Hazard::kUninitialised: return "uninitialised read";
  }
  return "?";
}

void SharedShadow::begin_block(int warps) {
  barrier();
  block_start_ = epoch_;
  warp_syncs_.assign(static_cast<size_t>(warps), 0);
}

void SharedShadow::add_reader(Byte& b, uint32_t thread, const void* pc) {
  int slot = -1;
  for (int s = 0; s < 2 && slot < 0; ++s) {
    if (b.reader_epoch[s] == epoch_ && b.reader[s] == thread) slot = s;  // its later read supersedes
  }
  for (int s = 0; s < 2 && slot < 0; ++s) {
    if (b.reader_epoch[s] < epoch_) slot = s;  // a read before the last barrier is ordered before anything now
  }
  if (slot < 0) slot = 1;  // two other readers of this interval are kept: one differs from any later writer
  b.reader[slot] = static_cast<uint16_t>(thread);
  b.reader_epoch[slot] = epoch_;
  b.reader_syncs[slot] = warp_syncs_[thread / 32];
  b.reader_pc[slot] = pc;
}

Conflict SharedShadow::access(size_t offset, size_t n, bool write, uint32_t thread, const void* pc) {
  for (size_t i = 0; i < n; ++i) {
    Byte& b = bytes_[offset + i];
    const bool written = b.writer_epoch >= block_start_;
    const bool writer_unordered =
        written && b.writer != thread && !ordered(b.writer_epoch, b.writer_syncs, b.writer, thread);
    if (!write) {
      if (!written) return {Hazard::kUninitialised, 0, nullptr, i};
      if (writer_unordered) return {Hazard::kReadAfterWrite, b.writer, b.writer_pc, i};
      add_reader(b, thread, pc);
      continue;
    }
    if (writer_unordered) return {Hazard::kWriteWrite, b.writer, b.writer_pc, i};
    for (int s = 0; s < 2; ++s) {
      if (b.reader[s] != thread && !ordered(b.reader_epoch[s], b.reader_syncs[s], b.reader[s], thread)) {
        return {Hazard::kWriteAfterRead, b.reader[s], b.reader_pc[s], i};
      }
    }
    b.writer = static_cast<uint16_t>(thread);
    b.writer_epoch = epoch_;
    b.writer_syncs = warp_syncs_[thread / 32];
    b.writer_pc = pc;
    b.reader_epoch[0] = b.reader_epoch[1] = 0;  // every earlier read is ordered before this write (checked above)
  }
  return {};
}

Conflict GlobalShadow::access(uintptr_t address, size_t n, bool write, uint32_t id, const void* pc) {
  const uint32_t block = block_of(id);
  for (size_t i = 0; i < n; ++i) {
    const uintptr_t at = address + i;
    Shard& shard = shards_[(at >> 3) % 16];
    std::lock_guard<std::mutex> lock(shard.mutex);
    Granule& g = shard.granules[at >> 3];
    const int k = static_cast<int>(at & 7);
    if (write) {
      if (g.writer[k] != 0 && g.writer[k] != id) return {Hazard::kWriteWrite, g.writer[k], g.writer_pc[k], i};
      if (g.reader[k] != 0 && block_of(g.reader[k]) != block) {
        return {Hazard::kWriteAfterRead, g.reader[k], g.reader_pc[k], i};
      }
      if (g.reader2[k] != 0 && block_of(g.reader2[k]) != block) {
        return {Hazard::kWriteAfterRead, g.reader2[k], g.reader2_pc[k], i};
      }
      g.writer[k] = id;
      g.writer_pc[k] = pc;
      continue;
    }
    if (g.writer[k] != 0 && block_of(g.writer[k]) != block) {
      return {Hazard::kReadAfterWrite, g.writer[k], g.writer_pc[k], i};
    }
    if (g.reader[k] == 0) {
      g.reader[k] = id;
      g.reader_pc[k] = pc;
    } else if (g.reader2[k] == 0 && block_of(g.reader[k]) != block) {
      g.reader2[k] = id;
      g.reader2_pc[k] = pc;
    }
  }
  return {};
}

namespace {

std::atomic<bool> instrumented_module{false};

// This module's TLS symbols, read once from its ELF file.
struct ModuleTls {
  std::vector<SharedVariable> symbols;
  size_t anchor_offset = 0, bytes = 0;
  std::string error;
};

std::string demangle(const char* name) {
  int status = 0;
  char* text = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || text == nullptr) return name;
  std::string out = text;
  std::free(text);
  return out;
}

std::string module_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&module_path), &info) == 0 || info.dli_fname == nullptr) return {};
  return info.dli_fname;
}

void read_tls_symbols(ModuleTls& tls) {
  const std::string path = module_path();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) {
    tls.error = "cannot open the module " + path;
    if (fd >= 0) close(fd);
    return;
  }
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    tls.error = "cannot map the module " + path;
    return;
  }
  const char* file = static_cast<const char*>(map);
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(file);
  const auto* programs = reinterpret_cast<const Elf64_Phdr*>(file + header->e_phoff);
  for (int i = 0; i < header->e_phnum; ++i) {
    if (programs[i].p_type == PT_TLS) tls.bytes = programs[i].p_memsz;
  }
  const auto* sections = reinterpret_cast<const Elf64_Shdr*>(file + header->e_shoff);
  bool anchor = false;
  for (int i = 0; i < header->e_shnum; ++i) {
    if (sections[i].sh_type != SHT_SYMTAB) continue;
    const auto* symbols = reinterpret_cast<const Elf64_Sym*>(file + sections[i].sh_offset);
    const char* names = file + sections[sections[i].sh_link].sh_offset;
    for (size_t j = 0; j < sections[i].sh_size / sizeof(Elf64_Sym); ++j) {
      const Elf64_Sym& s = symbols[j];
      if (ELF64_ST_TYPE(s.st_info) != STT_TLS || s.st_size == 0) continue;
      std::string name = demangle(names + s.st_name);
      if (name == "emulated_cuda_tls_anchor") {
        tls.anchor_offset = s.st_value;
        anchor = true;
      } else {
        tls.symbols.push_back({s.st_value, s.st_size, std::move(name)});
      }
    }
  }
  munmap(map, static_cast<size_t>(st.st_size));
  if (!anchor || tls.bytes == 0) {
    tls.error = "the symbol table of " + path + " has no TLS anchor (stripped?): shared memory cannot be located";
    tls.bytes = 0;
  }
}

const ModuleTls& module_tls() {
  static const ModuleTls tls = [] {
    ModuleTls t;
    read_tls_symbols(t);
    return t;
  }();
  return tls;
}

}  // namespace

bool instrumented() { return instrumented_module.load(std::memory_order_relaxed); }

char* tls_block() { return &emulated_cuda_tls_anchor - module_tls().anchor_offset; }
size_t tls_bytes() { return module_tls().bytes; }
const std::string& module_error() { return module_tls().error; }

std::vector<SharedVariable> shared_variables(std::string_view kernel) {
  // GCC's __PRETTY_FUNCTION__ writes an anonymous namespace as {anonymous}, the demangler as (anonymous namespace)
  std::string prefix(kernel);
  for (size_t at; (at = prefix.find("{anonymous}")) != std::string::npos;) {
    prefix.replace(at, 11, "(anonymous namespace)");
  }
  prefix += '(';
  std::vector<SharedVariable> out;
  for (const SharedVariable& v : module_tls().symbols) {
    if (v.name.compare(0, prefix.size(), prefix) == 0 && v.name.find(")::") != std::string::npos) out.push_back(v);
  }
  return out;
}

std::string source_line(const void* pc) {
  Dl_info info{};
  if (pc == nullptr || dladdr(pc, &info) == 0 || info.dli_fname == nullptr) return "?";
  // the return address of the hook's call: the access is the instruction before it
  const uintptr_t offset = reinterpret_cast<uintptr_t>(pc) - reinterpret_cast<uintptr_t>(info.dli_fbase) - 1;
  char command[4096];
  std::snprintf(command, sizeof(command), "addr2line -i -e '%s' 0x%llx 2>/dev/null", info.dli_fname,
                static_cast<unsigned long long>(offset));
  FILE* pipe = popen(command, "r");
  if (pipe == nullptr) return "?";
  std::string out;
  char line[1024];
  for (int frames = 0; frames < 3 && std::fgets(line, sizeof(line), pipe) != nullptr; ++frames) {
    std::string where = line;
    while (!where.empty() && (where.back() == '\n' || where.back() == ' ')) where.pop_back();
    const size_t discriminator = where.find(" (discriminator");
    if (discriminator != std::string::npos) where.resize(discriminator);
    const size_t slash = where.rfind('/');
    if (slash != std::string::npos) where = where.substr(slash + 1);
    out += frames == 0 ? where : (frames == 1 ? " (inlined at " : ", at ") + where;
    if (frames > 0) out += ")";
  }
  pclose(pipe);
  if (out.empty() || out.compare(0, 2, "??") == 0) {
    char fallback[64];
    std::snprintf(fallback, sizeof(fallback), "code offset 0x%llx", static_cast<unsigned long long>(offset));
    return fallback;
  }
  return out;
}

}  // namespace race
}  // namespace emulated_cuda

// ---- the ThreadSanitizer entry points of GCC's instrumentation (-fsanitize=thread) ----
// Plain accesses go to the race checker; atomics are performed (sequentially consistent: at least as strong as
// any order asked for) and not checked; function entry / exit and fences are no-ops.
#define EMULATED_CUDA_TSAN_HOOK(name, n, write) \
  extern "C" void __tsan_##name(void* a) { emulated_cuda::detail::on_access(a, n, write, __builtin_return_address(0)); }
#define EMULATED_CUDA_TSAN_ACCESS(n)                 \
  EMULATED_CUDA_TSAN_HOOK(read##n, n, false)         \
  EMULATED_CUDA_TSAN_HOOK(write##n, n, true)         \
  EMULATED_CUDA_TSAN_HOOK(unaligned_read##n, n, false) \
  EMULATED_CUDA_TSAN_HOOK(unaligned_write##n, n, true)
EMULATED_CUDA_TSAN_ACCESS(1)
EMULATED_CUDA_TSAN_ACCESS(2)
EMULATED_CUDA_TSAN_ACCESS(4)
EMULATED_CUDA_TSAN_ACCESS(8)
EMULATED_CUDA_TSAN_ACCESS(16)
#undef EMULATED_CUDA_TSAN_ACCESS
#undef EMULATED_CUDA_TSAN_HOOK

extern "C" void __tsan_read_range(void* a, unsigned long n) {
  emulated_cuda::detail::on_access(a, n, false, __builtin_return_address(0));
}
extern "C" void __tsan_write_range(void* a, unsigned long n) {
  emulated_cuda::detail::on_access(a, n, true, __builtin_return_address(0));
}
extern "C" void __tsan_init() { emulated_cuda::race::instrumented_module.store(true); }
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_vptr_update(void**, void*) {}
extern "C" void __tsan_vptr_read(void**) {}
extern "C" void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
extern "C" void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

#define EMULATED_CUDA_TSAN_FETCH(bits, T, op)                                              \
  extern "C" T __tsan_atomic##bits##_fetch_##op(volatile T* a, T v, int) {                 \
    return __atomic_fetch_##op(a, v, __ATOMIC_SEQ_CST);                                    \
  }
#define EMULATED_CUDA_TSAN_ATOMIC(bits, T)                                                 \
  extern "C" T __tsan_atomic##bits##_load(const volatile T* a, int) {                      \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                           \
  }                                                                                        \
  extern "C" void __tsan_atomic##bits##_store(volatile T* a, T v, int) {                   \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                              \
  }                                                                                        \
  extern "C" T __tsan_atomic##bits##_exchange(volatile T* a, T v, int) {                   \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                    \
  }                                                                                        \
  EMULATED_CUDA_TSAN_FETCH(bits, T, add)                                                   \
  EMULATED_CUDA_TSAN_FETCH(bits, T, sub)                                                   \
  EMULATED_CUDA_TSAN_FETCH(bits, T, and)                                                   \
  EMULATED_CUDA_TSAN_FETCH(bits, T, or)                                                    \
  EMULATED_CUDA_TSAN_FETCH(bits, T, xor)                                                   \
  EMULATED_CUDA_TSAN_FETCH(bits, T, nand)                                                  \
  extern "C" int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* c, T v, int, int) { \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
  }                                                                                        \
  extern "C" int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* c, T v, int, int) { \
    return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);  \
  }                                                                                        \
  extern "C" T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T c, T v, int, int) { \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);      \
    return c;                                                                              \
  }
EMULATED_CUDA_TSAN_ATOMIC(8, uint8_t)
EMULATED_CUDA_TSAN_ATOMIC(16, uint16_t)
EMULATED_CUDA_TSAN_ATOMIC(32, uint32_t)
EMULATED_CUDA_TSAN_ATOMIC(64, uint64_t)
#undef EMULATED_CUDA_TSAN_ATOMIC
#undef EMULATED_CUDA_TSAN_FETCH
