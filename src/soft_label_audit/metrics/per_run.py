"""All test-set metrics of one run, overall and per human-difficulty band.

Metric names (columns of ``{source}.{condition}.metrics``), for ``n_bins = B``:

=====================  ===============================================================
``n_items``            number of test items scored
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

Each also exists per band as ``{name}__band_{band}`` (``unanimous``, ``low``, ``high``) and,
when the none band is given, per none band as ``{name}__none_{band}`` (``none_free``,
``some_none``, ``mostly_none``; :mod:`soft_label_audit.metrics.bands`).
``h`` is the human label over the 10 digits (:func:`soft_label_audit.human_labels.human_digits`).
"""

from __future__ import annotations

import numpy as np

from soft_label_audit.metrics import alignment, calibration, scoring
from soft_label_audit.metrics.bands import BANDS, NONE_BANDS

BAND_SEPARATOR = "__band_"
NONE_BAND_SEPARATOR = "__none_"


FLOOR_KINDS = {"width": "ece", "mass": "ece_mass", "classwise": "classwise_ece"}


def floor_suffix(quantile: float) -> str:
    """Column suffix of the noise floor's upper quantile: 0.95 -> ``q95``."""
    if not 0 < quantile < 1:
        raise ValueError(f"floor_quantile must lie in (0, 1), got {quantile}")
    return f"q{100 * quantile:g}".replace(".", "_")


#: the metrics that are means over items (a bootstrap over items resamples them), in the order
#: of :func:`metric_names`
ITEM_MEAN_METRICS = (
    "accuracy",
    "accuracy_human_mode",
    "nll",
    "brier",
    "ce_human",
    "kl_human",
    "tv_human",
    "entropy_gap",
    "abs_entropy_gap",
)
#: ... and the one listed last
OVERCONFIDENCE = "overconfidence_human"


def metric_names(n_bins: int, floor_quantile: float = 0.95) -> list[str]:
    q = floor_suffix(floor_quantile)
    return [
        "n_items",
        *ITEM_MEAN_METRICS,
        "spearman_entropy",
        f"ece_{n_bins}",
        f"ece_mass_{n_bins}",
        f"classwise_ece_{n_bins}",
        f"mce_{n_bins}",
        *[
            f"{prefix}_{n_bins}_floor_{stat}"
            for prefix in FLOOR_KINDS.values()
            for stat in ("mean", q)
        ],
        f"ce_l2_debiased_{n_bins}",
        f"ece_human_{n_bins}",
        OVERCONFIDENCE,
    ]


def _floor(p: np.ndarray, n_bins: int, draws: int, quantile: float, seed: int) -> dict[str, float]:
    floors = calibration.ece_noise_floor(p, n_bins, draws, seed, tuple(FLOOR_KINDS))
    q = floor_suffix(quantile)
    out = {}
    for kind, prefix in FLOOR_KINDS.items():
        out[f"{prefix}_{n_bins}_floor_mean"] = float(floors[kind].mean())
        out[f"{prefix}_{n_bins}_floor_{q}"] = float(np.quantile(floors[kind], quantile))
    return out


def _metrics(
    p: np.ndarray,
    original: np.ndarray,
    mode: np.ndarray,
    h: np.ndarray,
    human_entropy: np.ndarray,
    n_bins: int,
    floor: dict[str, float | int],
) -> dict[str, float]:
    n = len(p)
    if n == 0:
        return {
            name: (0 if name == "n_items" else float("nan"))
            for name in metric_names(n_bins, float(floor["quantile"]))
        }
    gap = alignment.entropy_gap(h, p)
    conf, agreement = calibration.human_agreement(p, h)
    return {
        "n_items": n,
        "accuracy": scoring.accuracy(p, original),
        "accuracy_human_mode": scoring.accuracy(p, mode),
        "nll": scoring.nll(p, original),
        "brier": scoring.brier(p, original),
        "ce_human": float(alignment.cross_entropy(h, p).mean()),
        "kl_human": float(alignment.kl_divergence(h, p).mean()),
        "tv_human": float(alignment.total_variation(h, p).mean()),
        "entropy_gap": float(gap.mean()),
        "abs_entropy_gap": float(np.abs(gap).mean()),
        "spearman_entropy": alignment.spearman(alignment.entropy(p), human_entropy),
        f"ece_{n_bins}": calibration.top_label_ece(p, original, n_bins, "width"),
        f"ece_mass_{n_bins}": calibration.top_label_ece(p, original, n_bins, "mass"),
        f"classwise_ece_{n_bins}": calibration.classwise_ece(p, original, n_bins, "width"),
        f"mce_{n_bins}": calibration.max_calibration_error(p, original, n_bins, "width"),
        **_floor(p, n_bins, int(floor["draws"]), float(floor["quantile"]), int(floor["seed"])),
        f"ce_l2_debiased_{n_bins}": calibration.debiased_l2_calibration_error(p, original, n_bins),
        f"ece_human_{n_bins}": calibration.human_ece(p, h, n_bins, "width"),
        "overconfidence_human": float(np.mean(conf - agreement)),
    }


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
) -> dict[str, float]:
    """Every metric on all items, on each band and (if given) each none band; arrays are
    aligned row by row.

    The noise floors draw their labels from ``numpy.random.default_rng(floor_seed)`` afresh
    for every item set, so a run's metrics are a function of its inputs alone.
    """
    probs = np.asarray(probs, dtype=np.float64)
    floor = {"draws": floor_draws, "quantile": floor_quantile, "seed": floor_seed}
    out = _metrics(probs, original_label, human_mode, human_digits, human_entropy, n_bins, floor)

    def add_groups(groups: np.ndarray, names: tuple[str, ...], separator: str, kind: str) -> None:
        groups = np.asarray(groups)
        unknown = set(np.unique(groups)) - set(names)
        if unknown:
            raise ValueError(f"unknown {kind} {sorted(unknown)}; expected {names}")
        for name in names:
            m = groups == name
            sub = _metrics(
                probs[m],
                original_label[m],
                human_mode[m],
                human_digits[m],
                human_entropy[m],
                n_bins,
                floor,
            )
            out.update({f"{k}{separator}{name}": v for k, v in sub.items()})

    add_groups(band, BANDS, BAND_SEPARATOR, "difficulty bands")
    if none_band is not None:
        add_groups(none_band, NONE_BANDS, NONE_BAND_SEPARATOR, "none bands")
    return out
