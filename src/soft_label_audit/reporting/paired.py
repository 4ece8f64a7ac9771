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


def paired_differences(
    metrics_by_run: pd.DataFrame,
    metrics: list[str],
    baselines: list[str],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Long table: one row per (source, baseline, condition, metric), conditions other than the baseline."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rows = []
    for source, per_source in metrics_by_run.groupby("source", sort=False):
        wide = per_source.set_index(["condition", "seed"])[metrics]
        conditions = list(dict.fromkeys(per_source["condition"]))
        for baseline in baselines:
            if baseline not in conditions:
                raise ValueError(f"baseline condition {baseline!r} has no runs for source {source!r}")
            base = wide.loc[baseline]
            for condition in conditions:
                if condition == baseline:
                    continue
                other = wide.loc[condition]
                seeds = base.index.intersection(other.index)
                for metric in metrics:
                    b = base.loc[seeds, metric].to_numpy(dtype=np.float64)
                    c = other.loc[seeds, metric].to_numpy(dtype=np.float64)
                    mean, sd, low, high = t_interval(c - b, confidence)
                    rows.append(
                        {
                            "source": source,
                            "baseline": baseline,
                            "condition": condition,
                            "metric": metric,
                            "n_pairs": int(np.sum(np.isfinite(c - b))),
                            "baseline_mean": float(np.nanmean(b)) if np.isfinite(b).any() else float("nan"),
                            "condition_mean": float(np.nanmean(c)) if np.isfinite(c).any() else float("nan"),
                            "mean_diff": mean,
                            "std_diff": sd,
                            "ci_low": low,
                            "ci_high": high,
                            "confidence": confidence,
                        }
                    )
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)
