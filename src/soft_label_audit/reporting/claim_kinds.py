"""Claim kinds: what a claim of each kind declares and how its effect is estimated.

A claim is one directional test of one metric (``reporting.claims``). Its entry is read into
a frozen spec (:class:`ClaimSpec` and one subclass per kind, with the kind's own fields) by
:func:`read_claim`, at start-up with the rest of the ``reporting`` block
(:class:`soft_label_audit.reporting.config.ReportingConfig`). Every key of an entry is
required, ``kind`` included.

Kinds (:data:`CLAIM_KINDS`, kind name -> :class:`ClaimKind`):

* ``difference``: ``effect = M(condition) - M(baseline)``, M the mean over seeds of the
  test-set metric; seeds and items bootstrapped jointly (:mod:`.bootstrap`);
* ``band_contrast`` (field ``band``: a human-difficulty band): ``effect = [M_band(condition) -
  M_band(baseline)] - [M(condition) - M(baseline)]``, the difference on the items of one band
  minus the difference on all items, from the same draws;
* ``spread_ratio``: ``effect = std(condition) / std(baseline)`` over seeds (null 1), paired
  seed bootstrap (:mod:`.stability`);
* ``correlation`` (field ``cartography_column``: a column of cartography_by_run):
  ``effect = rho(condition) - rho(baseline)``, rho the per-seed Spearman correlation of a
  cartography coordinate with the human entropy over training items, averaged over seeds;
  seeds and training items bootstrapped jointly.

Adding a kind is one entry of :data:`CLAIM_KINDS`: its spec class (fields beyond
:class:`ClaimSpec`'s, each with its reader; the comparison text; the metrics it needs), its
estimator (spec, source bootstrap, :class:`ClaimContext` -> :class:`Estimate`), its power
columns (:mod:`.power`) and its null value. tests/reporting/test_claim_kinds.py evaluates one
claim of every registered kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.metrics.bands import BANDS
from soft_label_audit.metrics.per_run import BAND_SEPARATOR
from soft_label_audit.reporting import bootstrap
from soft_label_audit.reporting.power import bootstrap_power, spread_ratio_power
from soft_label_audit.reporting.stability import spread_ratio
from soft_label_audit.targets import BUILDERS

if TYPE_CHECKING:
    from soft_label_audit.reporting.statistics import SourceBootstrap

DIRECTIONS = ("increase", "decrease")


def _condition(path: str, value: Any) -> str:
    """A label condition (a key of :data:`soft_label_audit.targets.BUILDERS`); whether the
    study has it is checked at reporting time (a claim it lacks is skipped with a note)."""
    return p.choice(path, value, BUILDERS)


def _direction(path: str, value: Any) -> str:
    return p.choice(path, value, DIRECTIONS)


def _band(path: str, value: Any) -> str:
    return p.choice(path, value, BANDS)


def _read(reader: Callable[[str, Any], Any]) -> Any:
    """A required spec field read from the claim entry by ``reader(path, value)``."""
    return field(metadata={"read": reader})


@dataclass(frozen=True)
class ClaimSpec:
    """What every claim declares: ``effect(condition vs baseline)`` of ``metric`` is claimed to
    ``increase`` or ``decrease`` (``direction``)."""

    id: str = _read(p.text)
    statement: str = _read(p.text)
    metric: str = _read(p.text)
    condition: str = _read(_condition)
    baseline: str = _read(_condition)
    direction: str = _read(_direction)

    @classmethod
    def from_params(cls, entry: Mapping[str, Any], path: str) -> ClaimSpec:
        """The spec of one claim entry (a block); every field is required."""
        names = [f.name for f in fields(cls)]
        p.no_unknown(path, entry, ("kind", *names))
        return cls(
            **{
                f.name: f.metadata["read"](f"{path}.{f.name}", p.required(path, entry, f.name))
                for f in fields(cls)
            }
        )

    @property
    def kind(self) -> str:
        """The name under which :data:`CLAIM_KINDS` registers this spec's class."""
        return KIND_NAMES[type(self)]

    def comparison(self) -> str:
        """How the claims and power tables describe the comparison."""
        return f"{self.condition} - {self.baseline}"

    def needed_metrics(self) -> tuple[str, ...]:
        """Columns of metrics_by_run the claim reads; a source without one skips it."""
        return (self.metric,)


@dataclass(frozen=True)
class DifferenceClaim(ClaimSpec):
    """``difference``: the mean over seeds of ``metric``, condition minus baseline."""


@dataclass(frozen=True)
class BandContrastClaim(ClaimSpec):
    """``band_contrast``: the difference on the items of ``band`` minus the one on all items."""

    band: str = _read(_band)

    def comparison(self) -> str:
        c, b = self.condition, self.baseline
        return f"({c} - {b}) on {self.band} band - ({c} - {b}) on all items"

    @property
    def band_metric(self) -> str:
        return f"{self.metric}{BAND_SEPARATOR}{self.band}"

    def needed_metrics(self) -> tuple[str, ...]:
        return (self.metric, self.band_metric)


@dataclass(frozen=True)
class SpreadRatioClaim(ClaimSpec):
    """``spread_ratio``: the std over seeds of ``metric``, condition over baseline."""

    def comparison(self) -> str:
        return f"std over seeds: {self.condition} / {self.baseline}"


@dataclass(frozen=True)
class CorrelationClaim(ClaimSpec):
    """``correlation``: the Spearman correlation of ``cartography_column`` with the human
    entropy over training items (``metric``: its per-run column), condition minus baseline."""

    cartography_column: str = _read(p.text)


@dataclass(frozen=True, eq=False)
class ClaimContext:
    """What the estimators read besides a source's bootstrap."""

    cartography: pd.DataFrame | None
    n_resamples: int
    seed: int
    confidence: float


@dataclass(frozen=True, eq=False)
class Estimate:
    """A claim's effect on one source with what its interval, p-value and power come from:
    either ``boot`` (the effect over seed-and-item draws), ``boot_items`` (over item-only
    draws) and ``per_seed`` (the per-seed effects), or an interval and p-value the kind
    computed itself (``ci``, ``p_value``)."""

    effect: float
    n_items: int
    resampled: str
    boot: np.ndarray | None = None
    boot_items: np.ndarray | None = None
    per_seed: np.ndarray | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None

    def interval(self, confidence: float, null: float) -> tuple[float, float, float]:
        """(low, high, two-sided p-value of ``effect = null``)."""
        if self.ci is not None:
            return self.ci[0], self.ci[1], self.p_value
        low, high = bootstrap.percentile_interval(self.boot, confidence)
        return low, high, bootstrap.bootstrap_p_value(self.boot, null)


def _difference(boot: SourceBootstrap, spec: ClaimSpec, metric: str, items_only: bool = False):
    values, how = boot.resampled(metric, items_only)
    runs = boot.runs
    return values[:, runs.index(spec.condition)] - values[:, runs.index(spec.baseline)], how


def difference_estimate(spec: ClaimSpec, boot: SourceBootstrap, ctx: ClaimContext) -> Estimate:
    per_seed = boot.per_seed.get(spec.metric, [spec.baseline, spec.condition])
    boot_all, how = _difference(boot, spec, spec.metric)
    boot_items, _ = _difference(boot, spec, spec.metric, items_only=True)
    return Estimate(
        effect=float(np.mean(per_seed[1] - per_seed[0])),
        boot=boot_all,
        boot_items=boot_items,
        per_seed=per_seed[1] - per_seed[0],
        n_items=len(boot.runs.item_ids),
        resampled=how,
    )


def band_contrast_estimate(
    spec: BandContrastClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    pair = [spec.baseline, spec.condition]
    seed_all = boot.per_seed.get(spec.metric, pair)
    seed_band = boot.per_seed.get(spec.band_metric, pair)
    per_seed = (seed_band[1] - seed_band[0]) - (seed_all[1] - seed_all[0])
    parts = [
        _difference(boot, spec, m, io)
        for io in (False, True)
        for m in (spec.band_metric, spec.metric)
    ]
    return Estimate(
        effect=float(np.mean(per_seed)),
        boot=parts[0][0] - parts[1][0],
        boot_items=parts[2][0] - parts[3][0],
        per_seed=per_seed,
        n_items=int(np.sum(boot.runs.band == spec.band)),
        resampled=parts[0][1],
    )


def spread_ratio_estimate(
    spec: SpreadRatioClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    per_seed = boot.per_seed.get(spec.metric, [spec.baseline, spec.condition])
    res = spread_ratio(per_seed[1], per_seed[0], ctx.n_resamples, ctx.seed, ctx.confidence)
    return Estimate(
        effect=res["ratio"],
        ci=(res["ratio_low"], res["ratio_high"]),
        p_value=res["p_value"],
        n_items=len(boot.runs.item_ids),
        resampled="seeds",
    )


def correlation_estimate(
    spec: CorrelationClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    pair = [spec.baseline, spec.condition]
    runs = boot.runs
    per_seed = boot.per_seed.get(spec.metric, pair)
    values, reference = cartography_arrays(
        ctx.cartography, boot.source, pair, spec.cartography_column, runs.seeds
    )
    rng = np.random.default_rng([ctx.seed, 7, *boot.source.encode()])
    draws = bootstrap.draw(ctx.n_resamples, len(runs.seeds), values.shape[2], rng)
    fixed_seeds = bootstrap.Draws(np.ones_like(draws.seeds), draws.items)
    both = bootstrap.resample_correlation(values, reference, draws)
    items = bootstrap.resample_correlation(values, reference, fixed_seeds)
    return Estimate(
        effect=float(np.mean(per_seed[1] - per_seed[0])),
        boot=both[:, 1] - both[:, 0],
        boot_items=items[:, 1] - items[:, 0],
        per_seed=per_seed[1] - per_seed[0],
        n_items=values.shape[2],
        resampled="seeds+training items",
    )


def cartography_arrays(
    cartography: pd.DataFrame | None,
    source: str,
    conditions: list[str],
    column: str,
    seeds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """((C, S, n) values of ``column`` per condition, seed and training item, (n,) human
    entropy of the items) of one source, from cartography_by_run."""
    if cartography is None or column not in cartography:
        raise ValueError(
            f"cartography_by_run lacks the column {column!r} that a correlation claim needs"
        )
    cart = cartography[cartography["source"].astype(str) == source]
    reference = cart.drop_duplicates("item_id").set_index("item_id")["human_entropy"].sort_index()
    values = np.stack(
        [
            cart[cart["condition"].astype(str) == c]
            .pivot(index="seed", columns="item_id", values=column)
            .reindex(index=seeds, columns=reference.index)
            .to_numpy(dtype=np.float64)
            for c in conditions
        ]
    )
    if np.isnan(values).any():
        raise ValueError(
            f"cartography_by_run: {source} conditions {conditions} do not cover the same seeds "
            "and training items"
        )
    return values, reference.to_numpy(dtype=np.float64)


def _bootstrap_power(est: Estimate, n_seeds: int, alpha: float, power: float, target: float):
    return bootstrap_power(est.per_seed, est.boot_items, est.n_items, n_seeds, alpha, power, target)


def _spread_ratio_power(est: Estimate, n_seeds: int, alpha: float, power: float, target: float):
    return spread_ratio_power(n_seeds, alpha, power)


@dataclass(frozen=True)
class ClaimKind:
    """One kind of claim: its spec class, its estimator, its power columns
    (``power(estimate, n_seeds, alpha_per_test, power, target_effect)``, the
    ``POWER_COLUMNS`` of :mod:`.power` that the table does not fill) and the effect's null
    value (of the verdict and the p-value)."""

    spec: type[ClaimSpec]
    estimate: Callable[[Any, SourceBootstrap, ClaimContext], Estimate]
    power: Callable[[Estimate, int, float, float, float], dict[str, Any]]
    null: float = 0.0


CLAIM_KINDS: dict[str, ClaimKind] = {
    "difference": ClaimKind(DifferenceClaim, difference_estimate, _bootstrap_power),
    "band_contrast": ClaimKind(BandContrastClaim, band_contrast_estimate, _bootstrap_power),
    "spread_ratio": ClaimKind(
        SpreadRatioClaim, spread_ratio_estimate, _spread_ratio_power, null=1.0
    ),
    "correlation": ClaimKind(CorrelationClaim, correlation_estimate, _bootstrap_power),
}
KIND_NAMES: dict[type[ClaimSpec], str] = {k.spec: name for name, k in CLAIM_KINDS.items()}


def read_claim(entry: Any, path: str) -> ClaimSpec:
    """The spec of one ``reporting.claims`` entry, of the class its ``kind`` registers.

    >>> read_claim({"id": "d", "statement": "steadier", "kind": "spread_ratio",
    ...     "metric": "accuracy", "condition": "human_soft", "baseline": "original_hard",
    ...     "direction": "decrease"}, "reporting.claims[0]").comparison()
    'std over seeds: human_soft / original_hard'
    >>> read_claim({"kind": "ratio"}, "reporting.claims[0]")
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: reporting.claims[0].kind must be one of 'difference', ..., got 'ratio'
    """
    entry = p.block(path, entry)
    kind = p.choice(f"{path}.kind", p.required(path, entry, "kind"), CLAIM_KINDS)
    return CLAIM_KINDS[kind].spec.from_params(entry, path)
