"""Every test-set metric, defined once: the per-run scores and the bootstrap read this registry.

:data:`METRICS` lists the metrics in the column order of ``{source}.{condition}.metrics``.
An entry is one of three kinds, split as torchmetrics splits ``update`` from ``compute``:

* :class:`ItemMetric`: a mean over items of a per-item value. ``per_item(p, items)`` maps
  predictions ``p`` (..., n, K) to values (..., n); the run's value is their mean. The
  bootstrap resamples it over seeds and items.
* :class:`BinnedMetric`: a calibration error over bins fixed by each item's own
  probabilities, ``sum_j |sum_i D_ij| / n``. ``deviations(p, items, n_bins)`` gives ``D``
  (..., n, J), which the bootstrap resamples over seeds and items; ``value(p, items,
  n_bins)`` is the per-run estimator of :mod:`soft_label_audit.metrics.calibration` (checked
  against independent implementations there), and a test checks that both agree.
* :class:`RunMetric`: a metric that needs the whole item set at once (ranks, equal-mass
  bins, random draws); it may fill several columns. The bootstrap resamples its per-seed
  values over seeds only.

Adding a metric is one entry in :data:`METRICS` (at the place of its column); the per-run
scores, their bands, the bootstrap and the tests that run over the registry pick it up.

Every entry says whether it is ``label_free``: computed from the predictions and the original
label alone, with no human label (accuracy, nll, brier, the calibration errors against the
original label and their noise floors, ``n_items``). Only those are scored on the unannotated
pool items (columns ``pool__{name}``) and at the final epoch (``final__{name}``,
``final__pool__{name}``; :mod:`soft_label_audit.metrics.per_run`); :func:`label_free_names`
derives their columns from the flags.
``p`` holds the predicted probabilities over the 10 digits (rows checked by
:func:`soft_label_audit.metrics.per_run.score_test_set`), ``items`` the items' labels
(:class:`Items`), all aligned row by row; per-item and binned metrics broadcast over leading
axes of ``p`` (conditions, seeds), so one call prepares a whole study for the bootstrap.

Metric names, for ``n_bins = B``:

=====================  ===============================================================
``n_items``            number of items scored
``accuracy``           argmax = original label
``accuracy_human_mode`` argmax = human mode
``nll``                mean -ln p[original label] (nats)
``brier``              multiclass Brier against the original label (0..2)
``ce_human``           mean cross entropy H(h, p) to the human soft label (nats)
``kl_human``           mean KL(h || p) (nats)
``tv_human``           mean total variation distance to h (0..1)
``entropy_gap``        mean H(p) - H(h) (nats; > 0: model less certain than people)
``abs_entropy_gap``    mean |H(p) - H(h)| (nats)
``spearman_entropy``   Spearman correlation of H(p) with the human entropy of ``item_stats``
``ece_B``              top-label ECE, B equal-width bins, against the original label
``ece_mass_B``         top-label ECE, B equal-mass bins
``classwise_ece_B``    class-wise ECE, B equal-width bins
``mce_B``              maximum calibration error, B equal-width bins
``{ece}_floor_mean``   for ``{ece}`` in ``ece_B``, ``ece_mass_B``, ``classwise_ece_B``: the
                       mean ECE of a perfectly calibrated model with the same predictions on
                       the same items (labels drawn from the predictions, ``floor_draws``
                       times; :func:`~soft_label_audit.metrics.calibration.ece_noise_floor`)
``{ece}_floor_qQ``     its ``Q``-th percentile (``floor_quantile``, e.g. ``q95``): an ECE
                       below it is within the noise of a calibrated model
``ce_l2_debiased_B``   debiased top-label L2 calibration error (Kumar et al. 2019), B
                       equal-mass bins
``ece_human_B``        top-label ECE against the human label: confidence vs the human mass on
                       the predicted class (expected human agreement), B equal-width bins
``overconfidence_human`` mean confidence minus mean human mass on the predicted class
=====================  ===============================================================

``h`` is the human label over the 10 digits (:func:`soft_label_audit.human_labels.human_digits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from soft_label_audit.metrics import alignment, calibration

#: floor of a probability inside a logarithm (as in :mod:`soft_label_audit.metrics.scoring`)
EPS = 1e-12


@dataclass(frozen=True)
class Items:
    """What the metrics know of the scored items besides the predictions, row by row."""

    original: np.ndarray  # (n,) original labels
    mode: np.ndarray  # (n,) human modes
    human: np.ndarray  # (n, K) human label over the digits
    human_entropy: np.ndarray  # (n,) human entropy of item_stats

    @classmethod
    def unannotated(cls, original: np.ndarray, n_classes: int) -> Items:
        """Items without human labels (the pool): mode -1, human label and entropy NaN, so
        that only the ``label_free`` metrics are defined on them."""
        n = len(original)
        return cls(original, np.full(n, -1), np.full((n, n_classes), np.nan), np.full(n, np.nan))

    def subset(self, keep: np.ndarray) -> Items:
        return Items(
            self.original[keep], self.mode[keep], self.human[keep], self.human_entropy[keep]
        )


@dataclass(frozen=True)
class Settings:
    """The evaluation parameters a metric's names or values depend on."""

    n_bins: int = 15
    floor_draws: int = 200
    floor_quantile: float = 0.95
    floor_seed: int = 0


@dataclass(frozen=True)
class ItemMetric:
    """The mean over items of ``per_item(p, items)`` (..., n)."""

    name: str
    per_item: Callable[[np.ndarray, Items], np.ndarray]
    label_free: bool

    def column(self, n_bins: int) -> str:
        return self.name

    def names(self, settings: Settings) -> tuple[str, ...]:
        return (self.name,)

    def score(self, p: np.ndarray, items: Items, settings: Settings) -> dict[str, float]:
        return {self.name: float(self.per_item(p, items).mean())}


@dataclass(frozen=True)
class BinnedMetric:
    """``{prefix}_{n_bins}``: ``value`` per run, ``deviations`` (..., n, J) for resampling,
    with ``value = sum_j |sum_i D_ij| / n``."""

    prefix: str
    value: Callable[[np.ndarray, Items, int], float]
    deviations: Callable[[np.ndarray, Items, int], np.ndarray]
    label_free: bool

    def column(self, n_bins: int) -> str:
        return f"{self.prefix}_{n_bins}"

    def names(self, settings: Settings) -> tuple[str, ...]:
        return (self.column(settings.n_bins),)

    def score(self, p: np.ndarray, items: Items, settings: Settings) -> dict[str, float]:
        return {self.column(settings.n_bins): self.value(p, items, settings.n_bins)}


@dataclass(frozen=True)
class RunMetric:
    """Columns ``names(settings)`` computed together from the whole item set by ``values``."""

    names: Callable[[Settings], tuple[str, ...]]
    values: Callable[[np.ndarray, Items, Settings], dict[str, float]]
    label_free: bool

    def score(self, p: np.ndarray, items: Items, settings: Settings) -> dict[str, float]:
        out = self.values(p, items, settings)
        if list(out) != list(self.names(settings)):
            raise RuntimeError(f"a run metric gave {list(out)}, expected {self.names(settings)}")
        return out


Metric = ItemMetric | BinnedMetric | RunMetric
#: the metrics the bootstrap resamples over items as well as seeds
ItemResampled = ItemMetric | BinnedMetric


# --- helpers shared by the entries ---------------------------------------------------------


def _rowwise(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """A row-wise ``fn(h, p)`` of :mod:`soft_label_audit.metrics.alignment` ((n, K) arrays) as a
    per-item metric of ``p`` (..., n, K), called once per run: ``h`` keeps its own memory
    layout, so the sums over classes add in the same order for a run and for a study."""

    def per_item(p: np.ndarray, items: Items) -> np.ndarray:
        if p.ndim == 2:
            return fn(items.human, p)
        runs = p.reshape(-1, *p.shape[-2:])
        return np.stack([fn(items.human, run) for run in runs]).reshape(p.shape[:-1])

    return per_item


def _predicted(p: np.ndarray) -> np.ndarray:
    return p.argmax(axis=-1)


def _of_predicted(values: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``values`` (n, K), broadcast against ``p`` (..., n, K), at each row's predicted class."""
    pred = _predicted(p)
    return np.take_along_axis(np.broadcast_to(values, p.shape), pred[..., None], axis=-1)[..., 0]


def _hits(labels_of: Callable[[Items], np.ndarray]):
    def per_item(p: np.ndarray, items: Items) -> np.ndarray:
        return (_predicted(p) == labels_of(items)).astype(np.float64)

    return per_item


_accuracy = _hits(lambda items: items.original)


def _nll(p: np.ndarray, items: Items) -> np.ndarray:
    index = np.broadcast_to(items.original, p.shape[:-1])[..., None]
    return -np.log(np.maximum(np.take_along_axis(p, index, axis=-1)[..., 0], EPS))


def _brier(p: np.ndarray, items: Items) -> np.ndarray:
    # the one-hot takes p's memory layout, so the sum over classes adds in the same order as
    # scoring.brier (a run's probabilities from a table are column-major)
    onehot = np.zeros_like(p)
    index = np.broadcast_to(items.original, p.shape[:-1])[..., None]
    np.put_along_axis(onehot, index, 1.0, axis=-1)
    return np.sum((p - onehot) ** 2, axis=-1)


def _overconfidence(p: np.ndarray, items: Items) -> np.ndarray:
    return p.max(axis=-1) - _of_predicted(items.human, p)


def _top_label_deviations(outcome_of: Callable[[np.ndarray, Items], np.ndarray]):
    """``D_ij = 1[conf_i in bin j] (outcome_i - conf_i)`` with equal-width bins of the top-label
    confidence."""

    def deviations(p: np.ndarray, items: Items, n_bins: int) -> np.ndarray:
        conf = p.max(axis=-1)
        outcome = outcome_of(p, items)
        index = calibration.equal_width_bin_index(conf.reshape(-1), n_bins).reshape(conf.shape)
        out = np.zeros((*conf.shape, n_bins))
        np.put_along_axis(out, index[..., None], (outcome - conf)[..., None], axis=-1)
        return out

    return deviations


def _classwise_deviations(p: np.ndarray, items: Items, n_bins: int) -> np.ndarray:
    """``D`` over (class, bin) pairs, J = K * n_bins, divided by K (the mean over classes)."""
    K = p.shape[-1]
    onehot = np.eye(K)[items.original]  # (n, K)
    index = calibration.equal_width_bin_index(p.reshape(-1), n_bins).reshape(p.shape)
    out = np.zeros((*p.shape, n_bins))
    np.put_along_axis(out, index[..., None], ((onehot - p) / K)[..., None], axis=-1)
    return out.reshape(*p.shape[:-1], K * n_bins)


FLOOR_KINDS = {"width": "ece", "mass": "ece_mass", "classwise": "classwise_ece"}


def floor_suffix(quantile: float) -> str:
    """Column suffix of the noise floor's upper quantile: 0.95 -> ``q95``."""
    if not 0 < quantile < 1:
        raise ValueError(f"floor_quantile must lie in (0, 1), got {quantile}")
    return f"q{100 * quantile:g}".replace(".", "_")


def floor_names(s: Settings) -> tuple[str, ...]:
    """The noise-floor columns of every ECE kind (mean and quantile) for ``s``."""
    q = floor_suffix(s.floor_quantile)
    return tuple(
        f"{prefix}_{s.n_bins}_floor_{stat}"
        for prefix in FLOOR_KINDS.values()
        for stat in ("mean", q)
    )


def _floors(p: np.ndarray, items: Items, s: Settings) -> dict[str, float]:
    floors = calibration.ece_noise_floor(
        p, s.n_bins, s.floor_draws, s.floor_seed, tuple(FLOOR_KINDS)
    )
    q = floor_suffix(s.floor_quantile)
    out = {}
    for kind, prefix in FLOOR_KINDS.items():
        out[f"{prefix}_{s.n_bins}_floor_mean"] = float(floors[kind].mean())
        out[f"{prefix}_{s.n_bins}_floor_{q}"] = float(np.quantile(floors[kind], s.floor_quantile))
    return out


def _single(
    name: Callable[[Settings], str],
    value: Callable[[np.ndarray, Items, Settings], float],
    label_free: bool,
) -> RunMetric:
    return RunMetric(
        lambda s: (name(s),), lambda p, items, s: {name(s): value(p, items, s)}, label_free
    )


# --- the registry --------------------------------------------------------------------------

METRICS: tuple[Metric, ...] = (
    _single(lambda s: "n_items", lambda p, items, s: len(p), label_free=True),
    ItemMetric("accuracy", _accuracy, label_free=True),
    ItemMetric("accuracy_human_mode", _hits(lambda items: items.mode), label_free=False),
    ItemMetric("nll", _nll, label_free=True),
    ItemMetric("brier", _brier, label_free=True),
    ItemMetric("ce_human", _rowwise(alignment.cross_entropy), label_free=False),
    ItemMetric("kl_human", _rowwise(alignment.kl_divergence), label_free=False),
    ItemMetric("tv_human", _rowwise(alignment.total_variation), label_free=False),
    ItemMetric("entropy_gap", _rowwise(alignment.entropy_gap), label_free=False),
    ItemMetric(
        "abs_entropy_gap",
        _rowwise(lambda h, p: np.abs(alignment.entropy_gap(h, p))),
        label_free=False,
    ),
    _single(
        lambda s: "spearman_entropy",
        lambda p, items, s: alignment.spearman(alignment.entropy(p), items.human_entropy),
        label_free=False,
    ),
    BinnedMetric(
        "ece",
        lambda p, items, b: calibration.top_label_ece(p, items.original, b, "width"),
        _top_label_deviations(_accuracy),
        label_free=True,
    ),
    _single(
        lambda s: f"ece_mass_{s.n_bins}",
        lambda p, items, s: calibration.top_label_ece(p, items.original, s.n_bins, "mass"),
        label_free=True,
    ),
    BinnedMetric(
        "classwise_ece",
        lambda p, items, b: calibration.classwise_ece(p, items.original, b, "width"),
        _classwise_deviations,
        label_free=True,
    ),
    _single(
        lambda s: f"mce_{s.n_bins}",
        lambda p, items, s: calibration.max_calibration_error(p, items.original, s.n_bins, "width"),
        label_free=True,
    ),
    RunMetric(floor_names, _floors, label_free=True),
    _single(
        lambda s: f"ce_l2_debiased_{s.n_bins}",
        lambda p, items, s: calibration.debiased_l2_calibration_error(p, items.original, s.n_bins),
        label_free=True,
    ),
    BinnedMetric(
        "ece_human",
        lambda p, items, b: calibration.human_ece(p, items.human, b, "width"),
        _top_label_deviations(lambda p, items: _of_predicted(items.human, p)),
        label_free=False,
    ),
    ItemMetric("overconfidence_human", _overconfidence, label_free=False),
)


def metric_names(settings: Settings) -> list[str]:
    """Every column of a run's metrics (without band suffixes), in table order."""
    return [name for metric in METRICS for name in metric.names(settings)]


def label_free_names(settings: Settings) -> list[str]:
    """The columns of the ``label_free`` metrics (no human label needed), in table order."""
    return [name for metric in METRICS if metric.label_free for name in metric.names(settings)]


def item_resampled(n_bins: int) -> dict[str, ItemResampled]:
    """The metrics resampled over items, by column name: item means first, then binned ones."""
    item = [m for m in METRICS if isinstance(m, ItemMetric)]
    binned = [m for m in METRICS if isinstance(m, BinnedMetric)]
    return {m.column(n_bins): m for m in (*item, *binned)}
