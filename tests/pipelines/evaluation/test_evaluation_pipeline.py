"""The `evaluation` pipeline run in memory on a synthetic study."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from soft_label_audit.columns import P_COLS
from soft_label_audit.configs import EvaluationConfig
from soft_label_audit.contracts import ContractError, check_table
from soft_label_audit.metrics.bands import BANDS, NONE_BANDS
from soft_label_audit.metrics.per_run import (
    BAND_SEPARATOR,
    NONE_BAND_SEPARATOR,
    SHIFTED_SUFFIX,
    metric_names,
)
from soft_label_audit.pipelines.evaluation import create_pipeline, nodes
from tests.pipelines.evaluation.synthetic_study import EVAL_PARAMS, GRID


@pytest.fixture(scope="module")
def study(synthetic_study):
    return synthetic_study


@pytest.fixture(scope="module")
def outputs(synthetic_evaluation):
    return synthetic_evaluation


def test_namespaces_follow_the_grid():
    pipe = create_pipeline(GRID)
    # each run in its namespace; each source gathers its runs' figures in its own
    assert {n.namespace for n in pipe.nodes} == {f"{s}.{c}" for s, c in GRID.namespaces()} | set(
        GRID.sources
    )
    assert {n.name for n in pipe.nodes if n.namespace in GRID.sources} == {
        f"{s}.gather_figures" for s in GRID.sources
    }
    assert pipe.inputs() == {
        "human_soft_labels",
        "item_stats",
        "pool_digits",
        "params:evaluation",
        "params:labels.none_slot",
    } | {
        f"{s}.{c}.{d}"
        for s, c in GRID.namespaces()
        for d in (
            "test_predictions",
            "pool_predictions",
            "final_predictions",
            "curves",
            "dynamics",
            "targets",
        )
    }


def test_metrics_table_contract(outputs):
    metrics = outputs["mnist.human_soft.metrics"]
    assert metrics[["source", "condition", "seed"]].values.tolist() == [
        ["mnist", "human_soft", 0],
        ["mnist", "human_soft", 1],
        ["mnist", "human_soft", 2],
    ]
    for column in (
        "accuracy",
        "accuracy_human_mode",
        "nll",
        "brier",
        "ce_human",
        "kl_human",
        "tv_human",
        "entropy_gap",
        "spearman_entropy",
        "ece_15",
        "ece_mass_15",
        "classwise_ece_15",
        "mce_15",
        "ece_15__band_high",
        "ece_15__band_unanimous",
        "convergence_epoch",
        "carto_rho_variability_original",
        "carto_share_easy_human_mode",
    ):
        assert column in metrics, column
    numeric = metrics.drop(columns=["source", "condition"])
    assert all(pd.api.types.is_numeric_dtype(numeric[c]) for c in numeric)
    assert (metrics["n_items"] == 30).all()
    shares = metrics[[f"carto_share_{r}_original" for r in ("easy", "ambiguous", "hard")]].sum(
        axis=1
    )
    assert np.allclose(shares, 1.0)


def test_every_registered_metric_is_a_column_of_the_metrics_table(outputs):
    """Each registry entry reaches the table: overall, per band, per none band and on the
    mode-shifted items, in order."""
    config = EvaluationConfig.from_params(EVAL_PARAMS)
    names = metric_names(config.n_bins, config.calibration_floor.quantile)
    expected = [
        *names,
        *(f"{m}{BAND_SEPARATOR}{b}" for b in BANDS for m in names),
        *(f"{m}{NONE_BAND_SEPARATOR}{b}" for b in NONE_BANDS for m in names),
        *(f"{m}{SHIFTED_SUFFIX}" for m in names),
    ]
    for namespace in ("mnist.human_soft", "synthetic.original_hard"):
        columns = list(outputs[f"{namespace}.metrics"].columns)
        assert [c for c in columns if c in set(expected)] == expected, namespace


def test_cartography_and_reliability_tables(outputs, study):
    cart = outputs["synthetic.machine_soft.cartography"]
    assert len(cart) == 3 * 40
    assert set(cart["item_id"]) == set(study["synthetic.machine_soft.dynamics"]["item_ids"])
    assert cart["correctness_original"].between(0, 1).all()
    rel = outputs["mnist.original_hard.reliability"]
    assert len(rel) == 3 * 15 and (rel.groupby("seed")["count"].sum() == 30).all()


def test_cartography_correlates_with_the_own_targets_entropy_beside_the_human_one(outputs, study):
    """``carto_rho_*_own_target``: the correlation with the entropy of the condition's own
    training targets; for human_soft the targets' entropy is the human one (the same numbers),
    one-hot targets have no per-item entropy (NaN), and another condition's differ."""
    from soft_label_audit.human_labels import entropy
    from soft_label_audit.metrics.alignment import spearman

    for ref in ("original", "human_mode"):
        for name in ("variability", "uncertainty"):
            human, own = f"carto_rho_{name}_{ref}", f"carto_rho_{name}_{ref}_own_target"
            soft = outputs["mnist.human_soft.metrics"]
            np.testing.assert_allclose(soft[own], soft[human], rtol=1e-12)
            assert outputs["mnist.original_hard.metrics"][own].isna().all()
    machine = outputs["synthetic.machine_soft.metrics"]
    cart = outputs["synthetic.machine_soft.cartography"]
    targets = study["synthetic.machine_soft.targets"].set_index("item_id")
    for seed, run in cart.groupby("seed"):
        own = entropy(targets.loc[run["item_id"], [f"t_{k}" for k in range(10)]].to_numpy())
        row = machine[machine.seed == seed].iloc[0]
        assert row["carto_rho_variability_original_own_target"] == pytest.approx(
            spearman(run["variability_original"].to_numpy(), own)
        )
        assert row["carto_rho_variability_original_own_target"] != pytest.approx(
            row["carto_rho_variability_original"]
        )


def test_targets_of_one_entropy_have_no_own_target_correlation(study):
    """Uniform smoothing gives every target one entropy, whose float sums differ in the last
    bits with the label's column: they tie (NaN correlation), not rank by rounding noise."""
    from soft_label_audit.human_labels import entropy

    targets = study["mnist.human_soft.targets"].copy()
    labels = study["item_stats"].set_index("item_id").loc[targets["item_id"], "original_label"]
    columns = [f"t_{k}" for k in range(10)]
    targets[columns] = 0.9 * np.eye(10)[labels.to_numpy()] + 0.01
    train = targets[targets["split"] == "train"]
    assert np.ptp(entropy(train[columns].to_numpy())) > 0  # the noise is there
    _, summary = nodes.map_training_dynamics(
        study["mnist.human_soft.dynamics"],
        study["item_stats"],
        targets,
        EVAL_PARAMS,
        source="mnist",
        condition="human_soft",
    )
    assert summary["carto_rho_variability_original_own_target"].isna().all()
    assert summary["carto_rho_variability_original"].notna().all()


def test_training_items_without_a_train_target_are_refused(study):
    targets = study["mnist.human_soft.targets"].copy()
    first = study["mnist.human_soft.dynamics"]["item_ids"][0]
    targets.loc[targets["item_id"] == first, "split"] = "test"
    with pytest.raises(ValueError, match=r"mnist\.human_soft\.targets: training items \["):
        nodes.map_training_dynamics(
            study["mnist.human_soft.dynamics"],
            study["item_stats"],
            targets,
            EVAL_PARAMS,
            source="mnist",
            condition="human_soft",
        )


def _predicted_classes(predictions: pd.DataFrame) -> dict[int, dict[int, int]]:
    """seed -> item_id -> the class of the largest p_k, read row by row."""
    columns = [f"p_{k}" for k in range(10)]
    out: dict[int, dict[int, int]] = {}
    for row in predictions.itertuples(index=False):
        p = [getattr(row, c) for c in columns]
        out.setdefault(int(row.seed), {})[int(row.item_id)] = p.index(max(p))
    return out


@pytest.mark.parametrize("namespace", ["mnist.original_hard", "synthetic.machine_soft"])
def test_stability_row(outputs, study, namespace):
    """The disagreement is the mean over seed pairs of the share of test items the two seeds
    predict differently, worked out here from the predictions themselves."""
    row = outputs[f"{namespace}.stability"]
    assert len(row) == 1 and row["n_seeds"].iloc[0] == 3
    classes = _predicted_classes(study[f"{namespace}.test_predictions"])
    seeds = sorted(classes)
    items = sorted(classes[seeds[0]])
    assert all(sorted(classes[s]) == items for s in seeds)
    shares = [
        sum(classes[a][i] != classes[b][i] for i in items) / len(items)
        for x, a in enumerate(seeds)
        for b in seeds[x + 1 :]
    ]
    assert len(shares) == 3 and 0 < sum(shares)  # the seeds do disagree somewhere
    assert row["disagreement"].iloc[0] == sum(shares) / len(shares)


def test_run_figures_per_seed(outputs):
    # names "seed<n>/<figure>": the tracking hook logs each into seed n's child run
    figs = outputs["mnist.human_soft.figures"]
    assert sorted(figs) == [f"seed{s}/run_overview" for s in range(3)]
    assert all(isinstance(f, Figure) for f in figs.values())


def test_predictions_of_another_namespace_are_refused(study):
    # the test_predictions contract binds source and condition to the dataset's namespace
    wrong = study["mnist.human_soft.test_predictions"]
    with pytest.raises(ContractError, match="column 'condition': equals 'original_hard'"):
        check_table("mnist.original_hard.test_predictions", wrong)


def test_unknown_test_items_are_refused(study):
    preds = study["mnist.human_soft.test_predictions"].copy()
    preds.loc[0, "item_id"] = 999_999
    with pytest.raises(ValueError, match="999999"):
        nodes.score_test_predictions(
            preds,
            study["human_soft_labels"],
            study["item_stats"],
            EVAL_PARAMS,
            "renormalise",
            source="mnist",
            condition="human_soft",
        )


def test_seeds_must_agree_between_inputs(study):
    params = EVAL_PARAMS
    metrics, _ = nodes.score_test_predictions(
        study["mnist.human_soft.test_predictions"],
        study["human_soft_labels"],
        study["item_stats"],
        params,
        "renormalise",
        source="mnist",
        condition="human_soft",
    )
    _, carto = nodes.map_training_dynamics(
        study["mnist.human_soft.dynamics"],
        study["item_stats"],
        study["mnist.human_soft.targets"],
        params,
        source="mnist",
        condition="human_soft",
    )
    conv = nodes.convergence_by_seed(
        study["mnist.human_soft.curves"], params, source="mnist", condition="human_soft"
    )
    scopes = nodes.score_other_scopes(
        study["mnist.human_soft.pool_predictions"],
        study["mnist.human_soft.final_predictions"],
        study["pool_digits"],
        study["item_stats"],
        params,
        source="mnist",
        condition="human_soft",
    )
    with pytest.raises(ValueError, match="seeds differ"):
        nodes.assemble_run_metrics(metrics, scopes, carto, conv[conv["seed"] != 2])
    with pytest.raises(ValueError, match="seeds differ"):
        nodes.assemble_run_metrics(metrics, scopes[scopes["seed"] != 0], carto, conv)


def test_cartography_burn_in_leaves_out_the_first_epochs(study):
    dyn = study["mnist.human_soft.dynamics"]
    params = {**EVAL_PARAMS, "cartography": {**EVAL_PARAMS["cartography"], "burn_in_fraction": 0.5}}
    table, _ = nodes.map_training_dynamics(
        dyn,
        study["item_stats"],
        study["mnist.human_soft.targets"],
        params,
        source="mnist",
        condition="human_soft",
    )
    labels = (
        study["item_stats"].set_index("item_id").loc[dyn["item_ids"], "original_label"].to_numpy()
    )
    late = dyn["probs"][0, 2:, np.arange(len(labels)), labels]  # (items, epochs 3..4)
    assert np.allclose(table[table.seed == 0]["confidence_original"], late.mean(axis=1), atol=1e-6)


def test_bands_use_the_entropy_of_the_human_soft_target(study):
    """An all-"none" item's human_soft target is uniform: it is scored in the high band, and an
    item_stats entropy over the 11 slots (0 for that item) is refused."""
    from soft_label_audit.columns import H_COLS
    from soft_label_audit.human_labels import entropy

    human = study["human_soft_labels"].copy()
    stats = study["item_stats"].copy()
    preds = study["mnist.original_hard.test_predictions"]
    item = preds["item_id"].iloc[0]
    human.loc[human["item_id"] == item, list(H_COLS)] = np.eye(11)[10]
    stats.loc[stats["item_id"] == item, "human_entropy"] = np.log(10)
    one = preds[preds["seed"] == preds["seed"].min()]
    metrics, _ = nodes.score_test_predictions(
        one, human, stats, EVAL_PARAMS, "renormalise", source="mnist", condition="original_hard"
    )
    unanimous = stats[stats["item_id"].isin(one["item_id"]) & (stats["human_entropy"] <= 1e-9)]
    assert metrics["n_items__band_unanimous"].iloc[0] == len(unanimous)
    assert metrics["n_items__none_mostly_none"].iloc[0] >= 1
    eleven = stats.assign(
        human_entropy=entropy(
            human.set_index("item_id").loc[stats["item_id"], list(H_COLS)].to_numpy()
        )
    )
    with pytest.raises(ValueError, match="differs from the entropy of the human_soft target"):
        nodes.score_test_predictions(
            one,
            human,
            eleven,
            EVAL_PARAMS,
            "renormalise",
            source="mnist",
            condition="original_hard",
        )


def test_the_label_free_metrics_are_scored_in_every_scope(outputs, study):
    """pool__*, final__* and final__pool__* hold the label-free metrics of the pool at the best
    epoch and of the test items and the pool at the final epoch; the plain columns stay the
    test items at the best epoch; a source without pool items gets NaN pool metrics."""
    from soft_label_audit.metrics.per_run import scope_columns, score_label_free
    from soft_label_audit.metrics.registry import Settings, label_free_names

    config = EvaluationConfig.from_params(EVAL_PARAMS)
    names = label_free_names(Settings(n_bins=config.n_bins))
    floor = config.calibration_floor
    pool_digits = study["pool_digits"]
    stats = study["item_stats"].set_index("item_id")
    for source, condition in GRID.namespaces():
        metrics = outputs[f"{source}.{condition}.metrics"]
        check_table(f"{source}.{condition}.metrics", metrics)
        for column in scope_columns(config.n_bins) + ["best_epoch", "val_loss_converged"]:
            assert column in metrics, column
        assert not any(c.startswith("pool__") and "human" in c for c in metrics)
        final = study[f"{source}.{condition}.final_predictions"]
        pool = study[f"{source}.{condition}.pool_predictions"]
        labels = pool_digits.set_index("item_id")["original_label"]
        for _, row in metrics.iterrows():
            seed = row["seed"]
            for prefix, table, lookup in (
                ("pool__", pool, labels),
                ("final__", final[final["scope"] == "test"], stats["original_label"]),
                ("final__pool__", final[final["scope"] == "pool"], labels),
            ):
                run = table[table["seed"] == seed]
                expected = score_label_free(
                    run[list(P_COLS)].to_numpy(),
                    lookup.loc[run["item_id"]].to_numpy(),
                    config.n_bins,
                    floor.draws,
                    floor.quantile,
                    floor.seed,
                )
                for name in names:
                    assert row[f"{prefix}{name}"] == pytest.approx(expected[name], nan_ok=True), (
                        prefix,
                        name,
                    )
            assert row["pool__n_items"] == len(pool[pool["seed"] == seed])
        if pool.empty:
            assert (metrics["pool__n_items"] == 0).all() and metrics["pool__nll"].isna().all()
        else:
            assert metrics["pool__nll"].notna().all()
        # the final epoch's predictions are sharper here: they score otherwise than the best's
        assert not np.allclose(metrics["final__nll"], metrics["nll"])
        curves = study[f"{source}.{condition}.curves"]
        best = curves.groupby("seed")["best_epoch"].first()
        np.testing.assert_array_equal(metrics["best_epoch"], best.loc[metrics["seed"]])


def test_pool_predictions_of_unknown_items_are_refused(study):
    pool = study["mnist.human_soft.pool_predictions"].copy()
    pool.loc[0, "item_id"] = 999_999
    with pytest.raises(ValueError, match="999999"):
        nodes.score_other_scopes(
            pool,
            study["mnist.human_soft.final_predictions"],
            study["pool_digits"],
            study["item_stats"],
            EVAL_PARAMS,
            source="mnist",
            condition="human_soft",
        )


def test_every_condition_scores_the_same_shifted_items_against_both_labels(outputs, study):
    """``{name}__shifted`` scores the items of item_stats.mode_shift, the one shift set, in
    every condition: the same count everywhere, and both accuracies recomputed by hand."""
    stats = study["item_stats"].set_index("item_id")
    for source, condition in GRID.namespaces():
        preds = study[f"{source}.{condition}.test_predictions"]
        metrics = outputs[f"{source}.{condition}.metrics"].set_index("seed")
        for seed, run in preds.groupby("seed"):
            info = stats.loc[run["item_id"]]
            shifted = info["mode_shift"].to_numpy(bool)
            assert 0 < shifted.sum() < len(run)
            top = run[[f"p_{k}" for k in range(10)]].to_numpy().argmax(1)[shifted]
            row = metrics.loc[seed]
            assert row["n_items__shifted"] == shifted.sum()
            assert row["accuracy__shifted"] == pytest.approx(
                (top == info["original_label"].to_numpy()[shifted]).mean()
            )
            assert row["accuracy_human_mode__shifted"] == pytest.approx(
                (top == info["human_mode"].to_numpy()[shifted]).mean()
            )
