"""Proper scoring rules and accuracy for a predicted distribution against a hard label.

Conventions (matched by the tests against scikit-learn):

* NLL is the mean of ``-ln p_y`` in nats, with ``p_y`` clipped below at ``eps`` so a zero
  probability gives a large finite loss rather than infinity.
* Brier is the multiclass Brier score of Brier (1950): the mean over items of
  ``sum_k (p_k - 1[k = y])^2``, which lies in [0, 2] (scikit-learn's
  ``brier_score_loss(..., scale_by_half=False)``).
"""

from __future__ import annotations

import numpy as np

from soft_label_audit.metrics._checks import as_labels, as_probs

EPS = 1e-12


def predicted_class(probs: np.ndarray) -> np.ndarray:
    """argmax over classes; ties go to the lowest class index (numpy's convention)."""
    return np.asarray(probs).argmax(axis=1)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of items whose argmax equals the label."""
    p = as_probs(probs)
    y = as_labels(labels, len(p), p.shape[1])
    if len(p) == 0:
        return float("nan")
    return float(np.mean(predicted_class(p) == y))


def nll(probs: np.ndarray, labels: np.ndarray, eps: float = EPS) -> float:
    """Mean negative log-likelihood ``-(1/n) sum_i ln max(p_i[y_i], eps)`` (nats)."""
    p = as_probs(probs)
    y = as_labels(labels, len(p), p.shape[1])
    if len(p) == 0:
        return float("nan")
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(p)), y], eps))))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multiclass Brier score ``(1/n) sum_i sum_k (p_ik - 1[k = y_i])^2``, range [0, 2]."""
    p = as_probs(probs)
    y = as_labels(labels, len(p), p.shape[1])
    if len(p) == 0:
        return float("nan")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(p)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
