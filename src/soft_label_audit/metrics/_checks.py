"""Input checks shared by the metric modules."""

from __future__ import annotations

import numpy as np


def as_probs(probs: np.ndarray, name: str = "probs", atol: float = 1e-4) -> np.ndarray:
    """(n, K) float64 array whose rows are probability distributions (checked, not renormalised)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must be 2-D (items, classes), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} holds non-finite values")
    if p.size and (p.min() < -atol or p.max() > 1 + atol):
        raise ValueError(f"{name} must lie in [0, 1]")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(
            f"{name} rows must sum to 1; rows {bad[:5].tolist()} (of {bad.size}) sum to "
            f"{sums[bad[:5]].round(6).tolist()}"
        )
    return np.clip(p, 0.0, 1.0)


def as_labels(labels: np.ndarray, n_items: int, n_classes: int, name: str = "labels") -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n_items,):
        raise ValueError(f"{name} must have shape ({n_items},), got {y.shape}")
    y = y.astype(np.int64)
    if n_items and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} must lie in 0..{n_classes - 1}")
    return y
