"""Stability across seeds as a tested difference: the ratio of seed-to-seed spreads.

For a metric, the spread of a condition is the sample standard deviation (ddof=1) of its
per-seed values; a condition is compared with a baseline through ``std(condition) /
std(baseline)``. Its interval comes from ``scipy.stats.bootstrap`` with ``paired=True``: seeds
are resampled jointly for both conditions (seed s shares initialisation and data order across
conditions), the test items are held fixed (the spread is a seed-level quantity). The
statistic is the log ratio; a resample whose baseline spread is 0 (every drawn seed the same)
is undefined and dropped before the percentile interval is read. The two-sided p-value of
"ratio = 1" is read from the same resamples (:func:`bootstrap_p_value`).

A standard deviation from S seeds has a relative standard error of about
``1 / sqrt(2 (S - 1))`` for normal data (31.6% for 6 seeds): a single ratio of two spreads
from 6 seeds needs a factor of about 3 to be told from 1.

:func:`stability_ratios` tabulates the ratio of every condition to a baseline, per source.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from soft_label_audit.reporting.bootstrap import bootstrap_p_value, percentile_interval

if TYPE_CHECKING:
    from soft_label_audit.reporting.statistics import SourceBootstrap

log = logging.getLogger(__name__)


def std_relative_error(n_seeds: int) -> float:
    """Approximate relative standard error of a sample std from ``n_seeds`` normal values."""
    return float(1.0 / np.sqrt(2.0 * (n_seeds - 1))) if n_seeds > 1 else float("nan")


def _log_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.std(x, axis=axis, ddof=1) / np.std(y, axis=axis, ddof=1))


def spread_ratio(
    condition: np.ndarray,
    baseline: np.ndarray,
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Ratio of seed spreads with its paired bootstrap interval and p-value.

    ``condition`` and ``baseline`` hold one value per seed, the same seeds in the same order.
    """
    x = np.asarray(condition, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"spread_ratio needs paired per-seed values, got shapes {x.shape} and {y.shape}"
        )
    out = {
        "n_seeds": len(x),
        "std_condition": float("nan"),
        "std_baseline": float("nan"),
        "ratio": float("nan"),
        "ratio_low": float("nan"),
        "ratio_high": float("nan"),
        "p_value": float("nan"),
        "log_ratio_boot": np.array([]),
    }
    if len(x) < 3 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return out
    sx, sy = float(np.std(x, ddof=1)), float(np.std(y, ddof=1))
    out.update(std_condition=sx, std_baseline=sy, ratio=sx / sy if sy > 0 else float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples give inf/NaN; dropped below
        res = stats.bootstrap(
            (x, y),
            _log_ratio,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            method="percentile",
            confidence_level=confidence,
            rng=np.random.default_rng(seed),
        )
    boot = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    boot = boot[np.isfinite(boot)]
    lo, hi = percentile_interval(boot, confidence)
    out.update(
        ratio_low=float(np.exp(lo)),
        ratio_high=float(np.exp(hi)),
        p_value=bootstrap_p_value(boot, 0.0),
        log_ratio_boot=boot,
    )
    return out


def detectable_spread_ratio(n_seeds: int, alpha: float, power: float = 0.8) -> float:
    """Smallest std ratio (< 1) that a two-sided F-test of equal variances (independent samples
    of ``n_seeds`` each) detects with the given power; positive pairing only helps."""
    if n_seeds < 2:
        return float("nan")
    df = n_seeds - 1
    return float(np.sqrt(stats.f.ppf(alpha / 2, df, df) / stats.f.ppf(power, df, df)))


def stability_ratios(
    boots: dict[str, SourceBootstrap],
    metrics: list[str],
    baseline: str,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> pd.DataFrame:
    """Per (source, condition): for each metric, the ratio of seed spreads to ``baseline`` with
    its interval, and the relative error of a std from the study's number of seeds."""
    rows = []
    for source, boot in boots.items():
        conditions = list(boot.runs.conditions)
        if baseline not in conditions:
            log.warning("stability ratios skipped for %s: no %s runs", source, baseline)
            continue
        for condition in conditions:
            row: dict[str, Any] = {
                "source": source,
                "condition": condition,
                "std_relative_error": std_relative_error(len(boot.runs.seeds)),
            }
            for metric in metrics:
                if metric not in boot.per_seed:
                    continue
                per_seed = boot.per_seed.get(metric, [baseline, condition])
                res = spread_ratio(per_seed[1], per_seed[0], n_resamples, seed, confidence)
                row |= {
                    f"{metric}__std_ratio": res["ratio"],
                    f"{metric}__std_ratio_low": res["ratio_low"],
                    f"{metric}__std_ratio_high": res["ratio_high"],
                    f"{metric}__std_ratio_p": res["p_value"],
                }
            rows.append(row)
    return pd.DataFrame(rows)
