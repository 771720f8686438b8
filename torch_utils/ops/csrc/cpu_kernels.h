// CPU kernels of the fused ops (float32 and float64); implemented in cpu_kernels.cpp.
#pragma once
#include "native_params.h"

namespace fsgan {

void bias_act_cpu(const BiasActParams& p);
void upfirdn2d_cpu(const Upfirdn2dParams& p);

}  // namespace fsgan
