"""Reading one complete MLflow study record (the notebook's MLflow part).

A study record (:mod:`soft_label_audit.tracking`) is a parent run with one child run per
(source, condition, seed). It is *complete* when every (source, condition, seed) of the study
grid has a child that holds its curves, its test metrics and its figures (the child tags
``soft_label_audit.logged.<kind>``). :func:`read_study_record` returns the newest complete
record of an experiment, or the record chosen by its parent run id, and says plainly what is
missing when there is none: never the latest child per cell across parents, which mixes runs
and shows NaN for what a partial run did not log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from soft_label_audit.errors import UserError
from soft_label_audit.tracking import CHILD_TAG, LOGGED_TAG, PARENT_TAG

#: what a child of a complete record holds
REQUIRED_KINDS = ("curves", "metrics", "figures")
_WHAT = {"curves": "curves", "metrics": "test metrics", "figures": "figures"}
_STAGE = {"curves": "training", "metrics": "evaluation", "figures": "evaluation"}


class IncompleteStudyRecordError(UserError):
    """No complete study record in the experiment (or the chosen one is not complete)."""


@dataclass(frozen=True)
class StudyRecord:
    """One parent run and its children (one row per (source, condition, seed), as
    ``mlflow.search_runs`` gives them: ``run_id``, ``tags.*``, ``metrics.*``, ``params.*``)."""

    parent: Any  # mlflow.entities.Run
    children: pd.DataFrame

    @property
    def run_id(self) -> str:
        return self.parent.info.run_id

    def describe(self) -> str:
        return (
            f"study record {self.parent.info.run_name!r} ({self.run_id}): "
            f"{len(self.children)} child runs, status {self.parent.info.status}"
        )


def _children(experiment_id: str, parent_id: str) -> pd.DataFrame:
    import mlflow

    return mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{CHILD_TAG}` = 'true' and tags.`mlflow.parentRunId` = '{parent_id}'",
        max_results=10_000,
    )


def missing_parts(children: pd.DataFrame, cells: list[tuple[str, str, int]]) -> dict[str, int]:
    """How many of ``cells`` lack each kind of :data:`REQUIRED_KINDS` among ``children``."""
    held: dict[tuple[str, str, int], set[str]] = {}
    for _, row in children.iterrows():
        key = (row["tags.source"], row["tags.condition"], int(row["tags.seed"]))
        held[key] = {
            kind for kind in REQUIRED_KINDS if row.get(f"tags.{LOGGED_TAG}{kind}") == "true"
        }
    return {
        kind: n
        for kind in REQUIRED_KINDS
        if (n := sum(kind not in held.get(cell, set()) for cell in cells))
    }


def _explain(parent, missing: dict[str, int], n_cells: int, env: str | None) -> str:
    lacks = ", ".join(f"{_WHAT[k]} for {n} of {n_cells} runs" for k, n in missing.items())
    stages = sorted({_STAGE[k] for k in missing}, key=["training", "evaluation"].index)
    env_arg = f" --env {env}" if env and env not in ("base", "local") else ""
    commands = " then ".join(f"`kedro run{env_arg} --pipeline {s}`" for s in stages)
    return f"{parent.info.run_name!r} ({parent.info.run_id}) lacks {lacks}; run {commands}"


def read_study_record(
    experiment: str,
    cells: list[tuple[str, str, int]],
    run_id: str | None = None,
    env: str | None = None,
) -> StudyRecord:
    """The newest complete study record of ``experiment`` (by name), or the record whose parent
    run is ``run_id``; ``cells`` are the grid's (source, condition, seed).

    Raises :class:`IncompleteStudyRecordError`, saying what the newest record (or the chosen
    one) lacks and which stage makes it, when there is no complete record.
    """
    import mlflow

    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise IncompleteStudyRecordError(
            f"no MLflow experiment {experiment!r}: nothing has been run in this environment",
            f"run the study first: `kedro run{f' --env {env}' if env else ''}`",
        )
    if run_id is not None:
        parents = [client.get_run(run_id)]
    else:
        parents = client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = 'true'",
            order_by=["attributes.start_time DESC"],
            max_results=1000,
        )
    if not parents:
        raise IncompleteStudyRecordError(
            f"no study record in the MLflow experiment {experiment!r}",
            f"run the study first: `kedro run{f' --env {env}' if env else ''}`",
        )
    newest_gap = None
    for parent in parents:
        children = _children(found.experiment_id, parent.info.run_id)
        missing = missing_parts(children, cells)
        if not missing:
            key = ["tags.source", "tags.condition", "tags.seed"]
            children = children.sort_values(key).reset_index(drop=True)
            return StudyRecord(parent, children)
        newest_gap = newest_gap or (parent, missing)
    parent, missing = newest_gap
    if run_id is not None:
        message = f"the chosen study record {_explain(parent, missing, len(cells), env)}"
    else:
        message = (
            f"no complete study record in the MLflow experiment {experiment!r} "
            f"({len(parents)} record(s)); the newest, {_explain(parent, missing, len(cells), env)}"
        )
    raise IncompleteStudyRecordError(
        message, "or choose a complete record by its parent run id (RECORD_ID in the notebook)"
    )


def study_cells(params: dict) -> list[tuple[str, str, int]]:
    """Every (source, condition, seed) of the study's parameters."""
    from soft_label_audit.grid import StudyGrid

    grid = StudyGrid.from_params(params)
    seeds = [int(s) for s in params["training"]["seeds"]]
    return [(s, c, seed) for s, c in grid.namespaces() for seed in seeds]


def read_context_record(context, run_id: str | None = None) -> StudyRecord:
    """:func:`read_study_record` for a Kedro context (the notebook's): the experiment, tracking
    URI and grid of its environment."""
    import mlflow

    mlflow.set_tracking_uri(context.mlflow.server.mlflow_tracking_uri)
    params = context.config_loader["parameters"]
    return read_study_record(
        context.mlflow.tracking.experiment.name, study_cells(params), run_id, env=context.env
    )
