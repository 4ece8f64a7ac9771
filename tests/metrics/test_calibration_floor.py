"""Noise floor of the ECE (closed form), the debiased calibration error (against the
``uncertainty-calibration`` package) and the calibration against human labels."""

import numpy as np
import pytest
from scipy import stats

from soft_label_audit.metrics import calibration
from tests.metrics.conftest import random_probs


def _constant_confidence(n: int, c: float, k: int = 10) -> np.ndarray:
    p = np.full((n, k), (1.0 - c) / (k - 1))
    p[:, 0] = c
    return p


@pytest.mark.parametrize(("n", "c"), [(20, 0.7), (150, 0.93), (37, 0.5)])
@pytest.mark.parametrize("kind", ["width", "mass"])
def test_floor_of_one_bin_with_constant_confidence_is_the_binomial_mean_absolute_deviation(
    n, c, kind
):
    """One bin, every confidence c: the calibrated model's ECE is |K/n - c| with K ~ Bin(n, c)."""
    k = np.arange(n + 1)
    expected = float(np.sum(stats.binom.pmf(k, n, c) * np.abs(k / n - c)))
    draws = 20000
    floors = calibration.ece_noise_floor(
        _constant_confidence(n, c), n_bins=1, draws=draws, seed=3, kinds=(kind,)
    )
    values = floors[kind]
    assert values.shape == (draws,)
    # Monte Carlo error of the mean: 5 standard errors
    assert values.mean() == pytest.approx(expected, abs=5 * values.std() / np.sqrt(draws))
    # its upper quantile is the binomial's, up to the lattice of K/n
    q = np.quantile(values, 0.95)
    exact_q = np.sort(np.abs(k / n - c))
    cdf = np.array([stats.binom.pmf(k[np.abs(k / n - c) <= v], n, c).sum() for v in exact_q])
    assert q == pytest.approx(exact_q[np.argmax(cdf >= 0.95)], abs=1.0 / n + 1e-12)


def test_floor_shrinks_with_items_and_is_seeded():
    rng = np.random.default_rng(0)
    small, large = random_probs(rng, 100), random_probs(rng, 2000)
    a = calibration.ece_noise_floor(small, 15, 300, seed=1)
    b = calibration.ece_noise_floor(small, 15, 300, seed=1)
    for kind in ("width", "mass", "classwise"):
        np.testing.assert_array_equal(a[kind], b[kind])
    big = calibration.ece_noise_floor(large, 15, 300, seed=1)
    assert big["width"].mean() < a["width"].mean() / 2


def test_floor_ece_is_the_estimator_applied_to_the_drawn_labels():
    rng = np.random.default_rng(5)
    p = random_probs(rng, 80)
    floors = calibration.ece_noise_floor(p, 10, 4, seed=9)
    labels = calibration.sample_labels(p, 4, np.random.default_rng(9))
    for r in range(4):
        assert floors["width"][r] == pytest.approx(
            calibration.top_label_ece(p, labels[r], 10, "width")
        )
        assert floors["mass"][r] == pytest.approx(
            calibration.top_label_ece(p, labels[r], 10, "mass")
        )
        assert floors["classwise"][r] == pytest.approx(
            calibration.classwise_ece(p, labels[r], 10, "width")
        )


def test_sampled_labels_follow_the_predicted_distribution():
    p = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    labels = calibration.sample_labels(p, 40000, np.random.default_rng(0))
    freq = np.array([np.bincount(labels[:, i], minlength=3) / 40000 for i in range(3)])
    np.testing.assert_allclose(freq, p, atol=0.01)
    assert (labels[:, 1] == 0).all() and (labels[:, 2] == 2).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_bins", [5, 15])
def test_debiased_l2_matches_the_uncertainty_calibration_package(seed, n_bins):
    package = pytest.importorskip("calibration")
    rng = np.random.default_rng(seed)
    n = [60, 200, 1000, 333, 17, 500][seed]
    p = random_probs(rng, n)
    y = np.where(rng.random(n) < 0.7, p.argmax(axis=1), rng.integers(0, 10, n))
    expected = package.lower_bound_scaling_ce(
        p,
        y,
        p=2,
        debias=True,
        num_bins=n_bins,
        binning_scheme=package.get_equal_bins,
        mode="top-label",
    )
    assert calibration.debiased_l2_calibration_error(p, y, n_bins) == pytest.approx(
        expected, abs=1e-12
    )
    if n_bins == 15:  # the package's default entry point (continuous confidences)
        assert calibration.debiased_l2_calibration_error(p, y) == pytest.approx(
            package.get_top_calibration_error(p, y, p=2, debias=True), abs=1e-12
        )


def test_debiased_l2_is_near_zero_for_a_calibrated_model_where_the_plugin_ece_is_not():
    rng = np.random.default_rng(1)
    p = random_probs(rng, 300)
    labels = calibration.sample_labels(p, 200, rng)
    plugin = np.mean([calibration.top_label_ece(p, y) for y in labels])
    debiased = np.mean([calibration.debiased_l2_calibration_error(p, y) for y in labels])
    assert plugin > 0.04
    assert debiased < plugin / 2


def _human_ece_by_loops(p, h, n_bins):
    total = 0.0
    conf = p.max(axis=1)
    agree = h[np.arange(len(p)), p.argmax(axis=1)]
    for j in range(n_bins):
        lo, hi = j / n_bins, (j + 1) / n_bins
        m = (conf >= lo) & ((conf < hi) | ((j == n_bins - 1) & (conf == 1.0)))
        if m.any():
            total += m.sum() / len(p) * abs(agree[m].mean() - conf[m].mean())
    return total


def test_human_ece_compares_confidence_with_the_human_mass_on_the_predicted_class():
    rng = np.random.default_rng(2)
    p, h = random_probs(rng, 300), random_probs(rng, 300)
    assert calibration.human_ece(p, h, 15) == pytest.approx(_human_ece_by_loops(p, h, 15))
    # a one-hot human label on y gives the ordinary ECE against y
    y = rng.integers(0, 10, 300)
    assert calibration.human_ece(p, np.eye(10)[y], 15) == pytest.approx(
        calibration.top_label_ece(p, y, 15)
    )
    # a model whose confidence is the human agreement is calibrated to people
    q = h.copy()
    assert calibration.human_ece(q, h, 15) == pytest.approx(0.0, abs=1e-12)
