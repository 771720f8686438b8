"""Augmentation of D's inputs (training.augment): identities, ranges, gradients, training hooks, the CLI."""
from fsgan import run_setup
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan.losses import build_loss_terms
from scripts import train as train_cli
from torch_utils.ops import upfirdn2d
from training import augment, augment_ada
from training.augment_ada import ADA_PRESETS, rotate2d, rotate3d, scale2d, scale3d, translate2d, translate3d
from training.loss import StyleGAN2Loss
from fsgan.options import read_training_options, write_training_options


def _images(n=4, c=3, h=8, w=8, dtype=torch.float32, seed=0):
    """Images [n, c, h, w] uniform in [-1, 1]."""
    return torch.rand([n, c, h, w], generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def _smooth(n=2, c=3, size=32, detail=8, seed=0):
    """Band-limited images [n, c, size, size] (bicubic upsampling of detail x detail noise), float64."""
    low = torch.rand([n, c, detail, detail], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.nn.functional.interpolate(low * 2 - 1, size=(size, size), mode='bicubic', align_corners=False)


def _run(args):
    return CliRunner().invoke(train_cli.main, args, catch_exceptions=False)


def _only_run(out):
    (run_dir,) = [out / d for d in os.listdir(out)]
    return run_dir


# ----------------------------------------------------------------------------- registry

def test_registry_lists_every_kind_and_rejects_unknown_names_and_options():
    assert set(augment.AUGMENTATIONS) == {'none', 'diffaug', 'ada'}
    with pytest.raises(ValueError, match='choose one of'):
        augment.build_augment('bogus')
    with pytest.raises(ValueError, match='its options are: policy'):
        augment.build_augment('diffaug', strength=1)
    x = _images()
    assert augment.build_augment('none')(x) is x


# ----------------------------------------------------------------------------- DiffAugment

@pytest.mark.parametrize('channels', [1, 3])
def test_diffaug_keeps_shape_and_is_random_per_image(channels):
    torch.manual_seed(0)
    x = _images(n=8, c=channels)
    y = augment.build_augment('diffaug')(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(y, x)
    assert len({tuple(v.flatten().tolist()) for v in (y - x)}) == 8  # each image its own draw


def test_diffaug_shift_then_back_is_the_identity_on_the_interior():
    x = _images(n=3, h=10, w=12)
    dy, dx = torch.tensor([2, -1, 0]), torch.tensor([-3, 0, 1])
    there = augment.shift_images(x, dy, dx)
    assert torch.equal(there[0, :, 2:, :-3], x[0, :, :-2, 3:])  # content moved 2 down, 3 left
    assert torch.equal(there[0, :, :2], torch.zeros_like(there[0, :, :2]))  # zero fill
    back = augment.shift_images(there, -dy, -dx)
    assert torch.equal(back[:, :, 3:-3, 3:-3], x[:, :, 3:-3, 3:-3])


def test_diffaug_translation_moves_at_most_an_eighth():
    torch.manual_seed(1)
    x = torch.zeros([64, 1, 16, 16])
    x[:, :, 8, 8] = 1  # one bright pixel per image
    y = augment.random_translation(x)
    pos = y.flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 8
    assert int(dy.abs().max()) == int(dx.abs().max()) == 2  # round(16 / 8), both extremes drawn
    assert torch.equal(y.flatten(1).sum(1), torch.ones(64))  # nothing lost within the range


def test_diffaug_cutout_zeroes_half_the_size_and_channels_alike():
    torch.manual_seed(2)
    x = torch.ones([32, 3, 16, 16])
    y = augment.random_cutout(x)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 0], y[:, 2])
    holes = (y[:, 0] == 0)
    assert int(holes.any(2).sum(1).max()) == 8 and int(holes.any(1).sum(1).max()) == 8  # 16 / 2 rows and cols
    assert int(holes.any(2).sum(1).min()) < 8  # centres near the border are clipped
    assert torch.equal(augment.cut_out(x, torch.tensor([0]), torch.tensor([0]), 0, 0)[:1], x[:1])


def test_diffaug_brightness_and_contrast_invert():
    x = _images(n=2, dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.float64)
    b = torch.tensor([0.3, -0.45], dtype=torch.float64)
    c = torch.tensor([1.4, 0.6], dtype=torch.float64)
    assert torch.allclose(augment.adjust_color(augment.adjust_color(x, b, ones, ones), -b, ones, ones), x)
    assert torch.allclose(augment.adjust_color(augment.adjust_color(x, 0 * b, ones, c), 0 * b, ones, 1 / c), x)
    grey = x[:, :1].expand(-1, 3, -1, -1)
    assert torch.allclose(augment.adjust_color(grey, 0 * b, 2 * ones, ones), grey)  # saturation keeps grey


@pytest.mark.parametrize('channels', [1, 3])
def test_diffaug_color_range_bound(channels):
    """Colour on images in [-1, 1] stays within [-9, 9]: brightness +-0.5 gives [-1.5, 1.5]; saturation
    m + s (x - m) with s <= 2 and x, m in that range gives at most 2 * 1.5 + 1.5 = 4.5; contrast
    c x + (1 - c) M with c in [0.5, 1.5] gives at most 1.5 * 4.5 + 0.5 * 4.5 = 9. Extreme inputs (+-1
    stripes) are where the spread is largest."""
    torch.manual_seed(3)
    x = torch.ones([256, channels, 8, 8])
    x[:, :, ::2] = -1
    if channels == 3:
        x[:, 1] = -x[:, 1]
    y = augment.random_color(torch.cat([x, _images(n=256, c=channels)]))
    assert bool(torch.isfinite(y).all()) and float(y.abs().max()) <= 9
    assert float(y.abs().max()) > 1.5  # the bound is approached, not trivially met


@pytest.mark.parametrize('policy', ['color', 'translation', 'cutout'])
def test_diffaug_gradcheck_per_policy(policy):
    pipe = augment.build_augment('diffaug', policy=policy)
    x = _images(n=2, c=3, h=6, w=6, dtype=torch.float64).requires_grad_(True)

    def fixed_draw(v):
        torch.manual_seed(4)  # the same random transform in every evaluation
        return pipe(v)
    assert torch.autograd.gradcheck(fixed_draw, (x,))
    assert torch.autograd.gradgradcheck(fixed_draw, (x,))


def test_diffaug_policy_parsing():
    assert augment.parse_diffaug_policy(' color,cutout ') == ('color', 'cutout')
    for bad in ('color,zoom', ''):
        with pytest.raises(ValueError, match='color, translation, cutout'):
            augment.parse_diffaug_policy(bad)


# ----------------------------------------------------------------------------- ADA

@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('preset', sorted(ADA_PRESETS))
def test_ada_at_p0_is_the_identity_and_at_p1_changes_every_preset(preset, channels):
    torch.manual_seed(6)
    pipe = augment.build_augment('ada', preset=preset, p=0.0)
    x = _images(n=8, c=channels, h=32, w=32)
    assert torch.equal(pipe(x), x)
    pipe.p.fill_(1)
    y = pipe(x)
    assert y.shape == x.shape and bool(torch.isfinite(y).all()) and not torch.equal(y, x)


def test_ada_presets_enable_the_published_groups():
    groups = {'blit': {'xflip', 'rotate90', 'xint'}, 'geom': {'scale', 'rotate', 'aniso', 'xfrac'},
              'color': {'brightness', 'contrast', 'lumaflip', 'hue', 'saturation'}, 'filter': {'imgfilter'},
              'noise': {'noise'}, 'cutout': {'cutout'}}
    letters = {'b': 'blit', 'g': 'geom', 'c': 'color', 'f': 'filter', 'n': 'noise'}
    for name, mult in ADA_PRESETS.items():
        if name in groups:
            expected = groups[name]
        else:  # bgcfnc: initials, the last c is cutout
            parts = [letters[ch] for ch in name[:5]] + (['cutout'] if name == 'bgcfnc' else [])
            expected = set().union(*(groups[g] for g in parts))
        assert set(mult) == expected and set(mult.values()) == {1}, name


def _warp(x, G_inv):
    return augment_ada.warp_images(x, G_inv, upfirdn2d.setup_filter(augment_ada.WAVELETS['sym6']))


def test_ada_blit_transforms_invert():
    """Integer translation and its inverse: the identity on the interior (to float32 filter precision). x-flip
    and rotate90 resample through the sym6 wavelet, which is not symmetric: exact to 1% of the range only for
    band-limited images (up to 8 cycles per 32 pixels here)."""
    x = _smooth()
    ones = torch.ones(2, dtype=torch.float64)
    there = _warp(x, translate2d(-3 * ones, 2 * ones, x))  # output (i, j) reads input (i + 2, j - 3)
    assert (there[..., 4:-4, 4:-4] - x[..., 6:-2, 1:-7]).abs().max() < 1e-5
    back = _warp(there, translate2d(3 * ones, -2 * ones, x))
    assert (back - x)[..., 4:-4, 4:-4].abs().max() < 1e-5
    flip = scale2d(-ones, ones, x)
    assert (_warp(x, flip) - x.flip(3)).abs().max() < 0.05
    assert (_warp(_warp(x, flip), flip) - x).abs().max() < 0.01
    rot = rotate2d(np.pi / 2 * ones, x)
    assert min(float((_warp(x, rot) - x.rot90(k, [2, 3])).abs().max()) for k in (1, 3)) < 0.05
    y = x
    for _ in range(4):
        y = _warp(y, rot)
    assert (y - x).abs().max() < 0.01


@pytest.mark.parametrize('channels', [1, 3])
def test_ada_color_transforms_invert(channels):
    x = _images(n=2, c=channels, dtype=torch.float64)
    b = torch.tensor([0.3, -0.2], dtype=torch.float64)
    c = torch.tensor([1.7, 0.4], dtype=torch.float64)
    theta = torch.tensor([0.5, -2.0], dtype=torch.float64)
    luma = [3 ** -0.5] * 3 + [0]
    flip = torch.eye(4, dtype=torch.float64) - 2 * torch.outer(torch.tensor(luma, dtype=torch.float64),
                                                                  torch.tensor(luma, dtype=torch.float64))
    pairs = [(translate3d(b, x), translate3d(-b, x)), (scale3d(c, x), scale3d(1 / c, x)), (flip[None], flip[None])]
    if channels == 3:
        pairs.append((rotate3d(luma, theta, x), rotate3d(luma, -theta, x)))
    for forth, back in pairs:
        y = augment_ada.apply_color(x, forth.expand(2, 4, 4))
        assert not torch.allclose(y, x)
        assert torch.allclose(augment_ada.apply_color(y, back.expand(2, 4, 4)), x)
    assert torch.allclose(augment_ada.apply_color(x, flip[None].expand(2, 4, 4)), -x if channels == 1 else
                          x - 2 * x.mean(1, keepdim=True))  # luma flip of grey is negation


def test_ada_band_filter_bank_sums_to_the_identity():
    bank = augment_ada.band_filter_bank()
    assert bank.shape == (4, 43)
    delta = np.zeros(43)
    delta[21] = 1
    assert np.abs(bank.sum(0) - delta).max() < 1e-9  # the wavelet is given to ~16 digits
    x = _images(n=2, h=24, w=24, dtype=torch.float64)
    assert torch.allclose(augment_ada.filter_bands(x, torch.ones([2, 4], dtype=torch.float64),
                                                   torch.as_tensor(bank)), x)


@pytest.mark.parametrize('channels', [1, 3])
def test_ada_color_range_bound(channels):
    """p = 1 colour on 1024 images in [-1, 1] (fixed seed): all finite; grey images stay grey; |out| <= 7.2 for
    one channel (4-sigma contrast 2^(0.5 * 4) x (1 + 4-sigma brightness 0.8)); for RGB, whose saturation
    2^N(0, 1) can stretch chroma further, 99% of values within [-4, 4] and all within [-16, 16]."""
    torch.manual_seed(7)
    pipe = augment.build_augment('ada', preset='color', p=1.0)
    y = pipe(_images(n=1024, c=channels))
    assert bool(torch.isfinite(y).all())
    bound = 7.2 if channels == 1 else 16
    assert float(y.abs().max()) <= bound
    assert float(y.abs().flatten().quantile(0.99)) <= (4 if channels == 3 else bound)
    if channels == 3:
        grey = pipe(_images(n=64, c=1).expand(-1, 3, -1, -1))
        assert (grey - grey.mean(1, keepdim=True)).abs().max() < 1e-5


GROUPS = {'blit': dict(xflip=1, rotate90=1, xint=1), 'geom': dict(scale=1, rotate=1, aniso=1, xfrac=1),
          'color': dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1), 'filter': dict(imgfilter=1),
          'noise': dict(noise=1), 'cutout': dict(cutout=1)}


@pytest.mark.slow
@pytest.mark.parametrize('group', sorted(GROUPS))
def test_ada_gradcheck_per_group(group):
    pipe = augment_ada.AdaPipe(**GROUPS[group])
    size = 24 if group == 'filter' else 8  # the band filter reaches 21 pixels
    x = _images(n=2, c=1 if group == 'filter' else 3, h=size, w=size, dtype=torch.float64).requires_grad_(True)
    p = torch.ones([])

    def fixed_draw(v):
        torch.manual_seed(8)
        return pipe(v, p)
    assert not torch.equal(fixed_draw(x), x)
    assert torch.autograd.gradcheck(fixed_draw, (x,))


def test_ada_second_derivative_through_the_geometry():
    pipe = augment_ada.AdaPipe(**GROUPS['geom'], **GROUPS['blit'])
    x = _images(n=1, c=1, h=6, w=6, dtype=torch.float64).requires_grad_(True)

    def fixed_draw(v):
        torch.manual_seed(10)
        return pipe(v, torch.ones([]))
    assert torch.autograd.gradgradcheck(fixed_draw, (x,))


def test_r1_double_backward_runs_through_the_full_ada_pipe():
    torch.manual_seed(11)
    D = _TinyD()
    loss = StyleGAN2Loss(G=None, D=D, r1_gamma=1, augment=augment.build_augment('ada', preset='bgcfnc', p=1.0))
    loss.accumulate_gradients('Dreg', _images(n=4, h=32, w=32), torch.zeros([4, 0]), None, None, gain=1)
    assert D.w.grad is not None and bool(torch.isfinite(D.w.grad)) and float(D.w.grad) > 0


def _after_step(ada, batch_idx, batch):
    """What the training loop does after step batch_idx: the due step callbacks (fsgan.callbacks; 'ada_p')."""
    from fsgan.callbacks import build_callbacks, run_callbacks
    state = EasyDict(augment=ada, batch_idx=batch_idx)
    run_callbacks(build_callbacks(EasyDict(batch=batch), state), 'step', state, EasyDict(batch=batch))


def test_adaptive_p_moves_by_the_formula_every_interval():
    ada = augment.build_augment('ada', p=0.5, target=0.6, ada_kimg=1, interval=4)
    step = 8 * 4 / (1 * 1000)  # batch x interval / (ada_kimg x 1000)
    for batch_idx in range(1, 4):  # sign mean 1 > 0.6, but not yet an interval
        ada.observe_real_logits(torch.ones([8, 1]))
        _after_step(ada, batch_idx, 8)
        assert float(ada.p) == 0.5
    ada.observe_real_logits(torch.tensor([[1.0], [-1.0], [2.0], [3.0]]))
    _after_step(ada, 4, 8)  # mean over the interval (26 + 2) / 28 > 0.6: up
    assert torch.equal(ada.p, torch.tensor(0.5) + step)
    for batch_idx in range(5, 9):  # mean 0.5 < 0.6: down
        ada.observe_real_logits(torch.tensor([[1.0], [1.0], [1.0], [-1.0]]))
        _after_step(ada, batch_idx, 8)
    assert torch.equal(ada.p, torch.tensor(0.5) + step - step)
    assert ada.tick_stats() == {'Progress/augment': float(ada.p)}
    low = augment.build_augment('ada', p=0.005, target=0.6, ada_kimg=1, interval=1)
    low.observe_real_logits(-torch.ones([8, 1]))
    _after_step(low, 1, 8)
    assert float(low.p) == 0  # clamped at 0
    fixed = augment.build_augment('ada', p=0.3, target=None)
    fixed.observe_real_logits(torch.ones([8, 1]))
    _after_step(fixed, 4, 8)
    assert float(fixed.p) == pytest.approx(0.3)


def test_ada_state_is_plain_buffers():
    ada = augment.build_augment('ada', p=0.25)
    assert sorted(ada.state_dict()) == ['p', 'sign_num', 'sign_sum']
    other = augment.build_augment('ada')
    other.load_state_dict(ada.state_dict(), strict=True)
    assert float(other.p) == 0.25


# ----------------------------------------------------------------------------- the loss and R1

class _TinyD(torch.nn.Module):
    """Logit = sum of squared pixels times a weight (R1's gradient depends on the image)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones([]))

    def forward(self, img, c):
        return (img.square().flatten(1).sum(1, keepdim=True) * self.w) / img[0].numel()


class _Recorder(augment.Augment):
    """Counts the images passing through and the real logits observed."""

    def __init__(self):
        super().__init__()
        self.seen, self.observed = 0, 0

    def forward(self, images):
        self.seen += images.shape[0]
        return images.flip(3)

    def observe_real_logits(self, logits):
        self.observed += logits.shape[0]


def test_r1_double_backward_runs_through_diffaug():
    torch.manual_seed(5)
    D = _TinyD()
    loss = StyleGAN2Loss(G=None, D=D, r1_gamma=1, augment=augment.build_augment('diffaug'))
    real = _images(n=4)
    loss.accumulate_gradients('Dreg', real, torch.zeros([4, 0]), None, None, gain=1)
    assert D.w.grad is not None and float(D.w.grad) > 0  # R1 = w^2 |2 x_aug / n|^2 grows with w


def test_every_D_phase_augments_reals():
    rec = _Recorder()
    loss = StyleGAN2Loss(G=None, D=_TinyD(), r1_gamma=1, augment=rec)
    loss.accumulate_gradients('Dreg', _images(n=4), torch.zeros([4, 0]), None, None, gain=1)
    assert rec.seen == 4 and rec.observed == 4


def test_the_class_loss_path_augments_too():
    rec = _Recorder()

    class CondD(_TinyD):
        def class_logits(self, img):  # [N, 2]
            return torch.stack([img.flatten(1).mean(1), img.flatten(1).std(1)], dim=1)
    loss = StyleGAN2Loss(G=None, D=CondD(), augment=rec, terms=build_loss_terms({'class': 1}))
    img = _images(n=4)
    logits, _ce = loss.run_D_classes(img, torch.eye(2)[[0, 1, 0, 1]])
    assert rec.seen == 4
    assert torch.allclose(logits[0, 0], img[0].flip(2).mean())  # D saw the augmented (flipped) images


def test_none_leaves_R1_gradients_bit_identical():
    grads = []
    for aug in (None, augment.build_augment('none')):
        D = _TinyD()
        StyleGAN2Loss(G=None, D=D, r1_gamma=3, augment=aug).accumulate_gradients(
            'Dreg', _images(n=4), torch.zeros([4, 0]), None, None, gain=1)
        grads.append(D.w.grad)
    assert torch.equal(grads[0], grads[1])


# ----------------------------------------------------------------------------- the CLI

def test_cli_options_land_in_training_options_and_bad_ones_fail(p1_path, target_dir, tmp_path):
    out = tmp_path / 'runs'
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--outdir', str(out), '--no-progress']
    res = _run(base + ['--aug', 'diffaug', '--diffaug-policy', 'translation,color', '--kimg', '0.004',
                       '--batch', '4', '--tick', '0.004'])
    assert res.exit_code == 0, res.output
    opts = read_training_options(_only_run(out) / 'training_options.json')
    assert opts['aug'] == 'diffaug' and opts['augment_kwargs'] == dict(name='diffaug', policy='translation,color')
    for args, message in ((['--aug', 'diffaug', '--diffaug-policy', 'color,zoom'], '--diffaug-policy'),
                          (['--diffaug-policy', 'color'], '--diffaug-policy needs --aug diffaug'),
                          (['--aug', 'bogus'], "Invalid value for '--aug'"),
                          (['--aug', 'ada', '--aug-p', '1.5'], "Invalid value for '--aug-p'"),
                          (['--aug', 'ada', '--augpipe', 'bgcx'], "Invalid value for '--augpipe'"),
                          (['--aug', 'fixed'], '--aug fixed needs --aug-p'),
                          (['--aug', 'fixed', '--aug-p', '0.2', '--ada-target', '0.5'], '--ada-target needs --aug ada'),
                          (['--aug-p', '0.2'], '--aug-p needs --aug ada or fixed'),
                          (['--aug', 'ada', '--ada-kimg', '0'], "Invalid value for '--ada-kimg'")):
        res = CliRunner().invoke(train_cli.main, base + args)
        assert res.exit_code != 0 and message in res.output, res.output
        assert 'Traceback' not in res.output


@pytest.mark.slow
def test_diffaug_trains_from_the_cli(p1_path, target_dir, tmp_path, one_thread):
    out = tmp_path / 'runs'
    res = _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', str(out),
                '--aug', 'diffaug', '--kimg', '0.2', '--batch', '4', '--tick', '0.1', '--snap', '2',
                '--no-progress', '--device', 'cpu'])
    assert res.exit_code == 0, res.output
    ticks = [json.loads(line) for line in (_only_run(out) / 'stats.jsonl').read_text().splitlines()]
    assert [t['kimg'] for t in ticks] == [0.1, 0.2]
    assert -1 <= ticks[-1]['stats']['Loss/signs/real'] <= 1
    assert [f for f in os.listdir(_only_run(out)) if f.startswith('network-snapshot-') and f.endswith('.pkl')]


def test_setup_resolves_every_mode(target_dir):
    def kwargs(**opts):
        c = run_setup.setup_training_config(target_dir, device='cpu', **opts)
        return c.aug, c.augment_kwargs
    assert kwargs() == kwargs(aug='none') == ('none', dict(name='none'))
    assert kwargs(aug='ada') == ('ada', dict(name='ada', preset='bgc', p=0.0, target=0.6, ada_kimg=500.0, interval=4))
    assert kwargs(aug='ada', aug_p=0.1, augpipe='bgcfnc', ada_target=0.7, ada_kimg=100) == (
        'ada', dict(name='ada', preset='bgcfnc', p=0.1, target=0.7, ada_kimg=100.0, interval=4))
    assert kwargs(aug='fixed', aug_p=0.3, augpipe='bg') == ('fixed', dict(name='ada', preset='bg', p=0.3, target=None))
    with pytest.raises(run_setup.SetupError, match='--aug-p: aug_p must be'):
        run_setup.setup_training_config(target_dir, device='cpu', aug='fixed', aug_p=-0.1)


def _stats(run_dir):
    return [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]


@pytest.mark.slow
def test_ada_trains_from_the_cli_and_p_moves(p1_path, target_dir, tmp_path, one_thread):
    out = tmp_path / 'runs'
    res = _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', str(out),
                '--aug', 'ada', '--ada-kimg', '1', '--kimg', '0.2', '--batch', '4', '--tick', '0.1', '--snap', '2',
                '--no-progress', '--device', 'cpu'])
    assert res.exit_code == 0, res.output
    ticks = _stats(_only_run(out))
    assert [t['kimg'] for t in ticks] == [0.1, 0.2]
    p = [t['stats']['Progress/augment'] for t in ticks]
    ck = torch.load(_only_run(out) / 'checkpoint.pt', weights_only=True)
    assert p[-1] == pytest.approx(float(ck['augment']['p'])) and max(p) > 0
    assert all(round(v / 0.016, 3).is_integer() for v in p)  # multiples of 4 x 4 / (1 x 1000)
    assert 'Loss/signs/real' in ticks[-1]['stats']


@pytest.mark.slow
def test_p_and_training_survive_resume_bit_exactly(p1_path, target_dir, tmp_path, one_thread):
    """ADA with p moving: 6 steps, stop (mid-interval), resume to 8, against 8 uninterrupted steps."""
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.008',
            '--snap', '1', '--no-progress', '--aug', 'ada', '--aug-p', '0.5', '--ada-kimg', '0.1',
            '--augpipe', 'bgcfnc', '--device', 'cpu']
    assert _run(base + ['--outdir', str(tmp_path / 'a'), '--kimg', '0.032']).exit_code == 0
    assert _run(base + ['--outdir', str(tmp_path / 'b'), '--kimg', '0.024']).exit_code == 0
    run_a, run_b = _only_run(tmp_path / 'a'), _only_run(tmp_path / 'b')
    opts = read_training_options(run_b / 'training_options.json')
    opts['kimg'] = 0.032
    write_training_options(run_b / 'training_options.json', opts)
    assert _run(['--resume-run', str(run_b), '--no-progress']).exit_code == 0
    ck_a = torch.load(run_a / 'checkpoint.pt', weights_only=True)
    ck_b = torch.load(run_b / 'checkpoint.pt', weights_only=True)
    assert float(ck_a['augment']['p']) != 0.5
    for name, t in ck_a['augment'].items():
        assert torch.equal(t, ck_b['augment'][name]), name
    for key in ('G', 'D', 'G_ema'):
        for name, t in ck_a[key].items():
            assert torch.equal(t, ck_b[key][name]), f'{key}.{name} differs after resume'
    assert [t['stats']['Progress/augment'] for t in _stats(run_a)] == [t['stats']['Progress/augment']
                                                                      for t in _stats(run_b)]


def test_run_folders_from_before_augmentation_resume(p1_path, target_dir, tmp_path, one_thread):
    out = tmp_path / 'runs'
    assert _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--outdir', str(out), '--kimg',
                 '0.004', '--batch', '4', '--tick', '0.004', '--no-progress']).exit_code == 0
    run_dir = _only_run(out)
    opts = read_training_options(run_dir / 'training_options.json')
    for key in ('aug', 'augment_kwargs'):
        del opts[key]
    opts['kimg'] = 0.008
    write_training_options(run_dir / 'training_options.json', opts)
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    del ck['augment']
    torch.save(ck, run_dir / 'checkpoint.pt')
    res = _run(['--resume-run', str(run_dir), '--no-progress'])
    assert res.exit_code == 0, res.output
    assert torch.load(run_dir / 'checkpoint.pt', weights_only=True)['cur_nimg'] == 8


@pytest.mark.parametrize('aug', ['ada', 'diffaug'])
def test_from_scratch_on_grayscale(tmp_path, aug, one_thread):
    from tests.test_scratch import SHOTS
    res = _run(['--target-dir', SHOTS, '--kimg', '0.016', '--batch', '8', '--tick', '0.008', '--pl-weight', '0',
                '--style-mixing', '0', '--outdir', str(tmp_path), '--no-progress', '--aug', aug]
               + (['--aug-p', '0.5'] if aug == 'ada' else []))
    assert res.exit_code == 0, res.output
    run_dir = _only_run(tmp_path)
    assert read_training_options(run_dir / 'training_options.json')['aug'] == aug
    assert torch.load(run_dir / 'checkpoint.pt', weights_only=True)['G_init_kwargs']['img_channels'] == 1


@pytest.mark.slow
def test_ada_two_process_resume_mid_interval_is_exact(p1_path, target_dir, tmp_path):
    """--gpus 2 on the CPU (gloo): the sign sums are all-reduced at every interval without a hang and p moves.
    Ticks of 3 steps end between ADA's adjustments (every 4 steps): each rank's pending sign sums go into the
    checkpoint, so a run stopped at a tick and resumed ends with the uninterrupted run's p and weights."""
    import subprocess
    import sys
    from tests.conftest import ROOT

    def train(out, *extra):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'train.py'), *extra, '--no-progress'],
                              capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert proc.returncode == 0, proc.stderr
        return _only_run(out)
    common = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--gpus', '2', '--device', 'cpu',
              '--batch', '4', '--tick', '0.012', '--snap', '1', '--aug', 'ada', '--aug-p', '0.2', '--ada-kimg',
              '0.01']
    whole = train(tmp_path / 'a', *common, '--outdir', str(tmp_path / 'a'), '--kimg', '0.024')
    half = train(tmp_path / 'b', *common, '--outdir', str(tmp_path / 'b'), '--kimg', '0.012')
    mid = torch.load(half / 'checkpoint.pt', weights_only=True)
    assert len(mid['augment_per_rank']) == 2 and all(a['sign_num'] > 0 for a in mid['augment_per_rank'])
    train(tmp_path / 'b', '--resume-run', str(half), '--kimg', '0.024')
    a, b = (torch.load(r / 'checkpoint.pt', weights_only=True) for r in (whole, half))
    assert float(a['augment']['p']) != 0.2 and torch.equal(a['augment']['p'], b['augment']['p'])
    for name, t in a['G'].items():
        assert torch.equal(t, b['G'][name]), name
