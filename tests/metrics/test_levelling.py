"""The levelling check of the training loss: < 5% change over the last fifth of the epochs."""

import numpy as np
import pytest

from soft_label_audit.configs import epochs_for
from soft_label_audit.metrics.levelling import has_levelled, last_fifth_change


def test_change_over_the_last_fifth():
    # 10 epochs: the last fifth is 2 epochs, from epoch 8 (index 7) to epoch 10
    curve = np.array([2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.60, 0.59, 0.58])
    assert last_fifth_change(curve) == pytest.approx(0.02 / 0.60)
    assert has_levelled(curve)
    still_falling = np.array([2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert last_fifth_change(still_falling) == pytest.approx(0.2 / 0.6)
    assert not has_levelled(still_falling)


def test_the_synthetic_runs_of_the_old_default_had_not_levelled():
    # 15 epochs falling steadily, as synthetic original_hard did at 75 optimiser steps
    curve = 2.3 * np.exp(-np.arange(1, 16) / 6)
    assert not has_levelled(curve)
    assert has_levelled(np.r_[curve, np.full(15, curve[-1])])


def test_a_memorised_hard_label_loss_near_zero_counts_as_levelled():
    curve = np.r_[np.linspace(2.0, 0.085, 36), np.linspace(0.083, 0.078, 9)]
    assert last_fifth_change(curve) > 0.05 and has_levelled(curve)
    assert not has_levelled(curve, abs_tol=0.0)


def test_too_short_or_broken_curves_never_count_as_levelled():
    assert np.isnan(last_fifth_change(np.array([1.0])))
    assert not has_levelled(np.array([1.0, np.nan, 0.5]))
    with pytest.raises(ValueError, match="one value per epoch"):
        last_fifth_change(np.ones((2, 3)))


def test_epochs_per_source():
    assert epochs_for({"epochs": 15}, "mnist") == 15
    params = {"epochs": {"mnist": 15, "synthetic": 40}}
    assert epochs_for(params, "synthetic") == 40
    with pytest.raises(ValueError, match="training.epochs.other is missing"):
        epochs_for(params, "other")
