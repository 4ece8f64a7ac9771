"""The study on a real Dask ``LocalCluster`` (2 worker processes) through ``DaskRunner``.

``kedro run --env test --pipelines training,evaluation --namespaces <two cells> --runner
soft_label_audit.runner.DaskRunner``, in a copy of the project that holds the sequential run's
training inputs (study digits, item stats, human soft labels, targets), must give that run's
test predictions and per-run metrics bit for bit and one MLflow child run per (source,
condition, seed) of those cells under its own parent run. Two cells (one per source, one hard
and one soft condition) run on the cluster: every cell's nodes are of the same kinds, and the
whole grid on the cluster would train the test study a third time in the suite. The stages
before training are not run again on the cluster: they make no child runs and train nothing,
and the sequential run already made their outputs (their determinism is checked by
tests/test_fingerprints.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.pipeline import Pipeline

from tests.helpers import config_loader, data_root, kedro_cli, make_project_copy, training_inputs

RUNNER = "soft_label_audit.runner.DaskRunner"
#: the stages that train and score; their inputs come from the sequential run
PIPELINES = "training,evaluation"
#: the cells trained on the cluster: one per source, a hard and a soft condition
CELLS = (("mnist", "original_hard"), ("synthetic", "human_soft"))


@pytest.fixture(scope="module")
def dask_run(tmp_path_factory, study_run) -> Path:
    import shutil

    project = make_project_copy(tmp_path_factory.mktemp("dask_project"))
    inputs = training_inputs(project, PIPELINES)
    assert any(path.match("05_model_input/targets/*/*.parquet") for path in inputs), inputs
    for path in inputs:
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(study_run / path, project / path)
    # and the provenance of the stages that made them (soft_label_audit.provenance)
    (data_root(project) / "provenance").mkdir()
    for stage in ("digits", "annotation", "labels"):
        record = Path("provenance") / f"{stage}.json"
        shutil.copy(data_root(study_run) / record, data_root(project) / record)
    result = kedro_cli(
        project,
        *("run", "--env", "test", "--pipelines", PIPELINES),
        *("--namespaces", ",".join(f"{source}.{condition}" for source, condition in CELLS)),
        *("--runner", RUNNER, "--runner-params", "n_workers=2"),
        timeout=1800,  # well under a minute on an idle 2-core machine; longer on a busy one
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # info.log keeps every record unwrapped (the terminal wraps them)
    assert "a LocalCluster of 2 worker processes" in (project / "info.log").read_text()
    return project


def _grid(project: Path):
    from soft_label_audit.grid import StudyGrid

    params = config_loader(project)["parameters"]
    return StudyGrid.from_params(params), [int(s) for s in params["training"]["seeds"]]


@pytest.mark.dask
@pytest.mark.slow
def test_dask_predictions_equal_the_sequential_run_bit_for_bit(dask_run, study_run):
    _, seeds = _grid(dask_run)
    for source, condition in CELLS:
        rel = Path("07_model_output", source, condition, "test_predictions.parquet")
        on_dask = pd.read_parquet(data_root(dask_run) / rel)
        sequential = pd.read_parquet(data_root(study_run) / rel)
        assert sorted(on_dask["seed"].unique()) == sorted(seeds)
        pd.testing.assert_frame_equal(on_dask, sequential, check_exact=True)
        p_cols = [c for c in on_dask.columns if c.startswith("p_")]
        assert np.array_equal(on_dask[p_cols].to_numpy(), sequential[p_cols].to_numpy()), (
            source,
            condition,
        )
        metrics = rel.with_name("metrics.csv")
        pd.testing.assert_frame_equal(
            pd.read_csv(data_root(dask_run) / metrics), pd.read_csv(data_root(study_run) / metrics)
        )


@pytest.mark.dask
@pytest.mark.slow
def test_dask_run_logs_every_child_run_under_its_parent(dask_run):
    import mlflow

    _, seeds = _grid(dask_run)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{dask_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(
        config_loader(dask_run)["globals"]["mlflow_experiment"]
    )
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("soft_label_audit.child_run") == "true"]
    parents = [r for r in runs if r.info.run_id not in {c.info.run_id for c in children}]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    cells = [
        (c.data.tags["source"], c.data.tags["condition"], int(c.data.tags["seed"]))
        for c in children
    ]
    assert sorted(cells) == sorted((s, c, seed) for s, c in CELLS for seed in seeds)
    for child in children:
        assert child.info.status == "FINISHED", child.info.run_name
        assert child.data.metrics, f"{child.info.run_name} has no metrics"
        assert any(a.path == "figures" for a in client.list_artifacts(child.info.run_id)), (
            child.info.run_name
        )
    # kedro-mlflow's parameter logging still reaches the parent run (its artifact datasets are
    # the reporting stage's: tests/test_study_record.py checks them)
    assert parents[0].data.params


def test_in_memory_datasets_without_the_exchange_pattern_are_refused():
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node

    from soft_label_audit.runner import DaskRunner, DaskRunnerError

    pipeline = Pipeline(
        [node(lambda x: x, "a", "b", name="one"), node(lambda x: x, "b", "c", name="two")]
    )
    catalog = DataCatalog({"a": MemoryDataset(1)})
    with pytest.raises(
        DaskRunnerError, match=r"other workers cannot read: \['b', 'c'\].*dask_exchange"
    ):
        DaskRunner(address="tcp://127.0.0.1:1").run(pipeline, catalog)


def test_in_memory_datasets_go_through_the_exchange_pattern(tmp_path):
    from kedro.io import DataCatalog, MemoryDataset

    from soft_label_audit.runner import EXCHANGE_PATTERN, DaskRunner

    config = {
        EXCHANGE_PATTERN: {"type": "pickle.PickleDataset", "filepath": f"{tmp_path}/{{name}}.pkl"}
    }
    catalog = DataCatalog.from_config(config)
    catalog["a"] = MemoryDataset(1)
    from kedro.pipeline import node

    pipeline = Pipeline([node(lambda x: x, "a", "b", name="one")])
    for name in pipeline.datasets():
        catalog.get(name, fallback_to_runtime_pattern=True)
    DaskRunner()._persist_memory_datasets(pipeline, catalog)
    assert type(catalog.get("b")).__name__ == "PickleDataset"
    assert Path(catalog.get("b")._describe()["filepath"]) == tmp_path / "b.pkl"
