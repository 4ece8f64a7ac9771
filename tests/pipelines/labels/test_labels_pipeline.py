"""The `labels` pipeline in memory on small study tables: wiring, contracts, the teacher."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit import targets as tg
from soft_label_audit.columns import T_COLS
from soft_label_audit.grid import StudyGrid
from soft_label_audit.pipelines.labels import create_pipeline, nodes
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, run_in_memory
from tests.pipelines.labels.study_tables import N_POOL, small_study

CONDITIONS = tuple(tg.BUILDERS)
GRID = StudyGrid(("mnist", "synthetic"), CONDITIONS)


@pytest.fixture(scope="module")
def tables(mnist_arrays):
    return small_study(mnist_arrays)


@pytest.fixture(scope="module")
def labels_params():
    return dict(config_loader(PROJECT_ROOT, "test")["parameters"])["labels"]


@pytest.fixture(scope="module")
def outputs(tables, labels_params):
    inputs = {**tables, "params:labels": labels_params}
    return run_in_memory(create_pipeline(grid=GRID), inputs)


def test_one_namespace_per_source_and_condition():
    pipe = create_pipeline(grid=GRID)
    namespaces = {n.namespace for n in pipe.nodes if n.namespace}
    assert namespaces == {f"{s}.{c}" for s, c in GRID.namespaces()}
    assert {"study_digits", "human_soft_labels", "item_stats", "digits", "params:labels"} == pipe.inputs()
    # only machine_soft reads the teacher
    readers = {n.namespace for n in pipe.nodes if "teacher_logits" in n.inputs}
    assert readers == {f"{s}.machine_soft" for s in GRID.sources}


def test_no_teacher_without_a_condition_that_needs_it():
    pipe = create_pipeline(grid=StudyGrid(("mnist",), ("original_hard", "human_soft")))
    assert "digits" not in pipe.inputs() and len(pipe.nodes) == 2


def test_targets_tables_follow_the_contract(outputs, tables):
    study = tables["study_digits"]
    for source, condition in GRID.namespaces():
        t = outputs[f"{source}.{condition}.targets"]
        assert list(t.columns) == ["item_id", "split", *T_COLS]
        expected = study.loc[study["source"] == source, ["item_id", "split"]]
        assert t[["item_id", "split"]].reset_index(drop=True).equals(expected.reset_index(drop=True))
        np.testing.assert_allclose(t[list(T_COLS)].sum(axis=1), 1.0, atol=1e-9)


def test_entropy_matching_per_source(outputs):
    for source in GRID.sources:
        human = tg.entropy(outputs[f"{source}.human_soft.targets"][list(T_COLS)].to_numpy()).mean()
        smooth = tg.entropy(outputs[f"{source}.label_smoothing_matched.targets"][list(T_COLS)].to_numpy()).mean()
        assert smooth == pytest.approx(human, rel=0.01)
    machine = tg.entropy(outputs["mnist.machine_soft.targets"][list(T_COLS)].to_numpy()).mean()
    human = tg.entropy(outputs["mnist.human_soft.targets"][list(T_COLS)].to_numpy()).mean()
    assert machine == pytest.approx(human, rel=0.01)


def test_synthetic_machine_soft_is_the_generator_label(outputs, tables):
    study = tables["study_digits"]
    synthetic = study[study["source"] == "synthetic"]
    t = outputs["synthetic.machine_soft.targets"][list(T_COLS)].to_numpy()
    np.testing.assert_allclose(t, np.stack(synthetic["machine_soft_label"].to_list()), atol=1e-12)


def test_teacher_sees_no_study_item(tables, labels_params, monkeypatch):
    seen = {}

    def fake_train_teacher(images, labels, *args, **kwargs):
        seen["images"], seen["labels"] = images, labels
        raise RuntimeError("stop here")

    monkeypatch.setattr(nodes, "train_teacher", fake_train_teacher)
    with pytest.raises(RuntimeError, match="stop here"):
        nodes.fit_teacher(tables["digits"], tables["study_digits"], labels_params)
    n_study_mnist = (tables["study_digits"]["source"] == "mnist").sum()
    assert len(seen["images"]) == N_POOL - n_study_mnist
    study_images = {bytes(b) for b in tables["study_digits"]["image"]}
    assert not study_images & {im.tobytes() for im in seen["images"]}


def test_teacher_outputs(outputs, tables):
    logits = outputs["teacher_logits"]
    mnist_ids = tables["study_digits"].loc[lambda d: d["source"] == "mnist", "item_id"]
    assert sorted(logits["item_id"]) == sorted(mnist_ids)
    assert outputs["teacher_model"]["val_acc"] > 0.3


def test_missing_human_labels_stop_the_run(tables, labels_params):
    human = tables["human_soft_labels"].iloc[3:]
    with pytest.raises(ValueError, match="human_soft_labels lacks 3 study items"):
        nodes.build_condition_targets(tables["study_digits"], human, tables["item_stats"], labels_params,
                                      source="mnist", condition="human_soft")


def test_condition_without_a_recipe_is_refused(tables, labels_params):
    params = {**labels_params, "conditions": {}}
    with pytest.raises(KeyError, match="labels.conditions has no entry"):
        nodes.build_condition_targets(tables["study_digits"], tables["human_soft_labels"], tables["item_stats"], params,
                                      source="mnist", condition="human_soft")


def test_a_source_without_test_items_stops_before_training(tables, labels_params):
    study = tables["study_digits"].copy()
    study.loc[(study["source"] == "synthetic") & (study["split"] == "test"), "split"] = "train"
    with pytest.raises(ValueError, match="no test items of source 'synthetic'"):
        nodes.build_condition_targets(study, tables["human_soft_labels"], tables["item_stats"], labels_params,
                                      source="synthetic", condition="human_soft")
