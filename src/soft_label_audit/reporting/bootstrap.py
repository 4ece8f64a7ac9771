"""Hierarchical (seed-and-item) bootstrap of condition differences, vectorised with numpy.

The study is a crossed design: every seed of every condition predicts the same test items.
A resample draws ``S`` seeds with replacement from the ``S`` seeds and ``n`` items with
replacement from the ``n`` items, independently (the "pigeonhole" bootstrap of Owen, 2007),
and applies the SAME draw to every condition, so the pairing over seeds (shared
initialisation and data order) and over items is kept. A resampled metric of a condition is
the mean over the drawn seeds of the metric computed on the drawn items. Resampling both
factors makes the interval cover the variation of a new training seed and of a new set of
test items; for crossed designs it is slightly conservative (the seed-by-item interaction
enters twice, Owen 2007). With few seeds the seed factor's bootstrap variance is smaller than
its unbiased estimate by ``(S - 1) / S``.

A draw is held as counts: ``V`` (resamples, S) and ``W`` (resamples, n), each row a
multinomial draw; a resampled mean is then a product of matrices instead of a loop. What is
resampled over items, and how, is read from :mod:`soft_label_audit.metrics.registry`, the
same entries the per-run scores come from:

* an item metric, a mean over items of a per-item value ``x_{s,i}`` (accuracy, NLL, Brier,
  cross entropy and KL to the human label, ...), resamples to
  ``(1/S) sum_s V_bs (sum_i W_bi x_si) / (sum_i W_bi)``;
* a binned metric (top-label, class-wise and human ECE with equal-width bins, bins fixed by
  each item's own probabilities) is ``sum_j |sum_i D_ij| / n`` with the entry's deviations
  ``D_ij = 1[i in B_j] (outcome_i - conf_i)``, so ``W @ D`` gives it for every resample;
* a metric restricted to a band of items uses the same draws, counting only the band's
  items (its size varies across resamples, as it would in a new test set).

The registry's run metrics, which need ranks or re-binning of every resample (equal-mass
ECE, Spearman correlations, the noise floors), are not item-resampled here: :func:`seed_bootstrap` resamples
their per-seed values over seeds only. scipy.stats.bootstrap cannot draw two crossed factors
at once, which is why this module exists; it serves where one factor is resampled
(:mod:`soft_label_audit.reporting.stability`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soft_label_audit.metrics import registry
from soft_label_audit.metrics.per_run import BAND_SEPARATOR


@dataclass(frozen=True)
class SourceRuns:
    """Test predictions of one source: every condition and seed on the same items."""

    conditions: tuple[str, ...]
    seeds: np.ndarray  # (S,)
    item_ids: np.ndarray  # (n,)
    probs: np.ndarray  # (C, S, n, K)
    original: np.ndarray  # (n,) original labels
    mode: np.ndarray  # (n,) human modes
    human: np.ndarray  # (n, K) human label over the digits
    band: np.ndarray  # (n,) difficulty band names
    human_entropy: np.ndarray  # (n,) human entropy of item_stats

    @property
    def items(self) -> registry.Items:
        """The items' labels as the metric registry takes them."""
        return registry.Items(self.original, self.mode, self.human, self.human_entropy)

    def index(self, condition: str) -> int:
        return self.conditions.index(condition)


@dataclass(frozen=True)
class Draws:
    """Resample counts: ``seeds`` (B, S) and ``items`` (B, n); each row sums to S (n)."""

    seeds: np.ndarray
    items: np.ndarray

    @property
    def n_resamples(self) -> int:
        return len(self.seeds)


def draw(n_resamples: int, n_seeds: int, n_items: int, rng: np.random.Generator) -> Draws:
    """Counts of ``n_resamples`` draws with replacement of seeds and, independently, items."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if n_seeds < 1 or n_items < 1:
        raise ValueError(
            f"a bootstrap needs at least one seed and one item, got {n_seeds} and {n_items}"
        )
    seeds = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_resamples)
    items = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_resamples)
    return Draws(seeds.astype(np.float64), items.astype(np.float64))


def identity_draws(n_seeds: int, n_items: int) -> Draws:
    """The observed sample as a single "resample" (every seed and item once)."""
    return Draws(np.ones((1, n_seeds)), np.ones((1, n_items)))


def item_resampled_metrics(runs: SourceRuns, n_bins: int) -> list[str]:
    """Names (overall and per band) of the metrics :func:`resample_metric` resamples over items:
    the item and binned metrics of :mod:`soft_label_audit.metrics.registry`."""
    base = list(registry.item_resampled(n_bins))
    bands = list(dict.fromkeys(runs.band.tolist()))
    return base + [f"{m}{BAND_SEPARATOR}{b}" for m in base for b in bands]


def _entry(name: str, n_bins: int) -> registry.ItemResampled:
    entries = registry.item_resampled(n_bins)
    if name not in entries:
        raise ValueError(
            f"{name!r} is not resampled over items with {n_bins} bins; choose from {list(entries)}"
        )
    return entries[name]


def _split_band(name: str) -> tuple[str, str | None]:
    if BAND_SEPARATOR in name:
        metric, band = name.split(BAND_SEPARATOR, 1)
        return metric, band
    return name, None


def prepare(runs: SourceRuns, name: str, n_bins: int) -> np.ndarray:
    """Per-item values (C, S, n) of an item metric, or binned deviations (C, S, n, J) of a
    binned calibration error: what :func:`resample_metric` multiplies by the draws."""
    entry = _entry(name, n_bins)
    if isinstance(entry, registry.ItemMetric):
        return entry.per_item(runs.probs, runs.items)
    return entry.deviations(runs.probs, runs.items, n_bins)


def resample_metric(
    runs: SourceRuns,
    metric: str,
    draws: Draws,
    n_bins: int,
    chunk: int = 500,
    prepared: np.ndarray | None = None,
) -> np.ndarray:
    """(B, C) resampled values of ``metric`` (optionally ``{metric}__band_{band}``).

    With :func:`identity_draws` it returns the observed mean over seeds of the per-seed
    metric. A resample whose band holds no item gives NaN. ``prepared`` is
    :func:`prepare`'s array for the metric without its band (computed when not given).
    """
    name, band = _split_band(metric)
    keep = np.ones(len(runs.item_ids), dtype=bool) if band is None else runs.band == band
    C, S = runs.probs.shape[:2]
    entry = _entry(name, n_bins)
    arrays = prepare(runs, name, n_bins) if prepared is None else prepared
    arrays = arrays[:, :, keep]  # only the band's items enter the products
    n = int(keep.sum())
    items = draws.items[:, keep]
    if isinstance(entry, registry.ItemMetric):
        values = arrays.reshape(C * S, n)

        def stat(w: np.ndarray) -> np.ndarray:  # w: (b, n) counts of the kept items
            total = w.sum(axis=1)  # (b,)
            with np.errstate(invalid="ignore", divide="ignore"):
                return ((values @ w.T) / total[None, :]).reshape(C, S, -1)
    else:
        J = arrays.shape[-1]
        moved = np.moveaxis(arrays, 2, 0).reshape(n, C * S * J)

        def stat(w: np.ndarray) -> np.ndarray:
            total = w.sum(axis=1)
            sums = np.abs(w @ moved).reshape(-1, C, S, J).sum(axis=-1)  # (b, C, S)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.moveaxis(sums / total[:, None, None], 0, -1)  # (C, S, b)

    out = np.empty((draws.n_resamples, C))
    for start in range(0, draws.n_resamples, chunk):
        stop = min(start + chunk, draws.n_resamples)
        per_seed = stat(items[start:stop])  # (C, S, b)
        v = draws.seeds[start:stop]  # (b, S)
        out[start:stop] = np.einsum("csb,bs->bc", per_seed, v) / S
    return out


def seed_bootstrap(per_seed: np.ndarray, draws: Draws) -> np.ndarray:
    """(B, C) means over resampled seeds of per-seed values (C, S): items held fixed."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    return draws.seeds @ per_seed.T / per_seed.shape[1]


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Equal-tailed percentile interval of the finite samples (NaN if none)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(lo), float(hi)


def bootstrap_p_value(samples: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of ``effect = null``: twice the smaller share of resampled
    effects on either side of ``null``, each share counted as ``(1 + k) / (1 + B)`` so it is
    never 0; capped at 1. It is the smallest ``1 - confidence`` at which the percentile
    interval would just reach ``null``."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan")
    below = (1 + np.sum(x <= null)) / (1 + len(x))
    above = (1 + np.sum(x >= null)) / (1 + len(x))
    return float(min(1.0, 2 * min(below, above)))


def resampled_ranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, n) average ranks (1-based) that each item would get in the resample that repeats
    item ``i`` ``counts[b, i]`` times, without sorting any resample.

    Items are sorted once; an item's rank is the number of resampled copies of strictly
    smaller values plus ``(copies of its own value + 1) / 2``, which is exactly the average
    rank that ``scipy.stats.rankdata`` gives every copy of a tied value.
    """
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(np.r_[True, sorted_values[1:] != sorted_values[:-1]]) - 1  # per sorted item
    per_group = np.add.reduceat(counts[:, order], starts, axis=1)  # (B, groups)
    below = np.cumsum(per_group, axis=1) - per_group
    rank_sorted = (below + (per_group + 1) / 2)[:, group]  # (B, n) in sorted order
    ranks = np.empty_like(rank_sorted)
    ranks[:, order] = rank_sorted
    return ranks


def weighted_spearman(rank_x: np.ndarray, rank_y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spearman correlation of each resample from :func:`resampled_ranks`: the Pearson
    correlation of the ranks over the resampled copies (item ``i`` weighted by its count)."""
    total = counts.sum(axis=1, keepdims=True)
    mx = (counts * rank_x).sum(axis=1, keepdims=True) / total
    my = (counts * rank_y).sum(axis=1, keepdims=True) / total
    dx, dy = rank_x - mx, rank_y - my
    cov = (counts * dx * dy).sum(axis=1)
    den = np.sqrt((counts * dx**2).sum(axis=1) * (counts * dy**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / den


def resample_correlation(
    values: np.ndarray, reference: np.ndarray, draws: Draws, chunk: int = 250
) -> np.ndarray:
    """(B, C) seed-and-item bootstrap of the mean over seeds of the per-seed Spearman
    correlation between ``values`` (C, S, n) and ``reference`` (n,), e.g. cartography
    variability and human entropy over training items; ``draws`` hold counts over the S seeds
    and the n items (the same draw for every condition and seed)."""
    values = np.asarray(values, dtype=np.float64)
    C, S, n = values.shape
    out = np.empty((draws.n_resamples, C))
    for start in range(0, draws.n_resamples, chunk):
        stop = min(start + chunk, draws.n_resamples)
        w = draws.items[start:stop]
        ref_ranks = resampled_ranks(reference, w)
        rho = np.stack(
            [
                np.stack(
                    [
                        weighted_spearman(resampled_ranks(values[c, s], w), ref_ranks, w)
                        for s in range(S)
                    ],
                    axis=1,
                )
                for c in range(C)
            ]
        )  # (C, b, S)
        out[start:stop] = np.einsum("cbs,bs->bc", rho, draws.seeds[start:stop]) / S
    return out
