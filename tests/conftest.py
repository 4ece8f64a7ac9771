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


def _session_folder(tmp_path_factory) -> Path:
    """A folder of this test session that every pytest-xdist worker sees (``make test`` runs
    two): the parent of the workers' own base folders, or the base folder without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def _shared_study(tmp_path_factory, mnist_raw_dir) -> tuple[Path, dict]:
    """``kedro run --env test`` (sequential runner) in a fresh project copy, made once per test
    session however many xdist workers ask (a file lock; the first makes it, the others wait and
    read it): (project, the default study's state before the run). Nothing of the repo's data
    is touched; the tests only read the project (copy it before changing anything)."""
    import json

    from filelock import FileLock

    from tests.helpers import kedro_cli, make_project_copy

    shared = _session_folder(tmp_path_factory) / "study_run"
    outcome = shared / "outcome.json"
    with FileLock(str(shared) + ".lock"):
        if not outcome.exists():
            (shared / "project").mkdir(parents=True)
            project = make_project_copy(shared / "project", mnist_raw_dir)
            state = _make_default_study(project)
            result = kedro_cli(project, "run", "--env", "test")
            failure = (
                None if result.returncode == 0 else result.stdout[-4000:] + result.stderr[-4000:]
            )
            outcome.write_text(json.dumps({"state": state, "failure": failure}))
    record = json.loads(outcome.read_text())
    assert record["failure"] is None, record["failure"]
    state = record["state"]
    state["runs"] = sorted(tuple(run) for run in state["runs"])
    return shared / "project", state


def _make_default_study(project: Path) -> dict:
    """What a default study left before the test run: a summary table and a run in its
    experiment; returns its state (:func:`default_study_state`)."""
    import mlflow

    report = project / "data" / "08_reporting"
    report.mkdir(parents=True)
    (report / "study_summary.csv").write_text(
        "source,condition,n_seeds,accuracy__mean\nmnist,original_hard,5,0.98\n"
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("soft_label_audit"))
    client.log_metric(run.info.run_id, "accuracy", 0.98)
    client.set_terminated(run.info.run_id)
    return default_study_state(project)


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
def default_study(_shared_study) -> dict:
    """The state a default study left before the test study ran in ``study_run``'s project."""
    return _shared_study[1]


@pytest.fixture(scope="session")
def study_run(_shared_study) -> Path:
    """The project of ``kedro run --env test`` (sequential runner); shared by the end-to-end
    tests and the Dask runner's test, which compares its outputs with this run's."""
    return _shared_study[0]


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


#: the test modules that read the session's ``kedro run --env test`` (``study_run``)
STUDY_RUN_FIRST = ("test_study_record",)  # the longest chain: the study, then its stages again
STUDY_RUN_LAST = ("test_dask_runner", "test_end_to_end", "test_provenance")


def pytest_collection_modifyitems(config, items):
    """Module order for two xdist workers (``make test``: ``-n 2 --dist loadfile``): the
    module that needs the test study longest first, so one worker makes the study while the
    other runs the modules that do not need it, and the other readers of the study last, by
    when it is made. A stable sort: each module's tests keep their order."""

    def rank(item) -> int:
        stem = item.path.stem
        return 0 if stem in STUDY_RUN_FIRST else 2 if stem in STUDY_RUN_LAST else 1

    items.sort(key=rank)
