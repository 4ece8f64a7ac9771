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
  ``D_ij = 1[i in B_j] (outcome_i - conf_i)``, so ``W @ D`` gives it for every resample
  (``D`` held sparse: an item sits in one bin per run, and class);
* a metric restricted to a band of items uses the same draws, counting only the band's
  items (its size varies across resamples, as it would in a new test set).

The registry's run metrics, which need ranks or re-binning of every resample (equal-mass
ECE, Spearman correlations, the noise floors), are not item-resampled here: :func:`seed_bootstrap` resamples
their per-seed values over seeds only. scipy.stats.bootstrap cannot draw two crossed factors
at once, which is why this module exists; it serves where one factor is resampled
(:mod:`soft_label_audit.reporting.stability`).

``by_seed=True`` also returns each seed's value on the drawn items, seeds not resampled (the
item-only bootstrap of every seed, from the same draws): what the variance components of a
binned or rank metric are read from (:func:`soft_label_audit.reporting.variance.bootstrap_components`).
A ``pool`` scope (:func:`pool_runs`) has no human label and no band: only label-free metrics
(:func:`is_label_free`) are resampled on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from soft_label_audit.columns import PREDICTION_SCOPES
from soft_label_audit.metrics import registry
from soft_label_audit.metrics.per_run import BAND_SEPARATOR

#: scopes of evaluation items: the annotated test items, the unannotated scoring pool
SCOPES = PREDICTION_SCOPES


def is_label_free(metric: str) -> bool:
    """Whether ``metric`` needs the original label only: a column of a metric the registry
    flags ``label_free`` (:data:`soft_label_audit.metrics.registry.METRICS`), for the bin
    count its name carries, other than the item count and the ECE noise floors (no band, no
    noise floor: those are not compared across conditions).

    >>> is_label_free("ece_15"), is_label_free("ece_human_15"), is_label_free("nll__band_high")
    (True, False, False)
    """
    _, _, bins = metric.rpartition("_")
    settings = registry.Settings(n_bins=int(bins)) if bins.isdigit() else registry.Settings()
    floors = set(registry.floor_names(settings))
    names = registry.label_free_names(settings)
    return metric in names and metric != "n_items" and metric not in floors


@dataclass(frozen=True)
class SourceRuns:
    """Predictions of one source on one scope: every condition and seed on the same items.

    A ``pool`` scope has no human label: ``mode`` is -1, ``human`` and ``human_entropy`` NaN
    and ``band`` None (use :func:`pool_runs`); only label-free metrics are resampled on it.
    """

    conditions: tuple[str, ...]
    seeds: np.ndarray  # (S,)
    item_ids: np.ndarray  # (n,)
    probs: np.ndarray  # (C, S, n, K)
    original: np.ndarray  # (n,) original labels
    mode: np.ndarray  # (n,) human modes
    human: np.ndarray  # (n, K) human label over the digits
    band: np.ndarray | None  # (n,) difficulty band names
    human_entropy: np.ndarray  # (n,) human entropy of item_stats
    scope: str = "test"

    @property
    def items(self) -> registry.Items:
        """The items' labels as the metric registry takes them."""
        return registry.Items(self.original, self.mode, self.human, self.human_entropy)

    def index(self, condition: str) -> int:
        return self.conditions.index(condition)


def pool_runs(
    conditions: tuple[str, ...],
    seeds: np.ndarray,
    item_ids: np.ndarray,
    probs: np.ndarray,
    original: np.ndarray,
) -> SourceRuns:
    """A pool scope's runs: original labels only (no human label, no bands)."""
    n, K = probs.shape[2], probs.shape[3]
    return SourceRuns(
        conditions=tuple(conditions),
        seeds=np.asarray(seeds),
        item_ids=np.asarray(item_ids),
        probs=probs,
        original=np.asarray(original, dtype=np.int64),
        mode=np.full(n, -1, dtype=np.int64),
        human=np.full((n, K), np.nan),
        band=None,
        human_entropy=np.full(n, np.nan),
        scope="pool",
    )


@dataclass(frozen=True)
class Draws:
    """Resample counts: ``seeds`` (B, S) and ``items`` (B, n); each row sums to S (n).
    Item counts are held as small integers (uint16 below 65,536 items: 40 MB for 2,000
    resamples of 10,000 pool items) and turned into floats one chunk of resamples at a time."""

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
    dtype = np.uint16 if n_items < 2**16 else np.int32
    items = np.empty((n_resamples, n_items), dtype=dtype)
    for start in range(0, n_resamples, 250):  # chunks: no (B, n) int64 array at once
        stop = min(start + 250, n_resamples)
        items[start:stop] = rng.multinomial(
            n_items, np.full(n_items, 1.0 / n_items), size=stop - start
        )
    return Draws(seeds.astype(np.float64), items)


def identity_draws(n_seeds: int, n_items: int) -> Draws:
    """The observed sample as a single "resample" (every seed and item once)."""
    return Draws(np.ones((1, n_seeds)), np.ones((1, n_items)))


def item_resampled_metrics(runs: SourceRuns, n_bins: int) -> list[str]:
    """Names (overall and per band) of the metrics :func:`resample_metric` resamples over items:
    the item and binned metrics of :mod:`soft_label_audit.metrics.registry`."""
    base = list(registry.item_resampled(n_bins))
    if runs.band is None:  # a pool scope: label-free metrics, no bands
        return [m for m in base if is_label_free(m)]
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


def prepare(runs: SourceRuns, name: str, n_bins: int):
    """Per-item values (C, S, n) of an item metric, or the binned deviations of a binned
    calibration error as a sparse (n, C * S * J) matrix (each item sits in one bin per run
    and class, so at most C * S * K of a row's entries are not 0): what
    :func:`resample_metric` multiplies by the draws. Built condition by condition, so a
    class-wise ECE of 10,000 pool items never holds its dense (C, S, n, K * J) array."""
    entry = _entry(name, n_bins)
    if isinstance(entry, registry.ItemMetric):
        return entry.per_item(runs.probs, runs.items)
    blocks = []
    for c in range(runs.probs.shape[0]):
        dev = entry.deviations(runs.probs[c], runs.items, n_bins)  # (S, n, J)
        S, n, J = dev.shape
        blocks.append(sparse.csr_matrix(np.moveaxis(dev, 1, 0).reshape(n, S * J)))
    return sparse.hstack(blocks, format="csr")


def _per_seed_chunks(runs, name, keep, draws, n_bins, chunk, prepared):
    """Yield (start, stop, per-seed values (C, S, b)) of resamples ``start:stop`` of the items
    (``keep``: the items that count)."""
    C, S = runs.probs.shape[:2]
    entry = _entry(name, n_bins)
    arrays = prepare(runs, name, n_bins) if prepared is None else prepared
    n = int(keep.sum())
    if isinstance(entry, registry.ItemMetric):
        values = arrays[:, :, keep].reshape(C * S, n)  # only the band's items enter

        def stat(w: np.ndarray) -> np.ndarray:  # w: (b, n) counts of the kept items
            total = w.sum(axis=1)  # (b,)
            with np.errstate(invalid="ignore", divide="ignore"):
                return ((values @ w.T) / total[None, :]).reshape(C, S, -1)
    else:
        moved_t = arrays[keep].T.tocsr()  # (C * S * J, n)
        J = moved_t.shape[0] // (C * S)

        def stat(w: np.ndarray) -> np.ndarray:
            total = w.sum(axis=1)
            sums = np.abs(np.asarray(moved_t @ w.T)).reshape(C, S, J, -1).sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums / total[None, None, :]  # (C, S, b)

    for start in range(0, draws.n_resamples, chunk):
        stop = min(start + chunk, draws.n_resamples)
        yield start, stop, stat(draws.items[start:stop][:, keep].astype(np.float64))


def resample_metric(
    runs: SourceRuns,
    metric: str,
    draws: Draws,
    n_bins: int,
    chunk: int = 500,
    prepared=None,
    by_seed: bool = False,
    keep: np.ndarray | None = None,
):
    """(B, C) resampled values of ``metric`` (optionally ``{metric}__band_{band}``; or, with
    ``keep``, a boolean mask over the items, of ``metric`` on the items it keeps).

    With :func:`identity_draws` it returns the observed mean over seeds of the per-seed
    metric. A resample whose band holds no item gives NaN. ``prepared`` is
    :func:`prepare`'s array for the metric without its band (computed when not given).
    With ``by_seed`` it also returns (B, C, S): each seed's metric on the drawn items, seeds
    not resampled (the item-only bootstrap of every seed, same item draws).
    """
    name, band = _split_band(metric)
    if band is not None and runs.band is None:
        raise ValueError(f"{metric!r}: the {runs.scope} scope has no difficulty bands")
    if keep is not None and band is not None:
        raise ValueError(f"{metric!r}: give a band or a mask of items, not both")
    if keep is None:
        keep = np.ones(len(runs.item_ids), dtype=bool) if band is None else runs.band == band
    keep = np.asarray(keep, dtype=bool)
    C, S = runs.probs.shape[:2]
    out = np.empty((draws.n_resamples, C))
    seeds_fixed = np.empty((draws.n_resamples, C, S)) if by_seed else None
    for start, stop, per_seed in _per_seed_chunks(runs, name, keep, draws, n_bins, chunk, prepared):
        v = draws.seeds[start:stop]  # (b, S)
        out[start:stop] = np.einsum("csb,bs->bc", per_seed, v) / S
        if by_seed:
            seeds_fixed[start:stop] = np.moveaxis(per_seed, -1, 0)
    return (out, seeds_fixed) if by_seed else out


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
    values: np.ndarray, reference: np.ndarray, draws: Draws, chunk: int = 250, by_seed=False
):
    """(B, C) seed-and-item bootstrap of the mean over seeds of the per-seed Spearman
    correlation between ``values`` (C, S, n) and ``reference`` (n,), e.g. cartography
    variability and human entropy over training items; ``draws`` hold counts over the S seeds
    and the n items (the same draw for every condition and seed). With ``by_seed`` it also
    returns (B, C, S): each seed's correlation on the drawn items (seeds not resampled)."""
    values = np.asarray(values, dtype=np.float64)
    C, S, n = values.shape
    out = np.empty((draws.n_resamples, C))
    seeds_fixed = np.empty((draws.n_resamples, C, S)) if by_seed else None
    for start in range(0, draws.n_resamples, chunk):
        stop = min(start + chunk, draws.n_resamples)
        w = draws.items[start:stop].astype(np.float64)
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
        if by_seed:
            seeds_fixed[start:stop] = np.moveaxis(rho, 1, 0)
    return (out, seeds_fixed) if by_seed else out
