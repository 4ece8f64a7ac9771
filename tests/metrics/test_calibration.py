"""Calibration metrics against torchmetrics and against brute-force implementations."""

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from soft_label_audit.metrics import calibration
from tests.metrics.conftest import random_probs


def _torchmetrics(p, y, n_bins, norm):
    """torchmetrics bins float32 confidences; ours get the same values, as float64."""
    metric = MulticlassCalibrationError(num_classes=p.shape[1], n_bins=n_bins, norm=norm)
    return float(metric(torch.tensor(p), torch.tensor(y)))


def _float32(p):
    return p.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("n_bins", [5, 15, 20])
def test_top_label_ece_matches_torchmetrics(predictions, n_bins):
    p, y = predictions
    p = _float32(p)
    # torchmetrics sums in float32: agreement to ~1e-7
    assert calibration.top_label_ece(p, y, n_bins) == pytest.approx(
        _torchmetrics(p, y, n_bins, "l1"), abs=1e-6
    )


@pytest.mark.parametrize("n_bins", [5, 15])
def test_mce_matches_torchmetrics(predictions, n_bins):
    p, y = _float32(predictions[0]), predictions[1]
    assert calibration.max_calibration_error(p, y, n_bins) == pytest.approx(
        _torchmetrics(p, y, n_bins, "max"), abs=1e-6
    )


def _brute_equal_mass_ece(p, y, n_bins):
    """Loops over bins; bin b holds the items of rank r with b <= r * n_bins / n < b + 1,
    r counting the items of strictly smaller confidence."""
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    n = len(conf)
    ranks = [sum(1 for j in range(n) if conf[j] < conf[i]) for i in range(n)]
    total = 0.0
    for b in range(n_bins):
        members = [i for i in range(n) if b <= ranks[i] * n_bins / n < b + 1]
        if members:
            total += len(members) / n * abs(np.mean(correct[members]) - np.mean(conf[members]))
    return total


@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_equal_mass_ece_matches_brute_force(predictions, n_bins):
    p, y = predictions
    assert calibration.top_label_ece(p, y, n_bins, "mass") == pytest.approx(
        _brute_equal_mass_ece(p, y, n_bins), abs=1e-12
    )


def test_equal_mass_bins_hold_equal_counts():
    conf = np.random.default_rng(0).random(103)
    counts = np.bincount(calibration.equal_mass_bin_index(conf, 10), minlength=10)
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1


def test_equal_mass_bins_keep_ties_together_whatever_the_item_order():
    rng = np.random.default_rng(3)
    p = np.tile(np.eye(10)[0], (40, 1))
    p[:25] = random_probs(rng, 25)  # 15 items saturated at confidence exactly 1.0
    y = rng.integers(0, 10, 40)
    index = calibration.equal_mass_bin_index(p.max(axis=1), 10)
    assert len(set(index[25:])) == 1
    perm = rng.permutation(40)
    assert calibration.top_label_ece(p[perm], y[perm], 10, "mass") == pytest.approx(
        calibration.top_label_ece(p, y, 10, "mass"), abs=1e-15
    )
    assert calibration.top_label_ece(p, y, 10, "mass") == pytest.approx(
        _brute_equal_mass_ece(p, y, 10), abs=1e-12
    )


def _brute_classwise_ece(p, y, n_bins):
    """Per class, bins found by comparing with every edge; empty bins skipped."""
    n, k = p.shape
    edges = [j / n_bins for j in range(n_bins + 1)]
    per_class = []
    for c in range(k):
        err = 0.0
        for j in range(n_bins):
            lo, hi = edges[j], edges[j + 1]
            last = j == n_bins - 1
            members = [
                i for i in range(n) if lo <= p[i, c] and (p[i, c] < hi or (last and p[i, c] <= hi))
            ]
            if members:
                freq = np.mean([y[i] == c for i in members])
                err += len(members) / n * abs(freq - np.mean(p[members, c]))
        per_class.append(err)
    return float(np.mean(per_class))


@pytest.mark.parametrize("n_bins", [4, 15])
def test_classwise_ece_matches_brute_force(n_bins):
    rng = np.random.default_rng(7)
    p = random_probs(rng, 150)
    y = rng.integers(0, 10, 150)
    assert calibration.classwise_ece(p, y, n_bins) == pytest.approx(
        _brute_classwise_ece(p, y, n_bins), abs=1e-12
    )


# -- the known traps -----------------------------------------------------------------------


def test_confidence_of_exactly_one_lands_in_the_last_bin():
    assert calibration.equal_width_bin_index(np.array([1.0]), 15).tolist() == [14]
    assert calibration.equal_width_bin_index(np.array([0.0, 0.9999]), 15).tolist() == [0, 14]
    # one sure and right item, one sure and wrong: the last bin has accuracy 1/2 and confidence 1
    p = np.eye(10)[[3, 3]]
    y = np.array([3, 4])
    table = calibration.reliability_table(p, y, 15)
    assert len(table) == 15
    assert table["count"].tolist() == [0] * 14 + [2]
    assert table.iloc[-1]["accuracy"] == 0.5 and table.iloc[-1]["mean_confidence"] == 1.0
    assert calibration.top_label_ece(p, y, 15) == pytest.approx(0.5)
    assert calibration.max_calibration_error(p, y, 15) == pytest.approx(0.5)


def test_no_bin_is_dropped():
    # confidences on both ends and in the middle: every item counted once, weights sum to one
    p = np.full((4, 10), 0.0)
    p[0] = 0.1  # confidence 0.1 exactly, all classes tied -> argmax 0
    p[1, 0], p[1, 1:] = 1.0, 0.0
    p[2, 0], p[2, 1:] = 0.55, 0.05
    p[3, 2], p[3, [0, 1, 3]] = 0.7, 0.1
    y = np.array([0, 0, 1, 2])
    for n_bins in (1, 2, 10, 15, 100):
        table = calibration.reliability_table(p, y, n_bins)
        assert len(table) == n_bins
        assert table["count"].sum() == 4
        assert table["weight"].sum() == pytest.approx(1.0)
    # hand-computed with 10 bins: bins 1 (0.1, right), 5 (0.55, wrong), 7 (0.7, right), 9 (1.0, right)
    expected = (abs(1 - 0.1) + abs(0 - 0.55) + abs(1 - 0.7) + abs(1 - 1.0)) / 4
    assert calibration.top_label_ece(p, y, 10) == pytest.approx(expected)


def test_empty_bins_do_not_divide_by_zero():
    p = np.tile(np.r_[0.91, np.full(9, 0.01)], (5, 1))
    y = np.array([0, 0, 0, 0, 1])
    with np.errstate(all="raise"):
        ece = calibration.top_label_ece(p, y, 15)
        mce = calibration.max_calibration_error(p, y, 15)
        cw = calibration.classwise_ece(p, y, 15)
        table = calibration.reliability_table(p, y, 15)
        mass = calibration.top_label_ece(p, y, 15, "mass")  # more bins than items
    assert ece == pytest.approx(abs(0.8 - 0.91)) and mce == pytest.approx(abs(0.8 - 0.91))
    assert np.isfinite(cw) and np.isfinite(mass)
    assert table["accuracy"].isna().sum() == 14


def test_perfectly_calibrated_predictions_have_zero_ece():
    # within each bin, the fraction correct equals the (constant) confidence
    p = np.tile(np.r_[0.6, np.full(9, 0.4 / 9)], (10, 1))
    y = np.array([0] * 6 + [1] * 4)
    assert calibration.top_label_ece(p, y, 15) == pytest.approx(0.0, abs=1e-12)
    assert calibration.top_label_ece(p, y, 15, "mass") == pytest.approx(0.0, abs=1e-12)


def test_unknown_binning_is_refused():
    with pytest.raises(ValueError, match="binning"):
        calibration.top_label_ece(np.full((2, 10), 0.1), np.array([0, 1]), 15, "quantile")
