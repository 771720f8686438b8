// CUDA kernel launchers of the fused ops (float16, float32, float64); implemented in cuda_kernels.cu.
#pragma once
#include <cuda_runtime_api.h>

#include "native_params.h"

namespace fsgan {

cudaError_t bias_act_cuda(const BiasActParams& p, cudaStream_t stream);
cudaError_t upfirdn2d_cuda(const Upfirdn2dParams& p, cudaStream_t stream);

}  // namespace fsgan
