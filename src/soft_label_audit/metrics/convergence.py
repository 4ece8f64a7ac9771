"""Has a run stopped improving? The convergence check of the validation loss.

The check reads ``val_loss`` (cross-entropy against the original label, the same yardstick for
every condition). A check on the *training* loss cannot fail under a cosine schedule: the
learning rate goes to zero, so the training loss always flattens at the end. For one run's
curve ``L_1 .. L_E`` and ``f = max(1, ceil(E / 5))`` epochs in its last fifth:

    best_epoch = argmin_e L_e                                 (1-based, the earliest on a tie)
    gain       = min(L_1 .. L_{E-f}) - min(L_{E-f+1} .. L_E)  (nats)
    converged  <=>  best_epoch <= E - f  <=>  gain <= 0

A run has converged when its validation loss stopped improving before the last fifth of the
epochs: its best epoch (the one whose predictions the study scores) lies before the last
fifth, so the epochs of the annealing tail did not improve on it. ``gain`` says by how much the
last fifth still improved the best value (> 0: not converged; <= 0: the curve had bottomed
out, or rises again as the run overfits). A run still improving at its end, however little,
has not converged: it might have done better with more epochs. With fewer than two epochs or a
non-finite curve nothing can be said: the gain is NaN and the run does not count as converged.
"""

from __future__ import annotations

import math

import numpy as np

#: share of the epochs at the end of training in which the best epoch must not lie
LAST_PART = 1 / 5


def last_part_epochs(n_epochs: int) -> int:
    """``f``, the epochs of the last fifth (module doc), at least one."""
    return max(1, math.ceil(n_epochs * LAST_PART))


def last_fifth_gain(curve: np.ndarray) -> float:
    """How much the last fifth improved the best value of one run's ``val_loss`` (module doc);
    NaN below two epochs or for a non-finite curve.

    >>> last_fifth_gain(np.array([2.0, 1.2, 0.9, 0.8, 0.7]))  # still falling
    0.10000000000000009
    >>> last_fifth_gain(np.array([2.0, 1.2, 0.7, 0.8, 0.9]))  # bottomed out at epoch 3
    -0.20000000000000007
    """
    values = np.asarray(curve, np.float64)
    if values.ndim != 1:
        raise ValueError(f"a curve is one value per epoch, got shape {values.shape}")
    n = len(values)
    if n < 2 or not np.isfinite(values).all():
        return float("nan")
    cut = n - last_part_epochs(n)
    return float(values[:cut].min() - values[cut:].min())


def convergence(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run of ``curves`` (K runs, E epochs): the gain of the last fifth (K,) and whether the
    run has converged (K,) bool (module doc).

    >>> gain, ok = convergence(np.array([[2.0, 1.0, 0.5], [2.1, 0.6, 0.7]]))
    >>> gain.round(3).tolist(), ok.tolist()
    ([0.5, -0.1], [False, True])
    """
    values = np.asarray(curves, np.float64)
    if values.ndim != 2:
        raise ValueError(f"curves are (runs, epochs), got shape {values.shape}")
    gain = np.array([last_fifth_gain(run) for run in values])
    return gain, np.isfinite(gain) & (gain <= 0)
