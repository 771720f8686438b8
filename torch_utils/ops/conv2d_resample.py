"""2-D convolution with optional up/downsampling by a FIR filter (StyleGAN2's conv layers).

`conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter)` keeps
stylegan2-ada-pytorch's signature and chooses the same evaluation order, so results match
its networks to float32 rounding.

`compute_dtype(torch.bfloat16)` runs the float32 convolutions inside it on bfloat16 copies of their
input and weight (float32 accumulation in oneDNN/cuDNN; the result, rounded to bfloat16, is returned as
float32): about 3x
faster convolutions on CPUs with AMX or AVX512-BF16, at bfloat16's 8 mantissa bits. Outside it (the
default) nothing changes. `active_compute_dtype()` tells other layers which setting is in force.
"""
import contextlib

import torch

from . import upfirdn2d

_compute_dtype = None  # None: convolve in the input's dtype; else float32 convolutions run in this dtype


@contextlib.contextmanager
def compute_dtype(dtype):
    """Within the block, float32 convolutions compute in `dtype` (torch.bfloat16) and return float32;
    dtype None leaves them alone. Restores the previous setting on exit, also after an error."""
    global _compute_dtype
    if dtype not in (None, torch.bfloat16):
        raise ValueError(f'compute_dtype: {dtype} is not supported; use torch.bfloat16 or None')
    previous, _compute_dtype = _compute_dtype, dtype
    try:
        yield
    finally:
        _compute_dtype = previous


def active_compute_dtype():
    """The dtype float32 convolutions compute in at this moment: None (their own) or torch.bfloat16."""
    return _compute_dtype


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d (or conv_transpose2d); flip_weight=False turns correlation into convolution."""
    out_channels, in_channels_per_group, kh, kw = w.shape
    if not flip_weight and (kh > 1 or kw > 1):
        w = w.flip([2, 3])
    if _compute_dtype is not None and x.dtype == torch.float32:
        return _conv_in(_compute_dtype, x, w, stride, padding, groups, transpose)
    if transpose:
        return torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return torch.nn.functional.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _conv_in(dtype, x, w, stride, padding, groups, transpose):
    """The convolution of _conv on `dtype` copies of x and w, returned in x's dtype (autograd runs through
    the casts, so gradients and double gradients are computed in `dtype` too)."""
    x_low, w_low = x.to(dtype), w.to(dtype)
    conv = torch.nn.functional.conv_transpose2d if transpose else torch.nn.functional.conv2d
    return conv(x_low, w_low, stride=stride, padding=padding, groups=groups).to(x.dtype)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Convolve x [N, C_in, H, W] with w [C_out, C_in // groups, kh, kw], resampling by f.

    f: filter from upfirdn2d.setup_filter (needed when up > 1 or down > 1); padding is applied
    at the input resolution (after upsampling); returns [N, C_out, H * up // down, W * up // down]
    for the usual 'same' padding.
    """
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    assert isinstance(w, torch.Tensor) and w.ndim == 4 and w.dtype == x.dtype
    assert f is None or (isinstance(f, torch.Tensor) and f.ndim in (1, 2) and f.dtype == torch.float32)
    assert isinstance(up, int) and up >= 1
    assert isinstance(down, int) and down >= 1
    assert isinstance(groups, int) and groups >= 1
    kh, kw = w.shape[2:]
    pad = _resampling_padding(f, up, down, padding)
    px0, px1, py0, py1 = pad
    is_1x1 = (kw == 1 and kh == 1)

    if is_1x1 and down > 1 and up == 1:
        # 1x1 conv commutes with the filter: downsample first (fewer pixels to convolve).
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if is_1x1 and up > 1 and down == 1:
        # 1x1 conv first, then upsample.
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)

    if down > 1 and up == 1:
        # Filter, then strided conv.
        x = upfirdn2d.upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        return _transposed_conv_then_filter(x, w, f, up, down, pad, groups, flip_weight, flip_filter)

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        # Plain conv with symmetric padding.
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # General case: pad/upsample with upfirdn2d, conv, then downsample.
    x = upfirdn2d.upfirdn2d(x, f if up > 1 else None, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def _resampling_padding(f, up, down, padding):
    """[px0, px1, py0, py1]: the conv padding plus what the resampling filter f needs for up/down."""
    fw, fh = upfirdn2d._get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return [px0, px1, py0, py1]


def _transposed_conv_then_filter(x, w, f, up, down, pad, groups, flip_weight, flip_filter):
    """up > 1: transposed strided conv, then filter (and downsample by f when down > 1 too)."""
    out_channels, in_channels_per_group, kh, kw = w.shape
    if groups == 1:
        w = w.transpose(0, 1)
    else:
        w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
        w = w.transpose(1, 2).reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
    px0, px1, py0, py1 = pad
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
    x = upfirdn2d.upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                            flip_filter=flip_filter)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x
