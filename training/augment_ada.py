"""The augmentation pipeline of ADA (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data", Sec. 2.2 and Appendix B), with the transform groups and presets of stylegan2-ada-pytorch.

Every transform is applied to each image independently with probability p x its multiplier (the preset
sets multipliers to 1). Groups, in order:
  blit      x-flip, 90-degree rotations, integer translation (up to 1/8 of the size)
  geom      isotropic scaling (log2 std 0.2), rotation (any angle; split into a pre- and a post-rotation
            so that P(either) = p), anisotropic scaling (log2 std 0.2), fractional translation (std 1/8)
  color     brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation (any angle),
            saturation (log2 std 1); hue and saturation only for 3 channels
  filter    amplification of 4 frequency bands (log2 std 1), power-normalised against a 1/f spectrum
  noise     additive Gaussian noise, its std |N(0, 0.1)|
  cutout    a zeroed square of half the size, centred anywhere
The blit and geom transforms compose into one inverse 2-D matrix per image, executed once: reflect-pad,
2x upsampling with the sym6 wavelet, bilinear sampling, sym6 downsampling. The colour transforms
compose into one 4x4 matrix in homogeneous RGB. Images [N, C, H, W] in [-1, 1], C = 1 or 3. Sampling uses
torch_utils.ops.grid_sample_gradfix (torch's CUDA grid_sample has no second derivative); the depthwise
convolutions of the band filter use torch's conv2d, whose second derivative exists on every device.
"""
import numpy as np
import torch

from torch_utils.ops import grid_sample_gradfix, upfirdn2d

# Low-pass decomposition filters of two Symlet wavelets (as PyWavelets lists them).
WAVELETS = {
    'sym2': [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    'sym6': [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
             0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
             -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148],
}

BLIT = dict(xflip=1, rotate90=1, xint=1)
GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
ADA_PRESETS = {  # --augpipe name -> probability multipliers, as stylegan2-ada-pytorch's presets
    'blit': BLIT, 'geom': GEOM, 'color': COLOR, 'filter': dict(imgfilter=1), 'noise': dict(noise=1),
    'cutout': dict(cutout=1),
    'bg': {**BLIT, **GEOM},
    'bgc': {**BLIT, **GEOM, **COLOR},
    'bgcf': {**BLIT, **GEOM, **COLOR, 'imgfilter': 1},
    'bgcfn': {**BLIT, **GEOM, **COLOR, 'imgfilter': 1, 'noise': 1},
    'bgcfnc': {**BLIT, **GEOM, **COLOR, 'imgfilter': 1, 'noise': 1, 'cutout': 1},
}


# ----------------------------------------------------------------------------- matrices

def batch_matrix(rows, like):
    """Rows of numbers or [N] tensors -> [N, len(rows), len(row)] with the dtype and device of `like`."""
    n = next((e.shape[0] for row in rows for e in row if isinstance(e, torch.Tensor)), 1)
    elems = [e.to(like.dtype) if isinstance(e, torch.Tensor) else torch.full([n], float(e), dtype=like.dtype,
                                                                             device=like.device)
             for row in rows for e in row]
    return torch.stack(elems, dim=-1).reshape(n, len(rows), len(rows[0]))


def translate2d(tx, ty, like):
    return batch_matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)


def scale2d(sx, sy, like):
    return batch_matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)


def rotate2d(theta, like):
    """Rotation by theta [N] radians (counter-clockwise in x-right, y-up axes)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return batch_matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], like)


def translate3d(t, like):
    """Homogeneous RGB offset by t [N] on every channel."""
    return batch_matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], like)


def scale3d(s, like):
    return batch_matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], like)


def rotate3d(axis, theta, like):
    """Rotation by theta [N] around the unit vector axis (3 numbers), Rodrigues' formula, homogeneous."""
    x, y, z = (float(a) for a in axis[:3])
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return batch_matrix([[x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
                         [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
                         [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
                         [0, 0, 0, 1]], like)


# ----------------------------------------------------------------------------- executing transforms

def warp_images(images, G_inv, Hz_geom, margin_step=8):
    """Resample images [N, C, H, W] at G_inv @ (output pixel) for G_inv [N, 3, 3] in pixel units centred
    on the image (x right, y down); Hz_geom: the separable 1-D low-pass filter (sym6) used to upsample 2x
    before bilinear sampling and to downsample after it. Outside the image: mirror reflection.

    The reflect padding covers every output corner's source plus the filter's reach, on all four sides
    alike, rounded up to a multiple of margin_step pixels, so that padded shapes recur from batch to batch
    (with a new padded shape per batch, the pipeline plus R1 took 0.4-1.4 s per 64 images of 64x64 on an
    H200, ten times its CPU time; per-shape cuDNN set-up is the suspected cause, not yet confirmed).
    """
    n, c, h, w = images.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    pad = Hz_geom.shape[0] // 4
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], dtype=G_inv.dtype,
                           device=G_inv.device)
    src = (G_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)        # [xy, N * 4]
    reach = src.abs().max(dim=1).values + pad * 2 - torch.tensor([cx, cy], dtype=src.dtype, device=src.device)
    margin = int(reach.max().clamp(min=0).ceil())
    margin = min(-(-margin // margin_step) * margin_step, min(w, h) - 1)  # reflect padding must stay < size
    images = torch.nn.functional.pad(images, [margin] * 4, mode='reflect')
    # Upsample 2x; pixel centres of the upsampled image sit at half-pixel offsets of the original.
    images = upfirdn2d.upsample2d(images, Hz_geom, up=2)
    G_inv = scale2d(2, 2, G_inv) @ G_inv @ scale2d(0.5, 0.5, G_inv)
    G_inv = translate2d(-0.5, -0.5, G_inv) @ G_inv @ translate2d(0.5, 0.5, G_inv)
    # Bilinear sampling in the normalised coordinates of affine_grid.
    out_h, out_w = (h + pad * 2) * 2, (w + pad * 2) * 2
    G_inv = scale2d(2 / images.shape[3], 2 / images.shape[2], G_inv) @ G_inv @ scale2d(out_w / 2, out_h / 2, G_inv)
    grid = torch.nn.functional.affine_grid(G_inv[:, :2, :], [n, c, out_h, out_w], align_corners=False)
    images = grid_sample_gradfix.grid_sample(images, grid)  # twice differentiable on CUDA too (R1)
    return upfirdn2d.downsample2d(images, Hz_geom, down=2, padding=-pad * 2, flip_filter=True)


def apply_color(images, C):
    """images [N, C, H, W] (C = 3: RGB; C = 1: luma, using the mean of the RGB rows) through the homogeneous
    colour matrices C [N, 4, 4] -> same shape."""
    n, channels, h, w = images.shape
    flat = images.reshape(n, channels, h * w)
    if channels == 3:
        flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
    elif channels == 1:
        rows = C[:, :3, :].mean(dim=1, keepdim=True)                            # [N, 1, 4]
        flat = flat * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
    else:
        raise ValueError(f'ADA colour transforms need 1 or 3 channels, got images of shape {list(images.shape)}')
    return flat.reshape(n, channels, h, w)


def band_filter_bank():
    """The 4-band filter bank [4, 43] built from the sym2 wavelet: rows from the lowest band (low-pass) to
    the highest; their sum is the identity filter."""
    lo = np.asarray(WAVELETS['sym2'])
    hi = lo * ((-1) ** np.arange(lo.size))
    lo2 = np.convolve(lo, lo[::-1]) / 2                                  # H(z) H(1/z) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2                                  # H(-z) H(-1/z) / 2
    bank = np.eye(4, 1)
    for band in range(1, 4):
        up = np.zeros([4, bank.shape[1] * 2 - 1])
        up[:, ::2] = bank                                                # upsample the earlier bands by 2
        bank = np.stack([np.convolve(row, lo2) for row in up])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start:start + hi2.size] += hi2
    return bank


def filter_bands(images, gains, bank):
    """Filter each image [N, C, H, W] with sum_b gains[n, b] x bank[b] (separably, reflect-padded); bank
    [bands, taps] -> same shape. Needs H, W > taps // 2."""
    n, c, h, w = images.shape
    pad = bank.shape[1] // 2
    if min(h, w) <= pad:
        raise ValueError(f'ADA image filtering needs images larger than {pad} pixels, got {h}x{w}')
    taps = (gains.to(bank.dtype) @ bank).to(images.dtype)                # [N, taps]
    taps = taps[:, None, :].repeat(1, c, 1).reshape(n * c, 1, -1)       # [N * C, 1, taps]
    x = torch.nn.functional.pad(images.reshape(1, n * c, h, w), [pad] * 4, mode='reflect')
    x = torch.nn.functional.conv2d(x, taps.unsqueeze(2), groups=n * c)
    x = torch.nn.functional.conv2d(x, taps.unsqueeze(3), groups=n * c)
    return x.reshape(n, c, h, w)


def cut_square(images, centre, size):
    """Zero, in each image, the pixels within size[n] / 2 of centre[n] ([N, 2] as (x, y) fractions of the
    width and height; size [N] as a fraction too) along both axes. images [N, C, H, W] -> same."""
    h, w = images.shape[2:]
    xs = (torch.arange(w, device=images.device, dtype=centre.dtype) + 0.5) / w                 # [W]
    ys = (torch.arange(h, device=images.device, dtype=centre.dtype) + 0.5) / h                 # [H]
    half = size[:, None] / 2
    outside_x = (xs[None, :] - centre[:, :1]).abs() >= half                                      # [N, W]
    outside_y = (ys[None, :] - centre[:, 1:]).abs() >= half                                      # [N, H]
    keep = outside_x[:, None, :] | outside_y[:, :, None]                                        # [N, H, W]
    return images * keep[:, None].to(images.dtype)


# ----------------------------------------------------------------------------- the pipeline

class AdaPipe(torch.nn.Module):
    """ADA's transforms with given probability multipliers; forward(images, p) draws new ones per call.

    The multipliers default to 0 (off); ADA_PRESETS turn groups on. The std / range constants are the
    paper's. Where no image of the batch draws a transform of a group, the group is skipped, so p = 0 is
    exactly the identity.
    """

    def __init__(self,
        xflip=0, rotate90=0, xint=0,            # blit: probability multipliers
        scale=0, rotate=0, aniso=0, xfrac=0,    # geom
        brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,  # color
        imgfilter=0, noise=0, cutout=0,         # filter, noise, cutout
        xint_max=0.125,                         # integer translation range, fraction of the size
        scale_std=0.2, aniso_std=0.2,           # log2 std of isotropic / anisotropic scaling
        rotate_max=1,                           # rotation range, 1 = full circle
        xfrac_std=0.125,                        # std of fractional translation, fraction of the size
        brightness_std=0.2, contrast_std=0.5,   # std of brightness offset, log2 std of contrast
        hue_max=1, saturation_std=1,            # hue range (1 = full circle), log2 std of saturation
        imgfilter_bands=(1, 1, 1, 1),           # probability multipliers of the 4 frequency bands
        imgfilter_std=1,                        # log2 std of band amplification
        noise_std=0.1,                          # std of the noise's std
        cutout_size=0.5,                        # cutout side, fraction of the size
    ):
        super().__init__()
        self.mult = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso,
                         xfrac=xfrac, brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue,
                         saturation=saturation, imgfilter=imgfilter, noise=noise, cutout=cutout)
        self.mult = {k: float(v) for k, v in self.mult.items()}
        self.const = dict(xint_max=xint_max, scale_std=scale_std, aniso_std=aniso_std, rotate_max=rotate_max,
                          xfrac_std=xfrac_std, brightness_std=brightness_std, contrast_std=contrast_std,
                          hue_max=hue_max, saturation_std=saturation_std, imgfilter_std=imgfilter_std,
                          noise_std=noise_std, cutout_size=cutout_size)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(WAVELETS['sym6']), persistent=False)
        self.register_buffer('Hz_fbank', torch.as_tensor(band_filter_bank(), dtype=torch.float32), persistent=False)

    def forward(self, images, p):
        """images [N, C, H, W], p: strength (tensor []) -> augmented images [N, C, H, W]."""
        assert images.ndim == 4, f'expected images [N, C, H, W], got {list(images.shape)}'
        images = self.geometry(images, p)
        images = self.color(images, p)
        images = self.image_filter(images, p)
        return self.corruptions(images, p)

    def _draw(self, like, prob, value, default, shape=None):
        """Per image: `value` where rand < prob, else `default` (value [N, ...], default a number)."""
        chosen = torch.rand([like.shape[0]] + list(shape or [1] * (value.ndim - 1)), dtype=like.dtype,
                            device=like.device) < prob
        return torch.where(chosen, value, torch.full_like(value, default))

    def _randn(self, like, *shape):
        return torch.randn([like.shape[0], *shape], dtype=like.dtype, device=like.device)

    def _rand(self, like, *shape):
        return torch.rand([like.shape[0], *shape], dtype=like.dtype, device=like.device)

    def geometry(self, images, p):
        """blit and geom groups: one inverse matrix per image (output pixel -> input pixel), then warp_images."""
        m, k = self.mult, self.const
        _n, _c, h, w = images.shape
        eye = torch.eye(3, dtype=images.dtype, device=images.device)
        G_inv = eye.expand(images.shape[0], 3, 3)
        if m['xflip'] > 0:
            flip = self._draw(images, m['xflip'] * p, torch.floor(self._rand(images) * 2), 0)
            G_inv = G_inv @ scale2d(1 - 2 * flip, 1, images)  # its own inverse
        if m['rotate90'] > 0:
            quarters = self._draw(images, m['rotate90'] * p, torch.floor(self._rand(images) * 4), 0)
            G_inv = G_inv @ rotate2d(np.pi / 2 * quarters, images)
        if m['xint'] > 0:
            t = self._draw(images, m['xint'] * p, (self._rand(images, 2) * 2 - 1) * k['xint_max'], 0)
            G_inv = G_inv @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h), images)
        if m['scale'] > 0:
            s = self._draw(images, m['scale'] * p, torch.exp2(self._randn(images) * k['scale_std']), 1)
            G_inv = G_inv @ scale2d(1 / s, 1 / s, images)
        p_rot = 1 - torch.sqrt((1 - m['rotate'] * p).clamp(0, 1))  # pre or post rotation: probability p
        for stage in ('pre', 'aniso', 'post'):
            if stage == 'aniso' and m['aniso'] > 0:
                s = self._draw(images, m['aniso'] * p, torch.exp2(self._randn(images) * k['aniso_std']), 1)
                G_inv = G_inv @ scale2d(1 / s, s, images)
            elif stage != 'aniso' and m['rotate'] > 0:
                theta = self._draw(images, p_rot, (self._rand(images) * 2 - 1) * np.pi * k['rotate_max'], 0)
                G_inv = G_inv @ rotate2d(theta, images)
        if m['xfrac'] > 0:
            t = self._draw(images, m['xfrac'] * p, self._randn(images, 2) * k['xfrac_std'], 0)
            G_inv = G_inv @ translate2d(-t[:, 0] * w, -t[:, 1] * h, images)
        if torch.equal(G_inv, eye.expand_as(G_inv)):
            return images
        return warp_images(images, G_inv, self.Hz_geom)

    def color(self, images, p):
        """color group: one homogeneous 4x4 matrix per image, then apply_color."""
        m, k = self.mult, self.const
        eye = torch.eye(4, dtype=images.dtype, device=images.device)
        C = eye.expand(images.shape[0], 4, 4)
        if m['brightness'] > 0:
            b = self._draw(images, m['brightness'] * p, self._randn(images) * k['brightness_std'], 0)
            C = translate3d(b, images) @ C
        if m['contrast'] > 0:
            c = self._draw(images, m['contrast'] * p, torch.exp2(self._randn(images) * k['contrast_std']), 1)
            C = scale3d(c, images) @ C
        luma = torch.tensor([1, 1, 1, 0], dtype=images.dtype, device=images.device) / np.sqrt(3)
        luma_proj = torch.outer(luma, luma)  # projection onto the luma axis
        if m['lumaflip'] > 0:
            flip = self._draw(images, m['lumaflip'] * p, torch.floor(self._rand(images) * 2), 0)
            C = (eye - 2 * luma_proj * flip[:, None, None]) @ C  # Householder reflection
        if m['hue'] > 0 and images.shape[1] > 1:
            theta = self._draw(images, m['hue'] * p, (self._rand(images) * 2 - 1) * np.pi * k['hue_max'], 0)
            C = rotate3d(luma.tolist(), theta, images) @ C
        if m['saturation'] > 0 and images.shape[1] > 1:
            s = self._draw(images, m['saturation'] * p, torch.exp2(self._randn(images) * k['saturation_std']), 1)
            C = (luma_proj + (eye - luma_proj) * s[:, None, None]) @ C
        if torch.equal(C, eye.expand_as(C)):
            return images
        return apply_color(images, C)

    def image_filter(self, images, p):
        """filter group: random gains of the 4 bands, power-normalised against the 1/f spectrum (10, 1, 1, 1)."""
        if self.mult['imgfilter'] <= 0:
            return images
        bands = self.Hz_fbank.shape[0]
        expected_power = torch.tensor([10, 1, 1, 1], dtype=images.dtype, device=images.device) / 13
        gains = torch.ones([images.shape[0], bands], dtype=images.dtype, device=images.device)
        chosen = torch.zeros([images.shape[0]], dtype=torch.bool, device=images.device)
        for band, strength in enumerate(self.imgfilter_bands):
            t_band = torch.exp2(self._randn(images) * self.const['imgfilter_std'])
            on = self._rand(images) < self.mult['imgfilter'] * p * strength
            t_band = torch.where(on, t_band, torch.ones_like(t_band))
            chosen = chosen | on
            t = torch.where(torch.arange(bands, device=images.device) == band, t_band[:, None], 1.0)
            gains = gains * t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt()
        if not bool(chosen.any()):
            return images
        return filter_bands(images, gains, self.Hz_fbank)

    def corruptions(self, images, p):
        """noise and cutout groups."""
        m, k = self.mult, self.const
        if m['noise'] > 0:
            sigma = self._draw(images, m['noise'] * p, self._randn(images, 1, 1, 1).abs() * k['noise_std'], 0)
            images = images + torch.randn_like(images) * sigma
        if m['cutout'] > 0:
            size = self._draw(images, m['cutout'] * p, torch.full([images.shape[0]], float(k['cutout_size']),
                                                                  dtype=images.dtype, device=images.device), 0)
            images = cut_square(images, self._rand(images, 2), size)
        return images
