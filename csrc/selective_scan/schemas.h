// The schemas of the four scan ops, written once. Two libraries define them: mmmsvmamba (selective_scan.cpp, the
// product ops) and mmmsvmamba_emulated (emulated/selective_scan_emulated.cpp, the CUDA kernels run on the emulated
// device, for tests).
//
// All ops are functional (they return new tensors) and specialised for d_state = 1.
//   selective_scan_fwd      u, delta (B, D, L); A (D, 1); B, C (B, G, 1, L); D, delta_bias (D,) or None
//                           -> y (B, D, L), float32 (float64 for float64 u) if out_float else u's dtype
//   ms2d_half_res_scan_fwd  u, delta (B, D, Hb, Wb); B, C (B, G, 1, Hb, Wb); the three half-resolution routes
//                           scanned with one continuing state -> (B, D, Hb, Wb) summed or (B, 3, D, Hb, Wb)
//   *_bwd                   dout and the forward's inputs -> (du, ddelta, dA, dB, dC, dD, ddelta_bias), each in
//                           its input's shape and dtype (dD, ddelta_bias: (D,) float32 / float64 if absent)
#pragma once

#include <torch/library.h>

#include <vector>

namespace mmmsvmamba {

inline void define_scan_ops(torch::Library& m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  m.def(
      "selective_scan_fwd(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? delta_bias, "
      "bool delta_softplus, bool out_float) -> Tensor",
      tags);
  m.def(
      "selective_scan_bwd(Tensor dout, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, "
      "Tensor? delta_bias, bool delta_softplus) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
      tags);
  m.def(
      "ms2d_half_res_scan_fwd(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? delta_bias, "
      "bool delta_softplus, bool sum_routes, bool out_float) -> Tensor",
      tags);
  m.def(
      "ms2d_half_res_scan_bwd(Tensor dout, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, "
      "Tensor? delta_bias, bool delta_softplus, bool sum_routes) -> "
      "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
      tags);
}

}  // namespace mmmsvmamba
