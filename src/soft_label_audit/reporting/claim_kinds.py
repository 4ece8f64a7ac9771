"""Claim kinds: what a claim of each kind declares and how its effect is estimated.

A claim is one directional test of one metric (``reporting.claims``). Its entry is read into
a frozen spec (:class:`ClaimSpec` and one subclass per kind, with the kind's own fields) by
:func:`read_claim`, at start-up with the rest of the ``reporting`` block
(:class:`soft_label_audit.reporting.config.ReportingConfig`). Every key of an entry is
required, ``kind`` included; every claim has a ``scope`` (``test`` or ``pool``; band and
cartography claims need ``test``, a pool claim a label-free metric) and a ``target`` (the
smallest effect of interest that the power table designs for).

Kinds (:data:`CLAIM_KINDS`, kind name -> :class:`ClaimKind`):

* ``difference``: ``effect = M(condition) - M(baseline)``, M the mean over seeds of the
  test-set metric; seeds and items bootstrapped jointly (:mod:`.bootstrap`);
* ``band_effect`` (field ``band``: a human-difficulty band; ``metric``: an item-mean metric,
  :data:`BAND_EFFECT_METRICS`): the primary effect is the difference on the band itself,
  ``effect = M_band(condition) - M_band(baseline)``; the secondary check is its contrast with
  the complementary items (every item outside the band: for ``high``, the unanimous and low
  ones), ``contrast = effect - [M_rest(condition) - M_rest(baseline)]``. Rule: the claim is an
  intersection of the two (the band improves, and improves more than the rest), tested as an
  intersection-union test: its p-value is the larger of the two tests' p-values (what Holm
  adjusts), and ``supported`` needs both percentile intervals on the claimed side
  (``contradicted``: either entirely on the other side). A change on the other items alone
  can therefore never support it, as it could a contrast with all items. Item means only:
  their bias does not depend on the condition (NLL, Brier: proper scores against the original
  label; distances to the human label), unlike the plug-in ECE, whose upward bias shrinks as
  predictions sharpen and which sits at its noise floor on a band of a few dozen items;
* ``spread_ratio``: ``effect = std(condition) / std(baseline)`` over seeds (null 1), paired
  seed bootstrap (:mod:`.stability`);
* ``entropy_correlation`` (``metric``: ``spearman_entropy``): ``effect = rho(condition) -
  rho(baseline)``, rho the per-seed Spearman correlation of the model's predictive entropy
  ``H(p)`` on the test items with their human entropy, averaged over seeds; seeds and test
  items bootstrapped jointly, with the scope's draws. The test items' human labels never
  reached any model, so the correlation cannot be a copy of the training target;
* ``correlation`` (field ``cartography_column``: a column of cartography_by_run):
  ``effect = rho(condition) - rho(baseline)``, rho the per-seed Spearman correlation of a
  cartography coordinate with the human entropy over training items, averaged over seeds;
  seeds and training items bootstrapped jointly. On training items a model mirrors its own
  targets (``human_soft``'s target entropy is the human entropy), so comparing conditions
  trained on different targets by it is circular; read it beside the per-run
  ``carto_rho_*_own_target`` columns. The study's claim (e) is an ``entropy_correlation``;
* ``beats_all_baselines`` (field ``baselines``, a list, instead of ``baseline``): the condition
  beats the best of several baselines (claim (f): several regularisers of one strength or
  another). Each comparison is a ``difference`` (same scope, bootstrap and test); rule: an
  intersection-union test, its p-value the largest of the comparisons' and ``supported`` only
  when every comparison's interval lies on the claimed side. Its row names the baseline with
  the weakest effect in the claimed direction (the best baseline) and reports that
  comparison's effect, interval and test. When the best baseline's effect lies on the other
  side, the row tests the contrary (the condition is worse than at least one baseline) as a
  union with a Bonferroni p-value, ``K`` times the best comparison's p for ``K`` baselines
  (capped at 1): a condition clearly worse than its best baseline reads ``contradicted``, not
  ``inconclusive`` through the largest p of comparisons it wins. Its power rows are the best
  comparison's (the intersection with the others can only need more).

Each estimator also runs the kind's test (:mod:`.variance`): the studentised t with
Satterthwaite df from the effect's variance components for the difference, band and
correlation kinds (ANOVA components for item-mean metrics, bootstrap components for binned and
rank metrics, the seed spread alone for a metric resampled over seeds only), the
Pitman-Morgan test for a spread ratio. A band effect's two tests are ANOVAs of per-item paired
differences: the band effect's over the band's items, the contrast's over all items of the
centred, weighted differences of :func:`_contrast_items` (their mean over items is each seed's
band mean minus its rest mean).

Adding a kind is one entry of :data:`CLAIM_KINDS`: its spec class (fields beyond
:class:`ClaimSpec`'s, each with its reader; the comparison text; the metrics it needs), its
estimator (spec, source bootstrap, :class:`ClaimContext` -> :class:`Estimate`), its power
rows (:mod:`.power`) and its null value. tests/reporting/test_claim_kinds.py evaluates one
claim of every registered kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.metrics import alignment, registry
from soft_label_audit.metrics.bands import BANDS
from soft_label_audit.metrics.per_run import BAND_SEPARATOR
from soft_label_audit.reporting import bootstrap, variance
from soft_label_audit.reporting.power import (
    band_designs,
    component_designs,
    spread_ratio_designs,
)
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


def _scope(path: str, value: Any) -> str:
    return p.choice(path, value, bootstrap.SCOPES)


def _target(path: str, value: Any) -> float:
    return p.number(path, value, 0, low_open=True)


def _read(reader: Callable[[str, Any], Any]) -> Any:
    """A required spec field read from the claim entry by ``reader(path, value)``."""
    return field(metadata={"read": reader})


@dataclass(frozen=True)
class ClaimSpec:
    """What every claim declares: ``effect(condition vs baseline)`` of ``metric`` is claimed to
    ``increase`` or ``decrease`` (``direction``), on the items of ``scope`` (``test``: the
    annotated test items; ``pool``: the unannotated scoring pool, label-free metrics only,
    :func:`soft_label_audit.reporting.bootstrap.is_label_free`); ``target``: the smallest
    effect of interest, in the effect's units (a difference; a ratio for a ratio claim),
    which the power table designs the study for."""

    id: str = _read(p.text)
    statement: str = _read(p.text)
    metric: str = _read(p.text)
    condition: str = _read(_condition)
    baseline: str = _read(_condition)
    direction: str = _read(_direction)
    scope: str = _read(_scope)
    target: float = _read(_target)

    #: whether a claim of this kind may be on the pool scope (it needs no human label)
    pool_allowed = True

    @classmethod
    def from_params(cls, entry: Mapping[str, Any], path: str) -> ClaimSpec:
        """The spec of one claim entry (a block); every field is required."""
        read = claim_fields(cls)
        p.no_unknown(path, entry, ("kind", *(f.name for f in read)))
        spec = cls(
            **{
                f.name: f.metadata["read"](f"{path}.{f.name}", p.required(path, entry, f.name))
                for f in read
            }
        )
        spec.check(path)
        return spec

    def compared(self) -> tuple[str, ...]:
        """The baselines the condition is compared with (one, but for ``beats_all_baselines``)."""
        return (self.baseline,)

    def check(self, path: str) -> None:
        """Rules across fields: a pool claim needs a label-free metric and a kind that allows
        it."""
        if self.scope == "pool" and not (
            self.pool_allowed and bootstrap.is_label_free(self.metric)
        ):
            raise p.fail(
                f"{path}.scope",
                "'test' for this claim (the pool scope has no human labels: only difference and "
                "spread_ratio claims of accuracy, nll, brier, ece_*, ece_mass_*, classwise_ece_*, "
                "mce_* or ce_l2_debiased_*)",
                self.scope,
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


def claim_fields(cls: type[ClaimSpec]) -> list:
    """The fields a claim entry of ``cls`` gives (each with its reader), in order."""
    return [f for f in fields(cls) if "read" in f.metadata]


@dataclass(frozen=True)
class DifferenceClaim(ClaimSpec):
    """``difference``: the mean over seeds of ``metric``, condition minus baseline."""


def _baselines(path: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of distinct label conditions."""
    if not isinstance(value, (list, tuple)) or not value or len(set(map(str, value))) != len(value):
        raise p.fail(path, "a non-empty list of distinct label conditions", value)
    return tuple(_condition(f"{path}[{i}]", v) for i, v in enumerate(value))


@dataclass(frozen=True)
class BeatsAllBaselinesClaim(ClaimSpec):
    """``beats_all_baselines``: a ``difference`` against each of ``baselines``, tested as an
    intersection-union test (module docstring). The entry gives ``baselines``, not
    ``baseline``; the spec's ``baseline`` is None (the row names the best baseline)."""

    baseline: str | None = field(default=None, init=False, compare=False)
    baselines: tuple[str, ...] = _read(_baselines)

    def check(self, path: str) -> None:
        super().check(path)
        if self.condition in self.baselines:
            raise p.fail(
                f"{path}.baselines",
                f"a list of conditions other than {self.condition!r}",
                list(self.baselines),
            )

    def compared(self) -> tuple[str, ...]:
        return self.baselines

    def comparison(self) -> str:
        return f"{self.condition} - best of ({', '.join(self.baselines)})"

    def against(self, baseline: str) -> DifferenceClaim:
        """The ``difference`` claim against one of the baselines."""
        keep = {f.name: getattr(self, f.name) for f in claim_fields(DifferenceClaim)}
        return DifferenceClaim(**{**keep, "baseline": baseline})


#: the metrics a band effect may be of: the registry's item means (their bias does not depend
#: on the condition, and their per-item values give the tests' ANOVA components)
BAND_EFFECT_METRICS = tuple(m.name for m in registry.METRICS if isinstance(m, registry.ItemMetric))


@dataclass(frozen=True)
class BandEffectClaim(ClaimSpec):
    """``band_effect``: the difference on the items of ``band``; secondary check, its excess
    over the difference on the other items (module docstring)."""

    band: str = _read(_band)
    pool_allowed = False

    def check(self, path: str) -> None:
        super().check(path)
        if self.metric not in BAND_EFFECT_METRICS:
            raise p.fail(
                f"{path}.metric",
                "an item-mean metric, one of "
                + ", ".join(repr(m) for m in BAND_EFFECT_METRICS)
                + " (a plug-in binned calibration error's bias depends on the condition's "
                "sharpness, and a band has too few items for equal-mass bins)",
                self.metric,
            )

    def comparison(self) -> str:
        c, b = self.condition, self.baseline
        return f"{c} - {b} on {self.band} band (and its excess over the other items)"

    @property
    def band_metric(self) -> str:
        return f"{self.metric}{BAND_SEPARATOR}{self.band}"

    def needed_metrics(self) -> tuple[str, ...]:
        return (self.metric, self.band_metric)


@dataclass(frozen=True)
class SpreadRatioClaim(ClaimSpec):
    """``spread_ratio``: the std over seeds of ``metric``, condition over baseline;
    ``target`` a ratio other than 1."""

    def check(self, path: str) -> None:
        super().check(path)
        if self.target == 1:
            raise p.fail(f"{path}.target", "a std ratio other than 1", self.target)

    def comparison(self) -> str:
        return f"std over seeds: {self.condition} / {self.baseline}"


#: the per-run column of an entropy_correlation claim (metrics.registry)
ENTROPY_CORRELATION_METRIC = "spearman_entropy"


@dataclass(frozen=True)
class EntropyCorrelationClaim(ClaimSpec):
    """``entropy_correlation``: the Spearman correlation of the model's predictive entropy with
    the human entropy on the test items (``metric``: ``spearman_entropy``, its per-run column),
    condition minus baseline."""

    pool_allowed = False

    def check(self, path: str) -> None:
        super().check(path)
        if self.metric != ENTROPY_CORRELATION_METRIC:
            raise p.fail(f"{path}.metric", repr(ENTROPY_CORRELATION_METRIC), self.metric)


@dataclass(frozen=True)
class CorrelationClaim(ClaimSpec):
    """``correlation``: the Spearman correlation of ``cartography_column`` with the human
    entropy over training items (``metric``: its per-run column), condition minus baseline."""

    cartography_column: str = _read(p.text)
    pool_allowed = False


@dataclass(frozen=True, eq=False)
class ClaimContext:
    """What the estimators read besides a source's bootstrap."""

    cartography: pd.DataFrame | None
    n_resamples: int
    seed: int
    confidence: float


@dataclass(frozen=True, eq=False)
class Estimate:
    """A claim's effect on one source with its test and what its interval and power come from.

    ``boot``: the effect over seed-and-item draws (its percentile interval), or ``ci`` when the
    kind computes its interval itself; ``test``: the studentised (or Pitman-Morgan) test;
    ``components``: the effect's variance components (None for a ratio of spreads, which has
    ``pairing`` instead: the correlation of the two conditions' per-seed values);
    ``n_items``: the items the effect is measured on (a band's for a band claim),
    ``n_scope_items``: all items of the scope (what a design counts), ``band_share`` their
    ratio."""

    effect: float
    n_items: int
    n_scope_items: int
    resampled: str
    test: variance.TestResult
    test_name: str
    components: variance.Components | None = None
    boot: np.ndarray | None = None
    ci: tuple[float, float] | None = None
    pairing: float = float("nan")
    #: a band effect's secondary check (its contrast with the other items), or None
    contrast: Estimate | None = None
    #: the baseline the row names, when the kind chooses it (``beats_all_baselines``: the
    #: best one); None: the spec's
    baseline: str | None = None
    #: the comparisons with the other baselines (``beats_all_baselines``), whose tests and
    #: intervals must agree too
    others: tuple[Estimate, ...] = ()
    #: the row tests the contrary of a ``beats_all_baselines`` claim (its best comparison's
    #: effect lies on the other side): the union's Bonferroni p, ``K`` times the row's own
    contrary: bool = False

    @property
    def band_share(self) -> float:
        return self.n_items / self.n_scope_items

    @property
    def p_value(self) -> float:
        """The claim's p-value: its test's, or with a secondary check the intersection-union
        test's, the larger of the two (NaN if either is)."""
        if self.contrary:
            p = self.test.p_value
            return float("nan") if np.isnan(p) else min(1.0, (1 + len(self.others)) * p)
        if self.contrast is None and not self.others:
            return self.test.p_value
        checks = [self.contrast] if self.contrast is not None else []
        every = (self.test.p_value, *(e.test.p_value for e in [*checks, *self.others]))
        return float("nan") if any(np.isnan(every)) else float(max(every))

    def secondary_intervals(self, confidence: float) -> list[tuple[float, float]]:
        """The intervals besides the row's own that must lie on the claimed side for
        ``supported``: a band effect's contrast, the other baselines' comparisons."""
        checks = [self.contrast] if self.contrast is not None else []
        return [e.interval(confidence) for e in [*checks, *self.others]]

    def interval(self, confidence: float) -> tuple[float, float]:
        """(low, high): the percentile interval of ``boot`` (or ``ci``)."""
        if self.ci is not None:
            return self.ci
        return bootstrap.percentile_interval(self.boot, confidence)


T_ANOVA = "t (Satterthwaite df), ANOVA components"
T_BOOT = "t (Satterthwaite df), bootstrap components"
T_SEEDS = "paired t over seeds (item component not estimated)"
INTERSECTION_UNION = "intersection-union: larger p of the band effect and its contrast"
INTERSECTION_UNION_BASELINES = "intersection-union: largest p over the baselines"
UNION_BASELINES = "union (worse than a baseline): K x p of the best baseline (Bonferroni)"
PITMAN_MORGAN = "Pitman-Morgan t (S - 2 df)"


def _pair(boot: SourceBootstrap, spec: ClaimSpec) -> tuple[int, int]:
    return boot.runs.index(spec.condition), boot.runs.index(spec.baseline)


def _studentised(
    effect: float,
    per_seed: np.ndarray,
    n_scope: int,
    d: np.ndarray | None,
    item_boot: np.ndarray | None,
) -> tuple[variance.TestResult, variance.Components, str]:
    """The test and components of an effect: ANOVA of per-item differences ``d`` (S, n) when
    the metric has them, else bootstrap components from the per-seed item-only resamples
    ``item_boot`` (B, S), else the seed spread alone."""
    S = len(per_seed)
    too_few = (d is not None and d.shape[1] < 2) or (
        d is None and item_boot is not None and len(item_boot) < 10
    )
    if S < 2 or too_few:
        nan = float("nan")
        comps = variance.Components(nan, nan, nan, "not estimable")
        what = f"{S} seed(s)" if S < 2 else "too few items or resamples"
        return variance.TestResult(nan, nan, nan, nan, nan), comps, f"none ({what})"
    if d is not None:
        comps, ms = variance.anova_components(d)
        return variance.t_test(effect, 0.0, S, n_scope, comps, ms), comps, T_ANOVA
    if item_boot is not None:
        comps = variance.bootstrap_components(per_seed, item_boot, n_scope)
        return variance.t_test(effect, 0.0, S, n_scope, comps), comps, T_BOOT
    comps = variance.Components(float(np.var(per_seed, ddof=1)), 0.0, 0.0, "seeds only")
    return variance.t_test(effect, 0.0, S, n_scope, comps), comps, T_SEEDS


def _per_item(boot: SourceBootstrap, metric: str, spec: ClaimSpec) -> np.ndarray | None:
    """(S, n) per-item paired differences of an item-mean metric (None for another metric)."""
    entry = registry.item_resampled(boot.n_bins).get(metric)
    if metric not in boot.item_resampled or not isinstance(entry, registry.ItemMetric):
        return None
    values = boot.prepared(metric)
    c, b = _pair(boot, spec)
    return values[c] - values[b]


def _boot_pair(boot: SourceBootstrap, spec: ClaimSpec, metric: str):
    both, fixed, how = boot.resampled_by_seed(metric)
    c, b = _pair(boot, spec)
    return both[:, c] - both[:, b], None if fixed is None else fixed[:, c] - fixed[:, b], how


def difference_estimate(spec: ClaimSpec, boot: SourceBootstrap, ctx: ClaimContext) -> Estimate:
    per_seed = boot.per_seed.get(spec.metric, [spec.baseline, spec.condition])
    per_seed = per_seed[1] - per_seed[0]
    effect = float(np.mean(per_seed))
    joint, item_boot, how = _boot_pair(boot, spec, spec.metric)
    n = len(boot.runs.item_ids)
    d = _per_item(boot, spec.metric, spec)
    test, comps, name = _studentised(effect, per_seed, n, d, item_boot)
    return Estimate(effect, n, n, how, test, name, comps, boot=joint)


def beats_all_baselines_estimate(
    spec: BeatsAllBaselinesClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    """One ``difference`` per baseline; the row's is the weakest in the claimed direction (the
    largest effect for a decrease, the smallest for an increase: the best baseline), the others
    ride along (``others``) for the intersection-union p-value and verdict. When the best
    baseline's effect lies on the other side of 0, the row tests the contrary (``contrary``:
    the union's Bonferroni p)."""
    each = {b: difference_estimate(spec.against(b), boot, ctx) for b in spec.baselines}
    sign = 1.0 if spec.direction == "decrease" else -1.0
    # the first of the baselines on a tie: a deterministic choice
    best = max(spec.baselines, key=lambda b: sign * each[b].effect)
    est = each[best]
    contrary = bool(sign * est.effect > 0)
    rule = UNION_BASELINES if contrary else INTERSECTION_UNION_BASELINES
    return Estimate(
        est.effect,
        est.n_items,
        est.n_scope_items,
        est.resampled,
        est.test,
        f"{rule}; each {est.test_name}",
        est.components,
        boot=est.boot,
        baseline=best,
        others=tuple(each[b] for b in spec.baselines if b != best),
        contrary=contrary,
    )


def _contrast_items(d: np.ndarray, in_band: np.ndarray) -> np.ndarray | None:
    """Per-item values (S, n) whose mean over items is each seed's contrast ``mean_band d_s -
    mean_rest d_s`` and whose ANOVA gives its components: the linearisation of a difference of
    two group means, ``w_i (d_si - m_g(i)) + C`` with ``w_i = n / n_band`` in the band and
    ``-n / n_rest`` outside, ``m_g`` the group's mean over seeds and items, ``C`` the grand
    contrast (uncentred, the item component would hold the spread of ``w_i m_g`` between the
    two groups, and the test would be conservative by a large factor). None when a group has
    fewer than 2 items."""
    rest = ~in_band
    n, n_band, n_rest = len(in_band), int(in_band.sum()), int(rest.sum())
    if n_band < 2 or n_rest < 2:
        return None
    m_band, m_rest = d[:, in_band].mean(), d[:, rest].mean()
    weights = np.where(in_band, n / n_band, -n / n_rest)
    centred = np.where(in_band, d - m_band, d - m_rest)
    return weights[None, :] * centred + (m_band - m_rest)


def band_effect_estimate(
    spec: BandEffectClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    per_seed = boot.per_seed.get(spec.band_metric, [spec.baseline, spec.condition])
    per_seed = per_seed[1] - per_seed[0]
    effect = float(np.mean(per_seed))
    band_joint, _, how = _boot_pair(boot, spec, spec.band_metric)
    in_band = boot.runs.band == spec.band
    rest = ~in_band
    n, n_band, n_rest = len(in_band), int(in_band.sum()), int(rest.sum())
    d = _per_item(boot, spec.metric, spec)  # (S, n): an item mean (BAND_EFFECT_METRICS)
    test, comps, name = _studentised(effect, per_seed, n_band, d[:, in_band], None)
    with np.errstate(invalid="ignore"):
        rest_seed = d[:, rest].mean(axis=1) if n_rest else np.full(len(per_seed), np.nan)
    contrast_seed = per_seed - rest_seed
    test_c, comps_c, name_c = _studentised(
        float(np.mean(contrast_seed)), contrast_seed, n, _contrast_items(d, in_band), None
    )
    rest_all = bootstrap.resample_metric(
        boot.runs,
        spec.metric,
        boot.draws,
        boot.n_bins,
        prepared=boot.prepared(spec.metric),
        keep=rest,
    )
    c, b = _pair(boot, spec)
    contrast = Estimate(
        float(np.mean(contrast_seed)),
        n,
        n,
        how,
        test_c,
        name_c,
        comps_c,
        boot=band_joint - (rest_all[:, c] - rest_all[:, b]),
    )
    return Estimate(
        effect,
        n_band,
        n,
        how,
        test,
        f"{INTERSECTION_UNION}; each {name}",
        comps,
        boot=band_joint,
        contrast=contrast,
    )


def spread_ratio_estimate(
    spec: SpreadRatioClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    per_seed = boot.per_seed.get(spec.metric, [spec.baseline, spec.condition])
    res = spread_ratio(per_seed[1], per_seed[0], ctx.n_resamples, ctx.seed, ctx.confidence)
    n = len(boot.runs.item_ids)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = float(np.corrcoef(per_seed[1], per_seed[0])[0, 1])
    return Estimate(
        effect=res["ratio"],
        n_items=n,
        n_scope_items=n,
        resampled="seeds",
        test=variance.pitman_morgan(per_seed[1], per_seed[0]),
        test_name=PITMAN_MORGAN,
        ci=(res["ratio_low"], res["ratio_high"]),
        pairing=rho,
    )


def _paired_per_seed(spec: ClaimSpec, boot: SourceBootstrap):
    """(baseline, condition), the source's runs, the per-seed differences condition -
    baseline of ``spec.metric`` and their mean (the effect)."""
    pair = [spec.baseline, spec.condition]
    per_seed = boot.per_seed.get(spec.metric, pair)
    per_seed = per_seed[1] - per_seed[0]
    return pair, boot.runs, per_seed, float(np.mean(per_seed))


def correlation_estimate(
    spec: CorrelationClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    pair, runs, per_seed, effect = _paired_per_seed(spec, boot)
    values, reference = cartography_arrays(
        ctx.cartography, boot.source, pair, spec.cartography_column, runs.seeds
    )
    rng = np.random.default_rng([ctx.seed, 7, *boot.source.encode()])
    n = values.shape[2]
    draws = bootstrap.draw(ctx.n_resamples, len(runs.seeds), n, rng)
    both, fixed = bootstrap.resample_correlation(values, reference, draws, by_seed=True)
    item_boot = fixed[:, 1] - fixed[:, 0]
    test, comps, name = _studentised(effect, per_seed, n, None, item_boot)
    return Estimate(
        effect, n, n, "seeds+training items", test, name, comps, boot=both[:, 1] - both[:, 0]
    )


def entropy_correlation_estimate(
    spec: EntropyCorrelationClaim, boot: SourceBootstrap, ctx: ClaimContext
) -> Estimate:
    pair, runs, per_seed, effect = _paired_per_seed(spec, boot)
    # the registry's spearman_entropy: Spearman of H(p) with the human entropy, per run
    values = alignment.entropy(runs.probs[[runs.index(c) for c in pair]])  # (2, S, n)
    both, fixed = bootstrap.resample_correlation(
        values, runs.human_entropy, boot.draws, by_seed=True
    )
    n = len(runs.item_ids)
    test, comps, name = _studentised(effect, per_seed, n, None, fixed[:, 1] - fixed[:, 0])
    return Estimate(
        effect, n, n, "seeds+test items", test, name, comps, boot=both[:, 1] - both[:, 0]
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


@dataclass(frozen=True)
class ClaimKind:
    """One kind of claim: its spec class, its estimator, its power rows
    (``power(estimate, n_seeds, alpha_per_test, settings, target)`` -> the design columns of
    :mod:`.power`) and the effect's null value (of the verdict and the test)."""

    spec: type[ClaimSpec]
    estimate: Callable[[Any, SourceBootstrap, ClaimContext], Estimate]
    power: Callable[..., list[dict[str, Any]]]
    null: float = 0.0


CLAIM_KINDS: dict[str, ClaimKind] = {
    "difference": ClaimKind(DifferenceClaim, difference_estimate, component_designs),
    "band_effect": ClaimKind(BandEffectClaim, band_effect_estimate, band_designs),
    "spread_ratio": ClaimKind(
        SpreadRatioClaim, spread_ratio_estimate, spread_ratio_designs, null=1.0
    ),
    "entropy_correlation": ClaimKind(
        EntropyCorrelationClaim, entropy_correlation_estimate, component_designs
    ),
    "correlation": ClaimKind(CorrelationClaim, correlation_estimate, component_designs),
    "beats_all_baselines": ClaimKind(
        BeatsAllBaselinesClaim, beats_all_baselines_estimate, component_designs
    ),
}
KIND_NAMES: dict[type[ClaimSpec], str] = {k.spec: name for name, k in CLAIM_KINDS.items()}


def read_claim(entry: Any, path: str) -> ClaimSpec:
    """The spec of one ``reporting.claims`` entry, of the class its ``kind`` registers.

    >>> read_claim({"id": "d", "statement": "steadier", "kind": "spread_ratio",
    ...     "metric": "accuracy", "condition": "human_soft", "baseline": "original_hard",
    ...     "direction": "decrease", "scope": "test", "target": 0.8},
    ...     "reporting.claims[0]").comparison()
    'std over seeds: human_soft / original_hard'
    >>> read_claim({"kind": "ratio"}, "reporting.claims[0]")
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: reporting.claims[0].kind must be one of 'difference', ..., got 'ratio'
    """
    entry = p.block(path, entry)
    kind = p.choice(f"{path}.kind", p.required(path, entry, "kind"), CLAIM_KINDS)
    return CLAIM_KINDS[kind].spec.from_params(entry, path)
