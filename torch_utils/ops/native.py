"""Fused native kernels for bias_act and upfirdn2d: C++ on the CPU, CUDA on GPUs.

Each extension is JIT-built with torch.utils.cpp_extension.load (ninja) on first use, never at
import, into `$TORCH_EXTENSIONS_DIR` (default ~/.cache/fsgan/torch_extensions)/fsgan_native_<kind>_<hash>,
where the hash covers csrc/, the flags and torch/Python versions, so later runs reuse the build.
The CPU extension is built on the first CPU call, the CUDA one on the first CUDA call when
torch.cuda.is_available(). A failed build warns once and the ops fall back to their PyTorch
reference. FSGAN_NATIVE_OPS=0 disables the native path.

Data types: float16, float32 and float64 run natively on CUDA (float16 is computed in float32 and
rounded once per kernel); the CPU kernels take float32 and float64 only, so float16 CPU tensors
fall back to the reference (counted by call_counts()).

The kernels compute forward values and first-order gradient terms; the autograd Functions below
compose them so that backward and double backward work (upfirdn2d is linear, its gradient is
the adjoint upfirdn2d; the bias_act gradient is itself a fused elementwise op).
"""
import collections
import contextlib
import hashlib
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

_CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'csrc')
_SOURCES = {'cpu': ['cpu_binding.cpp', 'cpu_kernels.cpp'], 'cuda': ['cuda_binding.cpp', 'cuda_kernels.cu']}
_CFLAGS = ('-O3', '-fopenmp', '-fno-trapping-math')
_LDFLAGS = ('-fopenmp',)
_CUDA_CFLAGS = ('-O3', '-std=c++17')
_OPS_NAMESPACE = {'cpu': 'fsgan_cpu', 'cuda': 'fsgan_cuda'}
_DTYPES = {'cpu': (torch.float32, torch.float64), 'cuda': (torch.float16, torch.float32, torch.float64)}

# bias_act kernel modes (native_params.h: BiasActMode).
_FORWARD, _GRAD_X, _GRAD_Y, _GRAD2_X = 0, 1, 2, 3


@dataclass
class _Build:
    state: str = 'not built'  # 'not built' | 'ok' | 'failed'
    reason: Optional[str] = None
    build_dir: Optional[str] = None
    seconds: Optional[float] = None


_builds = {'cpu': _Build(), 'cuda': _Build()}
_loaded = {}  # kind -> torch.ops namespace of a successful build
_calls = collections.Counter()  # (kind, 'native' | 'reference') -> calls; see call_counts()
_lock = threading.Lock()


def enabled() -> bool:
    """False when FSGAN_NATIVE_OPS=0."""
    return os.environ.get('FSGAN_NATIVE_OPS', '1').strip() != '0'


def _source_hash(kind: str) -> str:
    """Hash of every file in csrc/, the flags and the toolchain versions of one extension."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(_CSRC)):
        path = os.path.join(_CSRC, name)
        if os.path.isfile(path):
            with open(path, 'rb') as fp:
                h.update(name.encode() + b'\0' + fp.read() + b'\0')
    h.update(repr((kind, _CFLAGS, _LDFLAGS, _CUDA_CFLAGS, torch.__version__, torch.version.cuda,
                   sys.version_info[:2], sys.platform)).encode())
    return h.hexdigest()[:16]


def _build_dir(kind: str) -> str:
    root = os.environ.get('TORCH_EXTENSIONS_DIR') or os.path.join(
        os.path.expanduser('~'), '.cache', 'fsgan', 'torch_extensions')
    return os.path.join(root, f'fsgan_native_{kind}_{_source_hash(kind)}')


def _compile(kind: str, build_dir: str):
    """Build (or reuse) and load one extension; returns its torch.ops namespace. Raises on failure."""
    from torch.utils import cpp_extension
    os.makedirs(build_dir, exist_ok=True)
    with builder_lock(build_dir):
        _load(cpp_extension, kind, build_dir)
    return getattr(torch.ops, _OPS_NAMESPACE[kind])


@contextlib.contextmanager
def builder_lock(build_dir):
    """Hold an OS lock on build_dir/builder.lock while building, one process at a time.

    torch's own build lock (build_dir/lock, an empty file) outlives a builder killed mid-build, and every later
    build waits for it forever. The kernel drops this lock when its holder dies, so a `lock` file found while
    holding it was abandoned and is removed.
    """
    import fcntl
    with open(os.path.join(build_dir, 'builder.lock'), 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            abandoned = os.path.join(build_dir, 'lock')
            if os.path.exists(abandoned):
                os.remove(abandoned)
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load(cpp_extension, kind, build_dir):
    """torch.utils.cpp_extension.load of one extension into build_dir (compiles what changed)."""
    cpp_extension.load(
        name=os.path.basename(build_dir),
        sources=[os.path.join(_CSRC, s) for s in _SOURCES[kind]],
        extra_cflags=list(_CFLAGS),  # lists: load() extends them in place
        extra_cuda_cflags=list(_CUDA_CFLAGS),
        extra_ldflags=list(_LDFLAGS),
        extra_include_paths=[_CSRC],
        build_directory=build_dir,
        with_cuda=(kind == 'cuda'),
        is_python_module=False,
        verbose=False)


def _ensure(kind: str) -> bool:
    """Build the extension of `kind` once per process; warn (once, as it is tried once) if that fails."""
    b = _builds[kind]
    if b.state != 'not built':
        return b.state == 'ok'
    with _lock:
        if b.state == 'not built':
            start = time.time()
            try:
                b.build_dir = _build_dir(kind)
                _loaded[kind] = _compile(kind, b.build_dir)
                b.state = 'ok'
            except Exception as e:  # noqa: BLE001 -- any build or load error means: use the reference
                b.state = 'failed'
                b.reason = f'{type(e).__name__}: {str(e).strip()[-2000:]}'
            b.seconds = time.time() - start
            if b.state == 'failed':
                warnings.warn(f'fsgan native {kind} ops failed to build ({b.reason}); '
                              f'falling back to the PyTorch reference', RuntimeWarning, stacklevel=3)
    return b.state == 'ok'


def available(device: torch.device) -> bool:
    """True when a fused native kernel is built for `device`'s type (building it on first call)."""
    kind = torch.device(device).type
    if kind not in _builds or not enabled():
        return False
    if kind == 'cuda' and not torch.cuda.is_available():
        return False
    return _ensure(kind)


def build_status() -> dict:
    """Per device type: state ('ok', 'failed', 'not built', 'disabled', 'no device'), reason, build_dir, seconds."""
    out = {}
    for kind, b in _builds.items():
        state = b.state
        if not enabled():
            state = 'disabled'
        elif kind == 'cuda' and not torch.cuda.is_available():
            state = 'no device'
        out[kind] = dict(state=state, reason=b.reason, build_dir=b.build_dir, seconds=b.seconds)
    return out


def _ops(t: torch.Tensor):
    _calls[(t.device.type, 'native')] += 1
    return _loaded[t.device.type]


def count_fallback(device: torch.device):
    """Record one call of an op that ran its PyTorch reference instead of a native kernel."""
    _calls[(torch.device(device).type, 'reference')] += 1


def call_counts() -> dict:
    """{'cpu': {'native': kernel launches, 'reference': fallback calls}, 'cuda': {...}} since import.

    Counts native kernel launches (forward and every backward kernel) and calls of bias_act /
    upfirdn2d with impl='cuda' that ran the reference (no build, unsupported dtype or arguments).
    The difference of two readings tells which implementation ran in between.
    """
    return {kind: {path: _calls[(kind, path)] for path in ('native', 'reference')} for kind in _builds}


def _supported(t: torch.Tensor) -> bool:
    return t.device.type in _loaded and t.dtype in _DTYPES[t.device.type] and t.numel() > 0


# ---------------------------------------------------------------------------------------------- bias_act

@dataclass(frozen=True)
class _BiasActCfg:
    dim: int
    act: int          # ActivationSpec.cuda_idx
    alpha: float
    gain: float
    clamp: float      # < 0: none
    save_x: bool      # backward reads x (and b)
    save_y: bool      # backward reads the output y
    has_2nd_grad: bool


def _sum_to_bias(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[..., C (at dim), ...] -> [C]."""
    return t.sum([i for i in range(t.ndim) if i != dim])


def _bias_act_kernel(cfg: _BiasActCfg, mode: int, x=None, b=None, y=None, g=None) -> torch.Tensor:
    ref = y if mode == _GRAD_Y else x
    return _ops(ref).bias_act(x, b, y, g, cfg.dim, mode, cfg.act, cfg.alpha, cfg.gain, cfg.clamp)


class _BiasAct(torch.autograd.Function):
    """y = clamp(act(x + b) * gain); x: [..., C (at dim), ...], b: [C] or None."""

    @staticmethod
    def forward(ctx, x, b, cfg):
        y = _bias_act_kernel(cfg, _FORWARD, x=x, b=b)
        ctx.cfg = cfg
        ctx.save_for_backward(x if cfg.save_x else None, b if cfg.save_x else None, y if cfg.save_y else None)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b, y = ctx.saved_tensors
        dx = _BiasActGrad.apply(dy.contiguous(), x, b, y, ctx.cfg)
        db = _sum_to_bias(dx, ctx.cfg.dim) if ctx.needs_input_grad[1] else None
        return dx, db, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * d(bias_act)/dx; linear in dy, its derivative in x is a second fused op."""

    @staticmethod
    def forward(ctx, dy, x, b, y, cfg):
        ctx.cfg = cfg
        ctx.save_for_backward(dy if cfg.has_2nd_grad else None, x, b, y)
        if cfg.save_y:
            return _bias_act_kernel(cfg, _GRAD_Y, y=y, g=dy)
        if cfg.save_x:
            return _bias_act_kernel(cfg, _GRAD_X, x=x, b=b, g=dy)
        return dy * cfg.gain  # linear without clamp

    @staticmethod
    def backward(ctx, d_dx):
        dy, x, b, y = ctx.saved_tensors
        cfg = ctx.cfg
        d_dx = d_dx.contiguous()
        d_dy = _BiasActGrad.apply(d_dx, x, b, y, cfg) if ctx.needs_input_grad[0] else None
        d_x = d_b = None
        if cfg.has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = _BiasActGrad2.apply(d_dx * dy, x, b, cfg)
            d_b = _sum_to_bias(d_x, cfg.dim) if ctx.needs_input_grad[2] else None
        return d_dy, d_x, d_b, None, None


class _BiasActGrad2(torch.autograd.Function):
    """g * d2(bias_act)/dx2; third-order gradients are not provided."""

    @staticmethod
    def forward(ctx, g, x, b, cfg):
        return _bias_act_kernel(cfg, _GRAD2_X, x=x, b=b, g=g)

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("native bias_act has no third-order gradient; use impl='ref'")


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """Native bias_act (same contract as bias_act.bias_act_ref); call after available(x.device)."""
    from .bias_act import _resolve, bias_act_ref
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    ok = _supported(x) and (b is None or (isinstance(b, torch.Tensor) and b.ndim == 1 and b.dtype == x.dtype
                                          and b.device == x.device and 0 <= dim < x.ndim
                                          and b.shape[0] == x.shape[dim]))
    if not ok:
        count_fallback(x.device)
        return bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    if act == 'linear' and b is None and gain == 1 and clamp < 0:
        return x
    # With a clamp the gradient is taken from x: it passes where |act(x + b) * gain| <= clamp, as
    # torch.clamp's does, and a saved output y == clamp cannot tell a clamped value from one at the limit.
    save_x = spec.ref == 'x' or spec.has_2nd_grad or clamp >= 0
    save_y = spec.ref == 'y' and not save_x
    cfg = _BiasActCfg(dim=dim if b is not None else 0, act=spec.cuda_idx, alpha=alpha, gain=gain, clamp=clamp,
                      save_x=save_x, save_y=save_y, has_2nd_grad=spec.has_2nd_grad)
    return _BiasAct.apply(x.contiguous(), b.contiguous() if b is not None else None, cfg)


# ---------------------------------------------------------------------------------------------- upfirdn2d

class _Upfirdn2d(torch.autograd.Function):
    """Correlate x [N, C, H, W] with w [fh, fw] on the up-sampled, padded grid, then decimate.

    geom = (upx, upy, downx, downy, padx0, padx1, pady0, pady1). The map is linear in x, so the
    backward pass is the adjoint map: the same op with w flipped, up/down swapped and padding
    chosen to give back [N, C, H, W]; applying it through this class makes every order work.
    """

    @staticmethod
    def forward(ctx, x, w, geom):
        y = _ops(x).upfirdn2d(x, w, *geom)
        ctx.save_for_backward(w)
        ctx.geom = geom
        ctx.in_hw = x.shape[2:]
        ctx.out_hw = y.shape[2:]
        return y

    @staticmethod
    def backward(ctx, dy):
        w, = ctx.saved_tensors
        upx, upy, downx, downy, px0, _, py0, _ = ctx.geom
        (h, wd), (oh, ow) = ctx.in_hw, ctx.out_hw
        fh, fw = w.shape
        adj = (downx, downy, upx, upy,
               fw - 1 - px0, wd * upx - ow * downx + px0 - upx + 1,
               fh - 1 - py0, h * upy - oh * downy + py0 - upy + 1)
        return _Upfirdn2d.apply(dy.contiguous(), w.flip([0, 1]), adj), None, None


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Native upfirdn2d (same contract as upfirdn2d.upfirdn2d_ref); call after available(x.device)."""
    from .upfirdn2d import _parse_padding, _parse_scaling, upfirdn2d_ref
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    ok = (x.ndim == 4 and _supported(x) and isinstance(f, torch.Tensor) and f.ndim in (1, 2)
          and f.dtype == torch.float32 and f.device == x.device and not f.requires_grad)
    if ok:
        fw, fh = f.shape[-1], f.shape[0]
        ok = (x.shape[2] * upy + py0 + py1 - fh) // downy >= 0 and (x.shape[3] * upx + px0 + px1 - fw) // downx >= 0
    if not ok:
        count_fallback(x.device)
        return upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)

    # Correlation weights: the filter flipped (true convolution) unless flip_filter, times the gain.
    wdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    w = (f * (gain ** (f.ndim / 2))).to(wdtype)
    if not flip_filter:
        w = w.flip(list(range(f.ndim)))
    x = x.contiguous()
    if f.ndim == 2:
        return _Upfirdn2d.apply(x, w.contiguous(), (upx, upy, downx, downy, px0, px1, py0, py1))
    # Separable: a horizontal pass, then a vertical one.
    x = _Upfirdn2d.apply(x, w[None, :].contiguous(), (upx, 1, downx, 1, px0, px1, 0, 0))
    return _Upfirdn2d.apply(x, w[:, None].contiguous(), (1, upy, 1, downy, 0, 0, py0, py1))
