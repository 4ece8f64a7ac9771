"""Every registered claim kind is wired through: read from a claim entry into its spec class,
evaluated on a small synthetic study into a claims row and a power row with finite numbers."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit.configs import EvaluationConfig
from soft_label_audit.params import ParameterError
from soft_label_audit.pipelines.reporting import nodes
from soft_label_audit.reporting.claim_kinds import CLAIM_KINDS, ClaimSpec, claim_fields
from soft_label_audit.reporting.claims import (
    CLAIM_COLUMNS,
    EXTRA_COLUMNS,
    VERDICTS,
    evaluate_claims,
)
from soft_label_audit.reporting.config import REPORTING_EXAMPLE, ReportingConfig
from soft_label_audit.reporting.power import POWER_COLUMNS
from soft_label_audit.reporting.statistics import build_bootstraps
from tests.pipelines.evaluation.synthetic_study import GRID

COMMON = {
    "statement": "an example claim",
    "condition": "human_soft",
    "baseline": "original_hard",
    "direction": "increase",
    "scope": "test",
    "target": 0.01,
}
#: one claim entry per registered kind; a kind added to CLAIM_KINDS needs one here
EXAMPLES = {
    "difference": {**COMMON, "id": "diff", "kind": "difference", "metric": "nll"},
    "band_effect": {
        **COMMON,
        "id": "band",
        "kind": "band_effect",
        "band": "high",
        "metric": "brier",
    },
    "entropy_correlation": {
        **COMMON,
        "id": "entropy",
        "kind": "entropy_correlation",
        "metric": "spearman_entropy",
        "baseline": "machine_soft",
    },
    "spread_ratio": {
        **COMMON,
        "id": "spread",
        "kind": "spread_ratio",
        "metric": "accuracy",
        "target": 0.8,
    },
    "correlation": {
        **COMMON,
        "id": "corr",
        "kind": "correlation",
        "metric": "carto_rho_variability_original",
        "cartography_column": "variability_original",
        "baseline": "machine_soft",
    },
    "beats_all_baselines": {
        **{k: v for k, v in COMMON.items() if k != "baseline"},
        "id": "best_of",
        "kind": "beats_all_baselines",
        "metric": "nll",
        "baselines": ["original_hard", "machine_soft"],
    },
}
#: power columns every kind fills with a finite number
FINITE_POWER = [
    "n_seeds",
    "n_items",
    "alpha_per_test",
    "detectable_effect",
    "target_effect",
    "power_at_study",
    "design_power",
]


@pytest.fixture(scope="module")
def study(synthetic_study, synthetic_evaluation):
    ns = GRID.namespaces()
    metrics = nodes.collect(*[synthetic_evaluation[f"{s}.{c}.metrics"] for s, c in ns])
    preds = nodes.collect(*[synthetic_study[f"{s}.{c}.test_predictions"] for s, c in ns])
    cart = nodes.collect(*[synthetic_evaluation[f"{s}.{c}.cartography"] for s, c in ns])
    boots = build_bootstraps(
        metrics,
        preds,
        synthetic_study["human_soft_labels"],
        synthetic_study["item_stats"],
        synthetic_study["params:labels.none_slot"],
        EvaluationConfig.from_params(synthetic_study["params:evaluation"]),
        200,
        0,
    )
    return boots, cart


def test_every_registered_kind_has_an_example():
    assert set(EXAMPLES) == set(CLAIM_KINDS)
    for name, kind in CLAIM_KINDS.items():
        assert issubclass(kind.spec, ClaimSpec) and kind.spec is not ClaimSpec
        assert np.isfinite(kind.null)
    assert len({k.spec for k in CLAIM_KINDS.values()}) == len(CLAIM_KINDS)


@pytest.mark.parametrize("name", sorted(CLAIM_KINDS))
def test_every_kind_is_read_evaluated_and_powered(name, study):
    boots, cart = study
    kind = CLAIM_KINDS[name]
    targets = {"nll": 0.05, "ece_15": 0.01, "accuracy": 0.01}
    params = {
        **REPORTING_EXAMPLE,
        "power": {**REPORTING_EXAMPLE["power"], "targets": targets},
        "claims": [EXAMPLES[name]],
    }
    config = ReportingConfig.from_params(params)
    (spec,) = config.claims
    assert type(spec) is kind.spec and spec.kind == name
    table, power = evaluate_claims(boots, cart, config)

    assert list(table.columns) == CLAIM_COLUMNS + EXTRA_COLUMNS
    assert list(table["source"]) == list(GRID.sources)
    assert set(table["kind"]) == {name} and set(table["null"]) == {kind.null}
    assert set(table["comparison"]) == {spec.comparison()}
    values = table[["effect", "ci_low", "ci_high", "p_value", "p_adjusted", "p_mc_se", "df"]]
    values = values.to_numpy(float)
    assert np.isfinite(values).all(), table
    assert (table["ci_low"] <= table["ci_high"]).all()
    assert ((table["p_value"] > 0) & (table["p_value"] <= 1)).all()
    assert set(table["verdict"]) <= set(VERDICTS) and (table["n_items"] > 0).all()

    assert list(power.columns) == POWER_COLUMNS
    rows = power[power["claim"] == spec.id]
    designs = list(config.power.design_seeds)
    assert list(rows["source"]) == [s for s in GRID.sources for _ in designs]
    assert list(rows["design_seeds"]) == designs * len(GRID.sources)
    assert set(rows["target_effect"]) == {spec.target} and set(rows["scope"]) == {"test"}
    # a ratio of spreads from the synthetic study's 3 seeds: no ratio is detected with 80% power
    finite = [c for c in FINITE_POWER if not (name == "spread_ratio" and c == "detectable_effect")]
    assert np.isfinite(rows[finite].to_numpy(float)).all(), rows
    assert (rows[finite[3:]] > 0).all().all()
    assert np.allclose(rows["alpha_per_test"], config.alpha / len(table))


@pytest.mark.parametrize("name", sorted(CLAIM_KINDS))
def test_every_field_of_a_kind_is_required(name):
    entry = EXAMPLES[name]
    for f in claim_fields(CLAIM_KINDS[name].spec):
        claim = {k: v for k, v in entry.items() if k != f.name}
        with pytest.raises(ParameterError, match=rf"^reporting\.claims\[0\]\.{f.name} is missing"):
            ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [claim]})


@pytest.mark.parametrize("name", sorted(CLAIM_KINDS))
def test_a_kind_refuses_the_fields_of_the_others(name):
    own = {f.name for f in claim_fields(CLAIM_KINDS[name].spec)}
    others = {
        f.name
        for kind in CLAIM_KINDS.values()
        for f in claim_fields(kind.spec)
        if f.name not in own
    }
    for key in others:
        claim = {**EXAMPLES[name], key: "x"}
        with pytest.raises(ParameterError, match=rf"unknown settings \['{key}'\]"):
            ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [claim]})


def test_a_band_effect_is_the_bands_own_difference_with_its_contrast_as_a_second_test(study):
    """The primary effect is the difference on the band's items (ANOVA over them); the
    contrast, band minus the other items, is the mean of weighted per-item differences
    ``n 1[band] / n_band - n 1[rest] / n_rest``; the claim's p is the larger of the two."""
    from soft_label_audit.reporting.claim_kinds import T_ANOVA, band_effect_estimate

    boots, cart = study
    params = {**REPORTING_EXAMPLE, "claims": [{**EXAMPLES["band_effect"], "metric": "nll"}]}
    (spec,) = ReportingConfig.from_params(params).claims
    for source, boot in boots.items():
        est = band_effect_estimate(spec, boot, None)
        values = boot.prepared("nll")
        c, b = boot.runs.index("human_soft"), boot.runs.index("original_hard")
        band = boot.runs.band == "high"
        d = values[c] - values[b]
        assert est.effect == pytest.approx(d[:, band].mean(), rel=1e-9, abs=1e-12)
        contrast = (d[:, band].mean(axis=1) - d[:, ~band].mean(axis=1)).mean()
        assert est.contrast.effect == pytest.approx(contrast, rel=1e-9, abs=1e-12)
        assert est.components.method == "anova" and est.contrast.test_name == T_ANOVA
        assert est.n_scope_items == len(band) and est.n_items == band.sum()
        assert est.p_value == max(est.test.p_value, est.contrast.test.p_value)
        # the band's bootstrap is centred on the band's effect, the contrast's on the contrast
        assert np.median(est.boot) == pytest.approx(est.effect, abs=3 * np.std(est.boot))
        lo, hi = est.contrast.interval(0.95)
        assert lo <= contrast <= hi
        # each test's SE is close to, and below, its seed-and-item bootstrap's spread (which
        # counts the interaction twice); the contrast's from centred weighted differences
        # (uncentred weights give 0.76 and 1.43 here; see also test_claims_by_construction.py)
        for one in (est, est.contrast):
            ratio = one.test.se / np.nanstd(one.boot, ddof=1)
            assert 0.5 < ratio < 1.0, ratio
    table, power = evaluate_claims(boots, cart, ReportingConfig.from_params(params))
    assert (table["p_mc_se"] == 0).all() and table["contrast_p_value"].notna().all()
    assert np.allclose(table["p_value"], table[["p_value", "contrast_p_value"]].max(axis=1))
    # designs solved in band items, shown as annotated items at the band's share
    ok = power["design_items"].notna()
    assert np.allclose(
        power.loc[ok, "design_items"],
        np.ceil(power.loc[ok, "design_band_items"] / power.loc[ok, "band_share"]),
    )


def test_a_band_effect_refuses_a_plug_in_ece():
    entry = {**EXAMPLES["band_effect"], "metric": "ece_15"}
    with pytest.raises(ParameterError, match=r"claims\[0\]\.metric must be an item-mean metric"):
        ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [entry]})


def test_an_entropy_correlation_resamples_the_test_items_of_spearman_entropy(study):
    """The effect is the per-run spearman_entropy difference; the bootstrap's identity draw
    gives the same correlations from the test predictions."""
    from soft_label_audit.metrics.alignment import entropy
    from soft_label_audit.reporting import bootstrap
    from soft_label_audit.reporting.claim_kinds import T_BOOT, entropy_correlation_estimate

    boots, _ = study
    (spec,) = ReportingConfig.from_params(
        {**REPORTING_EXAMPLE, "claims": [EXAMPLES["entropy_correlation"]]}
    ).claims
    for boot in boots.values():
        est = entropy_correlation_estimate(spec, boot, None)
        per_seed = boot.per_seed.get("spearman_entropy", ["machine_soft", "human_soft"])
        assert est.effect == pytest.approx((per_seed[1] - per_seed[0]).mean())
        runs = boot.runs
        values = entropy(runs.probs[[runs.index("human_soft")]])
        once = bootstrap.resample_correlation(
            values,
            runs.human_entropy,
            bootstrap.identity_draws(len(runs.seeds), len(runs.item_ids)),
        )
        assert once[0, 0] == pytest.approx(per_seed[1].mean(), rel=1e-9)
        assert est.test_name == T_BOOT and est.resampled == "seeds+test items"
        assert est.n_items == len(runs.item_ids)
    with pytest.raises(ParameterError, match=r"metric must be 'spearman_entropy'"):
        ReportingConfig.from_params(
            {
                **REPORTING_EXAMPLE,
                "claims": [{**EXAMPLES["entropy_correlation"], "metric": "nll"}],
            }
        )
