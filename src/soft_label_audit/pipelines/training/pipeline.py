"""Wiring of the `training` pipeline: one training node per (source, condition), in the nested
namespaces ``source`` then ``condition``; each reads ``{source}.{condition}.targets``, the
shared ``study_digits`` and ``pool_digits`` (the held-out unannotated items it predicts) and
trains every seed of ``training.seeds``.

A post-hoc condition (``targets.BUILDERS[c].post_hoc_of``, e.g. ``original_hard_temperature_scaled``)
trains nothing: its cell reads its base condition's six outputs (``{source}.{base}.test_predictions``
... ``weights``) and writes its own: ``scale_temperature`` each run's predictions scaled by the
temperature fitted on its validation items, curves and dynamics copied; ``attach_temperatures``
the base's weights with the temperatures.

The runs' ``weights`` (saved one file per run) are read by no node; each source gathers them by
condition into ``{source}.weights_of_conditions`` so that kedro-viz draws them inside the
source's box (:func:`soft_label_audit.grid.gather`)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell, gather
from soft_label_audit.targets import builder_for

from . import nodes

SHARED_INPUTS = {"study_digits", "pool_digits", "item_stats"}
OUTPUTS = [
    "test_predictions",
    "pool_predictions",
    "final_predictions",
    "curves",
    "dynamics",
    "weights",
]


def _post_hoc_cell(source: str, condition: str, base: str) -> Pipeline:
    """Two nodes: the predictions, curves and dynamics (``scale_temperature``), then the
    weights with the temperatures (``attach_temperatures``; apart so that no edge runs from
    the ``models`` layer back to ``model_output``)."""
    base_outputs = [f"{source}.{base}.{name}" for name in OUTPUTS]
    scale = node(
        func=bind_cell(nodes.scale_temperature, source, condition),
        inputs=base_outputs[:-1],
        outputs=OUTPUTS[:-1],
        name="scale_temperature",
    )
    attach = node(
        func=bind_cell(nodes.attach_temperatures, source, condition),
        inputs=[base_outputs[-1], "curves"],
        outputs="weights",
        name="attach_temperatures",
    )
    shared = set(base_outputs)
    cell = Pipeline([scale, attach], namespace=condition, inputs=shared, tags=condition)
    return Pipeline(cell, namespace=source, inputs=shared)


def _cell(source: str, condition: str) -> Pipeline:
    base = builder_for(condition).post_hoc_of
    if base is not None:
        return _post_hoc_cell(source, condition, base)
    train = node(
        func=bind_cell(nodes.train_condition, source, condition),
        inputs=["targets", "study_digits", "pool_digits", "params:training", "item_stats"],
        outputs=OUTPUTS,
        name="train",
    )
    cell = Pipeline(
        [train],
        namespace=condition,
        inputs=SHARED_INPUTS,
        parameters={"params:training"},
        tags=condition,
    )
    return Pipeline(cell, namespace=source, inputs=SHARED_INPUTS, parameters={"params:training"})


def _gather_weights(grid: StudyGrid, source: str) -> Pipeline:
    gathering = node(
        func=gather(grid.conditions),
        inputs=[f"{source}.{condition}.weights" for condition in grid.conditions],
        outputs=f"{source}.weights_of_conditions",
        name="gather_weights",
        namespace=source,
    )
    return Pipeline([gathering])


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    cells = sum((_cell(source, condition) for source, condition in grid.namespaces()), Pipeline([]))
    return cells + sum((_gather_weights(grid, source) for source in grid.sources), Pipeline([]))
