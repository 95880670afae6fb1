// The four scan ops of schemas.h, written once over a backend. Each op validates its inputs (make_problem, and
// check_dout for the backward), calls the backend and returns the gradients in their inputs' dtypes; a backend
// only provides the two scans of a validated problem:
//   static at::Tensor Backend::fwd(const char* op, const ScanProblem& p, bool out_float)
//       -> the output (ScanProblem::output_sizes(), channel axis innermost in memory)
//   static ScanGrads Backend::bwd(const char* op, const ScanProblem& p, const at::Tensor& dout)
//       -> du, ddelta like ScanProblem::like_input, dA (dim, 1), dB / dC (batch, groups, plane) contiguous,
//          dD, ddelta_bias (dim,), in the compute dtype (du, ddelta may be in the input dtype)
// Backends register ScanOps<Backend>::<op> for their dispatch key (cpu/selective_scan_cpu.cpp, cuda/*.cu,
// emulated/selective_scan_emulated.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "selective_scan.h"

namespace mmmsvmamba {

using GradTuple = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

template <typename Backend>
struct ScanOps {
  static at::Tensor selective_scan_fwd(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                       const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                       const std::optional<at::Tensor>& delta_bias, bool delta_softplus,
                                       bool out_float) {
    constexpr const char* op = "selective_scan_fwd";
    return Backend::fwd(op,
                        make_problem(op, ScanKind::kSequence, u, delta, A, B, C, D, delta_bias,
                                     {.delta_softplus = delta_softplus}),
                        out_float);
  }

  static GradTuple selective_scan_bwd(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta,
                                      const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                      const std::optional<at::Tensor>& D,
                                      const std::optional<at::Tensor>& delta_bias, bool delta_softplus) {
    constexpr const char* op = "selective_scan_bwd";
    return backward(op, dout,
                    make_problem(op, ScanKind::kSequence, u, delta, A, B, C, D, delta_bias,
                                 {.delta_softplus = delta_softplus}),
                    u, delta, A, B, C, D, delta_bias);
  }

  static at::Tensor ms2d_half_res_scan_fwd(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                                           const at::Tensor& B, const at::Tensor& C,
                                           const std::optional<at::Tensor>& D,
                                           const std::optional<at::Tensor>& delta_bias, bool delta_softplus,
                                           bool sum_routes, bool out_float) {
    constexpr const char* op = "ms2d_half_res_scan_fwd";
    return Backend::fwd(op,
                        make_problem(op, ScanKind::kHalfRes, u, delta, A, B, C, D, delta_bias,
                                     {.delta_softplus = delta_softplus, .sum_routes = sum_routes}),
                        out_float);
  }

  static GradTuple ms2d_half_res_scan_bwd(const at::Tensor& dout, const at::Tensor& u, const at::Tensor& delta,
                                          const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                          const std::optional<at::Tensor>& D,
                                          const std::optional<at::Tensor>& delta_bias, bool delta_softplus,
                                          bool sum_routes) {
    constexpr const char* op = "ms2d_half_res_scan_bwd";
    return backward(op, dout,
                    make_problem(op, ScanKind::kHalfRes, u, delta, A, B, C, D, delta_bias,
                                 {.delta_softplus = delta_softplus, .sum_routes = sum_routes}),
                    u, delta, A, B, C, D, delta_bias);
  }

 private:
  static GradTuple backward(const char* op, const at::Tensor& dout, const ScanProblem& p, const at::Tensor& u,
                            const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                            const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& delta_bias) {
    check_dout(op, p, dout);
    return Backend::bwd(op, p, dout).cast_like(u, delta, A, B, C, D, delta_bias);
  }
};

}  // namespace mmmsvmamba
