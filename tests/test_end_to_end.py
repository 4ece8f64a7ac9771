"""`kedro run --env test` end to end, through the command line, in a copy of the project."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def kedro(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "CI": "true", "MPLBACKEND": "Agg"}
    env.pop("KEDRO_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory, mnist_raw_dir) -> Path:
    """pyproject, conf and the verified idx files in a fresh folder: nothing of the repo's data is touched."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copy(PROJECT_ROOT / ".telemetry", root)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # the package itself is installed (editable) in the environment
    shutil.copytree(mnist_raw_dir, root / "data" / "01_raw" / "MNIST" / "raw")
    return root


@pytest.fixture(scope="session")
def study_run(project_copy) -> Path:
    result = kedro(project_copy, "run", "--env", "test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return project_copy


def test_idx_files_match_published_md5(study_run):
    from soft_label_audit.data_sources.mnist import IDX_MD5

    raw = study_run / "data" / "01_raw" / "MNIST" / "raw"
    for name, expected in IDX_MD5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == expected


def test_digits_stage_outputs(study_run):
    digits = pd.read_parquet(study_run / "data" / "02_intermediate" / "digits.parquet")
    assert (digits["source"] == "mnist").sum() == 70_000
    assert (digits["source"] == "synthetic").sum() == 80
    study = pd.read_parquet(study_run / "data" / "03_primary" / "study_items.parquet")
    assert study.groupby("source").size().to_dict() == {"mnist": 100, "synthetic": 50}
    assert (study_run / "data" / "08_reporting" / "figures" / "synthetic_samples.png").stat().st_size > 10_000
