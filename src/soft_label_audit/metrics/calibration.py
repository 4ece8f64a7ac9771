"""Calibration of a predicted distribution against hard labels.

Binning conventions (the traps the tests pin down):

* Equal-width bins split [0, 1] into ``n_bins`` intervals ``[b_j, b_{j+1})``; the last one is
  closed, so a confidence of exactly 1.0 falls in the last bin, never in an extra one.
* Every bin is kept; an empty bin has weight 0 and contributes nothing (no division by its
  zero count), and its accuracy/confidence are reported as NaN in the reliability data.
* Equal-mass bins put an item into bin ``floor(r * n_bins / n)``, where ``r`` is the number
  of the ``n`` items with a strictly smaller confidence (its 0-based rank, ties taking the
  lowest). Without ties bin sizes differ by at most one; tied items always share a bin, so
  the result does not depend on the items' order (saturated confidences of exactly 1.0 are
  common in float32).

Definitions, with ``B_j`` the items of bin ``j``, ``acc(B_j)`` the fraction whose predicted
class is the label and ``conf(B_j)`` their mean top-label probability:

* top-label ECE  = ``sum_j |B_j|/n * |acc(B_j) - conf(B_j)|``
* MCE            = ``max_j over non-empty bins of |acc(B_j) - conf(B_j)|``
* class-wise ECE = ``(1/K) sum_k sum_j |B_kj|/n * |freq_k(B_kj) - mean p_k(B_kj)|`` where the
  bins ``B_kj`` bin every item's probability of class ``k`` and ``freq_k`` is the fraction of
  those items whose label is ``k`` (Kull et al., 2019).

All calibration errors are in probability units (0..1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from soft_label_audit.metrics._checks import as_labels, as_probs

BINNINGS = ("width", "mass")


def equal_width_bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index 0..n_bins-1 of values in [0, 1]; bins are [b_j, b_j+1), the last closed."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(values, dtype=np.float64), side="right")


def equal_mass_bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index 0..n_bins-1 by rank: floor(r * n_bins / n), r = number of strictly smaller values."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    values = np.asarray(values, dtype=np.float64)
    rank = np.searchsorted(np.sort(values), values, side="left")
    return (rank * n_bins) // max(len(values), 1)


def _bin_index(values: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    if binning == "width":
        return equal_width_bin_index(values, n_bins)
    if binning == "mass":
        return equal_mass_bin_index(values, n_bins)
    raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")


@dataclass(frozen=True)
class BinStats:
    """Per-bin sums; empty bins have count 0."""

    count: np.ndarray  # (n_bins,)
    sum_confidence: np.ndarray
    sum_outcome: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        total = self.count.sum()
        return self.count / total if total else np.zeros_like(self.count)

    def _mean(self, sums: np.ndarray) -> np.ndarray:
        out = np.full(sums.shape, np.nan)
        nonempty = self.count > 0
        out[nonempty] = sums[nonempty] / self.count[nonempty]
        return out

    @property
    def mean_confidence(self) -> np.ndarray:
        return self._mean(self.sum_confidence)

    @property
    def mean_outcome(self) -> np.ndarray:
        return self._mean(self.sum_outcome)

    @property
    def gap(self) -> np.ndarray:
        """|mean outcome - mean confidence| per bin; 0 for empty bins."""
        g = np.abs(self.mean_outcome - self.mean_confidence)
        return np.where(self.count > 0, g, 0.0)


def bin_stats(
    confidence: np.ndarray, outcome: np.ndarray, n_bins: int, binning: str = "width"
) -> BinStats:
    """Sums of confidence and of a 0/1 outcome in each bin of the confidence."""
    confidence = np.asarray(confidence, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    index = _bin_index(confidence, n_bins, binning)
    return BinStats(
        count=np.bincount(index, minlength=n_bins).astype(np.float64),
        sum_confidence=np.bincount(index, weights=confidence, minlength=n_bins),
        sum_outcome=np.bincount(index, weights=outcome, minlength=n_bins),
    )


def _top_label(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = as_probs(probs)
    y = as_labels(labels, len(p), p.shape[1])
    pred = p.argmax(axis=1)
    return p[np.arange(len(p)), pred], (pred == y).astype(np.float64)


def top_label_ece(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width"
) -> float:
    """Top-label expected calibration error ``sum_j |B_j|/n |acc(B_j) - conf(B_j)|``.

    Four predictions in five equal-width bins: the bins of confidence 0.9 (right), 0.8
    (wrong) and {0.7, 0.6} (both right) are off by 0.1, 0.8 and 0.35:

    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> round(top_label_ece(probs, np.array([0, 1, 1, 0]), n_bins=5), 6)
    0.35
    """
    conf, correct = _top_label(probs, labels)
    if len(conf) == 0:
        return float("nan")
    stats = bin_stats(conf, correct, n_bins, binning)
    return float(np.sum(stats.weight * stats.gap))


def max_calibration_error(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width"
) -> float:
    """Maximum over non-empty bins of ``|acc(B_j) - conf(B_j)|``."""
    conf, correct = _top_label(probs, labels)
    if len(conf) == 0:
        return float("nan")
    return float(np.max(bin_stats(conf, correct, n_bins, binning).gap))


def classwise_ece(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width"
) -> float:
    """Class-wise ECE: the mean over classes of the ECE of ``p_k`` against ``1[y = k]``."""
    p = as_probs(probs)
    y = as_labels(labels, len(p), p.shape[1])
    if len(p) == 0:
        return float("nan")
    per_class = []
    for k in range(p.shape[1]):
        stats = bin_stats(p[:, k], (y == k).astype(np.float64), n_bins, binning)
        per_class.append(np.sum(stats.weight * stats.gap))
    return float(np.mean(per_class))


def reliability_table(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width"
) -> pd.DataFrame:
    """Reliability-diagram data of the top label, one row per bin (empty bins included).

    Columns: ``bin`` (0-based), ``bin_lower``, ``bin_upper`` (edges; for equal-mass bins the
    smallest and largest confidence in the bin, NaN when empty), ``count``, ``weight``
    (count / n), ``mean_confidence``, ``accuracy`` (NaN when empty), ``gap`` (accuracy minus
    confidence, NaN when empty).
    """
    conf, correct = _top_label(probs, labels)
    stats = bin_stats(conf, correct, n_bins, binning)
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    else:
        index = equal_mass_bin_index(conf, n_bins)
        lower = np.full(n_bins, np.nan)
        upper = np.full(n_bins, np.nan)
        for j in np.unique(index):
            lower[j], upper[j] = conf[index == j].min(), conf[index == j].max()
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "bin_lower": lower,
            "bin_upper": upper,
            "count": stats.count.astype(np.int64),
            "weight": stats.weight,
            "mean_confidence": stats.mean_confidence,
            "accuracy": stats.mean_outcome,
            "gap": stats.mean_outcome - stats.mean_confidence,
        }
    )


# --- calibration against its noise floor, debiased and human-referenced calibration errors ---


def _binned_ece_of_outcomes(
    index: np.ndarray, confidence: np.ndarray, outcomes: np.ndarray, n_bins: int
) -> np.ndarray:
    """ECE of each row of ``outcomes`` (R, n) for fixed bins and confidences.

    ``sum_j |B_j|/n |mean outcome - mean confidence|`` equals ``sum_j |sum_{i in B_j}
    (outcome_i - confidence_i)| / n``, so one weighted count bins every row at once.
    """
    n = len(confidence)
    rows = outcomes.shape[0]
    # one bincount over (row, bin) pairs: no BLAS call, which is slow on small busy CPUs
    keys = (np.arange(rows)[:, None] * n_bins + index[None, :]).ravel()
    sums = np.bincount(
        keys, weights=(outcomes - confidence[None, :]).ravel(), minlength=rows * n_bins
    )
    return np.abs(sums.reshape(rows, n_bins)).sum(axis=1) / n


def sample_labels(probs: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n) labels, each item's drawn from its own predicted distribution."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((draws, len(probs))) * cdf[:, -1][None, :]
    labels = (cdf[None, :, :] <= u[:, :, None]).sum(axis=2)
    return np.minimum(labels, probs.shape[1] - 1)


def ece_noise_floor(
    probs: np.ndarray,
    n_bins: int = 15,
    draws: int = 200,
    seed: int = 0,
    kinds: tuple[str, ...] = ("width", "mass", "classwise"),
) -> dict[str, np.ndarray]:
    """ECE values that a perfectly calibrated model with these predictions would show.

    Labels are drawn ``draws`` times from the model's own predicted distributions (so the
    model is calibrated by construction) and scored with the same estimator and bins as the
    observed ECE. Returns, per kind (``width``: top-label ECE with equal-width bins,
    ``mass``: equal-mass bins, ``classwise``: class-wise ECE with equal-width bins), the
    ``draws`` ECE values. An observed ECE inside their range is indistinguishable from
    perfect calibration on this many items.
    """
    p = as_probs(probs)
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    if len(p) == 0:
        return {kind: np.full(draws, np.nan) for kind in kinds}
    labels = sample_labels(p, draws, np.random.default_rng(seed))
    pred = p.argmax(axis=1)
    conf = p[np.arange(len(p)), pred]
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        if kind in BINNINGS:
            correct = (labels == pred[None, :]).astype(np.float64)
            index = _bin_index(conf, n_bins, kind)
            out[kind] = _binned_ece_of_outcomes(index, conf, correct, n_bins)
        elif kind == "classwise":
            per_class = [
                _binned_ece_of_outcomes(
                    equal_width_bin_index(p[:, k], n_bins),
                    p[:, k],
                    (labels == k).astype(np.float64),
                    n_bins,
                )
                for k in range(p.shape[1])
            ]
            out[kind] = np.mean(per_class, axis=0)
        else:
            raise ValueError(f"unknown ECE kind {kind!r}; choose from {BINNINGS + ('classwise',)}")
    return out


def kumar_equal_mass_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Upper bin edges of the equal-mass binning of Kumar et al. (2019) (``get_equal_bins`` of
    the ``uncertainty-calibration`` package): sorted values split into ``n_bins`` near-equal
    runs, edges halfway between neighbouring runs, then 1.0, duplicates dropped."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    parts = np.array_split(s, min(n_bins, len(s)))
    edges = [(parts[i][-1] + parts[i + 1][0]) / 2.0 for i in range(len(parts) - 1)]
    return np.unique(np.asarray(edges + [1.0]))


def debiased_l2_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Debiased top-label L2 calibration error of Kumar, Liang & Ma (2019).

    Equal-mass bins (:func:`kumar_equal_mass_edges`, item ``i`` in the first bin whose edge is
    >= its confidence); per bin with ``n_j >= 2`` items the plug-in squared gap
    ``(mean conf - mean correct)^2`` minus the binomial variance of the mean outcome
    ``a_j (1 - a_j) / (n_j - 1)``; bins of one item count 0. The weighted sum over bins
    (weights ``n_j / n``) is clipped at 0 and square-rooted. Reproduces
    ``calibration.get_top_calibration_error(probs, labels, p=2, debias=True)`` of the
    ``uncertainty-calibration`` package for continuous confidences (tests check it), with
    numpy instead of Python lists. Unlike the plug-in ECE, its expectation for a perfectly
    calibrated model is close to 0 whatever the number of items.
    """
    conf, correct = _top_label(probs, labels)
    n = len(conf)
    if n == 0:
        return float("nan")
    edges = kumar_equal_mass_edges(conf, n_bins)
    index = np.searchsorted(edges, conf, side="left")
    count = np.bincount(index, minlength=len(edges)).astype(np.float64)
    sum_conf = np.bincount(index, weights=conf, minlength=len(edges))
    sum_correct = np.bincount(index, weights=correct, minlength=len(edges))
    ok = count >= 2
    mean_conf = sum_conf[ok] / count[ok]
    mean_correct = sum_correct[ok] / count[ok]
    err = (mean_conf - mean_correct) ** 2 - mean_correct * (1.0 - mean_correct) / (count[ok] - 1.0)
    return float(max(np.sum(count[ok] / n * err), 0.0) ** 0.5)


def human_agreement(probs: np.ndarray, human: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top confidence, human mass on the predicted class) per item: the model's confidence
    and the agreement it should expect from people if it were calibrated to them."""
    p = as_probs(probs)
    h = as_probs(human, "human")
    if h.shape != p.shape:
        raise ValueError(f"human labels {h.shape} and probs {p.shape} differ in shape")
    pred = p.argmax(axis=1)
    rows = np.arange(len(p))
    return p[rows, pred], h[rows, pred]


def human_ece(
    probs: np.ndarray, human: np.ndarray, n_bins: int = 15, binning: str = "width"
) -> float:
    """Top-label ECE against the human soft label: per confidence bin, the gap between the mean
    confidence and the mean human mass on the predicted class (expected human agreement)."""
    conf, agreement = human_agreement(probs, human)
    if len(conf) == 0:
        return float("nan")
    stats = bin_stats(conf, agreement, n_bins, binning)
    return float(np.sum(stats.weight * stats.gap))
