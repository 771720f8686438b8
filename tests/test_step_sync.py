"""The training step without per-phase host syncs gives bit for bit what the step that read every loss
per phase (float()) and mixed styles by slicing gave; training statistics accumulated on the device equal
the plain sums; the CUDA backend settings."""
import math

import pytest
import torch

from dnnlib import EasyDict
from torch_utils import distributed, training_stats
from fsgan import training_loop
from fsgan.training_loop import (TrainingError, gradients_only_for, phases, sample_conditions, sample_reals,
                                 setup_run, training_step, update_ema)

pytestmark = pytest.mark.usefixtures('one_thread')


def _slicing_run_G(self, z, c, ws_requires_grad=False):
    """StyleGAN2Loss.run_G as it mixed styles before: ws[:, cutoff:] = mixed[:, cutoff:] (reads cutoff)."""
    ws = self.G.mapping(z, c, skip_w_avg_update=not self.update_w_avg)
    if ws_requires_grad and not ws.requires_grad:
        ws = ws.detach().requires_grad_(True)
    if self.style_mixing_prob > 0:
        cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
        cutoff = torch.where(torch.rand([], device=ws.device) < self.style_mixing_prob, cutoff,
                             torch.full_like(cutoff, ws.shape[1]))
        mixed = self.G.mapping(torch.randn_like(z), c, skip_w_avg_update=True)
        ws = ws.clone()
        ws[:, cutoff:] = mixed[:, cutoff:]
    return self.G.synthesis(ws), ws


def _synced_step(state, opts, images, device):
    """The step checking each phase on the host right away (its losses read with float())."""
    batch = opts.batch
    real, real_idx = sample_reals(images, batch, opts.mirror, device)
    real_c, gen_c = sample_conditions(state.G.c_dim, None, real_idx, device)
    all_losses = {}
    for name, opt, interval in phases(state, opts):
        if state.batch_idx % interval != 0:
            continue
        gen_z = torch.randn([batch, state.G.z_dim], device=device)
        params = [p for g in opt.param_groups for p in g['params']]
        opt.zero_grad(set_to_none=True)
        losses = state.loss.accumulate_gradients(name, real, real_c, gen_z, gen_c, gain=interval)
        losses = {k: float(v) for k, v in distributed.average_gradients(params, losses).items()}
        assert all(math.isfinite(v) for v in losses.values())
        assert all(bool(torch.isfinite(p.grad).all()) for p in params if p.grad is not None)
        opt.step()
        for p in params:
            p.grad = None
        all_losses.update(losses)
    update_ema(state, opts, opts.batch)
    state.cur_nimg += opts.batch
    state.batch_idx += 1
    return all_losses


@pytest.mark.slow
@pytest.mark.parametrize('method', ['fsgan', 'tgan'])
def test_step_equals_the_per_phase_synced_step(p1_path, method):
    """17 steps (every phase, lazy R1 and path length included), mirrored reals: identical weights and losses."""
    opts = EasyDict(source=p1_path, method=method, method_options={}, style_mixing=0.9, gamma=10.0, pl_weight=2.0,
                    lr=0.002, G_reg_interval=4, D_reg_interval=16, batch=4, mirror=True, ema_kimg=10.0,
                    ema_rampup=0.05)
    images = torch.randint(0, 256, [6, 3, 32, 32], dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    results = []
    for step in (training_step, _synced_step):
        torch.manual_seed(0)
        state = setup_run(opts, torch.device('cpu'))
        if step is _synced_step:
            state.loss.run_G = _slicing_run_G.__get__(state.loss)
        losses = [step(state, opts, images, 'cpu') for _ in range(17)]
        training_stats.collect()
        results.append((losses, {f'{k}.{n}': t for k in ('G', 'D', 'G_ema') for n, t in state[k].state_dict().items()}))
    (losses_a, tensors_a), (losses_b, tensors_b) = results
    assert losses_a == losses_b
    assert all(type(v) is float for v in losses_a[0].values())
    for name, t in tensors_a.items():
        assert torch.equal(t, tensors_b[name]), name


@pytest.mark.parametrize('method', ['fsgan', 'tgan'])
def test_a_phase_computes_no_gradients_for_the_other_network(p1_path, method):
    """Gmain backpropagates through D for the images' gradient only (no D weight gradients), D's phases leave G's
    tensors alone, and every trainable tensor requires gradients again after the step."""
    opts = EasyDict(source=p1_path, method=method, method_options={}, style_mixing=0.9, gamma=10.0, pl_weight=2.0,
                    lr=0.002, G_reg_interval=4, D_reg_interval=16, batch=4, mirror=False, ema_kimg=10.0,
                    ema_rampup=None)
    state = setup_run(opts, torch.device('cpu'))
    trained = {net: [p for g in state['opt_' + net].param_groups for p in g['params']] for net in ('G', 'D')}
    original, seen = state.loss.accumulate_gradients, {}

    def recording(phase, *args, **kwargs):
        losses = original(phase, *args, **kwargs)
        own, other = (trained['G'], trained['D']) if phase.startswith('G') else (trained['D'], trained['G'])
        seen[phase] = (sum(p.grad is not None for p in own), sum(p.grad is not None for p in other))
        return losses
    state.loss.accumulate_gradients = recording
    images = torch.randint(0, 256, [4, 3, 32, 32], dtype=torch.uint8)
    training_step(state, opts, images, 'cpu')
    training_stats.collect()
    assert list(seen) == ['Gmain', 'Greg', 'Dmain', 'Dreg']
    assert [other for _own, other in seen.values()] == [0, 0, 0, 0]
    assert seen['Gmain'][0] > 0 and seen['Dmain'][0] > 0
    assert all(p.requires_grad for p in trained['G'] + trained['D'])


def test_gradients_only_for_leaves_shared_and_frozen_tensors_and_restores_after_an_error():
    own, other, shared = (torch.nn.Parameter(torch.ones(1)) for _ in range(3))
    frozen = torch.nn.Parameter(torch.ones(1), requires_grad=False)
    opt, opt_other = torch.optim.SGD([own, shared], lr=1), torch.optim.SGD([other, shared, frozen], lr=1)
    with pytest.raises(RuntimeError, match='boom'):
        with gradients_only_for(opt, (opt, opt_other, None)):
            assert own.requires_grad and shared.requires_grad and not other.requires_grad
            raise RuntimeError('boom')
    assert other.requires_grad and own.requires_grad and shared.requires_grad and not frozen.requires_grad


def test_nan_in_an_early_phase_is_named_after_the_step(p1_path, monkeypatch):
    """A NaN gradient in Gmain: later phases still run, the error names Gmain and the kimg, nothing advances."""
    opts = EasyDict(source=p1_path, method='fsgan', method_options={}, style_mixing=0.9, gamma=10.0, pl_weight=2.0,
                    lr=0.002, G_reg_interval=4, D_reg_interval=16, batch=4, mirror=False, ema_kimg=10.0,
                    ema_rampup=None)
    state = setup_run(opts, torch.device('cpu'))
    state.cur_nimg = 2000
    original = state.loss.accumulate_gradients
    ran = []

    def poisoned(phase, *args, **kwargs):
        ran.append(phase)
        losses = original(phase, *args, **kwargs)
        if phase == 'Gmain':
            next(p for p in state.G.parameters() if p.grad is not None).grad[...] = float('nan')
        return losses
    state.loss.accumulate_gradients = poisoned
    images = torch.randint(0, 256, [4, 3, 32, 32], dtype=torch.uint8)
    with pytest.raises(TrainingError, match=r'kimg 2.000 \(phase Gmain\): gradient of '):
        training_step(state, opts, images, 'cpu')
    assert ran == ['Gmain', 'Greg', 'Dmain', 'Dreg'] and state.cur_nimg == 2000 and state.batch_idx == 0
    training_stats.collect()


def test_training_stats_equal_plain_sums():
    gen = torch.Generator().manual_seed(0)
    values = [torch.randn([7], generator=gen, dtype=torch.float32) for _ in range(5)]
    values[2][3] = float('nan')
    values[4][0] = float('inf')
    training_stats.collect()
    for v in values:
        training_stats.report('x', v)
    training_stats.report('only_nan', torch.tensor([float('nan')]))
    training_stats.report('number', 1.5)
    got = training_stats.collect()
    kept = [float(e) for v in values for e in v.double() if math.isfinite(float(e))]
    s, sq = 0.0, 0.0
    for v in values:
        f = v.double()[torch.isfinite(v)]
        s, sq = s + float(f.sum()), sq + float(f.square().sum())
    mean = s / len(kept)
    assert got['x'] == dict(num=len(kept), mean=mean, std=max(sq / len(kept) - mean * mean, 0.0) ** 0.5)
    assert 'only_nan' not in got and got['number'] == dict(num=1, mean=1.5, std=0.0)
    assert training_stats.collect() == {}


def test_backend_settings(monkeypatch):
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark
    try:
        training_loop.set_tf32(True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        training_loop.set_tf32(False)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.benchmark = False
        training_loop.configure_backends(torch.device('cpu'), allow_tf32=True)  # nothing on the CPU
        assert not torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = old


def test_allow_tf32_is_an_option_recorded_with_the_run(target_dir, p1_path):
    from fsgan.run_setup import setup_training_config
    assert setup_training_config(target_dir, resume=p1_path, device='cpu').allow_tf32 is False
    assert setup_training_config(target_dir, resume=p1_path, device='cpu', allow_tf32=True).allow_tf32 is True
