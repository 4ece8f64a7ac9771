"""Wiring of the `annotation` pipeline (filled by its issue)."""

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([])
