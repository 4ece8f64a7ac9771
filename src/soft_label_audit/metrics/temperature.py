"""Post-hoc temperature scaling (Guo et al. 2017): one temperature per run, fitted on the
validation items against the original label, applied to the run's predictions; numpy only.

For logits ``z`` (n, K) and labels ``y`` the fitted T minimises the mean NLL of
``softmax(z / T)``, ``L(b) = mean_i [logsumexp(b z_i) - b z_iy]`` with ``b = 1 / T``. L is
convex in b (a log-sum-exp of functions linear in b, minus a linear one), with derivative
``L'(b) = mean_i (E_{p_b}[z_i] - z_iy)``, increasing in b (its derivative is the mean variance
of z_i under p_b). The fit bisects L' on ln b over the bounds: a deterministic search with a
unique answer, clipped to the nearer bound when the minimum lies outside them (e.g. a model
that separates every validation item wants T -> 0). Adding a constant to a row of z changes
neither p_b nor ``E_{p_b}[z_i] - z_iy``, so T is invariant to it; so is applying it to
probabilities, ``softmax(ln p / T) = softmax(z / T)`` (``ln p = z - logsumexp(z)``).
"""

from __future__ import annotations

import numpy as np

#: the bounds of the search (T), wide enough for any CNN of the study
T_BOUNDS = (0.05, 20.0)
#: probabilities below this are clipped before the logarithm (a prediction table stores p)
P_FLOOR = 1e-12
_ITERATIONS = 100


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _slope(z: np.ndarray, y: np.ndarray, inverse_t: float) -> float:
    """L'(b) at b = 1/T: mean over items of E_p[z] - z_y."""
    p = _softmax(inverse_t * z)
    return float(((p * z).sum(1) - z[np.arange(len(z)), y]).mean())


def temperature_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean NLL of softmax(z / T) against ``labels`` (nats)."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1))
    return float((lse - z[np.arange(len(z)), np.asarray(labels, np.int64)]).mean())


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = T_BOUNDS
) -> float:
    """The T in ``bounds`` that minimises the mean NLL of softmax(z / T) against ``labels``
    (module doc); ``logits`` (n, K), ``labels`` (n,) in 0..K-1, n >= 1.

    >>> z = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> t = fit_temperature(z, np.array([0, 1, 1]))
    >>> bool(temperature_nll(z, [0, 1, 1], t) <= min(temperature_nll(z, [0, 1, 1], s)
    ...                                               for s in (0.5 * t, 0.99 * t, 1.01 * t, 2 * t)))
    True
    """
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.int64)
    if z.ndim != 2 or len(z) == 0 or y.shape != (len(z),):
        raise ValueError(
            f"need (n, K) logits with n >= 1 and (n,) labels, got {z.shape}, {y.shape}"
        )
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")
    if ((y < 0) | (y >= z.shape[1])).any():
        raise ValueError(f"labels must lie in 0..{z.shape[1] - 1}")
    t_low, t_high = bounds
    if not 0 < t_low < t_high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    # ln b on [ln(1 / t_high), ln(1 / t_low)]; L' increasing in b
    lo, hi = -np.log(t_high), -np.log(t_low)
    if _slope(z, y, np.exp(lo)) >= 0:  # the loss already rises at the smallest b: T = t_high
        return float(t_high)
    if _slope(z, y, np.exp(hi)) <= 0:  # still falls at the largest b: T = t_low
        return float(t_low)
    for _ in range(_ITERATIONS):
        mid = 0.5 * (lo + hi)
        if _slope(z, y, np.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return float(np.exp(-0.5 * (lo + hi)))


def scale_probabilities(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(ln(max(p, P_FLOOR)) / T) over the last axis: a run's predictions with its
    fitted temperature applied (the same as softmax(z / T) of the logits behind ``p``, but for
    probabilities below the floor)."""
    t = float(temperature)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"the temperature must be a positive number, got {temperature!r}")
    log_p = np.log(np.maximum(np.asarray(probs, np.float64), P_FLOOR))
    return _softmax(log_p / t)
