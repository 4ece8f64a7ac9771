"""Stability of a label condition across training seeds.

* metric spread: for every metric, the sample standard deviation (ddof=1) and the range over
  seeds;
* validation-curve spread: per epoch, the mean and sample std over seeds of each validation
  curve;
* convergence epoch of one run: the first epoch at which the run has made ``fraction`` of the
  improvement it ever makes over its first epoch, i.e. for a lower-is-better curve ``c``
  the first ``e`` with ``c_1 - c_e >= fraction * (c_1 - min_e' c_e')`` (epoch 1 when the
  curve never improves). Scale free, so it compares losses of different targets;
* prediction disagreement between seeds: the mean over unordered seed pairs of the fraction
  of test items whose predicted classes differ.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd


def convergence_epoch(
    epochs: np.ndarray, values: np.ndarray, fraction: float = 0.95, higher_is_better: bool = False
) -> int:
    """First epoch reaching ``fraction`` of the run's total improvement over its first epoch."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    order = np.argsort(np.asarray(epochs))
    e = np.asarray(epochs)[order]
    v = np.asarray(values, dtype=np.float64)[order]
    if len(v) == 0:
        raise ValueError("a curve needs at least one epoch")
    if higher_is_better:
        v = -v
    gain = v[0] - v
    best = gain.max()
    if best <= 0:
        return int(e[0])
    # tolerate float error when fraction is 1
    return int(e[np.argmax(gain >= fraction * best - 1e-12 * abs(best))])


def pairwise_disagreement(predicted: np.ndarray) -> float:
    """Mean over seed pairs of the fraction of items whose predicted class differs.

    ``predicted`` is (S, n) predicted classes of the same items under S seeds; NaN if S < 2.
    """
    predicted = np.asarray(predicted)
    if predicted.ndim != 2:
        raise ValueError("predicted must be (seeds, items)")
    pairs = list(combinations(range(predicted.shape[0]), 2))
    if not pairs or predicted.shape[1] == 0:
        return float("nan")
    return float(np.mean([np.mean(predicted[a] != predicted[b]) for a, b in pairs]))


def pairwise_total_variation(probs: np.ndarray) -> float:
    """Mean over seed pairs and items of ``(1/2) sum_k |p_a - p_b|``; ``probs`` is (S, n, K)."""
    probs = np.asarray(probs, dtype=np.float64)
    pairs = list(combinations(range(probs.shape[0]), 2))
    if not pairs or probs.shape[1] == 0:
        return float("nan")
    return float(np.mean([0.5 * np.abs(probs[a] - probs[b]).sum(axis=-1).mean() for a, b in pairs]))


SPREAD_STATS = ("mean", "std", "min", "max")


def metric_spread(
    table: pd.DataFrame, by: list[str], metrics: list[str], stats: tuple[str, ...] = SPREAD_STATS
) -> pd.DataFrame:
    """Per group: ``n_seeds`` and, for every metric, the chosen statistics over seeds.

    ``std`` is the sample standard deviation (ddof=1; NaN for a single seed). Columns are
    ``{metric}__{stat}``, metric by metric; groups keep their order of appearance.
    """
    unknown = set(stats) - set(SPREAD_STATS)
    if unknown:
        raise ValueError(f"unknown statistics {sorted(unknown)}; choose from {SPREAD_STATS}")
    grouped = table.groupby(by, sort=False)[metrics]
    parts = {
        stat: (grouped.std(ddof=1) if stat == "std" else getattr(grouped, stat)()) for stat in stats
    }
    out = pd.concat(parts, axis=1)
    out.columns = [f"{metric}__{stat}" for stat, metric in out.columns]
    ordered = [f"{m}__{s}" for m in metrics for s in parts]
    n_seeds = table.groupby(by, sort=False).size().rename("n_seeds")
    # copy() consolidates the column blocks: reset_index on a fragmented frame warns
    return pd.concat([n_seeds, out[ordered]], axis=1).copy().reset_index()


def curve_spread(curves: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Per group and epoch: mean and sample std over seeds of each curve column.

    Columns ``by + [epoch, n_seeds, {col}__mean, {col}__std]``.
    """
    grouped = curves.groupby([*by, "epoch"], sort=True)
    out = grouped[columns].agg(["mean", "std"])
    out.columns = [f"{c}__{s}" for c, s in out.columns]
    return pd.concat([grouped.size().rename("n_seeds"), out], axis=1).copy().reset_index()
