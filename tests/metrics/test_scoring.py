"""Accuracy, NLL and Brier against scikit-learn on random inputs."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from soft_label_audit.metrics import scoring


def test_accuracy_matches_sklearn(predictions):
    p, y = predictions
    assert scoring.accuracy(p, y) == pytest.approx(accuracy_score(y, p.argmax(axis=1)), abs=1e-12)


def test_nll_matches_sklearn_log_loss(predictions):
    p, y = predictions
    assert scoring.nll(p, y) == pytest.approx(log_loss(y, p, labels=list(range(10))), abs=1e-9)


def test_brier_matches_sklearn_multiclass_sum_convention(predictions):
    # Brier's original multiclass score: sum over classes, range [0, 2] (no halving)
    p, y = predictions
    expected = brier_score_loss(y, p, labels=list(range(10)), scale_by_half=False)
    assert scoring.brier(p, y) == pytest.approx(expected, abs=1e-12)


def test_brier_extremes():
    y = np.array([0, 1])
    perfect = np.eye(10)[y]
    wrong = np.eye(10)[[1, 0]]
    assert scoring.brier(perfect, y) == 0.0
    assert scoring.brier(wrong, y) == pytest.approx(2.0)


def test_nll_of_zero_probability_is_finite():
    p = np.eye(10)[[1]]
    assert np.isfinite(scoring.nll(p, np.array([0])))
    assert scoring.nll(p, np.array([0])) == pytest.approx(-np.log(1e-12))


def test_rows_that_do_not_sum_to_one_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        scoring.nll(np.full((3, 10), 0.2), np.array([0, 1, 2]))


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match="0..9"):
        scoring.accuracy(np.full((2, 10), 0.1), np.array([0, 10]))
