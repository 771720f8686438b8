"""Sharpness (Kumar et al. 2012, pydom conventions) against a plain loop reference written from the paper."""

import numpy as np
import pytest
import scipy.ndimage

from metrics.sharpness import luma_uint8, sharpness


def reference_sharpness(img, width=2, thr=2.0, edge_thr=1e-4):
    """Straightforward per-pixel loops in floating point; slow, for small images only."""
    h, w, _ = img.shape
    grey = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            r, g, b = (float(v) for v in img[i, j])
            grey[i, j] = np.floor(0.299 * r + 0.587 * g + 0.114 * b + 0.5)
    padded = np.pad(grey, 1, mode='edge')
    med = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            med[i, j] = np.median(padded[i:i + 3, j:j + 3]) / 255.0

    def at(a, i, j):
        return a[i, j] if 0 <= i < h and 0 <= j < w else 0.0

    ratios = []
    for di, dj in ((1, 0), (0, 1)):  # "x" runs along rows (axis 0), "y" along columns
        grad = np.zeros((h, w))
        dom = np.zeros((h, w))
        con = np.zeros((h, w))
        for i in range(h):
            for j in range(w):
                grad[i, j] = 0.5 * at(grey, i + di, j + dj) - 0.5 * at(grey, i - di, j - dj)
                dom[i, j] = abs(at(med, i + 2 * di, j + 2 * dj) - 2 * med[i, j] + at(med, i - 2 * di, j - 2 * dj))
                con[i, j] = abs(med[i, j] - at(med, i - di, j - dj))
        gmax = grad.max()
        edge = np.abs(grad) / (gmax + 1e-8) > edge_thr
        con = con * edge
        n_edge = 0
        n_sharp = 0
        n_along = h if di else w
        for i in range(h):
            for j in range(w):
                if not edge[i, j]:
                    continue
                n_edge += 1
                pos = i if di else j
                if pos < width or pos >= n_along - width:
                    continue
                num = den = 0.0
                for k in range(pos - width, pos + width):
                    ii, jj = (k, j) if di else (i, k)
                    num += dom[ii, jj]
                    den += con[ii, jj]
                s = num / den if den > 1e-3 else 0.0
                if s >= thr:
                    n_sharp += 1
        ratios.append(n_sharp / (n_edge + 1e-8))
    return float(np.sqrt(ratios[0] ** 2 + ratios[1] ** 2))


def _test_images():
    from skimage import data

    rng = np.random.RandomState(3)
    smooth = scipy.ndimage.gaussian_filter(rng.rand(40, 36, 3) * 255, sigma=(2, 2, 0)).astype(np.uint8)
    steps = np.zeros((32, 40, 3), np.uint8)
    steps[8:20, 5:30] = (200, 30, 90)
    steps[:, 33:] = 255
    return {
        'astronaut': data.astronaut()[100:160:1, 180:240],
        'coffee': data.coffee()[150:198, 200:256],
        'chelsea_small': data.chelsea()[::6, ::6][:40, :48],
        'noise': rng.randint(0, 256, (24, 30, 3)).astype(np.uint8),
        'smooth': smooth,
        'steps': steps,
    }


@pytest.mark.parametrize('name', list(_test_images()))
def test_matches_loop_reference(name):
    img = _test_images()[name]
    assert sharpness(img) == pytest.approx(reference_sharpness(img), abs=0.01)


def test_nondefault_parameters_match_reference():
    img = _test_images()['astronaut']
    got = sharpness(img, width=3, sharpness_threshold=1.5, edge_threshold=0.05)
    assert got == pytest.approx(reference_sharpness(img, width=3, thr=1.5, edge_thr=0.05), abs=0.01)


def test_luma_matches_float_formula():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (50, 50, 3)).astype(np.uint8)
    ref = np.floor(img @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert np.abs(luma_uint8(img).astype(float) - ref).max() <= 1


def test_blur_lowers_sharpness():
    from skimage import data

    img = data.astronaut()[::2, ::2]
    blurred = scipy.ndimage.gaussian_filter(img.astype(float), sigma=(2, 2, 0)).round().astype(np.uint8)
    s0, s1 = sharpness(img), sharpness(blurred)
    assert 0 <= s1 < s0 <= np.sqrt(2)
    assert s0 - s1 > 0.05


def test_flat_image_scores_zero_and_bad_input_rejected():
    assert sharpness(np.full((20, 20, 3), 128, np.uint8)) == 0.0
    with pytest.raises(ValueError):
        sharpness(np.zeros((20, 20), np.uint8))
