"""The claims table: what the data supports, claim by claim and source by source.

Each claim of the declared primary family (``reporting.claims``, read into specs by
:class:`soft_label_audit.reporting.config.ReportingConfig`) is one directional test of one
metric; its kind (:data:`soft_label_audit.reporting.claim_kinds.CLAIM_KINDS`) says how its
effect, interval and p-value are estimated from the bootstraps and how its power row is
computed (:mod:`.power`). The table is shown by :mod:`.claims_report`.

p-values are two-sided bootstrap p-values, Holm-adjusted over every row of the table (all
claims and sources). Verdict rule (:func:`verdict`), with the kind's null value (0, 1 for
ratios): ``supported`` when the interval lies entirely on the claimed side of the null and
the adjusted p-value is below ``alpha``; ``contradicted`` when it lies entirely on the other
side and the adjusted p-value is below ``alpha``; otherwise ``inconclusive``. A claim whose
conditions or metric the study lacks is skipped with a logged note.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from soft_label_audit.reporting.claim_kinds import (
    CLAIM_KINDS,
    DIRECTIONS,
    ClaimContext,
    ClaimSpec,
    DifferenceClaim,
    Estimate,
)
from soft_label_audit.reporting.multiple import holm
from soft_label_audit.reporting.power import POWER_COLUMNS

if TYPE_CHECKING:
    from soft_label_audit.reporting.config import PowerSettings, ReportingConfig
    from soft_label_audit.reporting.statistics import SourceBootstrap

log = logging.getLogger(__name__)

CLAIM_COLUMNS = [
    "claim",
    "source",
    "metric",
    "comparison",
    "effect",
    "ci_low",
    "ci_high",
    "p_adjusted",
    "verdict",
]
EXTRA_COLUMNS = [
    "statement",
    "kind",
    "condition",
    "baseline",
    "direction",
    "null",
    "p_value",
    "n_seeds",
    "n_items",
    "resampled",
]
VERDICTS = ("supported", "contradicted", "inconclusive")


def verdict(
    ci_low: float,
    ci_high: float,
    p_adjusted: float,
    direction: str,
    alpha: float,
    null: float = 0.0,
) -> str:
    """``supported`` / ``contradicted`` / ``inconclusive`` (rule in the module docstring)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if (
        not (np.isfinite(ci_low) and np.isfinite(ci_high) and np.isfinite(p_adjusted))
        or p_adjusted >= alpha
    ):
        return "inconclusive"
    above, below = ci_low > null, ci_high < null
    if (above and direction == "increase") or (below and direction == "decrease"):
        return "supported"
    if above or below:
        return "contradicted"
    return "inconclusive"


def _missing(spec: ClaimSpec, boot: SourceBootstrap) -> str | None:
    """What of the claim the source lacks (conditions first, then metrics), or None."""
    missing = [c for c in (spec.condition, spec.baseline) if c not in boot.runs.conditions]
    if missing:
        return f"condition {missing}"
    absent = [m for m in spec.needed_metrics() if m not in boot.metrics_by_run]
    return f"metric {absent}" if absent else None


def evaluate_claims(
    boots: dict[str, SourceBootstrap], cartography: pd.DataFrame | None, config: ReportingConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims table, power table) of ``config.claims``; Holm adjustment over every row of the
    claims table. The power table has a row per claim and source, then the reference rows
    (:func:`reference_claims`)."""
    ctx = ClaimContext(
        cartography=cartography,
        n_resamples=config.bootstrap.n_resamples,
        seed=config.bootstrap.seed,
        confidence=config.confidence,
    )
    rows: list[dict[str, Any]] = []
    estimates: list[tuple[ClaimSpec, str, Estimate, int]] = []
    for spec in config.claims:
        kind = CLAIM_KINDS[spec.kind]
        for source, boot in boots.items():
            lacks = _missing(spec, boot)
            if lacks:
                log.warning(
                    "claim %s skipped for source %s: the study has no %s", spec.id, source, lacks
                )
                continue
            est = kind.estimate(spec, boot, ctx)
            low, high, p_value = est.interval(config.confidence, kind.null)
            rows.append(
                {
                    "claim": spec.id,
                    "source": source,
                    "metric": spec.metric,
                    "comparison": spec.comparison(),
                    "effect": est.effect,
                    "ci_low": low,
                    "ci_high": high,
                    "p_adjusted": np.nan,
                    "verdict": "",
                    "statement": spec.statement,
                    "kind": spec.kind,
                    "condition": spec.condition,
                    "baseline": spec.baseline,
                    "direction": spec.direction,
                    "null": kind.null,
                    "p_value": p_value,
                    "n_seeds": len(boot.runs.seeds),
                    "n_items": est.n_items,
                    "resampled": est.resampled,
                }
            )
            estimates.append((spec, source, est, len(boot.runs.seeds)))
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS + EXTRA_COLUMNS)
    if len(table):
        table["p_adjusted"] = holm(table["p_value"].to_numpy())
        table["verdict"] = [
            verdict(r.ci_low, r.ci_high, r.p_adjusted, r.direction, config.alpha, r.null)
            for r in table.itertuples()
        ]
    for spec in reference_claims(config.power):
        for source, boot in boots.items():
            if {spec.condition, spec.baseline} <= set(boot.runs.conditions) and (
                spec.metric in boot.per_seed
            ):
                est = CLAIM_KINDS[spec.kind].estimate(spec, boot, ctx)
                estimates.append((spec, source, est, len(boot.runs.seeds)))
    # Holm's first step: the strictest threshold of the family
    alpha_per_test = config.alpha / max(len(table), 1)
    power = pd.DataFrame(
        [power_row(*e, alpha_per_test, config.power) for e in estimates], columns=POWER_COLUMNS
    )
    return table, power


def reference_claims(power: PowerSettings) -> list[DifferenceClaim]:
    """A plain difference of every target metric (``power.targets``) between the
    ``power.reference`` conditions, claim or not: power rows only."""
    ref = power.reference
    return [
        DifferenceClaim(
            id=f"reference_{metric}",
            statement=f"power reference for {metric}",
            metric=metric,
            condition=ref.condition,
            baseline=ref.baseline,
            direction="increase",
        )
        for metric in power.targets
    ]


def power_row(
    spec: ClaimSpec,
    source: str,
    est: Estimate,
    n_seeds: int,
    alpha_per_test: float,
    settings: PowerSettings,
) -> dict[str, Any]:
    """One row of the power table: the minimum detectable effect at ``settings.power`` and
    what a target effect needs (the columns the claim's kind computes)."""
    target = settings.targets.get(spec.metric, float("nan"))
    row = {
        "claim": spec.id,
        "source": source,
        "metric": spec.metric,
        "comparison": spec.comparison(),
        "n_seeds": n_seeds,
        "n_items": est.n_items,
        "alpha_per_test": alpha_per_test,
        "target_effect": target,
    }
    return {
        **row,
        **CLAIM_KINDS[spec.kind].power(est, n_seeds, alpha_per_test, settings.power, target),
    }
