"""2-D convolution with optional up/downsampling by a FIR filter (StyleGAN2's conv layers).

`conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter)` keeps
stylegan2-ada-pytorch's signature and chooses the same evaluation order, so results match
its networks to float32 rounding.
"""
import torch

from . import upfirdn2d


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d (or conv_transpose2d); flip_weight=False turns correlation into convolution."""
    out_channels, in_channels_per_group, kh, kw = w.shape
    if not flip_weight and (kh > 1 or kw > 1):
        w = w.flip([2, 3])
    if transpose:
        return torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return torch.nn.functional.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _resample_padding(f, up, down, padding):
    """[px0, px1, py0, py1]: the conv padding plus what the resampling filter f needs for up / down."""
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


def _transposed_up(x, w, f, up, down, pad, groups, flip_weight, flip_filter):
    """Transposed strided conv, then filter (and downsample if also asked); pad from _resample_padding."""
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
    pad = _resample_padding(f, up, down, padding)
    px0, px1, py0, py1 = pad
    is_1x1 = w.shape[2] == 1 and w.shape[3] == 1

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
        return _transposed_up(x, w, f, up, down, pad, groups, flip_weight, flip_filter)

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        # Plain conv with symmetric padding.
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # General case: pad/upsample with upfirdn2d, conv, then downsample.
    x = upfirdn2d.upfirdn2d(x, f if up > 1 else None, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x
