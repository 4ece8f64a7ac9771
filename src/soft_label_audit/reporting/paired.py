"""Paired differences between label conditions over seeds.

Seed ``s`` trains every condition on the same data order and initialisation (the paired
design), so a condition is compared with a baseline through the per-seed differences
``d_s = metric(condition, s) - metric(baseline, s)``. With ``n`` seeds present in both, the
report gives the mean difference, its sample std (ddof=1) and the two-sided Student-t
confidence interval ``mean +/- t_{1-alpha/2, n-1} * std / sqrt(n)`` (NaN when n < 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

PAIRED_COLUMNS = [
    "source",
    "baseline",
    "condition",
    "metric",
    "n_pairs",
    "baseline_mean",
    "condition_mean",
    "mean_diff",
    "std_diff",
    "ci_low",
    "ci_high",
    "confidence",
]


def t_interval(diffs: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of the t-interval for the mean of ``diffs``."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return (float("nan"),) * 4
    mean = float(d.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sd / np.sqrt(n)
    return mean, sd, mean - half, mean + half


def _columns_t_interval(d: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """:func:`t_interval` of every column of ``d`` (seeds, metrics) at once: (n, mean, sd, low, high)."""
    finite = np.isfinite(d)
    n = finite.sum(axis=0)
    filled = np.where(finite, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=0) / n, np.nan)
        dev = np.where(finite, d - mean, 0.0)
        sd = np.where(n > 1, np.sqrt((dev**2).sum(axis=0) / (n - 1)), np.nan)
        t = stats.t.ppf(0.5 + confidence / 2, np.where(n > 1, n - 1, np.nan))
        half = t * sd / np.sqrt(n)
    return n, mean, sd, mean - half, mean + half


def _nanmean_columns(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, x, 0.0).sum(axis=0) / count, np.nan)


def paired_differences(
    metrics_by_run: pd.DataFrame,
    metrics: list[str],
    baselines: list[str],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Long table: one row per (source, baseline, condition, metric), conditions other than the baseline."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    parts = []
    for source, per_source in metrics_by_run.groupby("source", sort=False):
        wide = per_source.set_index(["condition", "seed"])[metrics]
        conditions = list(dict.fromkeys(per_source["condition"]))
        for baseline in baselines:
            if baseline not in conditions:
                raise ValueError(
                    f"baseline condition {baseline!r} has no runs for source {source!r}"
                )
            base = wide.loc[baseline]
            for condition in conditions:
                if condition == baseline:
                    continue
                other = wide.loc[condition]
                seeds = base.index.intersection(other.index)
                b = (
                    base.loc[seeds, metrics]
                    .to_numpy(dtype=np.float64)
                    .reshape(len(seeds), len(metrics))
                )
                c = (
                    other.loc[seeds, metrics]
                    .to_numpy(dtype=np.float64)
                    .reshape(len(seeds), len(metrics))
                )
                n, mean, sd, low, high = _columns_t_interval(c - b, confidence)
                parts.append(
                    pd.DataFrame(
                        {
                            "source": source,
                            "baseline": baseline,
                            "condition": condition,
                            "metric": metrics,
                            "n_pairs": n.astype(int),
                            "baseline_mean": _nanmean_columns(b),
                            "condition_mean": _nanmean_columns(c),
                            "mean_diff": mean,
                            "std_diff": sd,
                            "ci_low": low,
                            "ci_high": high,
                            "confidence": confidence,
                        }
                    )
                )
    if not parts:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    return pd.concat(parts, ignore_index=True)[PAIRED_COLUMNS]
