"""Wiring of the `training` pipeline: one training node per (source, condition), in the nested
namespaces ``source`` then ``condition``; each reads ``{source}.{condition}.targets`` and the
shared ``study_digits`` and trains every seed of ``training.seeds``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell

from . import nodes

SHARED_INPUTS = {"study_digits", "item_stats"}
OUTPUTS = ["test_predictions", "curves", "dynamics", "weights"]


def _cell(source: str, condition: str) -> Pipeline:
    train = node(
        bind_cell(nodes.train_condition, source, condition),
        ["targets", "study_digits", "params:training", "item_stats"],
        OUTPUTS,
        name="train",
    )
    cell = Pipeline(
        [train], namespace=condition, inputs=SHARED_INPUTS, parameters={"params:training"}
    )
    return Pipeline(cell, namespace=source, inputs=SHARED_INPUTS, parameters={"params:training"})


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    return sum((_cell(source, condition) for source, condition in grid.namespaces()), Pipeline([]))
