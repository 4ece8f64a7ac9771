"""Power of the claims: what the study detects now and the designs that detect a target.

Every claim (and every reference comparison) gets rows of ``power.csv`` in long format: one
row per number of seeds of ``reporting.power.design_seeds``, each with the fewest items that
reach ``reporting.power.power`` against the claim's own ``target`` effect at the Holm level
of the family's first step, ``alpha / m`` (m: the rows of the claims table; the strictest of
Holm's thresholds, so a design that reaches it reaches any later step's too: conservative).

The power is that of the claim's own test (:mod:`.variance`, one reference distribution for
both): for an effect with variance components, the studentised t-test with Satterthwaite df
at the design's expected mean squares, its power from the noncentral t
(:func:`.variance.power`); items solved by :func:`.variance.items_for_power`. Items are those
of the claim's scope: all annotated test items for a test claim (a band claim's components are
per annotated item, since its per-item weights ``n 1[band] / n_band - 1`` carry the band's
share, so ``design_items`` are total annotated test items and ``design_band_items = share x
design_items`` are the band's), pool items for a pool claim, training items for a
cartography claim. For a ratio of seed spreads the Pitman-Morgan test's power
(:func:`.variance.spread_ratio_power`) depends on the seeds only; its items stay the study's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from soft_label_audit.reporting import variance

if TYPE_CHECKING:
    from soft_label_audit.reporting.claim_kinds import Estimate
    from soft_label_audit.reporting.config import PowerSettings

POWER_COLUMNS = [
    "claim",
    "scope",
    "source",
    "metric",
    "comparison",
    "test",
    "target_effect",
    "var_seed",
    "var_item",
    "var_residual",
    "components",
    "n_seeds",
    "n_items",
    "band_share",
    "alpha_per_test",
    "power_at_study",
    "detectable_effect",
    "min_seeds",
    "design_seeds",
    "design_items",
    "design_band_items",
    "design_power",
]
#: the columns :func:`component_designs` and :func:`spread_ratio_designs` fill
DESIGN_COLUMNS = POWER_COLUMNS[POWER_COLUMNS.index("var_seed") :]


def _fewest_seeds(reaches, start: int, stop: int = 1000) -> float:
    """Fewest seeds in ``start..stop`` for which ``reaches(seeds)`` holds (NaN if none);
    bisection, the power growing with the seeds."""
    if not reaches(stop):
        return float("nan")
    if reaches(start):
        return float(start)
    lo, hi = start, stop
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return float(hi)


def component_designs(
    est: Estimate, n_seeds: int, alpha: float, settings: PowerSettings, target: float
) -> list[dict[str, Any]]:
    """Design rows of an effect with variance components (module docstring)."""
    comps, n, share = est.components, est.n_scope_items, est.band_share
    wanted = settings.power
    if not np.isfinite(comps.var_residual):  # one seed, or too few resamples: no design
        nan = float("nan")
        keys = ("power_at_study", "detectable_effect", "min_seeds", "design_items")
        return [
            {
                "var_seed": nan,
                "var_item": nan,
                "var_residual": nan,
                "components": comps.method,
                "n_items": n,
                "band_share": share,
                **dict.fromkeys(keys, nan),
                "design_seeds": seeds,
                "design_band_items": nan,
                "design_power": nan,
            }
            for seeds in settings.design_seeds
        ]
    common = {
        "var_seed": comps.var_seed,
        "var_item": comps.var_item,
        "var_residual": comps.var_residual,
        "components": comps.method,
        "n_items": n,
        "band_share": share,
        "power_at_study": float(variance.power(target, comps, n_seeds, n, alpha)),
        "detectable_effect": variance.detectable_effect(comps, n_seeds, n, alpha, wanted),
    }
    items_matter = comps.method != "seeds only"
    # reachable with S seeds at all: with (practically) unlimited items
    common["min_seeds"] = _fewest_seeds(
        lambda s: variance.power(target, comps, s, variance.MAX_ITEMS, alpha) >= wanted, 2
    )
    rows = []
    for seeds in settings.design_seeds:
        if items_matter:
            items = variance.items_for_power(target, comps, seeds, alpha, wanted)
        else:  # the item component was not estimated: the study's items, seeds only
            reached = variance.power(target, comps, seeds, n, alpha) >= wanted
            items = float(n) if reached else float("nan")
        reached_power = (
            float(variance.power(target, comps, seeds, items, alpha))
            if np.isfinite(items)
            else float(variance.power(target, comps, seeds, variance.MAX_ITEMS, alpha))
        )
        rows.append(
            {
                **common,
                "design_seeds": seeds,
                "design_items": items,
                "design_band_items": float(np.ceil(items * share)) if np.isfinite(items) else items,
                "design_power": reached_power,
            }
        )
    return rows


def spread_ratio_designs(
    est: Estimate, n_seeds: int, alpha: float, settings: PowerSettings, target: float
) -> list[dict[str, Any]]:
    """Design rows of a ratio of seed spreads: the Pitman-Morgan test's power per number of
    seeds against the ``target`` ratio, with the study's pairing correlation and items."""
    rho, n = est.pairing, est.n_scope_items
    wanted = settings.power
    common = {
        "var_seed": np.nan,
        "var_item": np.nan,
        "var_residual": np.nan,
        "components": f"none (pairing correlation {rho:.3g})",
        "n_items": n,
        "band_share": 1.0,
        "power_at_study": float(variance.spread_ratio_power(target, rho, n_seeds, alpha)),
        "detectable_effect": variance.detectable_spread_ratio(rho, n_seeds, alpha, wanted),
        "min_seeds": _fewest_seeds(
            lambda s: variance.spread_ratio_power(target, rho, s, alpha) >= wanted, 3
        ),
    }
    rows = []
    for seeds in settings.design_seeds:
        pw = float(variance.spread_ratio_power(target, rho, seeds, alpha))
        rows.append(
            {
                **common,
                "design_seeds": seeds,
                "design_items": float(n) if pw >= wanted else float("nan"),
                "design_band_items": float(n) if pw >= wanted else float("nan"),
                "design_power": pw,
            }
        )
    return rows
