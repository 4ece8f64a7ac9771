"""Project pipelines, registered under the stage names of docs/architecture.md."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from soft_label_audit.grid import active_grid
from soft_label_audit.pipelines import annotation, digits, evaluation, labels, reporting, training


def register_pipelines() -> dict[str, Pipeline]:
    study_grid = active_grid()
    pipelines = {
        # one box in kedro-viz, like every stage; its datasets keep their plain names
        "digits": Pipeline(
            digits.create_pipeline(), namespace="digits", prefix_datasets_with_namespace=False
        ),
        "annotation": annotation.create_pipeline(),
        "labels": labels.create_pipeline(grid=study_grid),
        "training": training.create_pipeline(grid=study_grid),
        "evaluation": evaluation.create_pipeline(grid=study_grid),
        "reporting": reporting.create_pipeline(grid=study_grid),
    }
    # every node carries its stage's tag (and, in a (source, condition) namespace, the
    # condition's), so kedro-viz's tag filter and ``kedro run --tags`` select a stage or a condition
    pipelines = {stage: Pipeline(pipe, tags=stage) for stage, pipe in pipelines.items()}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
