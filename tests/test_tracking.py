"""The MLflow child-run hook against a temporary SQLite store."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from soft_label_audit.tracking import CHILD_TAG, PARENT_RUN_ENV, MlflowChildRunsHook  # noqa: E402
from tests.conftest import PROJECT_ROOT  # noqa: E402
from tests.helpers import config_loader  # noqa: E402

PARAMS = {
    "annotation": {"source": "simulated"},
    "study": {"sources": ["mnist", "synthetic"], "conditions": ["original_hard", "human_soft"]},
    "training": {
        "seeds": [0, 1],
        "epochs": 3,
        "batch_size": 32,
        "model": {"channels": [4, 8], "hidden": 16},
        "optimizer": {"name": "adam", "lr": 0.002},
    },
}


def _curves(source: str, condition: str) -> pd.DataFrame:
    rows = [
        {
            "source": source,
            "condition": condition,
            "seed": s,
            "epoch": e,
            "train_loss": 1.0 / e + s,
            "val_acc": 0.5 + 0.1 * e,
            "best_epoch": 3 - s,  # per run: logged with the metrics, not as a curve
            "val_loss_gain_last_fifth": 0.1,
            "val_loss_converged": False,
        }
        for s in (0, 1)
        for e in (1, 2, 3)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """One SQLite store for the module (creating one costs seconds); each test has its experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def store(database, request):
    old = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(database)
    experiment = mlflow.set_experiment(request.node.name)
    client = MlflowClient(database)
    client.experiment_id = experiment.experiment_id
    yield client
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(old)


def _hook() -> MlflowChildRunsHook:
    hook = MlflowChildRunsHook()
    hook.after_context_created(
        SimpleNamespace(config_loader={"parameters": PARAMS}, project_path=PROJECT_ROOT)
    )
    return hook


def _session(hook, node_outputs: list[dict], inputs: dict | None = None) -> str:
    with mlflow.start_run() as parent:
        hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
        for outputs in node_outputs:
            hook.after_node_run(node=None, catalog=None, inputs=inputs or {}, outputs=outputs)
        hook.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
    return parent.info.run_id


def test_one_child_run_per_source_condition_seed(store):
    hook = _hook()
    study_digits = pd.DataFrame({"item_id": [1], "annotation_source": ["released"]})
    outputs = [
        {f"{s}.{c}.curves": _curves(s, c), f"{s}.{c}.test_predictions": pd.DataFrame()}
        for s in PARAMS["study"]["sources"]
        for c in PARAMS["study"]["conditions"]
    ]
    parent_id = _session(hook, outputs, inputs={"study_digits": study_digits})

    exp = store.experiment_id
    children = store.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert len(children) == 2 * 2 * 2
    keys = {
        (r.data.tags["source"], r.data.tags["condition"], r.data.tags["seed"]) for r in children
    }
    assert keys == {
        (s, c, str(seed))
        for s in ("mnist", "synthetic")
        for c in ("original_hard", "human_soft")
        for seed in (0, 1)
    }
    run = next(
        r
        for r in children
        if r.data.tags["source"] == "mnist"
        and r.data.tags["condition"] == "human_soft"
        and r.data.tags["seed"] == "1"
    )
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "human_soft · seed 1 · mnist"  # the condition first
    assert run.data.tags["soft_label_audit.logged.curves"] == "true"
    assert run.data.tags["annotation_source"] == "released"
    assert run.data.tags[CHILD_TAG] == "true"
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    assert run.data.params["training.optimizer.lr"] == "0.002"
    assert run.data.params["training.model.channels"] == "[4, 8]"
    assert run.data.params["condition"] == "human_soft" and run.data.params["seed"] == "1"
    history = store.get_metric_history(run.info.run_id, "train_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 1.5), (3, 1.0 + 1.0 / 3)]
    assert "seed" not in run.data.metrics and "epoch" not in run.data.metrics


def test_metrics_and_figures_land_in_the_same_child_runs(store):
    hook = _hook()
    metrics = pd.DataFrame(
        {
            "source": "mnist",
            "condition": "human_soft",
            "seed": [0, 1],
            "accuracy": [0.9, 0.8],
            "ece_15": [0.05, float("nan")],
            "ece_15__band_high": [0.3, 0.4],
            "pool__accuracy": [0.85, 0.75],
            "final__nll": [0.4, 0.5],
            "final__pool__ece_15": [0.02, 0.03],
            "best_epoch": [3, 2],
        }
    )
    figure = plt.figure()
    figures = {"reliability": figure, "seed1/cartography": plt.figure()}
    parent_id = _session(
        hook,
        [
            {"mnist.human_soft.curves": _curves("mnist", "human_soft")},
            {"mnist.human_soft.metrics": metrics},
            {"mnist.human_soft.figures": figures},
        ],
    )
    plt.close("all")
    exp = store.experiment_id
    children = store.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert len(children) == 2
    by_seed = {r.data.tags["seed"]: r for r in children}
    assert by_seed["0"].data.metrics["accuracy"] == pytest.approx(0.9)
    assert by_seed["0"].data.metrics["ece_15"] == pytest.approx(0.05)
    assert "ece_15" not in by_seed["1"].data.metrics  # a NaN metric is not logged
    # the long tail is a logged table, not metrics
    assert "ece_15__band_high" not in by_seed["0"].data.metrics
    table = mlflow.load_table("test_metrics.json", run_ids=[by_seed["1"].info.run_id])
    assert dict(zip(table["metric"], table["value"])) == {
        "ece_15__band_high": 0.4,
        "final__pool__ece_15": 0.03,
    }
    # the pool's and the final epoch's headline metrics and the best epoch are metrics
    assert by_seed["1"].data.metrics["pool__accuracy"] == pytest.approx(0.75)
    assert by_seed["1"].data.metrics["final__nll"] == pytest.approx(0.5)
    assert by_seed["1"].data.metrics["best_epoch"] == 2
    history = store.get_metric_history(by_seed["1"].info.run_id, "best_epoch")
    assert [m.step for m in history] == [0]  # once, from the metrics: not a curve per epoch
    assert not store.get_metric_history(by_seed["1"].info.run_id, "val_loss_gain_last_fifth")
    assert "val_acc" in by_seed["1"].data.metrics  # from the curves of the same run
    art0 = {a.path for a in store.list_artifacts(by_seed["0"].info.run_id, "figures")}
    art1 = {a.path for a in store.list_artifacts(by_seed["1"].info.run_id, "figures")}
    assert art0 == {"figures/reliability.png"}
    assert art1 == {"figures/reliability.png", "figures/cartography.png"}


def _children(store, parent_id: str) -> list:
    return store.search_runs(
        [store.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'"
    )


def test_consecutive_runs_log_complete_children_under_their_own_parent(store):
    """A second run (another env, a partial rerun) never writes into the first run's children."""
    first = _session(_hook(), [{"mnist.human_soft.curves": _curves("mnist", "human_soft")}])
    second_curves = _curves("mnist", "human_soft").assign(val_acc=0.111)
    second = _session(
        _hook(),
        [
            {"mnist.human_soft.curves": second_curves},
            {"mnist.human_soft.metrics": pd.DataFrame({"seed": [0, 1], "accuracy": [0.7, 0.6]})},
        ],
    )
    assert first != second
    old, new = _children(store, first), _children(store, second)
    assert len(old) == len(new) == 2
    for run in old:
        assert (
            run.data.metrics["val_acc"] == pytest.approx(0.8) and "accuracy" not in run.data.metrics
        )
        assert len(store.get_metric_history(run.info.run_id, "val_acc")) == 3  # 3 epochs, 3 points
    assert {r.data.metrics["accuracy"] for r in new} == {0.7, 0.6}
    assert all(r.data.metrics["val_acc"] == pytest.approx(0.111) for r in new)


def test_resuming_a_parent_run_on_request_joins_its_children(store):
    first = _session(_hook(), [{"mnist.human_soft.curves": _curves("mnist", "human_soft")}])
    hook = _hook()
    with mlflow.start_run(run_id=first):  # what MLFLOW_RUN_ID=<first> kedro run does
        hook.before_pipeline_run(
            run_params={"pipeline_names": ["evaluation"]}, pipeline=None, catalog=None
        )
        hook.after_node_run(
            node=None,
            catalog=None,
            inputs={},
            outputs={
                "mnist.human_soft.metrics": pd.DataFrame({"seed": [0, 1], "accuracy": [0.7, 0.6]})
            },
        )
        hook.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
    runs = _children(store, first)
    assert len(runs) == 2
    assert {r.data.metrics["accuracy"] for r in runs} == {0.7, 0.6}
    assert all("train_loss" in r.data.metrics for r in runs)
    # the record's name lists what was run into it
    assert " | __default__+evaluation | env=base" in store.get_run(first).info.run_name


def test_parent_run_is_named_tagged_and_gets_the_headline_metrics(store):
    hook = _hook()
    summary = pd.DataFrame(
        {
            "source": ["mnist"],
            "condition": ["human_soft"],
            "n_seeds": [2],
            "accuracy__mean": [0.91],
            "accuracy__std": [0.01],
            "ece_15__mean": [0.04],
        }
    )
    with mlflow.start_run() as parent:
        hook.before_pipeline_run(
            run_params={"pipeline_names": ["training", "evaluation"], "env": "test"},
            pipeline=None,
            catalog=None,
        )
        hook.after_node_run(node=None, catalog=None, inputs={}, outputs={"study_summary": summary})
        hook.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
    run = store.get_run(parent.info.run_id)
    # created when (local time, to the minute), at which commit, what ran, where, on which votes
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d [0-9a-f]{7} \| training\+evaluation \| env=test"
        r" \| annotation=simulated",
        run.info.run_name,
    ), run.info.run_name
    assert run.data.metrics == {"mnist.human_soft.accuracy": 0.91, "mnist.human_soft.ece_15": 0.04}
    experiment = store.get_experiment(store.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_failed_run_leaves_no_half_logged_children(store):
    hook = _hook()
    with mlflow.start_run() as parent:
        hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
        hook.after_node_run(
            node=None,
            catalog=None,
            inputs={},
            outputs={"mnist.human_soft.curves": _curves("mnist", "human_soft")},
        )
        hook.on_pipeline_error(
            error=RuntimeError("boom"), run_params={}, pipeline=None, catalog=None
        )
        mlflow.end_run("FAILED")  # kedro-mlflow's on_pipeline_error does this for the parent
    assert _children(store, parent.info.run_id) == []
    assert store.get_run(parent.info.run_id).info.status == "FAILED"
    assert PARENT_RUN_ENV not in os.environ


def test_a_worker_without_an_active_run_logs_under_the_parent_given_by_environment(
    store, monkeypatch
):
    """A distributed runner's worker: no active run, no before_pipeline_run; the parent id comes
    from SOFT_LABEL_AUDIT_MLFLOW_PARENT_RUN_ID, and the session closes the worker's children."""
    session = _hook()
    with mlflow.start_run() as parent:
        session.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
        assert os.environ[PARENT_RUN_ENV] == parent.info.run_id
        worker_env = dict(os.environ)
        with monkeypatch.context() as m:  # the worker's process: same variables, no active run
            m.setattr(mlflow, "active_run", lambda: None)
            m.setattr(os, "environ", worker_env)
            _hook().after_node_run(
                node=None,
                catalog=None,
                inputs={},
                outputs={"mnist.human_soft.curves": _curves("mnist", "human_soft")},
            )
        session.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
    children = _children(store, parent.info.run_id)
    assert len(children) == 2
    assert {r.info.status for r in children} == {"FINISHED"}


def test_nothing_is_logged_without_a_parent_run(store):
    hook = _hook()
    hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    hook.after_node_run(
        node=None,
        catalog=None,
        inputs={},
        outputs={"mnist.human_soft.curves": _curves("mnist", "human_soft")},
    )
    hook.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
    exp = store.experiment_id
    assert store.search_runs([exp]) == []


def test_outputs_outside_the_grid_are_ignored(store):
    hook = _hook()
    parent_id = _session(
        hook,
        [
            {
                "other.thing.curves": _curves("other", "thing"),
                "mnist.human_soft.targets": pd.DataFrame(),
            }
        ],
    )
    exp = store.experiment_id
    assert (
        store.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'") == []
    )


# ---------------------------------------------------------------------- the study record


def _stage_hook(experiment: str, params: dict | None = None, data_root: str = "data/test"):
    """A hook with the context of a ``kedro run``: its parameters, globals and the part of
    kedro-mlflow's configuration (``context.mlflow``) that says which run to open."""
    config = SimpleNamespace(
        tracking=SimpleNamespace(
            run=SimpleNamespace(id=None), experiment=SimpleNamespace(name=experiment)
        )
    )
    context = SimpleNamespace(
        config_loader={"parameters": params or PARAMS, "globals": {"data_root": data_root}},
        project_path=PROJECT_ROOT,
        mlflow=config,
    )
    hook = MlflowChildRunsHook()
    hook.after_context_created(context)
    return hook, config


def _stage(
    store, node_outputs: list[dict], pipeline: str, params=None, data_root="data/test", error=None
):
    """One ``kedro run --pipeline PIPELINE``: the hook's lookup, then kedro-mlflow's start of
    the run it was handed (``tracking.run.id``), then the nodes; returns the parent run id."""
    experiment = store.get_experiment(store.experiment_id).name
    hook, config = _stage_hook(experiment, params, data_root)
    run_params = {"pipeline_names": [pipeline], "env": "test"}
    hook.open_study_record(run_params=run_params)
    with mlflow.start_run(run_id=config.tracking.run.id) as parent:  # what kedro-mlflow does
        hook.before_pipeline_run(run_params=run_params, pipeline=None, catalog=None)
        for outputs in node_outputs:
            hook.after_node_run(node=None, catalog=None, inputs={}, outputs=outputs)
        if error is None:
            hook.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
        else:
            mlflow.end_run("FAILED")  # kedro-mlflow's on_pipeline_error runs first
            hook.on_pipeline_error(error=error, run_params={}, pipeline=None, catalog=None)
    return parent.info.run_id


def _metrics_frame(accuracy=(0.7, 0.6)) -> pd.DataFrame:
    return pd.DataFrame({"seed": [0, 1], "accuracy": list(accuracy), "nll__band_low": [1.0, 2.0]})


def test_the_study_record_key_follows_the_study_inputs_only():
    from soft_label_audit.tracking import study_record_key

    key = study_record_key(PARAMS, "data/test")
    assert key == study_record_key({**PARAMS, "evaluation": {"n_bins": 10}}, "data/test")
    assert key != study_record_key(PARAMS, "data")
    assert key != study_record_key({**PARAMS, "annotation": {"source": "released"}}, "data/test")
    other = {**PARAMS, "training": {**PARAMS["training"], "epochs": 4}}
    assert key != study_record_key(other, "data/test")


def test_stage_runs_one_by_one_log_into_one_study_record(store):
    curves = {"mnist.human_soft.curves": _curves("mnist", "human_soft")}
    first = _stage(store, [], "digits")
    training = _stage(store, [curves], "training")
    evaluation = _stage(store, [{"mnist.human_soft.metrics": _metrics_frame()}], "evaluation")
    assert first == training == evaluation
    runs = _children(store, first)
    assert len(runs) == 2
    for run in runs:
        assert {"train_loss", "val_acc", "accuracy"} <= set(run.data.metrics)
        assert run.info.status == "FINISHED"
    parent = store.get_run(first)
    assert parent.data.tags["soft_label_audit.stages"] == "digits,training,evaluation"
    assert " | digits+training+evaluation | env=test | annotation=simulated" in (
        parent.info.run_name
    )
    assert parent.info.status == "FINISHED"
    # a rerun of training logs its (identical) curve points once
    assert _stage(store, [curves], "training") == first
    child = _children(store, first)[0]
    assert len(store.get_metric_history(child.info.run_id, "train_loss")) == 3
    # other settings or another data root: another record
    other = {**PARAMS, "training": {**PARAMS["training"], "epochs": 4}}
    assert _stage(store, [], "training", params=other) != first
    assert _stage(store, [], "training", data_root="data") != first


def test_an_explicit_run_id_wins_over_the_study_record(store, monkeypatch):
    first = _stage(store, [], "digits")
    hook, config = _stage_hook(store.get_experiment(store.experiment_id).name)
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123")
    hook.open_study_record(run_params={})
    assert config.tracking.run.id is None
    monkeypatch.delenv("MLFLOW_RUN_ID")
    hook.open_study_record(run_params={})
    assert config.tracking.run.id == first


def test_a_user_error_before_any_node_leaves_no_failed_parent(store):
    from soft_label_audit.errors import UserError

    failed = _stage(store, [], "evaluation", error=UserError("no such file", "run training"))
    assert store.get_run(failed).info.lifecycle_stage == "deleted"
    record = _stage(store, [], "digits")
    assert record != failed
    # in an existing record: the record keeps its status, and is still found
    again = _stage(store, [], "evaluation", error=UserError("no such file", "run training"))
    assert again == record
    assert store.get_run(record).info.status == "FINISHED"
    # a bug, or a user error after a node ran, leaves the FAILED parent to show
    bug = _stage(store, [], "digits", data_root="elsewhere", error=RuntimeError("bug"))
    assert store.get_run(bug).info.status == "FAILED"
    curves = {"mnist.human_soft.curves": _curves("mnist", "human_soft")}
    late = _stage(store, [curves], "training", data_root="other", error=UserError("bad"))
    assert store.get_run(late).info.lifecycle_stage == "active"
    assert _children(store, late) == []  # its half-logged children are gone


def test_training_time_is_logged_from_the_node_that_trained(store):
    hook = _hook()
    node = SimpleNamespace(name="mnist.human_soft.train")
    with mlflow.start_run() as parent:
        hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
        hook.before_node_run(node=node, catalog=None, inputs={})
        hook.after_node_run(
            node=node,
            catalog=None,
            inputs={},
            outputs={"mnist.human_soft.curves": _curves("mnist", "human_soft")},
        )
        hook.after_pipeline_run(run_params={}, run_result={}, pipeline=None, catalog=None)
    runs = _children(store, parent.info.run_id)
    assert len(runs) == 2
    assert all(0 <= r.data.metrics["train_seconds"] < 60 for r in runs)


def test_weights_are_logged_as_pytorch_models_that_load_back(store):
    import mlflow.pytorch
    import numpy as np
    import torch

    from soft_label_audit.trainer.model import ModelConfig, build_model

    config = ModelConfig((4, 8), 16)
    states = [
        {k: v.numpy() for k, v in build_model(config, seed).state_dict().items()} for seed in (0, 1)
    ]
    weights = {"model": config.settings(), "seeds": [0, 1], "state_dicts": states}
    parent_id = _session(_hook(), [{"mnist.human_soft.weights": weights}])
    by_seed = {r.data.tags["seed"]: r for r in _children(store, parent_id)}
    images = torch.rand(3, 1, 28, 28)
    for seed, state in zip(("0", "1"), states, strict=True):
        run = by_seed[seed]
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent_id
        model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
        expected = build_model(config, 99)
        expected.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        with torch.no_grad():
            assert np.array_equal(model(images).numpy(), expected(images).numpy())


def test_the_newest_complete_record_is_read_and_an_incomplete_one_is_explained(store):
    from soft_label_audit.study_record import IncompleteStudyRecordError, read_study_record

    experiment = store.get_experiment(store.experiment_id).name
    cells = [("mnist", "human_soft", 0), ("mnist", "human_soft", 1)]
    curves = {"mnist.human_soft.curves": _curves("mnist", "human_soft")}
    figures = {"mnist.human_soft.figures": {"overview": plt.figure()}}
    complete = _stage(
        store, [curves, {"mnist.human_soft.metrics": _metrics_frame()}, figures], "all"
    )
    plt.close("all")
    newer = _stage(store, [curves], "training", data_root="data/other")  # training only
    record = read_study_record(experiment, cells)
    assert record.run_id == complete and len(record.children) == 2
    assert set(record.children["metrics.accuracy"]) == {0.7, 0.6}
    with pytest.raises(IncompleteStudyRecordError) as chosen:
        read_study_record(experiment, cells, run_id=newer, env="test")
    message = str(chosen.value)
    assert "the chosen study record" in message and newer in message
    assert "test metrics for 2 of 2 runs, figures for 2 of 2 runs" in message
    assert "run `kedro run --env test --pipeline evaluation`" in message
    store.delete_run(complete)
    with pytest.raises(IncompleteStudyRecordError, match="no complete study record .* the newest"):
        read_study_record(experiment, cells)


def test_the_study_record_key_follows_the_provenance_of_the_trained_models():
    """With the provenance records a run's stages will have, the key is the training record's
    fingerprint (digits, annotation with its vote file, labels, training) and the data root."""
    from soft_label_audit import provenance
    from soft_label_audit.pipeline_registry import register_pipelines
    from soft_label_audit.tracking import study_record_key

    params = dict(config_loader(PROJECT_ROOT, "test")["parameters"])
    graph = provenance.stage_graph(register_pipelines())
    records = provenance.expected_records(graph, params)
    key = study_record_key(params, "data/test", records)
    assert key == study_record_key(params, "data/test", provenance.expected_records(graph, params))
    assert key != study_record_key(params, "data", records)
    other_votes = {**provenance.annotation_input(params), "sha256": "0" * 64}
    assert key != study_record_key(
        params, "data/test", provenance.expected_records(graph, params, other_votes)
    )
    evaluation = {**params, "evaluation": {**params["evaluation"], "n_bins": 10}}
    assert key == study_record_key(
        evaluation, "data/test", provenance.expected_records(graph, evaluation)
    )
