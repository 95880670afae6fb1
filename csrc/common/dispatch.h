// Dtype dispatch for the kernels: every backend computes in float32 (float64 for float64 on the CPU).
#pragma once

#include <ATen/Dispatch.h>

// The input dtypes of the CUDA kernels: no float64 there (selective_scan_fn sends float64 to the PyTorch path).
#define MMMSVMAMBA_DISPATCH_CUDA_TYPES(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME, AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__) \
                                         AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))
