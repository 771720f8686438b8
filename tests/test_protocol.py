"""Adaptation protocols (fsgan.protocol): resolution, what lands in the run folder, and the paper's numbers."""
from fsgan import run_setup
from fsgan import run as fsgan_run
import copy
import os

import pytest
import torch
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan import load_network, protocol
from fsgan.export import apply_adapter
from fsgan.methods import adapt, get_method
from fsgan.methods.freezed import paper_depth
from scripts import train as train_cli
from training.loss import StyleGAN2Loss
from training.networks import Discriminator, Generator
from fsgan.training_loop import setup_run, track_w_avg, training_step, update_ema
from fsgan.options import read_training_options

TINY = ['--kimg', '0.008', '--tick', '0.004', '--snap', '1', '--no-progress']


def _config(p1_path, target_dir, tmp_path, **kwargs):
    c = run_setup.setup_training_config(target_dir, outdir=str(tmp_path), resume=p1_path, shots=4, device='cpu',
                                        **kwargs)
    run_setup.network_geometry(c)  # resolves the source-dependent items
    return c


def test_resolve_defaults_and_overrides():
    paper = protocol.resolve('paper', {})
    assert (paper['ema_kimg'], paper['ema_rampup'], paper['track_w_avg'], paper['start'], paper['batch']) == \
        (10.0, None, True, 'G', 32)
    ours = protocol.resolve('ours', dict(batch=8))
    assert ours['ema_kimg'] == 8 * 10 / 32 and ours['ema_rampup'] == 0.05 and ours['track_w_avg'] is None
    assert protocol.resolve('fsgan-repo', {})['batch'] == 16
    assert protocol.resolve('paper', dict(ema_kimg=3.0, start='G_ema', track_w_avg=False))['ema_kimg'] == 3.0
    assert protocol.resolve(None, {})['ema_rampup'] == 0.05  # from scratch: stylegan2-ada-pytorch's ramp-up
    with pytest.raises(ValueError, match='--protocol'):
        protocol.resolve('nope', {})


def test_training_options_record_the_protocol(p1_path, target_dir, tmp_path):
    out = tmp_path / 'runs'
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4',
                                              '--method', 'freezed', '--outdir', str(out)] + TINY,
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run_dir,) = [out / d for d in os.listdir(out)]
    opts = read_training_options(run_dir / 'training_options.json')
    D = load_network(p1_path)['D']
    assert opts['protocol'] == 'paper' and opts['batch'] == 32 and opts['ema_kimg'] == 10.0
    assert opts['ema_rampup'] is None and opts['track_w_avg'] is True and opts['start'] == 'G'
    assert opts['method_options']['freezed'] == paper_depth(D) > 0


def test_each_item_can_be_overridden(p1_path, target_dir, tmp_path):
    c = _config(p1_path, target_dir, tmp_path, method='freezed', freezed=2, batch=8, ema_kimg=1.5, ema_rampup=0.1,
                start='G_ema', track_w_avg=False, lr=0.01)
    assert (c.method_options['freezed'], c.batch, c.ema_kimg, c.ema_rampup, c.start, c.track_w_avg, c.lr) == \
        (2, 8, 1.5, 0.1, 'G_ema', False, 0.01)
    assert _config(p1_path, target_dir, tmp_path, ema_rampup=0).ema_rampup is None  # 0 = off
    ours = _config(p1_path, target_dir, tmp_path, protocol='ours', method='freezed')
    assert (ours.method_options['freezed'], ours.batch, ours.ema_rampup, ours.start) == (4, 16, 0.05, 'G_ema')


def test_dry_run_prints_the_resolved_protocol(p1_path, target_dir, tmp_path):
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4',
                                              '--outdir', str(tmp_path), '--dry-run', '--ema', '2.5'])
    assert res.exit_code == 0, res.output
    line = [ln for ln in res.output.splitlines() if ln.startswith('protocol paper:')]
    assert line and 'G_ema half-life 2.5 kimg' in line[0] and 'ramp-up off' in line[0] and 'start G,' in line[0]
    assert 'batch 32' in line[0] and 'w_avg tracked' in line[0]


def test_bad_protocol_options_are_one_line_errors(p1_path, target_dir, tmp_path):
    for args, message in ((['--protocol', 'nope'], '--protocol'), (['--start', 'D'], '--start'),
                          (['--ema-rampup', '-1'], '--ema-rampup')):
        res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir,
                                                  '--outdir', str(tmp_path)] + args)
        assert res.exit_code != 0 and message in res.output and 'Traceback' not in res.output


@pytest.mark.parametrize('start', ['G', 'G_ema'])
def test_start_generator_and_adapter(p1_path, target_dir, tmp_path, start):
    """G and G_ema start from the chosen source generator; the adapter records it and reproduces the snapshot."""
    source = load_network(p1_path)
    assert any(not torch.equal(a, b) for a, b in zip(source['G'].parameters(), source['G_ema'].parameters()))
    c = _config(p1_path, target_dir, tmp_path, start=start, batch=4, kimg=0.004, kimg_per_tick=0.004, snap=1)
    state = setup_run(c, torch.device('cpu'))
    z = torch.randn([2, state.G.z_dim], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = source[start](z, torch.zeros([2, 0]), noise_mode='const')
        for net in (state.G, state.G_ema):
            assert (net(z, torch.zeros([2, 0]), noise_mode='const') - ref).abs().max() <= 1e-4
    run_dir = fsgan_run.run_training(c, progress=False)
    snap = load_network(os.path.join(run_dir, 'network-snapshot-000000.004.pkl'))
    adapted = apply_adapter(load_network(p1_path), os.path.join(run_dir, 'adapter-000000.004.pt'))
    with torch.no_grad():
        a = snap['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
        b = adapted['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
    assert (a - b).abs().max() <= 1e-5


@pytest.mark.parametrize('name, tracked', [('paper', True), ('ours', False)])
def test_w_avg_tracking_for_fsgan(p1_path, target_dir, tmp_path, name, tracked):
    c = _config(p1_path, target_dir, tmp_path, protocol=name, batch=4)
    state = setup_run(c, torch.device('cpu'))
    assert state.loss.update_w_avg is tracked
    before = state.G.mapping.w_avg.clone()
    images = torch.randint(0, 256, [4, state.G.img_channels, state.G.img_resolution, state.G.img_resolution],
                           dtype=torch.uint8)
    training_step(state, c, images, 'cpu')
    assert (not torch.equal(before, state.G.mapping.w_avg)) is tracked


def test_older_run_options_fall_back_to_the_method_default():
    spec = get_method('fsgan')
    assert track_w_avg(EasyDict(), spec) is spec.update_w_avg is False
    assert track_w_avg(EasyDict(track_w_avg=True), spec) is True


@pytest.fixture(scope='module')
def config_f():
    torch.manual_seed(0)
    return Generator(512, 0, 512, 1024, 3), Discriminator(0, 1024, 3)


def test_config_f_freezed_paper_depth(config_f):
    """The paper's FreezeD count: D blocks 1024..32 frozen (19 layers), 46.89M of 59.38M tensors trainable."""
    G, D = copy.deepcopy(config_f[0]), copy.deepcopy(config_f[1])
    assert paper_depth(D) == 19
    params = adapt(G, D, method='freezed', freezed=paper_depth(D))
    total = sum(p.numel() for p in params)
    assert round(total / 1e6, 2) == 46.89
    assert sum(p.numel() for p in D.parameters() if not p.requires_grad) == 59382573 - total


def test_config_f_ema_half_life(config_f):
    """paper: G_ema keeps 0.5 ** (batch / 10000) of itself per step from the first image (no ramp-up)."""
    G = copy.deepcopy(config_f[0])
    adapt(G, None, method='fsgan')
    G_ema = copy.deepcopy(G)
    params = [p for p in G.parameters() if p.requires_grad]
    with torch.no_grad():
        for p in params:
            p.add_(1.0)
    opts = EasyDict(protocol.resolve('paper', {}))
    state = EasyDict(G=G, G_ema=G_ema, cur_nimg=0)
    update_ema(state, opts, opts.batch)
    beta = 0.5 ** (32 / 10000)
    ema = dict(G_ema.named_parameters())
    for name, p in G.named_parameters():
        if p.requires_grad:  # lambda: 1 in G_ema, 2 in G
            assert torch.allclose(ema[name], 2 - beta * torch.ones_like(p), atol=1e-6)
    ours = EasyDict(protocol.resolve('ours', {}))
    state = EasyDict(G=G, G_ema=copy.deepcopy(G_ema), cur_nimg=16)
    update_ema(state, ours, ours.batch)  # ramp-up: half-life min(0.5 kimg, 16 * 0.05 images)
    name = next(n for n, p in G.named_parameters() if p.requires_grad)
    expect = torch.lerp(dict(G.named_parameters())[name], ema[name], 0.5 ** (16 / 0.8))
    assert torch.allclose(dict(state.G_ema.named_parameters())[name], expect, atol=1e-6)


def test_config_f_w_avg_tracks_the_adapted_mapping(config_f):
    G = copy.deepcopy(config_f[0])
    adapt(G, None, method='fsgan')
    for name, expect in (('paper', True), ('ours', False)):
        opts = EasyDict(protocol.resolve(name, {}))
        loss = StyleGAN2Loss(G, None, update_w_avg=track_w_avg(opts, get_method('fsgan')))
        before = G.mapping.w_avg.clone()
        G.mapping(torch.randn([2, 512]), torch.zeros([2, 0]), skip_w_avg_update=not loss.update_w_avg)
        assert (not torch.equal(before, G.mapping.w_avg)) is expect


def test_compare_records_the_protocol(tmp_path, p1_path, target_dir):
    from fsgan.benchmarks.glyphs import preset as glyph_preset
    from fsgan.benchmarks.preset import cell_config
    from fsgan.compare import setup_compare
    cfg = setup_compare(str(tmp_path / 'cmp'), source=p1_path, target_dir=target_dir, methods='fsgan')
    assert cfg.settings['protocol'] == 'paper' and cfg.settings['batch'] is None
    ours = cell_config(glyph_preset.BENCHMARK, str(tmp_path), 'far', 10, 0, 'fsgan')
    paper = cell_config(glyph_preset.BENCHMARK, str(tmp_path), 'far', 10, 0, 'fsgan', protocol='paper')
    assert (ours.settings['protocol'], ours.settings['batch']) == ('ours', glyph_preset.BATCH)
    assert (paper.settings['protocol'], paper.settings['batch']) == ('paper', None)
