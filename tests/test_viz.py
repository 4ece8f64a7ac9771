"""What kedro-viz shows of the study: a condition's recipe, an opened source box, the tag filter.

kedro-viz's own code builds what it would serve (its namespace tree, its node metadata), so
these tests read what a user sees without starting a server."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from kedro.pipeline import Pipeline

from soft_label_audit import targets
from soft_label_audit.grid import StudyGrid
from soft_label_audit.pipeline_registry import register_pipelines
from soft_label_audit.pipelines.training.pipeline import OUTPUTS as TRAINING_OUTPUTS
from soft_label_audit.targets import BUILDERS
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader

STAGES = ("digits", "annotation", "labels", "training", "evaluation", "reporting")


@pytest.fixture(scope="module")
def default() -> Pipeline:
    return register_pipelines()["__default__"]


@pytest.fixture(scope="module")
def grid() -> StudyGrid:
    return StudyGrid.from_params(config_loader(PROJECT_ROOT, "base")["parameters"])


def _box(pipeline: Pipeline, box: str) -> dict[str, set[str]]:
    """What kedro-viz draws inside the opened box ``box`` (its children by kind)."""
    from kedro_viz.data_access.repositories.modular_pipelines import (
        ModularPipelinesRepository,
    )
    from kedro_viz.utils import _hash_input_output

    repo = ModularPipelinesRepository()
    repo.populate_tree(pipeline)
    names = {_hash_input_output(d): d for d in pipeline.datasets()}
    names |= {repo.get_node_and_modular_pipeline_mapping(n)[0]: n.name for n in pipeline.nodes}
    drawn: dict[str, set[str]] = {}
    for child in repo.tree[box].children:
        drawn.setdefault(str(child.type.value), set()).add(names.get(child.id, child.id))
    return drawn


def _viz_metadata(node):
    """kedro-viz's side panel of a node: its code and file path."""
    from kedro_viz.models.flowchart.node_metadata import TaskNodeMetadata
    from kedro_viz.models.flowchart.nodes import GraphNode

    task = GraphNode.create_task_node(node, node.name, None)
    return TaskNodeMetadata(task_node=task)


def test_a_conditions_target_node_shows_its_recipe_in_kedro_viz(default, grid):
    for source, condition in grid.namespaces():
        (build,) = [
            n for n in default.nodes if n.name == f"{source}.{condition}.build_{condition}_targets"
        ]
        meta = _viz_metadata(build)
        recipe = targets.builder_for(condition).build
        assert meta.code == inspect.getsource(recipe), condition
        assert Path(meta.filepath).parts[-2:] == ("soft_label_audit", "targets.py"), meta.filepath
    # the recipe is the condition's own: the swap, the permutation, the smoothing
    meta = _viz_metadata(
        next(n for n in default.nodes if n.name.endswith("build_human_soft_mode_aligned_targets"))
    )
    assert "swap_mode_and_original" in meta.code
    meta = _viz_metadata(
        next(n for n in default.nodes if n.name.endswith("build_human_soft_permuted_targets"))
    )
    assert "permuted_profiles" in meta.code and "band_edges" in meta.code


def test_the_recipe_node_runs_what_the_labels_node_runs(default):
    """The shown function is a view: Kedro calls the node function that builds the table."""
    from soft_label_audit.pipelines.labels import nodes

    build = next(n for n in default.nodes if n.name == "mnist.human_soft.build_human_soft_targets")
    assert inspect.signature(build.func) == inspect.signature(
        nodes.build_condition_targets
    ).replace(
        parameters=[
            p
            for name, p in inspect.signature(nodes.build_condition_targets).parameters.items()
            if name not in ("source", "condition")
        ]
    )
    assert build.func.__name__ == "build_condition_targets"


def test_an_opened_source_box_shows_its_conditions_as_boxes(default, grid):
    for source in grid.sources:
        drawn = _box(default, source)
        conditions = {f"{source}.{c}" for c in grid.conditions}
        assert drawn["modularPipeline"] == conditions
        # what each condition box hands out: its targets, weights, figures and run tables; a
        # post-hoc condition's box also takes in its base's six training outputs
        post_hoc = [c for c in grid.conditions if BUILDERS[c].post_hoc_of]
        shown = 4 * len(grid.conditions) + len(TRAINING_OUTPUTS) * len(post_hoc)
        assert len(drawn["data"]) <= shown, sorted(drawn["data"])
        assert len(drawn["task"]) <= 4, sorted(drawn["task"])
        for condition in grid.conditions:
            inside = _box(default, f"{source}.{condition}")
            assert f"{source}.{condition}.build_{condition}_targets" in inside["task"]
            trains = "scale_temperature" if condition in post_hoc else "train"
            assert f"{source}.{condition}.{trains}" in inside["task"]


def test_every_node_is_tagged_with_its_stage_and_a_runs_node_with_its_condition(default, grid):
    pipelines = register_pipelines()
    for stage in STAGES:
        for n in pipelines[stage].nodes:
            assert stage in n.tags, (stage, n.name)
    for n in default.nodes:
        parts = n.name.split(".")
        if len(parts) == 3 and (parts[0], parts[1]) in grid.namespaces():
            assert parts[1] in n.tags, n.name
    tags = {t for n in default.nodes for t in n.tags}
    assert set(STAGES) | set(grid.conditions) <= tags
