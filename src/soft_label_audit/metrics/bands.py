"""Human-difficulty bands of items.

The entropy band uses THE measure of human uncertainty,
:func:`soft_label_audit.human_labels.human_entropy`: the entropy (nats) of the 10-digit label
that the none-slot rule makes of h, i.e. of the ``human_soft`` training target. An item whose
votes are all "none" is uniform there (ln 10), so it is never "unanimous".

* ``unanimous``: entropy <= ``unanimous_max`` (one digit holds all the mass, up to float error);
* ``low``: ``unanimous_max`` < entropy <= ``low_max``;
* ``high``: entropy > ``low_max``.

The none band is a second, separate dimension, on the "none / can't tell" share ``h_none`` of
the 11-slot label:

* ``none_free``: ``h_none`` = 0 (no vote said "none");
* ``some_none``: 0 < ``h_none`` < ``mostly_none_min``;
* ``mostly_none``: ``h_none`` >= ``mostly_none_min``.

Thresholds come from configuration (``evaluation.bands``).
"""

from __future__ import annotations

import numpy as np

BANDS = ("unanimous", "low", "high")
NONE_BANDS = ("none_free", "some_none", "mostly_none")


def difficulty_band(human_entropy: np.ndarray, unanimous_max: float, low_max: float) -> np.ndarray:
    """Band name per item (object array of ``BANDS``)."""
    if not 0 <= unanimous_max < low_max:
        raise ValueError(
            f"band thresholds must satisfy 0 <= unanimous_max < low_max, got {unanimous_max}, {low_max}"
        )
    e = np.asarray(human_entropy, dtype=np.float64)
    if np.any(~np.isfinite(e)):
        raise ValueError("human entropy must be finite for every item")
    out = np.full(e.shape, BANDS[2], dtype=object)
    out[e <= low_max] = BANDS[1]
    out[e <= unanimous_max] = BANDS[0]
    return out


def none_band(h_none: np.ndarray, mostly_none_min: float = 0.5, tol: float = 1e-12) -> np.ndarray:
    """None-band name per item (object array of ``NONE_BANDS``) from the none share."""
    if not 0 < mostly_none_min <= 1:
        raise ValueError(f"mostly_none_min must lie in (0, 1], got {mostly_none_min}")
    share = np.asarray(h_none, dtype=np.float64)
    if np.any(~np.isfinite(share)) or np.any(share < -tol) or np.any(share > 1 + tol):
        raise ValueError("the none share h_none must lie in [0, 1] for every item")
    out = np.full(share.shape, NONE_BANDS[1], dtype=object)
    out[share <= tol] = NONE_BANDS[0]
    out[share >= mostly_none_min - tol] = NONE_BANDS[2]
    return out
