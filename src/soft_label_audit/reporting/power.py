"""Power of the claims: the smallest effect a claim's test detects and what a target needs.

A claim kind's power row (:data:`soft_label_audit.reporting.claim_kinds.CLAIM_KINDS`) comes
from one of the two functions at the end: :func:`bootstrap_power` for an effect read from
seed-and-item bootstraps (the seed component and the item component of its error,
:func:`seed_and_item_components`), :func:`spread_ratio_power` for a ratio of seed spreads
(an F-test approximation). The claims table (:mod:`.claims`) adds the columns every row has.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from soft_label_audit.reporting.stability import detectable_spread_ratio

POWER_COLUMNS = [
    "claim",
    "source",
    "metric",
    "comparison",
    "n_seeds",
    "n_items",
    "alpha_per_test",
    "sd_seed",
    "se_items",
    "detectable_effect",
    "detectable_effect_infinite_seeds",
    "target_effect",
    "seeds_for_target",
    "seeds_for_target_items_fixed",
    "items_for_target",
]


def seed_and_item_components(
    per_seed_effects: np.ndarray, item_resampled_effects: np.ndarray
) -> tuple[float, float]:
    """(sd of the effect across seeds, standard error of the effect from the item sample).

    The seed component is the sample std (ddof=1) of the per-seed effects (each on all items);
    the item component is the std of the effect when only the test items are resampled
    (seeds fixed). The standard error of the effect with ``S`` seeds is then approximately
    ``sqrt(sd_seed^2 / S + se_items^2)`` (the item-by-seed interaction counted in both: a
    slight overestimate).
    """
    d = np.asarray(per_seed_effects, dtype=np.float64)
    d = d[np.isfinite(d)]
    sd_seed = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    b = np.asarray(item_resampled_effects, dtype=np.float64)
    b = b[np.isfinite(b)]
    se_items = float(np.std(b, ddof=1)) if len(b) > 1 else float("nan")
    return sd_seed, se_items


def detectable_effect(sd_seed: float, se_items: float, n_seeds, alpha: float, power: float = 0.8):
    """Smallest effect a two-sided test at ``alpha`` detects with ``power`` from ``n_seeds``
    seeds: ``(t_{1-alpha/2, S-1} + t_{power, S-1}) * sqrt(sd_seed^2 / S + se_items^2)``
    (``n_seeds`` may be an array)."""
    s = np.asarray(n_seeds, dtype=np.float64)
    if not np.isfinite(sd_seed) or not np.isfinite(se_items):
        return np.full(s.shape, np.nan) if s.ndim else float("nan")
    with np.errstate(invalid="ignore"):
        df = np.where(s >= 2, s - 1, np.nan)
        se = np.sqrt(sd_seed**2 / s + se_items**2)
        out = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se
    return out if s.ndim else float(out)


def seeds_for_effect(
    target: float,
    sd_seed: float,
    se_items: float,
    alpha: float,
    power: float = 0.8,
    max_seeds: int = 1000,
) -> float:
    """Fewest seeds (>= 2) whose detectable effect is at most ``target``; NaN when the item
    sample alone makes the target unreachable (or beyond ``max_seeds``)."""
    if not np.isfinite(target) or target <= 0:
        return float("nan")
    seeds = np.arange(2, max_seeds + 1)
    ok = np.flatnonzero(detectable_effect(sd_seed, se_items, seeds, alpha, power) <= target)
    return float(seeds[ok[0]]) if len(ok) else float("nan")


def items_for_effect(
    target: float, se_items: float, n_items: int, alpha: float, power: float = 0.8
) -> float:
    """Test items that bring the item part of the detectable effect down to ``target`` with
    unlimited seeds, assuming its standard error shrinks as ``1 / sqrt(n)`` (normal quantiles)."""
    if not (np.isfinite(target) and target > 0 and np.isfinite(se_items)):
        return float("nan")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(np.ceil(n_items * (z * se_items / target) ** 2))


def bootstrap_power(
    per_seed: np.ndarray,
    boot_items: np.ndarray,
    n_items: int,
    n_seeds: int,
    alpha: float,
    power: float,
    target: float,
) -> dict[str, Any]:
    """The power columns of an effect with per-seed values and item-only resamples: its
    detectable effect at ``power`` and the seeds and items a ``target`` effect needs."""
    sd_seed, se_items = seed_and_item_components(per_seed, boot_items)
    return {
        "sd_seed": sd_seed,
        "se_items": se_items,
        "detectable_effect": detectable_effect(sd_seed, se_items, n_seeds, alpha, power),
        "detectable_effect_infinite_seeds": float(
            (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se_items
        ),
        "seeds_for_target": seeds_for_effect(target, sd_seed, se_items, alpha, power),
        # the same test items for ever: only the seed component counts
        "seeds_for_target_items_fixed": seeds_for_effect(target, sd_seed, 0.0, alpha, power),
        # items for the target with unlimited seeds, the item error shrinking as 1/sqrt(n)
        "items_for_target": items_for_effect(target, se_items, n_items, alpha, power),
    }


def spread_ratio_power(n_seeds: int, alpha: float, power: float) -> dict[str, Any]:
    """The power columns of a ratio of seed spreads: the F-test's detectable ratio only."""
    return {
        "sd_seed": np.nan,
        "se_items": np.nan,
        "detectable_effect": detectable_spread_ratio(n_seeds, alpha, power),
        "detectable_effect_infinite_seeds": np.nan,
        "seeds_for_target": np.nan,
        "seeds_for_target_items_fixed": np.nan,
        "items_for_target": np.nan,
    }
