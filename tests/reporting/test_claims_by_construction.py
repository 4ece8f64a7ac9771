"""Claims (c), (e) and (f) cannot be supported by their construction (issue 22; claim (f):
equal-strength regularisers).

(c) Calibration worsens overall and not at all on the hard items: the previous definition, the
high band's difference minus the difference on all items, is "supported" by the worsening
elsewhere; the band's own effect is not. (e) Each model copies its own targets' entropy into
its training dynamics: the previous cartography claim is "supported" because human_soft's
targets are the human labels; on test items, whose human labels no model saw, it is not.
(f) Against one regulariser the verdict depends on which strength it was matched at: a
condition that beats a weak regulariser and ties the best one is "supported" by the one-baseline
difference against the weak one; the claim against the best of several is not.
Each case has a positive control, so the new definitions are shown to find a real effect.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.metrics import registry
from soft_label_audit.metrics.alignment import entropy, spearman
from soft_label_audit.reporting import bootstrap, claims, variance
from soft_label_audit.reporting.claims import evaluate_claims
from soft_label_audit.reporting.config import REPORTING_EXAMPLE, ReportingConfig
from soft_label_audit.reporting.statistics import SourceBootstrap

SEEDS = np.arange(4)
K = 10
COMMON = {"scope": "test", "statement": "a claim", "target": 0.02}


def _probs(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(1 - a) one-hot(label) + a uniform`` (Brier ``0.9 a^2``; entropy increasing in a)."""
    return (1 - a)[..., None] * np.eye(K)[labels] + a[..., None] / K


def _runs(conditions, probs, labels, human_entropy, band) -> bootstrap.SourceRuns:
    n = len(labels)
    return bootstrap.SourceRuns(
        conditions=tuple(conditions),
        seeds=SEEDS,
        item_ids=np.arange(n),
        probs=probs,
        original=labels,
        mode=labels,
        human=np.eye(K)[labels],
        band=band,
        human_entropy=human_entropy,
    )


def _metrics_by_run(runs: bootstrap.SourceRuns, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (condition, seed) with each column's (C, S) values."""
    rows = [
        {"source": "mnist", "condition": c, "seed": int(s)}
        | {name: float(v[ci, si]) for name, v in columns.items()}
        for ci, c in enumerate(runs.conditions)
        for si, s in enumerate(runs.seeds)
    ]
    return pd.DataFrame(rows)


def _config(*entries) -> ReportingConfig:
    return ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": list(entries)})


# --- claim (c) ------------------------------------------------------------------------------


def _band_study(high_gain: bool, rng_seed: int = 3) -> SourceBootstrap:
    """400 test items, 40 of them in the high band; human_soft is worse than original_hard on
    the other 360 (``high_gain`` False) or better on the band alone (True)."""
    rng = np.random.default_rng(rng_seed)
    n, n_high = 400, 40
    band = np.array(["high"] * n_high + ["low"] * 160 + ["unanimous"] * 200, dtype=object)
    high = band == "high"
    labels = rng.integers(0, K, n)
    hard = np.where(
        high, rng.uniform(0.3, 0.6, (len(SEEDS), n)), rng.uniform(0.05, 0.15, (len(SEEDS), n))
    )
    if high_gain:  # better on the band, the same elsewhere
        soft = np.where(
            high, rng.uniform(0.1, 0.2, hard.shape), rng.uniform(0.05, 0.15, hard.shape)
        )
    else:  # the same on the band, worse elsewhere
        soft = np.where(
            high, rng.uniform(0.3, 0.6, hard.shape), rng.uniform(0.35, 0.45, hard.shape)
        )
    probs = _probs(np.stack([hard, soft]), np.broadcast_to(labels, hard.shape))
    runs = _runs(("original_hard", "human_soft"), probs, labels, high.astype(float), band)
    per_item = {m.name: m for m in registry.METRICS if isinstance(m, registry.ItemMetric)}
    brier = per_item["brier"].per_item(probs, runs.items)  # (C, S, n)
    columns = {"brier": brier.mean(axis=-1)}
    for b in ("high", "low", "unanimous"):
        columns[f"brier__band_{b}"] = brier[..., band == b].mean(axis=-1)
    return SourceBootstrap(runs, _metrics_by_run(runs, columns), "mnist", 15, 1000, 0)


def _previous_band_contrast(boot: SourceBootstrap, alpha: float) -> tuple[float, str]:
    """The removed ``band_contrast`` kind on Brier: ``[Δ high band] - [Δ all items]``, its
    ANOVA t-test of weighted per-item differences and its seed-and-item percentile interval,
    with the verdict rule of the claims table (effect, verdict)."""
    c, b = boot.runs.index("human_soft"), boot.runs.index("original_hard")
    d = boot.prepared("brier")[c] - boot.prepared("brier")[b]
    in_band = boot.runs.band == "high"
    n, n_band = len(in_band), int(in_band.sum())
    per_seed = d[:, in_band].mean(axis=1) - d.mean(axis=1)
    comps, ms = variance.anova_components(d * (n * in_band / n_band - 1.0)[None, :])
    test = variance.t_test(float(per_seed.mean()), 0.0, len(per_seed), n, comps, ms)
    band_all, _ = boot.resampled("brier__band_high")
    all_items, _ = boot.resampled("brier")
    draws = (band_all[:, c] - band_all[:, b]) - (all_items[:, c] - all_items[:, b])
    low, high = bootstrap.percentile_interval(draws, 0.95)
    return float(per_seed.mean()), claims.verdict(low, high, test.p_value, "decrease", alpha)


C_NEW = {
    **COMMON,
    "id": "c_new",
    "kind": "band_effect",
    "band": "high",
    "metric": "brier",
    "condition": "human_soft",
    "baseline": "original_hard",
    "direction": "decrease",
}
OVERALL = {**C_NEW, "id": "overall", "kind": "difference"}
del OVERALL["band"]


def test_a_worsening_elsewhere_supports_the_old_contrast_but_not_the_band_effect():
    boot = _band_study(high_gain=False)
    config = _config(C_NEW, OVERALL)
    table, _ = evaluate_claims({"mnist": boot}, None, config)
    new, overall = (table[table.claim == name].iloc[0] for name in ("c_new", "overall"))
    # calibration (Brier) is worse overall: the plain difference contradicts an improvement
    assert overall.effect > 0 and overall.verdict == "contradicted"
    old_effect, old_verdict = _previous_band_contrast(boot, config.alpha)
    assert old_effect < 0 and old_verdict == "supported"
    # the band's own effect is no improvement; its contrast alone would have been on the
    # claimed side (the excess of the band over the rest is negative), which is not enough
    assert abs(new.effect) < 0.01 and new.p_value > config.alpha
    assert new.contrast_effect < 0 and new.contrast_ci_high < 0
    assert new.verdict == "inconclusive"


def test_a_gain_on_the_hard_items_alone_supports_the_band_effect():
    boot = _band_study(high_gain=True)
    table, power = evaluate_claims({"mnist": boot}, None, _config(C_NEW))
    row = table.iloc[0]
    assert row.effect < 0 and row.ci_high < 0 and row.contrast_ci_high < 0
    assert row.verdict == "supported", row
    assert row.n_items == 40 and set(power["band_share"]) == {0.1}
    # the contrast's SE comes from centred weighted differences: close to its bootstrap's
    # spread (uncentred weights, n 1[band] / n_band - n 1[rest] / n_rest, give 2.97 times it
    # here, where the whole effect sits in the band)
    from soft_label_audit.reporting.claim_kinds import band_effect_estimate

    est = band_effect_estimate(_config(C_NEW).claims[0], boot, None)
    assert 0.5 < est.contrast.test.se / np.std(est.contrast.boot, ddof=1) < 1.0


# --- claim (e) ------------------------------------------------------------------------------


def _mirror_study(human_tracks_people: bool, rng_seed: int = 5):
    """300 training and 300 test items. On training items each condition's variability copies
    its own target's entropy (human_soft's target entropy is the human entropy, machine_soft's
    an unrelated one). On test items both conditions' predictive entropy follows the human
    entropy equally weakly, or (``human_tracks_people``) human_soft's follows it closely and
    machine_soft's not at all. Returns (bootstrap, cartography table, metrics_by_run)."""
    rng = np.random.default_rng(rng_seed)
    S, n_train, n_test = len(SEEDS), 300, 300
    human_train = rng.uniform(0, 2, n_train)
    own = {"human_soft": human_train, "machine_soft": rng.uniform(0, 2, n_train)}
    cart_rows, carto = [], {}
    for condition, target_entropy in own.items():
        variability = 0.05 * target_entropy + rng.normal(0, 0.01, (S, n_train))
        carto[condition] = variability
        for s in range(S):
            cart_rows.append(
                pd.DataFrame(
                    {
                        "source": "mnist",
                        "condition": condition,
                        "seed": s,
                        "item_id": np.arange(n_train) + 10_000,
                        "human_entropy": human_train,
                        "variability_original": variability[s],
                    }
                )
            )
    cart = pd.concat(cart_rows, ignore_index=True)

    human_test = rng.uniform(0, 2, n_test)
    z = (human_test - human_test.mean()) / human_test.std()
    labels = rng.integers(0, K, n_test)
    strength = {"human_soft": 2.0, "machine_soft": 0.0} if human_tracks_people else None

    def predictive(condition: str) -> np.ndarray:
        slope = 0.3 if strength is None else strength[condition]
        return 1 / (1 + np.exp(-(slope * z + rng.normal(0, 1, (S, n_test)) - 1)))

    conditions = ("human_soft", "machine_soft")
    probs = _probs(
        np.stack([predictive(c) for c in conditions]), np.broadcast_to(labels, (S, n_test))
    )
    band = np.where(human_test > 1, "high", "low").astype(object)
    runs = _runs(conditions, probs, labels, human_test, band)
    h_pred = entropy(probs)
    columns = {
        "spearman_entropy": np.array(
            [[spearman(h_pred[c, s], human_test) for s in range(S)] for c in range(2)]
        ),
        "carto_rho_variability_original": np.array(
            [[spearman(carto[c][s], human_train) for s in range(S)] for c in conditions]
        ),
        "carto_rho_variability_original_own_target": np.array(
            [[spearman(carto[c][s], own[c]) for s in range(S)] for c in conditions]
        ),
    }
    metrics = _metrics_by_run(runs, columns)
    return SourceBootstrap(runs, metrics, "mnist", 15, 1000, 0), cart, metrics


E_OLD = {
    **COMMON,
    "id": "e_old",
    "kind": "correlation",
    "metric": "carto_rho_variability_original",
    "cartography_column": "variability_original",
    "condition": "human_soft",
    "baseline": "machine_soft",
    "direction": "increase",
    "target": 0.1,
}
E_NEW = {
    **COMMON,
    "id": "e_new",
    "kind": "entropy_correlation",
    "metric": "spearman_entropy",
    "condition": "human_soft",
    "baseline": "machine_soft",
    "direction": "increase",
    "target": 0.1,
}


def test_a_model_copying_its_targets_supports_the_cartography_claim_but_not_the_test_items_one():
    boot, cart, metrics = _mirror_study(human_tracks_people=False)
    table, _ = evaluate_claims({"mnist": boot}, cart, _config(E_OLD, E_NEW))
    old, new = (table[table.claim == name].iloc[0] for name in ("e_old", "e_new"))
    assert old.effect > 0.5 and old.verdict == "supported"
    # both models mirror their own targets on training items: the own-target column says so
    assert (metrics["carto_rho_variability_original_own_target"] > 0.9).all()
    assert new.verdict == "inconclusive" and abs(new.effect) < 0.1, new
    assert new.resampled == "seeds+test items"


def test_a_model_tracking_human_uncertainty_on_unseen_items_supports_the_new_claim():
    boot, cart, _ = _mirror_study(human_tracks_people=True)
    table, _ = evaluate_claims({"mnist": boot}, cart, _config(E_NEW))
    row = table.iloc[0]
    assert row.effect > 0.3 and row.verdict == "supported", row


@pytest.mark.parametrize("high_gain", [False, True])
def test_the_band_effects_p_is_the_larger_of_its_two_tests(high_gain):
    """The row's statistic, df and SE are the band effect's own test; its p-value (what Holm
    adjusts) is the intersection-union test's, the larger of that test's and the contrast's."""
    from scipy import stats

    table, _ = evaluate_claims({"mnist": _band_study(high_gain)}, None, _config(C_NEW))
    row = table.iloc[0]
    own = 2 * stats.t.sf(abs(row.statistic), row.df)
    assert row.se == pytest.approx(abs(row.effect / row.statistic))
    assert row.p_value == pytest.approx(max(own, row.contrast_p_value), rel=1e-9)
    assert row.test.startswith("intersection-union")


# --- claim (f) ------------------------------------------------------------------------------

F_CONDITION, WEAK, BEST = (
    "human_soft_mode_aligned",
    "label_smoothing_mass_matched",
    "label_smoothing_matched",
)


def _regulariser_study(beats_best: bool | None, rng_seed: int = 11) -> SourceBootstrap:
    """400 items, 4 seeds, per-item NLL from ``(1 - a) one-hot + a uniform`` (NLL
    ``-ln(1 - 0.9 a)``): the condition's ``a`` about 0.25; the weak regulariser's about 0.40,
    the best regulariser's the condition's own up to noise (a tie), or (``beats_best``) about
    0.32; with ``beats_best=None`` the "weak" one is the tie and the best about 0.17, so the
    condition loses clearly to the best while tying the other."""
    rng = np.random.default_rng(rng_seed)
    n = 400
    shape = (len(SEEDS), n)
    labels = rng.integers(0, K, n)
    condition = rng.uniform(0.2, 0.3, shape)
    tie = condition + rng.normal(0, 0.02, shape)
    if beats_best is None:
        weak, best = tie, rng.uniform(0.12, 0.22, shape)
    else:
        weak = rng.uniform(0.35, 0.45, shape)
        best = rng.uniform(0.27, 0.37, shape) if beats_best else tie
    a = np.clip(np.stack([condition, weak, best]), 0, 1)
    probs = _probs(a, np.broadcast_to(labels, shape))
    band = np.array(["low"] * n, dtype=object)
    runs = _runs((F_CONDITION, WEAK, BEST), probs, labels, np.zeros(n), band)
    per_item = {m.name: m for m in registry.METRICS if isinstance(m, registry.ItemMetric)}
    nll = per_item["nll"].per_item(probs, runs.items)
    return SourceBootstrap(
        runs, _metrics_by_run(runs, {"nll": nll.mean(axis=-1)}), "mnist", 15, 1000, 0
    )


F_OLD = {
    **COMMON,
    "id": "f_old",
    "kind": "difference",
    "metric": "nll",
    "condition": F_CONDITION,
    "baseline": WEAK,
    "direction": "decrease",
}
F_NEW = {
    **{k: v for k, v in F_OLD.items() if k != "baseline"},
    "id": "f_new",
    "kind": "beats_all_baselines",
    "baselines": [WEAK, BEST],
}


def test_beating_a_weak_regulariser_supports_the_old_claim_but_not_the_best_of_several():
    boot = _regulariser_study(beats_best=False)
    config = _config(F_OLD, F_NEW)
    table, power = evaluate_claims({"mnist": boot}, None, config)
    old, new = (table[table.claim == name].iloc[0] for name in ("f_old", "f_new"))
    # the one-baseline claim against the weak regulariser: a large, clear gain
    assert old.effect < -0.1 and old.verdict == "supported"
    # the best of the two is the tie: its row names it, with its effect, interval and test
    assert new.baseline == BEST and abs(new.effect) < 0.01
    assert new.ci_low < 0 < new.ci_high
    assert new.p_value >= old.p_value and new.p_value > config.alpha
    assert new.verdict == "inconclusive"
    # the power rows follow the best baseline's comparison
    rows = power[power.claim == "f_new"]
    assert (rows["comparison"] == f"{F_CONDITION} - best of ({WEAK}, {BEST})").all()


def test_beating_every_regulariser_supports_the_best_of_several():
    boot = _regulariser_study(beats_best=True)
    table, _ = evaluate_claims({"mnist": boot}, None, _config(F_NEW, F_OLD))
    new, old = table.iloc[0], table.iloc[1]
    assert new.baseline == BEST and old.effect < new.effect < -0.03
    assert new.ci_high < 0 and new.verdict == "supported", new
    # the intersection-union p-value is the larger of the two comparisons' (before Holm)
    from soft_label_audit.reporting.claim_kinds import difference_estimate

    spec = _config(F_NEW).claims[0]
    p_each = [difference_estimate(spec.against(b), boot, None).test.p_value for b in (WEAK, BEST)]
    assert new.p_value == max(p_each)


def test_losing_clearly_to_the_best_baseline_contradicts_the_claim():
    """A condition that ties one baseline and is clearly worse than the other: the largest p
    of the comparisons (the tie's) would leave it inconclusive; the contrary's union test (K
    times the losing comparison's p) contradicts it."""
    from soft_label_audit.reporting.claim_kinds import difference_estimate

    boot = _regulariser_study(beats_best=None)
    config = _config(F_NEW)
    table, _ = evaluate_claims({"mnist": boot}, None, config)
    row = table.iloc[0]
    spec = config.claims[0]
    each = {b: difference_estimate(spec.against(b), boot, None) for b in (WEAK, BEST)}
    # the tie's p is large: the intersection-union p alone would be inconclusive
    assert each[WEAK].test.p_value > config.alpha
    assert max(e.test.p_value for e in each.values()) > config.alpha
    # the row names the baseline the condition loses to, with that comparison's effect
    assert row.baseline == BEST and row.effect > 0.03 and row.ci_low > 0
    assert row.p_value == pytest.approx(min(1.0, 2 * each[BEST].test.p_value))
    assert row.test.startswith("union (worse than a baseline)")
    assert row.verdict == "contradicted", row
    # a contrary effect whose interval straddles 0 stays inconclusive
    assert (
        claims.verdict(-0.001, 0.02, row.p_adjusted, "decrease", config.alpha, 0.0, [(-0.1, 0.1)])
        == "inconclusive"
    )


def test_a_beats_all_baselines_claim_lists_its_baselines_not_one():
    for change, rule in (
        ({"baselines": []}, "must be a non-empty list of distinct label conditions"),
        ({"baselines": [WEAK, WEAK]}, "must be a non-empty list of distinct label conditions"),
        ({"baselines": [WEAK, F_CONDITION]}, "must be a list of conditions other than"),
        ({"baselines": [WEAK, "smoothing"]}, "baselines[1] must be one of"),
    ):
        with pytest.raises(ValueError, match=re.escape(rule)):
            _config({**F_NEW, **change})
    with pytest.raises(ValueError, match=re.escape("unknown settings ['baseline']")):
        _config({**F_NEW, "baseline": WEAK})
