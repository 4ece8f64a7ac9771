"""Every registered claim kind is wired through: read from a claim entry into its spec class,
evaluated on a small synthetic study into a claims row and a power row with finite numbers."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from soft_label_audit.configs import EvaluationConfig
from soft_label_audit.params import ParameterError
from soft_label_audit.pipelines.reporting import nodes
from soft_label_audit.reporting.claim_kinds import CLAIM_KINDS, ClaimSpec
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
    "band_contrast": {
        **COMMON,
        "id": "band",
        "kind": "band_contrast",
        "band": "high",
        "metric": "ece_15",
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
    targets = {"nll": 0.05, "ece_15": 0.01, "accuracy": 0.01, "carto_rho_variability_original": 0.1}
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
    for f in fields(CLAIM_KINDS[name].spec):
        claim = {k: v for k, v in entry.items() if k != f.name}
        with pytest.raises(ParameterError, match=rf"^reporting\.claims\[0\]\.{f.name} is missing"):
            ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [claim]})


@pytest.mark.parametrize("name", sorted(CLAIM_KINDS))
def test_a_kind_refuses_the_fields_of_the_others(name):
    own = {f.name for f in fields(CLAIM_KINDS[name].spec)}
    others = {
        f.name for kind in CLAIM_KINDS.values() for f in fields(kind.spec) if f.name not in own
    }
    for key in others:
        claim = {**EXAMPLES[name], key: "x"}
        with pytest.raises(ParameterError, match=rf"unknown settings \['{key}'\]"):
            ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [claim]})


def test_a_band_contrast_of_an_item_mean_is_tested_on_weighted_item_differences(study):
    """Per-item weights ``n 1[band] / n_band - 1`` turn the band contrast of an item mean into
    the mean of weighted paired differences, whose ANOVA gives its components: the effect read
    from them equals the per-seed contrast, and the band's share enters the design."""
    from soft_label_audit.reporting.claim_kinds import T_ANOVA, band_contrast_estimate

    boots, cart = study
    entry = {**EXAMPLES["band_contrast"], "metric": "nll"}
    params = {**REPORTING_EXAMPLE, "claims": [entry]}
    (spec,) = ReportingConfig.from_params(params).claims
    for source, boot in boots.items():
        est = band_contrast_estimate(spec, boot, None)
        values = boot.prepared("nll")
        c, b = boot.runs.index("human_soft"), boot.runs.index("original_hard")
        band = boot.runs.band == "high"
        d = values[c] - values[b]
        by_hand = (d[:, band].mean(axis=1) - d.mean(axis=1)).mean()
        assert est.effect == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
        assert est.test_name == T_ANOVA and est.components.method == "anova"
        assert est.n_scope_items == len(band) and est.n_items == band.sum()
        assert est.band_share == pytest.approx(band.mean())
        # the ANOVA's SE is that of the contrast, not of the overall difference: close to, and
        # below, the seed-and-item bootstrap's spread of it (which counts the interaction twice)
        ratio = est.test.se / np.std(est.boot, ddof=1)
        # (without the weights: 1.09 and 2.3 on this study)
        assert 0.5 < ratio < 1.0, ratio
    table, power = evaluate_claims(boots, cart, ReportingConfig.from_params(params))
    assert set(table["test"]) == {T_ANOVA} and (table["p_mc_se"] == 0).all()
