// Torch binding of the CPU kernels: torch.ops.fsgan_cpu.bias_act / upfirdn2d.
#include <torch/library.h>

#include "binding_util.h"
#include "cpu_kernels.h"

namespace {

at::Tensor bias_act(const std::optional<at::Tensor>& x, const std::optional<at::Tensor>& b,
                    const std::optional<at::Tensor>& y, const std::optional<at::Tensor>& g, int64_t dim,
                    int64_t mode, int64_t act, double alpha, double gain, double clamp) {
  fsgan::BiasActParams p;
  at::Tensor out = fsgan::prepare_bias_act(p, x, b, y, g, dim, mode, act, alpha, gain, clamp);
  TORCH_CHECK(out.is_cpu() && p.dtype != fsgan::kFloat16, "fsgan_cpu.bias_act: float32/float64 CPU tensors only");
  if (p.size > 0) fsgan::bias_act_cpu(p);
  return out;
}

at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& w, int64_t upx, int64_t upy, int64_t downx,
                     int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1) {
  fsgan::Upfirdn2dParams p;
  at::Tensor out = fsgan::prepare_upfirdn2d(p, x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1);
  TORCH_CHECK(out.is_cpu() && p.dtype != fsgan::kFloat16, "fsgan_cpu.upfirdn2d: float32/float64 CPU tensors only");
  if (out.numel() > 0) fsgan::upfirdn2d_cpu(p);
  return out;
}

}  // namespace

TORCH_LIBRARY(fsgan_cpu, m) {
  m.def(FSGAN_BIAS_ACT_SCHEMA, &bias_act);
  m.def(FSGAN_UPFIRDN2D_SCHEMA, &upfirdn2d);
}
