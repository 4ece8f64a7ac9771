"""Project pipelines, registered under the stage names of docs/architecture.md."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from soft_label_audit.grid import active_grid
from soft_label_audit.pipelines import annotation, digits, evaluation, labels, reporting, training


def register_pipelines() -> dict[str, Pipeline]:
    study_grid = active_grid()
    pipelines = {
        "digits": digits.create_pipeline(),
        "annotation": annotation.create_pipeline(),
        "labels": labels.create_pipeline(grid=study_grid),
        "training": training.create_pipeline(grid=study_grid),
        "evaluation": evaluation.create_pipeline(grid=study_grid),
        "reporting": reporting.create_pipeline(grid=study_grid),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
