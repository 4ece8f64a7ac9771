"""MLflow records of the study: one parent run per study record, one child run per (source,
condition, seed), logged by one hook; nodes stay unaware.

**One record per study, however the stages are run.** A study record is the parent run of the
study whose inputs a ``kedro run`` reads. It is found by :func:`study_record_key`, a fingerprint
of what identifies the study's inputs on disk (the environment's data root, the annotation
source and the study-defining parameter blocks), stored as the tag :data:`STUDY_KEY_TAG` on the
parent. Before kedro-mlflow opens its run, :meth:`MlflowChildRunsHook.open_study_record` looks
for the newest parent with the same key in the environment's experiment and hands its id to
kedro-mlflow (``tracking.run.id`` of ``mlflow.yml``), which re-opens it; the children of that
parent are then found and logged into again. So ``--pipeline digits`` ... ``--pipeline
reporting`` run one by one, or ``kedro run`` at once, give one parent whose children each hold
their curves, test metrics, figures and model. A run with other settings (another annotation
source, other training settings) has another key and starts its own record. An explicit run id
(``MLFLOW_RUN_ID=<id> kedro run``, ``tracking.run.id`` in ``mlflow.yml``, or a run already
active when the session starts) always wins over the lookup.

After every node this hook looks at the node's outputs named ``{source}.{condition}.<kind>`` and
logs them into the child run of each seed (created on first use, nested under the parent run):

* ``curves``: a frame with ``seed`` and ``epoch`` columns; every other numeric column but the
  per-run ones (:data:`~soft_label_audit.columns.RUN_CURVE_COLUMNS`: best_epoch and the
  convergence check, logged with the metrics) is logged as a metric with ``step = epoch``; the
  node's wall time is logged as ``train_seconds`` (all
  seeds of a condition train together, so they share it). Curve points a re-run logs again
  with the same value are not duplicated.
* ``metrics``: a frame with one row per ``seed``; the headline metrics (:data:`HEADLINE_METRICS`:
  accuracy, nll, brier, ece_<bins>, the same four on the pool (``pool__``) and at the final
  epoch (``final__``), kl_human, best_epoch) are logged as metrics, every other numeric
  column goes into the logged table ``test_metrics.json`` (columns ``metric``, ``value``), read
  back with ``mlflow.load_table("test_metrics.json", run_ids=[...])``.
* ``figures``: a dict name -> matplotlib Figure, logged as ``figures/<name>.png`` into every
  child run of the namespace, or only into seed n's run when the name starts with ``seed<n>/``.
* ``weights``: the trained state dict of each seed, logged as an MLflow PyTorch model named
  ``model`` (``mlflow.pytorch.load_model(f"runs:/{child_id}/model")`` gives the CNN back).
  A post-hoc condition's weights (``targets.BUILDERS[c].post_hoc_of``: its base condition's
  final weights, rescaled) carry each seed's temperatures: they are logged as the params
  ``temperature_best`` and ``temperature_final`` of its child run, with the tag
  :data:`POST_HOC_TAG` saying that the model's logits must be divided by ``temperature_final``
  (the model is the final weights) to give the condition's predictions. A post-hoc node trains
  nothing: its wall time is logged as ``post_hoc_seconds``, not ``train_seconds``.

A child run is named ``<condition> · seed <n> · <source>``, carries tags ``source``,
``condition``, ``seed``, ``annotation_source``, the git commit and ``soft_label_audit.logged.<kind>``
for every kind logged into it, and the model and optimizer settings (``training`` parameters)
as params. A child's Duration spans every stage logged into it; read ``train_seconds`` for the
cost of training.

The parent run is named ``<created, local time> <commit> | <stages> | env=<env> |
annotation=<source>``, where ``<stages>`` are the pipelines run into the record so far, tagged
:data:`PARENT_TAG` and :data:`STUDY_KEY_TAG`, and receives the study's headline metrics
(``<source>.<condition>.<metric>``, the mean over seeds) when ``study_summary`` is made. The
experiment is tagged ``mlflow.experimentKind = custom_model_development`` so that MLflow 3 opens
it as a model-training experiment. When the pipeline fails, the parent is marked FAILED (by
kedro-mlflow) and the child runs this run created are marked FAILED and deleted, so no
half-logged child remains (``mlflow gc`` purges them; the UI can restore them). A run that fails
on a user's mistake (:func:`soft_label_audit.cli.describe_user_error`) before any node completed
leaves the record as it was: a parent it created is deleted, a re-opened one gets its earlier
status back.

Processes that run nodes away from the session (a distributed runner's workers) have no active
run: there the parent run id is read from the environment variable :data:`PARENT_RUN_ENV`, which
this hook sets for the duration of the pipeline run (so processes started by the runner inherit
it) and which a runner may pass to its workers explicitly. The children they create are closed
by the session's hook at the end of the run, since it closes every child of its parent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from soft_label_audit.columns import RUN_CURVE_COLUMNS
from soft_label_audit.configs import AnnotationConfig
from soft_label_audit.grid import StudyGrid

logger = logging.getLogger(__name__)

CHILD_TAG = "soft_label_audit.child_run"
PARENT_TAG = "soft_label_audit.parent_run"
#: the study record's fingerprint (:func:`study_record_key`) on its parent run
STUDY_KEY_TAG = "soft_label_audit.study_key"
#: the pipelines run into a study record so far, comma-separated, in the order first run
STAGES_TAG = "soft_label_audit.stages"
#: ``soft_label_audit.logged.<kind>`` = ``true`` on a child run once ``<kind>`` was logged into it
LOGGED_TAG = "soft_label_audit.logged."
#: the parent run id for processes without an active MLflow run (distributed workers)
PARENT_RUN_ENV = "SOFT_LABEL_AUDIT_MLFLOW_PARENT_RUN_ID"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
LOGGED_KINDS = ("curves", "metrics", "figures", "weights")
#: parameter blocks logged as params of every child run
RUN_PARAM_KEYS = ("model", "optimizer", "schedule", "epochs", "batch_size", "seeds")
#: parameter blocks that define a study's inputs and models (:func:`study_record_key`)
STUDY_BLOCKS = ("study", "digits", "annotation", "simulated_crowd", "labels", "training")
#: metrics of a run's ``metrics`` table logged as MLflow metrics; the rest go into a table
HEADLINE_METRICS = re.compile(
    r"^((pool__|final__)?(accuracy|nll|brier|ece_\d+)|kl_human|best_epoch)$"
)
#: the logged table of a child run's other test metrics
METRICS_TABLE = "test_metrics.json"
#: a child run's model, as an MLflow PyTorch model
MODEL_NAME = "model"
#: on a post-hoc condition's child run: how its logged model gives the condition's predictions
POST_HOC_TAG = "soft_label_audit.post_hoc"
#: metrics of ``study_summary`` (``<metric>__mean``) logged on the parent run
SUMMARY_HEADLINE = re.compile(r"^(accuracy|accuracy_human_mode|nll|brier|kl_human|ece_\d+)__mean$")
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


def study_record_key(
    params: dict[str, Any],
    data_root: str | None,
    records: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The fingerprint that finds a study's MLflow record: SHA-256 (hex) of the environment's
    data root and the provenance of the trained models.

    ``records`` are the provenance records the run's stages will have
    (:func:`soft_label_audit.provenance.expected_records`, published by the provenance hook
    before any node runs as ``provenance.EXPECTED``); the key takes the fingerprint of the
    ``training`` record, which chains the settings of digits, annotation (the vote file's
    SHA-256 included), labels and training. A stage run whose inputs passed the provenance
    check has the records its inputs were made with, so it joins the record those inputs came
    from; another data root, annotation source, vote file or training setting gives another
    key. Without records (a context that runs no pipeline) the key is made of the annotation
    source and a SHA-256 of the study-defining blocks (:data:`STUDY_BLOCKS`) instead.

    >>> key = study_record_key({"annotation": {"source": "simulated"}, "training": {"epochs": 2}}, "data/test")
    >>> key == study_record_key({"training": {"epochs": 2}, "annotation": {"source": "simulated"}}, "data/test")
    True
    >>> key == study_record_key({"annotation": {"source": "simulated"}, "training": {"epochs": 3}}, "data/test")
    False
    >>> len(key)
    64
    """
    if records and "training" in records:
        identity = {"data_root": str(data_root), "training": records["training"]["fingerprint"]}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    blocks = {name: params.get(name) for name in STUDY_BLOCKS}
    settings = hashlib.sha256(json.dumps(blocks, sort_keys=True, default=str).encode()).hexdigest()
    identity = {
        "data_root": str(data_root),
        "annotation_source": AnnotationConfig.source_of(params),
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def changed_params(logged: dict[str, str], params: dict[str, Any], sep: str = ".") -> list[str]:
    """The parameters (flattened as kedro-mlflow logs them, ``block.key``) whose value differs
    from the one ``logged`` in a run: settings outside the study record's key (those that
    change no output, such as ``training.eval_batch_size``, and those of later stages, such
    as ``reporting.alpha``), which MLflow would refuse to log again with a new value.

    >>> changed_params({"training.epochs": "2", "reporting.alpha": "0.05"},
    ...                {"training": {"epochs": 2}, "reporting": {"alpha": 0.01}})
    ['reporting.alpha']
    """

    def flat(block: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(block, dict):
            return {prefix: block}
        return {
            k: v
            for key, value in block.items()
            for k, v in flat(value, f"{prefix}{sep}{key}").items()
        }

    current = {k: v for name, block in params.items() for k, v in flat(block, name).items()}
    return sorted(k for k, v in current.items() if k in logged and logged[k] != str(v))


def _pipelines(run_params: dict[str, Any]) -> list[str]:
    names = run_params.get("pipeline_names") or run_params.get("pipeline_name") or ["__default__"]
    return [names] if isinstance(names, str) else list(names)


def parent_run_name(
    stages: list[str] | str | None,
    env: str | None,
    annotation_source: str,
    created_ms: int | None = None,
    commit: str | None = None,
) -> str:
    """``2026-12-01 22:30 a1b2c3d | training+evaluation | env=test | annotation=simulated``:
    when the record was created (local time), at which commit, what was run into it."""
    if isinstance(stages, str):
        stages = [stages]
    pipelines = "+".join(stages or ["__default__"])
    name = f"{pipelines} | env={env or 'base'} | annotation={annotation_source}"
    when = []
    if created_ms is not None:
        when.append(datetime.fromtimestamp(created_ms / 1000).strftime("%Y-%m-%d %H:%M"))
    if commit:
        when.append(commit[:7])
    return " ".join(when) + " | " + name if when else name


def child_run_name(source: str, condition: str, seed: int) -> str:
    """``human_soft · seed 3 · mnist``: the condition first, so the runs table tells them apart."""
    return f"{condition} · seed {int(seed)} · {source}"


@contextlib.contextmanager
def _quiet(name: str):
    """Only errors from the logger ``name`` while the block runs."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _post_hoc_of(condition: str) -> str | None:
    """The base condition of a post-hoc condition (``targets.BUILDERS``), else None."""
    from soft_label_audit.targets import BUILDERS

    builder = BUILDERS.get(condition)
    return None if builder is None else builder.post_hoc_of


def _is_user_error(error: BaseException) -> bool:
    from soft_label_audit.cli import describe_user_error

    try:
        return describe_user_error(error) is not None
    except Exception:  # describing must never hide the pipeline's own error
        return False


class MlflowChildRunsHook:
    """One MLflow child run per (source, condition, seed) under the study record's parent run."""

    def __init__(self) -> None:
        self.run_ids: dict[tuple[str, str, int], str] = {}
        self._params: dict[str, Any] = {}
        self._grid: StudyGrid | None = None
        self._project_path: Path | None = None
        self._mlflow_config: Any = None  # kedro-mlflow's configuration (context.mlflow)
        self._study_key: str | None = None
        self._data_root: str | None = None
        self._parent_id: str | None = None
        self._experiment_id: str | None = None
        self._created: set[str] = set()
        self._commit: str | None = None
        self._env_before: str | None = None
        self._set_env = False
        self._session_start = 0  # ms; children of the parent started since are this run's
        self._reopened: tuple[str, str] | None = None  # (run id, its status before this run)
        self._parent_created = False
        self._nodes_done = 0
        self._node_start: dict[str, float] = {}

    # ------------------------------------------------------------------ kedro hooks

    @hook_impl
    def after_context_created(self, context) -> None:
        # raw parameters: `context.params` would build the pipelines (see hooks.StudyGridHook)
        self._params = dict(context.config_loader["parameters"])
        self._grid = StudyGrid.from_params(self._params) if "study" in self._params else None
        self._project_path = Path(context.project_path)
        self._commit = git_commit(self._project_path)
        # kedro-mlflow (a plugin: its hooks run before the project's) has set context.mlflow
        self._mlflow_config = getattr(context, "mlflow", None)
        try:
            data_root = context.config_loader["globals"].get("data_root")
        except Exception:  # no globals (a worker's replayed context, a bare test context)
            data_root = None
        self._data_root = data_root
        self._study_key = study_record_key(self._params, data_root) if self._grid else None

    @hook_impl(specname="before_pipeline_run", tryfirst=True)
    def open_study_record(self, run_params) -> None:
        """Before kedro-mlflow starts its run: hand it the study record to re-open, if any.

        Runs first among the ``before_pipeline_run`` hooks (``tryfirst``); kedro-mlflow reads
        ``tracking.run.id`` of its configuration (``context.mlflow``) when it starts the run.
        """
        self._reopened = None
        config = self._mlflow_config
        if self._study_key is not None:  # the provenance hook has run (tryfirst, before this one)
            from soft_label_audit import provenance

            self._study_key = study_record_key(self._params, self._data_root, provenance.EXPECTED)
        if config is None or self._study_key is None:
            return
        import mlflow

        if mlflow.active_run() or os.environ.get("MLFLOW_RUN_ID") or config.tracking.run.id:
            return  # an explicit run: the user's choice wins
        try:
            client = self._client()
            experiment = client.get_experiment_by_name(config.tracking.experiment.name)
            if experiment is None:
                return
            found = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{STUDY_KEY_TAG}` = '{self._study_key}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
        except Exception as exc:  # a new record is the safe fallback
            logger.warning("could not look up the study's MLflow record: %s", exc)
            return
        if found:
            run = found[0]
            changed = changed_params(run.data.params, self._params)
            if changed:  # MLflow refuses to change a logged parameter: a record of its own
                logger.info(
                    "MLflow: the study record %s was logged with other values of %s; this "
                    "run starts a record of its own",
                    run.info.run_id,
                    ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else ""),
                )
                return
            config.tracking.run.id = run.info.run_id
            self._reopened = (run.info.run_id, run.info.status)
            logger.info("MLflow: this run joins the study record %s", run.info.run_id)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import mlflow

        self.run_ids.clear()  # child runs belong to one parent run: each pipeline run starts afresh
        self._created.clear()
        self._nodes_done = 0
        self._session_start = int(time.time() * 1000)
        parent = mlflow.active_run()  # kedro-mlflow's hook has started it by now
        if parent is None:
            self._parent_id = None
            return
        self._parent_id, self._experiment_id = parent.info.run_id, parent.info.experiment_id
        client = self._client()
        client.set_experiment_tag(self._experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        run = client.get_run(self._parent_id)
        tags = run.data.tags
        self._parent_created = (  # kedro-mlflow has just started it, not on anyone's request
            PARENT_TAG not in tags
            and not os.environ.get("MLFLOW_RUN_ID")
            and self._session_start - run.info.start_time < 60_000
        )
        if PARENT_TAG in tags and STUDY_KEY_TAG not in tags:
            pass  # an earlier parent resumed explicitly (MLFLOW_RUN_ID): it keeps its name
        else:
            stages = [s for s in tags.get(STAGES_TAG, "").split(",") if s]
            stages += [p for p in _pipelines(run_params) if p not in stages]
            name = parent_run_name(
                stages,
                run_params.get("env"),
                AnnotationConfig.source_of(self._params),
                created_ms=run.info.start_time,
                commit=tags.get("soft_label_audit.commit") or self._commit,
            )
            new_tags = {"mlflow.runName": name, PARENT_TAG: "true", STAGES_TAG: ",".join(stages)}
            if self._study_key:
                new_tags[STUDY_KEY_TAG] = self._study_key
            if self._commit and "soft_label_audit.commit" not in tags:
                new_tags["soft_label_audit.commit"] = self._commit
            for key, value in new_tags.items():
                client.set_tag(self._parent_id, key, value)
        logger.info(
            "MLflow run %s: %s", self._parent_id, client.get_run(self._parent_id).info.run_name
        )
        self._env_before, self._set_env = os.environ.get(PARENT_RUN_ENV), True
        os.environ[PARENT_RUN_ENV] = self._parent_id

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async: bool = False) -> None:
        self._node_start[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(
        self, node, catalog, inputs: dict[str, Any], outputs: dict[str, Any], is_async: bool = False
    ) -> None:
        started = self._node_start.pop(getattr(node, "name", None), None)
        seconds = time.perf_counter() - started if started is not None else None
        self._nodes_done += 1
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
            if kind == "curves" and seconds is not None:
                metric = "post_hoc_seconds" if _post_hoc_of(condition) else "train_seconds"
                self._log_train_seconds(
                    parent_id, source, condition, annotation_source, seconds, metric
                )

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        self._close(failed=False)

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        # kedro-mlflow's on_pipeline_error (a plugin: it runs before the project's) has marked
        # the parent FAILED; a user's mistake before any node completed leaves no trace
        undo = self._nodes_done == 0 and _is_user_error(error)
        parent_id = self._parent_id
        self._close(failed=True)
        if undo and parent_id is not None:
            self._undo_parent(parent_id)

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
        among that parent's children (a re-opened parent, another process), else created."""
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
        run = client.create_run(
            experiment, tags=tags, run_name=child_run_name(source, condition, seed)
        )
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

    def _seed_runs(self, parent_id, source, condition, annotation_source, frame):
        """(seed, rows, child run id) per seed of ``frame``; nothing without a seed column."""
        if "seed" not in getattr(frame, "columns", ()):
            logger.warning("%s.%s: no seed column, nothing logged to MLflow", source, condition)
            return []
        return [
            (int(seed), rows, self.child_run(parent_id, source, condition, seed, annotation_source))
            for seed, rows in frame.groupby("seed", sort=True)
        ]

    @staticmethod
    def _log_metric_list(client, run_id: str, metrics: list) -> None:
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + _BATCH])

    def _log_metrics(self, parent_id, source, condition, annotation_source, frame) -> None:
        """The headline metrics as metrics; the other numeric columns as a logged table."""
        import pandas as pd
        from mlflow.entities import Metric

        client = self._client()
        numeric = [c for c in frame.select_dtypes("number").columns if c != "seed"]
        now = int(time.time() * 1000)
        for _, rows, run_id in self._seed_runs(
            parent_id, source, condition, annotation_source, frame
        ):
            row = rows.iloc[-1]
            values = {c: float(row[c]) for c in numeric if row[c] is not None}
            headline = [
                Metric(c, v, now, 0)
                for c, v in values.items()
                if HEADLINE_METRICS.match(c) and math.isfinite(v)
            ]
            self._log_metric_list(client, run_id, headline)
            rest = {c: v for c, v in values.items() if not HEADLINE_METRICS.match(c)}
            if rest:
                table = pd.DataFrame({"metric": list(rest), "value": list(rest.values())})
                client.log_table(run_id, data=table, artifact_file=METRICS_TABLE)
            client.set_tag(run_id, f"{LOGGED_TAG}metrics", "true")

    def _log_curves(self, parent_id, source, condition, annotation_source, frame) -> None:
        """Every numeric column per epoch (step = epoch); points already logged are skipped."""
        from mlflow.entities import Metric

        client = self._client()
        skip = ("seed", "epoch", *RUN_CURVE_COLUMNS)
        numeric = [c for c in frame.select_dtypes("number").columns if c not in skip]
        now = int(time.time() * 1000)
        for _, rows, run_id in self._seed_runs(
            parent_id, source, condition, annotation_source, frame
        ):
            logged: set[tuple[str, int, float]] = set()
            if run_id not in self._created:  # a re-opened child: a re-run logs no duplicates
                for col in numeric:
                    logged |= {
                        (col, m.step, m.value) for m in client.get_metric_history(run_id, col)
                    }
            metrics = [
                Metric(col, value, now, int(row["epoch"]))
                for _, row in rows.iterrows()
                for col in numeric
                if (value := row[col]) is not None
                and math.isfinite(value := float(value))
                and (col, int(row["epoch"]), value) not in logged
            ]
            self._log_metric_list(client, run_id, metrics)
            client.set_tag(run_id, f"{LOGGED_TAG}curves", "true")

    def _seeds_of(self, source: str, condition: str) -> list[int]:
        """The seeds of ``training.seeds``, else those whose child runs this hook has made."""
        seeds = [int(s) for s in (self._params.get("training") or {}).get("seeds", [])]
        return seeds or sorted(k[2] for k in self.run_ids if k[:2] == (source, condition))

    def _log_train_seconds(
        self, parent_id, source, condition, annotation_source, seconds, metric="train_seconds"
    ) -> None:
        """The wall time of the node that trained the condition's seeds (they train together),
        or of the node that rescaled a post-hoc condition's (``post_hoc_seconds``)."""
        client = self._client()
        for seed in self._seeds_of(source, condition):
            run_id = self.child_run(parent_id, source, condition, seed, annotation_source)
            client.log_metric(run_id, metric, float(seconds))

    def _log_figures(self, parent_id, source, condition, annotation_source, figures: dict) -> None:
        client = self._client()
        seeds = self._seeds_of(source, condition)
        logged: set[str] = set()
        for name, figure in figures.items():
            match = _SEED_PREFIX.match(str(name))
            for seed in [int(match.group(1))] if match else seeds:
                run_id = self.child_run(parent_id, source, condition, seed, annotation_source)
                client.log_figure(
                    run_id, figure, f"figures/{match.group(2) if match else name}.png"
                )
                logged.add(run_id)
        for run_id in logged:
            client.set_tag(run_id, f"{LOGGED_TAG}figures", "true")

    def _log_weights(self, parent_id, source, condition, annotation_source, weights: dict) -> None:
        """Each seed's state dict as an MLflow PyTorch model ``model`` of its child run.

        The model is pickled (``serialization_format="pickle"``, loading it needs this package
        and trust in the file, as the ``weights`` pickle of the catalog does): MLflow's ``pt2``
        would trace every model with an example input, seconds per run."""
        import mlflow
        import mlflow.pytorch
        import torch

        from soft_label_audit.trainer.model import ModelConfig, build_model

        config = ModelConfig.from_params(weights["model"], f"{source}.{condition}.weights.model")
        client = self._client()
        requirements = [f"torch=={torch.__version__.split('+')[0]}"]
        temperatures = {
            key: weights[key] for key in ("temperature_best", "temperature_final") if key in weights
        }
        for k, (seed, state) in enumerate(
            zip(weights["seeds"], weights["state_dicts"], strict=True)
        ):
            run_id = self.child_run(parent_id, source, condition, int(seed), annotation_source)
            for key, values in temperatures.items():
                client.log_param(run_id, key, float(values[k]))
            if temperatures:
                client.set_tag(
                    run_id,
                    POST_HOC_TAG,
                    f"post-hoc temperature scaling of {_post_hoc_of(condition) or 'its base'}: "
                    "the logged model is the base's final weights; divide its logits by the "
                    "param temperature_final for this condition's final-epoch predictions "
                    "(temperature_best scales the best-epoch ones, whose weights are not logged)",
                )
            model = build_model(config, int(seed))
            model.load_state_dict({name: torch.as_tensor(v) for name, v in state.items()})
            model.eval()
            with (
                mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None),
                _quiet("mlflow.pytorch"),  # its warning on pickles, once per model
            ):
                mlflow.pytorch.log_model(
                    model,
                    name=MODEL_NAME,
                    pip_requirements=requirements,
                    serialization_format="pickle",  # "pt2" would trace every model (seconds)
                )
            client.set_tag(run_id, f"{LOGGED_TAG}weights", "true")

    def _log_headline(self, parent_id: str, summary) -> None:
        """``<source>.<condition>.<metric>`` on the parent run: the mean over seeds."""
        from mlflow.entities import Metric

        columns = [c for c in getattr(summary, "columns", ()) if SUMMARY_HEADLINE.match(c)]
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
        self._log_metric_list(self._client(), parent_id, metrics)

    def _undo_parent(self, parent_id: str) -> None:
        """After a user's mistake before any node completed: delete the parent this run created,
        or give a re-opened one its earlier status back."""
        try:
            client = self._client()
            if self._reopened and self._reopened[0] == parent_id:
                status = self._reopened[1]
                client.set_terminated(parent_id, status if status != "RUNNING" else "FINISHED")
            elif self._parent_created and not self._children(client, parent_id):
                client.delete_run(parent_id)
                logger.debug("MLflow: the run %s stopped on a user error; deleted", parent_id)
        except Exception as exc:  # never mask the pipeline's own outcome
            logger.warning("could not undo the MLflow run %s: %s", parent_id, exc)
        finally:
            self._reopened = None

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
