"""Pure evaluation metrics against references and hand-built cases."""

import numpy as np
import pytest
import scipy.linalg
from scipy import stats

from ganjax.errors import ConfigError
from ganjax.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_of_features
from ganjax.metrics.inception_score import class_coverage, inception_score
from ganjax.metrics.kid import kernel_inception_distance, mmd2_unbiased
from ganjax.metrics.manifold import density_coverage, knn_radii, precision_recall
from ganjax.metrics.toy import gaussian_1d_metrics, ks_distance_normal, mode_coverage
from ganjax.data.toy import grid_modes, ring_modes


def scipy_fid(mu1, s1, mu2, s2):
    """pytorch-fid's formula (scipy sqrtm of the product)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = np.asarray(scipy.linalg.sqrtm(s1 @ s2)).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def random_stats(rng, d, n):
    f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    return feature_statistics(f)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_matches_scipy_sqrtm_on_well_conditioned_inputs(d):
    rng = np.random.default_rng(d)
    (m1, s1), (m2, s2) = random_stats(rng, d, 10 * d), random_stats(rng, d, 10 * d)
    ours, ref = frechet_distance(m1, s1, m2, s2), scipy_fid(m1, s1, m2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_is_finite_and_nonnegative_on_rank_deficient_covariances():
    rng = np.random.default_rng(0)
    d = 128
    a = rng.normal(size=(20, d))  # 20 samples in 128-d: rank <= 19
    m1, s1 = feature_statistics(a)
    m2, s2 = feature_statistics(a + 1e-7 * rng.normal(size=a.shape))
    fd = frechet_distance(m1, s1, m2, s2)
    assert np.isfinite(fd) and fd >= 0.0
    assert fd < 1e-5
    s_zero = np.zeros((d, d))
    assert frechet_distance(m1, s_zero, m1, s_zero) == 0.0
    # Against itself the singular case is exactly 0 up to round-off.
    assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("n, d", [(20, 128), (50, 256)])
def test_frechet_distance_matches_scipy_on_near_singular_covariances(n, d):
    """Fewer samples than dimensions: scipy's sqrtm returns complex noise, we stay real."""
    import warnings

    rng = np.random.default_rng(n)
    m1, s1 = feature_statistics(rng.normal(size=(n, d)))
    m2, s2 = feature_statistics(0.1 * rng.normal(size=(n, d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    assert np.iscomplexobj(covmean) and np.abs(covmean.imag).max() > 0
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(scipy_fid(m1, s1, m2, s2), rel=1e-6)


def test_fid_of_a_set_against_itself_is_zero_and_translation_adds_the_squared_shift():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(500, 32))
    assert frechet_distance_of_features(f, f) == pytest.approx(0.0, abs=1e-6)
    shift = rng.normal(size=32)
    assert frechet_distance_of_features(f, f + shift) == pytest.approx(shift @ shift, rel=1e-9, abs=1e-6)


def test_frechet_distance_rejects_bad_shapes_and_nan():
    with pytest.raises(ConfigError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ConfigError, match="non-finite"):
        frechet_distance(np.full(2, np.nan), np.eye(2), np.zeros(2), np.eye(2))


def test_kid_is_unbiased_on_two_samples_of_one_distribution():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    r = kernel_inception_distance(a, b, subset_size=500, num_subsets=50)
    assert abs(r["kid"]) < 3 * r["kid_stderr"] + 1e-12, r
    shifted = kernel_inception_distance(a, b + 0.5, subset_size=500, num_subsets=10)
    assert shifted["kid"] > 20 * r["kid_stderr"]


def test_mmd2_unbiased_matches_a_direct_double_sum():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.3
    k = lambda u, v: (u @ v / 3 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_inception_score_extremes():
    n, k = 100, 10
    one_hot = np.eye(k)[np.arange(n) % k]  # confident and diverse: IS = K
    assert inception_score(one_hot, splits=10)[0] == pytest.approx(k)
    uniform = np.full((n, k), 1.0 / k)     # no information: IS = 1
    assert inception_score(uniform, splits=10) == (pytest.approx(1.0), pytest.approx(0.0))
    collapsed = np.eye(k)[np.zeros(n, int)]  # one class only: IS = 1
    assert inception_score(collapsed)[0] == pytest.approx(1.0)


def test_class_coverage_counts_classes_and_kl_to_uniform():
    k = 10
    balanced = np.eye(k)[np.arange(1000) % k] * 0.9 + 0.01  # argmax spreads evenly over the 10 classes
    assert class_coverage(balanced) == {"classes": 10, "class_kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = np.eye(k)[np.zeros(500, int)]
    assert class_coverage(collapsed) == {"classes": 1, "class_kl": pytest.approx(np.log(k))}
    # 3 samples of 1000 in class 9 (0.3% < 1%, the 10%-of-uniform threshold) do not count as covering it.
    labels = np.concatenate([np.arange(997) % 9, [9, 9, 9]])
    q = np.bincount(labels, minlength=k) / 1000
    out = class_coverage(np.eye(k)[labels])
    assert out["classes"] == 9
    assert out["class_kl"] == pytest.approx(float(np.sum(q * np.log(q * k))))
    with pytest.raises(ConfigError, match=r"class_coverage needs probabilities \[N >= 1, K >= 2\], got \(5,\)"):
        class_coverage(np.ones(5))


def test_precision_recall_identical_sets_and_a_dropped_mode():
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    real = np.concatenate([c + rng.normal(size=(200, 2)) for c in centres])
    assert precision_recall(real, real) == {"precision": 1.0, "recall": 1.0}
    dropped = np.concatenate([c + rng.normal(size=(267, 2)) for c in centres[:3]])
    pr = precision_recall(real, dropped)
    assert pr["precision"] > 0.9
    assert pr["recall"] < 0.8  # the fourth cluster's real points are outside the fake manifold
    dc = density_coverage(real, dropped)
    assert dc["coverage"] < 0.8
    assert density_coverage(real, real)["coverage"] == 1.0


def test_knn_radius_excludes_the_point_itself():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(knn_radii(x, 1), [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(knn_radii(x, 2), [3.0, 2.0, 3.0, 6.0])


def test_density_counts_balls_hand_built():
    real = np.array([[0.0], [1.0], [10.0], [11.0]])   # k=1 radii: 1, 1, 1, 1
    fake = np.array([[0.5], [10.5], [100.0]])          # in 2, 2 and 0 balls
    dc = density_coverage(real, fake, k=1)
    assert dc == {"density": pytest.approx(4 / 3), "coverage": 1.0}


@pytest.mark.parametrize("modes_fn, std", [(ring_modes, 0.02), (grid_modes, 0.05)])
def test_mode_coverage_hand_built_sets(modes_fn, std):
    modes = modes_fn()
    k = modes.shape[0]
    all_modes = np.repeat(modes, 10, axis=0) + 0.5 * std
    r = mode_coverage(all_modes, modes, std)
    assert r == {"modes": k, "num_modes": k, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}
    one = np.repeat(modes[:1], 50, axis=0)
    r = mode_coverage(one, modes, std)
    assert (r["modes"], r["high_quality"]) == (1, 1.0)
    assert r["reverse_kl"] == pytest.approx(np.log(k))
    off = modes[:3] + 4 * std  # 4σ·√2 away from every centre: low quality
    mixed = np.concatenate([one[:2], off])
    r = mode_coverage(mixed, modes, std)
    assert (r["modes"], r["high_quality"]) == (1, pytest.approx(2 / 5))
    r = mode_coverage(off, modes, std)
    assert (r["modes"], r["high_quality"], r["reverse_kl"]) == (0, 0.0, np.inf)


def test_1d_metrics_match_scipy_ks():
    rng = np.random.default_rng(5)
    v = rng.normal(4.0, 1.5, size=5000)
    assert ks_distance_normal(v, 4.0, 1.5) == pytest.approx(stats.kstest(v, "norm", args=(4.0, 1.5)).statistic)
    m = gaussian_1d_metrics(v, 4.0, 1.5)
    assert m["gen_mean"] == pytest.approx(4.0, abs=0.1) and m["ks"] < 0.03
    assert gaussian_1d_metrics(v + 1.0, 4.0, 1.5)["ks"] > 0.2


@pytest.mark.parametrize("n", [1, 7, 8, 13])
def test_map_batches_sees_one_shape_and_trims_the_padding(n):
    from ganjax.metrics.batching import map_batches

    shapes = []

    def fn(batch):
        shapes.append(batch.shape)
        return {"sum": batch.sum(axis=1), "twice": 2 * batch}

    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3) + 1
    out = map_batches(fn, x, batch_size=4)
    assert set(shapes) == {(4, 3)} and len(shapes) == -(-n // 4)
    np.testing.assert_array_equal(out["sum"], x.sum(axis=1))
    np.testing.assert_array_equal(out["twice"], 2 * x)
