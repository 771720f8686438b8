"""FID and KID on synthetic feature sets, against closed forms and plain-loop references."""

import numpy as np
import pytest

from metrics.frechet import feature_stats, fid_bias_fit, fid_from_features, fid_from_stats, kid


def _trace_sqrt_product(s1, s2):
    """tr((s1 s2)^(1/2)) via symmetric eigendecompositions: tr((s1^(1/2) s2 s1^(1/2))^(1/2))."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.RandomState(0)
    for n, d in ((500, 32), (20, 64), (8, 2048)):  # full-rank and rank-deficient covariances
        f = np.abs(rng.randn(n, d)) * rng.rand(d)
        assert abs(fid_from_features(f, f)) < 1e-3
        if d <= 64:  # scipy sqrtm at d = 2048 takes minutes on a small CPU
            assert abs(fid_from_stats(*feature_stats(f), *feature_stats(f))) < 1e-3


def test_fid_matches_closed_form_for_diagonal_covariances():
    rng = np.random.RandomState(1)
    d = 48
    mu1, mu2 = rng.randn(d), rng.randn(d)
    a, b = rng.rand(d) * 3 + 0.1, rng.rand(d) * 2 + 0.05
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fid_from_stats(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    # The same covariances in a common rotated basis (still commuting): the same value.
    q, _ = np.linalg.qr(rng.randn(d, d))
    got = fid_from_stats(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-7)


def _white(rng, n, d):
    """n x d samples with sample mean exactly 0 and sample covariance (divide by n) exactly I."""
    w = rng.randn(n, d)
    w -= w.mean(axis=0)
    chol = np.linalg.cholesky(w.T @ w / n)
    return w @ np.linalg.inv(chol).T


def test_fid_of_gaussian_feature_sets_matches_closed_form():
    rng = np.random.RandomState(2)
    d = 8
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    a, b = np.linspace(0.5, 2.0, d), np.linspace(1.5, 0.2, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    for n1, n2 in ((5000, 3000), (20, 12)):  # sqrtm route, then the low-rank route
        x = mu1 + _white(rng, n1, d) * np.sqrt(a)
        y = mu2 + _white(rng, n2, d) * np.sqrt(b)
        assert fid_from_features(x, y) == pytest.approx(expected, rel=1e-8)
    # Plain Gaussian samples approach it too.
    x = mu1 + rng.randn(100_000, d) * np.sqrt(a)
    y = mu2 + rng.randn(100_000, d) * np.sqrt(b)
    assert fid_from_features(x, y) == pytest.approx(expected, abs=0.1)


def test_fid_general_covariances_against_eigh_reference():
    rng = np.random.RandomState(3)
    for n1, n2, d in ((300, 200, 16), (12, 7, 40)):  # sqrtm route, then the low-rank route
        x = rng.randn(n1, d) @ rng.randn(d, d)
        y = rng.randn(n2, d) @ rng.randn(d, d) + 1.0
        (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
        expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(s1, s2)
        assert fid_from_features(x, y) == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert fid_from_stats(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_feature_stats_divide_by_n():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(mu, [1, 2])
    np.testing.assert_allclose(sigma, [[1, 1], [1, 1]])


def _kid_loop(x, y):
    d = x.shape[1]
    m = len(x)

    def k(a, b):
        return (np.dot(a, b) / d + 1) ** 3
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (kxx + kyy) / (m * (m - 1)) - 2 * kxy / (m * m)


def test_kid_equals_loop_reference_on_full_sets():
    rng = np.random.RandomState(4)
    x, y = rng.randn(7, 5), rng.randn(7, 5) + 0.3
    mean, std = kid(x, y, num_subsets=3, max_subset_size=100)
    assert mean == pytest.approx(_kid_loop(x, y), rel=1e-10)
    assert std == pytest.approx(0, abs=1e-12)  # every subset is the full set


def test_kid_on_subsets_averages_the_loop_reference_over_the_seeded_draws():
    rng = np.random.RandomState(6)
    x, y = rng.randn(9, 4), rng.randn(8, 4) + 0.2
    draws = np.random.RandomState(11)
    expected = []
    for _ in range(4):
        xs, ys = x[draws.choice(9, 5, replace=False)], y[draws.choice(8, 5, replace=False)]
        expected.append(_kid_loop(xs, ys))
    mean, std = kid(x, y, num_subsets=4, max_subset_size=5, seed=11)
    assert mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert std == pytest.approx(np.std(expected), rel=1e-8)
    assert std > 0


def test_kid_near_zero_for_one_distribution_and_positive_when_shifted():
    rng = np.random.RandomState(5)
    d = 64
    x, y = np.abs(rng.randn(800, d)), np.abs(rng.randn(800, d))
    z = np.abs(rng.randn(800, d)) + 0.3
    same, _ = kid(x, y, num_subsets=10, max_subset_size=300)
    shifted, _ = kid(x, z, num_subsets=10, max_subset_size=300)
    assert abs(same) < 0.02 * shifted
    assert shifted > 0.05


def test_kid_needs_two_samples():
    with pytest.raises(ValueError):
        kid(np.zeros((1, 4)), np.zeros((5, 4)))


def test_fid_bias_fit_removes_most_of_the_small_sample_bias():
    """Two Gaussians with equal covariances, means 2 apart (true FID 4): the raw FID of small sets is
    biased well above 4; subtracting the bias fitted on another draw of the first Gaussian recovers it."""
    rng = np.random.default_rng(1)
    d = 64
    scale = rng.uniform(0.5, 2.0, d)
    a, b = fid_bias_fit(rng.standard_normal((3000, d)) * scale)
    assert a > 0 and b > 0
    shift = np.zeros(d)
    shift[:4] = 1.0
    for n, m in ((300, 2000), (150, 3000)):
        raw = fid_from_features(rng.standard_normal((n, d)) * scale + shift, rng.standard_normal((m, d)) * scale)
        assert raw - 4.0 > 5.0
        assert abs(raw - a / n - b / m - 4.0) < 0.15 * (raw - 4.0)


def test_fid_bias_fit_refuses_splits_without_two_rows_a_side():
    with pytest.raises(ValueError, match='fewer than 2'):
        fid_bias_fit(np.zeros((20, 4)), fractions=(0.05,))


class _FeatureContext:
    """What the registered kid metric reads of a MetricContext: features of 'gen' and 'data', the subset settings."""
    kid_subsets, kid_subset_size, seed = 6, 1000, 0

    def __init__(self, gen, data):
        self._features = dict(gen=gen, data=data)

    def features(self, which):
        return self._features[which]

    def detector_options(self):
        return {}


def test_the_kid_metric_reports_no_spread_for_one_evaluation_over_whole_sets():
    from fsgan import evaluate
    from metrics.registry import get_registry
    spec = get_registry()['kid']
    rng = np.random.RandomState(7)
    x, y = rng.randn(12, 6), rng.randn(12, 6) + 0.4
    res = spec.fn(_FeatureContext(x, y))
    assert res['values']['kid'] == pytest.approx(_kid_loop(x, y), rel=1e-10) and res['values']['kid_std'] is None
    assert spec.version == 2                         # the std was 0.0 before: cached numbers are measured again
    kid_column = spec.columns[0]
    assert evaluate.cell(kid_column, spec.row(res)) == format(res['value'], '.5f')   # no '± 0.00000'
    bigger = spec.fn(_FeatureContext(x, rng.randn(20, 6)))   # rounds of 12 of 20 test rows: a real spread
    assert bigger['values']['kid_std'] > 0 and '±' in evaluate.cell(kid_column, spec.row(bigger))
