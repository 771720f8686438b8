// Argument checks shared by the CPU and CUDA torch bindings: validate tensors, allocate the
// output and fill the plain-C++ params struct of a kernel.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

#include "native_params.h"

namespace fsgan {

inline int dtype_code(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf: return kFloat16;
    case at::kFloat: return kFloat32;
    case at::kDouble: return kFloat64;
    default: TORCH_CHECK(false, "fsgan native ops: unsupported dtype ", t.scalar_type());
  }
}

inline const void* data_or_null(const std::optional<at::Tensor>& t, const at::Tensor& like) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->device() == like.device() && t->scalar_type() == like.scalar_type(),
              "fsgan native ops: tensors must share device and dtype");
  TORCH_CHECK(t->is_contiguous(), "fsgan native ops: tensors must be contiguous");
  return t->data_ptr();
}

// Returns the output of bias_act (see BiasActMode) and fills p.
inline at::Tensor prepare_bias_act(BiasActParams& p, const std::optional<at::Tensor>& x,
                                   const std::optional<at::Tensor>& b, const std::optional<at::Tensor>& y,
                                   const std::optional<at::Tensor>& g, int64_t dim, int64_t mode, int64_t act,
                                   double alpha, double gain, double clamp) {
  TORCH_CHECK(mode >= kForward && mode <= kGrad2X, "bias_act: bad mode ", mode);
  TORCH_CHECK(act >= kLinear && act <= kSwish, "bias_act: bad activation id ", act);
  TORCH_CHECK(mode_supported((int)act, (int)mode), "bias_act: mode ", mode, " is not implemented for activation ", act);
  TORCH_CHECK(mode != kGradY || clamp < 0, "bias_act: the gradient from the output (mode 2) takes no clamp; use mode 1");
  const auto& main = mode == kGradY ? y : x;
  TORCH_CHECK(main.has_value() && main->defined(), "bias_act: missing input for mode ", mode);
  const at::Tensor& ref = *main;
  TORCH_CHECK(mode == kForward || (g.has_value() && g->defined()), "bias_act: missing gradient");
  p = BiasActParams{};
  p.x = mode == kGradY ? nullptr : data_or_null(x, ref);
  p.y = mode == kGradY ? data_or_null(y, ref) : nullptr;
  p.g = mode == kForward ? nullptr : data_or_null(g, ref);
  p.b = mode == kGradY ? nullptr : data_or_null(b, ref);
  if (p.g) TORCH_CHECK(g->sizes() == ref.sizes(), "bias_act: gradient shape mismatch");
  p.size = ref.numel();
  p.channels = 1;
  p.inner = 1;
  if (p.b) {
    TORCH_CHECK(dim >= 0 && dim < ref.dim() && b->dim() == 1 && b->size(0) == ref.size(dim),
                "bias_act: bias must have x.shape[dim] entries");
    p.channels = ref.size(dim);
    for (int64_t i = dim + 1; i < ref.dim(); i++) p.inner *= ref.size(i);
  }
  p.dtype = dtype_code(ref);
  p.mode = (int)mode;
  p.act = (int)act;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  at::Tensor out = ref.new_empty(ref.sizes());
  p.out = out.data_ptr();
  return out;
}

// Returns the output of upfirdn2d for x [N, C, H, W] and correlation weights w [fh, fw], fills p.
inline at::Tensor prepare_upfirdn2d(Upfirdn2dParams& p, const at::Tensor& x, const at::Tensor& w, int64_t upx,
                                    int64_t upy, int64_t downx, int64_t downy, int64_t padx0, int64_t padx1,
                                    int64_t pady0, int64_t pady1) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "upfirdn2d: x must be a contiguous [N, C, H, W] tensor");
  TORCH_CHECK(w.dim() == 2 && w.is_contiguous() && w.device() == x.device(), "upfirdn2d: bad filter");
  TORCH_CHECK(w.scalar_type() == (x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat),
              "upfirdn2d: filter must be float64 for float64 data and float32 otherwise");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down must be >= 1");
  p = Upfirdn2dParams{};
  p.dtype = dtype_code(x);
  p.planes = x.size(0) * x.size(1);
  p.in_h = (int)x.size(2);
  p.in_w = (int)x.size(3);
  p.fh = (int)w.size(0);
  p.fw = (int)w.size(1);
  const int64_t out_h = (x.size(2) * upy + pady0 + pady1 - p.fh) / downy + 1;
  const int64_t out_w = (x.size(3) * upx + padx0 + padx1 - p.fw) / downx + 1;
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d: empty output");
  p.out_h = (int)out_h;
  p.out_w = (int)out_w;
  p.upx = (int)upx;
  p.upy = (int)upy;
  p.downx = (int)downx;
  p.downy = (int)downy;
  p.padx0 = (int)padx0;
  p.pady0 = (int)pady0;
  p.x = x.data_ptr();
  p.w = w.data_ptr();
  at::Tensor out = x.new_empty({x.size(0), x.size(1), out_h, out_w});
  p.out = out.data_ptr();
  return out;
}

}  // namespace fsgan

// Schemas registered by both bindings (namespaces fsgan_cpu and fsgan_cuda).
#define FSGAN_BIAS_ACT_SCHEMA                                                                       \
  "bias_act(Tensor? x, Tensor? b, Tensor? y, Tensor? g, int dim, int mode, int act, float alpha, " \
  "float gain, float clamp) -> Tensor"
#define FSGAN_UPFIRDN2D_SCHEMA                                                                   \
  "upfirdn2d(Tensor x, Tensor w, int upx, int upy, int downx, int downy, int padx0, int padx1, " \
  "int pady0, int pady1) -> Tensor"
