"""bias_act and upfirdn2d, native and reference, judged against a float64 truth computed on the CPU.

Every case draws its inputs once in the dtype under test; the truth is the reference implementation
run on the CPU in float64 on exactly those values (upcast, so no rounding of the inputs), and both
implementations under test run on the device in the dtype. Compared: the forward output, the
first-order gradients and the double-backward gradients (see bias_act_outputs, upfirdn2d_outputs).

Tolerance rule: an output passes when every element satisfies
    |impl - truth| <= TOL_FACTOR * eps(dtype) * M
where eps is torch.finfo(dtype).eps (2^-10, 2^-23, 2^-52) and M the magnitude the rounding errors
scale with:
  * bias_act, elementwise outputs: max |truth| over the tensor (norm-wise; the per-element formula
    rounds a handful of times, and an input rounded by eps moves act by |act'(v) v| eps);
  * bias_act, bias gradients (sums over every other dim): per entry, the sum of |terms| summed;
  * upfirdn2d (a sum of products per element): per element, the same computation on |x|, |f| and
    the absolute incoming gradients (the classic bound sum |f_k x_k| of a dot product).
`ratio` = max |impl - truth| / (eps * M) is recorded, so a pass reads ratio <= TOL_FACTOR.

Discontinuities: the derivative of clamp jumps at |act(x + b) * gain| == clamp. An input rounded to
float16 may legitimately land on the other side, so inputs are drawn away from a band of relative
width BAND_ULPS * eps around +-clamp; the boundary itself is checked with values exactly at +-clamp
(boundary_case), where torch.clamp's rule holds: the gradient passes where |a * gain| <= clamp.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import torch

from . import bias_act as bias_act_mod
from . import native
from . import upfirdn2d as upfirdn2d_mod

TOL_FACTOR = 8
BAND_ULPS = 16
DTYPES = {'float16': torch.float16, 'float32': torch.float32, 'float64': torch.float64}
F64 = torch.float64
CPU = torch.device('cpu')


@dataclass
class Case:
    """One op configuration. make(gen, dtype) -> list of CPU input tensors in dtype;
    outputs(inputs, impl) -> {name: tensor}; magnitudes(truth, inputs64) -> {name: M}."""
    op: str
    name: str
    make: Callable
    outputs: Callable
    magnitudes: Callable
    meta: Dict = field(default_factory=dict)


def eps(dtype) -> float:
    return float(torch.finfo(dtype).eps)


# ------------------------------------------------------------------------------------------- bias_act

def _sum_to_bias(t, dim):
    return t.sum([i for i in range(t.ndim) if i != dim])


def bias_act_outputs(x, b, w, vx, vb, dim, impl, **kw):
    """{'y', 'dx', 'db', 'd2x', 'd2b'}: y = bias_act(x, b); L = sum(y w) gives dx, db;
    S = sum(dx vx) + sum(db vb) gives d2x, d2b (double backward). impl: 'ref' or 'cuda' (native)."""
    x, b = x.detach().requires_grad_(True), b.detach().requires_grad_(True)
    y = bias_act_mod.bias_act(x, b, dim=dim, impl=impl, **kw)
    dx, db = torch.autograd.grad((y * w).sum(), [x, b], create_graph=True)
    s = (dx * vx).sum() + (db * vb).sum()
    if s.requires_grad:
        d2x, d2b = torch.autograd.grad(s, [x, b], allow_unused=True)
    else:  # second derivative identically zero (linear pieces)
        d2x, d2b = None, None
    d2x = torch.zeros_like(x) if d2x is None else d2x
    d2b = torch.zeros_like(b) if d2b is None else d2b
    return dict(y=y, dx=dx, db=db, d2x=d2x, d2b=d2b)


def _clamp_safe(x, b, dim, act, gain, clamp, dtype, gen):
    """Move the elements of x [.., C at dim, ..] whose truth |act(x + b) * gain| lies within the
    float16-rounding band of clamp (see the module docstring) until none does."""
    if clamp is None:
        return x
    spec, alpha, gain_f, _ = bias_act_mod._resolve(act, None, gain, clamp)
    band = BAND_ULPS * eps(dtype) * clamp
    shape = [-1 if i == dim else 1 for i in range(x.ndim)]
    for _ in range(50):
        s = spec.func(x.to(F64) + b.to(F64).reshape(shape), alpha) * gain_f
        near = (s.abs() - clamp).abs() <= band
        if not near.any():
            return x
        x = torch.where(near, x + torch.rand(x.shape, generator=gen).to(dtype) * 0.5 + 0.1, x)
    raise AssertionError('could not draw bias_act inputs away from the clamp boundary')


def bias_act_case(act, clamp, shape=(3, 6, 5, 7), dim=1, gain=None):
    """Random x (std 2), b, incoming gradients; x kept off the clamp boundary."""
    kw = dict(act=act, clamp=clamp, gain=gain)

    def make(gen, dtype):
        x = (torch.randn(shape, generator=gen, dtype=F64) * 2).to(dtype)
        b = torch.randn([shape[dim]], generator=gen, dtype=F64).to(dtype)
        x = _clamp_safe(x, b, dim, act, gain, clamp, dtype, gen)
        w, vx = (torch.randn(shape, generator=gen, dtype=F64).to(dtype) for _ in range(2))
        vb = torch.randn([shape[dim]], generator=gen, dtype=F64).to(dtype)
        return [x, b, w, vx, vb]

    def outputs(inputs, impl):
        return bias_act_outputs(*inputs, dim=dim, impl=impl, **kw)

    def magnitudes(truth, _inputs):
        m = {k: truth[k].abs().max() for k in ('y', 'dx', 'd2x')}
        m['db'] = _sum_to_bias(truth['dx'].abs(), dim)
        m['d2b'] = _sum_to_bias(truth['d2x'].abs(), dim)
        return m
    name = f'{act} clamp={clamp}'
    return Case('bias_act', name, make, outputs, magnitudes, dict(act=act, clamp=clamp, shape=list(shape)))


def bias_act_cases() -> List[Case]:
    """Every activation of bias_act.activation_funcs, without and with a clamp (0.5, below most |y|)."""
    return [bias_act_case(act, clamp) for act in sorted(bias_act_mod.activation_funcs) for clamp in (None, 0.5)]


def boundary_case() -> Case:
    """Values exactly at +-clamp (exact in every dtype): linear/relu/lrelu(alpha 0.25), gain 2, clamp 0.5.
    x = 0.25 gives +clamp, x = -0.25 gives -clamp (linear) and x = -1 gives -clamp (lrelu)."""
    acts = [('linear', None), ('relu', None), ('lrelu', 0.25)]
    vals = torch.tensor([0.25, -0.25, -1.0, 0.3, -1.3, 0.1], dtype=F64)

    def make(gen, dtype):
        x = vals.repeat(4, 1)  # [4, 6]
        w = torch.randn([4, 6], generator=gen, dtype=F64)
        return [x.to(dtype), w.to(dtype)]

    def outputs(inputs, impl):
        x, w = inputs
        out = {}
        for act, alpha in acts:
            xx = x.detach().requires_grad_(True)
            y = bias_act_mod.bias_act(xx, None, act=act, alpha=alpha, gain=2, clamp=0.5, impl=impl)
            out[f'{act}.y'] = y
            out[f'{act}.dx'], = torch.autograd.grad((y * w).sum(), [xx])
        return out

    def magnitudes(truth, _inputs):
        return {k: t.abs().max() for k, t in truth.items()}
    return Case('bias_act', 'clamp boundary', make, outputs, magnitudes, dict(values=vals.tolist()))


# ------------------------------------------------------------------------------------------ upfirdn2d

FILTERS = {
    '2d': lambda: upfirdn2d_mod.setup_filter([1, 3, 3, 1]),
    'separable': lambda: upfirdn2d_mod.setup_filter([1, 2, 4, 3, 1], separable=True),
}

# name -> kwargs of upfirdn2d: the network's helpers (up 2, down 2) and explicit pads/crops.
RESAMPLINGS = {
    'upsample2d': None, 'downsample2d': None,
    'up2 pad': dict(up=2, padding=[2, 1, 2, 1], gain=4),
    'down2 pad': dict(down=2, padding=1),
    'up2 down2': dict(up=2, down=2, padding=[1, 2, 0, 3]),
    'pad crop flip': dict(padding=[-1, 2, 1, -2], flip_filter=True, gain=1.7),
}


def _resample(x, f, name, impl):
    if name == 'upsample2d':
        return upfirdn2d_mod.upsample2d(x, f, impl=impl)
    if name == 'downsample2d':
        return upfirdn2d_mod.downsample2d(x, f, impl=impl)
    return upfirdn2d_mod.upfirdn2d(x, f, impl=impl, **RESAMPLINGS[name])


def upfirdn2d_outputs(x, w, v, f, name, impl):
    """{'y', 'dx', 'd2w'}: y = op(x); dx = grad of sum(y w) in x (built with create_graph);
    d2w = grad of sum(dx v) in w (the backward of the backward)."""
    x, w = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    y = _resample(x, f, name, impl)
    dx, = torch.autograd.grad(y, [x], w, create_graph=True)
    d2w, = torch.autograd.grad((dx * v).sum(), [w])
    return dict(y=y, dx=dx, d2w=d2w)


def upfirdn2d_case(name, filt, shape):
    def make(gen, dtype):
        x = torch.randn(shape, generator=gen, dtype=F64).to(dtype)
        y_shape = _resample(torch.zeros(shape), FILTERS[filt](), name, 'ref').shape
        w = torch.randn(y_shape, generator=gen, dtype=F64).to(dtype)
        v = torch.randn(shape, generator=gen, dtype=F64).to(dtype)
        return [x, w, v]

    def outputs(inputs, impl):
        f = FILTERS[filt]().to(inputs[0].device)
        return upfirdn2d_outputs(*inputs, f, name, impl)

    def magnitudes(_truth, inputs64):
        x, w, v = (t.abs() for t in inputs64)
        return upfirdn2d_outputs(x, w, v, FILTERS[filt]().abs(), name, 'ref')
    return Case('upfirdn2d', f'{name} {filt} {list(shape)}', make, outputs, magnitudes,
                dict(resampling=name, filter=filt, shape=list(shape)))


def upfirdn2d_cases(shapes=((2, 3, 9, 11), (1, 2, 7, 45))) -> List[Case]:
    """Every resampling x both filter kinds x a narrow and a wide shape (the CPU kernel's two paths)."""
    return [upfirdn2d_case(name, filt, tuple(shape)) for name in RESAMPLINGS for filt in FILTERS for shape in shapes]


# ------------------------------------------------------------------------------------------- judging

def _run_impl(case, inputs, device, impl):
    """Outputs of one implementation on `device` (float64 on the CPU) and the native call counts it made."""
    before = native.call_counts().get(device.type, dict(native=0, reference=0))
    out = case.outputs([t.to(device) for t in inputs], impl)
    after = native.call_counts().get(device.type, dict(native=0, reference=0))
    out = {k: v.detach().to(CPU, F64) for k, v in out.items()}
    return out, {k: after[k] - before[k] for k in after}


def _ratios(out, truth, mags, dtype):
    """{output: max |out - truth| / (eps * M)}; 0 where both error and M are 0, inf for error without M."""
    res = {}
    for k, t in truth.items():
        err = (out[k] - t).abs()
        bound = eps(dtype) * torch.as_tensor(mags[k], dtype=F64).detach()
        r = torch.where(err == 0, torch.zeros_like(err), err / bound)
        res[k] = float(r.max()) if r.numel() else 0.0
    return res


def which_ran(calls) -> str:
    """'native' when only native kernels ran, 'fallback' when only the reference did, else 'mixed'."""
    if calls.get('native', 0) and not calls.get('reference', 0):
        return 'native'
    return 'fallback' if not calls.get('native', 0) else 'mixed'


def run_case(case: Case, device, dtype, seed=0) -> dict:
    """Judge native (impl='cuda') and reference (impl='ref') on `device` in `dtype` against the truth."""
    device = torch.device(device)
    inputs = case.make(torch.Generator().manual_seed(seed), dtype)
    inputs64 = [t.to(F64) for t in inputs]
    truth = {k: v.detach() for k, v in case.outputs(inputs64, 'ref').items()}
    mags = case.magnitudes(truth, inputs64)
    res = dict(op=case.op, case=case.name, dtype=str(dtype).replace('torch.', ''), device=device.type,
               tol=TOL_FACTOR, **case.meta)
    for impl, label in (('cuda', 'native'), ('ref', 'reference')):
        out, calls = _run_impl(case, inputs, device, impl)
        ratios = _ratios(out, truth, mags, dtype)
        res[label] = dict(ok=all(r <= TOL_FACTOR for r in ratios.values()), worst=max(ratios.values()),
                          ratios={k: round(r, 3) for k, r in ratios.items()},
                          max_abs_err=max(float((out[k] - truth[k]).abs().max()) for k in truth))
        if label == 'native':
            res['native_ran'] = which_ran(calls)
            res['calls'] = calls
    return res
