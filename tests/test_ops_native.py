"""Fused native bias_act / upfirdn2d (torch_utils/ops/native.py) against the PyTorch reference.

Covers: CPU kernels (forward, backward, double backward; float32 closeness, float64
gradcheck/gradgradcheck), the build fallback and FSGAN_NATIVE_OPS=0, lazy building, an nvcc
compile of the CUDA device code, and the CUDA per-element code (ops_math.h, exactly what the
CUDA kernels run per thread) executed on the host through the same autograd Functions.
The CPU extension is built once per session (cached on disk across runs).
"""
import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
from torch.utils import cpp_extension

from torch_utils.ops import bias_act, conv2d_resample, native, upfirdn2d

CPU = torch.device('cpu')
CSRC = os.path.join(os.path.dirname(native.__file__), 'csrc')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTS = sorted(bias_act.activation_funcs)


def _cxx():
    return shutil.which('c++') or shutil.which('g++')


# One thread: small tensors only pay barrier waits; test_native_threads_agree covers the parallel split.
pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module', autouse=True)
def cpu_build():
    """Build the CPU extension once; fail (not skip) if a compiler exists but the build fails."""
    if not native.enabled():
        pytest.skip('FSGAN_NATIVE_OPS=0')
    if not native.available(CPU):
        reason = native.build_status()['cpu']['reason']
        if _cxx() is None:
            pytest.skip(f'no C++ compiler: {reason}')
        pytest.fail(f'native CPU build failed: {reason}')


def _assert_close(a, b, tol):
    if a is None and b is None:
        return
    if a is None or b is None:  # an input the output does not depend on: compare as zeros
        a, b = (torch.zeros_like(b) if a is None else a), (torch.zeros_like(a) if b is None else b)
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _derivatives(fn, inputs, seed=0):
    """[y, dL/dinputs..., d(sum(grads * v))/dinputs...] for L = sum(y * w); None = no dependence."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    y = fn(*inputs)
    w = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    grads = torch.autograd.grad((y * w).sum(), inputs, create_graph=True, allow_unused=True)
    s = sum((g * torch.randn(g.shape, generator=gen, dtype=g.dtype)).sum() for g in grads if g is not None)
    if isinstance(s, torch.Tensor) and s.requires_grad:
        grads2 = torch.autograd.grad(s, inputs, allow_unused=True)
    else:
        grads2 = [None] * len(inputs)
    return [y.detach()] + [None if g is None else g.detach() for g in grads] + list(grads2)


@contextlib.contextmanager
def _calls(kind='cpu'):
    """{'native': kernel launches, 'reference': fallbacks} on `kind` during the block (native.call_counts)."""
    before, counted = native.call_counts()[kind], {}
    yield counted
    after = native.call_counts()[kind]
    counted.update({path: after[path] - before[path] for path in after})


def _compare(fn_native, fn_ref, inputs, tol):
    """fn_native's value and derivatives match fn_ref's, and fn_native ran only native kernels."""
    with _calls() as native_calls:
        got = _derivatives(fn_native, inputs)
    with _calls() as ref_calls:
        want = _derivatives(fn_ref, inputs)
    assert native_calls['native'] > 0 and native_calls['reference'] == 0, native_calls
    assert ref_calls == dict(native=0, reference=0), ref_calls
    for a, b in zip(got, want):
        _assert_close(a, b, tol)


# ------------------------------------------------------------------------------------------- bias_act

# (shape, dim, with bias, kwargs)
BIAS_ACT_CASES = [
    ([3, 6, 5, 7], 1, True, {}),
    ([3, 6, 5, 7], 1, True, dict(clamp=0.4, gain=0.7)),
    ([4, 10], 1, True, dict(alpha=0.3)),        # bias along the last dim (short rows)
    ([2, 3, 40], 2, True, dict(clamp=1.1)),
    ([5, 4, 3, 2], 0, True, {}),
    ([2, 5, 6, 6], 1, False, dict(gain=1.5)),
    ([2, 5, 6, 6], 1, False, dict(clamp=0.3)),
]


@pytest.mark.parametrize('act', ACTS)
@pytest.mark.parametrize('case', range(len(BIAS_ACT_CASES)))
def test_bias_act_matches_reference(act, case):
    shape, dim, with_bias, kw = BIAS_ACT_CASES[case]
    gen = torch.Generator().manual_seed(case)
    x = torch.randn(shape, generator=gen) * 2
    inputs = [x, torch.randn(shape[dim], generator=gen)] if with_bias else [x]

    def run(impl):
        return lambda x, b=None: bias_act.bias_act(x, b, dim=dim, act=act, impl=impl, **kw)
    _compare(run('cuda'), run('ref'), inputs, tol=1e-5)


@pytest.mark.parametrize('act', ACTS)
def test_bias_act_gradcheck_float64(act):
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn([2, 3, 4], generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    b = torch.randn([3], generator=gen, dtype=torch.float64).requires_grad_(True)
    for clamp in (None, 0.8):
        def fn(x, b, clamp=clamp):
            return bias_act.bias_act(x, b, act=act, clamp=clamp, gain=1.3)
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))


def test_bias_act_native_path_is_used():
    """The native Functions are in the graph (the comparison above is not ref vs ref)."""
    x = torch.randn([2, 3, 4, 4], requires_grad=True)
    with _calls() as calls:
        y = bias_act.bias_act(x, torch.randn(3), act='lrelu')
        assert type(y.grad_fn).__name__.startswith('_BiasAct')
        y = upfirdn2d.upsample2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]))
        assert type(y.grad_fn).__name__.startswith('_Upfirdn2d')
    assert calls == dict(native=2, reference=0), calls


# ------------------------------------------------------------------------------------------ upfirdn2d

FILTERS = {
    '2d': lambda: upfirdn2d.setup_filter([1, 3, 3, 1]),
    'separable': lambda: upfirdn2d.setup_filter([1, 2, 4, 3, 1], separable=True),
    'nonsquare': lambda: torch.randn([3, 5], generator=torch.Generator().manual_seed(3)),
    'none': lambda: None,
}

# (up, down, padding)
RESAMPLE_CASES = [
    (1, 1, 0), (1, 1, [2, 1]), (2, 1, [2, 1, 2, 1]), (1, 2, 1), (2, 2, [1, 2, 0, 3]),
    (4, 1, [3, 2, 1, 4]), (1, 4, [2, 1, 3, 0]), (4, 2, 3), (2, 4, [3, 1, 2, 2]),
    ([2, 1], [1, 2], [1, 2, 2, 1]), (1, 1, [-1, 2, 1, -2]), (2, 1, [-2, 3, 1, -1]),
    (1, 2, [3, -1, -2, 3]),
]


@pytest.mark.parametrize('filt', sorted(FILTERS))
@pytest.mark.parametrize('case', range(len(RESAMPLE_CASES)))
@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('shape', [[2, 3, 9, 11], [1, 2, 7, 45]], ids=['narrow', 'wide'])
def test_upfirdn2d_matches_reference(filt, case, flip, shape):
    """Narrow rows take the CPU kernel's interleaved-planes path, wide ones (>= 32 outputs) its row path."""
    up, down, padding = RESAMPLE_CASES[case]
    f = FILTERS[filt]()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(case))
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=1.7)

    def run(impl):
        # upfirdn2d is linear: also differentiate through the incoming gradient (double backward).
        def fn(x, dy):
            y = upfirdn2d.upfirdn2d(x, f, impl=impl, **kw)
            dx, = torch.autograd.grad(y, x, dy, create_graph=True)
            return torch.cat([y.flatten(), dx.flatten()])
        return fn
    dy = torch.randn(upfirdn2d.upfirdn2d_ref(x, f, **kw).shape, generator=torch.Generator().manual_seed(7))
    _compare(run('cuda'), run('ref'), [x, dy], tol=1e-5)


@pytest.mark.parametrize('filt', ['2d', 'separable', 'nonsquare'])
def test_upfirdn2d_gradcheck_float64(filt):
    f = FILTERS[filt]()
    x = torch.randn([1, 2, 5, 6], dtype=torch.float64, requires_grad=True)
    for up, down, padding in [(2, 1, [2, 1, 2, 1]), (1, 2, [2, 1, 1, 3]), ([2, 1], [1, 2], [-1, 3, 2, 1])]:
        def fn(x, up=up, down=down, padding=padding):
            return upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=2.0)
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_resampling_helpers_and_conv2d_resample_match_reference(monkeypatch):
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([2, 4, 8, 8])
    w = torch.randn([5, 4, 3, 3])
    w1 = torch.randn([5, 4, 1, 1])

    def outputs():
        return [upfirdn2d.upsample2d(x, f), upfirdn2d.downsample2d(x, f), upfirdn2d.upfirdn2d(x, f, padding=[3, 2, 3, 2]),
                conv2d_resample.conv2d_resample(x, w, f, up=2, padding=1),
                conv2d_resample.conv2d_resample(x, w, f, down=2, padding=1),
                conv2d_resample.conv2d_resample(x, w1, f, up=2), conv2d_resample.conv2d_resample(x, w1, f, down=2)]
    with _calls() as native_calls:
        native_out = outputs()
    monkeypatch.setenv('FSGAN_NATIVE_OPS', '0')
    with _calls() as ref_calls:
        ref_out = outputs()
    assert native_calls['native'] >= len(native_out) and native_calls['reference'] == 0, native_calls
    assert ref_calls['native'] == 0 and ref_calls['reference'] >= len(ref_out), ref_calls
    for a, b in zip(native_out, ref_out):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_native_threads_agree():
    """The parallel split (several tasks on 2 threads) gives the single-thread result exactly."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn([4, 64, 32, 32], generator=gen)  # 64K elements: more than one task everywhere
    b = torch.randn([64], generator=gen)
    xs = torch.randn([3, 40], generator=gen).repeat(2000, 1)  # short rows with bias
    bs = torch.randn([40], generator=gen)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])

    def run():
        return [bias_act.bias_act(x, b, act='lrelu', clamp=0.5), bias_act.bias_act(xs, bs, act='swish'),
                bias_act.bias_act(x, act='tanh'), upfirdn2d.upfirdn2d(x, f, padding=1),  # row path
                upfirdn2d.upsample2d(x, f), upfirdn2d.downsample2d(x, f)]  # interleaved-planes path
    with _calls() as calls:
        single = run()
    assert calls == dict(native=len(single), reference=0), calls
    torch.set_num_threads(2)
    try:
        threaded = run()
    finally:
        torch.set_num_threads(1)
    for a, b_ in zip(single, threaded):
        assert torch.equal(a, b_)
    ref = [bias_act.bias_act_ref(x, b, act='lrelu', clamp=0.5), bias_act.bias_act_ref(xs, bs, act='swish'),
           bias_act.bias_act_ref(x, act='tanh'), upfirdn2d.upfirdn2d_ref(x, f, padding=1),
           upfirdn2d.upsample2d(x, f, impl='ref'), upfirdn2d.downsample2d(x, f, impl='ref')]
    for a, r in zip(threaded, ref):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- build, cache, fallback

def test_build_status_and_cache_dir(monkeypatch, tmp_path):
    st = native.build_status()['cpu']
    assert st['state'] == 'ok' and os.path.isdir(st['build_dir'])
    assert any(name.endswith('.so') for name in os.listdir(st['build_dir']))
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path))
    d = native._build_dir('cpu')
    assert os.path.dirname(d) == str(tmp_path) and os.path.basename(d) == os.path.basename(st['build_dir'])


def test_import_does_not_build():
    code = ('import torch_utils.ops.bias_act, torch_utils.ops.upfirdn2d, torch_utils.ops.native as n;'
            'print(n.build_status()["cpu"]["state"])')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'not built'


def test_failed_build_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setitem(native._builds, 'cpu', native._Build())
    monkeypatch.setattr(native, '_loaded', {})

    def broken(kind, build_dir):
        raise RuntimeError('simulated compiler failure')
    monkeypatch.setattr(native, '_compile', broken)
    x, b, f = torch.randn([2, 3, 6, 6]), torch.randn(3), upfirdn2d.setup_filter([1, 3, 3, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        y1 = bias_act.bias_act(x, b, act='lrelu', clamp=0.5)
        y2 = bias_act.bias_act(x, b, act='tanh')
        y3 = upfirdn2d.upsample2d(x, f)
    msgs = [str(w.message) for w in caught if 'falling back to the PyTorch reference' in str(w.message)]
    assert len(msgs) == 1 and 'simulated compiler failure' in msgs[0]
    assert not native.available(CPU)
    assert native.build_status()['cpu']['state'] == 'failed'
    assert torch.equal(y1, bias_act.bias_act_ref(x, b, act='lrelu', clamp=0.5))
    assert torch.equal(y2, bias_act.bias_act_ref(x, b, act='tanh'))
    assert torch.equal(y3, upfirdn2d.upsample2d(x, f, impl='ref'))


def test_env_var_disables_native(monkeypatch):
    monkeypatch.setenv('FSGAN_NATIVE_OPS', '0')
    assert not native.available(CPU)
    assert native.build_status()['cpu']['state'] == 'disabled'
    x = torch.randn([2, 3, 4, 4], requires_grad=True)
    with _calls() as calls:
        y = bias_act.bias_act(x, torch.randn(3), act='lrelu')
    assert not type(y.grad_fn).__name__.startswith('_BiasAct')
    assert calls == dict(native=0, reference=1), calls


# ------------------------------------------------------------------------------------------------ CUDA

def _nvcc():
    for cand in (shutil.which('nvcc'), '/usr/local/cuda/bin/nvcc'):
        if cand and os.path.isfile(cand):
            return cand
    return None


def _cuda_include():
    nvcc = _nvcc()
    cands = [os.path.join(os.environ.get('CUDA_HOME', '/nonexistent'), 'include'), '/usr/local/cuda/include']
    if nvcc:
        cands.append(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), 'include'))
    return next((c for c in cands if os.path.isfile(os.path.join(c, 'cuda_runtime_api.h'))), None)


def test_nvcc_compiles_device_code(tmp_path):
    """cuda_kernels.cu with the flags torch's JIT build adds (no implicit half conversions etc.)."""
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip('nvcc not found (PATH, /usr/local/cuda/bin)')
    cmd = [nvcc, '-c', *native._CUDA_CFLAGS, *cpp_extension.COMMON_NVCC_FLAGS, '-Xcompiler', '-fPIC',
           '-Werror', 'all-warnings', '-I', CSRC, os.path.join(CSRC, 'cuda_kernels.cu'),
           '-o', str(tmp_path / 'cuda_kernels.o')]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / 'cuda_kernels.o').stat().st_size > 0


@pytest.mark.slow
def test_cuda_binding_typechecks(tmp_path):
    """cuda_binding.cpp against this torch's c10/cuda headers (host compiler, syntax and types only)."""
    cxx, cuda_inc = _cxx(), _cuda_include()
    if cxx is None or cuda_inc is None:
        pytest.skip('needs a C++ compiler and the CUDA headers (cuda_runtime_api.h)')
    incs = cpp_extension.include_paths()
    if not os.path.isfile(os.path.join(incs[0], 'c10', 'cuda', 'CUDAGuard.h')):
        pytest.skip('this torch has no c10/cuda headers')
    # CPU wheels lack this generated header; an empty one is enough for a syntax check.
    if not os.path.isfile(os.path.join(incs[0], 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h')):
        (tmp_path / 'c10' / 'cuda' / 'impl').mkdir(parents=True)
        (tmp_path / 'c10' / 'cuda' / 'impl' / 'cuda_cmake_macros.h').write_text('#pragma once\n')
    cmd = [cxx, '-fsyntax-only', '-std=c++20', '-Wall', '-Werror', '-I', str(tmp_path)]
    for inc in incs + [cuda_inc, CSRC]:
        cmd += ['-isystem' if inc != CSRC else '-I', inc]
    out = subprocess.run(cmd + [os.path.join(CSRC, 'cuda_binding.cpp')], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]


# Host harness running the per-thread bodies of the CUDA kernels (ops_math.h) over all indices.
_HARNESS = r'''
#include "ops_math.h"
using namespace fsgan;
template <typename T> static void run_bias_act(const BiasActParams& p) {
  for (int64_t i = 0; i < p.size; i++) static_cast<T*>(p.out)[i] = bias_act_element<T, T>(p, i);
}
template <typename T> static void run_upfirdn2d(const Upfirdn2dParams& p) {
  const int64_t ip = (int64_t)p.in_h * p.in_w, op = (int64_t)p.out_h * p.out_w;
  for (int64_t i = 0; i < p.planes * op; i++) {
    const int64_t c = i / op; const int r = (int)(i - c * op);
    static_cast<T*>(p.out)[i] = upfirdn2d_pixel<T, T>(p, static_cast<const T*>(p.x) + c * ip,
                                                      static_cast<const T*>(p.w), r / p.out_w, r % p.out_w);
  }
}
extern "C" void emu_bias_act(const void* x, const void* b, const void* y, const void* g, void* out,
    int64_t size, int64_t channels, int64_t inner, int dtype, int mode, int act, double alpha, double gain,
    double clamp) {
  BiasActParams p{x, b, y, g, out, size, channels, inner, dtype, mode, act, alpha, gain, clamp};
  if (dtype == kFloat64) run_bias_act<double>(p); else run_bias_act<float>(p);
}
extern "C" void emu_upfirdn2d(const void* x, const void* w, void* out, int64_t planes, int in_h, int in_w,
    int out_h, int out_w, int fh, int fw, int upx, int upy, int downx, int downy, int padx0, int pady0,
    int dtype) {
  Upfirdn2dParams p{x, w, out, planes, in_h, in_w, out_h, out_w, fh, fw, upx, upy, downx, downy, padx0, pady0,
                    dtype};
  if (dtype == kFloat64) run_upfirdn2d<double>(p); else run_upfirdn2d<float>(p);
}
'''


class _EmulatedCudaOps:
    """Stands in for torch.ops.fsgan_cuda: output allocation as in binding_util.h, values from the harness."""

    def __init__(self, lib):
        self.lib = lib
        P, I64, I, D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
        lib.emu_bias_act.argtypes = [P] * 5 + [I64] * 3 + [I] * 3 + [D] * 3
        lib.emu_upfirdn2d.argtypes = [P] * 3 + [I64] + [I] * 13

    @staticmethod
    def _ptr(t):
        return None if t is None else t.data_ptr()

    def bias_act(self, x, b, y, g, dim, mode, act, alpha, gain, clamp):
        assert mode in (0, 1, 2, 3)
        ref = y if mode == 2 else x
        b = None if mode == 2 else b
        channels, inner = 1, 1
        if b is not None:
            channels = ref.shape[dim]
            for s in ref.shape[dim + 1:]:
                inner *= s
        out = torch.empty_like(ref)
        dtype = 2 if ref.dtype == torch.float64 else 1
        self.lib.emu_bias_act(self._ptr(x if mode != 2 else None), self._ptr(b), self._ptr(y if mode == 2 else None),
                              self._ptr(g if mode else None), out.data_ptr(), ref.numel(), channels, inner, dtype,
                              mode, act, alpha, gain, clamp)
        return out

    def upfirdn2d(self, x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1):
        n, c, h, wd = x.shape
        fh, fw = w.shape
        oh, ow = (h * upy + pady0 + pady1 - fh) // downy + 1, (wd * upx + padx0 + padx1 - fw) // downx + 1
        out = x.new_empty([n, c, oh, ow])
        self.lib.emu_upfirdn2d(x.data_ptr(), w.data_ptr(), out.data_ptr(), n * c, h, wd, oh, ow, fh, fw, upx, upy,
                               downx, downy, padx0, pady0, 2 if x.dtype == torch.float64 else 1)
        return out


@pytest.fixture(scope='module')
def cuda_emulation(tmp_path_factory):
    cxx = _cxx()
    if cxx is None:
        pytest.skip('no C++ compiler')
    d = tmp_path_factory.mktemp('cuda_emulation')
    (d / 'harness.cpp').write_text(_HARNESS)
    cmd = [cxx, '-O1', '-std=c++17', '-shared', '-fPIC', '-I', CSRC, str(d / 'harness.cpp'), '-o', str(d / 'h.so')]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return _EmulatedCudaOps(ctypes.CDLL(str(d / 'h.so')))


@pytest.mark.parametrize('act', ACTS)
def test_cuda_element_code_bias_act(act, cuda_emulation, monkeypatch):
    monkeypatch.setattr(native, '_loaded', {'cpu': cuda_emulation})
    gen = torch.Generator().manual_seed(5)
    for shape, dim, kw in [([2, 4, 3, 5], 1, dict(clamp=0.6)), ([3, 7], 1, {})]:
        x, b = torch.randn(shape, generator=gen) * 2, torch.randn(shape[dim], generator=gen)
        _compare(lambda x, b: native.bias_act(x, b, dim=dim, act=act, **kw),
                 lambda x, b: bias_act.bias_act_ref(x, b, dim=dim, act=act, **kw), [x, b], tol=1e-5)
    x64 = torch.randn([2, 3, 4], dtype=torch.float64, requires_grad=True)
    b64 = torch.randn([3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, b: native.bias_act(x, b, act=act, clamp=0.9), (x64, b64),
                                        fast_mode=True)


@pytest.mark.parametrize('case', range(len(RESAMPLE_CASES)))
def test_cuda_element_code_upfirdn2d(case, cuda_emulation, monkeypatch):
    monkeypatch.setattr(native, '_loaded', {'cpu': cuda_emulation})
    up, down, padding = RESAMPLE_CASES[case]
    x = torch.randn([2, 3, 9, 11], generator=torch.Generator().manual_seed(case))
    for filt in ('2d', 'separable', 'nonsquare'):
        f = FILTERS[filt]()
        kw = dict(up=up, down=down, padding=padding, flip_filter=case % 2 == 1, gain=1.7)
        _compare(lambda x: native.upfirdn2d(x, f, **kw), lambda x: upfirdn2d.upfirdn2d_ref(x, f, **kw), [x], 1e-5)
    x64 = torch.randn([1, 2, 5, 6], dtype=torch.float64, requires_grad=True)
    f = FILTERS['2d']()
    assert torch.autograd.gradgradcheck(lambda x: native.upfirdn2d(x, f, up=up, down=down, padding=padding),
                                        (x64,), fast_mode=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
@pytest.mark.parametrize('dtype', [torch.float16, torch.float32, torch.float64])
def test_cuda_matches_reference(dtype):
    dev = torch.device('cuda')
    assert native.available(dev), native.build_status()['cuda']['reason']
    tol = 1e-2 if dtype == torch.float16 else 1e-5
    x = torch.randn([2, 8, 9, 11], device=dev, dtype=dtype)
    b = torch.randn([8], device=dev, dtype=dtype)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=dev)
    for act in ACTS:
        torch.testing.assert_close(bias_act.bias_act(x, b, act=act, clamp=0.5),
                                   bias_act.bias_act_ref(x, b, act=act, clamp=0.5), rtol=tol, atol=tol)
    for up, down, padding in RESAMPLE_CASES:
        torch.testing.assert_close(upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding),
                                   upfirdn2d.upfirdn2d_ref(x, f, up=up, down=down, padding=padding),
                                   rtol=tol, atol=tol)
    if dtype == torch.float64:
        xg = torch.randn([1, 2, 5, 6], device=dev, dtype=dtype, requires_grad=True)
        bg = torch.randn([2], device=dev, dtype=dtype, requires_grad=True)
        assert torch.autograd.gradgradcheck(lambda x, b: bias_act.bias_act(x, b, act='swish'), (xg, bg))
        assert torch.autograd.gradgradcheck(lambda x: upfirdn2d.upsample2d(x, f), (xg,))


def test_a_build_killed_midway_does_not_block_the_next(tmp_path):
    """torch's build lock outlives a builder killed by SIGKILL; the next build must not wait for it."""
    import signal
    import subprocess
    import sys
    code = ('import os, sys, time; from torch_utils.ops.native import builder_lock\n'
            'with builder_lock(sys.argv[1]):\n'
            '    open(os.path.join(sys.argv[1], "lock"), "w").close(); print("building", flush=True); time.sleep(60)\n')
    holder = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'building'
    import fcntl
    with open(tmp_path / 'builder.lock', 'a') as f, pytest.raises(BlockingIOError):
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one builder at a time
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert os.path.exists(tmp_path / 'lock')  # left behind, as a killed torch build leaves it
    done = subprocess.run([sys.executable, '-c', 'import sys, os; from torch_utils.ops.native import builder_lock\n'
                           'with builder_lock(sys.argv[1]): print(os.path.exists(os.path.join(sys.argv[1], "lock")))',
                           str(tmp_path)], cwd=ROOT, timeout=60, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == 'False'
