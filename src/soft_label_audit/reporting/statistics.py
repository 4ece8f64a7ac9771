"""Seed-and-item bootstrap of every paired difference, and the tables built on it.

:func:`source_runs` gathers a source's test predictions into arrays;
:func:`bootstrap_paired` adds to the seed-only t-interval table of
:mod:`soft_label_audit.reporting.paired` a percentile bootstrap interval and p-value for
every (source, baseline, condition, metric): seeds and test items resampled jointly
(:mod:`soft_label_audit.reporting.bootstrap`) for the metrics that are means or binned sums
over items, seeds only for the others (column ``resampled``).

Two scopes of items (:data:`soft_label_audit.reporting.bootstrap.SCOPES`):
:func:`build_bootstraps` gives the annotated test items of every source (human labels and
bands; per-seed values from metrics_by_run), :func:`build_pool_bootstraps` the unannotated
scoring pool (``{source}.{condition}.pool_predictions`` with the original labels of
``pool_digits``; label-free metrics only, their per-seed values computed from the registry by
:class:`ScopePerSeed`). The pool's draws are an independent stream of the same seed. The
paired-differences table is of the test scope; the claims pick the scope they declare.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from soft_label_audit.columns import H_COLS, P_COLS
from soft_label_audit.human_labels import human_digits
from soft_label_audit.metrics import registry
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
    probs, seeds, items = _probability_array(table, source, conditions, "test_predictions")
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


def _probability_array(
    table: pd.DataFrame, source: str, conditions: list[str], kind: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((C, S, n, K) probabilities, sorted seeds, sorted item ids) of one source's predictions;
    one sort and one reshape (10,000 pool items x 6 seeds x 9 conditions in well under a
    second), refusing a run that does not predict exactly the shared items."""
    seeds = np.sort(table["seed"].unique())
    items = np.sort(table["item_id"].unique())
    probs = np.full((len(conditions), len(seeds), len(items), len(P_COLS)), np.nan)
    for c, condition in enumerate(conditions):
        sub = table[table["condition"].astype(str) == condition]
        for s, seed in enumerate(seeds):
            run = sub[sub["seed"] == seed]
            ids = run["item_id"].to_numpy()
            order = np.argsort(ids, kind="stable")
            if len(run) != len(items) or not np.array_equal(ids[order], items):
                raise ValueError(
                    f"{source}.{condition}.{kind} seed {seed}: predicts {len(run)} items, "
                    f"expected the {len(items)} items shared by every condition and seed of {source!r} "
                    "(the paired bootstrap needs the same items and seeds everywhere)"
                )
            probs[c, s] = run[list(P_COLS)].to_numpy(dtype=np.float64)[order]
    return probs, seeds, items


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


class ScopePerSeed:
    """Per-seed values (C, S) of the label-free metrics on a pool scope, computed from its
    predictions with the registry's own entries (the same values a run's scores would hold);
    the lookup of :class:`PerSeed`, without a metrics table."""

    def __init__(self, runs: bootstrap.SourceRuns, n_bins: int):
        self.runs, self.n_bins = runs, n_bins
        self.conditions = {c: k for k, c in enumerate(runs.conditions)}
        settings = registry.Settings(n_bins=n_bins)
        self._entries = {
            name: metric
            for metric in registry.METRICS
            for name in (
                (metric.column(n_bins),) if hasattr(metric, "column") else metric.names(settings)
            )
            if bootstrap.is_label_free(name)
        }
        self._values: dict[str, np.ndarray] = {}

    def __contains__(self, metric: str) -> bool:
        return metric in self._entries

    def get(self, metric: str, conditions: list[str] | None = None) -> np.ndarray:
        if metric not in self._values:
            entry, runs = self._entries[metric], self.runs
            C, S = runs.probs.shape[:2]
            if isinstance(entry, registry.ItemMetric):
                table = entry.per_item(runs.probs, runs.items).mean(axis=-1)
            else:
                settings = registry.Settings(n_bins=self.n_bins)
                table = np.array(
                    [
                        [
                            entry.score(runs.probs[c, s], runs.items, settings)[metric]
                            for s in range(S)
                        ]
                        for c in range(C)
                    ]
                )
            self._values[metric] = table
        table = self._values[metric]
        if conditions is None:
            return table
        return table[[self.conditions[c] for c in conditions]]


class SourceBootstrap:
    """Resampled per-condition metric values of one source on one scope, computed once and
    cached. A ``test`` scope reads its per-seed values from metrics_by_run; a ``pool`` scope
    (``metrics_by_run`` None) computes them (:class:`ScopePerSeed`)."""

    def __init__(
        self,
        runs: bootstrap.SourceRuns,
        metrics_by_run: pd.DataFrame | None,
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
        self.scope = runs.scope
        # the pool's draws are independent of the test items' (another stream)
        stream = [] if runs.scope == "test" else [bootstrap.SCOPES.index(runs.scope)]
        rng = np.random.default_rng([seed, len(source), *source.encode(), *stream])
        S, n = len(runs.seeds), len(runs.item_ids)
        self.draws = bootstrap.draw(n_resamples, S, n, rng)
        self.item_resampled = set(bootstrap.item_resampled_metrics(runs, n_bins))
        if metrics_by_run is None:
            self.per_seed = ScopePerSeed(runs, n_bins)
        else:
            self.per_seed = PerSeed(metrics_by_run, source, list(runs.conditions), runs.seeds)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._prepared: dict[str, Any] = {}

    def prepared(self, name: str):
        """:func:`bootstrap.prepare`'s array of an item-resampled metric (without band)."""
        if name not in self._prepared:
            self._prepared[name] = bootstrap.prepare(self.runs, name, self.n_bins)
        return self._prepared[name]

    def resampled_by_seed(self, metric: str) -> tuple[np.ndarray, np.ndarray | None, str]:
        """(B, C) seed-and-item resampled values, (B, C, S) each seed's value on the drawn
        items (seeds not resampled; None for a metric resampled over seeds only) and how."""
        if metric in self.item_resampled:
            if metric not in self._cache:
                name = metric.split(BAND_SEPARATOR)[0]
                self._cache[metric] = bootstrap.resample_metric(
                    self.runs,
                    metric,
                    self.draws,
                    self.n_bins,
                    prepared=self.prepared(name),
                    by_seed=True,
                )
            both, fixed = self._cache[metric]
            return both, fixed, RESAMPLED_BOTH
        if self.scope != "test" and metric not in self.per_seed:
            raise ValueError(
                f"{metric!r} needs human labels: not available on the {self.scope} scope"
            )
        return (
            bootstrap.seed_bootstrap(self.per_seed.get(metric), self.draws),
            None,
            RESAMPLED_SEEDS,
        )

    def resampled(self, metric: str) -> tuple[np.ndarray, str]:
        """(B, C) resampled values and how they were resampled."""
        both, _, how = self.resampled_by_seed(metric)
        return both, how


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


def pool_source_runs(
    pool_predictions: pd.DataFrame, pool_digits: pd.DataFrame, source: str, conditions: list[str]
) -> bootstrap.SourceRuns:
    """The pool scope of one source: its pool predictions (every condition and seed on the same
    pool items) with the items' original labels from ``pool_digits``."""
    table = pool_predictions[pool_predictions["source"].astype(str) == source]
    probs, seeds, items = _probability_array(table, source, conditions, "pool_predictions")
    labels = pool_digits[pool_digits["source"].astype(str) == source].set_index("item_id")
    missing = pd.Index(items).difference(labels.index)
    if len(missing):
        raise ValueError(
            f"pool items {missing.tolist()[:5]} of {source!r} have no pool_digits row "
            "(their original label is needed)"
        )
    original = labels.loc[items, "original_label"].to_numpy(dtype=np.int64)
    return bootstrap.pool_runs(tuple(conditions), seeds, items, probs, original)


def build_pool_bootstraps(
    pool_predictions: pd.DataFrame | None,
    pool_digits: pd.DataFrame | None,
    metrics_by_run: pd.DataFrame,
    n_bins: int,
    n_resamples: int,
    seed: int,
) -> dict[str, SourceBootstrap]:
    """One pool-scope :class:`SourceBootstrap` per source of metrics_by_run that has pool
    predictions (none when there are none), conditions in study order."""
    if pool_predictions is None or pool_digits is None or not len(pool_predictions):
        return {}
    out = {}
    sources = set(pool_predictions["source"].astype(str))
    for source in dict.fromkeys(metrics_by_run["source"].astype(str)):
        if source not in sources:
            continue
        conditions = list(
            dict.fromkeys(
                metrics_by_run.loc[
                    metrics_by_run["source"].astype(str) == source, "condition"
                ].astype(str)
            )
        )
        runs = pool_source_runs(pool_predictions, pool_digits, source, conditions)
        out[source] = SourceBootstrap(runs, None, source, n_bins, n_resamples, seed)
    return out
