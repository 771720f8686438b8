// CPU kernels of the fused ops, parallelised over torch's intra-op thread pool.
// bias_act: one vectorisable loop per (activation, mode) instantiation.
// upfirdn2d: polyphase correlation, one output row at a time, in contiguous SIMD loops.
#include <ATen/Parallel.h>

#include <algorithm>
#include <climits>
#include <numeric>
#include <vector>

#include "cpu_kernels.h"
#include "ops_math.h"

namespace fsgan {
namespace {

constexpr int64_t kGrain = 32768;  // elements per parallel task, roughly

// ---------------------------------------------------------------- bias_act

// out[j] = bias_act_value(x[j] + bias, y[j], g[j]) for j < n; pointers a mode does not read are null.
template <int ACT, int MODE, typename T>
__attribute__((noinline)) void bias_act_run(const T* __restrict x, T bias, const T* __restrict y, const T* __restrict g,
                  T* __restrict out, int64_t n, T alpha, T gain, T clamp) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) {
    T v = T(0), yv = T(0), gv = T(0);
    if constexpr (MODE == kGradY) yv = y[j]; else v = x[j] + bias;
    if constexpr (MODE != kForward) gv = g[j];
    out[j] = bias_act_value<ACT, MODE>(v, yv, gv, alpha, gain, clamp);
  }
}

template <int ACT, int MODE, typename T>
void bias_act_loop(const BiasActParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* b = static_cast<const T*>(p.b);
  const T* y = static_cast<const T*>(p.y);
  const T* g = static_cast<const T*>(p.g);
  T* out = static_cast<T*>(p.out);
  const T alpha = T(p.alpha), gain = T(p.gain), clamp = T(p.clamp);
  auto shift = [](const T* ptr, int64_t o) { return ptr ? ptr + o : nullptr; };
  auto run = [&](const T* xs, T bias, int64_t o, int64_t n) {
    bias_act_run<ACT, MODE, T>(xs, bias, shift(y, o), shift(g, o), out + o, n, alpha, gain, clamp);
  };

  if (!b) {
    at::parallel_for(0, p.size, kGrain, [&](int64_t i0, int64_t i1) { run(shift(x, i0), T(0), i0, i1 - i0); });
  } else if (p.inner >= 16) {
    // Rows of `inner` elements share one bias value.
    const int64_t rows = p.size / p.inner;
    at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / p.inner), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) run(x + r * p.inner, b[r % p.channels], r * p.inner, p.inner);
    });
  } else {
    // Short rows (e.g. [N, C] with dim=1): add the bias per [C, inner] block into a buffer first.
    const int64_t block = p.channels * p.inner;
    at::parallel_for(0, p.size / block, std::max<int64_t>(1, kGrain / block), [&](int64_t o0, int64_t o1) {
      std::vector<T> v(block);
      for (int64_t o = o0; o < o1; o++) {
        for (int64_t k = 0; k < block; k++) v[k] = x[o * block + k] + b[k / p.inner];
        run(v.data(), T(0), o * block, block);
      }
    });
  }
}

// Runs the kernel of p.mode; the bindings pass only mode_supported modes.
template <typename T, int ACT>
void bias_act_mode(const BiasActParams& p) {
  if constexpr (mode_supported(ACT, kGradY)) {
    if (p.mode == kGradY) return bias_act_loop<ACT, kGradY, T>(p);
  }
  if constexpr (mode_supported(ACT, kGradX)) {
    if (p.mode == kGradX) return bias_act_loop<ACT, kGradX, T>(p);
  }
  if constexpr (mode_supported(ACT, kGrad2X)) {
    if (p.mode == kGrad2X) return bias_act_loop<ACT, kGrad2X, T>(p);
  }
  bias_act_loop<ACT, kForward, T>(p);
}

template <typename T>
void bias_act_typed(const BiasActParams& p) {
  switch (p.act) {
    case kLinear: return bias_act_mode<T, kLinear>(p);
    case kRelu: return bias_act_mode<T, kRelu>(p);
    case kLrelu: return bias_act_mode<T, kLrelu>(p);
    case kTanh: return bias_act_mode<T, kTanh>(p);
    case kSigmoid: return bias_act_mode<T, kSigmoid>(p);
    case kElu: return bias_act_mode<T, kElu>(p);
    case kSelu: return bias_act_mode<T, kSelu>(p);
    case kSoftplus: return bias_act_mode<T, kSoftplus>(p);
    default: return bias_act_mode<T, kSwish>(p);
  }
}

// ---------------------------------------------------------------- upfirdn2d

// Polyphase plan of one axis. Outputs o = r + period * j (phase r, j = 0, 1, ...) read source
// samples i0 + stride * j for each tap. The source row is stored deinterleaved by `stride`
// (sample i in phase row i mod stride at position i div stride - lo), so those reads are contiguous.
struct AxisTap {
  int k;       // filter index along the axis
  int phase;   // i0 mod stride
  int offset;  // i0 div stride - lo
};

struct AxisPlan {
  int period = 1, stride = 1;
  int lo = 0, len = 0;                     // deinterleaved rows cover i div stride in [lo, lo + len)
  std::vector<int> count;                  // outputs of each phase
  std::vector<std::vector<AxisTap>> taps;  // taps of each phase
};

AxisPlan plan_axis(int out, int up, int down, int pad0, int fk) {
  AxisPlan a;
  const int g = std::gcd(up, down);
  a.period = up / g;
  a.stride = down / g;
  const int phases = std::min(a.period, out);
  a.count.resize(phases);
  a.taps.resize(phases);
  int lo = INT_MAX, hi = INT_MIN;
  for (int r = 0; r < phases; r++) {
    a.count[r] = (out - r + a.period - 1) / a.period;
    const int t = r * down - pad0;  // position of tap 0 on the zero-inserted grid
    for (int k = pos_mod(-t, up); k < fk; k += up) {
      const int i0 = (t + k) / up;
      const int m = floor_div(i0, a.stride);
      a.taps[r].push_back({k, i0 - m * a.stride, m});
      lo = std::min(lo, m);
      hi = std::max(hi, m + a.count[r]);
    }
  }
  if (lo <= hi) {
    a.lo = lo;
    a.len = hi - lo;
    for (auto& taps : a.taps)
      for (auto& t : taps) t.offset -= lo;
  }
  return a;
}

// acc[j] += sum_k w[k] * src[k][j] for K taps.
template <int K, typename T>
inline void accumulate(T* __restrict acc, const T* const* src, const T* w, int n) {
  const T* __restrict s[K];
  T wk[K];
  for (int k = 0; k < K; k++) { s[k] = src[k]; wk[k] = w[k]; }
#pragma omp simd
  for (int j = 0; j < n; j++) {
    T v = acc[j];
    for (int k = 0; k < K; k++) v += wk[k] * s[k][j];
    acc[j] = v;
  }
}

template <typename T>
void upfirdn2d_typed(const Upfirdn2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  T* out = static_cast<T*>(p.out);
  const AxisPlan ax = plan_axis(p.out_w, p.upx, p.downx, p.padx0, p.fw);

  // Vertical taps (ky, iy) of each output row, skipping rows outside the input.
  std::vector<int> row_begin(p.out_h + 1, 0);
  std::vector<std::pair<int, int>> row_taps;
  for (int oy = 0; oy < p.out_h; oy++) {
    const int t = oy * p.downy - p.pady0;
    for (int ky = pos_mod(-t, p.upy); ky < p.fh; ky += p.upy) {
      const int iy = (t + ky) / p.upy;
      if (iy >= 0 && iy < p.in_h) row_taps.push_back({ky, iy});
    }
    row_begin[oy + 1] = (int)row_taps.size();
  }

  const int64_t in_plane = (int64_t)p.in_h * p.in_w, out_plane = (int64_t)p.out_h * p.out_w;
  const int64_t buf_row = (int64_t)ax.stride * ax.len;  // one input row, deinterleaved and padded
  at::parallel_for(0, p.planes, std::max<int64_t>(1, kGrain / std::max<int64_t>(out_plane, 1)), [&](int64_t c0, int64_t c1) {
    std::vector<T> buf(p.in_h * buf_row, T(0));  // zero margins stay zero across planes
    std::vector<T> acc_buf(ax.period > 1 ? ax.count[0] : 0);
    std::vector<const T*> src;
    std::vector<T> wts;
    for (int64_t c = c0; c < c1; c++) {
      const T* xp = x + c * in_plane;
      T* op = out + c * out_plane;
      for (int iy = 0; iy < p.in_h; iy++) {
        for (int i = 0; i < p.in_w; i++) {
          const int q = i % ax.stride, m = i / ax.stride - ax.lo;
          if (m >= 0 && m < ax.len) buf[iy * buf_row + (int64_t)q * ax.len + m] = xp[(int64_t)iy * p.in_w + i];
        }
      }
      for (int oy = 0; oy < p.out_h; oy++) {
        T* orow = op + (int64_t)oy * p.out_w;
        for (int r = 0; r < (int)ax.count.size(); r++) {
          const int n = ax.count[r];
          T* acc = ax.period > 1 ? acc_buf.data() : orow;
          std::fill(acc, acc + n, T(0));
          src.clear();
          wts.clear();
          for (int e = row_begin[oy]; e < row_begin[oy + 1]; e++) {
            const auto [ky, iy] = row_taps[e];
            for (const AxisTap& t : ax.taps[r]) {
              src.push_back(buf.data() + iy * buf_row + (int64_t)t.phase * ax.len + t.offset);
              wts.push_back(w[ky * p.fw + t.k]);
            }
          }
          size_t k = 0;
          for (; k + 4 <= src.size(); k += 4) accumulate<4>(acc, &src[k], &wts[k], n);
          switch (src.size() - k) {
            case 3: accumulate<3>(acc, &src[k], &wts[k], n); break;
            case 2: accumulate<2>(acc, &src[k], &wts[k], n); break;
            case 1: accumulate<1>(acc, &src[k], &wts[k], n); break;
          }
          if (ax.period > 1)
            for (int j = 0; j < n; j++) orow[r + ax.period * j] = acc[j];
        }
      }
    }
  });
}

}  // namespace

void bias_act_cpu(const BiasActParams& p) {
  if (p.dtype == kFloat64) bias_act_typed<double>(p); else bias_act_typed<float>(p);
}

void upfirdn2d_cpu(const Upfirdn2dParams& p) {
  if (p.dtype == kFloat64) upfirdn2d_typed<double>(p); else upfirdn2d_typed<float>(p);
}

}  // namespace fsgan
