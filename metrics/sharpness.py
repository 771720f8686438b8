"""No-reference sharpness: Kumar, Chen & Doermann, "Sharpness estimation for document and scene images"
(ICPR 2012), with the conventions of the `pydom` implementation (re-implemented here, vectorised).

For an RGB uint8 image (axis 0 is called "x" as in pydom, axis 1 "y"):

1. Grey I: OpenCV's uint8 luma, round((4899 R + 9617 G + 1868 B) / 2^14), i.e. 0.299 R + 0.587 G + 0.114 B.
2. M: 3 x 3 median of I with replicated borders, divided by 255.
3. Edge maps from I (not M): g_x[i] = 0.5 I[i+1] - 0.5 I[i-1] along x (zero outside the image);
   E_x = |g_x| / (max(g_x) + 1e-8) > edge_threshold (max of the signed values, over the whole image);
   the same along y.
4. Difference of differences: D_x[i] = |M[i+2] - 2 M[i] + M[i-2]| (zero outside); contrast
   C_x[i] = |M[i] - M[i-1]| (M[-1] = 0), kept only where E_x.
5. For every row i with width <= i < H - width: S_x[i] = sum_{r=i-width}^{i+width-1} D_x[r] / the same
   sum of C_x, or 0 when that contrast sum is <= 1e-3; rows outside that range have S_x = 0.
6. R_x = #(E_x and S_x >= sharpness_threshold) / (#E_x + 1e-8); same for y; score = sqrt(R_x^2 + R_y^2),
   in [0, sqrt(2)].

Steps 4-6 use float64 in pydom's order of operations (window sums added row by row). Ratios that equal the
threshold exactly in real arithmetic (frequent: a clean step edge gives 2) are therefore decided by float
rounding in the same operation order as pydom's.
"""

import numpy as np
import scipy.ndimage


def luma_uint8(img):
    """[H, W, 3] uint8 RGB -> [H, W] uint8 grey, OpenCV's fixed-point 0.299 R + 0.587 G + 0.114 B."""
    rgb = img.astype(np.int64)
    return ((rgb[..., 0] * 4899 + rgb[..., 1] * 9617 + rgb[..., 2] * 1868 + (1 << 13)) >> 14).astype(np.uint8)


def _shift(a, k, axis):
    """out[i] = a[i + k] along `axis`, zero where i + k falls outside."""
    out = np.zeros_like(a)
    n = a.shape[axis]
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    if k >= 0:
        src[axis], dst[axis] = slice(k, n), slice(0, max(n - k, 0))
    else:
        src[axis], dst[axis] = slice(0, max(n + k, 0)), slice(-k, n)
    out[tuple(dst)] = a[tuple(src)]
    return out


def _axis_ratio(grey, med, axis, width, sharpness_threshold, edge_threshold):
    g = grey.astype(np.float64)
    grad = 0.5 * _shift(g, 1, axis) - 0.5 * _shift(g, -1, axis)
    edges = np.abs(grad) / (grad.max() + 1e-8) > edge_threshold
    dom = np.abs(_shift(med, 2, axis) - 2 * med + _shift(med, -2, axis))
    contrast = np.abs(med - _shift(med, -1, axis)) * edges
    n = med.shape[axis]
    sharp = np.zeros(med.shape, dtype=bool)
    if n > 2 * width:
        def window_sum(a):
            # rows i - width .. i + width - 1 for i in [width, n - width), added in that order
            parts = [np.take(a, np.arange(k, k + n - 2 * width), axis=axis) for k in range(2 * width)]
            total = parts[0].copy()
            for p in parts[1:]:
                total += p
            return total

        num, den = window_sum(dom), window_sum(contrast)
        ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-3)
        index = [slice(None)] * med.ndim
        index[axis] = slice(width, n - width)
        sharp[tuple(index)] = ratio >= sharpness_threshold
    return np.count_nonzero(sharp & edges) / (np.count_nonzero(edges) + 1e-8)


def sharpness(img, width=2, sharpness_threshold=2.0, edge_threshold=1e-4):
    """Sharpness score (float in [0, sqrt(2)]) of one [H, W, 3] uint8 RGB image; see the module docstring."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'expected an [H, W, 3] uint8 image, got {img.shape} {img.dtype}')
    grey = luma_uint8(img)
    med = scipy.ndimage.median_filter(grey, size=3, mode='nearest').astype(np.float64) / 255.0
    rx = _axis_ratio(grey, med, 0, width, sharpness_threshold, edge_threshold)
    ry = _axis_ratio(grey, med, 1, width, sharpness_threshold, edge_threshold)
    return float(np.sqrt(rx * rx + ry * ry))
