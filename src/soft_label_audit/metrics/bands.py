"""Human-difficulty bands of items, from the human entropy (nats, over the 11 label slots).

* ``unanimous``: entropy <= ``unanimous_max`` (every vote on one slot: entropy 0, up to float error);
* ``low``: ``unanimous_max`` < entropy <= ``low_max``;
* ``high``: entropy > ``low_max``.

Thresholds come from configuration (``evaluation.bands``).
"""

from __future__ import annotations

import numpy as np

BANDS = ("unanimous", "low", "high")


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
