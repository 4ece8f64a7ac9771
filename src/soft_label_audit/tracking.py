"""MLflow child runs per (source, condition, seed), logged by one hook; nodes stay unaware.

kedro-mlflow opens the parent run of a ``kedro run``. While it is active, after every node this
hook looks at the node's outputs named ``{source}.{condition}.<kind>`` and logs them into the
child run of each seed (created on first use, nested under the parent run):

* ``curves``: a frame with ``seed`` and ``epoch`` columns; every other numeric column is logged
  as a metric with ``step = epoch``;
* ``metrics``: a frame with one row per ``seed``; every other numeric column is logged as a metric;
* ``figures``: a dict name -> matplotlib Figure, logged as ``figures/<name>.png`` into every
  child run of the namespace, or only into seed n's run when the name starts with ``seed<n>/``.

A child run carries tags ``source``, ``condition``, ``seed``, ``annotation_source`` and the git
commit, and the model and optimizer settings (``training`` parameters) as params.

Runs never mix: a child run is looked up only among the children of the *current* parent run,
so every ``kedro run`` logs complete children under its own parent. Resuming is explicit: start
the ``kedro run`` inside an earlier parent run with MLflow's own variable,
``MLFLOW_RUN_ID=<parent run id> kedro run --pipeline evaluation``, and the evaluation metrics
join that parent's training children.

The parent run is named ``<pipeline> | env=<env> | annotation=<source>``, tagged
``soft_label_audit.parent_run``, and receives the study's headline metrics
(``<source>.<condition>.<metric>``, the mean over seeds) when ``study_summary`` is made. The
experiment is tagged ``mlflow.experimentKind = custom_model_development`` so that MLflow 3 opens
it as a model-training experiment. When the pipeline fails, the parent is marked FAILED (by
kedro-mlflow) and the child runs this run created are marked FAILED and deleted, so no
half-logged child remains (``mlflow gc`` purges them; the UI can restore them).

Processes that run nodes away from the session (a distributed runner's workers) have no active
run: there the parent run id is read from the environment variable :data:`PARENT_RUN_ENV`, which
this hook sets for the duration of the pipeline run (so processes started by the runner inherit
it) and which a runner may pass to its workers explicitly. The children they create are closed
by the session's hook at the end of the run, since it closes every child of its parent.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from soft_label_audit.configs import AnnotationConfig
from soft_label_audit.grid import StudyGrid

logger = logging.getLogger(__name__)

CHILD_TAG = "soft_label_audit.child_run"
PARENT_TAG = "soft_label_audit.parent_run"
#: the parent run id for processes without an active MLflow run (distributed workers)
PARENT_RUN_ENV = "SOFT_LABEL_AUDIT_MLFLOW_PARENT_RUN_ID"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
LOGGED_KINDS = ("curves", "metrics", "figures")
#: parameter blocks logged as params of every child run
RUN_PARAM_KEYS = ("model", "optimizer", "schedule", "epochs", "batch_size", "seeds")
#: metrics of ``study_summary`` (``<metric>__mean``) logged on the parent run
HEADLINE_METRICS = re.compile(r"^(accuracy|accuracy_human_mode|nll|brier|kl_human|ece_\d+)__mean$")
SUMMARY_DATASET = "study_summary"
_SEED_PREFIX = re.compile(r"^seed_?(\d+)/(.+)$")
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"} (lists kept as their string)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


def git_commit(path: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def parent_run_name(
    pipeline_names: list[str] | str | None, env: str | None, annotation_source: str
) -> str:
    """``__default__ | env=test | annotation=simulated``: what the parent run of a kedro run did."""
    if isinstance(pipeline_names, str):
        pipeline_names = [pipeline_names]
    pipelines = "+".join(pipeline_names or ["__default__"])
    return f"{pipelines} | env={env or 'base'} | annotation={annotation_source}"


class MlflowChildRunsHook:
    """One MLflow child run per (source, condition, seed) under kedro-mlflow's parent run."""

    def __init__(self) -> None:
        self.run_ids: dict[tuple[str, str, int], str] = {}
        self._params: dict[str, Any] = {}
        self._grid: StudyGrid | None = None
        self._project_path: Path | None = None
        self._parent_id: str | None = None
        self._experiment_id: str | None = None
        self._created: set[str] = set()
        self._commit: str | None = None
        self._env_before: str | None = None
        self._set_env = False
        self._session_start = 0  # ms; children of the parent started since are this run's

    # ------------------------------------------------------------------ kedro hooks

    @hook_impl
    def after_context_created(self, context) -> None:
        # raw parameters: `context.params` would build the pipelines (see hooks.StudyGridHook)
        self._params = dict(context.config_loader["parameters"])
        self._grid = StudyGrid.from_params(self._params) if "study" in self._params else None
        self._project_path = Path(context.project_path)
        self._commit = git_commit(self._project_path)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import mlflow

        self.run_ids.clear()  # child runs belong to one parent run: each pipeline run starts afresh
        self._created.clear()
        self._session_start = int(time.time() * 1000)
        parent = mlflow.active_run()  # kedro-mlflow's hook has started it by now
        if parent is None:
            self._parent_id = None
            return
        self._parent_id, self._experiment_id = parent.info.run_id, parent.info.experiment_id
        client = self._client()
        client.set_experiment_tag(self._experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        if (
            PARENT_TAG not in client.get_run(self._parent_id).data.tags
        ):  # a resumed run keeps its name
            annotation = AnnotationConfig.source_of(self._params)
            name = parent_run_name(
                run_params.get("pipeline_names") or run_params.get("pipeline_name"),
                run_params.get("env"),
                annotation,
            )
            client.set_tag(self._parent_id, "mlflow.runName", name)
            client.set_tag(self._parent_id, PARENT_TAG, "true")
        logger.info(
            "MLflow run %s: %s", self._parent_id, client.get_run(self._parent_id).info.run_name
        )
        self._env_before, self._set_env = os.environ.get(PARENT_RUN_ENV), True
        os.environ[PARENT_RUN_ENV] = self._parent_id

    @hook_impl
    def after_node_run(
        self, node, catalog, inputs: dict[str, Any], outputs: dict[str, Any], is_async: bool = False
    ) -> None:
        targets = [(name, value) for name, value in outputs.items() if self._parse(name)]
        summary = outputs.get(SUMMARY_DATASET)
        if not targets and summary is None:
            return
        parent_id = self.parent_run_id()
        if parent_id is None:
            return
        if summary is not None:
            self._log_headline(parent_id, summary)
        annotation_source = self._annotation_source(inputs)
        for name, value in targets:
            source, condition, kind = self._parse(name)
            getattr(self, f"_log_{kind}")(parent_id, source, condition, annotation_source, value)

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._close(failed=False)

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._close(failed=True)

    # ------------------------------------------------------------------ lookups

    def _parse(self, name: str) -> tuple[str, str, str] | None:
        parts = name.split(".")
        if len(parts) != 3 or parts[2] not in LOGGED_KINDS:
            return None
        if self._grid is not None and (
            parts[0] not in self._grid.sources or parts[1] not in self._grid.conditions
        ):
            return None
        return parts[0], parts[1], parts[2]

    def parent_run_id(self) -> str | None:
        """The parent run: this session's, else the active run, else :data:`PARENT_RUN_ENV`."""
        import mlflow

        if self._parent_id:
            return self._parent_id
        active = mlflow.active_run()
        if active is not None:
            return active.info.run_id
        return os.environ.get(PARENT_RUN_ENV) or None

    def _annotation_source(self, inputs: dict[str, Any]) -> str:
        for value in inputs.values():
            columns = getattr(value, "columns", None)
            if columns is not None and "annotation_source" in columns and len(value):
                return str(value["annotation_source"].iloc[0])
        return AnnotationConfig.source_of(self._params)

    def _client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient()

    def _children(self, client, parent_id: str, extra: str = "") -> list:
        experiment = self._experiment_id or client.get_run(parent_id).info.experiment_id
        query = f"tags.`{CHILD_TAG}` = 'true' and tags.`mlflow.parentRunId` = '{parent_id}'" + extra
        return client.search_runs([experiment], filter_string=query, max_results=10_000)

    def child_run(
        self, parent_id: str, source: str, condition: str, seed: int, annotation_source: str
    ) -> str:
        """The child run id of (source, condition, seed) under ``parent_id``: cached, else found
        among that parent's children (a resumed parent, another process), else created."""
        key = (source, condition, int(seed))
        if key in self.run_ids:
            return self.run_ids[key]
        client = self._client()
        extra = (
            f" and tags.source = '{source}' and tags.condition = '{condition}'"
            f" and tags.seed = '{int(seed)}'"
        )
        found = self._children(client, parent_id, extra)
        if found:
            self.run_ids[key] = found[0].info.run_id
        else:
            self.run_ids[key] = self._create(
                client, parent_id, source, condition, int(seed), annotation_source
            )
        return self.run_ids[key]

    def _create(
        self, client, parent_id: str, source: str, condition: str, seed: int, annotation_source: str
    ) -> str:
        from mlflow.entities import Param

        tags = {
            "mlflow.parentRunId": parent_id,
            CHILD_TAG: "true",
            "source": source,
            "condition": condition,
            "seed": str(seed),
            "annotation_source": annotation_source,
        }
        if self._commit:
            tags["mlflow.source.git.commit"] = self._commit
        experiment = self._experiment_id or client.get_run(parent_id).info.experiment_id
        run = client.create_run(experiment, tags=tags, run_name=f"{source}.{condition}.seed{seed}")
        training = self._params.get("training") or {}
        params = {
            "source": source,
            "condition": condition,
            "seed": str(seed),
            "annotation_source": annotation_source,
        }
        params |= flatten({k: training[k] for k in RUN_PARAM_KEYS if k in training}, "training.")
        client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
        self._created.add(run.info.run_id)
        return run.info.run_id

    # ------------------------------------------------------------------ logging

    def _log_metrics(
        self, parent_id, source, condition, annotation_source, frame, step_column: str | None = None
    ) -> None:
        from mlflow.entities import Metric

        if "seed" not in getattr(frame, "columns", ()):
            logger.warning("%s.%s: no seed column, nothing logged to MLflow", source, condition)
            return
        numeric = [
            c for c in frame.select_dtypes("number").columns if c not in ("seed", step_column)
        ]
        client = self._client()
        now = int(time.time() * 1000)
        for seed, rows in frame.groupby("seed", sort=True):
            run_id = self.child_run(parent_id, source, condition, int(seed), annotation_source)
            metrics = [
                Metric(col, float(value), now, int(row[step_column]) if step_column else 0)
                for _, row in rows.iterrows()
                for col in numeric
                if (value := row[col]) is not None and math.isfinite(float(value))
            ]
            for start in range(0, len(metrics), _BATCH):
                client.log_batch(run_id, metrics=metrics[start : start + _BATCH])

    def _log_curves(self, parent_id, source, condition, annotation_source, frame) -> None:
        self._log_metrics(
            parent_id, source, condition, annotation_source, frame, step_column="epoch"
        )

    def _log_figures(self, parent_id, source, condition, annotation_source, figures: dict) -> None:
        client = self._client()
        seeds = [int(s) for s in (self._params.get("training") or {}).get("seeds", [])]
        seeds = seeds or sorted(k[2] for k in self.run_ids if k[:2] == (source, condition))
        for name, figure in figures.items():
            match = _SEED_PREFIX.match(str(name))
            for seed in [int(match.group(1))] if match else seeds:
                run_id = self.child_run(parent_id, source, condition, seed, annotation_source)
                client.log_figure(
                    run_id, figure, f"figures/{match.group(2) if match else name}.png"
                )

    def _log_headline(self, parent_id: str, summary) -> None:
        """``<source>.<condition>.<metric>`` on the parent run: the mean over seeds."""
        from mlflow.entities import Metric

        columns = [c for c in getattr(summary, "columns", ()) if HEADLINE_METRICS.match(c)]
        if not columns or not {"source", "condition"} <= set(summary.columns):
            return
        now = int(time.time() * 1000)
        metrics = [
            Metric(
                f"{row['source']}.{row['condition']}.{col.removesuffix('__mean')}",
                float(row[col]),
                now,
                0,
            )
            for _, row in summary.iterrows()
            for col in columns
            if row[col] is not None and math.isfinite(float(row[col]))
        ]
        client = self._client()
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(parent_id, metrics=metrics[start : start + _BATCH])

    def _close(self, failed: bool) -> None:
        """Close every child of the parent still running; after a failure, remove this run's."""
        parent_id = self._parent_id
        try:
            if parent_id is not None:
                client = self._client()
                children = self._children(client, parent_id)
                for child in children:
                    run_id = child.info.run_id
                    created_here = (
                        run_id in self._created or child.info.start_time >= self._session_start
                    )
                    if failed and created_here:
                        client.set_terminated(run_id, "FAILED")
                        client.delete_run(run_id)
                    elif child.info.status == "RUNNING":
                        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
                if failed and self._created:
                    logger.info(
                        "MLflow: %d half-logged child run(s) of the failed run %s deleted",
                        len(self._created),
                        parent_id,
                    )
        except Exception as exc:  # never mask the pipeline's own outcome
            logger.warning("could not close the MLflow child runs of %s: %s", parent_id, exc)
        finally:
            if self._set_env:
                if self._env_before is None:
                    os.environ.pop(PARENT_RUN_ENV, None)
                else:
                    os.environ[PARENT_RUN_ENV] = self._env_before
                self._set_env = False
            self._created.clear()
            self._parent_id = None
