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
commit, and the model and optimizer settings (``training`` parameters) as params. The hook keeps
the child run ids, so later nodes of the same session log into the same runs; a later session
(``kedro run --pipeline evaluation`` after ``--pipeline training``) finds them by their tags.
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

from soft_label_audit.grid import StudyGrid

logger = logging.getLogger(__name__)

CHILD_TAG = "soft_label_audit.child_run"
LOGGED_KINDS = ("curves", "metrics", "figures")
#: parameter blocks logged as params of every child run
RUN_PARAM_KEYS = ("model", "optimizer", "schedule", "epochs", "batch_size", "seeds")
_SEED_PREFIX = re.compile(r"^seed_?(\d+)/(.+)$")
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call
#: set by soft_label_audit.runner.DaskRunner on its workers: the driver's parent run, which is
#: not active in a worker process
PARENT_RUN_ENV = "SOFT_LABEL_AUDIT_MLFLOW_PARENT_RUN_ID"


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
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


class MlflowChildRunsHook:
    """One MLflow child run per (source, condition, seed) under kedro-mlflow's parent run."""

    def __init__(self) -> None:
        self.run_ids: dict[tuple[str, str, int], str] = {}
        self._params: dict[str, Any] = {}
        self._grid: StudyGrid | None = None
        self._project_path: Path | None = None
        self._parent = None
        self._created: set[str] = set()
        self._commit: str | None = None

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
        self._parent = mlflow.active_run()  # kedro-mlflow's hook has started it by now

    @hook_impl
    def after_node_run(self, node, catalog, inputs: dict[str, Any], outputs: dict[str, Any], is_async: bool = False) -> None:
        targets = [(name, value) for name, value in outputs.items() if self._parse(name)]
        if not targets:
            return
        parent = self._parent_run()
        if parent is None:
            return
        annotation_source = self._annotation_source(inputs)
        for name, value in targets:
            source, condition, kind = self._parse(name)
            getattr(self, f"_log_{kind}")(parent, source, condition, annotation_source, value)

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._close("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._close("FAILED")

    # ------------------------------------------------------------------ lookups

    def _parse(self, name: str) -> tuple[str, str, str] | None:
        parts = name.split(".")
        if len(parts) != 3 or parts[2] not in LOGGED_KINDS:
            return None
        if self._grid is not None and (parts[0] not in self._grid.sources or parts[1] not in self._grid.conditions):
            return None
        return parts[0], parts[1], parts[2]

    def _parent_run(self):
        import mlflow

        if self._parent is None and os.environ.get(PARENT_RUN_ENV):  # a node on a Dask worker
            self._parent = self._client().get_run(os.environ[PARENT_RUN_ENV])
        return self._parent or mlflow.active_run()

    def _annotation_source(self, inputs: dict[str, Any]) -> str:
        for value in inputs.values():
            columns = getattr(value, "columns", None)
            if columns is not None and "annotation_source" in columns and len(value):
                return str(value["annotation_source"].iloc[0])
        annotation = self._params.get("annotation") or {}
        return str(annotation.get("source", "unknown"))

    def _client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient()

    def child_run(self, parent, source: str, condition: str, seed: int, annotation_source: str) -> str:
        """The child run id of (source, condition, seed): cached, else found by tags, else created."""
        key = (source, condition, int(seed))
        if key in self.run_ids:
            return self.run_ids[key]
        client = self._client()
        experiment = parent.info.experiment_id
        base = f"tags.`{CHILD_TAG}` = 'true' and tags.source = '{source}' and tags.condition = '{condition}' and tags.seed = '{int(seed)}'"
        for extra in (f" and tags.`mlflow.parentRunId` = '{parent.info.run_id}'", f" and tags.annotation_source = '{annotation_source}'"):
            found = client.search_runs([experiment], filter_string=base + extra, order_by=["attributes.start_time DESC"], max_results=1)
            if found:
                self.run_ids[key] = found[0].info.run_id
                return self.run_ids[key]
        run_id = self._create(client, parent, source, condition, int(seed), annotation_source)
        self.run_ids[key] = run_id
        return run_id

    def _create(self, client, parent, source: str, condition: str, seed: int, annotation_source: str) -> str:
        from mlflow.entities import Param

        tags = {
            "mlflow.parentRunId": parent.info.run_id,
            CHILD_TAG: "true",
            "source": source,
            "condition": condition,
            "seed": str(seed),
            "annotation_source": annotation_source,
        }
        if self._commit:
            tags["mlflow.source.git.commit"] = self._commit
        run = client.create_run(parent.info.experiment_id, tags=tags, run_name=f"{source}.{condition}.seed{seed}")
        training = self._params.get("training") or {}
        params = {"source": source, "condition": condition, "seed": str(seed), "annotation_source": annotation_source}
        params |= flatten({k: training[k] for k in RUN_PARAM_KEYS if k in training}, "training.")
        client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
        self._created.add(run.info.run_id)
        return run.info.run_id

    # ------------------------------------------------------------------ logging

    def _log_metrics(self, parent, source, condition, annotation_source, frame, step_column: str | None = None) -> None:
        from mlflow.entities import Metric

        if "seed" not in getattr(frame, "columns", ()):
            logger.warning("%s.%s: no seed column, nothing logged to MLflow", source, condition)
            return
        numeric = [c for c in frame.select_dtypes("number").columns if c not in ("seed", step_column)]
        client = self._client()
        now = int(time.time() * 1000)
        for seed, rows in frame.groupby("seed", sort=True):
            run_id = self.child_run(parent, source, condition, int(seed), annotation_source)
            metrics = [
                Metric(col, float(value), now, int(row[step_column]) if step_column else 0)
                for _, row in rows.iterrows()
                for col in numeric
                if (value := row[col]) is not None and math.isfinite(float(value))
            ]
            for start in range(0, len(metrics), _BATCH):
                client.log_batch(run_id, metrics=metrics[start : start + _BATCH])

    def _log_curves(self, parent, source, condition, annotation_source, frame) -> None:
        self._log_metrics(parent, source, condition, annotation_source, frame, step_column="epoch")

    def _log_figures(self, parent, source, condition, annotation_source, figures: dict) -> None:
        client = self._client()
        seeds = [int(s) for s in (self._params.get("training") or {}).get("seeds", [])]
        seeds = seeds or sorted(k[2] for k in self.run_ids if k[:2] == (source, condition))
        for name, figure in figures.items():
            match = _SEED_PREFIX.match(str(name))
            for seed in [int(match.group(1))] if match else seeds:
                run_id = self.child_run(parent, source, condition, seed, annotation_source)
                client.log_figure(run_id, figure, f"figures/{match.group(2) if match else name}.png")

    def _close(self, status: str) -> None:
        created = set(self._created)
        if self._parent is not None:  # children that Dask workers created under this parent
            created |= self._open_children(self._parent)
        client = self._client() if created else None
        for run_id in sorted(created):
            try:
                client.set_terminated(run_id, status)
            except Exception as exc:  # never mask the pipeline's own outcome
                logger.warning("could not close MLflow child run %s: %s", run_id, exc)
        self._created.clear()
        self._parent = None

    def _open_children(self, parent) -> set[str]:
        try:
            found = self._client().search_runs(
                [parent.info.experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                "and attributes.status = 'RUNNING'",
                max_results=10_000,
            )
        except Exception as exc:  # never mask the pipeline's own outcome
            logger.warning("could not list the MLflow child runs of %s: %s", parent.info.run_id, exc)
            return set()
        return {run.info.run_id for run in found if run.data.tags.get(CHILD_TAG) == "true"}
