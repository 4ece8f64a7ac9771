"""Variance components, the studentised test and its power, checked against simulations of
paired differences with known components: ``d_si = theta + a_s + b_i + e_si``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from soft_label_audit.reporting import variance

#: a design where the seed component matters (few seeds: the bootstrap's weak spot)
S, N = 6, 150
TRUE = variance.Components(var_seed=4e-4, var_item=1e-2, var_residual=5e-2, method="true")
REPLICATES = 2000


def _simulate(rng, theta, comps, replicates, S=S, n=N):
    a = rng.normal(0, np.sqrt(comps.var_seed), (replicates, S, 1))
    b = rng.normal(0, np.sqrt(comps.var_item), (replicates, 1, n))
    e = rng.normal(0, np.sqrt(comps.var_residual), (replicates, S, n))
    return theta + a + b + e


def _rejections(d, alpha):
    out = []
    for x in d:
        comps, ms = variance.anova_components(x)
        out.append(variance.t_test(x.mean(), 0.0, *x.shape, comps, ms).p_value < alpha)
    return np.array(out)


def _mc_tolerance(p, replicates, k=4.0):
    return k * np.sqrt(p * (1 - p) / replicates)


def test_anova_components_are_unbiased_on_simulated_designs():
    d = _simulate(np.random.default_rng(0), 0.0, TRUE, 400)
    est = np.array(
        [
            [c.var_seed, c.var_item, c.var_residual]
            for c in (variance.anova_components(x)[0] for x in d)
        ]
    )
    truth = np.array([TRUE.var_seed, TRUE.var_item, TRUE.var_residual])
    se = est.std(axis=0) / np.sqrt(len(est))
    # truncation at 0 biases var_seed up a little; the others are the plain ANOVA estimators
    assert np.all(np.abs(est.mean(axis=0) - truth) < 4 * se + 0.1 * truth), (est.mean(0), truth)


def test_size_of_the_test_is_alpha_under_the_null():
    alpha = 0.05
    d = _simulate(np.random.default_rng(1), 0.0, TRUE, REPLICATES)
    size = _rejections(d, alpha).mean()
    assert abs(size - alpha) < _mc_tolerance(alpha, REPLICATES), size


def test_power_formula_matches_the_simulated_power_at_a_design():
    alpha = 0.05 / 9  # the Holm level of a family of nine
    theta = variance.detectable_effect(TRUE, S, N, alpha, 0.8)
    predicted = float(variance.power(theta, TRUE, S, N, alpha))
    assert predicted == pytest.approx(0.8, abs=1e-6)
    d = _simulate(np.random.default_rng(2), theta, TRUE, REPLICATES)
    empirical = _rejections(d, alpha).mean()
    assert abs(empirical - predicted) < _mc_tolerance(predicted, REPLICATES), empirical
    # and at a weaker effect, lower power
    half = float(variance.power(theta / 2, TRUE, S, N, alpha))
    empirical_half = _rejections(d - theta / 2, alpha).mean()
    assert half < 0.5 and abs(empirical_half - half) < _mc_tolerance(half, REPLICATES)


def test_a_seed_only_design_recovers_the_paired_t_test():
    # no item variation at all: the test is the paired t-test over seeds (S - 1 df)
    rng = np.random.default_rng(3)
    per_seed = rng.normal(0.01, 0.02, S)
    d = per_seed[:, None] + np.zeros((S, 40))
    comps, ms = variance.anova_components(d)
    res = variance.t_test(d.mean(), 0.0, S, 40, comps, ms)
    ref = stats.ttest_1samp(per_seed, 0.0)
    assert res.df == pytest.approx(S - 1)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9) and res.p_mc_se == 0.0


def test_p_values_have_no_resampling_floor():
    d = _simulate(np.random.default_rng(4), 0.2, TRUE, 1)[0]
    comps, ms = variance.anova_components(d)
    p = variance.t_test(d.mean(), 0.0, S, N, comps, ms).p_value
    assert 0 < p < 1e-4  # far below 1 / 2000, the floor of a 2,000-resample bootstrap


def test_items_for_power_is_the_fewest_items_that_reach_the_power():
    alpha = 0.05 / 9
    for seeds in (10, 20, 40):
        n = variance.items_for_power(0.03, TRUE, seeds, alpha, 0.8)
        assert np.isfinite(n)
        assert variance.power(0.03, TRUE, seeds, n, alpha) >= 0.8
        assert variance.power(0.03, TRUE, seeds, n - 1, alpha) < 0.8
    # the seed component alone keeps 6 seeds from a target of 0.03: unreachable
    assert np.isnan(variance.items_for_power(0.03, TRUE, 6, alpha, 0.8))


def test_bootstrap_components_recover_the_anova_ones_for_a_mean():
    """The bootstrap route, on a metric that is a mean (where ANOVA is exact), agrees with it
    up to its Monte Carlo error, and reports that error."""
    rng = np.random.default_rng(5)
    d = _simulate(rng, 0.0, TRUE, 1, S=6, n=400)[0]
    anova, _ = variance.anova_components(d)
    counts = rng.multinomial(400, np.full(400, 1 / 400), size=4000).astype(float)
    item_boot = (counts @ d.T) / 400  # (B, S): each seed's mean over the drawn items
    boot = variance.bootstrap_components(d.mean(axis=1), item_boot, 400)
    assert boot.method == "bootstrap" and boot.mcse_var > 0
    v_anova, v_boot = anova.variance(6, 400), boot.variance(6, 400)
    assert abs(v_boot - v_anova) < 5 * boot.mcse_var + 0.05 * v_anova
    res = variance.t_test(0.01, 0.0, 6, 400, boot)
    assert res.p_mc_se > 0 and np.isfinite(res.p_value)


def test_pitman_morgan_size_and_power_formula():
    rng = np.random.default_rng(6)
    seeds, rho, alpha, reps = 8, 0.6, 0.05, 4000

    def pairs(ratio):
        x = rng.standard_normal((reps, seeds))
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((reps, seeds))
        return ratio * y, x  # condition, baseline: std ratio `ratio`, correlation rho

    for ratio in (1.0, 0.35):
        cond, base = pairs(ratio)
        rejected = np.mean(
            [variance.pitman_morgan(c, b).p_value < alpha for c, b in zip(cond, base)]
        )
        expected = alpha if ratio == 1 else variance.spread_ratio_power(ratio, rho, seeds, alpha)
        assert abs(rejected - expected) < _mc_tolerance(expected, reps), (ratio, rejected)
    assert variance.spread_ratio_power(1.0 - 1e-9, rho, seeds, alpha) == pytest.approx(alpha)


def test_the_monte_carlo_error_of_a_p_value_matches_its_spread_over_bootstrap_seeds():
    """The delta-method ``p_mc_se`` of bootstrap components is the spread that p-values show
    when only the bootstrap's seed changes (within a factor of 1.6)."""
    rng = np.random.default_rng(7)
    d = _simulate(rng, 0.0, TRUE, 1, S=6, n=300)[0]
    comps, ms = variance.anova_components(d)
    d = d - d.mean() + 3 * variance.t_test(1.0, 0.0, 6, 300, comps, ms).se  # p of a few %
    effect, per_seed = d.mean(), d.mean(axis=1)
    p_values, reported = [], []
    for seed in range(40):
        draw = np.random.default_rng(100 + seed)
        counts = draw.multinomial(300, np.full(300, 1 / 300), size=500).astype(float)
        comps = variance.bootstrap_components(per_seed, (counts @ d.T) / 300, 300)
        res = variance.t_test(effect, 0.0, 6, 300, comps)
        p_values.append(res.p_value)
        reported.append(res.p_mc_se)
    spread = np.std(p_values, ddof=1)
    assert 1e-3 < np.median(p_values) < 0.2
    assert spread / 1.6 < np.median(reported) < 1.6 * spread, (spread, np.median(reported))


def test_an_ece_difference_with_bootstrap_components_is_not_liberal_under_the_null():
    """The whole route of a binned metric (per-seed ECE, item-only bootstrap of each seed,
    bootstrap components, Satterthwaite t) on simulated runs of two exchangeable conditions
    with shared item difficulty and seed temperature: it rejects no more than alpha (ECE's
    absolute values make it conservative: about 0.02 at 0.05 here)."""
    from soft_label_audit.reporting import bootstrap
    from soft_label_audit.reporting.claim_kinds import DifferenceClaim, difference_estimate
    from soft_label_audit.reporting.statistics import SourceBootstrap

    rng = np.random.default_rng(0)
    seeds, n, K, reps = 6, 200, 10, 300
    spec = DifferenceClaim(
        id="null",
        statement="",
        metric="ece_15",
        condition="human_soft",
        baseline="original_hard",
        direction="increase",
        scope="pool",
        target=0.01,
    )
    p_values = []
    for r in range(reps):
        labels = rng.integers(0, K, n)
        hard = rng.normal(0, 1, n)  # item difficulty, shared by every run
        temperature = np.exp(rng.normal(0, 0.3, seeds))  # seed effect, shared by conditions
        logits = rng.normal(0, 1, (2, seeds, n, K))
        logits[..., np.arange(n), labels] += 2.0 + hard + rng.normal(0, 0.5, (2, seeds, n))
        logits *= temperature[None, :, None, None]
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        runs = bootstrap.pool_runs(
            ("original_hard", "human_soft"), np.arange(seeds), np.arange(n), probs, labels
        )
        est = difference_estimate(spec, SourceBootstrap(runs, None, "mnist", 15, 200, r), None)
        assert est.test_name.endswith("bootstrap components")
        p_values.append(est.test.p_value)
    p_values = np.array(p_values)
    for alpha in (0.05, 0.2):
        size = np.mean(p_values < alpha)
        assert size <= alpha + _mc_tolerance(alpha, reps, 3), (alpha, size)
    assert np.mean(p_values < 0.2) > 0.05  # and not degenerate


def test_detectable_effect_with_one_degree_of_freedom():
    # 2 seeds, no item component: t with 1 df at alpha / 9 has a critical value near 115
    comps = variance.Components(1e-3, 0.0, 0.0, "seeds only")
    alpha = 0.05 / 9
    effect = variance.detectable_effect(comps, 2, 100, alpha, 0.8)
    assert effect / np.sqrt(comps.variance(2, 100)) > 40
    assert variance.power(effect, comps, 2, 100, alpha) == pytest.approx(0.8, abs=1e-6)
