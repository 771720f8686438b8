"""The sections of fsgan.selfcheck. Each check_*(ctx) takes ctx.device and ctx.quick and returns a dict
with 'status' ('pass' | 'warn' | 'fail' | 'skipped'), a one-line 'summary' and its details."""
import glob
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from dnnlib import EasyDict
from fsgan.loading import load_network
from fsgan.methods import METHODS, adapt, get_method
from torch_utils import training_stats
from torch_utils.ops import native, truth
from training import networks
from fsgan.training_loop import configure_backends, setup_run, training_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures')
P1 = os.path.join(FIXTURES, 'p1.pkl')


def _verdict(failed, warned):
    return 'fail' if failed else ('warn' if warned else 'pass')


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------ ops

def _ops_cases(quick):
    shapes = ((2, 3, 9, 11),) if quick else ((2, 3, 9, 11), (1, 2, 7, 45))
    return truth.bias_act_cases() + [truth.boundary_case()] + truth.upfirdn2d_cases(shapes)


def _worst(results):
    """{'op dtype impl': largest ratio} over the cases that ran."""
    worst = {}
    for r in results:
        for impl in ('native', 'reference'):
            if impl in r:
                key = f'{r["op"]} {r["dtype"]} {impl}'
                worst[key] = round(max(worst.get(key, 0.0), r[impl]['worst']), 3)
    return worst


def check_ops(ctx):
    """bias_act (every activation, with and without clamp, the clamp boundary) and upfirdn2d (up 2,
    down 2, pads, 2-D and separable filters): native and reference against the float64 truth."""
    dtypes = ['float16', 'float32', 'float64'] if ctx.device.type == 'cuda' else ['float32', 'float64']
    results = []
    for case in _ops_cases(ctx.quick):
        for dt in dtypes:
            try:
                results.append(truth.run_case(case, ctx.device, truth.DTYPES[dt]))
            except Exception as e:  # noqa: BLE001 -- recorded per case
                results.append(dict(op=case.op, case=case.name, dtype=dt, error=f'{type(e).__name__}: {e}'))
    ran = [r for r in results if 'error' not in r]
    errors = [r for r in results if 'error' in r]
    native_bad = [f'{r["case"]} {r["dtype"]}' for r in ran if not r['native']['ok']]
    ref_bad = [f'{r["case"]} {r["dtype"]}' for r in ran if not r['reference']['ok']]
    fallback = [f'{r["case"]} {r["dtype"]}: {r["native_ran"]}' for r in ran if r['native_ran'] != 'native']
    summary = (f'{len(results)} cases ({", ".join(dtypes)}); native within tolerance {len(ran) - len(native_bad)}, '
               f'reference {len(ran) - len(ref_bad)}, native kernels ran in {len(ran) - len(fallback)}, '
               f'errors {len(errors)}')
    return dict(status=_verdict(errors or native_bad, ref_bad or fallback), summary=summary,
                tolerance=f'|impl - truth| <= {truth.TOL_FACTOR} * eps(dtype) * M per element; M: see '
                          f'torch_utils/ops/truth.py; ratio = max |impl - truth| / (eps * M)',
                worst_ratio=_worst(ran), native_failures=native_bad, reference_failures=ref_bad,
                not_native=fallback, errors=errors, build=native.build_status(), cases=ran)


# ------------------------------------------------------------------------------------------- fixtures

# tests/fixtures/README.md: acceptance thresholds of a float32 re-implementation (max abs difference).
FP32_TOL = {'ws': 1e-5, 'img': 1e-4, 'd': 1e-4}
# float16 blocks: images and logits within FP16_REL_TOL * max |expected|, 16 float16 ulps of the largest
# value. The same float16 blocks run on the CPU (tests/test_ops_truth.py) stay within 2.1e-3 on p2.
FP16_REL_TOL = 2 ** -6


def fixture_outputs(net, ref, device, force_fp32=True):
    """The npz keys of tests/fixtures/README.md computed by net {'G', 'D', 'G_ema'} on `device`."""
    z, c = torch.from_numpy(ref['z']).to(device), torch.from_numpy(ref['c']).to(device)
    G, D, G_ema = net['G'], net['D'], net['G_ema']
    run = dict(noise_mode='const', force_fp32=force_fp32)
    with torch.no_grad():
        out = {
            'ws_psi1': G_ema.mapping(z, c, truncation_psi=1),
            'ws_psi05': G_ema.mapping(z, c, truncation_psi=0.5),
            'ws_psi07_cut': G_ema.mapping(z, c, truncation_psi=0.7, truncation_cutoff=2),
            'img_psi1': G_ema(z, c, truncation_psi=1, **run),
            'img_psi05': G_ema(z, c, truncation_psi=0.5, **run),
            'img_psi07_cut': G_ema(z, c, truncation_psi=0.7, truncation_cutoff=2, **run),
            'img_psi1_noise_none': G_ema(z, c, truncation_psi=1, noise_mode='none', force_fp32=force_fp32),
            'img_G_psi1': G(z, c, truncation_psi=1, **run),
            'd_logits': D(torch.from_numpy(ref['img_psi1']).to(device), c, force_fp32=force_fp32),
            'd_logits_real': D(torch.from_numpy(ref['x_fixed']).to(device), c, force_fp32=force_fp32),
        }
    return {k: v.float().cpu() for k, v in out.items()}


def compare_fixture(out, ref, fp16):
    """{key: (max abs diff, tolerance)}; float16 tolerances for the keys float16 blocks touch."""
    res = {}
    for key, value in out.items():
        expected = torch.from_numpy(ref[key])
        tol = FP32_TOL[key.split('_')[0]]
        if fp16 and not key.startswith('ws_'):
            tol = max(tol, FP16_REL_TOL * float(expected.abs().max()))
        res[key] = (float((value - expected).abs().max()), tol)
    return res


def has_fp16_blocks(net):
    return any(getattr(m, 'use_fp16', False) for key in ('G_ema', 'D') for m in net[key].modules())


def _fixture_row(name, mode, diffs):
    bad = [k for k, (d, tol) in diffs.items() if not d <= tol]
    return dict(fixture=name, mode=mode, status='fail' if bad else 'pass', failing=bad,
                max_abs_diff={k: d for k, (d, _t) in diffs.items()}, tolerance={k: t for k, (_d, t) in diffs.items()})


def check_fixtures(ctx):
    """p1, p2 and t1 against NVIDIA's stored outputs: float32, and with float16 blocks where the network
    has them (CUDA only: elsewhere the networks run float16 blocks in float32)."""
    rows = []
    for name in ('p1', 'p2', 't1'):
        net = load_network(os.path.join(FIXTURES, f'{name}.pkl'))
        for key in ('G', 'D', 'G_ema'):
            net[key] = net[key].to(ctx.device)
        ref = np.load(os.path.join(FIXTURES, f'{name}.npz'))
        rows.append(_fixture_row(name, 'float32', compare_fixture(fixture_outputs(net, ref, ctx.device), ref, False)))
        if not has_fp16_blocks(net):
            continue
        if ctx.device.type != 'cuda':
            rows.append(dict(fixture=name, mode='float16 blocks', status='skipped',
                             reason='float16 blocks run only on CUDA'))
            continue
        out = fixture_outputs(net, ref, ctx.device, force_fp32=False)
        rows.append(_fixture_row(name, 'float16 blocks', compare_fixture(out, ref, True)))
    fp32_bad = [f'{r["fixture"]} {r["mode"]}' for r in rows if r['mode'] == 'float32' and r['status'] != 'pass']
    fp16_bad = [f'{r["fixture"]} {r["mode"]}' for r in rows if r['mode'] != 'float32' and r['status'] == 'fail']
    ran = [f'{r["fixture"]} {r["mode"]}' for r in rows if r['status'] != 'skipped']
    skipped = [f'{r["fixture"]} {r["mode"]}' for r in rows if r['status'] == 'skipped']
    summary = (f'{len(ran) - len(fp32_bad) - len(fp16_bad)}/{len(ran)} within tolerance ({", ".join(ran)})'
               + (f'; skipped: {", ".join(skipped)} (CUDA only)' if skipped else ''))
    return dict(status=_verdict(fp32_bad, fp16_bad), summary=summary, fp16_rel_tol=FP16_REL_TOL, rows=rows)


# -------------------------------------------------------------------------------------------- methods

def train_opts(method, batch, source=None, G_kwargs=None, D_kwargs=None):
    """Training options of scripts/train.py's defaults for one method (paper learning rate)."""
    return EasyDict(source=source, G_kwargs=G_kwargs, D_kwargs=D_kwargs, method=method, method_options={},
                    style_mixing=0.9, gamma=10.0, pl_weight=2.0, lr=get_method(method).lr, G_reg_interval=4,
                    D_reg_interval=16, batch=batch, mirror=True, ema_kimg=batch * 10 / 32, ema_rampup=0.05)


def _tensors(state):
    return {f'{net}.{n}': t for net in ('G', 'D')
            for n, t in list(state[net].named_parameters()) + list(state[net].named_buffers())}


def method_step(method, device):
    """One training step (every phase is due at step 0) on p1; which tensors changed."""
    opts = train_opts(method, batch=4, source=P1)
    torch.manual_seed(0)
    state = setup_run(opts, device)
    trainable = {id(p) for opt in (state.opt_G, state.opt_D) if opt for g in opt.param_groups for p in g['params']}
    tensors = _tensors(state)
    before = {n: t.detach().clone() for n, t in tensors.items()}
    images = torch.randint(0, 256, [8, 3, 32, 32], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    losses = training_step(state, opts, images, device)
    seconds = time.perf_counter() - start
    training_stats.collect()
    changed = {n for n, t in tensors.items() if not torch.equal(t.detach(), before[n])}
    allowed = {n for n in tensors if n.endswith('w_avg')} if get_method(method).update_w_avg else set()
    frozen_changed = sorted(n for n in changed if id(tensors[n]) not in trainable and n not in allowed)
    train_names = [n for n, t in tensors.items() if id(t) in trainable]
    unchanged = sorted(n for n in train_names if n not in changed)
    finite = all(math.isfinite(v) for v in losses.values())
    ok = finite and not frozen_changed and len(unchanged) < len(train_names)
    return dict(method=method, status='pass' if ok else 'fail', losses=losses, seconds=round(seconds, 3),
                trainable_tensors=len(train_names), trainable_numbers=sum(tensors[n].numel() for n in train_names),
                trainable_changed=len(train_names) - len(unchanged), trainable_unchanged=unchanged[:20],
                frozen_changed=frozen_changed[:20])


def check_methods(ctx):
    """Every registered method: one training step on p1 with finite losses, changing only its trainable
    tensors (and w_avg where the method tracks it)."""
    rows = []
    for method in sorted(METHODS):
        try:
            rows.append(method_step(method, ctx.device))
        except Exception as e:  # noqa: BLE001 -- recorded per method (a TrainingError names the phase)
            rows.append(dict(method=method, status='fail', error=f'{type(e).__name__}: {e}'))
    bad = [r['method'] for r in rows if r['status'] != 'pass']
    summary = f'{len(rows) - len(bad)}/{len(rows)} methods pass' + (f' (failing: {", ".join(bad)})' if bad else '')
    return dict(status=_verdict(bad, []), summary=summary, rows=rows)


# ---------------------------------------------------------------------------------------------- speed

# stylegan2-ada-pytorch's paper256: fmaps 0.5 (channel_base 16384), channel_max 512, 8 mapping layers,
# minibatch-std group 8, num_fp16_res 4, conv_clamp 256 (its ref_gpus 8, kimg 25000, mb 64, lrate 0.0025,
# gamma 1, ema 20 are training settings; here the methods' own settings apply).
PAPER256 = dict(res=256, z_dim=512, w_dim=512, map=8, cbase=16384, cmax=512, fp16=4, clamp=256, mbstd=8)
TINY32 = dict(res=32, z_dim=64, w_dim=64, map=2, cbase=1024, cmax=64, fp16=2, clamp=256, mbstd=4)


def net_kwargs(cfg):
    """(G_kwargs, D_kwargs) of an unconditional RGB config (see PAPER256)."""
    G_kwargs = dict(z_dim=cfg['z_dim'], c_dim=0, w_dim=cfg['w_dim'], img_resolution=cfg['res'], img_channels=3,
                    mapping_kwargs=dict(num_layers=cfg['map']),
                    synthesis_kwargs=dict(channel_base=cfg['cbase'], channel_max=cfg['cmax'],
                                          num_fp16_res=cfg['fp16'], conv_clamp=cfg['clamp']))
    D_kwargs = dict(c_dim=0, img_resolution=cfg['res'], img_channels=3, channel_base=cfg['cbase'],
                    channel_max=cfg['cmax'], num_fp16_res=cfg['fp16'], conv_clamp=cfg['clamp'],
                    epilogue_kwargs=dict(mbstd_group_size=cfg['mbstd']))
    return G_kwargs, D_kwargs


def time_steps(method, cfg, batch, warmup, steps, device):
    """ms/step, img/s and peak memory of `steps` training steps after `warmup` (random init networks)."""
    G_kwargs, D_kwargs = net_kwargs(cfg)
    torch.manual_seed(0)
    start = time.perf_counter()
    state = setup_run(train_opts(method, batch, G_kwargs=G_kwargs, D_kwargs=D_kwargs), device)
    setup_s = time.perf_counter() - start
    opts = train_opts(method, batch)
    images = torch.randint(0, 256, [64, 3, cfg['res'], cfg['res']], dtype=torch.uint8)
    for _ in range(warmup):
        training_step(state, opts, images, device)
    _sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        training_step(state, opts, images, device)
    _sync(device)
    sec = time.perf_counter() - start
    training_stats.collect()
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else None
    return dict(method=method, batch=batch, ms_per_step=round(sec / steps * 1000, 2),
                img_per_s=round(batch * steps / sec, 1), peak_memory_gib=None if peak is None else round(peak, 2),
                setup_s=round(setup_s, 2), steps=steps, warmup=warmup, trainable=state.num_trainable)


def svd_setup_time(device, quick):
    """Seconds of adapt(method='fsgan') (the SVD of every layer) on a G+D built on `device`."""
    if quick:
        G_kwargs, D_kwargs = net_kwargs(dict(TINY32, res=64, cbase=4096, cmax=128, fp16=0))
        name = '64 px, channel_max 128'
    else:
        G_kwargs, D_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3), \
            dict(c_dim=0, img_resolution=1024, img_channels=3)
        name = 'config-f 1024'
    G = networks.Generator(**G_kwargs).to(device)
    D = networks.Discriminator(**D_kwargs).to(device)
    _sync(device)
    start = time.perf_counter()
    params = adapt(G, D, method='fsgan')
    _sync(device)
    return dict(config=name, seconds=round(time.perf_counter() - start, 2),
                trainable=sum(p.numel() for p in params))


def check_speed(ctx):
    """ms/step, img/s and peak memory per method (paper256 with float16 blocks at batch 16 and 32;
    --quick: 32 px at batch 4), and the SVD set-up time of FSGAN on a config-f 1024 G+D."""
    configure_backends(ctx.device, allow_tf32=False)
    cfg, batches, warmup, steps = (TINY32, [4], 1, 2) if ctx.quick else (PAPER256, [16, 32], 2, 16)
    rows = []
    for batch in batches:
        for method in sorted(METHODS):
            try:
                rows.append(time_steps(method, cfg, batch, warmup, steps, ctx.device))
            except Exception as e:  # noqa: BLE001 -- e.g. out of memory: recorded, the rest still runs
                rows.append(dict(method=method, batch=batch, error=f'{type(e).__name__}: {str(e)[:300]}'))
            if ctx.device.type == 'cuda':
                torch.cuda.empty_cache()
    svd = svd_setup_time(ctx.device, ctx.quick)
    errors = [f'{r["method"]}@{r["batch"]}' for r in rows if 'error' in r]
    cells = ', '.join(f'{r["method"]}@{r["batch"]} {r["ms_per_step"]:.0f} ms' for r in rows if 'error' not in r)
    return dict(status=_verdict(errors, []), summary=f'{cells}; SVD {svd["config"]} {svd["seconds"]:.1f} s',
                config=cfg, tf32=False, cudnn_benchmark=torch.backends.cudnn.benchmark, rows=rows, svd_setup=svd)


# ----------------------------------------------------------------------------------------- end to end

def write_targets(folder, count=4, res=32):
    """`count` smooth RGB PNGs of res x res."""
    import PIL.Image
    os.makedirs(folder, exist_ok=True)
    yy, xx = np.mgrid[0:res, 0:res] / res
    rng = np.random.RandomState(0)
    for i in range(count):
        img = rng.rand(3)[None, None, :] * 255 * (0.5 + 0.5 * np.sin(6 * xx + i)[..., None] * np.cos(4 * yy)[..., None])
        PIL.Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(os.path.join(folder, f'target{i}.png'))
    return folder


def run_script(args, timeout=300):
    """Run scripts/<args[0]> with this Python; {'rc', 'seconds', 'output_tail'} (rc None on timeout)."""
    cmd = [sys.executable, os.path.join(ROOT, 'scripts', args[0])] + [str(a) for a in args[1:]]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, output = None, f'timed out after {timeout} s: {e}'
    return dict(rc=rc, seconds=round(time.perf_counter() - start, 2), output_tail=output[-2000:],
                command=' '.join(os.path.basename(c) if c == sys.executable else c for c in cmd))


def check_end_to_end(ctx):
    """scripts/train.py (p1 as --resume, 4 generated targets, 8 images in 2 ticks) and
    scripts/generate.py on its last snapshot, both on the device."""
    dev = ctx.device.type
    with tempfile.TemporaryDirectory() as tmp:
        targets = write_targets(os.path.join(tmp, 'targets'))
        runs = os.path.join(tmp, 'runs')
        train = run_script(['train.py', '--resume', P1, '--target-dir', targets, '--shots', 4, '--kimg', 0.008,
                            '--batch', 4, '--tick', 0.004, '--snap', 1, '--device', dev, '--no-progress',
                            '--outdir', runs])
        run_dirs = sorted(glob.glob(os.path.join(runs, '*')))
        snaps = sorted(glob.glob(os.path.join(run_dirs[-1], 'network-snapshot-*.pkl'))) if run_dirs else []
        out = dict(train=train, snapshots=[os.path.basename(s) for s in snaps])
        if train['rc'] != 0 or not snaps:
            return dict(out, status='fail', summary=f'train.py exit {train["rc"]}, {len(snaps)} snapshot(s)')
        from fsgan.options import read_training_options
        options = read_training_options(os.path.join(run_dirs[-1], 'training_options.json'))
        out['options'] = {k: options.get(k) for k in ('device', 'allow_tf32', 'batch', 'kimg', 'method')}
        gen_dir = os.path.join(tmp, 'generated')
        out['generate'] = run_script(['generate.py', '--network', snaps[-1], '--seeds', '0-3', '--grid',
                                      '--outdir', gen_dir, '--device', dev])
        pngs = sorted(os.listdir(gen_dir)) if os.path.isdir(gen_dir) else []
    out['generated'] = pngs
    ok = out['generate']['rc'] == 0 and len(pngs) == 5 and options.get('device') == dev
    summary = (f'train.py {train["seconds"]:.1f} s, {len(snaps)} snapshot(s); generate.py '
               f'{out["generate"]["seconds"]:.1f} s, {len(pngs)} PNG(s)')
    return dict(out, status='pass' if ok else 'fail', summary=summary)
