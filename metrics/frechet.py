"""Fréchet Inception Distance and Kernel Inception Distance on feature arrays [N, D]."""

import warnings

import numpy as np
import scipy.linalg


def feature_stats(feats):
    """Mean [D] and covariance [D, D] (float64) of features [N, D].

    The covariance divides by N (stylegan2-ada-pytorch's convention), not N - 1.
    """
    x = np.asarray(feats, dtype=np.float64)
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, xc.T @ xc / len(x)


def _sqrtm(a):
    """scipy sqrtm; returns None when the result is not finite or scipy reports a singular matrix."""
    with warnings.catch_warnings():
        warnings.simplefilter('error', scipy.linalg.LinAlgWarning)
        try:
            s = scipy.linalg.sqrtm(a)
        except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
            return None
    return s if np.isfinite(s).all() else None


def fid_from_stats(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """FID = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    The matrix square root is scipy.linalg.sqrtm. If it fails, is not finite, or scipy reports the product
    singular, it is recomputed with `eps` added to the diagonal of both covariances. An imaginary
    residue of the square root (numerical noise) is dropped.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    covmean = _sqrtm(sigma1 @ sigma2)
    if covmean is None:
        offset = np.eye(len(mu1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(feats1, feats2):
    """FID between two feature sets [N1, D] and [N2, D] (covariances divide by N, see feature_stats).

    When N1 * N2 * min(N1, N2) < D^3 (few samples, e.g. the training shots) the trace of the matrix
    square root is taken from the exact identity tr((S1 S2)^(1/2)) = ||A1 A2^T||_* / sqrt(N1 N2), where
    A1, A2 are the centred feature matrices and ||.||_* the nuclear norm (sum of singular values): the
    non-zero eigenvalues of S1 S2 are those of (A1 A2^T)(A1 A2^T)^T / (N1 N2). This gives the same value
    as the sqrtm route without its cost (minutes for D = 2048 on a small CPU) and without the
    singular-matrix trouble. Otherwise fid_from_stats (scipy sqrtm) is used.
    """
    x1 = np.asarray(feats1, np.float64)
    x2 = np.asarray(feats2, np.float64)
    (n1, d), n2 = x1.shape, len(x2)
    if n1 * n2 * min(n1, n2) >= d ** 3:
        return fid_from_stats(*feature_stats(x1), *feature_stats(x2))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    a1, a2 = x1 - mu1, x2 - mu2
    tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt(n1 * n2)
    diff = mu1 - mu2
    return float(diff @ diff + (a1 * a1).sum() / n1 + (a2 * a2).sum() / n2 - 2 * tr_covmean)


def fid_bias_fit(feats, fractions=(0.06, 0.12, 0.24, 0.36), repeats=5, seed=0):
    """FID's finite-sample bias on one distribution: (a, b) of B(n, m) = a / n + b / m.

    FID between two finite sample sets exceeds the distance between their distributions by a bias that falls
    roughly as 1/n in the first set's size and 1/m in the second's. Splitting `feats` [N, D] at random into
    disjoint parts of n = fraction * N and m = N - n rows (`repeats` times per fraction, numpy
    default_rng(seed)) gives FIDs whose true value is 0; (a, b) is their least-squares fit. An FID measured
    with n and m rows from distributions like `feats` then has a bias-free estimate FID - a / n - b / m, and
    the same distance measured with other sizes n', m' is estimated as that plus a / n' + b / m'.
    Raises ValueError when a split would leave fewer than 2 rows on a side.
    """
    x = np.asarray(feats, np.float64)
    rng = np.random.default_rng(seed)
    rows, fids = [], []
    for fraction in fractions:
        n = int(round(fraction * len(x)))
        if n < 2 or len(x) - n < 2:
            raise ValueError(f'a split of {len(x)} rows at {fraction} leaves fewer than 2 on a side')
        for _ in range(repeats):
            order = rng.permutation(len(x))
            fids.append(fid_from_features(x[order[:n]], x[order[n:]]))
            rows.append((1 / n, 1 / (len(x) - n)))
    (a, b), *_ = np.linalg.lstsq(np.array(rows), np.array(fids), rcond=None)
    return float(a), float(b)


def kid(feats_gen, feats_real, num_subsets=100, max_subset_size=1000, seed=0):
    """Kernel Inception Distance: unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3, averaged over subsets.

    Each of `num_subsets` rounds draws m = min(N_gen, N_real, max_subset_size) rows from each set without
    replacement (numpy RandomState(seed)) and evaluates
    MMD^2 = [sum_{i!=j} k(x_i, x_j) + sum_{i!=j} k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2.
    Returns (mean, std) over the subsets (std with ddof=0). Raises ValueError if m < 2.

    When m covers both sets whole, every round draws the same rows in another order and MMD^2 does not depend on
    the order: it is evaluated once and the std is 0 (what the rounds give, up to float rounding).
    """
    x_all = np.asarray(feats_gen, np.float64)
    y_all = np.asarray(feats_real, np.float64)
    m = min(len(x_all), len(y_all), max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 samples per set, got {len(x_all)} and {len(y_all)}')
    if m == len(x_all) == len(y_all):
        return _mmd2_cubic(x_all, y_all), 0.0
    rng = np.random.RandomState(seed)
    vals = np.empty(num_subsets)
    for s in range(num_subsets):
        vals[s] = _mmd2_cubic(x_all[rng.choice(len(x_all), m, replace=False)],
                              y_all[rng.choice(len(y_all), m, replace=False)])
    return float(vals.mean()), float(vals.std())


def _mmd2_cubic(x, y):
    """Unbiased MMD^2 of float64 rows x [m, D] and y [m, D] under k(a, b) = (a.b / D + 1)^3 (kid's formula)."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))
