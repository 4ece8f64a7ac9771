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


def metric_names(n_bins: int) -> list[str]:
    return [
        "n_items",
        "accuracy",
        "accuracy_human_mode",
        "nll",
        "brier",
        "ce_human",
        "kl_human",
        "tv_human",
        "entropy_gap",
        "abs_entropy_gap",
        "spearman_entropy",
        f"ece_{n_bins}",
        f"ece_mass_{n_bins}",
        f"classwise_ece_{n_bins}",
        f"mce_{n_bins}",
    ]


def _metrics(p: np.ndarray, original: np.ndarray, mode: np.ndarray, h: np.ndarray, human_entropy: np.ndarray, n_bins: int) -> dict[str, float]:
    n = len(p)
    if n == 0:
        return {name: (0 if name == "n_items" else float("nan")) for name in metric_names(n_bins)}
    gap = alignment.entropy_gap(h, p)
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
) -> dict[str, float]:
    """Every metric on all items, on each band and (if given) each none band; arrays are
    aligned row by row."""
    probs = np.asarray(probs, dtype=np.float64)
    out = _metrics(probs, original_label, human_mode, human_digits, human_entropy, n_bins)
    band = np.asarray(band)
    unknown = set(np.unique(band)) - set(BANDS)
    if unknown:
        raise ValueError(f"unknown difficulty bands {sorted(unknown)}; expected {BANDS}")
    for name in BANDS:
        m = band == name
        sub = _metrics(probs[m], original_label[m], human_mode[m], human_digits[m], human_entropy[m], n_bins)
        out.update({f"{k}{BAND_SEPARATOR}{name}": v for k, v in sub.items()})
    if none_band is not None:
        none_band = np.asarray(none_band)
        unknown = set(np.unique(none_band)) - set(NONE_BANDS)
        if unknown:
            raise ValueError(f"unknown none bands {sorted(unknown)}; expected {NONE_BANDS}")
        for name in NONE_BANDS:
            m = none_band == name
            sub = _metrics(probs[m], original_label[m], human_mode[m], human_digits[m],
                           human_entropy[m], n_bins)
            out.update({f"{k}{NONE_BAND_SEPARATOR}{name}": v for k, v in sub.items()})
    return out
