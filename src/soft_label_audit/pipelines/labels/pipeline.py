"""Wiring of the `labels` pipeline: one target-building node per (source, condition), in the
nested namespaces ``source`` then ``condition`` (datasets ``{source}.{condition}.targets``), plus
the teachers when a condition needs one, the ``targets_summary`` of every condition's strength
and the ``mode_shifts_by_rule`` count.

Each condition's node is named for what it builds (``build_<condition>_targets``) and reads its
own recipe ``params:labels.conditions.<condition>`` and only the tables its builder declares
(:data:`soft_label_audit.targets.BUILDERS`): kedro-viz shows where the human label
(``human_soft_labels``), the human mode (``item_stats``) and the teacher enter.
"""

from __future__ import annotations

import functools

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell
from soft_label_audit.targets import builder_for

from . import nodes

TEACHER_OUTPUTS = ["teacher_model", "teacher_logits"]
LARGE_TEACHER_OUTPUTS = ["large_teacher_model", "large_teacher_logits"]


def _cell(source: str, condition: str) -> Pipeline:
    needs = builder_for(condition).needs
    recipe = f"params:labels.conditions.{condition}"
    inputs = {
        "study_digits": "study_digits",
        "options": recipe,
        "none_slot": "params:labels.none_slot",
    }
    for need in needs:
        dataset = nodes.NEED_DATASETS[need]
        inputs["teacher_logits" if need.endswith("teacher") else dataset] = dataset
    shared = {d for key, d in inputs.items() if not d.startswith("params:")}
    parameters = {recipe, "params:labels.none_slot"}
    build = node(
        bind_cell(nodes.build_condition_targets, source, condition),
        inputs,
        "targets",
        name=f"build_{condition}_targets",
    )
    cell = Pipeline([build], namespace=condition, inputs=shared, parameters=parameters)
    return Pipeline(cell, namespace=source, inputs=shared, parameters=parameters)


def _summary(grid: StudyGrid) -> Pipeline:
    keys = grid.namespaces()
    summarise = functools.update_wrapper(
        functools.partial(nodes.summarise_targets, keys=keys), nodes.summarise_targets
    )
    return Pipeline(
        [
            node(
                summarise,
                ["study_digits", *(f"{s}.{c}.targets" for s, c in keys)],
                "targets_summary",
                name="summarise_targets",
            ),
        ]
    )


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    cells = [_cell(source, condition) for source, condition in grid.namespaces()]
    needs = {need for c in grid.conditions for need in builder_for(c).needs}
    extra = [
        node(
            nodes.count_mode_shifts_by_rule,
            [
                "human_soft_labels_by_rule",
                "study_digits",
                "validated_annotations",
                "params:labels.none_slot",
                "params:annotation.mode_support",
            ],
            "mode_shifts_by_rule",
            name="count_mode_shifts_by_rule",
        )
    ]
    if "teacher" in needs:
        extra.append(
            node(
                nodes.fit_teacher,
                ["study_digits", "params:labels.teacher"],
                TEACHER_OUTPUTS,
                name="fit_cross_fitted_teacher",
            )
        )
    if "large_teacher" in needs:
        extra.append(
            node(
                nodes.fit_large_teacher,
                ["digits", "study_digits", "params:labels.large_teacher"],
                LARGE_TEACHER_OUTPUTS,
                name="fit_large_teacher",
            )
        )
    return Pipeline(extra) + sum(cells, Pipeline([])) + _summary(grid)
