"""`kedro run --env test --pipeline training` through the command line, in a copy of the project,
on small inputs written where the catalog reads them; then the MLflow child runs in its store."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from soft_label_audit.grid import StudyGrid
from tests.helpers import (
    config_loader,
    data_root,
    kedro_cli,
    make_project_copy,
    write_provenance,
)
from tests.pipelines.labels.study_tables import pool_for, small_study, targets_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_arrays) -> Path:
    root = make_project_copy(tmp_path_factory.mktemp("training_project"))
    loader = config_loader(root)
    catalog, params = loader["catalog"], loader["parameters"]
    tables = small_study(mnist_arrays)
    grid = StudyGrid.from_params(params)
    _write(root / catalog["study_digits"]["filepath"], tables["study_digits"])
    _write(root / catalog["item_stats"]["filepath"], tables["item_stats"])
    _write(root / catalog["pool_digits"]["filepath"], pool_for(tables))
    pattern = catalog["{source}.{condition}.targets"]["filepath"]
    teacher_logits = _stand_in_teacher_logits(tables["study_digits"])
    for source, condition in grid.namespaces():
        targets = targets_for(tables, params["labels"], source, condition, teacher_logits)
        _write(root / pattern.format(source=source, condition=condition), targets)
    # the stand-ins take the place of the earlier stages' outputs: so do their records
    write_provenance(root, ["digits", "annotation", "labels"])
    return root


def _stand_in_teacher_logits(study: pd.DataFrame) -> pd.DataFrame:
    """Logits 4 * one-hot(original label) for every study item (the teacher is not under test here)."""
    logits = pd.DataFrame({"item_id": study["item_id"].to_numpy()})
    for k in range(10):
        logits[f"z_{k}"] = (study["original_label"].to_numpy() == k) * 4.0
    return logits


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


@pytest.fixture(scope="module")
def run(project) -> subprocess.CompletedProcess:
    done = kedro_cli(project, "run", "--env", "test", "--pipeline", "training")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def _grid_and_seeds(project: Path) -> tuple[StudyGrid, list[int]]:
    params = config_loader(project)["parameters"]
    return StudyGrid.from_params(params), list(params["training"]["seeds"])


def test_every_namespace_writes_its_outputs(project, run):
    grid, seeds = _grid_and_seeds(project)
    for source, condition in grid.namespaces():
        base = data_root(project) / "07_model_output" / source / condition
        preds = pd.read_parquet(base / "test_predictions.parquet")
        assert sorted(preds["seed"].unique()) == seeds
        for kind in ("pool_predictions", "final_predictions"):
            assert (base / f"{kind}.parquet").exists(), kind
        assert (base / "dynamics.pkl").exists() and (base / "curves.parquet").exists()
        assert (data_root(project) / "06_models" / source / condition / "weights.pkl").exists()


def test_mlflow_lists_one_child_run_per_source_condition_seed(project, run):
    grid, seeds = _grid_and_seeds(project)
    with sqlite3.connect(project / "mlflow.db") as db:
        parents = db.execute(
            "select run_uuid from runs where run_uuid not in "
            "(select run_uuid from tags where key = 'mlflow.parentRunId')"
        ).fetchall()
        children = db.execute(
            "select t1.value, t2.value, t3.value, t4.value from tags t1 "
            "join tags t2 on t1.run_uuid = t2.run_uuid and t2.key = 'condition' "
            "join tags t3 on t1.run_uuid = t3.run_uuid and t3.key = 'seed' "
            "join tags t4 on t1.run_uuid = t4.run_uuid and t4.key = 'mlflow.parentRunId' "
            "where t1.key = 'source'"
        ).fetchall()
        steps = db.execute(
            "select count(distinct step) from metrics where key = 'val_acc'"
        ).fetchone()[0]
    assert len(parents) == 1
    assert {p for *_, p in children} == {parents[0][0]}
    assert sorted((s, c, int(k)) for s, c, k, _ in children) == sorted(
        (s, c, k) for s, c in grid.namespaces() for k in seeds
    )
    assert steps == config_loader(project)["parameters"]["training"]["epochs"]
