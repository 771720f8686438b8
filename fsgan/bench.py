"""Benchmarks (not tests): the native ops against the PyTorch reference, and training-step times.

Op shapes are those of StyleGAN2 generator and discriminator layers (config-f style, channel_base 16384,
channel_max 512: C(r) = min(16384 // r, 512)); see scripts/bench_ops.py for the rows and columns.
Step times are seconds per fsgan.training_loop.training_step on one small config (scripts/bench_train.py).
`demodulation_forms` times a generator's forward + backward in the --bf16-conv mode with each demodulation form.
"""
import contextlib
import copy
import statistics
import time
from unittest import mock

import torch

from dnnlib import EasyDict
from torch_utils.ops import bias_act, native, upfirdn2d


def channels(r, channel_base=16384, channel_max=512):
    """Feature channels of a StyleGAN2 layer at resolution r (config-f style)."""
    return min(channel_base // r, channel_max)


def layer_cases(res, batch):
    """(name, shape, fn(x, impl)) for every distinct layer shape of a res x res model."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    cases = []
    r = 8
    while r <= res:
        c = channels(r)
        b = torch.randn(c)
        cases += [
            (f'G up-filter   r={r:<4}', [batch, c, r + 1, r + 1],
             lambda x, impl: upfirdn2d.upfirdn2d(x, f, padding=1, gain=4, impl=impl)),
            (f'G img up      r={r:<4}', [batch, 3, r // 2, r // 2],
             lambda x, impl: upfirdn2d.upsample2d(x, f, impl=impl)),
            (f'G/D lrelu     r={r:<4}', [batch, c, r, r],
             lambda x, impl, b=b: bias_act.bias_act(x, b.to(x.device), act='lrelu', clamp=256, impl=impl)),
            (f'D down-filter r={r:<4}', [batch, c, r, r],
             lambda x, impl: upfirdn2d.upfirdn2d(x, f, padding=2, impl=impl)),
            (f'D skip down   r={r:<4}', [batch, c, r, r],
             lambda x, impl: upfirdn2d.downsample2d(x, f, impl=impl)),
            (f'feature up    r={r:<4}', [batch, c, r // 2, r // 2],
             lambda x, impl: upfirdn2d.upsample2d(x, f, impl=impl)),
        ]
        r *= 2
    return cases


def timeit(fn, device, min_time, min_reps=5):
    """Best wall-clock seconds per call over at least min_reps calls and min_time seconds."""
    fn()
    best, total, reps = float('inf'), 0.0, 0
    while total < min_time or reps < min_reps:
        reps += 1
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        best, total = min(best, dt), total + dt
    return best


def _op_row(fn, shape, device, min_time):
    """(fwd ref, fwd native, fwd+bwd ref, fwd+bwd native) best seconds per call of fn(x, impl) on x of `shape`."""
    x = torch.randn(shape, device=device)
    xg = x.clone().requires_grad_(True)
    row = []
    for impl in ('ref', 'cuda'):
        fwd = timeit(lambda: fn(x, impl), device, min_time)
        dy = torch.randn_like(fn(xg, impl))
        fb = timeit(lambda: torch.autograd.grad(fn(xg, impl), xg, dy), device, min_time)
        row += [fwd, fb]
    fr, fbr, fn_, fbn = row
    return fr, fn_, fbr, fbn


def bench_ops(resolutions=(64, 256), device='cpu', batch=4, min_time=0.2, threads=None, log=print):
    """Time every layer shape of each resolution with impl='ref' and the native kernel; log a table per model.

    Logs the native build state first and stops there when no native kernel is available for `device`.
    """
    device = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    t = time.time()
    ok = native.available(device)
    log(f'native {device.type}: {"ok" if ok else "unavailable"} ({time.time() - t:.1f} s), '
        f'torch {torch.__version__}, threads {torch.get_num_threads()}')
    log(native.build_status()[device.type])
    if not ok:
        return
    torch.manual_seed(0)
    for res in resolutions:
        log(f'\n{res}x{res} model, batch {batch}; ms per call (speed-up = ref / native)')
        log(f'{"layer":<22} {"shape":<20} {"fwd ref":>9} {"fwd nat":>9} {"x":>5} '
            f'{"f+b ref":>9} {"f+b nat":>9} {"x":>5}')
        sums = [0.0] * 4
        for name, shape, fn in layer_cases(res, batch):
            fr, fn_, fbr, fbn = _op_row(fn, shape, device, min_time)
            for i, v in enumerate([fr, fn_, fbr, fbn]):
                sums[i] += v
            log(f'{name:<22} {str(shape):<20} {fr * 1e3:9.3f} {fn_ * 1e3:9.3f} {fr / fn_:5.2f} '
                f'{fbr * 1e3:9.3f} {fbn * 1e3:9.3f} {fbr / fbn:5.2f}')
        log(f'{"total":<43} {sums[0] * 1e3:9.3f} {sums[1] * 1e3:9.3f} {sums[0] / sums[1]:5.2f} '
            f'{sums[2] * 1e3:9.3f} {sums[3] * 1e3:9.3f} {sums[2] / sums[3]:5.2f}')


def step_time(method, network, batch, steps, device, bf16_conv=False):
    """(mean seconds per training step over `steps` after 2 warm-up steps, all phases due at each step;
    the run state's trainable parameter counts {'G': ..., 'D': ...}). bf16_conv: as train.py --bf16-conv."""
    from fsgan.training_loop import setup_run, training_step
    opts = EasyDict(source=network, method=method, method_options={}, style_mixing=0.9, gamma=10.0, pl_weight=2.0,
                    lr=0.002, G_reg_interval=4, D_reg_interval=16, batch=batch, mirror=False, ema_kimg=10.0,
                    ema_rampup=0.05, bf16_conv=bf16_conv)
    state = setup_run(opts, torch.device(device))
    res = state.G.img_resolution
    images = torch.randint(0, 256, [64, state.G.img_channels, res, res], dtype=torch.uint8)
    for _ in range(2):
        training_step(state, opts, images, device)
    start = time.perf_counter()
    for _ in range(steps):
        training_step(state, opts, images, device)
    return (time.perf_counter() - start) / steps, state.num_trainable


def svd_setup_seconds():
    """(seconds, trainable parameter count) of fsgan's adaptation set-up (the SVDs) of a config-f 1024 G and D."""
    from fsgan.methods import adapt
    from training.networks import Discriminator, Generator
    G, D = Generator(512, 0, 512, 1024, 3), Discriminator(0, 1024, 3)
    start = time.perf_counter()
    params = adapt(copy.deepcopy(G), copy.deepcopy(D), method='fsgan')
    return time.perf_counter() - start, sum(p.numel() for p in params)


def demodulation_forms(network, batch=32, reps=6, device='cpu', log=print):
    """{'products': s, 'per-sample': s}: median seconds of G_ema's forward + backward (train mode, as in a
    training phase; `batch` latents) inside the --bf16-conv mode, where modulated_conv2d demodulates from the
    styles² @ Σw² product, and with the per-sample [N, C_out, C_in, k, k] form patched in instead (the default
    mode's form); `reps` alternating repetitions after one warm-up each, so that load changes hit both alike."""
    from fsgan.loading import load_network
    from torch_utils.ops import conv2d_resample
    from training import networks
    G = load_network(network, device=device)['G_ema'].train().requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([batch, G.z_dim], generator=gen).to(device)
    c = torch.zeros([batch, G.c_dim], device=device)

    def once(form):
        per_sample = mock.patch.object(networks, '_reduced_precision', lambda: False)
        with per_sample if form == 'per-sample' else contextlib.nullcontext(), \
                conv2d_resample.compute_dtype(torch.bfloat16):
            start = time.perf_counter()
            G(z, c).square().mean().backward()
            if torch.device(device).type == 'cuda':
                torch.cuda.synchronize()
            return time.perf_counter() - start
    forms = ('products', 'per-sample')
    for form in forms:
        once(form)
    times = {form: [] for form in forms}
    for _ in range(reps):
        for form in forms:
            times[form].append(once(form))
    medians = {form: statistics.median(t) for form, t in times.items()}
    log(f'demodulation in the --bf16-conv mode, G forward + backward at batch {batch} (median of {reps}): '
        f'products {medians["products"] * 1000:.1f} ms, per-sample {medians["per-sample"] * 1000:.1f} ms')
    return medians


TIMED_METHODS = ('fsgan', 'tgan', 'freezed', 'ssgan')  # bench_train's default rows


def bench_train(network, batch=16, steps=16, device='cpu', config_f=True, methods=TIMED_METHODS, bf16_conv=False,
                log=print):
    """Log the step time of each method on `network` (bf16_conv: also with --bf16-conv, alternating the two so
    that load changes hit both alike) and (config_f) the SVD set-up time of config-f 1024."""
    log(f'torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}')
    for method in methods:
        for bf16 in ((False, True) if bf16_conv else (False,)):
            sec, counts = step_time(method, network, batch, steps, device, bf16_conv=bf16)
            log(f'{method:8s} {sec * 1000:8.1f} ms/step {batch / sec:7.1f} img/s  (batch {batch}, trainable G '
                f'{counts["G"]:,} D {counts["D"]:,}){"  --bf16-conv" if bf16 else ""}')
    if config_f:
        sec, count = svd_setup_seconds()
        log(f'SVD set-up, config-f 1024 G+D: {sec:.1f} s ({count:,} trainable)')
