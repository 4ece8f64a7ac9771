"""Shared fixtures: small slices of real MNIST, and the project's paths."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_raw_dir(tmp_path_factory) -> Path:
    """The four verified idx files, built from the offline package into a temporary folder.

    Reuses the project's data/01_raw copy when it is already there and verified.
    """
    from soft_label_audit.data_sources import mnist

    project_copy = PROJECT_ROOT / "data" / "01_raw" / "MNIST" / "raw"
    try:
        mnist.verify_idx_files(project_copy)
        return project_copy
    except mnist.MnistChecksumError:
        raw = tmp_path_factory.mktemp("mnist") / "MNIST" / "raw"
        mnist.ensure_idx_files(raw, "package")
        return raw


@pytest.fixture(scope="session")
def mnist_arrays(mnist_raw_dir) -> dict[str, np.ndarray]:
    from soft_label_audit.data_sources import mnist

    return mnist.load_idx_files(mnist_raw_dir)


@pytest.fixture(scope="session")
def small_mnist_raw(mnist_arrays) -> dict[str, np.ndarray]:
    """600 training and 200 test images of real MNIST, shaped like the `mnist_raw` dataset."""
    return {
        "train_images": mnist_arrays["train_images"][:600],
        "train_labels": mnist_arrays["train_labels"][:600],
        "test_images": mnist_arrays["test_images"][:200],
        "test_labels": mnist_arrays["test_labels"][:200],
    }


@pytest.fixture(scope="session")
def synthetic_study() -> dict:
    """The small synthetic study of tests/pipelines/evaluation/synthetic_study.py (read-only:
    shared by the evaluation, reporting and claims tests; copy a table before changing it)."""
    from tests.pipelines.evaluation.synthetic_study import make_study

    return make_study()


@pytest.fixture(scope="session")
def synthetic_evaluation(synthetic_study) -> dict:
    """Every dataset of the evaluation pipeline run in memory on ``synthetic_study`` (read-only,
    shared like it: the pipeline runs once for the three test modules that read its outputs)."""
    from soft_label_audit.pipelines import evaluation
    from tests.helpers import run_in_memory
    from tests.pipelines.evaluation.synthetic_study import GRID

    inputs = {k: v for k, v in synthetic_study.items() if k != "params:reporting"}
    return run_in_memory(evaluation.create_pipeline(GRID), inputs)


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory, mnist_raw_dir) -> Path:
    """pyproject, conf and the verified idx files in a fresh folder: nothing of the repo's data is touched."""
    from tests.helpers import make_project_copy

    return make_project_copy(tmp_path_factory.mktemp("project"), mnist_raw_dir)


def default_study_state(project: Path) -> dict:
    """Digest of every file under the default data root (test's own root excluded) and the
    runs of the default MLflow experiment."""
    import mlflow

    from tests.helpers import data_root

    test_root = data_root(project, "test")
    files = {
        str(f.relative_to(project)): hashlib.md5(f.read_bytes()).hexdigest()
        for f in sorted((project / "data").rglob("*"))
        if f.is_file() and test_root not in f.parents
    }
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("soft_label_audit")
    runs = client.search_runs([experiment.experiment_id])
    return {
        "files": files,
        "runs": sorted((r.info.run_id, r.info.status, str(r.data.metrics)) for r in runs),
    }


@pytest.fixture(scope="session")
def default_study(project_copy) -> dict:
    """What a default study left before the test run: a summary table and a run in its experiment."""
    import mlflow

    report = project_copy / "data" / "08_reporting"
    report.mkdir(parents=True)
    (report / "study_summary.csv").write_text(
        "source,condition,n_seeds,accuracy__mean\nmnist,original_hard,5,0.98\n"
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("soft_label_audit"))
    client.log_metric(run.info.run_id, "accuracy", 0.98)
    client.set_terminated(run.info.run_id)
    return default_study_state(project_copy)


@pytest.fixture(scope="session")
def study_run(project_copy, default_study) -> Path:
    """``kedro run --env test`` (sequential runner) in ``project_copy``; shared by the end-to-end
    tests and the Dask runner's test, which compares its outputs with this run's."""
    from tests.helpers import kedro_cli

    result = kedro_cli(project_copy, "run", "--env", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return project_copy


@pytest.fixture
def raw_file_project(tmp_path, study_run) -> Path:
    """A copy of ``study_run`` (the test study's outputs under data/test) whose raw-file data
    root (data/test/raw_file, where ``--params annotation.source=raw_file`` runs write) holds
    the digits stage's outputs and record: that stage does not read the annotations, so the
    test study's serve the raw-file study as they are."""
    import shutil

    from tests.helpers import data_root, make_project_copy

    (tmp_path / "project").mkdir()
    project = make_project_copy(tmp_path / "project")
    shutil.copytree(study_run / "data", project / "data")
    default, raw = data_root(project), data_root(project, "test", RAW_FILE)
    for made in (
        "02_intermediate/digits.parquet",
        "03_primary/study_items.parquet",
        "03_primary/pool_digits.parquet",
        "provenance/digits.json",
    ):
        (raw / made).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(default / made, raw / made)
    return project


#: the runtime parameters of a raw-file run (the file itself is the test's)
RAW_FILE = {"annotation": {"source": "raw_file"}}
