"""The config loader's routing: another annotation source, or another draw of the simulated
crowd (``simulated_crowd.seed`` other than the environment's own), gets its own data root and
MLflow experiment; the environment's own values change nothing."""

from __future__ import annotations

import shutil

import pytest

from soft_label_audit import provenance
from soft_label_audit.config_loader import CrowdSeedError
from soft_label_audit.pipeline_registry import register_pipelines
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader


def _globals(env: str, runtime: dict | None = None, project=PROJECT_ROOT) -> tuple[str, str]:
    found = config_loader(project, env, runtime)["globals"]
    return found["data_root"], found["mlflow_experiment"]


@pytest.mark.parametrize(
    "runtime",
    [{"simulated_crowd": {"seed": 8}}, {"simulated_crowd.seed": 8}],
    ids=["nested", "dotted"],
)
@pytest.mark.parametrize(
    ("env", "root", "experiment"),
    [("base", "data", "soft_label_audit"), ("test", "data/test", "soft_label_audit_test")],
)
def test_another_crowd_seed_gets_its_own_root_and_experiment(runtime, env, root, experiment):
    assert _globals(env) == (root, experiment)
    assert _globals(env, runtime) == (f"{root}/crowd_seed_8", f"{experiment}_crowd_seed_8")


@pytest.mark.parametrize(
    "runtime",
    [
        {"simulated_crowd": {"seed": 7}},
        {"simulated_crowd.seed": 7},
        {"simulated_crowd": {"seed": "7"}},
        {"simulated_crowd": {"n_annotators": 30}},  # another crowd setting: not a draw
    ],
)
def test_the_environments_own_seed_changes_nothing(runtime):
    for env in ("base", "test"):
        assert (
            config_loader(PROJECT_ROOT, env, runtime)["globals"]
            == (config_loader(PROJECT_ROOT, env)["globals"])
        )


def test_the_own_seed_is_the_environments_merged_one(tmp_path):
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf")
    own = tmp_path / "conf" / "test" / "parameters_annotation.yml"
    own.write_text(own.read_text().replace("simulated_crowd:\n", "simulated_crowd:\n  seed: 8\n"))
    assert config_loader(tmp_path, "test")["parameters"]["simulated_crowd"]["seed"] == 8
    assert _globals("test", {"simulated_crowd": {"seed": 8}}, tmp_path)[0] == "data/test"
    assert _globals("test", {"simulated_crowd": {"seed": 7}}, tmp_path)[0] == (
        "data/test/crowd_seed_7"
    )
    assert _globals("base", {"simulated_crowd": {"seed": 8}}, tmp_path)[0] == "data/crowd_seed_8"


def test_a_crowd_seed_after_another_source():
    runtime = {"annotation": {"source": "simulated"}, "simulated_crowd": {"seed": 8}}
    assert _globals("released", runtime) == (
        "data/released/simulated/crowd_seed_8",
        "soft_label_audit_released_simulated_crowd_seed_8",
    )
    # the released environment's own seed (conf/base's) on its simulated source: the source only
    assert _globals("released", {**runtime, "simulated_crowd": {"seed": 7}})[0] == (
        "data/released/simulated"
    )


@pytest.mark.parametrize(
    ("env", "runtime", "source"),
    [
        ("released", {"simulated_crowd": {"seed": 8}}, "released"),
        ("base", {"annotation": {"source": "raw_file"}, "simulated_crowd.seed": 8}, "raw_file"),
    ],
)
def test_a_crowd_seed_on_recorded_votes_is_refused(env, runtime, source):
    with pytest.raises(CrowdSeedError) as refused:
        config_loader(PROJECT_ROOT, env, runtime)
    assert str(refused.value) == (
        f"simulated_crowd.seed=8 draws the simulated crowd, but this run's annotation.source "
        f"is {source!r}"
    )
    assert "annotation.source=simulated" in refused.value.fix
    # the environment's own seed there is no draw: nothing to refuse
    own = {**runtime, "simulated_crowd": {"seed": 7}}
    own.pop("simulated_crowd.seed", None)
    config_loader(PROJECT_ROOT, env, own)


def test_a_draws_stages_refuse_another_draws_outputs(tmp_path):
    """Each draw has its own root; outputs of one draw (their records) under another's root are
    refused by the stages that read them, from the annotation stage on."""
    graph = provenance.stage_graph(register_pipelines())
    pipelines = register_pipelines()
    default = config_loader(PROJECT_ROOT, "test")["parameters"]
    draw = config_loader(PROJECT_ROOT, "test", {"simulated_crowd": {"seed": 8}})["parameters"]
    mine, other = (provenance.expected_records(graph, p) for p in (draw, default))
    assert mine["digits"]["fingerprint"] == other["digits"]["fingerprint"]
    for stage in ("annotation", "labels", "training", "evaluation", "reporting"):
        assert mine[stage]["fingerprint"] != other[stage]["fingerprint"], stage
    for stage in ("digits", "annotation", "labels", "training"):
        provenance.write_record(tmp_path, other[stage])
    with pytest.raises(provenance.MixedProvenanceError) as mixed:
        provenance.check_pipeline(graph, pipelines["evaluation"], draw, tmp_path, "ROOT", "test")
    assert "the annotation outputs under ROOT do not match this run" in str(mixed.value)
    assert "simulated_crowd.seed is 7 there, 8 in this run" in str(mixed.value)
