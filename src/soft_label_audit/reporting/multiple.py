"""Multiple-testing corrections.

* Holm (1979) step-down adjusted p-values for the declared primary family (strong control of
  the family-wise error rate): with the m p-values sorted ascending,
  ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``.
* Benjamini-Hochberg (1995) q-values for everything else (false discovery rate), by
  ``scipy.stats.false_discovery_control(method="bh")``.

NaN p-values are left out of the family and stay NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(stepped)
    return out


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg q-values, in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out
