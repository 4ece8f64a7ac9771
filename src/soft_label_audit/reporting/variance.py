"""Variance components of a claim's effect, its studentised test and the power of that test.

The study is a crossed design: every seed s = 1..S of a condition predicts the same items
i = 1..n. A claim's effect is modelled as the mean of paired differences

    d_si = theta + a_s + b_i + e_si,   Var a = var_seed, Var b = var_item, Var e = var_residual

(seed, item and seed x item components; "item" means the claim's scope: annotated test items,
all of them for a band claim, or the unannotated pool). The effect's variance for a design of
S seeds and n items is

    Var(theta_hat; S, n) = var_seed / S + var_item / n + var_residual / (S n).

How the components are estimated (:class:`Components`, field ``method``):

* ``anova`` (:func:`anova_components`), for a metric that is a mean over items (accuracy, NLL,
  Brier, ...; a band contrast of one through per-item weights): two-way ANOVA without
  replication of the per-seed per-item differences ``d_si``, with
  ``MS_seed = n sum_s (d_s. - d..)^2 / (S-1)``, ``MS_item = S sum_i (d_.i - d..)^2 / (n-1)``,
  ``MS_res = sum (d_si - d_s. - d_.i + d..)^2 / ((S-1)(n-1))`` and the random-effects
  expectations ``E MS_seed = var_res + n var_seed``, ``E MS_item = var_res + S var_item``,
  ``E MS_res = var_res``. Negative estimates are set to 0. Analytic: no Monte Carlo error.
* ``bootstrap`` (:func:`bootstrap_components`), for a binned or rank metric (ECE, a Spearman
  correlation), which has no per-item value: from the observed per-seed effects (their
  variance over seeds ``V ~ var_seed + var_res / n``) and from the item-only bootstrap (seeds
  held fixed) of each seed's effect, whose variance averaged over seeds is
  ``A ~ (var_item + var_res) / n`` and whose seed-mean has variance
  ``M ~ (var_item + var_res / S) / n``. Solved: ``var_res = n S (A - M) / (S - 1)``,
  ``var_item = n M - var_res / S``, ``var_seed = V - var_res / n`` (each at least 0). This is
  the linearisation of the metric around the observed items; its Monte Carlo error is
  estimated from batches of the bootstrap draws (:func:`bootstrap_components`).

The test (:func:`t_test`): ``t = (effect - null) / SE`` with ``SE^2 = Var(theta_hat; S, n)``
from the components, referred to Student's t with Satterthwaite's degrees of freedom
(:func:`satterthwaite`): ``SE^2 = sum_k c_k MS_k / (S n)`` over the mean squares (or their
equivalents ``var_res + n var_seed``, ``var_res + S var_item``, ``var_res`` for bootstrap
components) with ``c = (1, 1, -1)`` (a component estimated as 0 drops its mean square and the
residual's coefficient rises by one), and ``df = (sum_k c_k MS_k)^2 / sum_k (c_k MS_k)^2 / df_k``
with ``df = (S-1, n-1, (S-1)(n-1))``. Two-sided ``p = 2 P(T_df > |t|)``: no resampling floor.

Power (:func:`power`) uses the same reference distribution: at a design (S', n') the expected
mean squares give SE' and df' by the same two functions, and the power against an effect
``target`` is ``P(|T| > t_{1-alpha/2, df'})`` with ``T`` noncentral t (df', ``target / SE'``).
:func:`items_for_power` solves the fewest items that reach a power for a number of seeds.

Monte Carlo error of a p-value: 0 for ``anova`` components; for ``bootstrap`` components
the delta method: the p-value as a function of the two bootstrap variances ``(A, M)`` (through
SE and the Satterthwaite df, differentiated numerically), ``mcse(p) = sqrt(g' C g)`` with ``C``
their Monte Carlo covariance from batches of the resamples (:func:`bootstrap_components`).

Paired spreads (a ratio of seed standard deviations) have their own test,
:func:`pitman_morgan`, with its power in :func:`spread_ratio_power`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

#: the largest number of items :func:`items_for_power` considers (beyond: unreachable)
MAX_ITEMS = 10_000_000


@dataclass(frozen=True)
class Components:
    """Variance components of an effect (seed, item, seed x item) and how they were estimated;
    ``mcse_var`` is the Monte Carlo standard error of ``variance(S, n)`` at the study's design
    (0 for analytic components); ``bootstrap``: for bootstrap components, what they were solved
    from, ``(V, A, M, S, n)``, and the Monte Carlo covariance of ``(A, M)`` (2 x 2)."""

    var_seed: float
    var_item: float
    var_residual: float
    method: str
    mcse_var: float = 0.0
    bootstrap: tuple | None = None

    def mean_squares(self, n_seeds, n_items) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Expected (MS_seed, MS_item, MS_res) at a design of ``n_seeds`` x ``n_items``."""
        S, n = np.asarray(n_seeds, dtype=np.float64), np.asarray(n_items, dtype=np.float64)
        r = self.var_residual
        return r + n * self.var_seed, r + S * self.var_item, r + 0 * (S + n)

    def variance(self, n_seeds, n_items) -> np.ndarray:
        """``Var(theta_hat; S, n) = var_seed / S + var_item / n + var_residual / (S n)``."""
        S, n = np.asarray(n_seeds, dtype=np.float64), np.asarray(n_items, dtype=np.float64)
        return self.var_seed / S + self.var_item / n + self.var_residual / (S * n)


def satterthwaite(ms_seed, ms_item, ms_res, n_seeds, n_items) -> tuple[np.ndarray, np.ndarray]:
    """(SE^2 of the grand mean, Satterthwaite df) from the three mean squares of an S x n
    crossed design (module docstring); arrays broadcast."""
    S, n = np.asarray(n_seeds, dtype=np.float64), np.asarray(n_items, dtype=np.float64)
    ms = [np.asarray(m, dtype=np.float64) for m in (ms_seed, ms_item, ms_res)]
    c_seed = (ms[0] > ms[2]).astype(np.float64)
    c_item = (ms[1] > ms[2]).astype(np.float64)
    coef = (c_seed, c_item, 1.0 - c_seed - c_item)
    dfs = (S - 1, n - 1, (S - 1) * (n - 1))
    terms = [c * m for c, m in zip(coef, ms)]
    total = terms[0] + terms[1] + terms[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        df = total**2 / sum(t**2 / d for t, d in zip(terms, dfs))
    return total / (S * n), df


def anova_components(d: np.ndarray) -> tuple[Components, tuple[float, float, float]]:
    """Components and mean squares (MS_seed, MS_item, MS_res) of per-seed per-item paired
    differences ``d`` (S, n), two-way ANOVA without replication.

    >>> d = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])  # seed effect 1, no interaction
    >>> c, ms = anova_components(d)
    >>> [round(float(v), 6) for v in ms], round(c.var_seed, 6), round(c.var_residual, 6)
    ([1.5, 2.0, 0.0], 0.5, 0.0)
    """
    d = np.asarray(d, dtype=np.float64)
    S, n = d.shape
    if S < 2 or n < 2:
        raise ValueError(f"variance components need at least 2 seeds and 2 items, got {S} x {n}")
    grand = d.mean()
    seed_means, item_means = d.mean(axis=1), d.mean(axis=0)
    ms_seed = n * np.sum((seed_means - grand) ** 2) / (S - 1)
    ms_item = S * np.sum((item_means - grand) ** 2) / (n - 1)
    resid = d - seed_means[:, None] - item_means[None, :] + grand
    ms_res = np.sum(resid**2) / ((S - 1) * (n - 1))
    comps = Components(
        var_seed=float(max(ms_seed - ms_res, 0.0) / n),
        var_item=float(max(ms_item - ms_res, 0.0) / S),
        var_residual=float(ms_res),
        method="anova",
    )
    return comps, (float(ms_seed), float(ms_item), float(ms_res))


def _bootstrap_moments(per_seed: np.ndarray, item_boot: np.ndarray) -> tuple[float, float, float]:
    """(V, A, M): the variance over seeds of the per-seed effects, the item-only bootstrap
    variance of each seed's effect averaged over seeds, that of their seed mean."""
    V = float(np.var(per_seed, ddof=1))
    A = float(np.mean(np.var(item_boot, axis=0, ddof=1)))
    M = float(np.var(item_boot.mean(axis=1), ddof=1))
    return V, A, M


def _solve(V: float, A: float, M: float, S: int, n: int) -> Components:
    """Components from (V, A, M) (module docstring), each truncated at 0."""
    var_res = n * S * (A - M) / (S - 1)
    raw = (V - var_res / n, n * M - var_res / S, var_res)
    v_seed, v_item, v_res = (float(max(v, 0.0)) for v in raw)
    return Components(v_seed, v_item, v_res, "bootstrap")


def bootstrap_components(
    per_seed: np.ndarray, item_boot: np.ndarray, n_items: int, n_batches: int = 20
) -> Components:
    """Components from the observed per-seed effects (S,) and their item-only bootstrap (B, S)
    (the same item draw for every seed in a row). Their Monte Carlo error comes from
    ``n_batches`` batches of the resamples (fewer when B < 5 n_batches): the covariance of the
    batch estimates of ``(A, M)`` over ``n_batches`` (each batch has ``1/n_batches`` of the
    draws, so its estimates vary ``n_batches`` times as much as the full ones; ``V`` has no
    Monte Carlo error). :func:`t_test` carries it to the p-value."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    boot = np.asarray(item_boot, dtype=np.float64)
    boot = boot[np.all(np.isfinite(boot), axis=1)]
    S, n = len(per_seed), int(n_items)
    n_batches = min(n_batches, len(boot) // 5)  # batches of at least 5 resamples
    if S < 2 or n_batches < 2:
        raise ValueError(
            f"bootstrap components need at least 2 seeds and 10 finite resamples, "
            f"got {S} and {len(boot)}"
        )
    V, A, M = _bootstrap_moments(per_seed, boot)
    batches = np.array(
        [_bootstrap_moments(per_seed, b)[1:] for b in np.array_split(boot, n_batches)]
    )
    cov = np.cov(batches.T, ddof=1) / n_batches  # (A, M)
    # Var(theta_hat) = V / S + (S M - A) / (S - 1) before truncation: linear in (A, M)
    grad = np.array([-1.0, S]) / (S - 1)
    mcse = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    comps = _solve(V, A, M, S, n)
    return Components(
        comps.var_seed,
        comps.var_item,
        comps.var_residual,
        "bootstrap",
        mcse,
        bootstrap=(V, A, M, S, n, cov),
    )


@dataclass(frozen=True)
class TestResult:
    """A studentised test: statistic, degrees of freedom, SE, two-sided p and its MC error."""

    statistic: float
    df: float
    se: float
    p_value: float
    p_mc_se: float


def t_test(
    effect: float,
    null: float,
    n_seeds: int,
    n_items: int,
    components: Components,
    mean_squares: tuple[float, float, float] | None = None,
) -> TestResult:
    """Two-sided studentised test of ``effect = null`` (module docstring). ``mean_squares``:
    the observed ones (ANOVA); otherwise the components' expected mean squares at the study's
    design."""
    ms = mean_squares or components.mean_squares(n_seeds, n_items)
    var, df = satterthwaite(*ms, n_seeds, n_items)
    var, df = float(var), float(df)
    se = float(np.sqrt(var)) if var > 0 else 0.0
    diff = effect - null
    if not np.isfinite(diff) or not np.isfinite(df) or se == 0:
        p = 1.0 if diff == 0 else float("nan")
        return TestResult(float("nan"), df, se, p, float("nan") if np.isnan(p) else 0.0)
    t = diff / se
    p = float(min(1.0, 2 * stats.t.sf(abs(t), df)))
    return TestResult(float(t), df, se, p, _p_mc_se(diff, components))


def _p_of(diff: float, components: Components) -> float:
    var, df = satterthwaite(
        *components.mean_squares(*components.bootstrap[3:5]), *components.bootstrap[3:5]
    )
    return float(2 * stats.t.sf(abs(diff) / np.sqrt(var), df)) if var > 0 else float("nan")


def _p_mc_se(diff: float, components: Components) -> float:
    """Monte Carlo standard error of the p-value: 0 for analytic components; for bootstrap
    ones the delta method over the bootstrap variances ``(A, M)`` (through the SE and the
    Satterthwaite df, by central differences), ``sqrt(g' Cov(A, M) g)``."""
    if components.bootstrap is None:
        return 0.0
    V, A, M, S, n, cov = components.bootstrap
    grad = []
    for k in range(2):
        h = 1e-4 * max((A, M)[k], 1e-300)
        up, down = [A, M], [A, M]
        up[k] += h
        down[k] -= h
        grad.append(
            (_p_of(diff, _with(V, *up, S, n)) - _p_of(diff, _with(V, *down, S, n))) / (2 * h)
        )
    g = np.array(grad)
    return float(np.sqrt(max(g @ cov @ g, 0.0))) if np.all(np.isfinite(g)) else float("nan")


def _with(V: float, A: float, M: float, S: int, n: int) -> Components:
    c = _solve(V, A, M, S, n)
    return Components(
        c.var_seed, c.var_item, c.var_residual, "bootstrap", bootstrap=(V, A, M, S, n, None)
    )


def power(target: float, components: Components, n_seeds, n_items, alpha: float) -> np.ndarray:
    """Power of the two-sided test at ``alpha`` against an effect of size ``target`` at a
    design of ``n_seeds`` x ``n_items`` (arrays broadcast): noncentral t with the
    Satterthwaite df of the expected mean squares."""
    var, df = satterthwaite(*components.mean_squares(n_seeds, n_items), n_seeds, n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = abs(target) / np.sqrt(var)
        crit = stats.t.ppf(1 - alpha / 2, df)
        upper = stats.nct.sf(crit, df, delta)
        # scipy's nct gives NaN far in a tail, where that tail is 0 (or 1) to double precision
        lower = np.nan_to_num(stats.nct.cdf(-crit, df, delta), nan=0.0)
        upper = np.where(np.isnan(upper) & (delta > crit + 8), 1.0, upper)
        out = upper + lower
    return np.where(var > 0, out, np.where(target != 0, 1.0, alpha))


def items_for_power(
    target: float,
    components: Components,
    n_seeds: int,
    alpha: float,
    wanted: float,
    max_items: int = MAX_ITEMS,
) -> float:
    """Fewest items (>= 2) with ``power >= wanted`` at ``n_seeds`` seeds; NaN when even
    ``max_items`` items do not reach it (the seed component alone is too large)."""
    if power(target, components, n_seeds, max_items, alpha) < wanted:
        return float("nan")
    lo, hi = 1, max_items  # power(lo) < wanted <= power(hi)
    if power(target, components, n_seeds, 2, alpha) >= wanted:
        return 2.0
    lo = 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power(target, components, n_seeds, mid, alpha) >= wanted:
            hi = mid
        else:
            lo = mid
    return float(hi)


def detectable_effect(
    components: Components, n_seeds: int, n_items: int, alpha: float, wanted: float
) -> float:
    """Smallest effect detected with power ``wanted`` at the design (same test)."""
    var = float(components.variance(n_seeds, n_items))
    if not (np.isfinite(var) and var > 0):
        return float("nan")
    se = np.sqrt(var)

    def gap(x: float) -> float:
        return float(power(x * se, components, n_seeds, n_items, alpha)) - wanted

    # with few degrees of freedom the critical t can be in the hundreds: widen the bracket
    high = 40.0
    while gap(high) < 0:
        if high > 1e6:
            return float("nan")
        high *= 10
    return float(optimize.brentq(gap, 0.0, high) * se)


# --- paired spreads ------------------------------------------------------------------------


def pitman_morgan(condition: np.ndarray, baseline: np.ndarray) -> TestResult:
    """Pitman-Morgan test of equal variances of paired values (one per seed): with
    ``U = x + y``, ``V = x - y``, ``Var x = Var y`` iff ``corr(U, V) = 0``; the statistic
    ``t = r sqrt(S - 2) / sqrt(1 - r^2)`` of ``r = corr(U, V)`` is Student's t with S - 2 df
    under the null (exact for bivariate normal values; needs S >= 3). Analytic: no Monte Carlo
    error. Its power (:func:`spread_ratio_power`) comes from the exact distribution of ``r``."""
    x, y = np.asarray(condition, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    S = len(x)
    nan = float("nan")
    if S < 3 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return TestResult(nan, nan, nan, nan, nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = float(np.corrcoef(x + y, x - y)[0, 1])
    if not np.isfinite(r):
        return TestResult(nan, float(S - 2), nan, nan, nan)
    r = float(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    t = r * np.sqrt(S - 2) / np.sqrt(1 - r**2)
    return TestResult(float(t), float(S - 2), nan, float(2 * stats.t.sf(abs(t), S - 2)), 0.0)


def correlation_density(r, rho: float, n: int):
    """Density of the sample correlation of ``n`` bivariate normal pairs with correlation
    ``rho`` (Hotelling 1953): ``(n-2) G(n-1) (1-rho^2)^((n-1)/2) (1-r^2)^((n-4)/2) /
    (sqrt(2 pi) G(n-1/2) (1-rho r)^(n-3/2)) 2F1(1/2, 1/2; n-1/2; (1+rho r)/2)``."""
    r = np.asarray(r, dtype=np.float64)
    log_g = special.gammaln(n - 1) - special.gammaln(n - 0.5)
    return (
        (n - 2)
        * np.exp(log_g)
        * (1 - rho**2) ** ((n - 1) / 2)
        * (1 - r**2) ** ((n - 4) / 2)
        / (np.sqrt(2 * np.pi) * (1 - rho * r) ** (n - 1.5))
        * special.hyp2f1(0.5, 0.5, n - 0.5, (1 + rho * r) / 2)
    )


def ratio_correlation(ratio: float, rho: float) -> float:
    """``corr(U, V)`` of paired values with std ratio ``ratio`` (x over y) and correlation
    ``rho``: ``(R^2 - 1) / sqrt((R^2 + 1)^2 - 4 rho^2 R^2)``."""
    r2 = ratio**2
    return float((r2 - 1) / np.sqrt((r2 + 1) ** 2 - 4 * rho**2 * r2))


def spread_ratio_power(target_ratio: float, rho: float, n_seeds, alpha: float) -> np.ndarray:
    """Power of :func:`pitman_morgan` at ``alpha`` against a std ratio ``target_ratio`` with
    pairing correlation ``rho`` from ``n_seeds`` seeds (array; NaN below 3): ``P(|r| > r_c)``
    under the exact distribution of ``r`` at ``corr(U, V)`` of :func:`ratio_correlation`,
    ``r_c`` the t critical value with S - 2 df turned into a correlation."""
    seeds = np.atleast_1d(np.asarray(n_seeds))
    if not (np.isfinite(rho) and np.isfinite(target_ratio)):
        out = np.full(seeds.shape, np.nan)
        return out if np.ndim(n_seeds) else float(out[0])
    rho_uv = ratio_correlation(target_ratio, float(np.clip(rho, -0.999999, 0.999999)))
    rho_uv = float(np.clip(rho_uv, -1 + 1e-9, 1 - 1e-9))
    out = np.full(seeds.shape, np.nan)
    for k, S in enumerate(seeds):
        if S < 3:
            continue
        t_c = stats.t.ppf(1 - alpha / 2, S - 2)
        r_c = t_c / np.sqrt(S - 2 + t_c**2)
        # 1 - the acceptance region: the density may be singular at +-1, never inside
        inside = integrate.quad(correlation_density, -r_c, r_c, args=(rho_uv, int(S)), limit=200)
        out[k] = float(np.clip(1.0 - inside[0], 0.0, 1.0))
    return out if np.ndim(n_seeds) else float(out[0])


def detectable_spread_ratio(rho: float, n_seeds: int, alpha: float, wanted: float) -> float:
    """Largest std ratio below 1 that :func:`pitman_morgan` detects with power ``wanted``."""
    if n_seeds < 3 or not np.isfinite(rho):
        return float("nan")

    def gap(r: float) -> float:
        return float(spread_ratio_power(r, rho, n_seeds, alpha)) - wanted

    if not gap(1e-6) > 0 or not gap(1 - 1e-6) < 0:
        return float("nan")
    return float(optimize.brentq(gap, 1e-6, 1 - 1e-6, xtol=1e-6))
