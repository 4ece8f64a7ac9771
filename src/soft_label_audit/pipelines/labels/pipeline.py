"""Wiring of the `labels` pipeline: one target-building node per (source, condition), in the
nested namespaces ``source`` then ``condition`` (datasets ``{source}.{condition}.targets``), plus
the shared teacher when a condition needs it."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell
from soft_label_audit.targets import builder_for

from . import nodes

SHARED_INPUTS = ["study_digits", "human_soft_labels", "item_stats"]
TEACHER_OUTPUTS = ["teacher_model", "teacher_logits"]


def _cell(source: str, condition: str) -> Pipeline:
    extra = ["teacher_logits"] if "teacher" in builder_for(condition).needs else []
    inputs = [*SHARED_INPUTS, "params:labels", *extra]
    cell = Pipeline(
        [node(bind_cell(nodes.build_condition_targets, source, condition), inputs, "targets", name="build_targets")],
        namespace=condition,
        inputs=set(SHARED_INPUTS + extra),
        parameters={"params:labels"},
    )
    return Pipeline(cell, namespace=source, inputs=set(SHARED_INPUTS + extra), parameters={"params:labels"})


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    cells = [_cell(source, condition) for source, condition in grid.namespaces()]
    teacher = []
    if any("teacher" in builder_for(c).needs for c in grid.conditions):
        teacher = [node(nodes.fit_teacher, ["digits", "study_digits", "params:labels"], TEACHER_OUTPUTS, name="fit_teacher")]
    return Pipeline(teacher) + sum(cells, Pipeline([]))
