// The operator library of mmmsvmamba: the only TORCH_LIBRARY(mmmsvmamba, m) block, with the four schemas of
// schemas.h. Backends register their kernels at the bottom of their own files (cpu/selective_scan_cpu.cpp,
// cuda/selective_scan_{fwd,bwd}.cu); the fake (meta) kernels and the autograd formulas are registered from Python
// (mmmsvmamba/ops/compiled.py).
#include <torch/library.h>

#include "schemas.h"

TORCH_LIBRARY(mmmsvmamba, m) { mmmsvmamba::define_scan_ops(m); }
