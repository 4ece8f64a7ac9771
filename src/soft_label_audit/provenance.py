"""Provenance of every stage's outputs, and the check that no stage reads a mixture.

Each stage (a registered pipeline: digits, annotation, labels, training, evaluation,
reporting) leaves a record beside its outputs, ``<data_root>/provenance/<stage>.json``, when a
run of it finishes::

    {"stage": "labels", "fingerprint": "3f…", "settings_sha256": "9a…",
     "upstream": {"annotation": "c1…"}, "study_id": "c1…",
     "annotation": {"source": "raw_file", "path": "votes.csv", "sha256": "77…"},
     "settings": {"labels.none_slot": "unsure", "training": {...}, ...}}

``settings`` are the parameter blocks the stage's nodes read (its ``params:`` inputs, as the
validated parameter tree holds them; :data:`NOT_FINGERPRINTED` leaves out the few that change
no output) and, for the annotation stage, the annotation input: its source, file and the file's
SHA-256. ``fingerprint`` is the SHA-256 of the stage's settings and of the fingerprints of the
stages it reads (``upstream``), so it names the whole chain of settings behind the outputs.
``study_id`` is the annotation stage's fingerprint (digits and annotation: the study's items
and labels); it is None for the digits stage, whose outputs do not depend on the annotations.

:class:`ProvenanceHook` checks, before any node runs, that every stage whose outputs the run
reads (and the stages behind them) has a record under the run's data root whose fingerprint
is the one this run's settings give, and that the datasets the run reads exist; otherwise the
run stops with a :class:`~soft_label_audit.errors.UserError` naming the stage to rerun and the
command (``kedro run --env test --pipeline labels``). A run that remakes only part of a stage
(``--namespaces``, ``--nodes``) must do so with the settings of the rest of its outputs.

:func:`read` returns the records of a data root and its ``study_id``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from soft_label_audit.errors import UserError
from soft_label_audit.parameter_tree import STUDENT_ONLY_KEYS

logger = logging.getLogger(__name__)

#: folder of the records, under the data root
RECORD_DIR = "provenance"
#: settings that change no output, left out of the fingerprints (block -> keys)
NOT_FINGERPRINTED: dict[str, tuple[str, ...]] = {"training": ("progress", "eval_batch_size")}
#: settings of a block that one stage does not read: the labels stage's teachers take the
#: ``training`` block without the students' seeds and epochs (parameter_tree.teacher_block)
NOT_READ_BY_STAGE: dict[tuple[str, str], tuple[str, ...]] = {
    ("labels", "training"): STUDENT_ONLY_KEYS
}
#: the dataset that carries the annotation source into the annotation stage
ANNOTATION_INPUT = "annotation_input"


class ProvenanceError(UserError):
    """A stage's inputs are missing or were made from other settings than the run's."""


class MissingStageOutputError(ProvenanceError):
    """A stage whose outputs the run reads has not run (or its output file is gone)."""


class MixedProvenanceError(ProvenanceError):
    """A stage's outputs on disk were made with other settings or from other inputs."""


# ---------------------------------------------------------------------------- the stage graph


def stage_graph(pipelines: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per registered stage (in registry order): the datasets it makes (``outputs``), the
    datasets it reads (``inputs``, parameters left out), its ``params:`` inputs and the stages
    whose outputs it reads (``upstream``)."""
    names = [name for name in pipelines if name != "__default__"]
    producer = {out: name for name in names for out in pipelines[name].all_outputs()}
    graph: dict[str, dict[str, Any]] = {}
    for name in names:
        pipe = pipelines[name]
        inputs = {i for i in pipe.inputs() if not i.startswith("params:") and i != "parameters"}
        upstream = {producer[i] for i in inputs if i in producer and producer[i] != name}
        graph[name] = {
            "name": name,
            "outputs": set(pipe.all_outputs()),
            "inputs": inputs,
            "parameters": sorted(
                i[len("params:") :] for i in pipe.inputs() if i.startswith("params:")
            ),
            "upstream": [s for s in names if s in upstream],
            "nodes": {n.name for n in pipe.nodes},
        }
    return graph


def producer_of(graph: Mapping[str, Mapping[str, Any]], dataset: str) -> str | None:
    """The stage whose outputs include ``dataset`` (None for a raw input)."""
    return next((name for name, stage in graph.items() if dataset in stage["outputs"]), None)


def ancestors(graph: Mapping[str, Mapping[str, Any]], stage: str) -> set[str]:
    """The stages ``stage`` reads, directly or through others."""
    found: set[str] = set()
    todo = list(graph[stage]["upstream"])
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(graph[name]["upstream"])
    return found


def after(graph: Mapping[str, Mapping[str, Any]], stage: str) -> list[str]:
    """The stages that read ``stage``'s outputs, directly or through others, in order."""
    return [name for name in graph if stage in ancestors(graph, name)]


# ---------------------------------------------------------------------------- the records


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _sha256(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


def file_sha256(path: str | None) -> str | None:
    """SHA-256 of a vote file's bytes; None when it cannot be read here (a hub dataset, gone)."""
    if not path or str(path).startswith("hf://"):
        return None
    import fsspec

    try:
        fs, local = fsspec.core.url_to_fs(str(path))
        if not fs.isfile(local):
            return None
        digest = hashlib.sha256()
        with fs.open(local, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def annotation_file(params: Mapping[str, Any]) -> tuple[str, str | None]:
    """The run's annotation source and the file it reads (None for the simulated crowd)."""
    from soft_label_audit.crowd import sources

    block = params.get("annotation") or {}
    source = str(block.get("source"))
    setting = sources.get(source).path_setting if source in sources.SOURCES else None
    path = None if setting is None else block.get(setting)
    return source, None if path is None else str(path)


def annotation_input(params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's annotation source, the file it reads (None for the simulated crowd) and its
    SHA-256."""
    source, path = annotation_file(params)
    return {"source": source, "path": path, "sha256": file_sha256(path)}


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    value: Any = params
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def stage_settings(
    stage: Mapping[str, Any], params: Mapping[str, Any], source: Mapping[str, Any]
) -> dict[str, Any]:
    """The settings behind a stage's outputs: its parameter blocks (without
    :data:`NOT_FINGERPRINTED`, and without the file settings of the annotation sources, which
    ``annotation_input`` holds for the chosen one) and, when it reads it, the annotation input."""
    from soft_label_audit.crowd import sources

    settings: dict[str, Any] = {}
    for dotted in stage["parameters"]:
        value = copy.deepcopy(_lookup(params, dotted))
        left_out = (
            *NOT_FINGERPRINTED.get(dotted, ()),
            *NOT_READ_BY_STAGE.get((stage["name"], dotted), ()),
        )
        if dotted == "annotation":
            left_out = sources.path_settings()
        if isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k not in left_out}
        settings[dotted] = value
    if ANNOTATION_INPUT in stage["inputs"]:
        settings[ANNOTATION_INPUT] = dict(source)
    return settings


def expected_records(
    graph: Mapping[str, Mapping[str, Any]],
    params: Mapping[str, Any],
    source: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The record every stage's outputs would have if made with ``params`` (and the annotation
    input ``source``, by default read from ``params``)."""
    source = annotation_input(params) if source is None else source
    records: dict[str, dict[str, Any]] = {}
    for name, stage in graph.items():
        settings = stage_settings(stage, params, source)
        upstream = {up: records[up]["fingerprint"] for up in stage["upstream"]}
        settings_sha = _sha256(settings)
        reads_annotation = name == "annotation" or "annotation" in ancestors(graph, name)
        record = {
            "stage": name,
            "fingerprint": _sha256({"stage": name, "settings": settings_sha, "upstream": upstream}),
            "settings_sha256": settings_sha,
            "upstream": upstream,
            "annotation": dict(source) if reads_annotation else None,
            "settings": settings,
        }
        records[name] = record
    study_id = records.get("annotation", {}).get("fingerprint")
    for name, record in records.items():
        record["study_id"] = study_id if record["annotation"] is not None else None
    return records


def record_path(data_root: str | Path, stage: str) -> Path:
    return Path(data_root) / RECORD_DIR / f"{stage}.json"


def write_record(data_root: str | Path, record: Mapping[str, Any]) -> Path:
    path = record_path(data_root, record["stage"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(record), indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_record(data_root: str | Path, stage: str) -> dict[str, Any] | None:
    path = record_path(data_root, stage)
    return json.loads(path.read_text()) if path.is_file() else None


def read(data_root: str | Path) -> dict[str, Any]:
    """The provenance of a data root: ``{"study_id": ..., "stages": {stage: record}}``.

    ``study_id`` is the fingerprint of the annotation stage's record (the digits + annotation
    chain behind every later stage's outputs), None when annotation has not run there; a
    stage's record whose own ``study_id`` differs was made for another study.
    """
    folder = Path(data_root) / RECORD_DIR
    stages = (
        {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
        if folder.is_dir()
        else {}
    )
    annotation = stages.get("annotation")
    return {"study_id": annotation["fingerprint"] if annotation else None, "stages": stages}


# ---------------------------------------------------------------------------- the check


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


_UNSET = object()


def setting_differences(
    on_disk: Mapping[str, Any], wanted: Mapping[str, Any], most: int = 3
) -> str:
    """``key: X there, Y in this run`` for the first ``most`` settings that differ."""
    there, here = _flat(on_disk.get("settings") or {}), _flat(wanted.get("settings") or {})
    keys = sorted(k for k in set(there) | set(here) if there.get(k, _UNSET) != here.get(k, _UNSET))
    # an empty block on one side and its settings on the other: the settings say it
    keys = [k for k in keys if not any(other.startswith(f"{k}.") for other in keys)]

    def shown_value(values: Mapping[str, Any], key: str) -> str:
        return repr(values[key]) if key in values else "not set"

    shown = [
        f"{k} is {shown_value(there, k)} there, {shown_value(here, k)} in this run"
        for k in keys[:most]
    ]
    more = f" (and {len(keys) - most} more)" if len(keys) > most else ""
    return "; ".join(shown) + more


def command(
    stages: str | list[str], env: str | None, runtime_params: Mapping[str, Any] | None
) -> str:
    """``kedro run [--env ENV] --pipeline STAGE [--params "..."]``, as this run was called
    (``--pipelines A,B`` for several stages).

    >>> command("labels", "test", {"annotation": {"source": "raw_file", "raw_path": "v.csv"}})
    'kedro run --env test --pipeline labels --params "annotation.source=raw_file,annotation.raw_path=v.csv"'
    >>> command(["digits", "annotation"], None, None)
    'kedro run --pipelines digits,annotation'
    """
    stages = [stages] if isinstance(stages, str) else list(stages)
    parts = ["kedro run"]
    if env:
        parts.append(f"--env {env}")
    parts.append(
        f"--pipeline {stages[0]}" if len(stages) == 1 else f"--pipelines {','.join(stages)}"
    )
    flat = _flat(dict(runtime_params or {}))
    flat.pop("", None)
    if flat:
        parts.append('--params "' + ",".join(f"{k}={v}" for k, v in flat.items()) + '"')
    return " ".join(parts)


def check_run(
    graph: Mapping[str, Mapping[str, Any]],
    run_nodes: set[str],
    free_inputs: set[str],
    on_disk: Mapping[str, Mapping[str, Any] | None],
    expected: Mapping[str, Mapping[str, Any]],
    root: str,
    cmd: Any,
) -> None:
    """Raise a :class:`ProvenanceError` unless the stages this run reads (``free_inputs``'
    producers and the stages behind them) have the records this run's settings give, and a
    partly remade stage keeps its settings. ``cmd(stage)`` is the command that runs a stage."""
    in_run = {name for name, stage in graph.items() if stage["nodes"] & run_nodes}
    partial = {name for name in in_run if not graph[name]["nodes"] <= run_nodes}
    needed = {producer_of(graph, name) for name in free_inputs} - {None} - (in_run - partial)
    relevant = set(needed)
    for name in needed:
        relevant |= ancestors(graph, name)
    relevant = (relevant - in_run) | partial
    missing = [name for name in graph if name in relevant - partial and on_disk.get(name) is None]
    if missing:
        read = [name for name in missing if name in needed] or missing[-1:]
        example = sorted(i for i in free_inputs if producer_of(graph, i) == read[-1])
        before = [name for name in missing if name not in read]
        raise MissingStageOutputError(
            f"this run reads outputs of {' and '.join(read)}"
            + (f" (e.g. {example[0]}, made by the {read[-1]} pipeline)" if example else "")
            + f", which {'has' if len(read) == 1 else 'have'} not run under {root} "
            f"(no {RECORD_DIR} record)"
            + (f"; nor have the stages before: {', '.join(before)}" if before else ""),
            f"run `{cmd(missing)}` first",
        )
    for name in graph:  # in order: the first stage that is off is the one to rerun
        if name not in relevant:
            continue
        record, wanted = on_disk.get(name), expected[name]
        if record is None or record["fingerprint"] == wanted["fingerprint"]:
            continue
        if name in partial and name not in needed:
            raise MixedProvenanceError(
                f"this run remakes part of the {name} outputs under {root}, whose other "
                f"outputs were made otherwise: {_why(record, wanted)}",
                f"run the whole stage: `{cmd(name)}` (and the stages after it)",
            )
        later = ", ".join(after(graph, name))
        raise MixedProvenanceError(
            f"the {name} outputs under {root} do not match this run: {_why(record, wanted)}",
            f"rerun `{cmd(name)}` and the stages after it ({later}), or run with the "
            "settings they were made with"
            if later
            else f"rerun `{cmd(name)}`",
        )


def _why(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    if record.get("settings_sha256") != wanted["settings_sha256"]:
        return "made with other settings: " + setting_differences(record, wanted)
    for up, fingerprint in wanted["upstream"].items():
        if (record.get("upstream") or {}).get(up) != fingerprint:
            source = record.get("annotation") or {}
            was = f" (annotation.source {source.get('source')!r})" if source else ""
            return f"made from other {up} outputs{was} than those there now"
    return "made from another chain of stages"


def check_pipeline(
    graph: Mapping[str, Mapping[str, Any]],
    pipeline: Any,
    params: Mapping[str, Any],
    data_root: str | Path,
    shown_root: str | None = None,
    env: str | None = None,
    runtime_params: Mapping[str, Any] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Check that ``pipeline`` (a run's, or a stage's) may run with ``params`` on the outputs
    under ``data_root`` (:func:`check_run`); returns the records its stages' outputs will have
    and those stages, in order. ``env`` and ``runtime_params`` make the commands of the fix."""
    run_nodes = {n.name for n in pipeline.nodes}
    free_inputs = {i for i in pipeline.inputs() if not i.startswith("params:")}
    on_disk = {name: read_record(data_root, name) for name in graph}
    source = annotation_input(params)
    known = (on_disk.get("annotation") or {}).get("annotation") or {}
    if source["sha256"] is None and source["path"] and known.get("path") == source["path"]:
        # a vote file that cannot be read here now (moved, a hub dataset) is taken to be the
        # one the annotations were made from (a run that remakes them has read it already)
        source["sha256"] = known.get("sha256")
    expected = expected_records(graph, params, source)
    check_run(
        graph,
        run_nodes,
        free_inputs,
        on_disk,
        expected,
        str(shown_root or data_root),
        lambda stage: command(stage, env, runtime_params),
    )
    in_run = [name for name, stage in graph.items() if stage["nodes"] & run_nodes]
    return expected, in_run


#: file of each input of the running pipeline that a stage makes -> (dataset, stage, command),
#: so that a file that disappears during the run is still named by its stage (cli.py)
INPUT_FILES: dict[str, tuple[str, str, str]] = {}
#: the records the running pipeline's stages will have (every stage of the project, as
#: :func:`expected_records` gives them), set by :class:`ProvenanceHook` before any node runs:
#: the MLflow hook finds the study's record from them (``tracking.study_record_key``)
EXPECTED: dict[str, dict[str, Any]] = {}


def producer_of_file(path: str) -> tuple[str, str, str] | None:
    """(dataset, stage, command) of a missing input file of the running pipeline, else None."""
    return INPUT_FILES.get(str(path))


class ProvenanceHook:
    """Checks the provenance of a run's inputs before any node runs and records that of its
    outputs when it ends (module docstring). Runs on the driver only: on a Dask worker there is
    no pipeline run, and the replayed context has no globals."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._shown_root = ""
        self._params: dict[str, Any] = {}
        self._expected: dict[str, dict[str, Any]] = {}
        self._in_run: list[str] = []

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            data_root = context.config_loader["globals"]["data_root"]
        except (KeyError, TypeError):  # a Dask worker's replayed context
            self._root = None
            return
        self._root = Path(context.project_path) / str(data_root)
        self._shown_root = str(data_root)
        self._params = dict(context.config_loader["parameters"])

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: Any, pipeline: Any, catalog: Any) -> None:
        self._in_run = []
        EXPECTED.clear()
        if self._root is None:
            return
        from kedro.framework.project import pipelines

        free_inputs = {i for i in pipeline.inputs() if not i.startswith("params:")}
        if ANNOTATION_INPUT in free_inputs and annotation_file(self._params)[1]:
            catalog.load(ANNOTATION_INPUT)  # the vote file's own errors come first
        env, runtime = run_params.get("env"), run_params.get("runtime_params")
        graph = stage_graph(pipelines)
        expected, in_run = check_pipeline(
            graph, pipeline, self._params, self._root, self._shown_root, env, runtime
        )
        INPUT_FILES.clear()
        for name in sorted(free_inputs):
            stage = producer_of(graph, name)
            if stage is None:
                continue
            path = _filepath(catalog, name)
            INPUT_FILES[path] = (name, stage, command(stage, env, runtime))
            if not catalog.exists(name):
                raise MissingStageOutputError(
                    f"{name} ({path}) does not exist; the {stage} pipeline makes it",
                    f"run `{command(stage, env, runtime)}` first",
                )
        self._expected, self._in_run = expected, in_run
        EXPECTED.clear()
        EXPECTED.update(expected)

    @hook_impl
    def after_pipeline_run(self, run_params: Any, run_result: Any, pipeline: Any, catalog: Any):
        if self._root is None:
            return
        for name in self._in_run:
            write_record(self._root, self._expected[name])
        if self._in_run:
            logger.info(
                "Provenance of %s recorded under %s/%s",
                ", ".join(self._in_run),
                self._shown_root,
                RECORD_DIR,
            )


def _filepath(catalog: Any, name: str) -> str:
    try:
        dataset = catalog.get(name, fallback_to_runtime_pattern=True)
        return str(dataset._describe().get("filepath", name))
    except Exception:  # a catalog without the dataset's description: the name says enough
        return name
