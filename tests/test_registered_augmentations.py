"""The same checks for every registered augmentation (training.augment.AUGMENTATIONS).

Each kind maps [N, C, H, W] to the same shape for C = 1 and 3, is differentiable twice (R1 takes D's gradient
through it), reports its tick statistics as numbers, and its state travels as buffers (checkpoint.pt).
"""
import math

import pytest
import torch

from training.augment import AUGMENTATIONS, build_augment

# Options that make every kind actually transform the images (ADA: p = 1 instead of its default 0).
ACTIVE = {'ada': dict(p=1.0)}


def _images(channels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand([4, channels, 16, 16], generator=gen) * 2 - 1).requires_grad_(True)


@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('name', sorted(AUGMENTATIONS))
def test_shape_and_second_derivative(name, channels):
    aug = build_augment(name, **ACTIVE.get(name, {}))
    x = _images(channels)
    torch.manual_seed(0)
    y = aug(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    (grad,) = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum() ** 2, x,
                                  create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    assert torch.isfinite(second).all()
    if name != 'none':
        assert not torch.equal(y, x), f'{name} left the images unchanged'


@pytest.mark.parametrize('name', sorted(AUGMENTATIONS))
def test_tick_stats_and_state_round_trip(name):
    aug = build_augment(name, **ACTIVE.get(name, {}))
    aug.observe_real_logits(torch.ones([4, 1]))
    stats = aug.tick_stats()
    assert all(isinstance(k, str) and math.isfinite(float(v)) for k, v in stats.items())
    copy = build_augment(name, **ACTIVE.get(name, {}))
    copy.load_state_dict(aug.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(aug.state_dict().values(), copy.state_dict().values()))


def test_none_is_the_identity():
    x = _images(3)
    assert build_augment('none')(x) is x
