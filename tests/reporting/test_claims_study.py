"""The claims table, power table and corrected paired differences on a small synthetic study."""

import logging

import numpy as np
import pytest

from soft_label_audit.pipelines.reporting import nodes
from soft_label_audit.reporting.claims import CLAIM_COLUMNS, VERDICTS
from soft_label_audit.reporting.claims_report import claims_figure
from tests.pipelines.evaluation.synthetic_study import GRID

CLAIMS = [
    {
        "id": "a",
        "kind": "difference",
        "statement": "human soft labels improve accuracy",
        "metric": "accuracy",
        "condition": "human_soft",
        "baseline": "original_hard",
        "direction": "increase",
        "scope": "test",
        "target": 0.01,
    },
    {
        "id": "c",
        "statement": "the calibration gain is largest on hard items",
        "kind": "band_contrast",
        "band": "high",
        "metric": "ece_15",
        "condition": "human_soft",
        "baseline": "original_hard",
        "direction": "decrease",
        "scope": "test",
        "target": 0.01,
    },
    {
        "id": "d",
        "statement": "human soft labels make training more stable",
        "kind": "spread_ratio",
        "metric": "accuracy",
        "condition": "human_soft",
        "baseline": "original_hard",
        "direction": "decrease",
        "scope": "test",
        "target": 0.8,
    },
    {
        "id": "e",
        "statement": "cartography mirrors human uncertainty",
        "kind": "correlation",
        "metric": "carto_rho_variability_original",
        "cartography_column": "variability_original",
        "condition": "human_soft",
        "baseline": "machine_soft",
        "direction": "increase",
        "scope": "test",
        "target": 0.01,
    },
    {
        "id": "f",
        "kind": "difference",
        "statement": "a claim on a condition the grid lacks",
        "metric": "nll",
        "condition": "human_soft",
        "baseline": "label_smoothing_mass_matched",
        "direction": "decrease",
        "scope": "test",
        "target": 0.01,
    },
]
PARAMS = {
    "baselines": ["original_hard", "human_soft"],
    "confidence": 0.95,
    "cartography_reference": "original",
    "alpha": 0.05,
    "bootstrap": {"n_resamples": 300, "seed": 0},
    "stability": {"baseline": "original_hard", "metrics": ["accuracy", "nll", "ece_15"]},
    "power": {
        "power": 0.8,
        "design_seeds": [3, 6, 20],
        "targets": {"accuracy": 0.01, "ece_15": 0.01},
        "reference": {"condition": "human_soft", "baseline": "original_hard"},
    },
    "claims": CLAIMS,
}


@pytest.fixture(scope="module")
def tables(synthetic_study, synthetic_evaluation):
    study, out = synthetic_study, synthetic_evaluation
    ns = GRID.namespaces()
    metrics = nodes.collect(*[out[f"{s}.{c}.metrics"] for s, c in ns])
    preds = nodes.collect(*[study[f"{s}.{c}.test_predictions"] for s, c in ns])
    cart = nodes.collect(*[out[f"{s}.{c}.cartography"] for s, c in ns])
    args = (
        metrics,
        preds,
        cart,
        study["human_soft_labels"],
        study["item_stats"],
        PARAMS,
        study["params:evaluation"],
        study["params:labels.none_slot"],
    )
    return metrics, args


@pytest.fixture(scope="module")
def results(tables):
    return nodes.compare_conditions(*tables[1])


def test_claims_table_has_one_row_per_claim_and_source(results):
    paired, claims, power, ratios = results
    assert list(claims.columns[: len(CLAIM_COLUMNS)]) == CLAIM_COLUMNS
    assert claims[["claim", "source"]].values.tolist() == [
        [c, s] for c in "acde" for s in GRID.sources
    ]
    assert set(claims["verdict"]) <= set(VERDICTS)
    assert (claims["ci_low"] <= claims["ci_high"]).all()
    # Holm over the whole table: adjusted p >= raw p, and the smallest one is m * p_min
    assert (claims["p_adjusted"] >= claims["p_value"] - 1e-12).all()
    assert claims["p_adjusted"].min() == pytest.approx(
        min(1.0, len(claims) * claims["p_value"].min())
    )


def test_claim_effects_equal_the_per_seed_metrics(results, tables):
    metrics = tables[0]
    claims = results[1]

    def mean(source, condition, metric):
        sel = metrics[(metrics.source == source) & (metrics.condition == condition)]
        return sel[metric].mean()

    for source in GRID.sources:
        row = claims[(claims.claim == "a") & (claims.source == source)].iloc[0]
        assert row.effect == pytest.approx(
            mean(source, "human_soft", "accuracy") - mean(source, "original_hard", "accuracy")
        )
        row = claims[(claims.claim == "c") & (claims.source == source)].iloc[0]
        band = mean(source, "human_soft", "ece_15__band_high") - mean(
            source, "original_hard", "ece_15__band_high"
        )
        overall = mean(source, "human_soft", "ece_15") - mean(source, "original_hard", "ece_15")
        assert row.effect == pytest.approx(band - overall)
        row = claims[(claims.claim == "d") & (claims.source == source)].iloc[0]
        sel = metrics[metrics.source == source]
        assert row.effect == pytest.approx(
            sel[sel.condition == "human_soft"]["accuracy"].std()
            / sel[sel.condition == "original_hard"]["accuracy"].std()
        )
        row = claims[(claims.claim == "e") & (claims.source == source)].iloc[0]
        assert row.effect == pytest.approx(
            mean(source, "human_soft", "carto_rho_variability_original")
            - mean(source, "machine_soft", "carto_rho_variability_original")
        )


def test_paired_differences_gain_bootstrap_holm_and_bh_columns(results):
    paired, claims = results[0], results[1]
    for column in ("boot_low", "boot_high", "p_value", "p_t", "resampled", "p_holm", "q_bh"):
        assert column in paired
    # the claim a rows carry its Holm p-value, every other row a BH q-value
    holm_rows = paired[paired["p_holm"].notna()]
    assert sorted(holm_rows["source"]) == sorted(GRID.sources)
    assert set(holm_rows["metric"]) == {"accuracy"} and set(holm_rows["condition"]) == {
        "human_soft"
    }
    for r in holm_rows.itertuples():
        assert (
            r.p_holm
            == claims[(claims.claim == "a") & (claims.source == r.source)]["p_adjusted"].iloc[0]
        )
    rest = paired[paired["p_holm"].isna()]
    assert (rest["q_bh"].notna() == rest["p_value"].notna()).all()
    assert rest["p_value"].notna().mean() > 0.5
    rest = paired[paired["p_holm"].isna() & paired["q_bh"].notna()]
    assert (rest["q_bh"] >= rest["p_value"] - 1e-12).all()
    both = paired[paired["resampled"] == "seeds+items"]
    assert {"accuracy", "ece_15", "nll__band_high", "classwise_ece_15"} <= set(both["metric"])
    assert set(paired.loc[paired["metric"] == "spearman_entropy", "resampled"]) == {"seeds"}


def test_power_and_stability_tables(results):
    power, ratios = results[2], results[3]
    designs = PARAMS["power"]["design_seeds"]
    # claims, then the reference rows of the two target metrics; one row per design each
    assert len(power) == (8 + 2 * 2) * len(designs)
    ref = power[power.claim == "reference_ece_15"]
    assert list(dict.fromkeys(ref["source"])) == list(GRID.sources)
    assert (ref["detectable_effect"] > 0).all() and set(ref["target_effect"]) == {0.01}
    assert np.allclose(power["alpha_per_test"], 0.05 / 8)
    for (claim, source), rows in power.groupby(["claim", "source"]):
        assert list(rows["design_seeds"]) == designs
        reached = rows[rows["design_items"].notna()]
        # every design reaches the power; more seeds never need more items
        assert (reached["design_power"] >= 0.8 - 1e-9).all(), rows
        assert (np.diff(reached["design_items"].to_numpy()) <= 0).all(), rows
        assert (rows.loc[rows["design_items"].isna(), "design_power"] < 0.8).all()
    c = power[power.claim == "c"]
    assert ((c["band_share"] > 0) & (c["band_share"] < 1)).all()
    ok = c["design_items"].notna()
    assert np.allclose(
        c.loc[ok, "design_band_items"], np.ceil(c.loc[ok, "design_items"] * c.loc[ok, "band_share"])
    )
    a = power[power.claim == "a"]
    assert set(a["components"]) == {"anova"} and set(c["components"]) == {"bootstrap"}
    assert (a[["var_seed", "var_item", "var_residual"]] >= 0).all().all()
    assert set(power.loc[power.claim == "d", "target_effect"]) == {0.8}
    assert set(ratios.columns) >= {
        "accuracy__std_ratio",
        "accuracy__std_ratio_low",
        "ece_15__std_ratio_high",
        "std_relative_error",
    }
    base = ratios[ratios.condition == "original_hard"]
    assert np.allclose(base["accuracy__std_ratio"], 1.0)
    assert ratios["std_relative_error"].iloc[0] == pytest.approx(1 / np.sqrt(2 * 2))


def test_same_seed_same_tables_and_a_note_for_each_skipped_claim(results, tables, caplog):
    with caplog.at_level(logging.WARNING):
        again = nodes.compare_conditions(*tables[1])
    for a, b in zip(results, again):
        assert a.equals(b)
    # claim f compares with a condition this grid lacks: skipped, with a note per source
    assert (
        caplog.text.count("claim f skipped") == 2 and "label_smoothing_mass_matched" in caplog.text
    )


def test_claims_figure_draws_one_panel_per_claim(results):
    fig = claims_figure(results[1])
    assert len(fig.axes) == 4


def test_pool_claims_run_through_the_node_on_pool_predictions(tables):
    """compare_conditions with pool inputs: a pool claim is tested on the pool items (here the
    test items' predictions relabelled as a pool, with their original labels), a test claim
    on the test items, and the paired rows keep the test claim's Holm p only."""
    metrics, args = tables
    preds, item_stats = args[1], args[4]
    pool_digits = item_stats[["item_id", "original_label"]].merge(
        preds[["item_id", "source"]].drop_duplicates(), on="item_id"
    )
    pool_claim = {**CLAIMS[0], "id": "a_pool", "scope": "pool"}
    params = {**PARAMS, "claims": [CLAIMS[0], pool_claim]}
    args = (*args[:5], params, *args[6:])
    paired, claims, power, _ = nodes.compare_conditions(*args, preds, pool_digits)
    assert claims[["claim", "scope"]].values.tolist() == [
        ["a", "test"],
        ["a", "test"],
        ["a_pool", "pool"],
        ["a_pool", "pool"],
    ]
    test_rows, pool_rows = claims.iloc[:2], claims.iloc[2:]
    # the same predictions and labels: the same effect, from the pool's own computation
    np.testing.assert_allclose(pool_rows["effect"], test_rows["effect"], rtol=1e-12)
    np.testing.assert_allclose(pool_rows["p_value"], test_rows["p_value"], rtol=1e-9)
    assert set(power["scope"]) == {"test", "pool"}
    holm_rows = paired[paired["p_holm"].notna()]
    assert set(holm_rows["p_holm"]) <= set(test_rows["p_adjusted"])
