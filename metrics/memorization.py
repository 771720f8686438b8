"""Memorisation of the training shots: how many generated images are closer to a shot than any two shots
are to each other.

For one representation (rows of a matrix, Euclidean distance):

* d(g) = min_k ||g - s_k||, the distance of generated sample g to its nearest shot s_k;
* tau = min_{i < j} ||s_i - s_j||, the smallest distance between two different shots;
* fraction = #{g : d(g) < tau} / N.

Two representations are used by the `memorization` metric: Inception pool features (2048-d) and pixels
(each image resized to 64 x 64 by area averaging, RGB in [0, 1], flattened to 12288-d).
"""

import numpy as np


def pairwise_distances(a, b):
    """Euclidean distances [N, K] between rows of a [N, D] and b [K, D] (float64)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0))


def min_pairwise_distance(shots):
    """tau: smallest Euclidean distance between two different rows of shots [K, D], K >= 2."""
    if len(shots) < 2:
        raise ValueError('memorisation needs at least 2 training shots')
    d = pairwise_distances(shots, shots)
    return float(d[np.triu_indices(len(shots), k=1)].min())


def memorization(gen, shots):
    """gen [N, D], shots [K, D] -> dict(fraction, tau, dist [N], nearest [N] shot index)."""
    d = pairwise_distances(gen, shots)
    nearest = d.argmin(axis=1)
    dist = d[np.arange(len(d)), nearest]
    tau = min_pairwise_distance(shots)
    return dict(fraction=float(np.mean(dist < tau)), tau=tau, dist=dist, nearest=nearest)


def nearest_real(gen, shots, test):
    """Is a sample's nearest real image a training shot or a held-out test image of the same domain?

    gen [N, D], shots [K, D], test [M, D] -> dict(shot_share: share of samples whose nearest row of shots and test
    together is a shot, ratio [N]: distance to the nearest shot / distance to the nearest test image,
    median_ratio). Copies of the shots give shot_share 1 and ratio 0; samples of the target domain that copy
    nothing lie about as near the test images as the shots do, so shot_share is about K / (K + M) and the
    ratio about 1 or above.
    """
    if len(shots) < 1 or len(test) < 1:
        raise ValueError('nearest_real needs at least one shot and one test image')
    to_shot = pairwise_distances(gen, shots).min(axis=1)
    to_test = pairwise_distances(gen, test).min(axis=1)
    ratio = to_shot / np.maximum(to_test, 1e-12)
    return dict(shot_share=float(np.mean(to_shot < to_test)), ratio=ratio, median_ratio=float(np.median(ratio)))
