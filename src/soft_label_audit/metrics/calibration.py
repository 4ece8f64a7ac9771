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


def bin_stats(confidence: np.ndarray, outcome: np.ndarray, n_bins: int, binning: str = "width") -> BinStats:
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


def top_label_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width") -> float:
    """Top-label expected calibration error ``sum_j |B_j|/n |acc(B_j) - conf(B_j)|``."""
    conf, correct = _top_label(probs, labels)
    if len(conf) == 0:
        return float("nan")
    stats = bin_stats(conf, correct, n_bins, binning)
    return float(np.sum(stats.weight * stats.gap))


def max_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width") -> float:
    """Maximum over non-empty bins of ``|acc(B_j) - conf(B_j)|``."""
    conf, correct = _top_label(probs, labels)
    if len(conf) == 0:
        return float("nan")
    return float(np.max(bin_stats(conf, correct, n_bins, binning).gap))


def classwise_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width") -> float:
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


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, binning: str = "width") -> pd.DataFrame:
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
