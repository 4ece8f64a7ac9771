"""Wiring of the `training` pipeline: one training node per (source, condition), in the nested
namespaces ``source`` then ``condition``; each reads ``{source}.{condition}.targets`` and the
shared ``study_digits`` and trains every seed of ``training.seeds``."""

from __future__ import annotations

from functools import partial

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid

from . import nodes

SHARED_INPUTS = {"study_digits"}
OUTPUTS = ["test_predictions", "curves", "dynamics", "weights"]


def _for_cell(func, source: str, condition: str):
    """``func`` with the grid cell bound; keeps the function's name for Kedro and kedro-viz."""
    bound = partial(func, source=source, condition=condition)
    bound.__name__ = func.__name__
    bound.__doc__ = func.__doc__
    bound.__module__ = func.__module__
    return bound


def _cell(source: str, condition: str) -> Pipeline:
    train = node(
        _for_cell(nodes.train_condition, source, condition),
        ["targets", "study_digits", "params:training"],
        OUTPUTS,
        name="train",
    )
    cell = Pipeline([train], namespace=condition, inputs=SHARED_INPUTS, parameters={"params:training"})
    return Pipeline(cell, namespace=source, inputs=SHARED_INPUTS, parameters={"params:training"})


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    return sum((_cell(source, condition) for source, condition in grid.namespaces()), Pipeline([]))
