"""Augmentation of D's inputs (training.augment): identities, ranges, gradients, training hooks, the CLI."""
import json
import os

import pytest
import torch
from click.testing import CliRunner

from scripts import train as train_cli
from training import augment
from training.loss import StyleGAN2Loss


def _images(n=4, c=3, h=8, w=8, dtype=torch.float32, seed=0):
    """Images [n, c, h, w] uniform in [-1, 1]."""
    return torch.rand([n, c, h, w], generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def _run(args):
    return CliRunner().invoke(train_cli.main, args, catch_exceptions=False)


def _only_run(out):
    (run_dir,) = [out / d for d in os.listdir(out)]
    return run_dir


# ----------------------------------------------------------------------------- registry

def test_registry_lists_every_kind_and_rejects_unknown_names_and_options():
    assert {'none', 'diffaug'} <= set(augment.AUGMENTATIONS)
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


# ----------------------------------------------------------------------------- the CLI

def test_cli_options_land_in_training_options_and_bad_ones_fail(p1_path, target_dir, tmp_path):
    out = tmp_path / 'runs'
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--outdir', str(out), '--no-progress']
    res = _run(base + ['--aug', 'diffaug', '--diffaug-policy', 'translation,color', '--kimg', '0.004',
                       '--batch', '4', '--tick', '0.004'])
    assert res.exit_code == 0, res.output
    opts = json.loads((_only_run(out) / 'training_options.json').read_text())
    assert opts['aug'] == 'diffaug' and opts['augment_kwargs'] == dict(name='diffaug', policy='translation,color')
    for args, message in ((['--aug', 'diffaug', '--diffaug-policy', 'color,zoom'], '--diffaug-policy'),
                          (['--diffaug-policy', 'color'], '--diffaug-policy needs --aug diffaug'),
                          (['--aug', 'bogus'], "Invalid value for '--aug'")):
        res = CliRunner().invoke(train_cli.main, base + args)
        assert res.exit_code != 0 and message in res.output, res.output
        assert 'Traceback' not in res.output


def test_diffaug_trains_from_the_cli(p1_path, target_dir, tmp_path, one_thread):
    out = tmp_path / 'runs'
    res = _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', str(out),
                '--aug', 'diffaug', '--kimg', '0.2', '--batch', '4', '--tick', '0.1', '--snap', '2',
                '--no-progress', '--device', 'cpu'])
    assert res.exit_code == 0, res.output
    ticks = [json.loads(line) for line in (_only_run(out) / 'stats.jsonl').read_text().splitlines()]
    assert [t['kimg'] for t in ticks] == [0.1, 0.2]
    assert -1 <= ticks[-1]['stats']['Loss/signs/real'] <= 1
    assert os.path.isfile(_only_run(out) / 'network-snapshot-000000.pkl')
