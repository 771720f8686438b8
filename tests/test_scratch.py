"""Training from random init (no --resume) with the small CPU configurations."""
from fsgan import run_setup
import os

import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from fsgan.loading import load_network
from scripts import train
from fsgan.options import read_training_options

SHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'glyphs',
                     'near_shots25.zip')


@pytest.mark.parametrize('cfg', ['glyph32', 'glyph32-wide'])
def test_train_from_scratch(tmp_path, cfg, one_thread):
    args = ['--target-dir', SHOTS, '--cfg', cfg, '--kimg', '0.016', '--batch', '8', '--tick', '0.008', '--snap', '1',
            '--pl-weight', '0', '--style-mixing', '0', '--outdir', str(tmp_path), '--no-progress']
    res = CliRunner().invoke(train.main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    assert run_dir.name == f'00000-scratch-{cfg}'
    opts = read_training_options(run_dir / 'training_options.json')
    assert opts['source'] is None and opts['method'] == 'tgan' and opts['cfg'] == cfg
    spec = run_setup.SCRATCH_CFGS[cfg]
    net = load_network(str(run_dir / 'network-snapshot-000000.016.pkl'))
    G, D = net['G_ema'], net['D']
    assert (G.img_channels, G.img_resolution, G.z_dim) == (1, 32, spec['z_dim'])
    assert G.init_kwargs['synthesis_kwargs']['use_noise'] == spec['use_noise']
    assert D.b4.mbstd.group_size == spec['mbstd_group'] and D.b4.mbstd.num_channels == spec['mbstd_channels']
    assert max(b.conv1.weight.shape[0] for b in G.synthesis.children()) == spec['channel_max']
    with torch.no_grad():
        img = G(torch.randn([4, G.z_dim]), None, noise_mode='const')
    assert img.shape == (4, 1, 32, 32) and torch.isfinite(img).all()


def test_a_broken_first_image_of_a_scratch_run_is_named(tmp_path):
    """From scratch the first image decides the channels; if it cannot be read, the error names it."""
    shots = tmp_path / 'shots'
    shots.mkdir()
    (shots / 'a_broken.png').write_bytes(b'not a png')
    PIL.Image.new('L', (32, 32)).save(shots / 'b.png')
    res = CliRunner().invoke(train.main, ['--target-dir', str(shots), '--cfg', 'glyph32', '--outdir',
                                          str(tmp_path / 'runs'), '--no-progress'])
    lines = res.output.strip().splitlines()
    assert res.exit_code != 0 and len(lines) == 1 and 'a_broken.png' in lines[0], res.output
    assert not (tmp_path / 'runs').exists()


def _tiny_nets():
    from training import networks
    G = networks.Generator(z_dim=8, w_dim=8, c_dim=0, img_resolution=32, img_channels=1,
                           mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=128, channel_max=4))
    D = networks.Discriminator(c_dim=0, img_resolution=32, img_channels=1, channel_base=128, channel_max=4)
    return G, D


def test_source_with_only_G_ema_and_D_adapts(tmp_path, one_thread):
    """A shipped source may leave out G (adaptation starts from G_ema); without D it is refused in one line."""
    from fsgan.export import save_snapshot
    G, D = _tiny_nets()
    save_snapshot(str(tmp_path / 'no_G.pkl'), None, D, G)
    save_snapshot(str(tmp_path / 'no_D.pkl'), G, None, G)
    common = ['--target-dir', SHOTS, '--shots', '5', '--kimg', '0.008', '--batch', '4', '--tick', '0.004',
              '--method', 'fsgan', '--no-progress']
    res = CliRunner().invoke(train.main, common + ['--resume', str(tmp_path / 'no_G.pkl'), '--outdir',
                                                   str(tmp_path / 'a')], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run_dir,) = os.listdir(tmp_path / 'a')
    assert 'network-snapshot-000000.008.pkl' in os.listdir(tmp_path / 'a' / run_dir)
    res = CliRunner().invoke(train.main, common + ['--resume', str(tmp_path / 'no_D.pkl'), '--outdir',
                                                   str(tmp_path / 'b')])
    assert res.exit_code != 0 and 'no_D.pkl: needs a generator (G or G_ema) and D to adapt' in res.output
    assert 'Traceback' not in res.output


def test_mode_seeking_loss_grows_as_samples_collapse():
    from fsgan.losses.mode_seeking import mode_seeking_loss
    torch.manual_seed(0)
    z = torch.randn(8, 16)
    diverse = torch.randn(8, 1, 32, 32)
    collapsed = diverse[:1].repeat(8, 1, 1, 1) + 0.01 * torch.randn(8, 1, 32, 32)
    assert mode_seeking_loss(collapsed, z) > 20 * mode_seeking_loss(diverse, z)
    # Manual value for one pair: mean |z1 - z2| / mean |img1 - img2|.
    img = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5)])
    zz = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    assert float(mode_seeking_loss(img, zz)) == pytest.approx(2.0 / 0.5, rel=1e-4)
    # Its gradient pushes the two images of a pair apart.
    img = img.clone().requires_grad_(True)
    mode_seeking_loss(img, zz).backward()
    assert (img.grad[0] > 0).all() and (img.grad[1] < 0).all()


def test_hinged_mode_seeking_only_penalises_pairs_closer_than_real_ones():
    from fsgan.losses.mode_seeking import mode_seeking_loss
    zz = torch.tensor([[0.0, 0.0], [1.0, 3.0]])                       # mean |z1 - z2| = 2
    img = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5)])  # pair distance 0.5
    # Real pairs further apart (1.0): 2 / 0.5 - 2 / 1.0 = 2, with the plain term's gradient.
    assert float(mode_seeking_loss(img, zz, ref=torch.tensor(1.0))) == pytest.approx(2.0, rel=1e-4)
    img = img.clone().requires_grad_(True)
    mode_seeking_loss(img, zz, ref=torch.tensor(1.0)).backward()
    assert (img.grad[0] > 0).all() and (img.grad[1] < 0).all()
    # Real pairs closer (0.25) than the samples: no cost, no gradient.
    img.grad = None
    loss = mode_seeking_loss(img, zz, ref=torch.tensor(0.25))
    loss.backward()
    assert float(loss.detach()) == 0 and float(img.grad.abs().sum()) == 0


def test_mode_seeking_hinge_option(tmp_path, p1_path):
    from fsgan.compare import CompareError, parse_method
    from fsgan.training_loop import setup_run
    c = run_setup.setup_training_config(str(tmp_path), resume=p1_path, mode_seeking=2, mode_seeking_hinge=True,
                                    device='cpu')
    assert c.losses['mode_seeking'] == dict(weight=2.0, hinge=True)
    (term,) = setup_run(c, torch.device('cpu')).loss.terms
    assert term.hinge is True and term.weight == 2
    assert run_setup.setup_training_config(str(tmp_path), device='cpu').losses == {}
    assert run_setup.setup_training_config(str(tmp_path), mode_seeking=1, mode_seeking_hinge='0',
                                       device='cpu').losses['mode_seeking'] == dict(weight=1.0, hinge=False)
    with pytest.raises(run_setup.SetupError, match='needs a --mode-seeking weight'):
        run_setup.setup_training_config(str(tmp_path), mode_seeking_hinge=True, device='cpu')
    for value, expected in (('1', 1.0), ('true', 1.0), ('off', 0.0)):
        assert parse_method(f'tgan@mode_seeking_hinge={value}')[1] == {'mode_seeking_hinge': expected}
    with pytest.raises(CompareError, match='0 or 1'):
        parse_method('tgan@mode_seeking_hinge=0.5')
