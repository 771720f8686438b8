"""The resampling / activation ops against straightforward, independent NumPy/SciPy computations.

upfirdn2d = zero insertion, pad/crop, 2-D convolution, decimation (written out with NumPy);
conv2d_resample = that upsampling/filtering followed by a plain convolution; bias_act = the
activation formulas. Each check runs on the PyTorch reference (FSGAN_NATIVE_OPS=0) and on the
default dispatch (native kernels when built), in float64.
"""
import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import bias_act, conv2d_resample, fma, upfirdn2d


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(params=['ref', 'native'], autouse=True)
def dispatch(request, monkeypatch):
    if request.param == 'ref':
        monkeypatch.setenv('FSGAN_NATIVE_OPS', '0')
    return request.param


def _rng(seed):
    return np.random.default_rng(seed)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad4(p):
    if isinstance(p, int):
        return p, p, p, p
    return (p[0], p[0], p[1], p[1]) if len(p) == 2 else tuple(p)


def np_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
    """x: [N, C, H, W] float64; f: None, [fw] (applied along both axes) or [fh, fw]."""
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _pad4(padding)
    f = np.ones([1, 1]) if f is None else np.asarray(f, dtype=np.float64)
    f2 = np.outer(f, f) if f.ndim == 1 else f
    n, c, h, w = x.shape
    u = np.zeros([n, c, h * upy, w * upx])
    u[:, :, ::upy, ::upx] = x
    u = np.pad(u, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    u = u[:, :, max(-py0, 0):u.shape[2] - max(-py1, 0), max(-px0, 0):u.shape[3] - max(-px1, 0)]
    op = scipy.signal.correlate2d if flip_filter else scipy.signal.convolve2d
    y = np.stack([np.stack([op(u[i, j], f2 * gain, mode='valid') for j in range(c)]) for i in range(n)])
    return y[:, :, ::downy, ::downx]


# ------------------------------------------------------------------------------------------ upfirdn2d

@pytest.mark.parametrize('up,down,padding', [
    (1, 1, 0), (2, 1, [2, 1, 2, 1]), (1, 2, 1), (4, 1, [3, 2, 1, 4]), (1, 4, [2, 1, 3, 0]),
    (2, 2, [1, 2, 0, 3]), ([2, 1], [1, 2], [1, 2, 2, 1]), (1, 1, [-1, 2, 1, -2]), (2, 1, [-2, 3, 1, -1]),
])
@pytest.mark.parametrize('kind', ['2d', '1d', 'nonsquare', 'none'])
@pytest.mark.parametrize('flip', [False, True])
def test_upfirdn2d(up, down, padding, kind, flip):
    rng = _rng(0)
    x = rng.standard_normal([2, 3, 7, 10])
    f = {'2d': np.outer([1, 3, 3, 1], [1, 2, 2, 1]) / 48, '1d': np.array([1, 2, 4, 3, 1]) / 11,
         'nonsquare': rng.standard_normal([3, 5]), 'none': None}[kind]
    ft = None if f is None else torch.tensor(f, dtype=torch.float32)
    got = upfirdn2d.upfirdn2d(torch.from_numpy(x), ft, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5)
    want = np_upfirdn2d(x, None if f is None else ft.double().numpy(), up, down, padding, flip, gain=1.5)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


def test_setup_filter():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-7)
    f8 = upfirdn2d.setup_filter(np.arange(1, 9))
    assert f8.shape == (8,)  # 8+ taps: separable by default
    np.testing.assert_allclose(f8.numpy(), np.arange(1, 9) / 36, rtol=1e-7)
    g = upfirdn2d.setup_filter([1, 2], flip_filter=True, gain=4, normalize=False)
    np.testing.assert_allclose(g.numpy(), np.outer([2, 1], [2, 1]) * 4, rtol=1e-7)
    s = upfirdn2d.setup_filter([1, 2], gain=4, separable=True, normalize=False)
    np.testing.assert_allclose(s.numpy(), [2, 4], rtol=1e-7)  # gain ** (1 / 2) per axis


def test_resampling_helpers():
    rng = _rng(1)
    x = rng.standard_normal([2, 3, 8, 6])
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    fn = f.double().numpy()
    xt = torch.from_numpy(x)
    up = upfirdn2d.upsample2d(xt, f)
    np.testing.assert_allclose(up.numpy(), np_upfirdn2d(x, fn, 2, 1, [2, 1, 2, 1], gain=4), rtol=1e-6, atol=1e-6)
    down = upfirdn2d.downsample2d(xt, f)
    np.testing.assert_allclose(down.numpy(), np_upfirdn2d(x, fn, 1, 2, 1), rtol=1e-6, atol=1e-6)
    assert up.shape == (2, 3, 16, 12) and down.shape == (2, 3, 4, 3)
    # The filters keep a constant image constant away from the borders.
    ones = torch.ones([1, 1, 12, 12], dtype=torch.float64)
    for y in (upfirdn2d.upsample2d(ones, f), upfirdn2d.downsample2d(ones, f)):
        np.testing.assert_allclose(y[0, 0, 3:-3, 3:-3].numpy(), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------------ conv2d_resample

def np_conv(x, w, groups, flip_weight):
    """Valid 2-D convolution layer: x [N, Cin, H, W], w [Cout, Cin / groups, kh, kw]."""
    op = scipy.signal.correlate2d if flip_weight else scipy.signal.convolve2d
    cout, cin_g = w.shape[:2]
    cout_g = cout // groups
    out = []
    for n in range(x.shape[0]):
        planes = []
        for o in range(cout):
            g = o // cout_g
            planes.append(sum(op(x[n, g * cin_g + i], w[o, i], mode='valid') for i in range(cin_g)))
        out.append(np.stack(planes))
    return np.stack(out)


@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('flip_weight', [True, False])
def test_conv2d_resample_is_resample_then_conv(k, up, down, groups, flip_weight):
    rng = _rng(2)
    x = rng.standard_normal([2, 4, 6, 6])
    w = rng.standard_normal([6, 4 // groups, k, k])
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    fn = f.double().numpy()
    p = k // 2
    got = conv2d_resample.conv2d_resample(torch.from_numpy(x), torch.from_numpy(w), f, up=up, down=down,
                                          padding=p, groups=groups, flip_weight=flip_weight)
    # Independent: zero-insert, pad once (conv + filter padding), filter, convolve, filter, decimate.
    lo, hi = p, p
    if up > 1:
        lo, hi = lo + (4 + up - 1) // 2, hi + (4 - up) // 2
    if down > 1:
        lo, hi = lo + (4 - down + 1) // 2, hi + (4 - down) // 2
    u = np_upfirdn2d(x, fn if up > 1 else None, up=up, padding=[lo, hi, lo, hi], gain=up ** 2)
    y = np_conv(u, w, groups, flip_weight)
    if down > 1:
        y = np_upfirdn2d(y, fn, down=down)
    assert got.shape == y.shape
    np.testing.assert_allclose(got.numpy(), y, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------- bias_act

def np_act(name, v, alpha):
    sig = 1 / (1 + np.exp(-v))
    return {
        'linear': v, 'relu': np.maximum(v, 0), 'lrelu': np.where(v > 0, v, v * alpha), 'tanh': np.tanh(v),
        'sigmoid': sig, 'elu': np.where(v > 0, v, np.expm1(v)),
        'selu': 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * np.expm1(v)),
        'softplus': np.where(v > 20, v, np.log1p(np.exp(np.minimum(v, 20)))), 'swish': v * sig,
    }[name]


@pytest.mark.parametrize('act', sorted(bias_act.activation_funcs))
@pytest.mark.parametrize('dim,clamp,gain', [(1, None, None), (2, 0.5, 2.0), (0, 1.0, None)])
def test_bias_act(act, dim, clamp, gain):
    rng = _rng(3)
    x = rng.standard_normal([3, 4, 5]) * 3
    b = rng.standard_normal(x.shape[dim])
    got = bias_act.bias_act(torch.from_numpy(x), torch.from_numpy(b), dim=dim, act=act, alpha=0.3, gain=gain,
                            clamp=clamp)
    spec = bias_act.activation_funcs[act]
    v = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    want = np_act(act, v, 0.3) * (spec.def_gain if gain is None else gain)
    if clamp is not None:
        want = np.clip(want, -clamp, clamp)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_bias_act_defaults_without_bias():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    np.testing.assert_allclose(bias_act.bias_act(x, act='lrelu').numpy(),
                               np.where(x > 0, x, 0.2 * x) * np.sqrt(2), rtol=1e-12)
    assert torch.equal(bias_act.bias_act(x), x)


def test_fma():
    rng = _rng(4)
    a, b, c = rng.standard_normal([3, 1]), rng.standard_normal([1, 4]), rng.standard_normal([3, 4])
    got = fma.fma(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c))
    np.testing.assert_allclose(got.numpy(), a * b + c, rtol=1e-12)
