"""One MLflow record per study, however its stages are run: ``kedro run --env test`` stage by
stage in a fresh copy of the project, through the command line; the comparison notebook
executed on it (after a partial training run and after the full study); a logged model loaded
back that reproduces its test predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.targets import builder_for
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, data_root, kedro_cli, make_project_copy, training_inputs

pytestmark = pytest.mark.slow

NOTEBOOK = PROJECT_ROOT / "notebooks" / "compare_conditions.ipynb"
EXPERIMENT = "soft_label_audit_test"


def _client(project: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _runs(project: Path) -> list:
    client = _client(project)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], max_results=1000)


def _stage(project: Path, *args: str) -> None:
    result = kedro_cli(project, "run", "--env", "test", *args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _cells(project: Path) -> list[tuple[str, str, int]]:
    from soft_label_audit.study_record import study_cells

    return study_cells(config_loader(project)["parameters"])


def run_notebook(project: Path, monkeypatch) -> dict:
    """Execute the notebook's code cells in order, in ``project`` with ``KEDRO_ENV=test``, as
    Jupyter would (one namespace); returns the namespace. The notebook's session is closed and
    MLflow's tracking URI restored, even when a cell raises."""
    import mlflow

    cells = [
        "".join(c["source"])
        for c in json.loads(NOTEBOOK.read_text())["cells"]
        if c["cell_type"] == "code"
    ]
    monkeypatch.chdir(project)
    monkeypatch.setenv("KEDRO_ENV", "test")
    namespace: dict = {}
    uri = mlflow.get_tracking_uri()
    try:
        for i, source in enumerate(cells):
            exec(compile(source, f"{NOTEBOOK.name}, code cell {i + 1}", "exec"), namespace)
    finally:
        if "session" in namespace:
            namespace["session"].close()
        mlflow.set_tracking_uri(uri)
    return namespace


@pytest.fixture(scope="module")
def staged(tmp_path_factory, study_run, monkeypatch_module) -> dict:
    """A fresh project: a run that fails on a missing input; then, from the inputs of training
    made by the session's study run (digits, annotation and labels stages, as
    tests/test_dask_runner.py takes them), the stages one by one (the notebook executed after
    training), then a partial training run of one condition."""
    import shutil

    from soft_label_audit.study_record import IncompleteStudyRecordError

    project = make_project_copy(tmp_path_factory.mktemp("staged"))
    state: dict = {"project": project}
    failed = kedro_cli(project, "run", "--env", "test", "--pipeline", "evaluation")
    state["failed"] = (failed.returncode, failed.stdout + failed.stderr, _runs(project))
    for path in training_inputs(project, "training,evaluation,reporting"):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(study_run / path, project / path)
    # and the provenance of the stages that made them (soft_label_audit.provenance)
    (data_root(project) / "provenance").mkdir(exist_ok=True)
    for stage in ("digits", "annotation", "labels"):
        record = Path("provenance") / f"{stage}.json"
        shutil.copy(data_root(study_run) / record, data_root(project) / record)
    _stage(project, "--pipeline", "training")
    try:
        run_notebook(project, monkeypatch_module)
    except IncompleteStudyRecordError as error:
        state["notebook_after_training"] = error
    else:
        state["notebook_after_training"] = None
    _stage(project, "--pipeline", "evaluation")
    _stage(project, "--pipeline", "reporting")
    state["complete_runs"] = _runs(project)
    _stage(project, "--pipeline", "training", "--namespaces", "mnist.original_hard")
    return state


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_a_run_that_fails_on_a_missing_input_leaves_no_mlflow_run(staged):
    returncode, output, runs = staged["failed"]
    assert returncode == 2, output
    assert runs == []  # no FAILED parent, nothing to delete by hand


def test_stage_by_stage_each_seed_has_its_curves_and_test_metrics_in_one_child(staged):
    project = staged["project"]
    runs = staged["complete_runs"]
    parents = [r for r in runs if r.data.tags.get("soft_label_audit.parent_run") == "true"]
    children = [r for r in runs if r.data.tags.get("soft_label_audit.child_run") == "true"]
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["soft_label_audit.stages"] == "training,evaluation,reporting"
    assert parent.info.run_name.endswith(
        "| training+evaluation+reporting | env=test | annotation=simulated"
    )
    assert "mnist.human_soft.accuracy" in parent.data.metrics  # reporting's headline metrics
    cells = {
        (r.data.tags["source"], r.data.tags["condition"], int(r.data.tags["seed"]))
        for r in children
    }
    assert len(children) == len(cells) and cells == set(_cells(project))
    client = _client(project)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        source, condition, seed = (child.data.tags[k] for k in ("source", "condition", "seed"))
        assert child.info.run_name == f"{condition} · seed {seed} · {source}"
        metrics = set(child.data.metrics)
        # headline test metrics, curves and training time; the long tail is a table
        assert {"accuracy", "nll", "brier", "ece_15", "kl_human"} <= metrics, metrics
        assert {"train_loss", "val_loss", "val_acc"} <= metrics, metrics
        # a post-hoc condition trains nothing: it logs the time of its rescaling instead
        post_hoc = builder_for(condition).post_hoc_of is not None
        assert ("post_hoc_seconds" if post_hoc else "train_seconds") in metrics, metrics
        # the pool's and the final epoch's headline four and the best epoch are metrics too
        assert {"best_epoch", "pool__nll", "final__nll", "final__ece_15"} <= metrics, metrics
        assert len(metrics) < 30, sorted(metrics)
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")] == [1, 2]
    some = children[0]
    artifacts = {a.path for a in client.list_artifacts(some.info.run_id)}
    assert {"figures", "test_metrics.json"} <= artifacts, artifacts
    table = json.loads(
        Path(client.download_artifacts(some.info.run_id, "test_metrics.json")).read_text()
    )
    assert table["columns"] == ["metric", "value"]
    assert "ece_15__band_high" in {metric for metric, _ in table["data"]}


def test_a_partial_training_run_joins_the_record_without_duplicating_curves(staged):
    before = {r.info.run_id for r in staged["complete_runs"]}
    runs = _runs(staged["project"])
    assert {r.info.run_id for r in runs} == before  # no new parent, no new child
    client = _client(staged["project"])
    rerun = next(
        r
        for r in runs
        if r.data.tags.get("condition") == "original_hard" and r.data.tags["source"] == "mnist"
    )
    assert len(client.get_metric_history(rerun.info.run_id, "val_loss")) == 2  # 2 epochs, once


def test_the_notebook_says_plainly_when_no_record_is_complete(staged):
    error = staged["notebook_after_training"]
    assert error is not None, "the notebook ran on a record without test metrics"
    message = str(error)
    assert "no complete study record" in message
    assert f"test metrics for {len(_cells(staged['project']))} of" in message
    assert "kedro run --env test --pipeline evaluation" in message


def test_the_notebook_runs_on_the_study_record_after_a_partial_training_run(staged, monkeypatch):
    namespace = run_notebook(staged["project"], monkeypatch)
    record, table = namespace["record"], namespace["side_by_side"]
    assert len(record.children) == len(_cells(staged["project"]))
    assert table["ece_15"].notna().all() and table["nll"].notna().all()
    # a record chosen by id: an incomplete one is refused, with what it lacks
    import mlflow

    from soft_label_audit.study_record import IncompleteStudyRecordError, read_study_record

    client = _client(staged["project"])
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    other = client.create_run(experiment, tags={"soft_label_audit.parent_run": "true"})
    uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{staged['project'] / 'mlflow.db'}")
    try:
        with pytest.raises(IncompleteStudyRecordError, match="the chosen study record .* lacks"):
            read_study_record(EXPERIMENT, _cells(staged["project"]), run_id=other.info.run_id)
    finally:
        client.delete_run(other.info.run_id)
        mlflow.set_tracking_uri(uri)


def test_a_logged_model_reproduces_its_final_epoch_test_predictions(staged):
    """The logged model holds the final weights: it reproduces the final epoch's predictions
    (``final_predictions``, scope test); ``test_predictions`` are the best epoch's."""
    import mlflow.pytorch
    import torch

    from soft_label_audit import run_tables
    from soft_label_audit.data_sources.tables import images_from_column

    project = staged["project"]
    root = data_root(project)
    study_digits = pd.read_parquet(root / "03_primary" / "study_digits.parquet")
    client = _client(project)
    children = [
        r for r in _runs(project) if r.data.tags.get("soft_label_audit.child_run") == "true"
    ]
    child = next(r for r in children if r.data.tags["condition"] == "human_soft")
    source, condition, seed = (child.data.tags[k] for k in ("source", "condition", "seed"))
    targets = pd.read_parquet(root / "05_model_input" / "targets" / source / f"{condition}.parquet")
    _, _, test = run_tables.condition_splits(targets, study_digits, source, condition)
    uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        model = mlflow.pytorch.load_model(
            f"runs:/{child.info.run_id}/model", dst_path=str(project / "loaded_model")
        )
    finally:
        mlflow.set_tracking_uri(uri)
    from soft_label_audit.trainer.model import images_to_tensor

    with torch.no_grad():
        probs = torch.softmax(model(images_to_tensor(images_from_column(test["image"]))), -1)
    preds = pd.read_parquet(
        root / "07_model_output" / source / condition / "final_predictions.parquet"
    )
    preds = preds[preds["scope"] == "test"]
    mine = preds[preds["seed"] == int(seed)].sort_values("item_id")
    assert mine["item_id"].tolist() == test["item_id"].tolist()
    expected = mine[[f"p_{k}" for k in range(10)]].to_numpy()
    assert np.abs(probs.numpy() - expected).max() < 1e-5
    assert client.get_run(child.info.run_id).data.tags["soft_label_audit.logged.weights"] == "true"
