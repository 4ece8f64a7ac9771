"""`kedro run --env test` end to end, through the command line, in a copy of the project."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import default_study_state
from tests.helpers import (
    config_loader,
    data_root,
    kedro_cli,
    make_project_copy,
    write_provenance,
)

pytestmark = pytest.mark.slow


def _grid(project: Path):
    from soft_label_audit.grid import StudyGrid

    return StudyGrid.from_params(config_loader(project)["parameters"])


def test_test_environment_leaves_the_default_outputs_and_experiment_unchanged(
    study_run, default_study
):
    after = default_study_state(study_run)
    assert after["runs"] == default_study["runs"]
    assert after["files"] == default_study["files"]
    assert (data_root(study_run) / "08_reporting" / "study_summary.csv").is_file()


def test_idx_files_match_published_md5(study_run):
    from soft_label_audit.data_sources.mnist import IDX_MD5

    raw = study_run / "data" / "01_raw" / "MNIST" / "raw"  # raw inputs are shared
    for name, expected in IDX_MD5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == expected


def test_digits_stage_outputs(study_run):
    digits = pd.read_parquet(data_root(study_run) / "02_intermediate" / "digits.parquet")
    assert (digits["source"] == "mnist").sum() == 70_000
    assert (digits["source"] == "synthetic").sum() == 80
    study = pd.read_parquet(data_root(study_run) / "03_primary" / "study_items.parquet")
    assert study.groupby("source").size().to_dict() == {"mnist": 100, "synthetic": 50}
    assert (
        data_root(study_run) / "08_reporting" / "figures" / "synthetic_samples.png"
    ).stat().st_size > 10_000


def test_annotation_stage_outputs(study_run):
    from soft_label_audit.columns import H_COLS

    labels = pd.read_parquet(data_root(study_run) / "03_primary" / "human_soft_labels.parquet")
    assert len(labels) == 150
    assert (labels[list(H_COLS)].sum(axis=1) - 1).abs().max() < 1e-9
    assert set(labels["annotation_source"]) == {"simulated"}
    stats = pd.read_parquet(data_root(study_run) / "04_feature" / "item_stats.parquet")
    assert {"item_id", "n_votes", "human_entropy", "pct_unsure", "human_mode", "mode_shift"} <= set(
        stats.columns
    )


def test_reporting_tables_cover_the_grid(study_run):
    from soft_label_audit.grid import StudyGrid

    params = config_loader(study_run)["parameters"]
    grid, seeds = StudyGrid.from_params(params), params["training"]["seeds"]
    report = data_root(study_run) / "08_reporting"
    by_run = pd.read_csv(report / "metrics_by_run.csv")
    expected = {(s, c, seed) for s, c in grid.namespaces() for seed in seeds}
    assert set(zip(by_run["source"], by_run["condition"], by_run["seed"])) == expected
    assert len(by_run) == len(expected)
    summary = pd.read_csv(report / "study_summary.csv")
    assert len(summary) == len(grid.namespaces())
    for name in (
        "reliability_diagrams",
        "ece_by_band",
        "cartography_maps",
        "validation_curves",
        "claims",
    ):
        assert (report / "figures" / f"{name}.png").stat().st_size > 10_000, name
    # one claims row per declared claim whose conditions the grid has, and per source; a claim
    # on the pool scope only where the study has pool predictions (skipped with a note if not)
    claims = pd.read_csv(report / "claims.csv")
    declared = [
        c
        for c in params["reporting"]["claims"]
        if {c["condition"], *c.get("baselines", [c.get("baseline")])} <= set(grid.conditions)
    ]
    expected = [[c["id"], s] for c in declared for s in grid.sources]
    rows = claims[["claim", "source"]].values.tolist()
    assert [r for r in expected if r in rows] == rows
    assert [[c["id"], s] for c in declared if c["scope"] == "test" for s in grid.sources] == [
        r for r in rows if r[0] in {c["id"] for c in declared if c["scope"] == "test"}
    ]
    assert set(claims["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    paired = pd.read_csv(report / "paired_differences.csv")
    assert {"boot_low", "boot_high", "p_value", "p_holm", "q_bh"} <= set(paired.columns)
    power = pd.read_csv(report / "power.csv")
    assert set(zip(claims["claim"], claims["source"])) <= set(zip(power["claim"], power["source"]))


def test_mlflow_has_one_child_run_per_cell_under_the_parent(study_run):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{study_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("soft_label_audit_test")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("soft_label_audit.child_run") == "true"]
    parents = {r.data.tags["mlflow.parentRunId"] for r in children}
    assert len(parents) == 1
    cells = {
        (r.data.tags["source"], r.data.tags["condition"], r.data.tags["seed"]) for r in children
    }
    grid, seeds = _grid(study_run), config_loader(study_run)["parameters"]["training"]["seeds"]
    assert len(cells) == len(children) == len(grid.namespaces()) * len(seeds)
    some = children[0]
    assert some.data.tags["annotation_source"] == "simulated"
    history = client.get_metric_history(some.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]  # step = epoch
    assert "nll" in some.data.metrics or any(k.startswith("nll") for k in some.data.metrics)
    assert {r.info.status for r in children} == {"FINISHED"}
    parent = client.get_run(parents.pop())
    # created when, what ran into it, where, on which votes (the copy has no git commit)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d \| __default__ \| env=test \| annotation=simulated",
        parent.info.run_name,
    ), parent.info.run_name
    assert parent.info.status == "FINISHED"
    assert "mnist.human_soft.accuracy" in parent.data.metrics  # the study's headline metrics
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_bad_raw_annotation_file_stops_and_keeps_earlier_outputs(raw_file_project):
    study_run = raw_file_project  # the raw-file data root holds the digits stage's outputs
    labels = data_root(study_run) / "03_primary" / "human_soft_labels.parquet"
    before = hashlib.md5(labels.read_bytes()).hexdigest()
    study = pd.read_parquet(data_root(study_run) / "03_primary" / "study_items.parquet")
    bad = pd.DataFrame(
        {
            "item_id": study["item_id"].head(3).tolist() * 2,
            "annotator_id": ["a1"] * 3 + ["a2"] * 3,
            "choice": ["3", "11", "none", "4", "4", "12"],
            "unsure": [False] * 6,
        }
    )
    bad_path = study_run / "bad_votes.csv"
    bad.to_csv(bad_path, index=False)
    result = kedro_cli(
        study_run,
        "run",
        "--env",
        "test",
        "--pipeline",
        "annotation",
        "--params",
        f"annotation.source=raw_file,annotation.raw_path={bad_path}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert len(output.splitlines()) < 20, output  # the message, not a traceback
    assert "bad_votes.csv" in output and "choice" in output
    assert "rule '" in output and "2 offending row(s)" in output  # rows "11" and "12"
    assert hashlib.md5(labels.read_bytes()).hexdigest() == before
    raw = data_root(study_run, "test", {"annotation": {"source": "raw_file"}})
    assert not (raw / "03_primary" / "human_soft_labels.parquet").exists()


def test_released_environment_reads_the_released_file(study_run, tmp_path, mnist_raw_dir):
    """`kedro run --env released` takes the study items, split and soft labels from the file."""
    import shutil

    from tests.conftest import PROJECT_ROOT

    project = make_project_copy(tmp_path, mnist_raw_dir)
    # the digits stage's outputs (the released file's MNIST rows are checked against them)
    for table in ("02_intermediate/digits.parquet", "03_primary/study_items.parquet"):
        (data_root(project, "released") / table).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root(study_run) / table, data_root(project, "released") / table)
    # they stand in for the released study's digits stage: so does its record
    write_provenance(project, ["digits"], "released")
    fixture = PROJECT_ROOT / "tests" / "fixtures" / "released_annotations_small.parquet"
    result = kedro_cli(
        project,
        "run",
        "--env",
        "released",
        "--pipeline",
        "annotation",
        "--params",
        # 8 panels in the disputed-items figure (24 in conf/released), as in conf/test
        f"annotation.released_path={fixture},annotation_report.n_disputed=8",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    released = pd.read_parquet(fixture)
    labels = pd.read_parquet(
        data_root(project, "released") / "03_primary" / "human_soft_labels.parquet"
    )
    assert len(labels) == len(released)
    assert set(labels["annotation_source"]) == {"released"}
    study = pd.read_parquet(data_root(project, "released") / "03_primary" / "study_digits.parquet")
    assert sorted(study["split"]) == sorted(released["split"])


def test_every_table_the_run_wrote_keeps_its_contract(study_run):
    """The hook checked each table on save; read back from disk they still pass."""
    from soft_label_audit.contracts import check_table, schema_for

    checked = 0
    root = data_root(study_run)
    tables = [p for p in root.glob("0[2-7]_*/**/*") if p.suffix in (".parquet", ".csv")]
    for path in sorted(tables):
        folder, *rest = path.relative_to(root).with_suffix("").parts
        if folder == "05_model_input":  # targets/{source}/{condition}
            name = f"{rest[1]}.{rest[2]}.targets"
        else:  # a study table, or {source}/{condition}/{table} under 07_model_output
            name = ".".join(rest)
        if schema_for(name) is not None:
            read = pd.read_parquet if path.suffix == ".parquet" else pd.read_csv
            check_table(name, read(path))
            checked += 1
    n_cells = len(_grid(study_run).namespaces())
    # the nine study tables (pool_digits among them) and six per (source, condition):
    # targets, test, pool and final predictions, curves, metrics
    assert checked == 9 + n_cells * 6
