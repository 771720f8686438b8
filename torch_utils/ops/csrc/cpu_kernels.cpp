// CPU kernels of the fused ops, parallelised over torch's intra-op thread pool.
// bias_act: one vectorisable loop per (activation, mode) instantiation.
// upfirdn2d: groups of planes interleaved so that each filter tap is a SIMD multiply-add.
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "cpu_kernels.h"
#include "ops_math.h"

namespace fsgan {
namespace {

constexpr int64_t kGrain = 32768;  // elements per parallel task, roughly

// Hot loops get an AVX2/FMA clone next to the baseline one, picked at load time (GNU ifunc).
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define FSGAN_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FSGAN_SIMD_CLONES
#endif

// ---------------------------------------------------------------- bias_act

// out[j] = bias_act_value(x[j] + bias, y[j], g[j]) for j < n; pointers a mode does not read are null.
template <int ACT, int MODE, typename T>
FSGAN_SIMD_CLONES void bias_act_run(const T* __restrict x, T bias, const T* __restrict y,
                                    const T* __restrict g, T* __restrict out, int64_t n, T alpha, T gain, T clamp) {
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

// Filter taps of one output index along an axis: input samples i .. i + n - 1 meet filter
// indices k, k + up, ..., k + (n - 1) * up; taps outside the input are dropped.
struct TapRun {
  int i, k, n;
};

std::vector<TapRun> tap_runs(int out, int in, int up, int down, int pad0, int fk) {
  std::vector<TapRun> runs(out);
  for (int o = 0; o < out; o++) {
    const int t = o * down - pad0;  // position of filter index 0 on the zero-inserted grid
    int k = pos_mod(-t, up), i = (t + k) / up;
    int n = k < fk ? (fk - k + up - 1) / up : 0;
    if (i < 0) {
      const int skip = std::min(n, -i);
      i += skip;
      k += skip * up;
      n -= skip;
    }
    runs[o] = {i, k, std::max(0, std::min(n, in - i))};
  }
  return runs;
}

// Lanes: planes filtered together, interleaved so that every tap is one SIMD multiply-add.
template <typename T> constexpr int kLanes = 64 / sizeof(T);

// Output columns accumulated together (independent multiply-add chains hide their latency).
constexpr int kBatch = 4;

// Groups the output columns into batches of up to kBatch with equal TapRun k and n.
// order: the columns sorted by (k, n); batches: (start into order, count).
void column_batches(const std::vector<TapRun>& cols, std::vector<int>& order,
                    std::vector<std::pair<int, int>>& batches) {
  order.resize(cols.size());
  for (size_t c = 0; c < cols.size(); c++) order[c] = (int)c;
  auto key = [&](int c) { return std::make_pair(cols[c].k, cols[c].n); };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  for (size_t j = 0; j < order.size();) {
    size_t e = j + 1;
    while (e < order.size() && e - j < kBatch && key(order[e]) == key(order[j])) e++;
    batches.push_back({(int)j, (int)(e - j)});
    j = e;
  }
}

// P output pixels of one row: filter-row run ry, columns ox[0..P) whose runs share k and n.
// xin: [in_h, in_w, L] interleaved input; writes L values per pixel to orow + ox * L.
template <int P, typename T>
__attribute__((always_inline)) inline void upfirdn2d_pixels(const Upfirdn2dParams& p, TapRun ry, const TapRun* cols,
                                                            const int* ox, const T* __restrict xin,
                                                            const T* __restrict w, T* __restrict orow) {
  constexpr int L = kLanes<T>;
  T acc[P][L] = {};
  const TapRun rx = cols[ox[0]];
  for (int a = 0; a < ry.n; a++) {
    const T* wrow = w + (ry.k + a * p.upy) * p.fw + rx.k;
    const T* xrow[P];
    for (int q = 0; q < P; q++) xrow[q] = xin + ((int64_t)(ry.i + a) * p.in_w + cols[ox[q]].i) * L;
    for (int b = 0; b < rx.n; b++) {
      const T wv = wrow[b * p.upx];
      for (int q = 0; q < P; q++) {
#pragma omp simd
        for (int l = 0; l < L; l++) acc[q][l] += wv * xrow[q][b * L + l];
      }
    }
  }
  for (int q = 0; q < P; q++) {
#pragma omp simd
    for (int l = 0; l < L; l++) orow[ox[q] * L + l] = acc[q][l];
  }
}

// Rows of a plane moved per block when (de)interleaving: reads and writes of one plane then
// stay sequential, which the hardware prefetchers need.
constexpr int64_t kBlockElems = 256;

// One group of kLanes planes. xin: [in_h, in_w, L] interleaved input; obuf: [rb, out_w, L].
// Computes rb output rows at a time into obuf, then writes the `lanes` valid planes of the
// group to out ([lanes, out_h, out_w]).
template <typename T>
FSGAN_SIMD_CLONES void upfirdn2d_group(const Upfirdn2dParams& p, const TapRun* rows, const TapRun* cols,
                                       const int* order, const std::pair<int, int>* batches, int num_batches,
                                       const T* __restrict xin, const T* __restrict w, T* __restrict obuf, int rb,
                                       T* __restrict out, int lanes) {
  constexpr int L = kLanes<T>;
  const int64_t out_plane = (int64_t)p.out_h * p.out_w;
  for (int oy0 = 0; oy0 < p.out_h; oy0 += rb) {
    const int oy1 = std::min(p.out_h, oy0 + rb);
    for (int oy = oy0; oy < oy1; oy++) {
      T* orow = obuf + (int64_t)(oy - oy0) * p.out_w * L;
      for (int bi = 0; bi < num_batches; bi++) {
        const auto [start, count] = batches[bi];
        if (count == kBatch) {
          upfirdn2d_pixels<kBatch>(p, rows[oy], cols, order + start, xin, w, orow);
        } else {
          for (int q = 0; q < count; q++) upfirdn2d_pixels<1>(p, rows[oy], cols, order + start + q, xin, w, orow);
        }
      }
    }
    const int64_t n = (int64_t)(oy1 - oy0) * p.out_w;
    for (int l = 0; l < lanes; l++) {
      T* o = out + l * out_plane + (int64_t)oy0 * p.out_w;
      for (int64_t e = 0; e < n; e++) o[e] = obuf[e * L + l];
    }
  }
}

// Planes without horizontal resampling (upx == downx == 1) and rows of at least one chunk are
// instead vectorised along the output row, with no interleaving: chunks of kRowChunk output
// columns (four AVX registers), then of kRowTail (one register) for the rest of the row.
template <typename T> constexpr int kRowChunk = 128 / sizeof(T);
template <typename T> constexpr int kRowTail = 32 / sizeof(T);

// Output columns [ox0, ox0 + N) of one row into dst. xpad: the plane's input rows, shifted
// right by padx0 and zero-extended to pw columns so that every tap read is in bounds.
template <int N, typename T>
__attribute__((always_inline)) inline void upfirdn2d_row_chunk(const Upfirdn2dParams& p, TapRun ry,
                                                               const T* __restrict xpad, int64_t pw,
                                                               const T* __restrict w, T* __restrict dst, int ox0) {
  T acc[N] = {};
  for (int a = 0; a < ry.n; a++) {
    const T* wrow = w + (ry.k + a * p.upy) * p.fw;
    const T* xrow = xpad + (int64_t)(ry.i + a) * pw + ox0;
    for (int kx = 0; kx < p.fw; kx++) {
      const T wv = wrow[kx];
#pragma omp simd
      for (int j = 0; j < N; j++) acc[j] += wv * xrow[kx + j];
    }
  }
#pragma omp simd
  for (int j = 0; j < N; j++) dst[j] = acc[j];
}

// One plane: out [out_h, out_w]; tail: kRowTail scratch for the last partial chunk of a row.
template <typename T>
FSGAN_SIMD_CLONES void upfirdn2d_plane_rows(const Upfirdn2dParams& p, const TapRun* rows, const T* __restrict xpad,
                                            int64_t pw, const T* __restrict w, T* __restrict out,
                                            T* __restrict tail) {
  constexpr int N = kRowChunk<T>, M = kRowTail<T>;
  for (int oy = 0; oy < p.out_h; oy++) {
    T* orow = out + (int64_t)oy * p.out_w;
    int ox0 = 0;
    for (; ox0 + N <= p.out_w; ox0 += N) upfirdn2d_row_chunk<N>(p, rows[oy], xpad, pw, w, orow + ox0, ox0);
    for (; ox0 + M <= p.out_w; ox0 += M) upfirdn2d_row_chunk<M>(p, rows[oy], xpad, pw, w, orow + ox0, ox0);
    if (ox0 < p.out_w) {
      upfirdn2d_row_chunk<M>(p, rows[oy], xpad, pw, w, tail, ox0);
      std::copy(tail, tail + (p.out_w - ox0), orow + ox0);
    }
  }
}

template <typename T>
void upfirdn2d_rows(const Upfirdn2dParams& p, const std::vector<TapRun>& rows) {
  constexpr int N = kRowChunk<T>;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const int64_t pw = (p.out_w + N - 1) / N * N + p.fw - 1;
  // xpad columns [c0, c1) hold input data.
  const int64_t c0 = std::max(0, p.padx0), c1 = std::min<int64_t>(pw, (int64_t)p.padx0 + p.in_w);
  const int64_t in_plane = (int64_t)p.in_h * p.in_w, out_plane = (int64_t)p.out_h * p.out_w;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(out_plane, 1));
  at::parallel_for(0, p.planes, grain, [&](int64_t b, int64_t e) {
    std::vector<T> xpad(p.in_h * pw, T(0)), tail(kRowTail<T>);  // zero margins stay zero across planes
    for (int64_t c = b; c < e; c++) {
      for (int iy = 0; iy < p.in_h && c1 > c0; iy++) {
        const T* src = x + c * in_plane + (int64_t)iy * p.in_w + (c0 - p.padx0);
        std::copy(src, src + (c1 - c0), xpad.data() + iy * pw + c0);
      }
      upfirdn2d_plane_rows<T>(p, rows.data(), xpad.data(), pw, static_cast<const T*>(p.w), out + c * out_plane,
                              tail.data());
    }
  });
}

template <typename T>
void upfirdn2d_typed(const Upfirdn2dParams& p) {
  constexpr int L = kLanes<T>;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  T* out = static_cast<T*>(p.out);
  const std::vector<TapRun> rows = tap_runs(p.out_h, p.in_h, p.upy, p.downy, p.pady0, p.fh);
  if (p.upx == 1 && p.downx == 1 && p.out_w >= kRowChunk<T>) return upfirdn2d_rows<T>(p, rows);
  const std::vector<TapRun> cols = tap_runs(p.out_w, p.in_w, p.upx, p.downx, p.padx0, p.fw);
  std::vector<int> order;
  std::vector<std::pair<int, int>> batches;
  column_batches(cols, order, batches);
  const int64_t in_plane = (int64_t)p.in_h * p.in_w, out_plane = (int64_t)p.out_h * p.out_w;
  const int64_t groups = (p.planes + L - 1) / L;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(out_plane * L, 1));
  const int rb = (int)std::max<int64_t>(1, kBlockElems / p.out_w);
  const int64_t in_block = std::max<int64_t>(1, kBlockElems / p.in_w) * p.in_w;
  at::parallel_for(0, groups, grain, [&](int64_t g0, int64_t g1) {
    std::vector<T> xin(in_plane * L), obuf((int64_t)rb * p.out_w * L);
    for (int64_t g = g0; g < g1; g++) {
      const int lanes = (int)std::min<int64_t>(L, p.planes - g * L);
      if (lanes < L) std::fill(xin.begin(), xin.end(), T(0));
      const T* src = x + g * L * in_plane;
      for (int64_t e0 = 0; e0 < in_plane; e0 += in_block) {
        const int64_t e1 = std::min(in_plane, e0 + in_block);
        for (int l = 0; l < lanes; l++)
          for (int64_t e = e0; e < e1; e++) xin[e * L + l] = src[l * in_plane + e];
      }
      upfirdn2d_group<T>(p, rows.data(), cols.data(), order.data(), batches.data(), (int)batches.size(),
                         xin.data(), w, obuf.data(), rb, out + g * L * out_plane, lanes);
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
