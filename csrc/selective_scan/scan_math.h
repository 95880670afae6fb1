// Constants of the recurrence that every backend (CPU, CUDA, emulated CUDA) must agree on. Torch-free: the CUDA
// kernel header includes it, so it compiles with nvcc and with a host compiler.
#pragma once

namespace mmmsvmamba {

// Above this, softplus(x) is x and its derivative 1 (the threshold of torch.nn.functional.softplus).
constexpr float kSoftplusThreshold = 20.0f;

}  // namespace mmmsvmamba
