// exp, softplus and the softplus derivative for the CPU kernel.
//
// The float versions are branch-free polynomials (Cody-Waite range reduction and the Cephes minimax
// coefficients for expf / logf, about 1 ulp), so the compiler vectorises the loops that call them; calling
// std::exp / std::log1p would leave those loops scalar, and the three transcendentals per position are most of
// the scan's arithmetic. The double versions call the C library: float64 is for gradcheck, not for speed.
// All are forced inline: a call left in a loop (inlining budgets vary with flags such as -DNDEBUG) would also keep
// that loop scalar.
#pragma once

#include <c10/macros/Macros.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace mmmsvmamba {
namespace cpu_math {

// Above this, softplus(x) is x (the threshold of torch.nn.functional.softplus).
constexpr float kSoftplusThreshold = 20.0f;

C10_ALWAYS_INLINE float exp(float x) {
  // Clamping keeps 2^n a normal float: below -87 the true result is under 1.6e-38 and we return about that.
  x = std::min(std::max(x, -87.0f), 88.0f);
  // Round x / ln2 to the nearest integer n by adding and subtracting 1.5 * 2^23 (no rint call: vectorises).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n ln2, ln2 split in two for accuracy
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return er * scale;
}

// log(x) for positive normal x.
C10_ALWAYS_INLINE float log(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  float k = static_cast<float>((bits >> 23) - 127);
  float m = std::bit_cast<float>((bits & 0x007fffff) | 0x3f800000);  // mantissa in [1, 2)
  const bool high = m > 1.41421356f;  // move m into [sqrt(1/2), sqrt(2)) so that log(m) is small
  m = high ? m * 0.5f : m;
  k = high ? k + 1.0f : k;
  const float f = m - 1.0f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y += k * -2.12194440e-4f;
  y -= 0.5f * z;
  return (f + y) + k * 0.693359375f;
}

// Both sides of every select below are computed: a branch would stop the loops from being vectorised.

// log(1 + x) for x >= 0: log(u) * x / (u - 1) with u = 1 + x cancels the rounding error of u (Goldberg).
C10_ALWAYS_INLINE float log1p(float x) {
  const float u = 1.0f + x;
  const float d = u - 1.0f;
  const float y = log(u) * (x / (d == 0.0f ? 1.0f : d));
  return d == 0.0f ? x : y;
}

C10_ALWAYS_INLINE float softplus(float x) {
  const float y = log1p(exp(x));
  return x > kSoftplusThreshold ? x : y;
}

// d softplus(x) / dx = sigmoid(x), and exactly 1 above the threshold like torch's softplus_backward.
C10_ALWAYS_INLINE float softplus_grad(float x) {
  const float e = exp(x);
  return x > kSoftplusThreshold ? 1.0f : e / (1.0f + e);
}

C10_ALWAYS_INLINE double exp(double x) { return std::exp(x); }
C10_ALWAYS_INLINE double softplus(double x) { return x > kSoftplusThreshold ? x : std::log1p(std::exp(x)); }
C10_ALWAYS_INLINE double softplus_grad(double x) {
  const double e = std::exp(x);
  return x > kSoftplusThreshold ? 1.0 : e / (1.0 + e);
}

}  // namespace cpu_math
}  // namespace mmmsvmamba
