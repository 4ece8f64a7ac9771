"""Seed-and-item bootstrap of every paired difference, and the tables built on it.

:func:`source_runs` gathers a source's test predictions into arrays;
:func:`bootstrap_paired` adds to the seed-only t-interval table of
:mod:`soft_label_audit.reporting.paired` a percentile bootstrap interval and p-value for
every (source, baseline, condition, metric): seeds and test items resampled jointly
(:mod:`soft_label_audit.reporting.bootstrap`) for the metrics that are means or binned sums
over items, seeds only for the others (column ``resampled``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from soft_label_audit.columns import H_COLS, P_COLS
from soft_label_audit.human_labels import human_digits
from soft_label_audit.metrics.bands import difficulty_band
from soft_label_audit.metrics.per_run import BAND_SEPARATOR
from soft_label_audit.reporting import bootstrap

if TYPE_CHECKING:
    from soft_label_audit.configs import Bands, EvaluationConfig

log = logging.getLogger(__name__)

RESAMPLED_BOTH = "seeds+items"
RESAMPLED_SEEDS = "seeds"


def source_runs(
    predictions: pd.DataFrame,
    source: str,
    conditions: list[str],
    human_soft_labels: pd.DataFrame,
    item_stats: pd.DataFrame,
    none_slot: str,
    bands: Bands,
) -> bootstrap.SourceRuns:
    """Arrays of one source; every condition and seed must have predicted the same items."""
    table = predictions[predictions["source"].astype(str) == source]
    seeds = np.sort(table["seed"].unique())
    items = np.sort(table["item_id"].unique())
    probs = np.full((len(conditions), len(seeds), len(items), len(P_COLS)), np.nan)
    for c, condition in enumerate(conditions):
        sub = table[table["condition"].astype(str) == condition]
        for s, seed in enumerate(seeds):
            run = sub[sub["seed"] == seed].set_index("item_id")
            if len(run) != len(items) or not run.index.sort_values().equals(pd.Index(items)):
                raise ValueError(
                    f"{source}.{condition}.test_predictions seed {seed}: predicts {len(run)} items, "
                    f"expected the {len(items)} test items shared by every condition and seed of {source!r} "
                    "(the paired bootstrap needs the same items and seeds everywhere)"
                )
            probs[c, s] = run.loc[items, list(P_COLS)].to_numpy(dtype=np.float64)
    info = pd.DataFrame({"item_id": items})
    info = info.merge(
        item_stats[["item_id", "original_label", "human_mode", "human_entropy"]],
        on="item_id",
        how="left",
        validate="one_to_one",
    )
    info = info.merge(
        human_soft_labels[["item_id", *H_COLS]], on="item_id", how="left", validate="one_to_one"
    )
    missing = info.loc[info.isna().any(axis=1), "item_id"]
    if len(missing):
        raise ValueError(
            f"test items {missing.tolist()[:5]} of {source!r} lack an item_stats or human_soft_labels row"
        )
    entropy = info["human_entropy"].to_numpy(dtype=np.float64)
    return bootstrap.SourceRuns(
        conditions=tuple(conditions),
        seeds=seeds,
        item_ids=items,
        probs=probs,
        original=info["original_label"].to_numpy(dtype=np.int64),
        mode=info["human_mode"].to_numpy(dtype=np.int64),
        human=human_digits(info[list(H_COLS)].to_numpy(dtype=np.float64), none_slot),
        band=difficulty_band(entropy, bands.unanimous_max, bands.low_max),
        human_entropy=entropy,
    )


class PerSeed:
    """Every numeric metric of one source as a (C, S) array, looked up without pandas."""

    def __init__(
        self, metrics_by_run: pd.DataFrame, source: str, conditions: list[str], seeds: np.ndarray
    ):
        sub = metrics_by_run[metrics_by_run["source"].astype(str) == source]
        sub = sub.assign(condition=sub["condition"].astype(str)).set_index(["condition", "seed"])
        numeric = [c for c in sub.columns if pd.api.types.is_numeric_dtype(sub[c])]
        index = pd.MultiIndex.from_product(
            [list(conditions), list(seeds)], names=["condition", "seed"]
        )
        self.columns = {c: k for k, c in enumerate(numeric)}
        self.conditions = {c: k for k, c in enumerate(conditions)}
        self.values = (
            sub[numeric]
            .reindex(index)
            .to_numpy(dtype=np.float64)
            .reshape(len(conditions), len(seeds), len(numeric))
        )

    def __contains__(self, metric: str) -> bool:
        return metric in self.columns

    def get(self, metric: str, conditions: list[str] | None = None) -> np.ndarray:
        """(C', S) values of ``metric`` for ``conditions`` (all, in study order, by default)."""
        table = self.values[:, :, self.columns[metric]]
        if conditions is None:
            return table
        return table[[self.conditions[c] for c in conditions]]


def paired_t_p_values(mean_diff, std_diff, n_pairs) -> np.ndarray:
    """Two-sided p-values of the paired t-test over seeds (mean difference = 0), from the
    mean, the sample std and the number of pairs; 1 for a zero difference without spread."""
    mean = np.asarray(mean_diff, dtype=np.float64)
    sd = np.asarray(std_diff, dtype=np.float64)
    n = np.asarray(n_pairs, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = mean / (sd / np.sqrt(n))
        p = 2 * stats.t.sf(np.abs(t), np.where(n > 1, n - 1, np.nan))
    p = np.where((sd == 0) & (mean == 0), 1.0, p)
    return np.where(n > 1, p, np.nan)


def percentile_intervals(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise :func:`bootstrap.percentile_interval` of (B, R) samples, NaN ignored."""
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            lo, hi = np.nanquantile(samples, [0.5 - confidence / 2, 0.5 + confidence / 2], axis=0)
    return lo, hi


def bootstrap_p_values(samples: np.ndarray, null: float = 0.0) -> np.ndarray:
    """Column-wise :func:`bootstrap.bootstrap_p_value` of (B, R) samples."""
    finite = np.isfinite(samples)
    count = finite.sum(axis=0)
    below = (1 + np.sum(finite & (samples <= null), axis=0)) / (1 + count)
    above = (1 + np.sum(finite & (samples >= null), axis=0)) / (1 + count)
    return np.where(count > 0, np.minimum(1.0, 2 * np.minimum(below, above)), np.nan)


class SourceBootstrap:
    """Resampled per-condition metric values of one source, computed once and cached."""

    def __init__(
        self,
        runs: bootstrap.SourceRuns,
        metrics_by_run: pd.DataFrame,
        source: str,
        n_bins: int,
        n_resamples: int,
        seed: int,
    ):
        self.runs, self.metrics_by_run, self.source, self.n_bins = (
            runs,
            metrics_by_run,
            source,
            n_bins,
        )
        rng = np.random.default_rng([seed, len(source), *source.encode()])
        S, n = len(runs.seeds), len(runs.item_ids)
        self.draws = bootstrap.draw(n_resamples, S, n, rng)
        # item-only draws (seeds held fixed): the item component of the variance, for power
        self.item_draws = bootstrap.Draws(np.ones((n_resamples, S)), self.draws.items)
        self.item_resampled = set(bootstrap.item_resampled_metrics(runs, n_bins))
        self.per_seed = PerSeed(metrics_by_run, source, list(runs.conditions), runs.seeds)
        self._cache: dict[tuple[str, bool], np.ndarray] = {}
        self._prepared: dict[str, np.ndarray] = {}

    def resampled(self, metric: str, items_only: bool = False) -> tuple[np.ndarray, str]:
        """(B, C) resampled values and how they were resampled."""
        key = (metric, items_only)
        if metric in self.item_resampled:
            if key not in self._cache:
                draws = self.item_draws if items_only else self.draws
                name = metric.split(BAND_SEPARATOR)[0]
                if name not in self._prepared:
                    self._prepared[name] = bootstrap.prepare(self.runs, name, self.n_bins)
                self._cache[key] = bootstrap.resample_metric(
                    self.runs, metric, draws, self.n_bins, prepared=self._prepared[name]
                )
            return self._cache[key], RESAMPLED_BOTH
        per_seed = self.per_seed.get(metric)
        if items_only:
            return np.zeros((self.draws.n_resamples, len(self.runs.conditions))) + per_seed.mean(
                axis=1
            ), RESAMPLED_SEEDS
        return bootstrap.seed_bootstrap(per_seed, self.draws), RESAMPLED_SEEDS


def bootstrap_paired(
    paired: pd.DataFrame, boots: dict[str, SourceBootstrap], confidence: float
) -> pd.DataFrame:
    """``paired`` (one row per source, baseline, condition, metric) with ``boot_low``,
    ``boot_high``, ``p_value`` (bootstrap, two-sided), ``p_t`` (paired t-test over seeds) and
    ``resampled``. Rows of one (source, metric) share one resampled array."""
    out = paired.reset_index(drop=True)
    n = len(out)
    low, high, p_boot = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    how = np.empty(n, dtype=object)
    for (source, metric), rows in out.groupby(["source", "metric"], sort=False):
        boot = boots[str(source)]
        values, resampled = boot.resampled(str(metric))
        cond = [boot.runs.index(str(c)) for c in rows["condition"]]
        base = [boot.runs.index(str(b)) for b in rows["baseline"]]
        diff = values[:, cond] - values[:, base]  # (B, rows)
        idx = rows.index.to_numpy()
        low[idx], high[idx] = percentile_intervals(diff, confidence)
        p_boot[idx] = bootstrap_p_values(diff)
        how[idx] = resampled
    p_t = paired_t_p_values(out["mean_diff"], out["std_diff"], out["n_pairs"])
    return out.assign(boot_low=low, boot_high=high, p_value=p_boot, p_t=p_t, resampled=how)


def build_bootstraps(
    metrics_by_run: pd.DataFrame,
    predictions: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    item_stats: pd.DataFrame,
    none_slot: str,
    evaluation: EvaluationConfig,
    n_resamples: int,
    seed: int,
) -> dict[str, SourceBootstrap]:
    """One :class:`SourceBootstrap` per source of metrics_by_run, conditions in study order;
    items banded by ``evaluation.bands``, calibration binned by ``evaluation.n_bins``."""
    out = {}
    for source in dict.fromkeys(metrics_by_run["source"].astype(str)):
        conditions = list(
            dict.fromkeys(
                metrics_by_run.loc[
                    metrics_by_run["source"].astype(str) == source, "condition"
                ].astype(str)
            )
        )
        runs = source_runs(
            predictions,
            source,
            conditions,
            human_soft_labels,
            item_stats,
            none_slot,
            evaluation.bands,
        )
        out[source] = SourceBootstrap(
            runs, metrics_by_run, source, evaluation.n_bins, n_resamples, seed
        )
    return out
