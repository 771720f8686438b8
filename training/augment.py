"""Augmentations of every image D sees (reals and fakes, every loss phase): a registry of kinds.

Each kind builds an `Augment`, an nn.Module mapping images [N, C, H, W] in [-1, 1] (C = 1 or 3) to
the same shape, differentiable twice (R1 takes the gradient of D's logits through it). Its state
(ADA's strength p) is buffers, so it travels in checkpoint.pt as plain tensors. The training loop
calls two hooks on it: `observe_real_logits` (from the loss) and `tick_stats`; ADA's adaptive p moves in
`AdaAugment.adjust`, which a step callback calls (fsgan/callbacks/ada.py).

  none     identity (today's training)
  diffaug  DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
           Training"): policies color, translation, cutout, every transform on every image
  ada      the augmentation pipeline of ADA (Karras et al. 2020, "Training Generative Adversarial
           Networks with Limited Data"), each transform applied with probability p x its
           multiplier; p fixed, or adapted to D's overfitting (training.augment_ada)
"""
from dataclasses import dataclass, field
from typing import Callable, Dict

import numpy as np
import torch

from dnnlib.registry import Registry
from torch_utils import distributed
from training.augment_ada import ADA_PRESETS, AdaPipe


class Augment(torch.nn.Module):
    """The identity, and the hooks every augmentation offers the training loop (no-ops here)."""

    def forward(self, images):
        """images [N, C, H, W] -> [N, C, H, W]."""
        return images

    def observe_real_logits(self, logits):
        """The loss hands over D's logits [N, 1] of the (augmented) reals of every D phase."""

    def tick_stats(self):
        """{stat name: number} to record at each tick (stats.jsonl, TensorBoard)."""
        return {}


@dataclass(frozen=True)
class AugmentSpec:
    """A kind of augmentation."""
    name: str
    build: Callable             # build(**options) -> Augment
    description: str
    options: Dict[str, object] = field(default_factory=dict)  # option name -> default


AUGMENTATIONS = Registry('augmentation')


def register(spec: AugmentSpec) -> AugmentSpec:
    """Add a kind of augmentation to the registry (one line per kind)."""
    return AUGMENTATIONS.register(spec)


def build_augment(name='none', **options):
    """An Augment of kind `name` with `options` (unknown options are an error naming the known ones)."""
    return AUGMENTATIONS.lookup(name).build(**AUGMENTATIONS.with_defaults(name, options))


register(AugmentSpec(name='none', build=Augment, description='no augmentation'))


# ----------------------------------------------------------------------------- DiffAugment

def adjust_color(x, brightness, saturation, contrast):
    """DiffAugment's colour transform with given per-image factors, each [N]:
    x + brightness, then channel spread around the per-pixel channel mean x saturation, then spread
    around the image mean x contrast. x [N, C, H, W] -> same (saturation does nothing for C = 1)."""
    def per_image(v):
        return v.to(x.dtype).reshape(-1, 1, 1, 1)
    x = x + per_image(brightness)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * per_image(saturation) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * per_image(contrast) + mean


def shift_images(x, dy, dx):
    """Move each image's content by integer pixels dy, dx (int64 [N] each, + = down / right), filling
    with zeros: out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]], 0 outside. x [N, C, H, W] -> same."""
    n, c, h, w = x.shape
    pad_y, pad_x = int(dy.abs().max()), int(dx.abs().max())
    padded = torch.nn.functional.pad(x, [pad_x, pad_x, pad_y, pad_y])  # [N, C, H + 2 pad_y, W + 2 pad_x]
    rows = torch.arange(h, device=x.device)[None, :] - dy.to(x.device)[:, None] + pad_y  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] - dx.to(x.device)[:, None] + pad_x  # [N, W]
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def cut_out(x, top, left, size_h, size_w):
    """Zero the rectangle rows [top, top + size_h) x cols [left, left + size_w) of each image (int64 [N]
    each; the parts outside the image are ignored). x [N, C, H, W] -> same."""
    h, w = x.shape[2:]
    rows = torch.arange(h, device=x.device)[None, :] - top.to(x.device)[:, None]     # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] - left.to(x.device)[:, None]    # [N, W]
    inside = ((rows >= 0) & (rows < size_h))[:, :, None] & ((cols >= 0) & (cols < size_w))[:, None, :]
    return x * (~inside).to(x.dtype)[:, None]


def random_color(x):
    """Brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), per image."""
    n = x.shape[0]
    brightness = torch.rand([n], dtype=x.dtype, device=x.device) - 0.5
    saturation = torch.rand([n], dtype=x.dtype, device=x.device) * 2
    contrast = torch.rand([n], dtype=x.dtype, device=x.device) + 0.5
    return adjust_color(x, brightness, saturation, contrast)


def random_translation(x, ratio=0.125):
    """Integer translation by up to round(ratio x size) pixels in each direction, zero padded."""
    n, _c, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_y, max_y + 1, [n], device=x.device)
    dx = torch.randint(-max_x, max_x + 1, [n], device=x.device)
    return shift_images(x, dy, dx)


def random_cutout(x, ratio=0.5):
    """Zero a rectangle of round(ratio x size) pixels per side centred anywhere in the image."""
    n, _c, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre_y = torch.randint(0, h + (1 - size_h % 2), [n], device=x.device)
    centre_x = torch.randint(0, w + (1 - size_w % 2), [n], device=x.device)
    return cut_out(x, centre_y - size_h // 2, centre_x - size_w // 2, size_h, size_w)


DIFFAUG_POLICIES = {'color': random_color, 'translation': random_translation, 'cutout': random_cutout}


def parse_diffaug_policy(policy):
    """'color,translation,cutout' -> ('color', 'translation', 'cutout'); ValueError names unknown parts."""
    names = tuple(p.strip() for p in str(policy).split(',') if p.strip())
    unknown = [p for p in names if p not in DIFFAUG_POLICIES]
    if unknown or not names:
        raise ValueError(f'DiffAugment policy {policy!r}: expected comma-separated names from '
                         f'{", ".join(DIFFAUG_POLICIES)}' + (f' (unknown: {", ".join(unknown)})' if unknown else ''))
    return names


class DiffAugment(Augment):
    """DiffAugment: every policy's random transform on every image, in the policy's order."""

    def __init__(self, policy='color,translation,cutout'):
        super().__init__()
        self.policy = parse_diffaug_policy(policy)

    def forward(self, images):
        for name in self.policy:
            images = DIFFAUG_POLICIES[name](images)
        return images

    def extra_repr(self):
        return f'policy={",".join(self.policy)}'


register(AugmentSpec(name='diffaug', build=DiffAugment, description='DiffAugment (Zhao et al. 2020)',
                     options=dict(policy='color,translation,cutout')))


# ----------------------------------------------------------------------------- ADA

class AdaAugment(Augment):
    """ADA's pipeline (training.augment_ada) at strength p, a buffer; with a target, p adapts.

    Adaptive p (ADA Sec. 2.3): every `interval` steps (fsgan's 'ada_p' callback calls adjust), r_t =
    E[sign(D(augmented real))] over those steps (all processes) and p <- max(0, p + sign(r_t - target) x
    batch x interval / (ada_kimg x 1000)), so p can move by 1 in ada_kimg thousand images. The running sums
    of signs are buffers as well, so a resumed run continues exactly.
    """

    def __init__(self,
        preset='bgc',           # Transform groups (ADA_PRESETS).
        p=0.0,                  # Strength: the fixed value, or the start value when adaptive.
        target=0.6,             # Target of E[sign(D(real))]; None = fixed p.
        ada_kimg=500,           # Thousands of images for p to move by 1.
        interval=4,             # Steps between adjustments.
    ):
        super().__init__()
        if preset not in ADA_PRESETS:
            raise ValueError(f'ADA preset {preset!r}: choose one of {", ".join(ADA_PRESETS)}')
        self.preset, self.target, self.ada_kimg, self.interval = preset, target, float(ada_kimg), int(interval)
        self.pipe = AdaPipe(**ADA_PRESETS[preset])
        self.register_buffer('p', torch.tensor(float(p)))
        self.register_buffer('sign_sum', torch.zeros([], dtype=torch.float64))  # since the last adjustment
        self.register_buffer('sign_num', torch.zeros([], dtype=torch.float64))

    def forward(self, images):
        return self.pipe(images, self.p)

    def observe_real_logits(self, logits):
        if self.target is not None:
            self.sign_sum += logits.detach().sign().sum().to(torch.float64)
            self.sign_num += logits.numel()

    def adjust(self, nimg):
        """Adaptive p: move p by sign(r_t - target) x nimg / (ada_kimg x 1000), r_t the mean sign of the real
        logits observed since the last call (all processes), nimg the images seen since then (batch x interval,
        all processes); the sums start again. Nothing happens with a fixed p or without observations."""
        if self.target is None:
            return
        sums = torch.stack([self.sign_sum, self.sign_num])
        if distributed.world_size() > 1:
            torch.distributed.all_reduce(sums)
        self.sign_sum.zero_()
        self.sign_num.zero_()
        if float(sums[1]) == 0:
            return
        step = np.sign(float(sums[0] / sums[1]) - self.target) * nimg / (self.ada_kimg * 1000)
        self.p.copy_((self.p + step).clamp(min=0))

    def tick_stats(self):
        return {'Progress/augment': float(self.p)}

    def extra_repr(self):
        return f'preset={self.preset}, target={self.target}, ada_kimg={self.ada_kimg:g}, interval={self.interval}'


register(AugmentSpec(name='ada', build=AdaAugment, description='ADA (Karras et al. 2020), fixed or adaptive p',
                     options=dict(preset='bgc', p=0.0, target=0.6, ada_kimg=500, interval=4)))
