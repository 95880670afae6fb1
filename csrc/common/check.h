// Input checks shared by every backend: each message names the tensor, what was expected and what came.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <sstream>
#include <string>
#include <vector>

namespace mmmsvmamba {

inline std::string shape_str(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << (sizes.size() == 1 ? ",)" : ")");
  return out.str();
}

// `expected` may hold -1 for "any size"; `layout` spells the expected shape in words.
inline void check_shape(const char* op, const char* name, const at::Tensor& t, const std::vector<int64_t>& expected,
                        const char* layout) {
  bool ok = t.dim() == static_cast<int64_t>(expected.size());
  for (size_t i = 0; ok && i < expected.size(); ++i) ok = expected[i] < 0 || t.size(i) == expected[i];
  TORCH_CHECK(ok, op, ": ", name, " must have shape ", layout, " = ", shape_str(expected), " (-1: any), got ",
              shape_str(t.sizes()));
}

inline void check_device(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but u is on ", ref.device(),
              "; move all inputs to one device");
}

}  // namespace mmmsvmamba
