"""Provenance: every stage records what made its outputs, and no stage reads a mixture.

The end-to-end test runs annotation on a raw vote file after the test study (``study_run``):
it writes under its own data root and leaves the study's untouched, and once that root holds
the raw-file annotations under the simulated crowd's targets, models and metrics (what the
raw-file command used to leave in the default root) every later stage refuses to run on it,
in a few lines that say which stage to rerun.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from soft_label_audit import provenance
from soft_label_audit.pipeline_registry import register_pipelines
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, data_root, kedro_cli

LATER_STAGES = ("labels", "training", "evaluation", "reporting")


@pytest.fixture(scope="module")
def pipelines():
    return register_pipelines()


@pytest.fixture(scope="module")
def graph(pipelines):
    return provenance.stage_graph(pipelines)


def _params(project: Path = PROJECT_ROOT, runtime: dict | None = None) -> dict:
    return config_loader(project, "test", runtime)["parameters"]


def test_the_stage_graph_follows_the_registered_pipelines(graph):
    assert list(graph) == ["digits", "annotation", "labels", "training", "evaluation", "reporting"]
    assert graph["annotation"]["upstream"] == ["digits"]
    assert graph["labels"]["upstream"] == ["annotation"]
    assert graph["reporting"]["upstream"] == ["digits", "annotation", "training", "evaluation"]
    assert provenance.producer_of(graph, "mnist.human_soft.curves") == "training"
    for kind in ("test_predictions", "pool_predictions", "final_predictions"):
        assert provenance.producer_of(graph, f"synthetic.machine_soft.{kind}") == "training"
    # the training and evaluation stages both read the held-out pool
    assert "pool_digits" in graph["training"]["inputs"] & graph["evaluation"]["inputs"]
    assert provenance.producer_of(graph, "annotation_input") is None
    assert provenance.after(graph, "labels") == ["training", "evaluation", "reporting"]


def test_fingerprints_follow_the_settings_that_make_the_outputs(graph, tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text("item_id,annotator_id,choice,unsure\n1,a,3,false\n")
    default = provenance.expected_records(graph, _params())
    raw = provenance.expected_records(
        graph, _params(runtime={"annotation": {"source": "raw_file", "raw_path": str(votes)}})
    )
    assert raw["digits"]["fingerprint"] == default["digits"]["fingerprint"]
    for stage in ("annotation", *LATER_STAGES):  # the chain: every later stage changes too
        assert raw[stage]["fingerprint"] != default[stage]["fingerprint"], stage
        assert raw[stage]["study_id"] == raw["annotation"]["fingerprint"]
    assert raw["annotation"]["annotation"] == {
        "source": "raw_file",
        "path": str(votes),
        "sha256": hashlib.sha256(votes.read_bytes()).hexdigest(),
    }
    assert default["digits"]["study_id"] is None
    # settings that change no output leave every fingerprint as it is; others change theirs
    quiet = provenance.expected_records(graph, _params(runtime={"training": {"progress": True}}))
    assert {s: r["fingerprint"] for s, r in quiet.items()} == {
        s: r["fingerprint"] for s, r in default.items()
    }
    alpha = provenance.expected_records(graph, _params(runtime={"reporting": {"alpha": 0.1}}))
    assert [s for s in graph if alpha[s]["fingerprint"] != default[s]["fingerprint"]] == [
        "reporting"
    ]


def test_read_gives_the_records_and_the_study_id(graph, tmp_path):
    expected = provenance.expected_records(graph, _params())
    assert provenance.read(tmp_path) == {"study_id": None, "stages": {}}
    for stage in ("digits", "annotation", "labels"):
        provenance.write_record(tmp_path, expected[stage])
    found = provenance.read(tmp_path)
    assert found["study_id"] == expected["annotation"]["fingerprint"]
    assert sorted(found["stages"]) == ["annotation", "digits", "labels"]
    assert found["stages"]["labels"] == expected["labels"]


def _check(pipelines, graph, stage_pipeline, root: Path, params: dict, runtime=None):
    return provenance.check_pipeline(graph, stage_pipeline, params, root, "ROOT", "test", runtime)


def test_a_stage_refuses_missing_or_other_upstream_outputs(pipelines, graph, tmp_path):
    params = _params()
    expected = provenance.expected_records(graph, params)
    with pytest.raises(provenance.MissingStageOutputError) as missing:
        _check(pipelines, graph, pipelines["evaluation"], tmp_path, params)
    assert "training" in str(missing.value)
    assert "kedro run --env test --pipelines digits,annotation,labels,training" in (
        missing.value.fix
    )
    for stage in ("digits", "annotation", "labels", "training"):
        provenance.write_record(tmp_path, expected[stage])
    _check(pipelines, graph, pipelines["evaluation"], tmp_path, params)  # consistent: runs
    # annotation remade with another rule: labels and training were made from the old one
    other = _params(runtime={"annotation": {"aggregation": "vote_share_yes_only"}})
    provenance.write_record(tmp_path, provenance.expected_records(graph, other)["annotation"])
    with pytest.raises(provenance.MixedProvenanceError) as mixed:
        _check(pipelines, graph, pipelines["evaluation"], tmp_path, params)
    assert "the annotation outputs under ROOT do not match this run" in str(mixed.value)
    assert "annotation.aggregation is 'vote_share_yes_only' there, 'vote_share' in this run" in (
        str(mixed.value)
    )
    with pytest.raises(provenance.MixedProvenanceError) as mixed:
        _check(pipelines, graph, pipelines["evaluation"], tmp_path, other)
    assert "the labels outputs under ROOT do not match this run" in str(mixed.value)
    assert "made from other annotation outputs" in str(mixed.value)
    assert "rerun `kedro run --env test --pipeline labels`" in mixed.value.fix


def test_part_of_a_stage_is_remade_only_with_the_settings_of_the_rest(pipelines, graph, tmp_path):
    params = _params()
    expected = provenance.expected_records(graph, params)
    for stage in ("digits", "annotation", "labels", "training"):
        provenance.write_record(tmp_path, expected[stage])
    one_cell = pipelines["training"].only_nodes_with_namespaces(["mnist.original_hard"])
    _check(pipelines, graph, one_cell, tmp_path, params)
    longer = _params(runtime={"training": {"epochs": 3}})
    with pytest.raises(provenance.MixedProvenanceError) as mixed:
        _check(pipelines, graph, one_cell, tmp_path, longer)
    assert "remakes part of the training outputs" in str(mixed.value)
    assert "training.epochs is 2 there, 3 in this run" in str(mixed.value)


def _digests(root: Path, leave_out: Path | None = None) -> dict[str, str]:
    return {
        str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("*"))
        if f.is_file() and (leave_out is None or leave_out not in f.parents)
    }


@pytest.mark.slow
def test_raw_file_annotation_leaves_the_study_and_later_stages_refuse_the_mixture(
    raw_file_project, pipelines, graph
):
    project = raw_file_project
    default = data_root(project)
    votes_path = project / "votes.csv"
    votes = pd.read_parquet(default / "03_primary" / "validated_annotations.parquet")
    votes[["item_id", "annotator_id", "choice", "unsure"]].to_csv(votes_path, index=False)
    runtime = {"annotation": {"source": "raw_file", "raw_path": str(votes_path)}}
    cli_params = f"annotation.source=raw_file,annotation.raw_path={votes_path}"
    raw = data_root(project, "test", runtime)
    assert raw == default / "raw_file"
    study = _digests(default, leave_out=raw)

    made = kedro_cli(
        project, "run", "--env", "test", "--pipeline", "annotation", "--params", cli_params
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert _digests(default, leave_out=raw) == study  # nothing of the study was overwritten
    labels = pd.read_parquet(raw / "03_primary" / "human_soft_labels.parquet")
    assert set(labels["annotation_source"]) == {"raw_file"}
    records = provenance.read(raw)
    assert records["stages"]["annotation"]["annotation"]["source"] == "raw_file"
    assert records["study_id"] not in (None, provenance.read(default)["study_id"])

    # the mixture the raw-file command used to leave: the raw-file annotations under the
    # simulated crowd's targets, models and metrics (and their records)
    for folder in ("05_model_input", "06_models", "07_model_output"):
        shutil.copytree(default / folder, raw / folder)
    shutil.copy(default / "04_feature" / "teacher_logits.parquet", raw / "04_feature")
    for stage in ("labels", "training", "evaluation"):
        shutil.copy(default / "provenance" / f"{stage}.json", raw / "provenance")
    mixed = _digests(raw)

    refused = kedro_cli(
        project, "run", "--env", "test", "--pipeline", "reporting", "--params", cli_params
    )
    output = refused.stdout + refused.stderr
    assert refused.returncode == 2, output[-3000:]
    assert len(output.splitlines()) <= 6 and "Traceback" not in output, output
    assert "Error: the labels outputs under data/test/raw_file do not match this run" in output
    assert "made from other annotation outputs (annotation.source 'simulated')" in output
    assert f'rerun `kedro run --env test --pipeline labels --params "{cli_params}"`' in output
    assert _digests(raw) == mixed  # the refused run wrote nothing

    # every other stage after labels refuses it the same way; labels itself may run
    params = _params(project, runtime)
    provenance.check_pipeline(graph, pipelines["labels"], params, raw)
    for stage in ("training", "evaluation", "reporting"):
        with pytest.raises(provenance.MixedProvenanceError) as error:
            provenance.check_pipeline(graph, pipelines[stage], params, raw)
        assert str(error.value).startswith("the labels outputs"), stage

    # votes edited after the annotations were made: the stages that read them refuse too
    votes.head(len(votes) - 5)[["item_id", "annotator_id", "choice", "unsure"]].to_csv(
        votes_path, index=False
    )
    with pytest.raises(provenance.MixedProvenanceError) as edited:
        provenance.check_pipeline(graph, pipelines["labels"], params, raw)
    assert "the annotation outputs" in str(edited.value)
    assert "annotation_input.sha256" in str(edited.value)
