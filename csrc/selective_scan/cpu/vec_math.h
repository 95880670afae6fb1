// exp, softplus and the softplus derivative of kLanes-wide SIMD values for the CPU kernel.
//
// The lanes are GCC / Clang vector-extension values: arithmetic, comparisons (giving integer masks) and `?:` act
// lane by lane and compile to the SIMD instructions of the target (one AVX2 register for 8 floats, two SSE ones).
// The float versions are branch-free polynomials (Cody-Waite range reduction and the Cephes minimax coefficients
// for expf / logf, about 1 ulp); the three transcendentals per position are most of the scan's arithmetic. The
// double versions call the C library lane by lane: float64 is for gradcheck, not for speed.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

#include "../scan_math.h"

namespace mmmsvmamba {

constexpr int kLanes = 8;  // channels a CPU task advances together: one AVX2 register of floats

typedef float FloatLanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t IntLanes __attribute__((vector_size(kLanes * sizeof(int32_t))));
typedef double DoubleLanes __attribute__((vector_size(kLanes * sizeof(double))));

namespace cpu_math {

C10_ALWAYS_INLINE FloatLanes splat(float v) { return FloatLanes{} + v; }

C10_ALWAYS_INLINE FloatLanes exp(FloatLanes x) {
  // Clamping keeps 2^n a normal float: below -87 the true result is under 1.6e-38 and we return about that.
  x = x < -87.0f ? splat(-87.0f) : x;
  x = x > 88.0f ? splat(88.0f) : x;
  // Round x / ln2 to the nearest integer n by adding and subtracting 1.5 * 2^23 (no rint call).
  const FloatLanes n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const FloatLanes r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n ln2, ln2 split in two for accuracy
  FloatLanes p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const FloatLanes er = p * r * r + r + 1.0f;
  const FloatLanes scale = (FloatLanes)((__builtin_convertvector(n, IntLanes) + 127) << 23);  // 2^n
  return er * scale;
}

// log(x) for positive normal x.
C10_ALWAYS_INLINE FloatLanes log(FloatLanes x) {
  const IntLanes bits = (IntLanes)x;
  FloatLanes k = __builtin_convertvector((bits >> 23) - 127, FloatLanes);
  FloatLanes m = (FloatLanes)((bits & 0x007fffff) | 0x3f800000);  // mantissa in [1, 2)
  const IntLanes high = m > 1.41421356f;  // move m into [sqrt(1/2), sqrt(2)) so that log(m) is small
  m = high ? m * 0.5f : m;
  k = high ? k + 1.0f : k;
  const FloatLanes f = m - 1.0f;
  const FloatLanes z = f * f;
  FloatLanes p = splat(7.0376836292e-2f);
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  FloatLanes y = p * f * z;
  y += k * -2.12194440e-4f;
  y -= 0.5f * z;
  return (f + y) + k * 0.693359375f;
}

// log(1 + x) for x >= 0: log(u) * x / (u - 1) with u = 1 + x cancels the rounding error of u (Goldberg).
C10_ALWAYS_INLINE FloatLanes log1p(FloatLanes x) {
  const FloatLanes u = x + 1.0f;
  const FloatLanes d = u - 1.0f;
  const IntLanes exact = d == 0.0f;
  const FloatLanes y = log(u) * (x / (exact ? splat(1.0f) : d));
  return exact ? x : y;
}

C10_ALWAYS_INLINE FloatLanes softplus(FloatLanes x) {
  const FloatLanes y = log1p(exp(x));
  return x > kSoftplusThreshold ? x : y;
}

// d softplus(x) / dx = sigmoid(x), and exactly 1 above the threshold like torch's softplus_backward.
C10_ALWAYS_INLINE FloatLanes softplus_grad(FloatLanes x) {
  const FloatLanes e = exp(x);
  return x > kSoftplusThreshold ? splat(1.0f) : e / (e + 1.0f);
}

template <typename F>
C10_ALWAYS_INLINE DoubleLanes per_lane(DoubleLanes x, F f) {
  for (int k = 0; k < kLanes; ++k) x[k] = f(x[k]);
  return x;
}

C10_ALWAYS_INLINE DoubleLanes exp(DoubleLanes x) {
  return per_lane(x, [](double v) { return std::exp(v); });
}
C10_ALWAYS_INLINE DoubleLanes softplus(DoubleLanes x) {
  return per_lane(x, [](double v) { return v > kSoftplusThreshold ? v : std::log1p(std::exp(v)); });
}
C10_ALWAYS_INLINE DoubleLanes softplus_grad(DoubleLanes x) {
  return per_lane(x, [](double v) { return v > kSoftplusThreshold ? 1.0 : std::exp(v) / (1.0 + std::exp(v)); });
}

}  // namespace cpu_math
}  // namespace mmmsvmamba
