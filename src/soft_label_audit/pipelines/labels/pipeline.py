"""Wiring of the `labels` pipeline: one target-building node per (source, condition), in the
nested namespaces ``source`` then ``condition`` (datasets ``{source}.{condition}.targets``), plus
the teachers when a condition needs one, the ``targets_summary`` of every condition's strength
and the ``mode_shifts_by_rule`` count.

Each condition's node is named for what it builds (``build_<condition>_targets``) and reads its
own recipe ``params:labels.conditions.<condition>`` and only the tables its builder declares
(:data:`soft_label_audit.targets.BUILDERS`): kedro-viz shows where the human label
(``human_soft_labels``), the human mode (``item_stats``) and the teacher enter.

Namespaces are chosen for kedro-viz: the nodes every condition shares (teachers, mode shifts)
form the box ``labels``; each source summarises its own conditions' targets inside its box
(``{source}.targets_summary_of_conditions``), so the per-run targets never leave it, and the
``reporting`` box stacks the sources' summaries into ``targets_summary``. Dataset names carry no
stage prefix.
"""

from __future__ import annotations

import functools

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell
from soft_label_audit.pipelines.reporting.nodes import collect
from soft_label_audit.targets import builder_for, recipe_node

from . import nodes

NAMESPACE = "labels"
SUMMARY_NAMESPACE = "reporting"
TEACHER_OUTPUTS = ["teacher_model", "teacher_logits"]
LARGE_TEACHER_OUTPUTS = ["large_teacher_model", "large_teacher_logits"]


def source_summary(source: str) -> str:
    """The table of one source's targets summary, inside the source's namespace."""
    return f"{source}.targets_summary_of_conditions"


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
        # kedro-viz shows the condition's builder (targets.BUILDERS) as the node's code
        func=recipe_node(condition, bind_cell(nodes.build_condition_targets, source, condition)),
        inputs=inputs,
        outputs="targets",
        name=f"build_{condition}_targets",
    )
    cell = Pipeline(
        [build], namespace=condition, inputs=shared, parameters=parameters, tags=condition
    )
    return Pipeline(cell, namespace=source, inputs=shared, parameters=parameters)


def _summary(grid: StudyGrid) -> Pipeline:
    """Per source, inside its box, then stacked across sources (rows in grid order, as one
    ``summarise_targets`` over every (source, condition) would give)."""
    per_source = []
    for source in grid.sources:
        keys = [(source, condition) for condition in grid.conditions]
        summarise = functools.update_wrapper(
            functools.partial(nodes.summarise_targets, keys=keys), nodes.summarise_targets
        )
        per_source.append(
            node(
                func=summarise,
                inputs=["study_digits", *(f"{s}.{c}.targets" for s, c in keys)],
                outputs=source_summary(source),
                name="summarise_targets",
                namespace=source,
            )
        )
    stack = node(
        func=collect,
        inputs=[source_summary(source) for source in grid.sources],
        outputs="targets_summary",
        name="collect_targets_summary",
    )
    return Pipeline(per_source) + Pipeline(
        [stack], namespace=SUMMARY_NAMESPACE, prefix_datasets_with_namespace=False
    )


def _shared(grid: StudyGrid) -> Pipeline:
    needs = {need for c in grid.conditions for need in builder_for(c).needs}
    shared = [
        node(
            func=nodes.count_mode_shifts_by_rule,
            inputs=[
                "human_soft_labels_by_rule",
                "study_digits",
                "validated_annotations",
                "params:labels.none_slot",
                "params:annotation.mode_support",
                "params:annotation.dawid_skene",
            ],
            outputs="mode_shifts_by_rule",
            name="count_mode_shifts_by_rule",
        )
    ]
    if "teacher" in needs:
        shared.append(
            node(
                func=nodes.fit_teacher,
                inputs=["study_digits", "params:labels.teacher", "params:training"],
                outputs=TEACHER_OUTPUTS,
                name="fit_cross_fitted_teacher",
            )
        )
    if "large_teacher" in needs:
        shared.append(
            node(
                func=nodes.fit_large_teacher,
                inputs=[
                    "digits",
                    "study_digits",
                    "pool_digits",
                    "params:labels.large_teacher",
                    "params:training",
                ],
                outputs=LARGE_TEACHER_OUTPUTS,
                name="fit_large_teacher",
            )
        )
    return Pipeline(shared, namespace=NAMESPACE, prefix_datasets_with_namespace=False)


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    cells = [_cell(source, condition) for source, condition in grid.namespaces()]
    return _shared(grid) + sum(cells, Pipeline([])) + _summary(grid)
