"""Native and reference bias_act / upfirdn2d against a float64 truth (torch_utils/ops/truth.py).

On the CPU: float32 and float64 natively; float16 through a stand-in for the CUDA kernels' float16
contract (load half, compute in float32, round once per kernel) built on the real CPU float32 kernels,
so the native autograd Functions run with half tensors as on a GPU. Also: the clamp boundary follows
torch.clamp, the judge can fail, CPU float16 falls back (and says so), and p2's float16 blocks run.
"""
import numpy as np
import pytest
import torch

from fsgan import selfcheck_sections
from fsgan.loading import load_network
from tests.conftest import FIXTURES
from torch_utils.ops import bias_act, native, truth, upfirdn2d
from training import networks

CPU = torch.device('cpu')
pytestmark = pytest.mark.usefixtures('one_thread')
ALL_CASES = truth.bias_act_cases() + [truth.boundary_case()] + truth.upfirdn2d_cases()


@pytest.fixture(scope='module', autouse=True)
def cpu_build():
    if not native.available(CPU):
        pytest.skip(f'native CPU build unavailable: {native.build_status()["cpu"]["reason"]}')


class HalfKernels:
    """Stands in for torch.ops.fsgan_cuda's float16 contract on the CPU: float16 tensors are read as
    float32, computed by the CPU float32 kernels and rounded to float16 once (__float2half_rn)."""

    def __init__(self, ops):
        self.ops = ops

    def bias_act(self, x, b, y, g, *args):
        dtype = (x if x is not None else y).dtype
        up = [None if t is None else t.float() for t in (x, b, y, g)]
        return self.ops.bias_act(*up, *args).to(dtype)

    def upfirdn2d(self, x, w, *args):
        return self.ops.upfirdn2d(x.float(), w, *args).to(x.dtype)


@pytest.fixture
def half_kernels(monkeypatch):
    monkeypatch.setitem(native._loaded, 'cpu', HalfKernels(native._loaded['cpu']))
    monkeypatch.setitem(native._DTYPES, 'cpu', (torch.float16, torch.float32, torch.float64))


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_native_and_reference_match_truth(dtype):
    results = [truth.run_case(case, CPU, truth.DTYPES[dtype]) for case in ALL_CASES]
    for r in results:
        where = f'{r["case"]} {dtype}'
        assert r['native_ran'] == 'native', where
        assert r['native']['ok'], f'{where}: native ratios {r["native"]["ratios"]}'
        assert r['reference']['ok'], f'{where}: reference ratios {r["reference"]["ratios"]}'
    # Within a few ulps, not just within the factor: the rule is not loose for these ops.
    assert max(r['native']['worst'] for r in results) <= truth.TOL_FACTOR / 2


def test_float16_kernel_contract_matches_truth(half_kernels):
    for case in ALL_CASES:
        r = truth.run_case(case, CPU, torch.float16)
        assert r['native_ran'] == 'native', r['case']
        assert r['native']['ok'], f'{r["case"]}: native ratios {r["native"]["ratios"]}'
        assert r['reference']['ok'], f'{r["case"]}: reference ratios {r["reference"]["ratios"]}'


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('impl', ['cuda', 'ref'])
def test_clamp_gradient_passes_at_the_limit(impl, dtype):
    """torch.clamp's rule: the gradient passes where |act(x + b) * gain| <= clamp, also exactly at it."""
    x = torch.tensor([0.25, -0.25, 0.3, -0.3, 0.125], dtype=dtype, requires_grad=True)
    y = bias_act.bias_act(x, None, act='linear', gain=2, clamp=0.5, impl=impl)
    assert y.tolist() == [0.5, -0.5, 0.5, -0.5, 0.25]
    dx, = torch.autograd.grad(y.sum(), [x])
    assert dx.tolist() == [2, 2, 0, 0, 2]
    xl = torch.tensor([-1.0, -1.5, 0.25], dtype=dtype, requires_grad=True)
    yl = bias_act.bias_act(xl, None, act='lrelu', alpha=0.25, gain=2, clamp=0.5, impl=impl)
    dxl, = torch.autograd.grad(yl.sum(), [xl])
    assert dxl.tolist() == [0.5, 0, 2]


def test_judge_fails_a_wrong_kernel(monkeypatch):
    """A native bias_act off by 16 ulps of its output's scale is caught; the reference still passes."""
    real = native.bias_act

    def off(x, b=None, **kw):
        y = real(x, b, **kw)
        return y + 16 * truth.eps(y.dtype) * y.detach().abs().max()
    monkeypatch.setattr(native, 'bias_act', off)
    r = truth.run_case(truth.bias_act_case('tanh', None), CPU, torch.float32)
    assert not r['native']['ok'] and r['native']['ratios']['y'] > truth.TOL_FACTOR
    assert r['reference']['ok']


def test_float16_on_cpu_falls_back_and_is_counted():
    x = torch.randn([2, 3, 4, 4]).half()
    before = native.call_counts()['cpu']
    y = bias_act.bias_act(x, torch.randn(3).half(), act='lrelu', clamp=0.5)
    z = upfirdn2d.upsample2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]))
    after = native.call_counts()['cpu']
    assert after['reference'] - before['reference'] == 2 and after['native'] == before['native']
    assert y.dtype == z.dtype == torch.float16
    assert truth.which_ran(dict(native=0, reference=2)) == 'fallback'
    assert truth.which_ran(dict(native=3, reference=0)) == 'native'
    assert truth.which_ran(dict(native=3, reference=1)) == 'mixed'


def test_disabled_native_is_reported_as_fallback(monkeypatch):
    monkeypatch.setenv('FSGAN_NATIVE_OPS', '0')
    r = truth.run_case(truth.bias_act_case('lrelu', 0.5), CPU, torch.float32)
    assert r['native_ran'] == 'fallback' and r['native']['ok']


@pytest.mark.slow
def test_p2_float16_blocks_with_the_float16_kernel_contract(half_kernels, monkeypatch):
    """p2's float16 blocks (CUDA only in use) run here through the native Functions with half tensors:
    outputs within the self-check's float16 tolerance of NVIDIA's, and one fsgan step stays finite."""
    monkeypatch.setattr(networks, '_half_allowed', lambda x: x is not None)
    net = load_network(f'{FIXTURES}/p2.pkl')
    ref = np.load(f'{FIXTURES}/p2.npz')
    before = native.call_counts()['cpu']
    out = selfcheck_sections.fixture_outputs(net, ref, CPU, force_fp32=False)
    assert native.call_counts()['cpu']['native'] > before['native']
    for key, (diff, tol) in selfcheck_sections.compare_fixture(out, ref, fp16=True).items():
        assert diff <= tol, f'{key}: {diff} > {tol}'
        if not key.startswith('ws_'):  # float16 did run: not the float32 result
            assert diff > 1e-5, key
    opts = selfcheck_sections.train_opts('fsgan', batch=4, source=f'{FIXTURES}/p2.pkl')
    from fsgan.training_loop import setup_run, training_step
    state = setup_run(opts, CPU)
    images = torch.randint(0, 256, [4, 3, 64, 64], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    losses = training_step(state, opts, images, CPU)
    assert set(losses) >= {'G', 'Gpl', 'Dgen', 'Dreal', 'Dr1'} and all(np.isfinite(v) for v in losses.values())
