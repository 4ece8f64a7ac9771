"""Has a run finished learning? The levelling check of the training loss.

For a curve ``L_1 .. L_E`` (one value per epoch) and ``f = ceil(E / 5)`` epochs in its last
fifth, the relative change over the last fifth is

    change = |L_E - L_{E-f}| / |L_{E-f}|

and the run has *levelled off* when ``change < max_change`` (5% by default) or when the loss
moved by less than ``abs_tol`` nats (0.01 by default) over the last fifth: a hard-label run that
has memorised its items keeps shrinking a loss near zero by a large relative amount while it
no longer changes in any way that matters. With fewer than two epochs nothing can be said: the
change is NaN and the run does not count as levelled.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_MAX_CHANGE = 0.05
DEFAULT_ABS_TOL = 0.01


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


def has_levelled(
    curve: np.ndarray, max_change: float = DEFAULT_MAX_CHANGE, abs_tol: float = DEFAULT_ABS_TOL
) -> bool:
    """True when the curve changes by less than ``max_change`` (relative) or ``abs_tol``
    (absolute) over its last fifth (module doc)."""
    change = last_fifth_change(curve)
    if not np.isfinite(change):
        return False
    values = np.asarray(curve, np.float64)
    moved = abs(values[-1] - values[len(values) - 1 - max(1, math.ceil(len(values) / 5))])
    return bool(change < max_change or moved < abs_tol)
