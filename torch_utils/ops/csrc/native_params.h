// Plain-C++ argument structs handed from the torch bindings to the CPU and CUDA kernels.
// No torch or CUDA types here: the CUDA kernel file includes this and compiles on its own.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define FSGAN_HD __host__ __device__ __forceinline__
#else
#define FSGAN_HD inline
#endif

namespace fsgan {

// Element types of the tensors behind the void pointers below.
enum DType : int { kFloat16 = 0, kFloat32 = 1, kFloat64 = 2 };

// Activation ids; equal to ActivationSpec.cuda_idx in bias_act.py.
enum ActId : int {
  kLinear = 1, kRelu = 2, kLrelu = 3, kTanh = 4, kSigmoid = 5,
  kElu = 6, kSelu = 7, kSoftplus = 8, kSwish = 9,
};

// True for activations whose derivative can be written in terms of their output.
FSGAN_HD constexpr bool grad_from_output(int act) { return act != kSwish; }

// What the bias_act kernel computes; v = x + b, a = act(v), out0 = clamp(a * gain).
enum BiasActMode : int {
  kForward = 0,  // out = out0
  kGradX = 1,    // out = g * d(out0)/dv, derivative from v
  kGradY = 2,    // out = g * d(out0)/dv, derivative from the saved output y = out0; no clamp
                 // (y == clamp cannot tell a clamped value from one exactly at the limit)
  kGrad2X = 3,   // out = g * d2(out0)/dv2, from v
};

// Modes the kernels implement for an activation: kGradX always, kGradY where the derivative
// follows from the output, kGrad2X where the second derivative is not zero.
FSGAN_HD constexpr bool mode_supported(int act, int mode) {
  return mode == kForward || mode == kGradX || (mode == kGradY && grad_from_output(act)) ||
         (mode == kGrad2X && act > kLrelu);
}

// Elementwise op on tensors viewed as [size / (channels * inner), channels, inner].
struct BiasActParams {
  const void* x;     // input before the bias (modes kForward, kGradX, kGrad2X), else null
  const void* b;     // [channels] bias, or null
  const void* y;     // saved forward output (mode kGradY), else null
  const void* g;     // incoming gradient (all but kForward), else null
  void* out;
  int64_t size;      // number of elements
  int64_t channels;  // x.shape[dim] (1 when there is no bias)
  int64_t inner;     // prod(x.shape[dim + 1:])
  int dtype, mode, act;
  double alpha, gain, clamp;  // clamp < 0: no clamping
};

// upfirdn2d as a correlation: out[oy, ox] = sum_{ky, kx} w[ky, kx] * u[oy * downy + ky, ox * downx + kx],
// where u is x with up - 1 zeros inserted after every sample and pad0 zeros prepended (negative: cropped).
struct Upfirdn2dParams {
  const void* x;  // [planes, in_h, in_w]
  const void* w;  // [fh, fw] weights: double for float64 data, float otherwise
  void* out;      // [planes, out_h, out_w]
  int64_t planes;
  int in_h, in_w, out_h, out_w, fh, fw;
  int upx, upy, downx, downy, padx0, pady0;
  int dtype;
};

}  // namespace fsgan
