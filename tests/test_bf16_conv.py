"""--bf16-conv: the training step's float32 convolutions computed on bfloat16 copies (conv2d_resample.compute_dtype).

Inside the context every convolution path of conv2d_resample returns float32 values that bfloat16 can hold (the
bfloat16 kernel ran), close to the float64 convolution of the bfloat16-rounded inputs; outside it nothing changes;
gradients and double gradients flow; inside it modulated_conv2d's training path demodulates from the
[N, C_in] x [C_in, C_out] product, equal to the per-sample form in value, gradient and double gradient; a training
step with the option stays finite and close to the float32 step, and everything after the step (G_ema, grids)
stays float32."""
import pytest
import torch

from dnnlib import EasyDict
from torch_utils import training_stats
from torch_utils.ops import conv2d_resample, upfirdn2d
from training import networks
from fsgan.training_loop import setup_run, training_step

pytestmark = pytest.mark.usefixtures('one_thread')

# (name, x shape, w shape, keyword arguments of conv2d_resample): every path of conv2d_resample.
CASES = [
    ('plain 3x3', [2, 8, 9, 9], [6, 8, 3, 3], dict(padding=1)),
    ('up 3x3 (transposed)', [2, 8, 6, 6], [6, 8, 3, 3], dict(up=2, padding=1)),
    ('down 3x3 (strided)', [2, 8, 8, 8], [6, 8, 3, 3], dict(down=2, padding=1)),
    ('down 1x1', [2, 8, 8, 8], [6, 8, 1, 1], dict(down=2)),
    ('up 1x1', [2, 8, 5, 5], [6, 8, 1, 1], dict(up=2)),
    ('grouped 3x3', [1, 8, 7, 7], [6, 4, 3, 3], dict(padding=1, groups=2)),
    ('grouped up 3x3', [1, 8, 5, 5], [6, 4, 3, 3], dict(up=2, padding=1, groups=2)),
]


def _inputs(x_shape, w_shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(x_shape, generator=gen), torch.randn(w_shape, generator=gen)


@pytest.mark.parametrize('name,x_shape,w_shape,kwargs', CASES, ids=[c[0] for c in CASES])
def test_bfloat16_convolutions_round_inputs_and_results(name, x_shape, w_shape, kwargs):
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x, w = _inputs(x_shape, w_shape)
    plain = conv2d_resample.conv2d_resample(x, w, f, **kwargs)
    with conv2d_resample.compute_dtype(torch.bfloat16):
        low = conv2d_resample.conv2d_resample(x, w, f, **kwargs)
    after = conv2d_resample.conv2d_resample(x, w, f, **kwargs)
    assert torch.equal(after, plain)  # the context is gone: float32 again, bit for bit
    assert low.dtype == torch.float32 and low.shape == plain.shape
    assert not torch.equal(low, plain)
    # The truth for the bfloat16 path: the float64 convolution of the bfloat16-rounded x and w.
    x_r, w_r = x.bfloat16().double(), w.bfloat16().double()
    truth = conv2d_resample.conv2d_resample(x_r, w_r, f, **kwargs)
    scale = truth.abs().max()
    # Only the filter steps around the convolution (float32) and the bfloat16 rounding of its result separate them.
    assert float((low.double() - truth).abs().max()) <= 2 ** -7 * float(scale)


def test_a_plain_convolution_returns_exactly_bfloat16_values():
    x, w = _inputs([2, 8, 9, 9], [6, 8, 3, 3])
    with conv2d_resample.compute_dtype(torch.bfloat16):
        y = conv2d_resample.conv2d_resample(x, w, padding=1)
    assert torch.equal(y, y.bfloat16().float())  # the result came from a bfloat16 kernel
    assert not torch.equal(conv2d_resample.conv2d_resample(x, w, padding=1),
                           conv2d_resample.conv2d_resample(x, w, padding=1).bfloat16().float())


def test_other_dtypes_are_left_alone_and_the_setting_is_restored_after_an_error():
    x, w = _inputs([2, 8, 9, 9], [6, 8, 3, 3])
    x64, w64 = x.double(), w.double()
    with conv2d_resample.compute_dtype(torch.bfloat16):
        y64 = conv2d_resample.conv2d_resample(x64, w64, padding=1)
    assert y64.dtype == torch.float64 and torch.equal(y64, conv2d_resample.conv2d_resample(x64, w64, padding=1))
    with pytest.raises(RuntimeError, match='boom'):
        with conv2d_resample.compute_dtype(torch.bfloat16):
            raise RuntimeError('boom')
    assert torch.equal(conv2d_resample.conv2d_resample(x, w, padding=1),
                       torch.nn.functional.conv2d(x, w, padding=1))
    with pytest.raises(ValueError, match='float16'):
        with conv2d_resample.compute_dtype(torch.float16):
            pass


def test_gradients_and_double_gradients_flow_through_the_bfloat16_convolution():
    """R1 needs d/dw of |d out / d x|^2: both orders exist, are float32 and close to the float32 ones."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x, w = _inputs([2, 8, 8, 8], [6, 8, 3, 3], seed=1)
    results = []
    for dtype in (None, torch.bfloat16):
        xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        with conv2d_resample.compute_dtype(dtype):
            y = conv2d_resample.conv2d_resample(xg, wg, f, down=2, padding=1)
            (gx,) = torch.autograd.grad(y.square().sum(), xg, create_graph=True)
            (gw,) = torch.autograd.grad(gx.square().sum(), wg)
        assert gx.dtype == torch.float32 and gw.dtype == torch.float32 and bool(torch.isfinite(gw).all())
        results.append((gx.detach(), gw))
    (gx32, gw32), (gx16, gw16) = results
    assert not torch.equal(gw16, gw32)
    for a, b in ((gx16, gx32), (gw16, gw32)):
        assert float((a - b).norm() / b.norm()) < 0.05


def test_demodulation_from_products_equals_the_per_sample_form_to_second_order():
    """Value, d/d(weight, styles) and the double gradient path length needs, in float64 against StyleGAN2's
    per-sample [N, C_out, C_in, kh, kw] formula."""
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn([6, 5, 3, 3], generator=gen, dtype=torch.float64, requires_grad=True)
    styles = torch.randn([4, 5], generator=gen, dtype=torch.float64, requires_grad=True)

    def per_sample(weight, styles):
        w = weight.unsqueeze(0) * styles.reshape(4, 1, -1, 1, 1)
        return (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()

    results = []
    for form in (per_sample, networks.demodulation_coefficients):
        d = form(weight, styles)
        gw, gs = torch.autograd.grad(d.sin().sum(), [weight, styles], create_graph=True)
        (ggw,) = torch.autograd.grad(gs.square().sum(), weight)
        results.append((d, gw, gs, ggw))
    assert results[0][0].shape == (4, 6)
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-10, atol=0)


@pytest.fixture
def calls(monkeypatch):
    """A list that gets an entry per call of networks.demodulation_coefficients (the product form)."""
    made = []
    real = networks.demodulation_coefficients
    monkeypatch.setattr(networks, 'demodulation_coefficients', lambda *a: made.append(1) or real(*a))
    return made


@pytest.mark.parametrize('fused', [False, True])
@pytest.mark.parametrize('out_gain', [False, True])
def test_modulated_conv2d_demodulates_from_products_only_in_the_unfused_bfloat16_path(calls, fused, out_gain):
    """The cheaper form runs only inside compute_dtype(bfloat16) and unfused (training); outside, the per-sample
    form keeps stylegan2-ada-pytorch's rounding. Both give close outputs, with SSGAN's out_gain too."""
    gen = torch.Generator().manual_seed(4)
    x, weight, styles = (torch.randn(shape, generator=gen) for shape in ([2, 8, 6, 6], [6, 8, 3, 3], [2, 8]))
    gain = torch.rand([6], generator=gen) + 0.5 if out_gain else None
    outputs = []
    for dtype in (None, torch.bfloat16):
        with conv2d_resample.compute_dtype(dtype):
            outputs.append(networks.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=fused,
                                                     out_gain=gain))
        assert len(calls) == (1 if dtype is not None and not fused else 0)
    assert float((outputs[1] - outputs[0]).norm() / outputs[0].norm()) < 0.02


def test_without_the_setting_the_per_sample_form_stays(calls, monkeypatch):
    """Snapshots embed training/networks.py, and stylegan2-ada-pytorch's conv2d_resample has no
    active_compute_dtype: there the per-sample form runs."""
    monkeypatch.delattr(conv2d_resample, 'active_compute_dtype')
    x, weight, styles = torch.randn([2, 8, 6, 6]), torch.randn([6, 8, 3, 3]), torch.randn([2, 8])
    with conv2d_resample.compute_dtype(torch.bfloat16):
        networks.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=False)
    assert calls == []


def test_the_demodulation_benchmark_times_each_form_and_restores_the_switch(p1_path, calls):
    """scripts/bench_train.py --demod-forms: the 'products' passes demodulate from products, the 'per-sample'
    passes do not, and the switch is the original function afterwards."""
    from fsgan.bench import demodulation_forms
    from fsgan.loading import load_network
    G = load_network(p1_path)['G_ema'].train()
    with conv2d_resample.compute_dtype(torch.bfloat16):
        G(torch.randn([2, G.z_dim]), torch.zeros([2, G.c_dim]))
    per_pass, calls[:] = len(calls), []
    switch = networks._reduced_precision
    lines = []
    medians = demodulation_forms(p1_path, batch=2, reps=1, log=lines.append)
    assert per_pass > 0 and len(calls) == 2 * per_pass  # warm-up + one repetition, products only
    assert set(medians) == {'products', 'per-sample'} and all(v > 0 for v in medians.values())
    assert networks._reduced_precision is switch and len(lines) == 1 and 'per-sample' in lines[0]


def _opts(p1_path, bf16_conv):
    return EasyDict(source=p1_path, method='tgan', method_options={}, style_mixing=0.9, gamma=10.0, pl_weight=2.0,
                    lr=0.002, G_reg_interval=4, D_reg_interval=16, batch=4, mirror=False, ema_kimg=10.0,
                    ema_rampup=0.05, bf16_conv=bf16_conv)


def test_a_training_step_with_bf16_conv_is_finite_and_near_the_float32_step(p1_path):
    """Every phase (step 0 runs lazy R1 and path length too) with and without the option: the losses differ a little,
    weights stay float32, and the option leaves no setting behind."""
    images = torch.randint(0, 256, [6, 3, 32, 32], dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    runs = []
    for bf16 in (False, True):
        torch.manual_seed(0)
        opts = _opts(p1_path, bf16)
        state = setup_run(opts, torch.device('cpu'))
        losses = [training_step(state, opts, images, 'cpu') for _ in range(2)]
        training_stats.collect()
        runs.append((losses, state))
    (losses32, state32), (losses16, state16) = runs
    assert conv2d_resample._compute_dtype is None
    assert losses32[0].keys() == losses16[0].keys() and len(losses16[0]) >= 4  # every phase's losses
    differ = 0
    for a, b in zip(losses32, losses16):
        for k in a:
            assert abs(a[k] - b[k]) <= 0.05 * max(abs(a[k]), 1.0), k
            differ += a[k] != b[k]
    assert differ > 0
    for name, t in state16.G.state_dict().items():
        assert t.dtype == state32.G.state_dict()[name].dtype


def test_bf16_conv_is_an_option_recorded_with_the_run(target_dir, p1_path):
    from fsgan.run_setup import setup_training_config
    assert setup_training_config(target_dir, resume=p1_path, device='cpu').bf16_conv is False
    assert setup_training_config(target_dir, resume=p1_path, device='cpu', bf16_conv=True).bf16_conv is True


def test_a_cpu_without_bfloat16_instructions_gets_a_warning(tmp_path):
    from fsgan.training_loop import cpu_has_bf16, warn_slow_bf16
    fast, slow = tmp_path / 'fast', tmp_path / 'slow'
    fast.write_text('processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n')
    slow.write_text('processor : 0\nflags : fpu sse2 avx2 avx512f\n')
    assert cpu_has_bf16(fast) is True and cpu_has_bf16(slow) is False
    assert cpu_has_bf16(tmp_path / 'missing') is None
    with pytest.warns(UserWarning, match='--bf16-conv: this CPU lacks avx512_bf16'):
        warn_slow_bf16('cpu', True, cpuinfo=slow)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        warn_slow_bf16('cpu', True, cpuinfo=fast)
        warn_slow_bf16('cpu', False, cpuinfo=slow)
        warn_slow_bf16('cpu', True, cpuinfo=tmp_path / 'missing')
