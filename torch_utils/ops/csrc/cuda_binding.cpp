// Torch binding of the CUDA kernels: torch.ops.fsgan_cuda.bias_act / upfirdn2d.
// Only built when torch has CUDA (needs torch's CUDA headers).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "binding_util.h"
#include "cuda_kernels.h"

namespace {

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

at::Tensor bias_act(const std::optional<at::Tensor>& x, const std::optional<at::Tensor>& b,
                    const std::optional<at::Tensor>& y, const std::optional<at::Tensor>& g, int64_t dim,
                    int64_t mode, int64_t act, double alpha, double gain, double clamp) {
  fsgan::BiasActParams p;
  at::Tensor out = fsgan::prepare_bias_act(p, x, b, y, g, dim, mode, act, alpha, gain, clamp);
  TORCH_CHECK(out.is_cuda(), "fsgan_cuda.bias_act: CUDA tensors only");
  const c10::cuda::CUDAGuard guard(out.device());
  if (p.size > 0) check_launch(fsgan::bias_act_cuda(p, c10::cuda::getCurrentCUDAStream()), "bias_act");
  return out;
}

at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& w, int64_t upx, int64_t upy, int64_t downx,
                     int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1) {
  fsgan::Upfirdn2dParams p;
  at::Tensor out = fsgan::prepare_upfirdn2d(p, x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1);
  TORCH_CHECK(out.is_cuda(), "fsgan_cuda.upfirdn2d: CUDA tensors only");
  const c10::cuda::CUDAGuard guard(out.device());
  if (out.numel() > 0) check_launch(fsgan::upfirdn2d_cuda(p, c10::cuda::getCurrentCUDAStream()), "upfirdn2d");
  return out;
}

}  // namespace

TORCH_LIBRARY(fsgan_cuda, m) {
  m.def(FSGAN_BIAS_ACT_SCHEMA, &bias_act);
  m.def(FSGAN_UPFIRDN2D_SCHEMA, &upfirdn2d);
}
