"""Memorisation fractions on synthetic representations, against a direct reading of the definition."""

import numpy as np
import pytest

from metrics.memorization import memorization, min_pairwise_distance, pairwise_distances


def test_pairwise_and_tau_against_loops():
    rng = np.random.RandomState(0)
    a, b = rng.randn(6, 5), rng.randn(4, 5)
    ref = np.array([[np.linalg.norm(x - y) for y in b] for x in a])
    np.testing.assert_allclose(pairwise_distances(a, b), ref, rtol=1e-9)
    tau = min(np.linalg.norm(b[i] - b[j]) for i in range(4) for j in range(i + 1, 4))
    assert min_pairwise_distance(b) == pytest.approx(tau, rel=1e-9)
    with pytest.raises(ValueError):
        min_pairwise_distance(b[:1])


def test_copies_flagged_unrelated_not():
    rng = np.random.RandomState(1)
    shots = rng.randn(5, 32)
    tau = min_pairwise_distance(shots)
    copies = shots[[0, 1, 2, 3, 4, 0]] + rng.randn(6, 32) * 1e-3
    far = rng.randn(7, 32) * 0.1 + 10.0
    assert memorization(copies, shots)['fraction'] == 1.0
    assert memorization(far, shots)['fraction'] == 0.0
    mixed = memorization(np.concatenate([copies[:3], far[:1]]), shots)
    assert mixed['fraction'] == 0.75 and mixed['tau'] == pytest.approx(tau)
    assert list(mixed['nearest'][:3]) == [0, 1, 2]


def test_exactly_at_tau_is_not_flagged():
    shots = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 5.0]])  # tau = 2
    gen = np.array([[-2.0, 0.0], [-1.9, 0.0]])  # distances 2 (not < tau) and 1.9
    assert memorization(gen, shots)['fraction'] == 0.5


def test_nearest_real_tells_copies_from_new_samples_of_the_domain():
    from metrics.memorization import nearest_real
    rng = np.random.RandomState(0)
    domain = rng.randn(410, 8)
    shots, test, fresh = domain[:10], domain[10:210], domain[210:]
    copies = shots[rng.randint(0, 10, 50)] + 1e-3 * rng.randn(50, 8)
    assert nearest_real(copies, shots, test)['shot_share'] == 1.0
    assert nearest_real(copies, shots, test)['median_ratio'] < 0.01
    new = nearest_real(fresh, shots, test)
    assert new['shot_share'] < 0.15 and new['median_ratio'] > 1.0   # about 10 / 210 by chance
    half = nearest_real(np.concatenate([copies[:20], fresh[:20]]), shots, test)
    assert 0.45 <= half['shot_share'] <= 0.6
    with pytest.raises(ValueError, match='at least one shot'):
        nearest_real(fresh, shots[:0], test)
