"""The `training` pipeline in memory on small targets: wiring, the output contracts, paired runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import P_COLS
from soft_label_audit.contracts import check_table
from soft_label_audit.data_sources.tables import images_from_column
from soft_label_audit.grid import StudyGrid
from soft_label_audit.pipelines.training import create_pipeline
from soft_label_audit.trainer import CURVE_NAMES, batch_orders
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, run_in_memory
from tests.pipelines.labels.study_tables import pool_for, small_study, targets_for

GRID = StudyGrid(("mnist", "synthetic"), ("original_hard", "human_soft"))


@pytest.fixture(scope="module")
def tables(mnist_arrays):
    return small_study(mnist_arrays)


@pytest.fixture(scope="module")
def params():
    return dict(config_loader(PROJECT_ROOT, "test")["parameters"])


@pytest.fixture(scope="module")
def targets(tables, params):
    return {
        f"{s}.{c}.targets": targets_for(tables, params["labels"], s, c)
        for s, c in GRID.namespaces()
    }


@pytest.fixture(scope="module")
def outputs(tables, targets, params):
    inputs = {
        **targets,
        "study_digits": tables["study_digits"],
        "pool_digits": pool_for(tables),
        "item_stats": tables["item_stats"],
        "params:training": params["training"],
    }
    return run_in_memory(create_pipeline(grid=GRID), inputs)


def test_one_namespace_per_source_and_condition():
    pipe = create_pipeline(grid=GRID)
    # each run in its namespace; each source gathers its runs' weights in its own
    assert {n.namespace for n in pipe.nodes} == {f"{s}.{c}" for s, c in GRID.namespaces()} | set(
        GRID.sources
    )
    assert pipe.inputs() == {"study_digits", "pool_digits", "item_stats", "params:training"} | {
        f"{s}.{c}.targets" for s, c in GRID.namespaces()
    }
    assert pipe.outputs() == {
        f"{s}.{c}.{kind}"
        for s, c in GRID.namespaces()
        for kind in (
            "test_predictions",
            "pool_predictions",
            "final_predictions",
            "curves",
            "dynamics",
        )
    } | {f"{s}.weights_of_conditions" for s in GRID.sources}


def test_outputs_follow_the_contracts(outputs, tables, params):
    seeds = params["training"]["seeds"]
    epochs = params["training"]["epochs"]
    study = tables["study_digits"]
    for source, condition in GRID.namespaces():
        items = study[study["source"] == source]
        test_ids = np.sort(items.loc[items["split"] == "test", "item_id"].to_numpy())
        train_ids = np.sort(items.loc[items["split"] == "train", "item_id"].to_numpy())

        preds = outputs[f"{source}.{condition}.test_predictions"]
        assert list(preds.columns) == ["source", "condition", "seed", "item_id", *P_COLS]
        assert len(preds) == len(seeds) * len(test_ids)
        assert set(preds["source"]) == {source} and set(preds["condition"]) == {condition}
        for seed in seeds:
            np.testing.assert_array_equal(preds.loc[preds["seed"] == seed, "item_id"], test_ids)
        np.testing.assert_allclose(preds[list(P_COLS)].sum(axis=1), 1.0, atol=1e-5)
        check_table(f"{source}.{condition}.test_predictions", preds)

        pool = outputs[f"{source}.{condition}.pool_predictions"]
        check_table(f"{source}.{condition}.pool_predictions", pool)
        assert list(pool.columns) == list(preds.columns)
        pool_ids = np.sort(pool_for(tables).query("source == @source")["item_id"].to_numpy())
        assert len(pool) == len(seeds) * len(pool_ids)  # synthetic: no pool items, no rows
        for seed in seeds:
            np.testing.assert_array_equal(pool.loc[pool["seed"] == seed, "item_id"], pool_ids)

        final = outputs[f"{source}.{condition}.final_predictions"]
        check_table(f"{source}.{condition}.final_predictions", final)
        assert list(final.columns) == ["source", "condition", "seed", "scope", "item_id", *P_COLS]
        assert (final["scope"] == "test").sum() == len(preds)
        assert (final["scope"] == "pool").sum() == len(pool)

        curves = outputs[f"{source}.{condition}.curves"]
        assert list(curves.columns) == [
            "source",
            "condition",
            "seed",
            "epoch",
            *CURVE_NAMES,
            "best_epoch",
            "val_loss_gain_last_fifth",
            "val_loss_converged",
            "temperature_best",
            "temperature_final",
        ]
        check_table(f"{source}.{condition}.curves", curves)
        # each run's post-hoc temperatures, fitted on its validation items
        for column in ("temperature_best", "temperature_final"):
            per_run = curves.groupby("seed")[column].nunique()
            assert (per_run == 1).all() and (curves[column] > 0).all(), column
        for seed, run in curves.groupby("seed"):
            best = int(run["val_loss"].to_numpy().argmin()) + 1
            assert set(run["best_epoch"]) == {best}, seed
        assert sorted(curves["epoch"].unique()) == list(range(1, epochs + 1))
        assert len(curves) == len(seeds) * epochs and curves[list(CURVE_NAMES)].notna().all().all()

        dyn = outputs[f"{source}.{condition}.dynamics"]
        np.testing.assert_array_equal(dyn["item_ids"], train_ids)
        np.testing.assert_array_equal(dyn["seeds"], seeds)
        assert (
            dyn["probs"].shape == (len(seeds), epochs, len(train_ids), 10)
            and dyn["probs"].dtype == np.float32
        )

        weights = outputs[f"{source}.{condition}.weights"]
        assert weights["seeds"] == seeds and len(weights["state_dicts"]) == len(seeds)


def test_conditions_are_paired_by_seed(outputs, params):
    """For each seed, the first batch of two conditions is predicted by the same initial weights."""
    batch = params["training"]["batch_size"]
    a, b = (outputs[f"mnist.{c}.dynamics"] for c in GRID.conditions)
    n = len(a["item_ids"])
    for k, seed in enumerate(a["seeds"]):
        first = batch_orders(int(seed), n, 1)[0, :batch]
        np.testing.assert_array_equal(a["probs"][k, 0, first], b["probs"][k, 0, first])
    assert not np.array_equal(
        a["probs"][0, -1], b["probs"][0, -1]
    )  # and then the targets make them differ


def test_the_tables_hold_the_best_and_the_final_epoch(tables, targets, params):
    """test_predictions and pool_predictions are the best epoch's; final_predictions the final
    epoch's, whose test scope the saved weights reproduce."""
    from soft_label_audit.pipelines.training.nodes import train_condition
    from soft_label_audit.trainer import ModelConfig, predict_logits

    pool = pool_for(tables)
    training = {
        **params["training"],
        "epochs": 4,
        "optimizer": {**params["training"]["optimizer"], "lr": 0.05},
    }  # overshoots: best epoch before the end
    preds, pool_preds, final, curves, _, weights = train_condition(
        targets["mnist.original_hard.targets"],
        tables["study_digits"],
        pool,
        training,
        tables["item_stats"],
        source="mnist",
        condition="original_hard",
    )
    model = ModelConfig.from_params(weights["model"])
    for k, seed in enumerate(weights["seeds"]):
        test_final = final[(final["scope"] == "test") & (final["seed"] == seed)]
        study = tables["study_digits"]
        test_items = study[(study["source"] == "mnist") & (study["split"] == "test")]
        test_items = test_items.sort_values("item_id")
        np.testing.assert_array_equal(test_final["item_id"], test_items["item_id"])
        logits = predict_logits(
            weights["state_dicts"][k], model, images_from_column(test_items["image"]), "cpu"
        )
        z = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(
            test_final[list(P_COLS)].to_numpy(), z / z.sum(1, keepdims=True), atol=1e-5
        )
        best = int(curves.loc[curves["seed"] == seed, "best_epoch"].iloc[0])
        same = np.allclose(
            preds.loc[preds["seed"] == seed, list(P_COLS)].to_numpy(),
            test_final[list(P_COLS)].to_numpy(),
        )
        assert same == (best == training["epochs"]), (seed, best)
        pool_final = final[(final["scope"] == "pool") & (final["seed"] == seed)]
        pool_best = pool_preds[pool_preds["seed"] == seed]
        np.testing.assert_array_equal(pool_final["item_id"], pool_best["item_id"])
        assert np.allclose(
            pool_best[list(P_COLS)].to_numpy(), pool_final[list(P_COLS)].to_numpy()
        ) == (best == training["epochs"])
    assert (curves["best_epoch"] < training["epochs"]).any(), curves["best_epoch"].unique()


def test_an_empty_pool_gives_empty_pool_tables(tables, targets, params):
    from soft_label_audit.pipelines.training.nodes import train_condition

    empty = pool_for(tables).iloc[:0]
    _, pool_preds, final, *_ = train_condition(
        targets["synthetic.human_soft.targets"],
        tables["study_digits"],
        empty,
        {**params["training"], "epochs": 1},
        tables["item_stats"],
        source="synthetic",
        condition="human_soft",
    )
    assert pool_preds.empty and list(pool_preds.columns)[:4] == [
        "source",
        "condition",
        "seed",
        "item_id",
    ]
    check_table("synthetic.human_soft.pool_predictions", pool_preds)
    assert set(final["scope"]) == {"test"}
    assert isinstance(final, pd.DataFrame)
