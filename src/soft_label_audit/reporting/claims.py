"""The claims table: what the data supports, claim by claim and source by source.

Each claim of the declared primary family (``reporting.claims``, read into specs by
:class:`soft_label_audit.reporting.config.ReportingConfig`) is one directional test of one
metric; its kind (:data:`soft_label_audit.reporting.claim_kinds.CLAIM_KINDS`) says how its
effect, interval and p-value are estimated from the bootstraps and how its power row is
computed (:mod:`.power`). The table is shown by :mod:`.claims_report`.

Each row is tested on the items of its claim's ``scope`` (``test``: the annotated test items;
``pool``: the unannotated scoring pool, label-free metrics only).

p-values (``p_value``) are two-sided p-values of a test with an analytic reference
distribution (:mod:`.variance`): the studentised effect ``effect / SE`` referred to Student's
t with Satterthwaite df, SE from the effect's seed, item and seed x item variance components
(ANOVA of per-item paired differences for item-mean metrics, ``p_mc_se = 0``; item-only
bootstrap variances for binned and rank metrics, ``p_mc_se`` their Monte Carlo error by the
delta method); the Pitman-Morgan t-test (S - 2 df) for a ratio of seed spreads. No p-value has a
resampling floor, so the smallest Holm-adjusted p is not bounded by ``m / B``. They are
Holm-adjusted over every row of the table (all claims and sources). The power table
(:mod:`.power`) computes the power of the same tests.

Intervals (``ci_low``, ``ci_high``) are percentile intervals of the seed-and-item bootstrap
(``reporting.bootstrap``; a paired seed bootstrap for a ratio of spreads): they describe the
effect's uncertainty without the studentised test's normality assumptions.

Verdict rule (:func:`verdict`), with the kind's null value (0, 1 for ratios): ``supported``
when the adjusted p-value is below ``alpha`` AND the interval lies entirely on the claimed side
of the null; ``contradicted`` when the adjusted p-value is below ``alpha`` and the interval
lies entirely on the other side; otherwise ``inconclusive``. Both must agree, so a verdict is
never contradicted by its own interval, and a rejection that the bootstrap interval does not
confirm (the t-test's assumptions in doubt) stays inconclusive. A claim with a secondary check
(a ``band_effect``: the band's own effect, then its contrast with the other items) has the
intersection-union p-value (the larger of its two tests'), and both intervals must lie on the
claimed side for ``supported``; either one entirely on the other side makes it
``contradicted`` (columns ``contrast_effect``, ``contrast_ci_low``, ``contrast_ci_high``,
``contrast_p_value``; NaN for the other kinds). A ``beats_all_baselines`` claim (the condition
beats the best of several baselines) has the intersection-union p-value over its comparisons
(the largest), every comparison's interval must lie on the claimed side for ``supported``, and
its row's ``baseline``, effect, interval and test are those of the best baseline (the weakest
effect in the claimed direction); when that effect lies on the other side, its p-value is the
union's (``K`` baselines: ``K`` times the best comparison's p, Bonferroni), so a condition
clearly worse than its best baseline is ``contradicted``. A claim whose conditions (any of its
baselines), metric or scope the study lacks is skipped with a logged note.
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
    "scope",
    "condition",
    "baseline",
    "direction",
    "null",
    "test",
    "statistic",
    "df",
    "se",
    "p_value",
    "p_mc_se",
    "n_seeds",
    "n_items",
    "resampled",
    "contrast_effect",
    "contrast_ci_low",
    "contrast_ci_high",
    "contrast_p_value",
]
VERDICTS = ("supported", "contradicted", "inconclusive")


def verdict(
    ci_low: float,
    ci_high: float,
    p_adjusted: float,
    direction: str,
    alpha: float,
    null: float = 0.0,
    secondary: tuple[float, float] | list[tuple[float, float]] | None = None,
) -> str:
    """``supported`` / ``contradicted`` / ``inconclusive`` (rule in the module docstring);
    ``secondary``: the interval of a secondary check, or a list of them (the other baselines'
    comparisons), which must all agree for ``supported``.

    >>> verdict(-0.03, -0.01, 0.01, "decrease", 0.05, secondary=(-0.02, 0.01))
    'inconclusive'
    >>> verdict(-0.03, -0.01, 0.01, "decrease", 0.05, secondary=(0.01, 0.02))
    'contradicted'
    >>> verdict(-0.03, -0.01, 0.01, "decrease", 0.05, secondary=[(-0.05, -0.02), (-0.2, -0.1)])
    'supported'
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if secondary is None:
        extra = []
    elif isinstance(secondary, list):
        extra = [tuple(s) for s in secondary]
    else:
        extra = [tuple(secondary)]
    intervals = [(ci_low, ci_high), *extra]
    if not (np.all(np.isfinite(intervals)) and np.isfinite(p_adjusted)) or p_adjusted >= alpha:
        return "inconclusive"
    sides = [
        "increase" if low > null else "decrease" if high < null else None for low, high in intervals
    ]
    if all(side == direction for side in sides):
        return "supported"
    if any(side is not None and side != direction for side in sides):
        return "contradicted"
    return "inconclusive"


def _missing(spec: ClaimSpec, boot: SourceBootstrap) -> str | None:
    """What of the claim the source lacks (conditions first, then metrics), or None."""
    missing = [c for c in (spec.condition, *spec.compared()) if c not in boot.runs.conditions]
    if missing:
        return f"condition {missing}"
    absent = [m for m in spec.needed_metrics() if m not in boot.per_seed]
    return f"metric {absent}" if absent else None


def _scoped(
    spec: ClaimSpec, boots: dict[str, SourceBootstrap], pool_boots: dict[str, SourceBootstrap]
) -> dict[str, SourceBootstrap]:
    """The bootstraps of the claim's scope, one per source that has it."""
    if spec.scope == "test":
        return boots
    lacking = [s for s in boots if s not in pool_boots]
    if lacking:
        log.warning(
            "claim %s skipped for source(s) %s: the study has no pool predictions",
            spec.id,
            ", ".join(lacking),
        )
    return pool_boots


def evaluate_claims(
    boots: dict[str, SourceBootstrap],
    cartography: pd.DataFrame | None,
    config: ReportingConfig,
    pool_boots: dict[str, SourceBootstrap] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims table, power table) of ``config.claims``; Holm adjustment over every row of the
    claims table. ``boots``: the test scope's bootstraps, ``pool_boots`` the pool scope's (a
    pool claim is skipped with a note for a source without). The power table has design rows
    per claim and source, then those of the reference comparisons (:func:`reference_claims`)."""
    pool_boots = pool_boots or {}
    ctx = ClaimContext(
        cartography=cartography,
        n_resamples=config.bootstrap.n_resamples,
        seed=config.bootstrap.seed,
        confidence=config.confidence,
    )
    rows: list[dict[str, Any]] = []
    secondary: list[list[tuple[float, float]]] = []
    estimates: list[tuple[ClaimSpec, str, Estimate, int]] = []
    for spec in config.claims:
        kind = CLAIM_KINDS[spec.kind]
        for source, boot in _scoped(spec, boots, pool_boots).items():
            lacks = _missing(spec, boot)
            if lacks:
                log.warning(
                    "claim %s skipped for source %s: the study has no %s", spec.id, source, lacks
                )
                continue
            est = kind.estimate(spec, boot, ctx)
            low, high = est.interval(config.confidence)
            check = est.contrast
            secondary.append(est.secondary_intervals(config.confidence))
            contrast_ci = None if check is None else check.interval(config.confidence)
            nan = float("nan")
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
                    "scope": spec.scope,
                    "condition": spec.condition,
                    "baseline": est.baseline or spec.baseline,
                    "direction": spec.direction,
                    "null": kind.null,
                    "test": est.test_name,
                    "statistic": est.test.statistic,
                    "df": est.test.df,
                    "se": est.test.se,
                    "p_value": est.p_value,
                    "p_mc_se": est.test.p_mc_se,
                    "n_seeds": len(boot.runs.seeds),
                    "n_items": est.n_items,
                    "resampled": est.resampled,
                    "contrast_effect": nan if check is None else check.effect,
                    "contrast_ci_low": nan if contrast_ci is None else contrast_ci[0],
                    "contrast_ci_high": nan if contrast_ci is None else contrast_ci[1],
                    "contrast_p_value": nan if check is None else check.test.p_value,
                }
            )
            estimates.append((spec, source, est, len(boot.runs.seeds)))
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS + EXTRA_COLUMNS)
    if len(table):
        table["p_adjusted"] = holm(table["p_value"].to_numpy())
        table["verdict"] = [
            verdict(r.ci_low, r.ci_high, r.p_adjusted, r.direction, config.alpha, r.null, check)
            for r, check in zip(table.itertuples(), secondary, strict=True)
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
        [row for e in estimates for row in power_rows(*e, alpha_per_test, config.power)],
        columns=POWER_COLUMNS,
    )
    return table, power


def reference_claims(power: PowerSettings) -> list[DifferenceClaim]:
    """A plain difference of every target metric (``power.targets``, its target effect)
    between the ``power.reference`` conditions on the test items, claim or not: power rows
    only."""
    ref = power.reference
    return [
        DifferenceClaim(
            id=f"reference_{metric}",
            statement=f"power reference for {metric}",
            metric=metric,
            condition=ref.condition,
            baseline=ref.baseline,
            direction="increase",
            scope="test",
            target=target,
        )
        for metric, target in power.targets.items()
    ]


def power_rows(
    spec: ClaimSpec,
    source: str,
    est: Estimate,
    n_seeds: int,
    alpha_per_test: float,
    settings: PowerSettings,
) -> list[dict[str, Any]]:
    """The power rows of one claim and source: the power of its test against the claim's
    ``target`` at the study's design, and one row per design of ``settings.design_seeds``
    (the columns the claim's kind computes, :mod:`.power`)."""
    row = {
        "claim": spec.id,
        "scope": spec.scope,
        "source": source,
        "metric": spec.metric,
        "comparison": spec.comparison(),
        "test": est.test_name,
        "target_effect": spec.target,
        "n_seeds": n_seeds,
        "alpha_per_test": alpha_per_test,
    }
    designs = CLAIM_KINDS[spec.kind].power(est, n_seeds, alpha_per_test, settings, spec.target)
    return [{**row, **design} for design in designs]
