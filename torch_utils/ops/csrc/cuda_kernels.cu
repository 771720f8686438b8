// CUDA kernels of the fused ops. Self-contained (CUDA runtime and this folder's headers only)
// so that nvcc can compile it without torch; the torch binding is cuda_binding.cpp.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda_kernels.h"
#include "ops_math.h"

namespace fsgan {

template <>
struct Convert<float, __half> {
  static FSGAN_HD float load(__half v) { return __half2float(v); }
  static FSGAN_HD __half store(float v) { return __float2half_rn(v); }
};

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

// Compute type: float for half storage, else the storage type.
template <typename T> struct Acc { using type = T; };
template <> struct Acc<__half> { using type = float; };

int64_t blocks_for(int64_t n) { return std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks); }

template <typename T>
__global__ void bias_act_kernel(BiasActParams p) {
  using A = typename Acc<T>::type;
  T* out = static_cast<T*>(p.out);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.size; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = Convert<A, T>::store(bias_act_element<T, A>(p, i));
}

// One thread per output pixel (grid-stride); w holds the [fh, fw] weights in the compute type.
template <typename T>
__global__ void upfirdn2d_kernel(Upfirdn2dParams p) {
  using A = typename Acc<T>::type;
  const T* x = static_cast<const T*>(p.x);
  const A* w = static_cast<const A*>(p.w);
  T* out = static_cast<T*>(p.out);
  const int64_t out_plane = (int64_t)p.out_h * p.out_w, in_plane = (int64_t)p.in_h * p.in_w;
  const int64_t total = p.planes * out_plane;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = i / out_plane;
    const int rem = (int)(i - c * out_plane);
    out[i] = Convert<A, T>::store(upfirdn2d_pixel<T, A>(p, x + c * in_plane, w, rem / p.out_w, rem % p.out_w));
  }
}

template <typename T>
cudaError_t launch_bias_act(const BiasActParams& p, cudaStream_t stream) {
  bias_act_kernel<T><<<(unsigned)blocks_for(p.size), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_upfirdn2d(const Upfirdn2dParams& p, cudaStream_t stream) {
  upfirdn2d_kernel<T><<<(unsigned)blocks_for(p.planes * p.out_h * p.out_w), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t bias_act_cuda(const BiasActParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case kFloat16: return launch_bias_act<__half>(p, stream);
    case kFloat32: return launch_bias_act<float>(p, stream);
    case kFloat64: return launch_bias_act<double>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t upfirdn2d_cuda(const Upfirdn2dParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case kFloat16: return launch_upfirdn2d<__half>(p, stream);
    case kFloat32: return launch_upfirdn2d<float>(p, stream);
    case kFloat64: return launch_upfirdn2d<double>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace fsgan
