// Math shared by the CPU and CUDA kernels: activations with their first and second
// derivatives, the per-element bias_act formula and the per-pixel upfirdn2d gather.
// Everything is __host__ __device__ under nvcc (FSGAN_HD) and plain inline C++ otherwise.
#pragma once
#include <math.h>
#include <stdint.h>

#include "native_params.h"

namespace fsgan {

// Storage type T <-> compute type A; cuda_kernels.cu specialises it for __half (torch builds
// CUDA code with __CUDA_NO_HALF_CONVERSIONS__, so no implicit half conversions exist there).
template <typename A, typename T>
struct Convert {
  static FSGAN_HD A load(T v) { return A(v); }
  static FSGAN_HD T store(A v) { return T(v); }
};

// Overloads so templates pick the float or double libm function on host and device.
FSGAN_HD float m_abs(float v) { return fabsf(v); }
FSGAN_HD double m_abs(double v) { return fabs(v); }
FSGAN_HD float m_exp(float v) { return expf(v); }
FSGAN_HD double m_exp(double v) { return exp(v); }
FSGAN_HD float m_expm1(float v) { return expm1f(v); }
FSGAN_HD double m_expm1(double v) { return expm1(v); }
FSGAN_HD float m_log1p(float v) { return log1pf(v); }
FSGAN_HD double m_log1p(double v) { return log1p(v); }
FSGAN_HD float m_tanh(float v) { return tanhf(v); }
FSGAN_HD double m_tanh(double v) { return tanh(v); }

// Constants of torch.nn.functional.selu and softplus (beta = 1, threshold = 20).
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSoftplusThreshold = 20.0;

template <typename T>
FSGAN_HD T sigmoid(T v) { return T(1) / (T(1) + m_exp(-v)); }

// a = act(v).
template <int ACT, typename T>
FSGAN_HD T act_value(T v, T alpha) {
  if constexpr (ACT == kLinear) return v;
  if constexpr (ACT == kRelu) return v < T(0) ? T(0) : v;
  if constexpr (ACT == kLrelu) return v > T(0) ? v : v * alpha;
  if constexpr (ACT == kTanh) return m_tanh(v);
  if constexpr (ACT == kSigmoid) return sigmoid(v);
  if constexpr (ACT == kElu) return v > T(0) ? v : m_expm1(v);
  if constexpr (ACT == kSelu) return T(kSeluScale) * (v > T(0) ? v : T(kSeluAlpha) * m_expm1(v));
  if constexpr (ACT == kSoftplus) return v > T(kSoftplusThreshold) ? v : m_log1p(m_exp(v));
  if constexpr (ACT == kSwish) return v * sigmoid(v);
}

// act'(v).
template <int ACT, typename T>
FSGAN_HD T act_grad(T v, T alpha) {
  if constexpr (ACT == kLinear) return T(1);
  if constexpr (ACT == kRelu) return v > T(0) ? T(1) : T(0);
  if constexpr (ACT == kLrelu) return v > T(0) ? T(1) : alpha;
  if constexpr (ACT == kTanh) { T t = m_tanh(v); return T(1) - t * t; }
  if constexpr (ACT == kSigmoid) { T s = sigmoid(v); return s * (T(1) - s); }
  if constexpr (ACT == kElu) return v > T(0) ? T(1) : m_exp(v);
  if constexpr (ACT == kSelu) return v > T(0) ? T(kSeluScale) : T(kSeluScale * kSeluAlpha) * m_exp(v);
  if constexpr (ACT == kSoftplus) return v > T(kSoftplusThreshold) ? T(1) : sigmoid(v);
  if constexpr (ACT == kSwish) { T s = sigmoid(v); return s * (T(1) + v * (T(1) - s)); }
}

// act'(v) written in terms of a = act(v).
template <int ACT, typename T>
FSGAN_HD T act_grad_from_output(T a, T alpha) {
  static_assert(grad_from_output(ACT), "activation has no derivative in terms of its output");
  if constexpr (ACT == kLinear) return T(1);
  if constexpr (ACT == kRelu) return a > T(0) ? T(1) : T(0);
  if constexpr (ACT == kLrelu) return a > T(0) ? T(1) : alpha;
  if constexpr (ACT == kTanh) return T(1) - a * a;
  if constexpr (ACT == kSigmoid) return a * (T(1) - a);
  if constexpr (ACT == kElu) return a > T(0) ? T(1) : a + T(1);
  if constexpr (ACT == kSelu) return a > T(0) ? T(kSeluScale) : a + T(kSeluScale * kSeluAlpha);
  if constexpr (ACT == kSoftplus) return -m_expm1(-a);
}

// act''(v).
template <int ACT, typename T>
FSGAN_HD T act_grad2(T v, T alpha) {
  if constexpr (ACT == kLinear || ACT == kRelu || ACT == kLrelu) return T(0);
  if constexpr (ACT == kTanh) { T t = m_tanh(v); return T(-2) * t * (T(1) - t * t); }
  if constexpr (ACT == kSigmoid) { T s = sigmoid(v); return s * (T(1) - s) * (T(1) - T(2) * s); }
  if constexpr (ACT == kElu) return v > T(0) ? T(0) : m_exp(v);
  if constexpr (ACT == kSelu) return v > T(0) ? T(0) : T(kSeluScale * kSeluAlpha) * m_exp(v);
  if constexpr (ACT == kSoftplus) {
    if (v > T(kSoftplusThreshold)) return T(0);
    T s = sigmoid(v);
    return s * (T(1) - s);
  }
  if constexpr (ACT == kSwish) { T s = sigmoid(v); return s * (T(1) - s) * (T(2) + v * (T(1) - T(2) * s)); }
}

// One element of the bias_act kernel (see BiasActMode). v = x + b; y, g as in BiasActParams.
// The clamp passes gradients where |a * gain| <= clamp, like torch.clamp (kGradX, kGrad2X);
// kGradY is only used without a clamp (the bindings refuse one).
template <int ACT, int MODE, typename T>
FSGAN_HD T bias_act_value(T v, T y, T g, T alpha, T gain, T clamp) {
  if constexpr (MODE == kForward) {
    const T r = act_value<ACT>(v, alpha) * gain;
    return clamp >= T(0) ? (r < -clamp ? -clamp : (r > clamp ? clamp : r)) : r;
  } else if constexpr (MODE == kGradY) {
    return gain != T(0) ? g * gain * act_grad_from_output<ACT>(y / gain, alpha) : T(0);
  } else {
    const T s = act_value<ACT>(v, alpha) * gain;
    const bool pass = clamp < T(0) || m_abs(s) <= clamp;
    const T d = MODE == kGradX ? act_grad<ACT>(v, alpha) : act_grad2<ACT>(v, alpha);
    return pass ? g * gain * d : T(0);
  }
}

// bias_act_value with the mode chosen at run time; the bindings pass only mode_supported modes.
template <int ACT, typename T>
FSGAN_HD T bias_act_value_mode(int mode, T v, T y, T g, T alpha, T gain, T clamp) {
  if constexpr (mode_supported(ACT, kGradY)) {
    if (mode == kGradY) return bias_act_value<ACT, kGradY>(v, y, g, alpha, gain, clamp);
  }
  if constexpr (mode_supported(ACT, kGradX)) {
    if (mode == kGradX) return bias_act_value<ACT, kGradX>(v, y, g, alpha, gain, clamp);
  }
  if constexpr (mode_supported(ACT, kGrad2X)) {
    if (mode == kGrad2X) return bias_act_value<ACT, kGrad2X>(v, y, g, alpha, gain, clamp);
  }
  return bias_act_value<ACT, kForward>(v, y, g, alpha, gain, clamp);
}

// Element i of the bias_act output with act and mode chosen at run time (the CUDA kernel body).
// T: storage type, A: compute type.
template <typename T, typename A>
FSGAN_HD A bias_act_element(const BiasActParams& p, int64_t i) {
  using C = Convert<A, T>;
  A v = A(0), y = A(0), g = A(0);
  if (p.mode != kGradY) {
    v = C::load(static_cast<const T*>(p.x)[i]);
    if (p.b) v += C::load(static_cast<const T*>(p.b)[(i / p.inner) % p.channels]);
  } else {
    y = C::load(static_cast<const T*>(p.y)[i]);
  }
  if (p.mode != kForward) g = C::load(static_cast<const T*>(p.g)[i]);
  const A alpha = A(p.alpha), gain = A(p.gain), clamp = A(p.clamp);
  switch (p.act) {
    case kLinear: return bias_act_value_mode<kLinear>(p.mode, v, y, g, alpha, gain, clamp);
    case kRelu: return bias_act_value_mode<kRelu>(p.mode, v, y, g, alpha, gain, clamp);
    case kLrelu: return bias_act_value_mode<kLrelu>(p.mode, v, y, g, alpha, gain, clamp);
    case kTanh: return bias_act_value_mode<kTanh>(p.mode, v, y, g, alpha, gain, clamp);
    case kSigmoid: return bias_act_value_mode<kSigmoid>(p.mode, v, y, g, alpha, gain, clamp);
    case kElu: return bias_act_value_mode<kElu>(p.mode, v, y, g, alpha, gain, clamp);
    case kSelu: return bias_act_value_mode<kSelu>(p.mode, v, y, g, alpha, gain, clamp);
    case kSoftplus: return bias_act_value_mode<kSoftplus>(p.mode, v, y, g, alpha, gain, clamp);
    default: return bias_act_value_mode<kSwish>(p.mode, v, y, g, alpha, gain, clamp);
  }
}

// Non-negative remainder for b > 0.
FSGAN_HD int pos_mod(int a, int b) { const int r = a % b; return r < 0 ? r + b : r; }

// One output pixel of upfirdn2d (see Upfirdn2dParams), gathering only the taps that land on
// input samples. x: one [in_h, in_w] plane; w: [fh, fw]. T: storage type, A: compute type.
template <typename T, typename A>
FSGAN_HD A upfirdn2d_pixel(const Upfirdn2dParams& p, const T* x, const A* w, int oy, int ox) {
  const int ty = oy * p.downy - p.pady0;  // position of tap ky = 0 on the zero-inserted grid
  const int tx = ox * p.downx - p.padx0;
  A acc = A(0);
  for (int ky = pos_mod(-ty, p.upy); ky < p.fh; ky += p.upy) {
    const int iy = (ty + ky) / p.upy;  // exact: ty + ky is a multiple of upy
    if (iy < 0 || iy >= p.in_h) continue;
    for (int kx = pos_mod(-tx, p.upx); kx < p.fw; kx += p.upx) {
      const int ix = (tx + kx) / p.upx;
      if (ix >= 0 && ix < p.in_w) acc += Convert<A, T>::load(x[(int64_t)iy * p.in_w + ix]) * w[ky * p.fw + kx];
    }
  }
  return acc;
}

}  // namespace fsgan
