"""The `training` pipeline in memory on small targets: wiring, the output contracts, paired runs."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit.columns import P_COLS
from soft_label_audit.grid import StudyGrid
from soft_label_audit.pipelines.training import create_pipeline
from soft_label_audit.trainer import CURVE_NAMES, batch_orders
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, run_in_memory
from tests.pipelines.labels.study_tables import small_study, targets_for

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
    assert pipe.inputs() == {"study_digits", "item_stats", "params:training"} | {
        f"{s}.{c}.targets" for s, c in GRID.namespaces()
    }
    assert pipe.outputs() == {
        f"{s}.{c}.{kind}"
        for s, c in GRID.namespaces()
        for kind in ("test_predictions", "curves", "dynamics")
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

        curves = outputs[f"{source}.{condition}.curves"]
        assert list(curves.columns) == [
            "source",
            "condition",
            "seed",
            "epoch",
            *CURVE_NAMES,
            "train_loss_change_last_fifth",
            "train_loss_levelled",
        ]
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
