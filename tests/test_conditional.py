"""Class-conditional training (--cond) and conditional networks in the sampling tools."""
from fsgan import run as fsgan_run
from fsgan import run_setup
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fsgan.loading import load_network
from scripts import train
from tests.test_scratch import SHOTS
from fsgan.options import read_training_options, write_training_options


def test_sample_conditions():
    from fsgan.training_loop import sample_conditions
    torch.manual_seed(0)
    labels = torch.tensor([3, 3, 5, 7])
    idx = torch.tensor([2, 0, 3, 2, 1, 1])
    real_c, gen_c = sample_conditions(10, labels, idx, 'cpu')
    assert real_c.shape == gen_c.shape == (6, 10) and (real_c.sum(1) == 1).all() and (gen_c.sum(1) == 1).all()
    assert real_c.argmax(1).tolist() == [5, 3, 7, 5, 3, 3]
    gen = sample_conditions(10, labels, torch.zeros(4000, dtype=torch.int64), 'cpu')[1].argmax(1)
    assert set(gen.tolist()) == {3, 5, 7} and abs(float((gen == 3).float().mean()) - 0.5) < 0.05  # label frequencies
    real_c, gen_c = sample_conditions(10, None, torch.zeros(4000, dtype=torch.int64), 'cpu')  # unlabelled targets
    assert set(real_c.argmax(1).tolist()) == set(gen_c.argmax(1).tolist()) == set(range(10))
    real_c, gen_c = sample_conditions(0, labels, idx, 'cpu')
    assert real_c.shape == gen_c.shape == (6, 0)


@pytest.mark.slow
def test_conditional_training_from_scratch_then_adaptation(tmp_path, one_thread, monkeypatch):
    """--cond trains G and D on the dataset.json classes; the conditional source then adapts to unlabelled
    targets (random classes) or, with --cond, to labelled ones, and resumes with its labels."""
    import zipfile
    with zipfile.ZipFile(SHOTS) as z:
        n_classes = max(label for _name, label in json.loads(z.read('dataset.json'))['labels']) + 1
    common = ['--kimg', '0.016', '--batch', '8', '--tick', '0.008', '--snap', '1', '--pl-weight', '0',
              '--style-mixing', '0', '--no-progress']
    res = CliRunner().invoke(train.main, ['--target-dir', SHOTS, '--cond', '--class-loss', '1', '--outdir',
                                          str(tmp_path / 'src')] + common, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run_dir = tmp_path / 'src' / '00000-scratch-glyph32'
    opts = read_training_options(run_dir / 'training_options.json')
    assert opts['cond'] is True and opts['losses'] == {'class': {'weight': 1.0}}
    stats = [json.loads(line)['stats'] for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert all(s['Loss/G/class'] > 0 and s['Loss/D/class'] > 0 for s in stats)
    labels = np.load(run_dir / 'target_labels.npy')
    assert len(labels) == 25 and labels.max() == n_classes - 1
    net = load_network(str(run_dir / 'network-snapshot-000000.016.pkl'))
    assert net['G_ema'].c_dim == net['D'].c_dim == n_classes
    c = torch.nn.functional.one_hot(torch.tensor([0, n_classes - 1]), n_classes).float()
    with torch.no_grad():
        assert net['G_ema'](torch.randn([2, net['G_ema'].z_dim]), c, noise_mode='const').shape == (2, 1, 32, 32)
    opts_path = run_dir / 'training_options.json'  # a longer run, stopped at its first snapshot
    write_training_options(opts_path, dict(read_training_options(opts_path), kimg=0.032))
    launched = []
    real_launch = fsgan_run.launch
    monkeypatch.setattr(fsgan_run, 'launch', lambda *a, **k: launched.append(a[3]) or real_launch(*a, **k))
    res = CliRunner().invoke(train.main, ['--resume-run', str(run_dir), '--no-progress'], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert np.array_equal(launched[0], labels)  # the resumed run trains on the same labels
    os.rename(run_dir / 'target_labels.npy', tmp_path / 'labels.npy')
    res = CliRunner().invoke(train.main, ['--resume-run', str(run_dir), '--kimg', '0.048', '--no-progress'])
    assert isinstance(res.exception, SystemExit) and 'this --cond run has no target_labels.npy' in res.output
    os.rename(tmp_path / 'labels.npy', run_dir / 'target_labels.npy')
    ckpt = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ckpt['cur_nimg'] >= 32
    source = str(run_dir / 'network-snapshot-000000.032.pkl')
    for i, (method, extra) in enumerate((('fsgan', []), ('fsgan', ['--cond']), ('freezed', []), ('ssgan', []))):
        out = tmp_path / f'adapt{i}'
        res = CliRunner().invoke(train.main, ['--resume', source, '--target-dir', SHOTS, '--shots', '5',
                                              '--method', method, '--outdir', str(out)] + extra + common,
                                 catch_exceptions=False)
        assert res.exit_code == 0, res.output
        (adapted,) = os.listdir(out)
        assert load_network(str(out / adapted / 'network-snapshot-000000.016.pkl'))['G_ema'].c_dim == n_classes


def test_cond_refuses_unlabelled_targets_and_unconditional_sources(tmp_path, p1_path):
    import PIL.Image
    for i in range(2):
        PIL.Image.new('L', (32, 32)).save(tmp_path / f'{i}.png')
    res = CliRunner().invoke(train.main, ['--target-dir', str(tmp_path), '--cond', '--outdir', str(tmp_path / 'r'),
                                          '--no-progress'])
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit)  # a click error, not a traceback
    assert f'--cond: {tmp_path} has no dataset.json labels' in res.output
    res = CliRunner().invoke(train.main, ['--target-dir', SHOTS, '--resume', p1_path, '--cond', '--outdir',
                                          str(tmp_path / 'r'), '--no-progress'])
    assert res.exit_code != 0 and 'is unconditional; drop --cond' in res.output
    assert not os.path.exists(tmp_path / 'r')  # refused before any run folder is made
    (tmp_path / 'dataset.json').write_text(json.dumps({'labels': [['0.png', 0], ['1.png', -1]]}))
    res = CliRunner().invoke(train.main, ['--target-dir', str(tmp_path), '--cond', '--outdir', str(tmp_path / 'r'),
                                          '--no-progress'])
    assert isinstance(res.exception, SystemExit) and 'has negative label -1; use labels >= 0' in res.output
    assert not os.path.exists(tmp_path / 'r')


def _tiny_conditional_G(c_dim=3):
    from training import networks
    torch.manual_seed(0)
    return networks.Generator(z_dim=8, w_dim=8, c_dim=c_dim, img_resolution=16, img_channels=1,
                              mapping_kwargs=dict(num_layers=1),
                              synthesis_kwargs=dict(channel_base=64, channel_max=4)).eval()


def test_generate_uses_class_seed_mod_c_dim_by_default():
    from fsgan.sampling import generate_images
    G = _tiny_conditional_G()
    default = generate_images(G, [0, 1, 2, 3, 4])
    for seed in range(5):
        assert np.array_equal(default[seed], generate_images(G, [seed], class_idx=seed % 3)[0])
    assert not np.array_equal(generate_images(G, [0], class_idx=0), generate_images(G, [0], class_idx=1))


def test_interpolation_keys_default_to_class_seed_mod_c_dim():
    from fsgan.tools.interp import key_labels
    G = _tiny_conditional_G()
    assert key_labels(G, [0, 1, 5]).argmax(1).tolist() == [0, 1, 2]              # as generate.py
    assert key_labels(G, [0, 1], class_idx=2).tolist() == [[0.0, 0.0, 1.0]] * 2


def _tiny_conditional_D(c_dim=5):
    from training import networks
    torch.manual_seed(1)
    return networks.Discriminator(c_dim=c_dim, img_resolution=16, img_channels=1, channel_base=64, channel_max=4)


def test_class_logits_are_D_for_every_class():
    D = _tiny_conditional_D()
    img = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        all_logits = D.class_logits(img)
        each = torch.cat([D(img, torch.nn.functional.one_hot(torch.full([4], k), 5).float()) for k in range(5)], 1)
    assert all_logits.shape == (4, 5) and torch.allclose(all_logits, each, atol=1e-5)


def test_class_loss_is_cross_entropy_of_D_over_classes():
    """Gclass / Dclass: cross-entropy of D.class_logits against the fakes' / reals' classes; only Gmain and Dmain
    compute them, and class_weight 0 leaves the plain loss."""
    from training.loss import StyleGAN2Loss
    G, D = _tiny_conditional_G(c_dim=5).train(), _tiny_conditional_D()
    torch.manual_seed(2)
    real, z = torch.randn(4, 1, 16, 16), torch.randn(4, 8)
    real_c = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 5).float()
    gen_c = torch.nn.functional.one_hot(torch.tensor([4, 4, 1, 0]), 5).float()
    from fsgan.losses import build_loss_terms
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0, pl_weight=0, terms=build_loss_terms({'class': 2.0}))
    d_losses = loss.accumulate_gradients('Dmain', real, real_c, z, gen_c, gain=1)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(D.class_logits(real), real_c.argmax(1))
        plain = torch.nn.functional.softplus(-D(real, real_c)).mean()
    assert d_losses['Dclass'] == pytest.approx(float(expected), rel=1e-4)
    assert d_losses['Dreal'] == pytest.approx(float(plain), rel=1e-4)
    # The term enters D's gradient: grad(class_weight 2) - grad(class_weight 0) = grad of 2 * cross-entropy.
    with_ce = {n: p.grad.clone() for n, p in D.named_parameters() if p.grad is not None}
    D.zero_grad(set_to_none=True)
    StyleGAN2Loss(G, D, style_mixing_prob=0, pl_weight=0).accumulate_gradients('Dmain', real, real_c, z, gen_c, gain=1)
    without = {n: p.grad.clone() for n, p in D.named_parameters() if p.grad is not None}
    D.zero_grad(set_to_none=True)
    (2 * torch.nn.functional.cross_entropy(D.class_logits(real), real_c.argmax(1))).backward()
    for n, p in D.named_parameters():
        if p.grad is not None:
            assert torch.allclose(with_ce[n] - without[n], p.grad, atol=1e-5), n
    D.zero_grad(set_to_none=True)
    g_losses = loss.accumulate_gradients('Gmain', real, real_c, z, gen_c, gain=1)
    assert 'Gclass' in g_losses and 'Dclass' not in g_losses
    assert 'Gclass' not in StyleGAN2Loss(G, D, style_mixing_prob=0, pl_weight=0).accumulate_gradients(
        'Gmain', real, real_c, z, gen_c, gain=1)


def test_class_loss_needs_cond(tmp_path):
    with pytest.raises(run_setup.SetupError, match='--class-loss needs --cond'):
        run_setup.setup_training_config(str(tmp_path), class_loss=1.0, device='cpu')
    assert run_setup.setup_training_config(str(tmp_path), class_loss=1.0, cond=True, device='cpu').losses['class'] == \
        {'weight': 1.0}
    with pytest.raises(run_setup.SetupError, match='--class-loss'):
        run_setup.setup_training_config(str(tmp_path), class_loss=-1.0, cond=True, device='cpu')
