"""Agreement between a model's predicted distribution ``p`` and the human soft label ``h``.

The human label has 11 slots (10 digits and "none / can't tell"); the model predicts 10
digits. :func:`human_digit_distribution` maps ``h`` onto the 10 digits by one of two rules:

* ``renormalize``: drop the "none" mass and rescale the digits to sum to one (an item whose
  votes were all "none" becomes uniform);
* ``spread``: share the "none" mass equally among the 10 digits ("can't tell" as ignorance).

All entropies and divergences are in nats; ``0 ln 0 = 0``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from soft_label_audit.metrics._checks import as_probs

NONE_POLICIES = ("renormalize", "spread")
EPS = 1e-12


def human_digit_distribution(h: np.ndarray, none_policy: str = "renormalize") -> np.ndarray:
    """(n, 10) distribution over digits from the (n, 11) human soft label (last slot = none)."""
    h = as_probs(h, name="human soft label")
    if h.shape[1] != 11:
        raise ValueError(f"the human soft label needs 11 slots (10 digits + none), got {h.shape[1]}")
    digits, none = h[:, :10], h[:, 10]
    k = digits.shape[1]
    if none_policy == "spread":
        return digits + none[:, None] / k
    if none_policy == "renormalize":
        mass = digits.sum(axis=1, keepdims=True)
        out = np.full_like(digits, 1.0 / k)
        ok = mass[:, 0] > 0
        out[ok] = digits[ok] / mass[ok]
        return out
    raise ValueError(f"none_policy must be one of {NONE_POLICIES}, got {none_policy!r}")


def entropy(p: np.ndarray) -> np.ndarray:
    """Row-wise Shannon entropy ``-sum_k p_k ln p_k`` (nats)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


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
