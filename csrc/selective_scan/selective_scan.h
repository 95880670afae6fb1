// Shared host-side pieces of the d_state = 1 selective scan: input validation and normalisation, output shapes,
// the channels-last memory layout every backend reads and writes, and the half-resolution route order. Every
// backend (cpu/, cuda/) starts from a ScanProblem; scan_ops.h turns a backend into the four ops.
//
// The recurrence, per batch b, channel d (group g = d / (dim / groups)) and scanned position t, h_{-1} = 0:
//   dt_t = delta_t + delta_bias_d, then softplus(dt_t) if delta_softplus (threshold kSoftplusThreshold, scan_math.h)
//   a_t  = exp(dt_t * A_d)
//   h_t  = a_t * h_{t-1} + dt_t * B_{b,g,t} * u_t
//   y_t  = C_{b,g,t} * h_t + D_d * u_t
//
// Two layouts of the scanned sequence of a (b, d) row over a plane of `plane` positions:
//   sequence: position t is element t, seqlen = plane = L.
//   half-res: the plane is an Hb x Wb map and the sequence is its three MS2D routes one after the other
//             (docs/architecture.md, "The three half-res routes are one scan"), seqlen = 3 * Hb * Wb; see
//             half_res_offset() in route_order.h.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <optional>
#include <vector>

#include "../common/check.h"
#include "route_order.h"

namespace mmmsvmamba {

struct ScanProblem {
  // u, delta, B, C share one "input" dtype; A, D, delta_bias are in the compute dtype (float32, or float64 for
  // float64 inputs). D and delta_bias may be undefined. All contiguous with the channel axis moved last:
  // u, delta (batch, plane..., dim), B, C (batch, 1, plane..., groups), so that neighbouring channels of one
  // position are neighbours in memory (the memory of the model's channels-last activations).
  at::Tensor u, delta, A, B, C, D, delta_bias;
  int64_t batch = 0, dim = 0, groups = 1;
  int64_t plane = 0;   // positions of one (b, d) row of u
  int64_t seqlen = 0;  // scanned positions per (b, d)
  int64_t height = 0, width = 0;
  bool half_res = false;
  bool sum_routes = true;
  bool delta_softplus = false;

  at::ScalarType compute_dtype() const { return u.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

  // (batch, dim, L); half-res (batch, dim, Hb, Wb) when summed, (batch, 3, dim, Hb, Wb) when stacked.
  std::vector<int64_t> output_sizes() const {
    if (!half_res) return {batch, dim, seqlen};
    if (sum_routes) return {batch, dim, height, width};
    return {batch, kNumRoutes, dim, height, width};
  }
  // Axis of output_sizes() that holds the channels.
  int64_t output_channel_axis() const { return half_res && !sum_routes ? 2 : 1; }

  // A tensor of output_sizes() whose memory has the channel axis innermost, zero-filled if `zero`.
  at::Tensor empty_output(const at::TensorOptions& options, bool zero) const {
    std::vector<int64_t> memory = output_sizes();
    const int64_t axis = output_channel_axis();
    memory.erase(memory.begin() + axis);
    memory.push_back(dim);
    return (zero ? at::zeros(memory, options) : at::empty(memory, options)).movedim(-1, axis);
  }
  // dout (output_sizes(), any strides) as `dtype` in the backends' memory layout (channel axis innermost);
  // no copy for a float dout in that layout already.
  at::Tensor dout_channels_last(const at::Tensor& dout, at::ScalarType dtype) const {
    return dout.movedim(output_channel_axis(), -1).to(dtype).contiguous();
  }
  // A (batch, plane, dim) buffer as a tensor of u's logical shape (batch, dim, plane...), memory unchanged.
  at::Tensor like_input(const at::Tensor& buffer) const { return buffer.view(u.sizes()).movedim(-1, 1); }
};

inline void check_input_dtype(const char* op, const at::Tensor& u) {
  const auto t = u.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16, op,
              ": u must be float32, float64, float16 or bfloat16, got ", t);
}

// Which op's inputs make_problem reads: the sequence op, or the half-res op on maps.
enum class ScanKind { kSequence, kHalfRes };
// The ops' boolean arguments (sum_routes only matters for the half-res op).
struct ScanFlags {
  bool delta_softplus = false;
  bool sum_routes = true;
};

// Validates the inputs of either op and brings them to the form the kernels read (see ScanProblem).
// Sequence op: u, delta (B, D, L); B, C (B, G, 1, L). Half-res op: u, delta (B, D, Hb, Wb); B, C (B, G, 1, Hb, Wb).
// Both: A (D, 1), D and delta_bias (D,) or absent.
inline ScanProblem make_problem(const char* op, ScanKind kind, const at::Tensor& u, const at::Tensor& delta,
                                const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& delta_bias,
                                ScanFlags flags) {
  const bool half_res = kind == ScanKind::kHalfRes;
  ScanProblem p;
  p.half_res = half_res;
  p.sum_routes = flags.sum_routes;
  p.delta_softplus = flags.delta_softplus;
  if (half_res) {
    check_shape(op, "u", u, {-1, -1, -1, -1}, "(batch, dim, Hb, Wb)");
  } else {
    check_shape(op, "u", u, {-1, -1, -1}, "(batch, dim, seqlen)");
  }
  check_input_dtype(op, u);
  p.batch = u.size(0);
  p.dim = u.size(1);
  check_shape(op, "delta", delta, u.sizes().vec(), "u.shape");
  TORCH_CHECK(A.dim() == 2 && A.size(0) == p.dim, op, ": A must have shape (dim, d_state) = (", p.dim,
              ", 1), got ", shape_str(A.sizes()));
  TORCH_CHECK(A.size(1) == 1, op, ": the compiled selective scan is specialised for d_state = 1, but A has shape ",
              shape_str(A.sizes()), "; use backend='torch' for other d_state");
  std::vector<int64_t> bc_sizes = u.sizes().vec();
  bc_sizes[1] = -1;
  bc_sizes.insert(bc_sizes.begin() + 2, 1);
  const char* bc_layout = half_res ? "(batch, groups, 1, Hb, Wb)" : "(batch, groups, 1, seqlen)";
  check_shape(op, "B", B, bc_sizes, bc_layout);
  check_shape(op, "C", C, bc_sizes, bc_layout);
  p.groups = B.size(1);
  TORCH_CHECK(p.groups > 0 && p.dim % p.groups == 0, op, ": B has ", p.groups, " groups, which do not divide dim = ",
              p.dim);
  TORCH_CHECK(C.size(1) == p.groups, op, ": B and C must have the same number of groups, got ", p.groups, " and ",
              C.size(1));
  check_device(op, "delta", delta, u);
  check_device(op, "A", A, u);
  check_device(op, "B", B, u);
  check_device(op, "C", C, u);

  const auto in_dtype = u.scalar_type();
  const auto acc_dtype = in_dtype == at::kDouble ? at::kDouble : at::kFloat;
  // One input dtype for the kernels: delta, B and C follow u (the official kernels require them to share u's
  // dtype, and the model computes them so). Moving the channel axis last and making the tensor contiguous is a
  // no-op for the channels-last maps the model passes; other inputs are copied once.
  auto channels_last = [&](const at::Tensor& t) { return t.to(in_dtype).movedim(1, -1).contiguous(); };
  p.u = channels_last(u);
  p.delta = channels_last(delta);
  p.B = channels_last(B);
  p.C = channels_last(C);
  p.A = A.to(acc_dtype).contiguous();
  if (D.has_value() && D->defined()) {
    check_shape(op, "D", *D, {p.dim}, "(dim,)");
    check_device(op, "D", *D, u);
    p.D = D->to(acc_dtype).contiguous();
  }
  if (delta_bias.has_value() && delta_bias->defined()) {
    check_shape(op, "delta_bias", *delta_bias, {p.dim}, "(dim,)");
    check_device(op, "delta_bias", *delta_bias, u);
    p.delta_bias = delta_bias->to(acc_dtype).contiguous();
  }
  if (half_res) {
    p.height = u.size(2);
    p.width = u.size(3);
    p.plane = p.height * p.width;
    p.seqlen = kNumRoutes * p.plane;
  } else {
    p.plane = p.seqlen = u.size(2);
  }
  return p;
}

inline void check_dout(const char* op, const ScanProblem& p, const at::Tensor& dout) {
  check_shape(op, "dout", dout, p.output_sizes(), "the forward output's shape");
  check_device(op, "dout", dout, p.u);
}

// The gradients in the dtypes of the tensors they belong to; dD / ddelta_bias keep the compute dtype when the
// corresponding input was absent (autograd ignores them then).
struct ScanGrads {
  at::Tensor du, ddelta, dA, dB, dC, dD, ddelta_bias;

  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> cast_like(
      const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
      const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& delta_bias) const {
    auto like = [](const at::Tensor& g, const std::optional<at::Tensor>& t) {
      return t.has_value() && t->defined() ? g.to(t->scalar_type()) : g;
    };
    return {du.to(u.scalar_type()),          ddelta.to(delta.scalar_type()), dA.to(A.scalar_type()),
            dB.view(B.sizes()).to(B.scalar_type()), dC.view(C.sizes()).to(C.scalar_type()), like(dD, D),
            like(ddelta_bias, delta_bias)};
  }
};

}  // namespace mmmsvmamba
