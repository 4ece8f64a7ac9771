"""Agreement between a model's predicted distribution ``p`` and the human soft label ``h``.

The human label has 11 slots (10 digits and "none / can't tell"); the model predicts 10
digits; :func:`soft_label_audit.human_labels.human_digits` maps ``h`` onto the 10 digits with
the same rule as the training targets (``labels.none_slot``).

All entropies and divergences are in nats; ``0 ln 0 = 0``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from soft_label_audit.human_labels import entropy  # noqa: F401 (re-exported)
from soft_label_audit.metrics._checks import as_probs

EPS = 1e-12


def cross_entropy(h: np.ndarray, p: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Row-wise ``-sum_k h_k ln max(p_k, eps)`` (nats)."""
    h, p = as_probs(h, "h"), as_probs(p, "p")
    return -np.sum(h * np.log(np.maximum(p, eps)), axis=1)


def kl_divergence(h: np.ndarray, p: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Row-wise ``KL(h || p) = sum_k h_k (ln h_k - ln max(p_k, eps))`` (nats)."""
    return cross_entropy(h, p, eps) - entropy(h)


def total_variation(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Row-wise total variation distance ``(1/2) sum_k |h_k - p_k|`` (0..1)."""
    h, p = as_probs(h, "h"), as_probs(p, "p")
    return 0.5 * np.abs(h - p).sum(axis=1)


def entropy_gap(h: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Row-wise ``H(p) - H(h)`` (nats): positive when the model is less certain than people."""
    return entropy(as_probs(p, "p")) - entropy(as_probs(h, "h"))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either side is constant or n < 3."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError("spearman needs two sequences of equal length")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)
