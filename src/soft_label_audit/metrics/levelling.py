"""Has a run finished learning? The levelling check of the training loss.

For a curve ``L_1 .. L_E`` (one value per epoch) and ``f = ceil(E / 5)`` epochs in its last
fifth, the relative change over the last fifth is

    change = |L_E - L_{E-f}| / |L_{E-f}|

and the run has *levelled off* when ``change < max_change`` (5% by default). With fewer than
two epochs nothing can be said: the change is NaN and the run does not count as levelled.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_MAX_CHANGE = 0.05


def last_fifth_change(curve: np.ndarray) -> float:
    """Relative change of ``curve`` over its last fifth of epochs (module doc)."""
    values = np.asarray(curve, np.float64)
    if values.ndim != 1:
        raise ValueError(f"a curve is one value per epoch, got shape {values.shape}")
    n = len(values)
    if n < 2 or not np.isfinite(values).all():
        return float("nan")
    start = values[n - 1 - max(1, math.ceil(n / 5))]
    if start == 0:
        return 0.0 if values[-1] == 0 else float("inf")
    return float(abs(values[-1] - start) / abs(start))


def has_levelled(curve: np.ndarray, max_change: float = DEFAULT_MAX_CHANGE) -> bool:
    """True when the curve changes by less than ``max_change`` over its last fifth."""
    change = last_fifth_change(curve)
    return bool(np.isfinite(change) and change < max_change)
