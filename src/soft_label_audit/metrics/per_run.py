"""All metrics of one run: on the annotated test items, overall and per human-difficulty band,
and the label-free ones on any item set (the unannotated pool, the final epoch).

The metrics and their column names are defined once, in :mod:`soft_label_audit.metrics.registry`
(its docstring lists them); :func:`score_test_set` scores every entry of its registry.

Each also exists per band as ``{name}__band_{band}`` (``unanimous``, ``low``, ``high``) and,
when the none band is given, per none band as ``{name}__none_{band}`` (``none_free``,
``some_none``, ``mostly_none``; :mod:`soft_label_audit.metrics.bands`).

When the mode-shift flags are given, every metric also exists on the shifted items alone as
``{name}__shifted``: the items of ``item_stats.mode_shift`` (the one shift set, the shifts the
votes support, shared by every condition), so ``accuracy__shifted`` scores them against the
original label and ``accuracy_human_mode__shifted`` against the human mode, in every condition
alike (NaN, and ``n_items__shifted`` 0, when the test set has no shifted item).

Scopes: a run's ``metrics`` row scores its *best-epoch* predictions of the test items under the
plain names; the ``label_free`` metrics of the registry are also scored on the pool items
(:data:`POOL_PREFIX`, ``pool__{name}``) and at the final epoch (:data:`FINAL_PREFIX`,
``final__{name}`` on the test items, ``final__pool__{name}`` on the pool), by
:func:`score_label_free` and :func:`scope_columns`. Bands need human labels: they stay on the
test items at the best epoch.
"""

from __future__ import annotations

import numpy as np

from soft_label_audit.metrics import registry
from soft_label_audit.metrics._checks import as_labels, as_probs
from soft_label_audit.metrics.bands import BANDS, NONE_BANDS

BAND_SEPARATOR = "__band_"
NONE_BAND_SEPARATOR = "__none_"
#: suffix of the metrics on the mode-shifted items (``item_stats.mode_shift``)
SHIFTED_SUFFIX = "__shifted"
#: column prefix of the metrics of the pool items (best epoch)
POOL_PREFIX = "pool__"
#: column prefix of the metrics at the final epoch (then ``pool__`` for the pool items)
FINAL_PREFIX = "final__"
#: (epoch, item set) -> the prefix of its columns; the test items at the best epoch have none
SCOPE_PREFIXES = {
    ("best", "test"): "",
    ("best", "pool"): POOL_PREFIX,
    ("final", "test"): FINAL_PREFIX,
    ("final", "pool"): FINAL_PREFIX + POOL_PREFIX,
}


def metric_names(n_bins: int, floor_quantile: float = 0.95) -> list[str]:
    """The columns of a run's metrics without band suffixes, in table order."""
    return registry.metric_names(registry.Settings(n_bins=n_bins, floor_quantile=floor_quantile))


def scope_columns(n_bins: int, floor_quantile: float = 0.95) -> list[str]:
    """The columns of the label-free metrics in the other scopes (pool, final epoch), in table
    order: ``pool__*``, ``final__*``, ``final__pool__*``."""
    names = registry.label_free_names(
        registry.Settings(n_bins=n_bins, floor_quantile=floor_quantile)
    )
    prefixes = [prefix for prefix in SCOPE_PREFIXES.values() if prefix]
    return [f"{prefix}{name}" for prefix in prefixes for name in names]


def _metrics(
    p: np.ndarray,
    items: registry.Items,
    settings: registry.Settings,
    label_free_only: bool = False,
) -> dict[str, float]:
    metrics = [m for m in registry.METRICS if m.label_free or not label_free_only]
    if len(p) == 0:
        names = [name for m in metrics for name in m.names(settings)]
        return {name: (0 if name == "n_items" else float("nan")) for name in names}
    out: dict[str, float] = {}
    for metric in metrics:
        out.update(metric.score(p, items, settings))
    return out


def score_label_free(
    probs: np.ndarray,
    original_label: np.ndarray,
    n_bins: int,
    floor_draws: int,
    floor_quantile: float,
    floor_seed: int,
) -> dict[str, float]:
    """The ``label_free`` metrics of the registry on any item set (no human label needed),
    e.g. the unannotated pool; an empty set gives ``n_items`` 0 and NaN elsewhere. The noise
    floors draw from ``default_rng(floor_seed)`` as in :func:`score_test_set`."""
    probs = as_probs(probs)
    n, K = probs.shape
    items = registry.Items.unannotated(as_labels(original_label, n, K, "original_label"), K)
    settings = registry.Settings(n_bins, floor_draws, floor_quantile, floor_seed)
    return _metrics(probs, items, settings, label_free_only=True)


def score_test_set(
    probs: np.ndarray,
    original_label: np.ndarray,
    human_mode: np.ndarray,
    human_digits: np.ndarray,
    human_entropy: np.ndarray,
    band: np.ndarray,
    n_bins: int = 15,
    none_band: np.ndarray | None = None,
    floor_draws: int = 200,
    floor_quantile: float = 0.95,
    floor_seed: int = 0,
    mode_shift: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric on all items, on each band, (if given) each none band and (if given) the
    mode-shifted items (``mode_shift``, bool); arrays are aligned row by row.

    The noise floors draw their labels from ``numpy.random.default_rng(floor_seed)`` afresh
    for every item set, so a run's metrics are a function of its inputs alone.
    """
    probs = as_probs(probs)
    n, K = probs.shape
    human = as_probs(human_digits, "human_digits")
    if human.shape != probs.shape:
        raise ValueError(f"human_digits {human.shape} and probs {probs.shape} differ in shape")
    items = registry.Items(
        original=as_labels(original_label, n, K, "original_label"),
        mode=as_labels(human_mode, n, K, "human_mode"),
        human=human,
        human_entropy=np.asarray(human_entropy, dtype=np.float64),
    )
    if items.human_entropy.shape != (n,):
        raise ValueError(f"human_entropy must have shape ({n},), got {items.human_entropy.shape}")
    settings = registry.Settings(n_bins, floor_draws, floor_quantile, floor_seed)
    out = _metrics(probs, items, settings)

    def add_groups(groups: np.ndarray, names: tuple[str, ...], separator: str, kind: str) -> None:
        groups = np.asarray(groups)
        unknown = set(np.unique(groups)) - set(names)
        if unknown:
            raise ValueError(f"unknown {kind} {sorted(unknown)}; expected {names}")
        for name in names:
            m = groups == name
            sub = _metrics(probs[m], items.subset(m), settings)
            out.update({f"{k}{separator}{name}": v for k, v in sub.items()})

    add_groups(band, BANDS, BAND_SEPARATOR, "difficulty bands")
    if none_band is not None:
        add_groups(none_band, NONE_BANDS, NONE_BAND_SEPARATOR, "none bands")
    if mode_shift is not None:
        shifted = np.asarray(mode_shift)
        if shifted.shape != (n,) or shifted.dtype != bool:
            raise ValueError(
                f"mode_shift must be a bool array of shape ({n},), got {shifted.dtype} "
                f"{shifted.shape}"
            )
        sub = _metrics(probs[shifted], items.subset(shifted), settings)
        out.update({f"{k}{SHIFTED_SUFFIX}": v for k, v in sub.items()})
    return out
